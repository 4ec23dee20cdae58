//! The JWS algorithms latchkey signs with, and how a minted token names its signing key.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::JwtError;

/// A JWS signature algorithm, spelled as in JWA (RFC 7518) in config files and in the token.
///
/// Distribution 2.8 accepts RS256/384/512 and ES256/384; EdDSA is for other consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    ES256,
    ES384,
    RS256,
    RS384,
    RS512,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 6] =
        [Algorithm::ES256, Algorithm::ES384, Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// What kind of key this algorithm signs with, for messages.
    pub(crate) fn key_needed(self) -> &'static str {
        match self {
            Algorithm::ES256 => "an EC P-256 key",
            Algorithm::ES384 => "an EC P-384 key",
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => "an RSA key",
            Algorithm::EdDSA => "an Ed25519 key",
        }
    }

    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::ES384 => jsonwebtoken::Algorithm::ES384,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::RS384 => jsonwebtoken::Algorithm::RS384,
            Algorithm::RS512 => jsonwebtoken::Algorithm::RS512,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = JwtError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| {
            JwtError::Spec(format!(
                "unknown JWT algorithm {s:?}; expected one of ES256, ES384, RS256, RS384, RS512, EdDSA"
            ))
        })
    }
}

/// How a minted token names its signing key in the JWS header.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyIdHeader {
    /// Neither `kid` nor `x5c`.
    None,
    /// `kid` set to this value.
    Kid(String),
    /// `kid` set to the libtrust key id of the signing key's public key, which is what
    /// Distribution looks up among the certificates of its `rootcertbundle`. See [`libtrust_key_id`](crate::libtrust_key_id).
    Libtrust,
    /// `x5c` set to these DER certificates, leaf (holding the signing key's public key) first.
    /// See [`load_pem_chain`](crate::load_pem_chain).
    X5c(Vec<Vec<u8>>),
}

impl fmt::Debug for KeyIdHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyIdHeader::None => f.write_str("None"),
            KeyIdHeader::Kid(kid) => f.debug_tuple("Kid").field(kid).finish(),
            KeyIdHeader::Libtrust => f.write_str("Libtrust"),
            KeyIdHeader::X5c(chain) => write!(f, "X5c(<{} certificate(s)>)", chain.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn algorithm_names_are_jwa() {
        for a in Algorithm::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), json!(a.as_str()));
            assert_eq!(serde_json::from_value::<Algorithm>(json!(a.as_str())).unwrap(), a);
            assert_eq!(a.as_str().parse::<Algorithm>().unwrap(), a);
        }
        assert!(serde_json::from_value::<Algorithm>(json!("HS256")).is_err());
        assert!("es256".parse::<Algorithm>().unwrap_err().to_string().contains("ES256, ES384"));
    }
}

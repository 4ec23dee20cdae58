//! JSON Web Tokens for the static bearer mode: minting our own, and inspecting other people's.
//!
//! * [`mint`] signs a JWT with a configured private key (PKCS#8, SEC1 `EC PRIVATE KEY` or PKCS#1
//!   `RSA PRIVATE KEY` PEM), shaped the way Docker Distribution's `auth: token` wants a directly
//!   sent bearer: `aud` as one JSON string, `exp`, and either a `kid` (an explicit one, or the
//!   libtrust key id Distribution derives from the certificates in its `rootcertbundle`) or an
//!   `x5c` chain that ends at that bundle.
//! * [`inspect`] decodes a JWT handed to us by a source *without* verifying its signature: latchkey
//!   is not the token's audience, it only has to know when the token stops working, so that it
//!   never hands out a dead one. [`check_usable`] turns that into a yes or a precise reason.
//!
//! No error message or `Debug` output ever contains a token, a part of its signature, or key
//! material.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use data_encoding::{BASE64, BASE64URL_NOPAD, HEXLOWER};
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use p256::pkcs8::{ObjectIdentifier, PrivateKeyInfo};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use latchkey_protocol::secret::Secret;

/// Tokens longer than this are refused before any decoding (registries cap header sizes anyway;
/// a JWT with a long x5c chain is a few KiB).
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// PEM inputs (keys, certificate chains) larger than this are refused before parsing.
pub const MAX_PEM_LEN: usize = 1024 * 1024;

/// How far in the future `nbf` may be and still count as valid now: the same leeway Distribution
/// applies (it accepts a token from `nbf - 60 s` to `exp + 60 s`).
pub const NOT_BEFORE_LEEWAY: Duration = Duration::from_secs(60);

/// RSA keys shorter than this are refused for signing.
pub const MIN_RSA_BITS: usize = 2048;

/// The claims [`mint`] sets itself; `extra_claims` may not override them.
pub const REGISTERED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"];

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
    fn key_needed(self) -> &'static str {
        match self {
            Algorithm::ES256 => "an EC P-256 key",
            Algorithm::ES384 => "an EC P-384 key",
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => "an RSA key",
            Algorithm::EdDSA => "an Ed25519 key",
        }
    }

    fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
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
    /// Distribution looks up among the certificates of its `rootcertbundle`. See [`libtrust_key_id`].
    Libtrust,
    /// `x5c` set to these DER certificates, leaf (holding the signing key's public key) first.
    /// See [`load_pem_chain`].
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

/// Everything [`mint`] needs.
#[derive(Clone, Debug)]
pub struct MintSpec {
    pub algorithm: Algorithm,
    /// PEM text: `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1) or `RSA PRIVATE KEY` (PKCS#1),
    /// unencrypted. Other PEM blocks in the same text (e.g. `EC PARAMETERS`) are skipped.
    pub private_key_pem: Secret<String>,
    pub key_id: KeyIdHeader,
    /// `iss`; must equal the registry's `auth.token.issuer`.
    pub issuer: String,
    /// `sub`; informational for Distribution.
    pub subject: String,
    /// `aud`, written as a single JSON string (Distribution rejects a list); must equal the
    /// registry's `auth.token.service`.
    pub audience: String,
    /// `exp = now + lifetime` (whole seconds; shortened to the x5c chain's earliest `notAfter`).
    pub lifetime: Duration,
    /// `nbf = now - not_before_skew`, to tolerate a registry whose clock is behind ours.
    pub not_before_skew: Duration,
    /// More claims, e.g. Distribution's `access` list. They may not set any of [`REGISTERED_CLAIMS`].
    pub extra_claims: Map<String, Value>,
}

/// Why a JWT could not be minted, decoded, or used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// The private key (or a PEM input) is unreadable or unsupported.
    Key(String),
    /// The key does not fit the configured algorithm.
    KeyMismatch { algorithm: Algorithm, key: String },
    /// An x5c certificate is unreadable, expired, or does not hold the signing key.
    Certificate(String),
    /// The mint spec itself is wrong (empty issuer, zero lifetime, ...).
    Spec(String),
    /// `extra_claims` tried to set a registered claim.
    ReservedClaim(String),
    /// The signing library failed.
    Sign(String),
    /// The token is longer than [`MAX_TOKEN_LEN`].
    TooLarge { len: usize },
    /// The token is not a well-formed JWS compact JWT; the message says what is wrong, never what
    /// the token contains.
    Malformed(String),
    /// `exp` is in the past.
    Expired { exp: u64, ago: Duration },
    /// `exp` is in the future, but closer than the required margin.
    ExpiresSoon { exp: u64, left: Duration, margin: Duration },
    /// `nbf` is further in the future than [`NOT_BEFORE_LEEWAY`].
    NotYetValid { nbf: u64, wait: Duration },
    /// No `exp` claim: the token's lifetime is unknown.
    MissingExpiry,
    /// `aud` does not contain the expected audience.
    WrongAudience { expected: String, found: Vec<String> },
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Key(msg) => write!(f, "private key: {msg}"),
            JwtError::KeyMismatch { algorithm, key } => {
                write!(f, "algorithm {algorithm} needs {}, but the private key is {key}", algorithm.key_needed())
            }
            JwtError::Certificate(msg) => write!(f, "x5c certificate chain: {msg}"),
            JwtError::Spec(msg) => f.write_str(msg),
            JwtError::ReservedClaim(name) => write!(
                f,
                "extra claim {name:?} would override a claim latchkey sets itself \
                 (iss, sub, aud, iat, nbf, exp, jti); configure it through its own setting instead"
            ),
            JwtError::Sign(msg) => write!(f, "signing the JWT failed: {msg}"),
            JwtError::TooLarge { len } => {
                write!(f, "token is {len} bytes long, more than the {MAX_TOKEN_LEN} bytes latchkey accepts")
            }
            JwtError::Malformed(msg) => write!(f, "not a usable JWT: {msg}"),
            JwtError::Expired { exp, ago } => {
                write!(f, "token expired {} ago (exp {})", human_duration(*ago), rfc3339(*exp))
            }
            JwtError::ExpiresSoon { exp, left, margin } => write!(
                f,
                "token expires in {} (exp {}), within the required margin of {}; it would likely die in use",
                human_duration(*left),
                rfc3339(*exp),
                human_duration(*margin)
            ),
            JwtError::NotYetValid { nbf, wait } => write!(
                f,
                "token is not valid yet: nbf {} is {} from now (allowed clock skew {}); \
                 check this machine's clock and the issuer's",
                rfc3339(*nbf),
                human_duration(*wait),
                human_duration(NOT_BEFORE_LEEWAY)
            ),
            JwtError::MissingExpiry => f.write_str(
                "token has no exp claim, so when it stops working is unknown; refusing it \
                 (Distribution rejects such tokens too)",
            ),
            JwtError::WrongAudience { expected, found } => match found.as_slice() {
                [] => write!(f, "token has no aud claim; the registry expects aud {expected:?}"),
                [one] => write!(f, "token audience is {one:?}, but the registry expects {expected:?}"),
                many => write!(f, "token audience is {many:?}, which does not include {expected:?}"),
            },
        }
    }
}

impl std::error::Error for JwtError {}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

/// A parsed private signing key.
enum SigningKey {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl SigningKey {
    fn describe(&self) -> String {
        match self {
            SigningKey::P256(_) => "an EC P-256 key".into(),
            SigningKey::P384(_) => "an EC P-384 key".into(),
            SigningKey::Rsa(k) => format!("a {}-bit RSA key", k.size() * 8),
            SigningKey::Ed25519(_) => "an Ed25519 key".into(),
        }
    }

    fn from_pem(text: &str) -> Result<SigningKey, JwtError> {
        if text.len() > MAX_PEM_LEN {
            return Err(JwtError::Key(format!("PEM text is {} bytes, more than {MAX_PEM_LEN}", text.len())));
        }
        let blocks = pem::parse_many(text).map_err(|e| JwtError::Key(pem_error("the private key", &e)))?;
        if blocks.is_empty() {
            return Err(JwtError::Key(
                "no PEM block found (expected -----BEGIN PRIVATE KEY-----, EC PRIVATE KEY or RSA PRIVATE KEY)".into(),
            ));
        }
        let mut seen = Vec::new();
        for block in blocks {
            let tag = block.tag().to_owned();
            let encrypted = block.headers().get("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED"));
            match tag.as_str() {
                "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" if encrypted => {
                    return Err(JwtError::Key(format!(
                        "the {tag} is encrypted; decrypt it first, e.g. `openssl pkey -in KEY -out PLAIN.pem`"
                    )));
                }
                "PRIVATE KEY" => return Self::from_pkcs8(&Zeroizing::new(block.into_contents())),
                "EC PRIVATE KEY" => return Self::from_sec1(&Zeroizing::new(block.into_contents())),
                "RSA PRIVATE KEY" => {
                    let der = Zeroizing::new(block.into_contents());
                    let key = rsa::RsaPrivateKey::from_pkcs1_der(&der)
                        .map_err(|e| JwtError::Key(format!("RSA PRIVATE KEY (PKCS#1) is invalid: {e}")))?;
                    return Ok(SigningKey::Rsa(Box::new(key)));
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(JwtError::Key(
                        "the key is encrypted (ENCRYPTED PRIVATE KEY); decrypt it first, \
                         e.g. `openssl pkey -in KEY -out PLAIN.pem`"
                            .into(),
                    ));
                }
                "OPENSSH PRIVATE KEY" => {
                    return Err(JwtError::Key(
                        "OpenSSH key format is not supported; convert a copy with \
                         `ssh-keygen -p -m PKCS8 -f COPY`"
                            .into(),
                    ));
                }
                _ => {
                    // Drop the block without keeping its contents; its label is not secret.
                    seen.push(tag);
                }
            }
        }
        Err(JwtError::Key(format!(
            "no private key among the PEM blocks (found: {}); expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY",
            seen.join(", ")
        )))
    }

    fn from_pkcs8(der: &[u8]) -> Result<SigningKey, JwtError> {
        let info = PrivateKeyInfo::try_from(der)
            .map_err(|e| JwtError::Key(format!("PRIVATE KEY (PKCS#8) is invalid: {e}")))?;
        let invalid = |e: &dyn fmt::Display| JwtError::Key(format!("PRIVATE KEY (PKCS#8) is invalid: {e}"));
        match info.algorithm.oid {
            OID_EC_PUBLIC_KEY => match info.algorithm.parameters_oid() {
                Ok(OID_P256) => Ok(SigningKey::P256(p256::SecretKey::from_pkcs8_der(der).map_err(|e| invalid(&e))?)),
                Ok(OID_P384) => Ok(SigningKey::P384(p384::SecretKey::from_pkcs8_der(der).map_err(|e| invalid(&e))?)),
                Ok(OID_P521) => {
                    Err(JwtError::Key("EC P-521 keys (ES512) are not supported; use P-256 or P-384".into()))
                }
                Ok(other) => Err(JwtError::Key(format!("unsupported EC curve {other}; use P-256 or P-384"))),
                Err(_) => Err(JwtError::Key("EC key without a named curve; use P-256 or P-384".into())),
            },
            OID_RSA => {
                let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| invalid(&e))?;
                Ok(SigningKey::Rsa(Box::new(key)))
            }
            OID_ED25519 => {
                let key = ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|e| invalid(&e))?;
                Ok(SigningKey::Ed25519(Box::new(key)))
            }
            OID_RSA_PSS => Err(JwtError::Key(
                "RSASSA-PSS keys are not supported; use a plain RSA key (openssl genpkey -algorithm RSA)".into(),
            )),
            OID_ED448 => Err(JwtError::Key("Ed448 keys are not supported; use Ed25519".into())),
            other => Err(JwtError::Key(format!("unsupported key algorithm (OID {other})"))),
        }
    }

    fn from_sec1(der: &[u8]) -> Result<SigningKey, JwtError> {
        // Each curve checks the named-curve parameter and the scalar length, so trying them in
        // turn cannot mistake one for the other.
        if let Ok(key) = p256::SecretKey::from_sec1_der(der) {
            return Ok(SigningKey::P256(key));
        }
        if let Ok(key) = p384::SecretKey::from_sec1_der(der) {
            return Ok(SigningKey::P384(key));
        }
        Err(JwtError::Key(
            "EC PRIVATE KEY (SEC1) is invalid or not on P-256/P-384 (P-521 and other curves are not supported)".into(),
        ))
    }

    /// DER SubjectPublicKeyInfo of the public half, encoded as Go's `x509.MarshalPKIXPublicKey`
    /// does (named curve, uncompressed point; rsaEncryption with NULL parameters).
    fn public_key_der(&self) -> Result<Vec<u8>, JwtError> {
        let der = match self {
            SigningKey::P256(k) => {
                p256::pkcs8::EncodePublicKey::to_public_key_der(&k.public_key()).map(|d| d.into_vec())
            }
            SigningKey::P384(k) => {
                p384::pkcs8::EncodePublicKey::to_public_key_der(&k.public_key()).map(|d| d.into_vec())
            }
            SigningKey::Rsa(k) => {
                rsa::pkcs8::EncodePublicKey::to_public_key_der(&k.to_public_key()).map(|d| d.into_vec())
            }
            SigningKey::Ed25519(k) => k.verifying_key().to_public_key_der().map(|d| d.into_vec()),
        };
        der.map_err(|e| JwtError::Key(format!("cannot encode the public key: {e}")))
    }

    fn encoding_key(&self) -> Result<jsonwebtoken::EncodingKey, JwtError> {
        let fail = |e: &dyn fmt::Display| JwtError::Key(format!("cannot re-encode the key for signing: {e}"));
        Ok(match self {
            SigningKey::P256(k) => {
                let der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(k).map_err(|e| fail(&e))?;
                jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes())
            }
            SigningKey::P384(k) => {
                let der = p384::pkcs8::EncodePrivateKey::to_pkcs8_der(k).map_err(|e| fail(&e))?;
                jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes())
            }
            SigningKey::Rsa(k) => {
                let der = k.to_pkcs1_der().map_err(|e| fail(&e))?;
                jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes())
            }
            SigningKey::Ed25519(k) => {
                let der = k.to_pkcs8_der().map_err(|e| fail(&e))?;
                jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())
            }
        })
    }

    fn check_fits(&self, algorithm: Algorithm) -> Result<(), JwtError> {
        use Algorithm::*;
        match (algorithm, self) {
            (ES256, SigningKey::P256(_)) | (ES384, SigningKey::P384(_)) | (EdDSA, SigningKey::Ed25519(_)) => Ok(()),
            (RS256 | RS384 | RS512, SigningKey::Rsa(k)) => {
                let bits = k.size() * 8;
                if bits < MIN_RSA_BITS {
                    Err(JwtError::Key(format!(
                        "the RSA key has {bits} bits; {algorithm} signing needs at least {MIN_RSA_BITS}"
                    )))
                } else {
                    Ok(())
                }
            }
            _ => Err(JwtError::KeyMismatch { algorithm, key: self.describe() }),
        }
    }
}

/// A PEM parse error, without echoing anything from inside the PEM.
fn pem_error(what: &str, e: &pem::PemError) -> String {
    let cause = match e {
        pem::PemError::MismatchedTags(begin, end) => {
            format!("its BEGIN ({begin:?}) and END ({end:?}) labels differ")
        }
        pem::PemError::MissingBeginTag => "a -----BEGIN line is missing".into(),
        pem::PemError::MissingEndTag => "an -----END line is missing".into(),
        pem::PemError::InvalidData(_) => "a block has invalid base64".into(),
        pem::PemError::InvalidHeader(_) => "a block has an invalid header line".into(),
        pem::PemError::NotUtf8(_) => "it is not UTF-8".into(),
        _ => "its framing is malformed".into(),
    };
    format!("{what} is not valid PEM: {cause}")
}

/// The libtrust key id of a DER SubjectPublicKeyInfo, as Distribution computes it for the keys
/// of its `rootcertbundle`: SHA-256 of the DER, first 240 bits, base32 (RFC 4648 alphabet, no
/// padding), 12 groups of 4 characters joined by ':'.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let b32 = data_encoding::BASE32_NOPAD.encode(&digest[..30]);
    let groups: Vec<&str> = b32.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    groups.join(":")
}

/// The DER SubjectPublicKeyInfo of the first key found in `pem_text`: the public half of a
/// private key (any form [`MintSpec::private_key_pem`] accepts), a `PUBLIC KEY`, or the key of a
/// `CERTIFICATE`.
pub fn public_key_der_from_pem(pem_text: &str) -> Result<Vec<u8>, JwtError> {
    if pem_text.len() > MAX_PEM_LEN {
        return Err(JwtError::Key(format!("PEM text is {} bytes, more than {MAX_PEM_LEN}", pem_text.len())));
    }
    let blocks = pem::parse_many(pem_text).map_err(|e| JwtError::Key(pem_error("the PEM text", &e)))?;
    let has_private = blocks.iter().any(|b| b.tag().contains("PRIVATE KEY"));
    if has_private {
        return SigningKey::from_pem(pem_text)?.public_key_der();
    }
    for block in &blocks {
        match block.tag() {
            "PUBLIC KEY" => {
                SubjectPublicKeyInfoOwned::from_der(block.contents())
                    .map_err(|e| JwtError::Key(format!("PUBLIC KEY is invalid: {e}")))?;
                return Ok(block.contents().to_vec());
            }
            "CERTIFICATE" => {
                let cert = Certificate::from_der(block.contents())
                    .map_err(|e| JwtError::Certificate(format!("CERTIFICATE is invalid: {e}")))?;
                return cert
                    .tbs_certificate
                    .subject_public_key_info
                    .to_der()
                    .map_err(|e| JwtError::Certificate(format!("cannot re-encode its public key: {e}")));
            }
            _ => {}
        }
    }
    Err(JwtError::Key("no PRIVATE KEY, PUBLIC KEY or CERTIFICATE block found".into()))
}

/// The libtrust key id (see [`libtrust_key_id`]) of the key in `pem_text` (see
/// [`public_key_der_from_pem`]). Handy to check a `kid` against a registry's certificate bundle.
pub fn libtrust_key_id_from_pem(pem_text: &str) -> Result<String, JwtError> {
    Ok(libtrust_key_id(&public_key_der_from_pem(pem_text)?))
}

/// The DER certificates of a PEM chain file, in file order (put the leaf first). Non-certificate
/// blocks are ignored; at least one certificate is required and each must parse as X.509.
pub fn load_pem_chain(pem_text: &str) -> Result<Vec<Vec<u8>>, JwtError> {
    if pem_text.len() > MAX_PEM_LEN {
        return Err(JwtError::Certificate(format!("PEM text is {} bytes, more than {MAX_PEM_LEN}", pem_text.len())));
    }
    let blocks = pem::parse_many(pem_text).map_err(|e| JwtError::Certificate(pem_error("the chain", &e)))?;
    let mut chain = Vec::new();
    for block in blocks {
        if block.tag() != "CERTIFICATE" {
            continue;
        }
        let der = block.into_contents();
        Certificate::from_der(&der)
            .map_err(|e| JwtError::Certificate(format!("certificate #{} is not valid X.509: {e}", chain.len() + 1)))?;
        chain.push(der);
    }
    if chain.is_empty() {
        return Err(JwtError::Certificate("no -----BEGIN CERTIFICATE----- block found".into()));
    }
    Ok(chain)
}

/// Checks an x5c chain against the signing key and `now`; returns the earliest `notAfter`.
fn check_x5c(chain: &[Vec<u8>], key_spki_der: &[u8], now: u64) -> Result<u64, JwtError> {
    if chain.is_empty() {
        return Err(JwtError::Certificate("x5c is configured but the chain is empty".into()));
    }
    let key_spki = SubjectPublicKeyInfoOwned::from_der(key_spki_der)
        .map_err(|e| JwtError::Key(format!("cannot decode our own public key: {e}")))?;
    let mut not_after_min = u64::MAX;
    let mut key_found_at = None;
    for (i, der) in chain.iter().enumerate() {
        let cert = Certificate::from_der(der)
            .map_err(|e| JwtError::Certificate(format!("certificate #{} is not valid X.509: {e}", i + 1)))?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        if spki.algorithm.oid == key_spki.algorithm.oid && spki.subject_public_key == key_spki.subject_public_key {
            key_found_at.get_or_insert(i);
        }
        let not_before = tbs.validity.not_before.to_unix_duration().as_secs();
        let not_after = tbs.validity.not_after.to_unix_duration().as_secs();
        let name = tbs.subject.to_string();
        if now < not_before {
            return Err(JwtError::Certificate(format!(
                "certificate #{} ({name}) is not valid until {}",
                i + 1,
                rfc3339(not_before)
            )));
        }
        if now >= not_after {
            return Err(JwtError::Certificate(format!(
                "certificate #{} ({name}) expired {} ago ({}); renew it",
                i + 1,
                human_duration(Duration::from_secs(now - not_after)),
                rfc3339(not_after)
            )));
        }
        not_after_min = not_after_min.min(not_after);
    }
    match key_found_at {
        Some(0) => Ok(not_after_min),
        Some(i) => Err(JwtError::Certificate(format!(
            "the signing key's certificate is #{} in the chain, but x5c must start with it (leaf first)",
            i + 1
        ))),
        None => Err(JwtError::Certificate(
            "the first certificate does not hold the signing key's public key (wrong key or wrong chain file)".into(),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Minting
// ---------------------------------------------------------------------------------------------

fn unix_secs(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Signs a fresh JWT: header `alg`, `typ: JWT` and the configured `kid`/`x5c`; claims `iss`, `sub`,
/// `aud` (one string), `iat = now`, `nbf = now - not_before_skew`, `exp = now + lifetime` (never
/// past the x5c chain's earliest `notAfter`), `jti` (128 random bits, hex), then `extra_claims`.
/// ECDSA signatures are raw `r || s`, as JWS requires.
pub fn mint(spec: &MintSpec, now: SystemTime) -> Result<Secret<String>, JwtError> {
    if spec.issuer.is_empty() {
        return Err(JwtError::Spec("the JWT issuer (iss) is empty; set it to the registry's token issuer".into()));
    }
    if spec.audience.is_empty() {
        return Err(JwtError::Spec(
            "the JWT audience (aud) is empty; set it to the registry's token service name".into(),
        ));
    }
    if spec.lifetime.as_secs() == 0 {
        return Err(JwtError::Spec("the JWT lifetime must be at least 1s".into()));
    }
    if let Some(name) = REGISTERED_CLAIMS.iter().find(|c| spec.extra_claims.contains_key(**c)) {
        return Err(JwtError::ReservedClaim((*name).to_owned()));
    }
    let now = unix_secs(now).ok_or_else(|| JwtError::Spec("the system clock is before 1970".into()))?;
    let mut exp = now
        .checked_add(spec.lifetime.as_secs())
        .filter(|e| *e <= i64::MAX as u64)
        .ok_or_else(|| JwtError::Spec("the JWT lifetime is absurdly long".into()))?;
    let nbf = now.saturating_sub(spec.not_before_skew.as_secs());

    let key = SigningKey::from_pem(spec.private_key_pem.expose())?;
    key.check_fits(spec.algorithm)?;

    let mut header = jsonwebtoken::Header::new(spec.algorithm.to_jsonwebtoken());
    match &spec.key_id {
        KeyIdHeader::None => {}
        KeyIdHeader::Kid(kid) => header.kid = Some(kid.clone()),
        KeyIdHeader::Libtrust => header.kid = Some(libtrust_key_id(&key.public_key_der()?)),
        KeyIdHeader::X5c(chain) => {
            let not_after = check_x5c(chain, &key.public_key_der()?, now)?;
            exp = exp.min(not_after);
            header.x5c = Some(chain.iter().map(|der| BASE64.encode(der)).collect());
        }
    }

    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).map_err(|e| JwtError::Sign(format!("no randomness for jti: {e}")))?;

    let mut claims = spec.extra_claims.clone();
    claims.insert("iss".into(), Value::from(spec.issuer.as_str()));
    claims.insert("sub".into(), Value::from(spec.subject.as_str()));
    claims.insert("aud".into(), Value::from(spec.audience.as_str()));
    claims.insert("iat".into(), Value::from(now));
    claims.insert("nbf".into(), Value::from(nbf));
    claims.insert("exp".into(), Value::from(exp));
    claims.insert("jti".into(), Value::from(HEXLOWER.encode(&jti)));

    let encoding_key = key.encoding_key()?;
    let token = jsonwebtoken::encode(&header, &claims, &encoding_key).map_err(|e| JwtError::Sign(e.to_string()))?;
    Ok(Secret::new(token))
}

// ---------------------------------------------------------------------------------------------
// Inspecting
// ---------------------------------------------------------------------------------------------

/// What [`inspect`] read from a JWT (unverified). Times are Unix seconds (JWT NumericDate,
/// fractions dropped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Header `alg`.
    pub algorithm: String,
    /// Header `kid`, if any.
    pub key_id: Option<String>,
    /// Whether the header carries an `x5c` chain.
    pub has_x5c: bool,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    /// `aud`, whether it was one string or a list.
    pub audience: Vec<String>,
    /// `aud` was a JSON list. Distribution 2.8 rejects such a token even when the list holds its
    /// service name; callers aiming at it may want to warn.
    pub audience_is_list: bool,
    pub expires_at: Option<u64>,
    pub not_before: Option<u64>,
    pub issued_at: Option<u64>,
}

impl Claims {
    /// `exp` as a `SystemTime`, if present.
    pub fn expires_at_time(&self) -> Option<SystemTime> {
        self.expires_at.and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
    }

    /// How long until `exp`; `None` without `exp`, zero once expired.
    pub fn time_left(&self, now: SystemTime) -> Option<Duration> {
        let now = unix_secs(now).unwrap_or(0);
        self.expires_at.map(|exp| Duration::from_secs(exp.saturating_sub(now)))
    }
}

fn b64url_segment(seg: &str, what: &str) -> Result<Vec<u8>, JwtError> {
    // JWS uses unpadded base64url; correct padding is tolerated, as Go's decoders (Distribution)
    // tolerate it.
    let decoded = if seg.contains('=') {
        let trimmed = seg.trim_end_matches('=');
        if seg.len() - trimmed.len() > 2 || trimmed.contains('=') || !seg.len().is_multiple_of(4) {
            return Err(JwtError::Malformed(format!("the {what} has misplaced '=' padding")));
        }
        data_encoding::BASE64URL.decode(seg.as_bytes())
    } else {
        BASE64URL_NOPAD.decode(seg.as_bytes())
    };
    decoded.map_err(|_| JwtError::Malformed(format!("the {what} is not valid base64url")))
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, JwtError> {
    // serde_json's messages can quote input, so only the position is reported.
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JwtError::Malformed(format!("the {what} is JSON but not an object"))),
        Err(e) => {
            Err(JwtError::Malformed(format!("the {what} is not valid JSON (line {}, column {})", e.line(), e.column())))
        }
    }
}

fn string_claim(map: &Map<String, Value>, name: &str, part: &str) -> Result<Option<String>, JwtError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtError::Malformed(format!("{part} field {name:?} is not a string"))),
    }
}

fn numeric_date(map: &Map<String, Value>, name: &str) -> Result<Option<u64>, JwtError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0) {
                // Saturating float-to-int cast: absurd dates become u64::MAX, never a panic.
                Ok(Some(f.floor() as u64))
            } else {
                Err(JwtError::Malformed(format!("claim {name:?} is negative")))
            }
        }
        Some(_) => Err(JwtError::Malformed(format!("claim {name:?} is not a number (JWT NumericDate)"))),
    }
}

/// Decodes a JWS compact JWT WITHOUT verifying its signature, with a strict structure check:
/// three base64url segments, a JSON object header with a string `alg` (not `none`), a JSON object
/// claims set, a non-empty signature. `aud` may be a string or a list of strings.
pub fn inspect(token: &str) -> Result<Claims, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLarge { len: token.len() });
    }
    if token.is_empty() {
        return Err(JwtError::Malformed("the token is empty".into()));
    }
    if token.len() >= 7 && token.as_bytes()[..7].eq_ignore_ascii_case(b"bearer ") {
        return Err(JwtError::Malformed("the token starts with \"Bearer \"; give the bare JWT".into()));
    }
    if let Some(i) = token.bytes().position(|b| !(b.is_ascii_alphanumeric() || b"-_.=".contains(&b))) {
        let b = token.as_bytes()[i];
        let what = if b.is_ascii_whitespace() {
            "whitespace (trim the token)"
        } else if b == b'+' || b == b'/' {
            "a '+' or '/' (standard base64, not base64url)"
        } else {
            "a character that is not base64url or '.'"
        };
        return Err(JwtError::Malformed(format!("the token contains {what} at byte {i}")));
    }
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => {
            return Err(JwtError::Malformed(
                "the token has 5 parts: an encrypted JWE, whose lifetime latchkey cannot read".into(),
            ));
        }
        n => {
            return Err(JwtError::Malformed(format!("the token has {n} part(s) separated by '.', a JWT has 3")));
        }
    }
    let header = json_object(&b64url_segment(parts[0], "header")?, "header")?;
    let claims = json_object(&b64url_segment(parts[1], "claims part")?, "claims part")?;
    let signature = b64url_segment(parts[2], "signature")?;

    let algorithm = match header.get("alg") {
        Some(Value::String(alg)) if alg.is_empty() => {
            return Err(JwtError::Malformed("the header's alg is empty".into()));
        }
        Some(Value::String(alg)) if alg.eq_ignore_ascii_case("none") => {
            return Err(JwtError::Malformed("the token is unsigned (alg none); no registry accepts it".into()));
        }
        Some(Value::String(alg)) => alg.clone(),
        Some(_) => return Err(JwtError::Malformed("the header's alg is not a string".into())),
        None => return Err(JwtError::Malformed("the header has no alg".into())),
    };
    if signature.is_empty() {
        return Err(JwtError::Malformed("the signature part is empty".into()));
    }
    let key_id = string_claim(&header, "kid", "header")?;
    let has_x5c = header.get("x5c").is_some_and(|v| !v.is_null());

    let (audience, audience_is_list) = match claims.get("aud") {
        None | Some(Value::Null) => (Vec::new(), false),
        Some(Value::String(s)) => (vec![s.clone()], false),
        Some(Value::Array(items)) => {
            let auds = items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| JwtError::Malformed("claim \"aud\" is a list with a non-string item".into()))?;
            (auds, true)
        }
        Some(_) => return Err(JwtError::Malformed("claim \"aud\" is neither a string nor a list of strings".into())),
    };

    Ok(Claims {
        algorithm,
        key_id,
        has_x5c,
        issuer: string_claim(&claims, "iss", "claim")?,
        subject: string_claim(&claims, "sub", "claim")?,
        audience,
        audience_is_list,
        expires_at: numeric_date(&claims, "exp")?,
        not_before: numeric_date(&claims, "nbf")?,
        issued_at: numeric_date(&claims, "iat")?,
    })
}

/// What [`check_usable_with`] requires of a token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usability<'a> {
    /// Refuse a token that expires within this much time from now.
    pub margin: Duration,
    /// The registry's service name, if known: `aud` must contain it.
    pub expected_audience: Option<&'a str>,
    /// Accept a token without `exp` (its lifetime is then unknown to latchkey).
    pub allow_missing_expiry: bool,
}

/// Whether a token is usable at `now` for at least `margin`: `aud` contains `expected_audience`
/// (if given), `exp` is present and more than `margin` ahead, and `nbf` is at most
/// [`NOT_BEFORE_LEEWAY`] ahead. Checks run in that order; the first failure is returned.
pub fn check_usable(
    claims: &Claims,
    now: SystemTime,
    margin: Duration,
    expected_audience: Option<&str>,
) -> Result<(), JwtError> {
    check_usable_with(claims, now, &Usability { margin, expected_audience, allow_missing_expiry: false })
}

/// [`check_usable`] with every requirement spelled out.
pub fn check_usable_with(claims: &Claims, now: SystemTime, req: &Usability<'_>) -> Result<(), JwtError> {
    let now = unix_secs(now).unwrap_or(0);
    if let Some(expected) = req.expected_audience
        && !claims.audience.iter().any(|a| a == expected)
    {
        return Err(JwtError::WrongAudience { expected: expected.to_owned(), found: claims.audience.clone() });
    }
    match claims.expires_at {
        None if req.allow_missing_expiry => {}
        None => return Err(JwtError::MissingExpiry),
        Some(exp) if exp <= now => return Err(JwtError::Expired { exp, ago: Duration::from_secs(now - exp) }),
        Some(exp) => {
            let left = Duration::from_secs(exp - now);
            if left <= req.margin {
                return Err(JwtError::ExpiresSoon { exp, left, margin: req.margin });
            }
        }
    }
    if let Some(nbf) = claims.not_before
        && nbf > now.saturating_add(NOT_BEFORE_LEEWAY.as_secs())
    {
        return Err(JwtError::NotYetValid { nbf, wait: Duration::from_secs(nbf - now) });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

/// `2026-11-22T22:00:00Z` for Unix seconds (UTC); absurd dates past year 9999 as `unix time N`.
pub fn rfc3339(secs: u64) -> String {
    const MAX: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if secs > MAX {
        return format!("unix time {secs}");
    }
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `45s`, `2m 30s`, `1h 5m`, `3d 2h`: the two largest units, truncated.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let two = |a: u64, ua: &str, b: u64, ub: &str| if b == 0 { format!("{a}{ua}") } else { format!("{a}{ua} {b}{ub}") };
    if s < 60 {
        format!("{secs}s")
    } else if s < 3600 {
        two(mins, "m", secs, "s")
    } else if s < 86_400 {
        two(hours, "h", mins, "m")
    } else {
        two(days, "d", hours, "h")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    macro_rules! key {
        ($name:literal) => {
            include_str!(concat!("../../../tests/support_registry/keys/", $name))
        };
    }

    const P256_SEC1: &str = key!("p256_sec1.pem");
    const P256_PKCS8: &str = key!("p256_pkcs8.pem");
    const P384: &str = key!("p384.pem");
    const P521: &str = key!("p521.pem");
    const RSA_PKCS1: &str = key!("rsa_pkcs1.pem");
    const RSA_PKCS8: &str = key!("rsa_pkcs8.pem");
    const RSA_1024: &str = key!("rsa1024_pkcs1.pem");
    const ED25519: &str = key!("ed25519.pem");
    const P256_CERT: &str = key!("p256_cert.pem");
    const P384_CERT: &str = key!("p384_cert.pem");
    const P256_LEGACY_ENCRYPTED: &str = key!("p256_sec1_legacy_encrypted.pem");
    const P256_PKCS8_ENCRYPTED: &str = key!("p256_pkcs8_encrypted.pem");

    // Independently computed with openssl + python (tests/support_registry/keys/README.md).
    const KID_P256: &str = "WTXG:KP2F:YKHH:3X7K:52BY:OZKL:SOJI:EMZW:GUXU:WNYM:T2A6:PD4L";
    const KID_P384: &str = "ACJO:4EKI:PEPS:NLB2:W36G:VAPX:JDWO:4KPQ:55K7:EAD4:XGQZ:PXQM";
    const KID_RSA: &str = "SEKN:4TKJ:P6D5:6KLY:FIQQ:EAIP:VP5G:PZAJ:QTV6:TUC7:P3RG:GX7Q";
    const KID_ED25519: &str = "KD6G:USI7:A54L:MHCL:BCWL:3GQM:HKNA:BI5V:ERQP:KN7I:RL6L:BUXA";

    /// 2026-11-22T22:00:00Z
    const T0: u64 = 1_795_384_800;
    /// p256_cert.pem validity.
    const P256_CERT_NOT_BEFORE: u64 = 1_795_388_802;
    const P256_CERT_NOT_AFTER: u64 = 4_948_988_802;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn spec(algorithm: Algorithm, pem: &str) -> MintSpec {
        MintSpec {
            algorithm,
            private_key_pem: Secret::from(pem),
            key_id: KeyIdHeader::Libtrust,
            issuer: "latchkey-test-issuer".into(),
            subject: "ci-bot".into(),
            audience: "registry.test".into(),
            lifetime: Duration::from_secs(300),
            not_before_skew: Duration::from_secs(30),
            extra_claims: Map::new(),
        }
    }

    fn segments(token: &str) -> (Value, Value, Vec<u8>) {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |s: &str| BASE64URL_NOPAD.decode(s.as_bytes()).unwrap();
        (
            serde_json::from_slice(&dec(parts[0])).unwrap(),
            serde_json::from_slice(&dec(parts[1])).unwrap(),
            dec(parts[2]),
        )
    }

    /// The public key in the form jsonwebtoken's RustCrypto verifiers take: the SPKI's bit string
    /// (SEC1 point, PKCS#1 RSAPublicKey, or raw Ed25519 key).
    fn decoding_key(pem: &str, algorithm: Algorithm) -> jsonwebtoken::DecodingKey {
        let spki = SubjectPublicKeyInfoOwned::from_der(&public_key_der_from_pem(pem).unwrap()).unwrap();
        let bits = spki.subject_public_key.raw_bytes();
        match algorithm {
            Algorithm::ES256 | Algorithm::ES384 => jsonwebtoken::DecodingKey::from_ec_der(bits),
            Algorithm::EdDSA => jsonwebtoken::DecodingKey::from_ed_der(bits),
            _ => jsonwebtoken::DecodingKey::from_rsa_der(bits),
        }
    }

    fn verify(token: &str, pem: &str, algorithm: Algorithm) -> Map<String, Value> {
        let mut validation = jsonwebtoken::Validation::new(algorithm.to_jsonwebtoken());
        validation.set_audience(&["registry.test"]);
        validation.set_issuer(&["latchkey-test-issuer"]);
        validation.validate_exp = false; // the tokens are minted at fixed times in 2026
        validation.validate_nbf = false;
        jsonwebtoken::decode::<Map<String, Value>>(token, &decoding_key(pem, algorithm), &validation)
            .unwrap_or_else(|e| panic!("{algorithm} token does not verify: {e}"))
            .claims
    }

    // --- keys and key ids ---------------------------------------------------------------------

    #[test]
    fn libtrust_kid_matches_independent_computation() {
        for (pem, kid) in [
            (P256_SEC1, KID_P256),
            (P256_PKCS8, KID_P256),
            (P256_CERT, KID_P256),
            (P384, KID_P384),
            (P384_CERT, KID_P384),
            (RSA_PKCS1, KID_RSA),
            (RSA_PKCS8, KID_RSA),
            (ED25519, KID_ED25519),
        ] {
            assert_eq!(libtrust_key_id_from_pem(pem).unwrap(), kid);
        }
        // The same key as a PUBLIC KEY block.
        let spki = public_key_der_from_pem(P256_SEC1).unwrap();
        let public_pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.clone()));
        assert_eq!(libtrust_key_id_from_pem(&public_pem).unwrap(), KID_P256);
        // Shape: 12 groups of 4 base32 characters.
        let kid = libtrust_key_id(&spki);
        assert_eq!(kid.len(), 12 * 4 + 11);
        assert!(
            kid.split(':').all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_uppercase() || b"234567".contains(&b)))
        );
    }

    #[test]
    fn key_forms_agree() {
        let spki = public_key_der_from_pem(P256_SEC1).unwrap();
        assert_eq!(public_key_der_from_pem(P256_PKCS8).unwrap(), spki);
        // `openssl ecparam -genkey` without -noout writes an EC PARAMETERS block first.
        let with_params =
            format!("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{P256_SEC1}");
        assert_eq!(public_key_der_from_pem(&with_params).unwrap(), spki);
        // CRLF line endings and surrounding text.
        let crlf = format!("subject=whatever\r\n{}", P256_SEC1.replace('\n', "\r\n"));
        assert_eq!(public_key_der_from_pem(&crlf).unwrap(), spki);
        assert_eq!(public_key_der_from_pem(RSA_PKCS1).unwrap(), public_key_der_from_pem(RSA_PKCS8).unwrap());
    }

    fn key_err(pem: &str) -> String {
        let err = mint(&spec(Algorithm::ES256, pem), at(T0)).unwrap_err();
        err.to_string()
    }

    #[test]
    fn unusable_keys_are_refused_with_reasons() {
        assert!(key_err("").contains("no PEM block"), "{}", key_err(""));
        assert!(key_err("hello").contains("no PEM block"));
        assert!(key_err(P256_CERT).contains("no private key among the PEM blocks (found: CERTIFICATE)"));
        assert!(key_err(P256_LEGACY_ENCRYPTED).contains("encrypted"), "{}", key_err(P256_LEGACY_ENCRYPTED));
        assert!(key_err(P256_PKCS8_ENCRYPTED).contains("encrypted"));
        let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        assert!(key_err(ssh).contains("ssh-keygen -p -m PKCS8"));
        assert!(key_err(P521).contains("P-521"));
        let bad_der = "-----BEGIN PRIVATE KEY-----\nMIIBAAAA\n-----END PRIVATE KEY-----\n";
        assert!(key_err(bad_der).contains("PKCS#8) is invalid"), "{}", key_err(bad_der));
        let bad_sec1 = "-----BEGIN EC PRIVATE KEY-----\nMIIBAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(key_err(bad_sec1).contains("SEC1"));
        let bad_rsa = "-----BEGIN RSA PRIVATE KEY-----\nMIIBAAAA\n-----END RSA PRIVATE KEY-----\n";
        let msg = mint(&spec(Algorithm::RS256, bad_rsa), at(T0)).unwrap_err().to_string();
        assert!(msg.contains("PKCS#1) is invalid"), "{msg}");
        let bad_b64 = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
        assert!(key_err(bad_b64).contains("invalid base64"), "{}", key_err(bad_b64));
        let mismatched = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(key_err(mismatched).contains("labels differ"), "{}", key_err(mismatched));
        // Truncations of a real key never panic.
        for i in 0..P256_SEC1.len() {
            let _ = mint(&spec(Algorithm::ES256, &P256_SEC1[..i]), at(T0));
        }
        // Key material never shows up in a message.
        let body_line = P256_SEC1.lines().nth(1).unwrap();
        for pem in [P256_SEC1, P256_PKCS8_ENCRYPTED, bad_der] {
            let err = mint(&spec(Algorithm::RS256, pem), at(T0)).unwrap_err();
            assert!(!err.to_string().contains(&body_line[..16]) && !format!("{err:?}").contains(&body_line[..16]));
        }
    }

    #[test]
    fn key_must_fit_the_algorithm() {
        let err = mint(&spec(Algorithm::ES256, RSA_PKCS1), at(T0)).unwrap_err();
        assert_eq!(err, JwtError::KeyMismatch { algorithm: Algorithm::ES256, key: "a 2048-bit RSA key".into() });
        assert_eq!(err.to_string(), "algorithm ES256 needs an EC P-256 key, but the private key is a 2048-bit RSA key");
        let err = mint(&spec(Algorithm::ES384, P256_SEC1), at(T0)).unwrap_err();
        assert!(matches!(err, JwtError::KeyMismatch { .. }), "{err}");
        let err = mint(&spec(Algorithm::RS256, ED25519), at(T0)).unwrap_err();
        assert_eq!(err.to_string(), "algorithm RS256 needs an RSA key, but the private key is an Ed25519 key");
        let err = mint(&spec(Algorithm::EdDSA, P384), at(T0)).unwrap_err();
        assert!(matches!(err, JwtError::KeyMismatch { .. }));
        let err = mint(&spec(Algorithm::RS256, RSA_1024), at(T0)).unwrap_err();
        assert_eq!(err.to_string(), "private key: the RSA key has 1024 bits; RS256 signing needs at least 2048");
    }

    // --- minting ------------------------------------------------------------------------------

    #[test]
    fn es256_token_verifies_and_has_the_distribution_shape() {
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.extra_claims
            .insert("access".into(), json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}]));
        let token = mint(&s, at(T0)).unwrap();
        let token = token.expose();
        let claims = verify(token, P256_SEC1, Algorithm::ES256);
        assert_eq!(claims["access"][0]["name"], "team/app");

        let (header, payload, sig) = segments(token);
        assert_eq!(header, json!({"alg": "ES256", "typ": "JWT", "kid": KID_P256}));
        assert_eq!(sig.len(), 64, "ES256 signatures are raw r||s, not DER");
        assert_eq!(payload["aud"], json!("registry.test"), "aud must be a single string for Distribution");
        assert_eq!(payload["iss"], "latchkey-test-issuer");
        assert_eq!(payload["sub"], "ci-bot");
        assert_eq!(payload["iat"], T0);
        assert_eq!(payload["nbf"], T0 - 30);
        assert_eq!(payload["exp"], T0 + 300);
        let jti = payload["jti"].as_str().unwrap();
        assert_eq!(jti.len(), 32);
        assert!(jti.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(payload.as_object().unwrap().len(), 8);

        // An independent verification with the p256 crate over the raw r||s.
        use p256::ecdsa::signature::Verifier as _;
        let vk = p256::ecdsa::VerifyingKey::from(p256::SecretKey::from_sec1_pem(P256_SEC1).unwrap().public_key());
        let (signed, _) = token.rsplit_once('.').unwrap();
        vk.verify(signed.as_bytes(), &p256::ecdsa::Signature::from_slice(&sig).unwrap()).unwrap();

        // A fresh jti every time.
        let again = mint(&s, at(T0)).unwrap();
        assert_ne!(segments(again.expose()).1["jti"], payload["jti"]);
    }

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for (algorithm, pem, kid, sig_len) in [
            (Algorithm::ES256, P256_PKCS8, KID_P256, 64),
            (Algorithm::ES384, P384, KID_P384, 96),
            (Algorithm::RS256, RSA_PKCS1, KID_RSA, 256),
            (Algorithm::RS384, RSA_PKCS8, KID_RSA, 256),
            (Algorithm::RS512, RSA_PKCS1, KID_RSA, 256),
            (Algorithm::EdDSA, ED25519, KID_ED25519, 64),
        ] {
            let token = mint(&spec(algorithm, pem), at(T0)).unwrap();
            verify(token.expose(), pem, algorithm);
            let (header, _, sig) = segments(token.expose());
            assert_eq!(header["alg"], algorithm.as_str());
            assert_eq!(header["kid"], kid);
            assert_eq!(sig.len(), sig_len, "{algorithm}");
            // Signed with another key of the same type, it does not verify.
            if algorithm == Algorithm::ES256 {
                let other = mint(&spec(algorithm, pem), at(T0)).unwrap();
                assert!(
                    jsonwebtoken::decode::<Value>(
                        other.expose(),
                        &decoding_key(RSA_PKCS1, Algorithm::RS256),
                        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256)
                    )
                    .is_err()
                );
            }
        }
    }

    #[test]
    fn key_id_header_variants() {
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.key_id = KeyIdHeader::None;
        let (header, _, _) = segments(mint(&s, at(T0)).unwrap().expose());
        assert_eq!(header, json!({"alg": "ES256", "typ": "JWT"}));
        s.key_id = KeyIdHeader::Kid("my-key-1".into());
        let (header, _, _) = segments(mint(&s, at(T0)).unwrap().expose());
        assert_eq!(header["kid"], "my-key-1");
    }

    #[test]
    fn inspect_round_trips_mint() {
        let mut s = spec(Algorithm::RS256, RSA_PKCS1);
        s.key_id = KeyIdHeader::Kid("k1".into());
        let token = mint(&s, at(T0)).unwrap();
        let claims = inspect(token.expose()).unwrap();
        assert_eq!(
            claims,
            Claims {
                algorithm: "RS256".into(),
                key_id: Some("k1".into()),
                has_x5c: false,
                issuer: Some("latchkey-test-issuer".into()),
                subject: Some("ci-bot".into()),
                audience: vec!["registry.test".into()],
                audience_is_list: false,
                expires_at: Some(T0 + 300),
                not_before: Some(T0 - 30),
                issued_at: Some(T0),
            }
        );
        assert_eq!(claims.expires_at_time(), Some(at(T0 + 300)));
        assert_eq!(claims.time_left(at(T0 + 100)), Some(Duration::from_secs(200)));
        assert_eq!(claims.time_left(at(T0 + 1000)), Some(Duration::ZERO));
        check_usable(&claims, at(T0), Duration::from_secs(60), Some("registry.test")).unwrap();
    }

    #[test]
    fn registered_claims_cannot_be_overridden() {
        for name in REGISTERED_CLAIMS {
            let mut s = spec(Algorithm::ES256, P256_SEC1);
            s.extra_claims.insert(name.into(), json!("x"));
            let err = mint(&s, at(T0)).unwrap_err();
            assert_eq!(err, JwtError::ReservedClaim(name.into()));
            assert!(err.to_string().contains(&format!("{name:?}")));
        }
    }

    #[test]
    fn bad_specs_are_refused() {
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.issuer.clear();
        assert!(mint(&s, at(T0)).unwrap_err().to_string().contains("issuer (iss) is empty"));
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.audience.clear();
        assert!(mint(&s, at(T0)).unwrap_err().to_string().contains("audience (aud) is empty"));
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.lifetime = Duration::from_millis(999);
        assert!(mint(&s, at(T0)).unwrap_err().to_string().contains("at least 1s"));
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.lifetime = Duration::from_secs(u64::MAX);
        assert!(matches!(mint(&s, at(T0)), Err(JwtError::Spec(_))));
        let s = spec(Algorithm::ES256, P256_SEC1);
        assert!(mint(&s, UNIX_EPOCH - Duration::from_secs(1)).unwrap_err().to_string().contains("before 1970"));
        // A skew larger than now saturates at 0 instead of wrapping.
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.not_before_skew = Duration::from_secs(u64::MAX);
        assert_eq!(segments(mint(&s, at(T0)).unwrap().expose()).1["nbf"], 0);
    }

    #[test]
    fn debug_never_shows_key_or_token() {
        let s = spec(Algorithm::ES256, P256_SEC1);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("PRIVATE KEY") && dbg.contains("<redacted>"), "{dbg}");
        let token = mint(&s, at(T0)).unwrap();
        assert_eq!(format!("{token:?}"), "Secret(<redacted>)");
        let chain = KeyIdHeader::X5c(load_pem_chain(P256_CERT).unwrap());
        assert_eq!(format!("{chain:?}"), "X5c(<1 certificate(s)>)");
    }

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

    // --- x5c ----------------------------------------------------------------------------------

    #[test]
    fn x5c_header_carries_the_chain() {
        let chain = load_pem_chain(P256_CERT).unwrap();
        let mut s = spec(Algorithm::ES256, P256_PKCS8);
        s.key_id = KeyIdHeader::X5c(chain.clone());
        let now = P256_CERT_NOT_BEFORE + 10;
        let token = mint(&s, at(now)).unwrap();
        verify(token.expose(), P256_PKCS8, Algorithm::ES256);
        let (header, payload, _) = segments(token.expose());
        assert_eq!(header["x5c"], json!([BASE64.encode(&chain[0])]));
        assert!(header.get("kid").is_none());
        assert_eq!(payload["exp"], now + 300);
        assert!(inspect(token.expose()).unwrap().has_x5c);
    }

    #[test]
    fn x5c_is_checked_against_key_and_clock() {
        let p256 = load_pem_chain(P256_CERT).unwrap();
        let p384 = load_pem_chain(P384_CERT).unwrap();
        let now = at(P256_CERT_NOT_BEFORE + 3600);
        let mut s = spec(Algorithm::ES256, P256_SEC1);

        s.key_id = KeyIdHeader::X5c(p384.clone());
        let msg = mint(&s, now).unwrap_err().to_string();
        assert!(msg.contains("does not hold the signing key"), "{msg}");

        s.key_id = KeyIdHeader::X5c(vec![p384[0].clone(), p256[0].clone()]);
        let msg = mint(&s, now).unwrap_err().to_string();
        assert!(msg.contains("#2 in the chain") && msg.contains("leaf first"), "{msg}");

        s.key_id = KeyIdHeader::X5c(Vec::new());
        assert!(mint(&s, now).unwrap_err().to_string().contains("empty"));

        s.key_id = KeyIdHeader::X5c(vec![b"not a certificate".to_vec()]);
        assert!(mint(&s, now).unwrap_err().to_string().contains("not valid X.509"));

        s.key_id = KeyIdHeader::X5c(p256.clone());
        let msg = mint(&s, at(P256_CERT_NOT_BEFORE - 1)).unwrap_err().to_string();
        assert_eq!(
            msg,
            "x5c certificate chain: certificate #1 (CN=latchkey-unit-p256) is not valid until 2026-11-22T23:06:42Z"
        );
        let msg = mint(&s, at(P256_CERT_NOT_AFTER + 90)).unwrap_err().to_string();
        assert_eq!(
            msg,
            "x5c certificate chain: certificate #1 (CN=latchkey-unit-p256) expired 1m 30s ago \
             (2126-10-29T23:06:42Z); renew it"
        );
        // A token never outlives its certificate.
        let token = mint(&s, at(P256_CERT_NOT_AFTER - 100)).unwrap();
        assert_eq!(inspect(token.expose()).unwrap().expires_at, Some(P256_CERT_NOT_AFTER));
    }

    #[test]
    fn pem_chains() {
        let two = format!("leaf:\n{P256_CERT}\nroot:\n{P384_CERT}{P256_SEC1}");
        let chain = load_pem_chain(&two).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0], pem::parse(P256_CERT).unwrap().contents());
        assert_eq!(chain[1], pem::parse(P384_CERT).unwrap().contents());
        assert!(load_pem_chain(P256_SEC1).unwrap_err().to_string().contains("no -----BEGIN CERTIFICATE"));
        assert!(load_pem_chain("").is_err());
        let junk = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
        assert!(load_pem_chain(junk).unwrap_err().to_string().contains("certificate #1 is not valid X.509"));
        assert!(load_pem_chain(&"A".repeat(MAX_PEM_LEN + 1)).is_err());
    }

    // --- inspect ------------------------------------------------------------------------------

    fn b64(v: &Value) -> String {
        BASE64URL_NOPAD.encode(v.to_string().as_bytes())
    }

    fn token_of(header: &Value, claims: &Value) -> String {
        format!("{}.{}.{}", b64(header), b64(claims), BASE64URL_NOPAD.encode(b"not-a-real-signature"))
    }

    fn hs(claims: Value) -> String {
        token_of(&json!({"alg": "RS256", "typ": "JWT"}), &claims)
    }

    fn malformed(token: &str) -> String {
        match inspect(token) {
            Err(e @ JwtError::Malformed(_)) => e.to_string(),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn inspect_reads_aud_in_both_forms_and_numeric_dates() {
        let c = inspect(&hs(json!({"aud": ["a", "b"], "exp": 1.9e9, "nbf": 12, "iat": 11.5}))).unwrap();
        assert_eq!(c.audience, ["a", "b"]);
        assert!(c.audience_is_list);
        assert_eq!((c.expires_at, c.not_before, c.issued_at), (Some(1_900_000_000), Some(12), Some(11)));
        let c = inspect(&hs(json!({"aud": "a", "iss": null}))).unwrap();
        assert_eq!((c.audience, c.audience_is_list, c.issuer, c.expires_at), (vec!["a".to_owned()], false, None, None));
        let c = inspect(&hs(json!({"exp": 1e300}))).unwrap();
        assert_eq!(c.expires_at, Some(u64::MAX));
        assert!(malformed(&hs(json!({"aud": 5}))).contains("neither a string nor a list"));
        assert!(malformed(&hs(json!({"aud": ["a", 5]}))).contains("non-string item"));
        assert!(malformed(&hs(json!({"exp": "tomorrow"}))).contains("\"exp\" is not a number"));
        assert!(malformed(&hs(json!({"exp": -5}))).contains("\"exp\" is negative"));
        assert!(malformed(&hs(json!({"iss": 7}))).contains("claim field \"iss\" is not a string"));
        let c = inspect(&token_of(&json!({"alg": "ES256", "kid": "K", "x5c": ["AAAA"]}), &json!({}))).unwrap();
        assert_eq!((c.algorithm.as_str(), c.key_id.as_deref(), c.has_x5c), ("ES256", Some("K"), true));
    }

    #[test]
    fn inspect_refuses_malformed_structure() {
        let sig = BASE64URL_NOPAD.encode(b"sig");
        let claims = b64(&json!({"exp": 1}));
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            ("Bearer abc.def.ghi".into(), "starts with \"Bearer \""),
            (format!("{}\n", hs(json!({}))), "whitespace (trim the token) at byte"),
            ("ab+c.def.ghi".into(), "standard base64"),
            ("abc.déf.ghi".into(), "not base64url or '.'"),
            ("abc.def".into(), "2 part(s)"),
            ("abc".into(), "1 part(s)"),
            ("a.b.c.d".into(), "4 part(s)"),
            ("a.b.c.d.e".into(), "encrypted JWE"),
            (format!("{}.{claims}.{sig}", b64(&json!({}))), "no alg"),
            (format!("{}.{claims}.{sig}", b64(&json!({"alg": 1}))), "alg is not a string"),
            (format!("{}.{claims}.{sig}", b64(&json!({"alg": ""}))), "alg is empty"),
            (format!("{}.{claims}.", b64(&json!({"alg": "none"}))), "unsigned (alg none)"),
            (format!("{}.{claims}.", b64(&json!({"alg": "ES256"}))), "signature part is empty"),
            (format!("{}.{claims}.{sig}", b64(&json!(["alg"]))), "header is JSON but not an object"),
            (
                format!("{}.{}.{sig}", b64(&json!({"alg": "ES256"})), b64(&json!(42))),
                "claims part is JSON but not an object",
            ),
            (
                format!("{}.{claims}.{sig}", BASE64URL_NOPAD.encode(b"{\"alg\":")),
                "header is not valid JSON (line 1, column 7)",
            ),
            (format!("A.{claims}.{sig}"), "header is not valid base64url"),
            (format!("{}.{claims}.A", b64(&json!({"alg": "ES256"}))), "signature is not valid base64url"),
            (format!("{}.{claims}=.{sig}", b64(&json!({"alg": "ES256"}))), "misplaced '=' padding"),
            (format!("{}.{claims}.{sig}===", b64(&json!({"alg": "ES256"}))), "misplaced '=' padding"),
            (format!("{}.{claims}.s=ig", b64(&json!({"alg": "ES256"}))), "misplaced '=' padding"),
            (format!("{}.{claims}.{sig}", BASE64URL_NOPAD.encode(&[0xff, 0xfe, 0x7b])), "header is not valid JSON"),
        ];
        for (token, want) in cases {
            let msg = malformed(&token);
            assert!(msg.contains(want), "{token:?}: {msg:?} lacks {want:?}");
        }
        // Padding is tolerated, as Go's decoders tolerate it.
        let padded =
            format!("{}.{}.{}", b64(&json!({"alg":"ES256"})), claims, BASE64.encode(b"sigs").replace('+', "-"));
        assert!(inspect(&padded).is_ok(), "{padded}");
    }

    #[test]
    fn inspect_bounds_sizes_and_nesting() {
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(inspect(&huge), Err(JwtError::TooLarge { len: MAX_TOKEN_LEN + 1 }));
        // Huge segments within the bound: a 60 KiB claims part is fine.
        let big = hs(json!({"exp": 5, "pad": "x".repeat(40_000)}));
        assert!(big.len() < MAX_TOKEN_LEN);
        assert_eq!(inspect(&big).unwrap().expires_at, Some(5));
        // Deep nesting is refused by serde_json's recursion limit, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        let token = format!(
            "{}.{}.c2ln",
            b64(&json!({"alg": "ES256"})),
            BASE64URL_NOPAD.encode(format!("{{\"a\":{deep}}}").as_bytes())
        );
        assert!(token.len() <= MAX_TOKEN_LEN);
        assert!(malformed(&token).contains("claims part is not valid JSON"));
    }

    /// Deterministic xorshift, so the fuzz cases are reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn assert_no_leak(err: &JwtError, secret_part: &str) {
        let shown = format!("{err} {err:?}");
        for window in secret_part.as_bytes().windows(12) {
            let w = std::str::from_utf8(window).unwrap();
            assert!(!shown.contains(w), "message {shown:?} leaks token text {w:?}");
        }
    }

    #[test]
    fn inspect_never_panics_nor_leaks() {
        let token = mint(&spec(Algorithm::ES256, P256_SEC1), at(T0)).unwrap();
        let token = token.expose().as_str();
        let signature = token.rsplit('.').next().unwrap();
        // Every truncation, and every single-byte corruption.
        for i in 0..token.len() {
            if let Err(e) = inspect(&token[..i]) {
                assert_no_leak(&e, signature);
            }
            for b in [b'.', b'=', b' ', b'+', 0u8, b'A', 0x80] {
                let mut bytes = token.as_bytes().to_vec();
                bytes[i] = b;
                let s = String::from_utf8_lossy(&bytes);
                if let Err(e) = inspect(&s) {
                    assert_no_leak(&e, signature);
                }
            }
        }
        // Random strings over an alphabet biased towards the JWT one, and random JSON segments.
        let alphabet: Vec<char> = "ABCDEFabcdef0123456789-_..==+/ \n{}\"é\u{0}".chars().collect();
        let mut rng = Rng(0x5eed_1a7c_4e11_0001);
        for _ in 0..5_000 {
            let len = rng.below(200);
            let s: String = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            let _ = inspect(&s);
        }
        let fragments =
            ["{", "}", "\"alg\"", ":", "\"ES256\"", ",", "\"exp\"", "1e999", "-1", "[", "]", "null", "\"aud\""];
        for _ in 0..5_000 {
            let json: String = (0..rng.below(12)).map(|_| fragments[rng.below(fragments.len())]).collect();
            let seg = BASE64URL_NOPAD.encode(json.as_bytes());
            let t = match rng.below(3) {
                0 => format!("{seg}.{seg}.{}", &signature[..rng.below(signature.len())]),
                1 => format!("{}.{seg}.{signature}", b64(&json!({"alg": "ES256"}))),
                _ => format!("{seg}.{}.{signature}", b64(&json!({"exp": 1}))),
            };
            if let Err(e) = inspect(&t) {
                assert_no_leak(&e, signature);
            }
        }
    }

    // --- check_usable -------------------------------------------------------------------------

    fn claims(exp: Option<u64>, nbf: Option<u64>, aud: &[&str]) -> Claims {
        Claims {
            algorithm: "ES256".into(),
            audience: aud.iter().map(|s| s.to_string()).collect(),
            expires_at: exp,
            not_before: nbf,
            ..Claims::default()
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn usable_tokens_pass() {
        let c = claims(Some(T0 + 600), Some(T0 - 10), &["reg"]);
        check_usable(&c, at(T0), MIN, Some("reg")).unwrap();
        check_usable(&c, at(T0), MIN, None).unwrap();
        // nbf slightly ahead (clock skew) is fine.
        let c = claims(Some(T0 + 600), Some(T0 + 60), &["reg"]);
        check_usable(&c, at(T0), MIN, Some("reg")).unwrap();
        // A list holding the audience passes here; the flag tells callers it is a list.
        let c = claims(Some(T0 + 600), None, &["other", "reg"]);
        check_usable(&c, at(T0), MIN, Some("reg")).unwrap();
    }

    #[test]
    fn expired_token_message() {
        let c = claims(Some(T0), None, &["reg"]);
        let err = check_usable(&c, at(T0 + 150), MIN, Some("reg")).unwrap_err();
        assert_eq!(err, JwtError::Expired { exp: T0, ago: Duration::from_secs(150) });
        assert_eq!(err.to_string(), "token expired 2m 30s ago (exp 2026-11-22T22:00:00Z)");
        // exp == now is expired.
        let err = check_usable(&c, at(T0), Duration::ZERO, None).unwrap_err();
        assert_eq!(err.to_string(), "token expired 0s ago (exp 2026-11-22T22:00:00Z)");
    }

    #[test]
    fn expiring_within_margin_is_refused() {
        let c = claims(Some(T0 + 45), None, &[]);
        let err = check_usable(&c, at(T0), MIN, None).unwrap_err();
        assert_eq!(err, JwtError::ExpiresSoon { exp: T0 + 45, left: Duration::from_secs(45), margin: MIN });
        assert_eq!(
            err.to_string(),
            "token expires in 45s (exp 2026-11-22T22:00:45Z), within the required margin of 1m; \
             it would likely die in use"
        );
        let c = claims(Some(T0 + 60), None, &[]);
        assert!(check_usable(&c, at(T0), MIN, None).is_err(), "exactly the margin left is refused");
        let c = claims(Some(T0 + 61), None, &[]);
        check_usable(&c, at(T0), MIN, None).unwrap();
    }

    #[test]
    fn not_yet_valid_token_message() {
        let c = claims(Some(T0 + 9000), Some(T0 + 7200), &[]);
        let err = check_usable(&c, at(T0), MIN, None).unwrap_err();
        assert_eq!(err, JwtError::NotYetValid { nbf: T0 + 7200, wait: Duration::from_secs(7200) });
        assert_eq!(
            err.to_string(),
            "token is not valid yet: nbf 2026-11-23T00:00:00Z is 2h from now (allowed clock skew 1m); \
             check this machine's clock and the issuer's"
        );
        let c = claims(Some(T0 + 9000), Some(T0 + 61), &[]);
        assert!(matches!(check_usable(&c, at(T0), MIN, None), Err(JwtError::NotYetValid { .. })));
    }

    #[test]
    fn missing_expiry_is_an_error_unless_allowed() {
        let c = claims(None, None, &["reg"]);
        let err = check_usable(&c, at(T0), MIN, Some("reg")).unwrap_err();
        assert_eq!(err, JwtError::MissingExpiry);
        assert!(err.to_string().contains("no exp claim"));
        let lenient = Usability { margin: MIN, expected_audience: Some("reg"), allow_missing_expiry: true };
        check_usable_with(&c, at(T0), &lenient).unwrap();
        // The other checks still apply.
        let c = claims(None, Some(T0 + 7200), &["reg"]);
        assert!(matches!(check_usable_with(&c, at(T0), &lenient), Err(JwtError::NotYetValid { .. })));
        let c = claims(None, None, &["x"]);
        assert!(matches!(check_usable_with(&c, at(T0), &lenient), Err(JwtError::WrongAudience { .. })));
    }

    #[test]
    fn wrong_audience_messages() {
        let fresh = Some(T0 + 600);
        let err = check_usable(&claims(fresh, None, &["other"]), at(T0), MIN, Some("reg")).unwrap_err();
        assert_eq!(err.to_string(), "token audience is \"other\", but the registry expects \"reg\"");
        let err = check_usable(&claims(fresh, None, &["a", "b"]), at(T0), MIN, Some("reg")).unwrap_err();
        assert_eq!(err.to_string(), "token audience is [\"a\", \"b\"], which does not include \"reg\"");
        let err = check_usable(&claims(fresh, None, &[]), at(T0), MIN, Some("reg")).unwrap_err();
        assert_eq!(err.to_string(), "token has no aud claim; the registry expects aud \"reg\"");
        // Audience is reported before expiry: fetching a new token will not fix it.
        let err = check_usable(&claims(Some(T0 - 5), None, &["other"]), at(T0), MIN, Some("reg")).unwrap_err();
        assert!(matches!(err, JwtError::WrongAudience { .. }));
    }

    #[test]
    fn clock_before_epoch_does_not_panic() {
        let c = claims(Some(10), Some(5), &[]);
        check_usable(&c, UNIX_EPOCH - Duration::from_secs(5), Duration::ZERO, None).unwrap();
        assert_eq!(c.time_left(UNIX_EPOCH - Duration::from_secs(5)), Some(Duration::from_secs(10)));
    }

    // --- formatting ---------------------------------------------------------------------------

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(946_684_799), "1999-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_107_587_696), "2100-03-01T12:34:56Z");
        assert_eq!(rfc3339(T0), "2026-11-22T22:00:00Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_800), "unix time 253402300800");
        assert_eq!(rfc3339(u64::MAX), format!("unix time {}", u64::MAX));
    }

    #[test]
    fn human_durations() {
        let h = |s| human_duration(Duration::from_secs(s));
        assert_eq!(h(0), "0s");
        assert_eq!(h(59), "59s");
        assert_eq!(h(60), "1m");
        assert_eq!(h(150), "2m 30s");
        assert_eq!(h(3600), "1h");
        assert_eq!(h(3900 + 59), "1h 5m");
        assert_eq!(h(86_400 * 3 + 7200), "3d 2h");
        assert_eq!(h(u64::MAX), format!("{}d 7h", u64::MAX / 86_400));
    }
}

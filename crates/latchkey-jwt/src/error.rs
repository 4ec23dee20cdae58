//! [`JwtError`]: why a JWT could not be minted, decoded, or used, worded without any token or key
//! material.

use std::fmt;
use std::time::Duration;

use crate::{Algorithm, MAX_TOKEN_LEN, NOT_BEFORE_LEEWAY, human_duration, rfc3339};

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

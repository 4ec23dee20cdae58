//! A value that must never be printed: `Debug` redacts it and the buffer is wiped on drop.

use std::fmt;
use zeroize::Zeroize;

/// Holds a secret (password, token, device secret). Reading it is explicit (`expose`),
/// so a stray `{:?}` in a log or error can never leak it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret itself. Call it only where the value leaves the process on purpose.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let s = Secret::from("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    /// Every type that holds a secret prints it as redacted, however deep it sits.
    #[test]
    fn debug_of_every_secret_holding_type_redacts() {
        const S: &str = "hunter2-secret-value";
        let shown = [
            format!("{:?}", Secret::from(S)),
            format!(
                "{:?}",
                crate::protocol::Credentials {
                    server_url: "ghcr.io".into(),
                    username: "u".into(),
                    secret: Secret::from(S),
                }
            ),
            format!(
                "{:?}",
                crate::store::StoredCredential {
                    server_url: "ghcr.io".into(),
                    username: "u".into(),
                    secret: Secret::from(S),
                }
            ),
            format!(
                "{:?}",
                crate::token_cache::CachedToken {
                    token: S.into(),
                    expires_at: 1,
                    subject: None,
                    audience: vec![],
                    obtained_at: 0,
                }
            ),
            format!("{:?}", crate::source::device::flow::Grant { account: "a".into(), secret: Secret::from(S) }),
            format!(
                "{:#?}",
                crate::jwt::MintSpec {
                    algorithm: crate::jwt::Algorithm::ES256,
                    private_key_pem: Secret::from(S),
                    key_id: crate::jwt::KeyIdHeader::None,
                    issuer: "i".into(),
                    subject: "s".into(),
                    audience: "a".into(),
                    lifetime: std::time::Duration::from_secs(60),
                    not_before_skew: std::time::Duration::ZERO,
                    extra_claims: Default::default(),
                }
            ),
            format!("{:?}", Some(vec![Secret::from(S)])),
        ];
        for text in shown {
            assert!(!text.contains(S) && !text.contains("hunter2"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
    }
}

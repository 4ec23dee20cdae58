//! latchkey: a Docker credential helper for container registries.
//!
//! The binary `docker-credential-latchkey` speaks the docker-credential-helpers protocol
//! ([`latchkey_protocol`]) over pluggable stores ([`latchkey_store`]) and credential sources ([`source`]).

pub mod bazel;
pub mod browser;
pub mod cli;
pub mod config;
pub mod docker_config;
pub mod duration;
pub mod helper;
pub mod manpage;
pub mod paths;
pub mod registry;
pub mod resolver_command;
pub mod source;
pub mod status;
pub mod store;
pub mod token_cache;

/// The companion resolver (`latchkey-resolver`) under the path the README documents,
/// `latchkey::resolver`.
pub use latchkey_resolver as resolver;

/// `docker-credential-latchkey (latchkey) 0.1.0`, the `version` verb's answer.
pub const VERSION_LINE: &str = concat!("docker-credential-latchkey (latchkey) ", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests {
    use latchkey_protocol::Secret;

    /// Every type that holds a secret prints it as redacted, however deep it sits.
    #[test]
    fn debug_of_every_secret_holding_type_redacts() {
        const S: &str = "hunter2-secret-value";
        let shown = [
            format!("{:?}", Secret::from(S)),
            format!(
                "{:?}",
                latchkey_protocol::Credentials {
                    server_url: "ghcr.io".into(),
                    username: "u".into(),
                    secret: Secret::from(S),
                }
            ),
            format!(
                "{:?}",
                latchkey_store::StoredCredential {
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
                latchkey_jwt::MintSpec {
                    algorithm: latchkey_jwt::Algorithm::ES256,
                    private_key_pem: Secret::from(S),
                    key_id: latchkey_jwt::KeyIdHeader::None,
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

//! latchkey: a Docker credential helper for container registries.
//!
//! The binary `docker-credential-latchkey` speaks the docker-credential-helpers protocol
//! ([`protocol`]) over pluggable stores ([`store`]) and credential sources ([`source`]).

pub mod browser;
pub mod cli;
pub mod config;
pub mod docker_config;
pub mod fsutil;
pub mod helper;
pub mod http;
pub mod jwt;
pub mod paths;
pub mod process;
pub mod protocol;
pub mod resolver;
pub mod secret;
pub mod server_url;
pub mod source;
pub mod status;
pub mod store;
pub mod token_cache;

/// `docker-credential-latchkey (latchkey) 0.1.0`, the `version` verb's answer.
pub const VERSION_LINE: &str = concat!("docker-credential-latchkey (latchkey) ", env!("CARGO_PKG_VERSION"));

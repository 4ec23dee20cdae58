//! The docker-credential-helpers protocol, for both sides of the pipe.
//!
//! - [`helper`]: what a credential helper implements ([`Helper`], four methods) and
//!   [`serve`], which speaks the wire protocol byte for byte with docker-credential-helpers.
//! - [`client`]: calling any `docker-credential-*` helper the way docker does, with a
//!   deadline and a typed not-found.
//! - [`auth_files`]: where docker's `config.json` and containers' `auth.json` live and what
//!   they say about credentials (`credHelpers`, `credsStore`, `auths`).
//! - [`server_url`]: [`RegistryKey`], the one normalisation of a server URL.
//! - [`bounded`]: reading input whole, up to a size bound.
//! - [`challenge`]: the one `WWW-Authenticate` challenge parser.
//! - [`server_numbers`]: the rules for lifetimes, intervals and pauses servers send (clamped,
//!   defaulted, never overflowing a clock).
//! - [`Secret`]: a value whose `Debug` redacts it and whose buffer is wiped on drop.
//!
//! No OS services, no HTTP, no async: like cargo's `cargo-credential`, any Rust tool can
//! use it as a correct and fast helper client.

pub mod auth_files;
pub mod bounded;
pub mod challenge;
pub mod client;
pub mod helper;
pub mod process;
pub mod secret;
pub mod server_numbers;
pub mod server_url;

pub use helper::{Credentials, Helper, HelperError, NOT_FOUND, serve};
pub use secret::Secret;
pub use server_url::RegistryKey;

/// The username that says "the Secret is an identity token" (an OAuth2 refresh token);
/// docker maps it to `IdentityToken` and back.
pub const IDENTITY_TOKEN_USERNAME: &str = "<token>";
/// The username that says "send the Secret as `Authorization: Bearer` on every request, with
/// no challenge flow" (rules_oci's static-bearer convention).
pub const STATIC_BEARER_USERNAME: &str = "<static_bearer>";
/// The username that says "the Secret is a bearer JWT to present as `Authorization: Bearer` at
/// the registry's token endpoint, which answers a scoped registry token" (ddtool's convention).
pub const BEARER_USERNAME: &str = "Bearer";
/// The server URL docker passes to helpers for Docker Hub (`registry.IndexServer`).
pub const DOCKER_HUB_SERVER_URL: &str = "https://index.docker.io/v1/";
/// Set by a client that was refused a token: the hex SHA-256 of that token. A helper that
/// cached it replaces it instead of answering it again; other helpers ignore it.
pub const ENV_REJECTED_TOKEN_SHA256: &str = "LATCHKEY_REJECTED_TOKEN_SHA256";

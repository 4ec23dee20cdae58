//! Shared harness for the integration tests that drive the real binary and real peers.
//!
//! Everything a test starts runs with a cleared environment rooted in temp dirs
//! ([`TestEnv`]), under a timeout ([`run`]), and is killed when its guard drops
//! ([`KeyringSession`], [`Registry`]). A system tool that is missing fails the test with
//! the Debian package to install ([`require`]); nothing is skipped silently.

mod env;
mod keyring;
mod oci;
mod protocol;
mod registry;
mod run;
mod tools;

pub use env::*;
pub use keyring::*;
pub use oci::*;
pub use protocol::*;
pub use registry::*;
pub use run::*;
pub use tools::*;

use std::path::PathBuf;
use std::time::Duration;

/// The binary under test.
pub const LATCHKEY: &str = env!("CARGO_BIN_EXE_docker-credential-latchkey");
/// What every docker-credential helper prints when nothing is stored.
pub const NOT_FOUND: &str = "credentials not found in native keychain";
/// Long enough for a debug build on a loaded 2-core machine; short enough that a hung
/// child fails the test instead of hanging CI.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn latchkey() -> PathBuf {
    PathBuf::from(LATCHKEY)
}

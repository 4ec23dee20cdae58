//! Credential sources: where a registry's credentials come from. Each registry's [`Mode`]
//! picks one (`registry::source_for`); they are peers behind [`CredentialSource`],
//! which is everything the protocol and `status` ask of them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::store::LazyStore;
use latchkey_protocol::helper::HelperError;
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;
use latchkey_store::StoredCredential;

pub mod device;
pub mod static_bearer;
pub mod stored;

/// How a registry's credentials are obtained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Whatever `store` saved (docker login, skopeo login): the classic helper.
    #[default]
    Stored,
    /// `<static_bearer>` and a JWT from the registry's `identity` source.
    StaticBearer,
    /// A device secret from `login` (browser, RFC 8628), checked at the token endpoint.
    Device,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Stored => "stored",
            Mode::StaticBearer => "static-bearer",
            Mode::Device => "device",
        }
    }
}

/// An answer to `get`: the username (or a convention such as `<token>`) and the secret.
pub struct Answer {
    pub username: String,
    pub secret: Secret<String>,
}

/// One registry's source. The store is passed in unopened: a source opens it only if it needs it.
pub trait CredentialSource {
    fn mode(&self) -> Mode;

    /// `get`: the credentials; `Err(HelperError::NotFound)` when there are none.
    fn get(&self, store: &mut LazyStore) -> Result<Answer, HelperError>;

    /// `store` (`docker login`): keep `credential`, or refuse where the credentials come from elsewhere.
    fn store(&self, store: &mut LazyStore, credential: &StoredCredential) -> Result<(), HelperError>;

    /// `erase` (`docker logout`).
    fn erase(&self, store: &mut LazyStore) -> Result<(), HelperError>;

    /// What `status` shows for a configured registry; `None` when that is just the store's
    /// listing (the stored source), which `status` shows for every registry anyway.
    fn status(&self, store: &mut LazyStore) -> Option<SourceStatus>;
}

/// `status` for one registry, beyond its name and mode. Never a secret.
#[derive(Default)]
pub struct SourceStatus {
    /// The account (device mode).
    pub username: Option<String>,
    /// Where the credentials come from, in words.
    pub source: Option<String>,
    pub token: Option<TokenStatus>,
    /// Whether the login session behind a device secret is alive.
    pub session: Option<String>,
    /// A problem worth a look (no cached token, not logged in, ...).
    pub note: Option<String>,
}

/// A static bearer's token, by its claims.
#[derive(Serialize)]
pub struct TokenStatus {
    pub subject: Option<String>,
    pub audience: Vec<String>,
    pub expires_at: u64,
    pub expires_in_secs: i64,
    pub cached: bool,
}

/// The refusal of `verb` for a registry whose credentials come from its configured source.
pub fn nothing_to(verb: &str, key: &RegistryKey, mode: Mode, config_path: &Path) -> HelperError {
    HelperError::failed(format_args!(
        "{key} is a {} registry in {}: its credentials come from its configured source, so there is nothing to {verb}",
        mode.as_str(),
        config_path.display()
    ))
}

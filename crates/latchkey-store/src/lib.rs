//! Where stored credentials live. Each backend sits behind [`Store`]; [`open`] picks one.

use std::fmt;

use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;

pub mod auto;
pub mod file;
pub mod keyring;

/// One stored credential. `server_url` is kept as the client first sent it, so `list`
/// answers with the names clients know, while lookups go by [`RegistryKey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    pub server_url: String,
    pub username: String,
    pub secret: Secret<String>,
}

/// A store failure, worded for the user: what failed, where, and what to do.
/// Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// A credential backend: one credential per registry key.
pub trait Store {
    /// Human description for `status` and notices, e.g. `file store at /path`.
    fn describe(&self) -> String;
    fn get(&self, key: &RegistryKey) -> Result<Option<StoredCredential>, StoreError>;
    /// Replaces whatever was stored for `key`.
    fn set(&self, key: &RegistryKey, credential: &StoredCredential) -> Result<(), StoreError>;
    /// Returns whether something was there; deleting nothing is not an error.
    fn delete(&self, key: &RegistryKey) -> Result<bool, StoreError>;
    fn list(&self) -> Result<Vec<(RegistryKey, StoredCredential)>, StoreError>;

    /// For `status`: each backend's own listing when this store spans more than one (`auto`
    /// with the keyring answering: the keyring, then the file store if it exists); `None` for
    /// a single backend, whose listing is [`Store::list`].
    fn backends(&self) -> Option<Vec<BackendListing>> {
        None
    }
}

/// One backend's contents, for `status`.
pub struct BackendListing {
    pub kind: StoreKind,
    pub description: String,
    pub entries: Result<Vec<(RegistryKey, StoredCredential)>, StoreError>,
}

/// Which backend the user asked for (config `store =` or `LATCHKEY_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The OS keyring when it answers, else the file store; with the keyring, what the file
    /// store kept meanwhile is still found, listed and erased.
    #[default]
    Auto,
    Keyring,
    File,
}

impl StoreKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(StoreKind::Auto),
            "keyring" => Some(StoreKind::Keyring),
            "file" => Some(StoreKind::File),
            _ => None,
        }
    }
}

/// The store in use and why it was chosen (for `status` and the fallback notice).
pub struct Opened {
    pub store: Box<dyn Store>,
    pub kind: StoreKind,
    /// Set when `auto` fell back to the file store: the keyring's real failure.
    pub fallback_reason: Option<String>,
}

/// Open the store `kind` names. `auto` probes the keyring and falls back to the file store
/// in `data_dir`, reporting the keyring's own reason. When the keyring answers, `auto` still
/// finds, lists and erases what the file store kept from times it did not ([`auto::AutoStore`]).
pub fn open(kind: StoreKind, data_dir: &std::path::Path) -> Result<Opened, StoreError> {
    let file = || Box::new(file::FileStore::new(data_dir.to_path_buf())) as Box<dyn Store>;
    match kind {
        StoreKind::File => Ok(Opened { store: file(), kind: StoreKind::File, fallback_reason: None }),
        StoreKind::Keyring => {
            let store = keyring::KeyringStore::open().map_err(|reason| {
                StoreError(format!(
                    "the OS keyring is not usable: {reason}. Set store = \"file\" in the config file or LATCHKEY_STORE=file to use the file store"
                ))
            })?;
            Ok(Opened { store: Box::new(store), kind: StoreKind::Keyring, fallback_reason: None })
        }
        StoreKind::Auto => match keyring::KeyringStore::open() {
            Ok(store) => {
                let both = auto::AutoStore::new(Box::new(store), file::FileStore::new(data_dir.to_path_buf()));
                Ok(Opened { store: Box::new(both), kind: StoreKind::Keyring, fallback_reason: None })
            }
            Err(reason) => Ok(Opened { store: file(), kind: StoreKind::File, fallback_reason: Some(reason) }),
        },
    }
}

//! The credential store, opened on first use: a static-bearer `get` never connects to a
//! keyring, and nothing that does not need the store pays for opening it.

use std::path::{Path, PathBuf};

use latchkey_protocol::helper::HelperError;
use latchkey_store::{self as store, Opened, Store, StoreKind};

pub struct LazyStore {
    kind: StoreKind,
    data_dir: PathBuf,
    opened: Option<Opened>,
}

impl LazyStore {
    /// The store `configured` names, unless `LATCHKEY_STORE` overrides it. Opens nothing.
    pub fn new(configured: StoreKind) -> Result<Self, String> {
        let kind = match std::env::var(crate::paths::ENV_STORE) {
            Ok(v) if !v.is_empty() => StoreKind::parse(&v).ok_or_else(|| {
                format!("{}={v:?} is not a store; use auto, keyring or file", crate::paths::ENV_STORE)
            })?,
            _ => configured,
        };
        Ok(LazyStore { kind, data_dir: crate::paths::data_dir(), opened: None })
    }

    /// The store and how it was chosen, opened now if it was not yet.
    pub fn open(&mut self) -> Result<&Opened, HelperError> {
        if self.opened.is_none() {
            let opened = store::open(self.kind, &self.data_dir).map_err(|e| HelperError::Failed(e.0))?;
            if let Some(reason) = &opened.fallback_reason {
                notice_fallback_once(&self.data_dir, reason, &opened.store.describe());
            }
            self.opened = Some(opened);
        }
        Ok(self.opened.as_ref().expect("opened above"))
    }

    /// The store itself, opened now if it was not yet.
    pub fn get(&mut self) -> Result<&dyn Store, HelperError> {
        Ok(self.open()?.store.as_ref())
    }
}

/// Tell the user, on stderr and once per distinct reason, that `auto` fell back to the file
/// store. Docker shows a helper's stderr on every pull, so repeating it would be noise.
fn notice_fallback_once(data_dir: &Path, reason: &str, described: &str) {
    let marker = data_dir.join("store-fallback-notice");
    if std::fs::read_to_string(&marker).is_ok_and(|seen| seen == reason) {
        return;
    }
    eprintln!(
        "latchkey: the OS keyring is not usable ({reason}); using the {described}. Set store = \"file\" in the config to silence this, or fix the keyring and it will be used again."
    );
    if latchkey_fs::ensure_private_dir(data_dir).is_ok() {
        let _ = latchkey_fs::write_atomic(&marker, reason.as_bytes(), 0o600);
    }
}

#[cfg(test)]
impl LazyStore {
    pub fn is_open(&self) -> bool {
        self.opened.is_some()
    }
}

//! latchkey's implementation of the protocol's [`Helper`]: config decides each registry's
//! source; `store`/`erase`/`list` go to the credential store, opened only when needed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{Config, Mode};
use crate::source::device::{DeviceConfig, DeviceSource};
use crate::source::static_bearer::{DEFAULT_MIN_VALIDITY_SECS, StaticBearer};
use crate::source::{CredentialSource, stored::StoredSource};
use latchkey_protocol::helper::{Credentials, Helper, HelperError};
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;
use latchkey_store::{self as store, Opened, Store, StoreKind, StoredCredential};
use std::time::Duration;

pub struct Latchkey {
    config: Config,
    store_kind: StoreKind,
    data_dir: PathBuf,
    store: Option<Opened>,
}

impl Latchkey {
    /// `LATCHKEY_STORE` overrides the config file's `store`.
    pub fn new(config: Config) -> Result<Self, String> {
        let store_kind = match std::env::var(crate::paths::ENV_STORE) {
            Ok(v) if !v.is_empty() => StoreKind::parse(&v).ok_or_else(|| {
                format!("{}={v:?} is not a store; use auto, keyring or file", crate::paths::ENV_STORE)
            })?,
            _ => config.store,
        };
        Ok(Latchkey { config, store_kind, data_dir: crate::paths::data_dir(), store: None })
    }

    /// The store, opened on first use: a static-bearer `get` never connects to a keyring.
    pub fn store(&mut self) -> Result<&Opened, HelperError> {
        if self.store.is_none() {
            let opened = store::open(self.store_kind, &self.data_dir).map_err(|e| HelperError::Failed(e.0))?;
            if let Some(reason) = &opened.fallback_reason {
                notice_fallback_once(&self.data_dir, reason, &opened.store.describe());
            }
            self.store = Some(opened);
        }
        Ok(self.store.as_ref().expect("opened above"))
    }

    fn stored(&mut self) -> Result<&dyn Store, HelperError> {
        Ok(self.store()?.store.as_ref())
    }

    /// The static-bearer source for `key`, if the config gives it that mode.
    pub fn static_bearer<'a>(&'a self, key: &'a RegistryKey) -> Result<StaticBearer<'a>, HelperError> {
        let registry = self.config.registries.get(key);
        match registry.and_then(|r| r.identity.as_ref().map(|i| (r, i))) {
            Some((r, identity)) if r.mode == Mode::StaticBearer => Ok(StaticBearer {
                key,
                identity,
                min_validity: Duration::from_secs(r.min_validity_secs.unwrap_or(DEFAULT_MIN_VALIDITY_SECS)),
                cache_dir: crate::paths::cache_dir(),
            }),
            _ => Err(HelperError::failed(format_args!(
                "{key} is not a static-bearer registry in {}; add [registries.\"{key}\"] with mode = \"static-bearer\" and an [identity] table",
                self.config.path.display()
            ))),
        }
    }

    /// The device-mode config for `key`, if the config gives it that mode.
    pub fn device_config(&self, key: &RegistryKey) -> Result<DeviceConfig, HelperError> {
        let registry = self.config.registry(key);
        match registry.mode {
            Mode::Device => Ok(registry.device.unwrap_or_default()),
            _ => Err(HelperError::failed(format_args!(
                "{key} is not a device-login registry in {}; add [registries.\"{key}\"] with mode = \"device\"",
                self.config.path.display()
            ))),
        }
    }

    fn refuse_unless_stored(&self, key: &RegistryKey, verb: &str) -> Result<(), HelperError> {
        match self.config.registry(key).mode {
            Mode::Stored => Ok(()),
            mode => Err(HelperError::failed(format_args!(
                "{key} is a {} registry in {}: its credentials come from its configured source, so there is nothing to {verb}",
                mode.as_str(),
                self.config.path.display()
            ))),
        }
    }

    pub fn key(server_url: &str) -> Result<RegistryKey, HelperError> {
        RegistryKey::parse(server_url).map_err(|e| HelperError::Failed(e.to_string()))
    }
}

/// Tell the user, on stderr and once per distinct reason, that `auto` fell back to the file
/// store. Docker shows a helper's stderr on every pull, so repeating it would be noise.
fn notice_fallback_once(data_dir: &std::path::Path, reason: &str, described: &str) {
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

impl Helper for Latchkey {
    fn get(&mut self, server_url: &str) -> Result<(String, Secret<String>), HelperError> {
        let key = Self::key(server_url)?;
        let answer = match self.config.registry(&key).mode {
            Mode::Stored => StoredSource { store: self.stored()? }.get(&key)?,
            Mode::StaticBearer => self.static_bearer(&key)?.get(&key)?,
            Mode::Device => {
                let config = self.device_config(&key)?;
                let cache_dir = crate::paths::cache_dir();
                DeviceSource { key: &key, config: &config, store: self.stored()?, cache_dir }.get(&key)?
            }
        };
        Ok((answer.username, answer.secret))
    }

    fn store(&mut self, credentials: Credentials) -> Result<(), HelperError> {
        let key = Self::key(&credentials.server_url)?;
        self.refuse_unless_stored(&key, "store")?;
        let stored = StoredCredential {
            server_url: credentials.server_url,
            username: credentials.username,
            secret: credentials.secret,
        };
        self.stored()?.set(&key, &stored).map_err(|e| HelperError::Failed(e.0))
    }

    fn erase(&mut self, server_url: &str) -> Result<(), HelperError> {
        let key = Self::key(server_url)?;
        if self.config.registry(&key).mode == Mode::StaticBearer {
            // `docker logout`: forget the cached token; the source itself stays configured.
            return self.static_bearer(&key)?.forget().map_err(HelperError::Failed);
        }
        if self.config.registry(&key).mode == Mode::Device {
            // `docker logout`: erase the device secret here (`logout` also revokes it).
            let config = self.device_config(&key)?;
            return crate::source::device::logout(&key, &config, self.stored()?, false).map_err(HelperError::Failed);
        }
        self.stored()?.delete(&key).map(|_| ()).map_err(|e| HelperError::Failed(e.0))
    }

    fn list(&mut self) -> Result<BTreeMap<String, String>, HelperError> {
        let all = self.stored()?.list().map_err(|e| HelperError::Failed(e.0))?;
        Ok(all.into_iter().map(|(_, c)| (c.server_url.clone(), c.username.clone())).collect())
    }
}

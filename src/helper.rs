//! latchkey's implementation of the protocol's [`Helper`]: each verb goes to the registry's
//! source ([`crate::registry::source_for`]); `list` to the store. The store is opened only
//! when a source (or `list`) needs it.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::registry::{key, source_for};
use crate::store::LazyStore;
use latchkey_protocol::helper::{Credentials, Helper, HelperError};
use latchkey_protocol::secret::Secret;
use latchkey_store::StoredCredential;

pub struct Latchkey {
    config: Config,
    store: LazyStore,
}

impl Latchkey {
    /// `LATCHKEY_STORE` overrides the config file's `store`.
    pub fn new(config: Config) -> Result<Self, String> {
        Ok(Latchkey { store: LazyStore::new(config.store)?, config })
    }
}

impl Helper for Latchkey {
    fn get(&mut self, server_url: &str) -> Result<(String, Secret<String>), HelperError> {
        let key = key(server_url)?;
        let answer = source_for(&self.config, &key)?.get(&mut self.store)?;
        Ok((answer.username, answer.secret))
    }

    fn store(&mut self, credentials: Credentials) -> Result<(), HelperError> {
        let key = key(&credentials.server_url)?;
        let credential = StoredCredential {
            server_url: credentials.server_url,
            username: credentials.username,
            secret: credentials.secret,
        };
        source_for(&self.config, &key)?.store(&mut self.store, &credential)
    }

    fn erase(&mut self, server_url: &str) -> Result<(), HelperError> {
        let key = key(server_url)?;
        source_for(&self.config, &key)?.erase(&mut self.store)
    }

    fn list(&mut self) -> Result<BTreeMap<String, String>, HelperError> {
        let all = self.store.get()?.list().map_err(|e| HelperError::Failed(e.0))?;
        Ok(all.into_iter().map(|(_, c)| (c.server_url.clone(), c.username.clone())).collect())
    }
}

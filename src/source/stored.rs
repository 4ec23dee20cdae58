//! The classic helper: answer with what `store` saved.

use super::{Answer, CredentialSource, Mode, SourceStatus};
use crate::store::LazyStore;
use latchkey_protocol::helper::HelperError;
use latchkey_protocol::server_url::RegistryKey;
use latchkey_store::StoredCredential;

pub struct StoredSource<'a> {
    pub key: &'a RegistryKey,
}

impl CredentialSource for StoredSource<'_> {
    fn mode(&self) -> Mode {
        Mode::Stored
    }

    fn get(&self, store: &mut LazyStore) -> Result<Answer, HelperError> {
        match store.get()?.get(self.key).map_err(|e| HelperError::Failed(e.0))? {
            // An empty secret is "nothing stored", as docker-credential-secretservice answers.
            Some(c) if !c.secret.expose().is_empty() => {
                Ok(Answer { username: c.username.clone(), secret: c.secret.clone() })
            }
            _ => Err(HelperError::NotFound),
        }
    }

    fn store(&self, store: &mut LazyStore, credential: &StoredCredential) -> Result<(), HelperError> {
        store.get()?.set(self.key, credential).map_err(|e| HelperError::Failed(e.0))
    }

    fn erase(&self, store: &mut LazyStore) -> Result<(), HelperError> {
        store.get()?.delete(self.key).map(|_| ()).map_err(|e| HelperError::Failed(e.0))
    }

    fn status(&self, _store: &mut LazyStore) -> Option<SourceStatus> {
        None
    }
}

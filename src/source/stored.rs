//! The classic helper: answer with what `store` saved.

use super::{Answer, CredentialSource};
use latchkey_protocol::helper::HelperError;
use latchkey_protocol::server_url::RegistryKey;
use latchkey_store::Store;

pub struct StoredSource<'a> {
    pub store: &'a dyn Store,
}

impl CredentialSource for StoredSource<'_> {
    fn get(&mut self, key: &RegistryKey) -> Result<Answer, HelperError> {
        match self.store.get(key).map_err(|e| HelperError::Failed(e.0))? {
            // An empty secret is "nothing stored", as docker-credential-secretservice answers.
            Some(c) if !c.secret.expose().is_empty() => {
                Ok(Answer { username: c.username.clone(), secret: c.secret.clone() })
            }
            _ => Err(HelperError::NotFound),
        }
    }
}

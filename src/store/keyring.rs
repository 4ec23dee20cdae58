//! The OS keyring through the keyring-core family (placeholder until the backend lands).

use super::{Store, StoreError, StoredCredential};
use crate::server_url::RegistryKey;

pub struct KeyringStore;

impl KeyringStore {
    /// Connect to the platform keyring; `Err` carries the real cause (e.g. no D-Bus session).
    pub fn open() -> Result<Self, String> {
        Err("keyring backend not built yet".into())
    }
}

impl Store for KeyringStore {
    fn describe(&self) -> String {
        "OS keyring".into()
    }
    fn get(&self, _key: &RegistryKey) -> Result<Option<StoredCredential>, StoreError> {
        unimplemented!()
    }
    fn set(&self, _key: &RegistryKey, _credential: &StoredCredential) -> Result<(), StoreError> {
        unimplemented!()
    }
    fn delete(&self, _key: &RegistryKey) -> Result<bool, StoreError> {
        unimplemented!()
    }
    fn list(&self) -> Result<Vec<(RegistryKey, StoredCredential)>, StoreError> {
        unimplemented!()
    }
}

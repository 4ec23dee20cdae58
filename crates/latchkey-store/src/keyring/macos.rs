//! macOS: a generic password in the login keychain per registry, through keyring-core's
//! apple-native store: service `latchkey`, account = the registry key.

use std::collections::HashMap;
use std::sync::Arc;

use apple_native_keyring_store::keychain::Store as KeychainStore;
use keyring_core::api::CredentialStoreApi;
use keyring_core::{Entry, Error};
use zeroize::Zeroizing;

use super::SERVICE;
use super::keyring_core_util::describe;

pub struct Backend {
    store: Arc<KeychainStore>,
}

impl Backend {
    pub fn open() -> Result<Self, String> {
        let store = KeychainStore::new().map_err(|e| format!("cannot open the login keychain: {}", describe(&e)))?;
        let backend = Backend { store };
        // Reading an item that does not exist proves the keychain answers (no keychain, or no
        // access to it from this session, is NoStorageAccess).
        match backend.entry("latchkey-probe")?.get_secret() {
            Ok(_) | Err(Error::NoEntry) => Ok(backend),
            Err(e) => Err(format!("the login keychain is not usable: {}", describe(&e))),
        }
    }

    pub fn describe(&self) -> String {
        "OS keyring (macOS login keychain)".into()
    }

    fn entry(&self, key: &str) -> Result<Entry, String> {
        self.store.build(SERVICE, key, None).map_err(|e| format!("keychain item for {key}: {}", describe(&e)))
    }

    pub fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        match self.entry(key)?.get_secret() {
            Ok(secret) => Ok(Some(Zeroizing::new(secret))),
            Err(Error::NoEntry) => Ok(None),
            Err(e) => Err(format!("cannot read the keychain item for {key}: {}", describe(&e))),
        }
    }

    pub fn set(&self, key: &str, payload: &[u8]) -> Result<(), String> {
        self.entry(key)?
            .set_secret(payload)
            .map_err(|e| format!("cannot write the keychain item for {key}: {}", describe(&e)))
    }

    pub fn delete(&self, key: &str) -> Result<bool, String> {
        match self.entry(key)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(Error::NoEntry) => Ok(false),
            Err(e) => Err(format!("cannot delete the keychain item for {key}: {}", describe(&e))),
        }
    }

    pub fn list(&self) -> Result<super::Listed, String> {
        let spec = HashMap::from([("service", SERVICE)]);
        let entries =
            self.store.search(&spec).map_err(|e| format!("cannot search the login keychain: {}", describe(&e)))?;
        let mut out = Vec::new();
        for entry in entries {
            let Some((service, key)) = entry.get_specifiers() else { continue };
            if service != SERVICE {
                continue;
            }
            if let Some(payload) = self.get(&key)? {
                out.push((key, payload));
            }
        }
        Ok(out)
    }
}

//! `store = "auto"` when the keyring answers: the keyring, plus whatever the file store kept
//! from times it did not (over SSH, in CI, at install time), so no credential is hidden.
//!
//! - `get` asks the keyring; on a miss, the file store, but only if its file exists (one
//!   `stat`, nothing else, when it does not). Credentials are answered where they are, never
//!   moved: a machine where the keyring is reachable only sometimes (a desktop session and
//!   SSH logins, cron) still needs them in the file store when it is not.
//! - `set` goes to the keyring, then removes an older file-store copy of the same key, which
//!   would otherwise answer again whenever the keyring is unavailable.
//! - `delete` removes the key from both.
//! - `list` merges both; on the same key the keyring's entry wins, as it does for `get`.

use latchkey_protocol::server_url::RegistryKey;

use super::file::FileStore;
use super::{BackendListing, Store, StoreError, StoreKind, StoredCredential};

pub struct AutoStore {
    keyring: Box<dyn Store>,
    file: FileStore,
}

impl AutoStore {
    pub fn new(keyring: Box<dyn Store>, file: FileStore) -> Self {
        AutoStore { keyring, file }
    }

    /// Whether the file store has anything to look at. A symlink counts: the file store
    /// then refuses it with its own error, rather than being silently skipped.
    fn file_exists(&self) -> bool {
        std::fs::symlink_metadata(self.file.path()).is_ok()
    }

    fn file_error(&self, what: &str, e: StoreError) -> StoreError {
        StoreError(format!(
            "{what} (with store = \"auto\", credentials saved while the OS keyring was unavailable are kept in the {}): {e}",
            self.file.describe()
        ))
    }
}

impl Store for AutoStore {
    fn describe(&self) -> String {
        let keyring = self.keyring.describe();
        if self.file_exists() {
            format!(
                "{keyring}, and the {} for credentials saved while the keyring was unavailable",
                self.file.describe()
            )
        } else {
            keyring
        }
    }

    fn get(&self, key: &RegistryKey) -> Result<Option<StoredCredential>, StoreError> {
        if let Some(found) = self.keyring.get(key)? {
            return Ok(Some(found));
        }
        if !self.file_exists() {
            return Ok(None);
        }
        self.file.get(key).map_err(|e| self.file_error(&format!("cannot look up {key}"), e))
    }

    fn set(&self, key: &RegistryKey, credential: &StoredCredential) -> Result<(), StoreError> {
        self.keyring.set(key, credential)?;
        if self.file_exists() {
            self.file.delete(key).map_err(|e| {
                self.file_error(
                    &format!(
                        "{key} was saved in the {}, but its older copy could not be removed from the file store, which answers whenever the keyring is unavailable",
                        self.keyring.describe()
                    ),
                    e,
                )
            })?;
        }
        Ok(())
    }

    fn delete(&self, key: &RegistryKey) -> Result<bool, StoreError> {
        // Both, even if the keyring fails: a credential the user asked to erase should
        // not stay in whichever store could be reached.
        let in_keyring = self.keyring.delete(key);
        let in_file = if self.file_exists() {
            self.file.delete(key).map_err(|e| self.file_error(&format!("cannot erase {key}"), e))
        } else {
            Ok(false)
        };
        Ok(in_keyring? | in_file?)
    }

    fn list(&self) -> Result<Vec<(RegistryKey, StoredCredential)>, StoreError> {
        let mut all = self.keyring.list()?;
        if self.file_exists() {
            let file = self.file.list().map_err(|e| self.file_error("cannot list stored credentials", e))?;
            for (key, credential) in file {
                if !all.iter().any(|(k, _)| *k == key) {
                    all.push((key, credential));
                }
            }
        }
        Ok(all)
    }

    fn backends(&self) -> Option<Vec<BackendListing>> {
        let mut listings = vec![BackendListing {
            kind: StoreKind::Keyring,
            description: self.keyring.describe(),
            entries: self.keyring.list(),
        }];
        if self.file_exists() {
            listings.push(BackendListing {
                kind: StoreKind::File,
                description: self.file.describe(),
                entries: self.file.list(),
            });
        }
        Some(listings)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use latchkey_protocol::secret::Secret;

    use super::*;

    /// A keyring stand-in: the real one is exercised by the binary's integration tests.
    #[derive(Default)]
    struct MemoryStore(RefCell<BTreeMap<String, StoredCredential>>);

    impl Store for &'static MemoryStore {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn get(&self, key: &RegistryKey) -> Result<Option<StoredCredential>, StoreError> {
            Ok(self.0.borrow().get(key.as_str()).cloned())
        }
        fn set(&self, key: &RegistryKey, credential: &StoredCredential) -> Result<(), StoreError> {
            self.0.borrow_mut().insert(key.as_str().to_owned(), credential.clone());
            Ok(())
        }
        fn delete(&self, key: &RegistryKey) -> Result<bool, StoreError> {
            Ok(self.0.borrow_mut().remove(key.as_str()).is_some())
        }
        fn list(&self) -> Result<Vec<(RegistryKey, StoredCredential)>, StoreError> {
            Ok(self.0.borrow().iter().map(|(k, c)| (RegistryKey::parse(k).unwrap(), c.clone())).collect())
        }
    }

    fn cred(url: &str, user: &str, secret: &str) -> StoredCredential {
        StoredCredential { server_url: url.into(), username: user.into(), secret: Secret::from(secret) }
    }

    fn key(s: &str) -> RegistryKey {
        RegistryKey::parse(s).unwrap()
    }

    fn setup() -> (tempfile::TempDir, &'static MemoryStore, AutoStore) {
        let tmp = tempfile::tempdir().unwrap();
        let keyring: &'static MemoryStore = Box::leak(Box::default());
        let auto = AutoStore::new(Box::new(keyring), FileStore::new(tmp.path().join("latchkey")));
        (tmp, keyring, auto)
    }

    #[test]
    fn without_a_file_store_it_is_the_keyring() {
        let (_tmp, keyring, auto) = setup();
        assert_eq!(auto.get(&key("ghcr.io")).unwrap(), None);
        auto.set(&key("ghcr.io"), &cred("ghcr.io", "u", "s")).unwrap();
        assert_eq!(keyring.0.borrow().len(), 1);
        assert!(!auto.file_exists(), "nothing creates the file store");
        assert_eq!(auto.describe(), "memory");
        assert_eq!(auto.backends().unwrap().len(), 1);
        assert!(auto.delete(&key("ghcr.io")).unwrap());
        assert!(!auto.file_exists());
    }

    #[test]
    fn file_store_entries_are_found_listed_and_erased() {
        let (_tmp, keyring, auto) = setup();
        auto.file.set(&key("ghcr.io"), &cred("https://ghcr.io", "ci", "from-file")).unwrap();
        auto.file.set(&key("quay.io"), &cred("quay.io", "q", "qs")).unwrap();
        keyring.set(&key("quay.io"), &cred("quay.io", "k", "from-keyring")).unwrap();

        assert_eq!(auto.get(&key("ghcr.io")).unwrap(), Some(cred("https://ghcr.io", "ci", "from-file")));
        // The keyring wins on the same key, for get and list alike.
        assert_eq!(auto.get(&key("quay.io")).unwrap(), Some(cred("quay.io", "k", "from-keyring")));
        let listed: BTreeMap<_, _> =
            auto.list().unwrap().into_iter().map(|(k, c)| (k.as_str().to_owned(), c.username)).collect();
        assert_eq!(listed, BTreeMap::from([("ghcr.io".into(), "ci".into()), ("quay.io".into(), "k".into())]));
        let backends = auto.backends().unwrap();
        assert_eq!(backends.iter().map(|b| b.kind).collect::<Vec<_>>(), [StoreKind::Keyring, StoreKind::File]);
        assert_eq!(backends[1].entries.as_ref().unwrap().len(), 2);
        assert!(auto.describe().contains("file store at"), "{}", auto.describe());

        // Answered in place, never moved.
        assert_eq!(auto.file.list().unwrap().len(), 2);
        assert!(keyring.get(&key("ghcr.io")).unwrap().is_none());

        assert!(auto.delete(&key("quay.io")).unwrap());
        assert_eq!(auto.get(&key("quay.io")).unwrap(), None);
        assert!(auto.file.get(&key("quay.io")).unwrap().is_none());
        assert!(auto.delete(&key("ghcr.io")).unwrap());
        assert_eq!(auto.get(&key("ghcr.io")).unwrap(), None);
        assert!(!auto.delete(&key("ghcr.io")).unwrap());
        assert!(auto.list().unwrap().is_empty());
    }

    #[test]
    fn storing_removes_the_older_file_store_copy() {
        let (_tmp, keyring, auto) = setup();
        auto.file.set(&key("ghcr.io"), &cred("ghcr.io", "old", "old")).unwrap();
        auto.file.set(&key("quay.io"), &cred("quay.io", "q", "qs")).unwrap();
        auto.set(&key("ghcr.io"), &cred("ghcr.io", "new", "new")).unwrap();
        assert_eq!(keyring.get(&key("ghcr.io")).unwrap(), Some(cred("ghcr.io", "new", "new")));
        assert_eq!(auto.file.get(&key("ghcr.io")).unwrap(), None);
        assert_eq!(auto.file.get(&key("quay.io")).unwrap(), Some(cred("quay.io", "q", "qs")), "others are kept");
    }

    #[test]
    fn a_corrupt_file_store_is_named_not_skipped() {
        let (_tmp, keyring, auto) = setup();
        std::fs::create_dir_all(auto.file.path().parent().unwrap()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let dir = auto.file.path().parent().unwrap().to_path_buf();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        std::fs::write(auto.file.path(), b"{not json").unwrap();
        keyring.set(&key("quay.io"), &cred("quay.io", "k", "s")).unwrap();
        // A keyring hit never reads the file store.
        assert!(auto.get(&key("quay.io")).unwrap().is_some());
        let err = auto.get(&key("ghcr.io")).unwrap_err().0;
        assert!(err.contains("corrupt") && err.contains("store = \"auto\""), "{err}");
        // Erase still removes what the keyring holds, and reports the file store's problem.
        assert!(auto.delete(&key("quay.io")).is_err());
        assert!(keyring.get(&key("quay.io")).unwrap().is_none());
        let backends = auto.backends().unwrap();
        assert!(backends[0].entries.is_ok() && backends[1].entries.is_err());
    }
}

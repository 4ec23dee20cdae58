//! The file store: one JSON file, 0600 in a 0700 directory, replaced atomically under an
//! exclusive lock, for machines without a keyring (headless Linux, CI).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, StoredCredential};
use latchkey_fs as fsutil;
use latchkey_protocol::bounded::{self, BoundedReadError};
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;

pub const FILE_NAME: &str = "credentials.json";
const LOCK_NAME: &str = "credentials.lock";
const FORMAT_VERSION: u32 = 1;
/// A store holding thousands of registries is still far below this.
const MAX_FILE_BYTES: u64 = 16 << 20;

pub struct FileStore {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    version: u32,
    credentials: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(rename = "ServerURL")]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

impl Drop for Entry {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

impl FileStore {
    pub fn new(dir: PathBuf) -> Self {
        FileStore { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The store's directory and file must be the user's alone: whoever can write them decides
    /// what `get` answers. The file must not be a symlink (a write would land elsewhere).
    fn check_trusted(&self) -> Result<(), StoreError> {
        use fsutil::trust::{Purpose, check_dir, check_file};
        let path = self.path();
        check_dir(&self.dir, Purpose::Store).map_err(|e| StoreError(e.to_string()))?;
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(StoreError(format!(
                "refusing to use the credential store {}: it is a symbolic link, and latchkey never writes credentials through one. Fix: move it aside (`mv {} {}.bad`)",
                path.display(),
                path.display(),
                path.display()
            )));
        }
        check_file(&path, Purpose::Store).map_err(|e| StoreError(e.to_string()))
    }

    /// Read the whole file. Readers take no lock: writers replace the file by rename, so a
    /// reader sees either the old or the new content, both complete.
    fn load(&self) -> Result<FileFormat, StoreError> {
        let path = self.path();
        self.check_trusted()?;
        let bytes = match read_bounded(&path) {
            Ok(b) => b,
            // Windows says "not found" (Unix: "not a directory") when the directory is a file.
            Err(e) if e.kind() == io::ErrorKind::NotFound && fs::metadata(&self.dir).is_ok_and(|m| !m.is_dir()) => {
                return Err(StoreError(format!(
                    "cannot read the credential store: {} is not a directory",
                    self.dir.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(FileFormat { version: FORMAT_VERSION, credentials: BTreeMap::new() });
            }
            Err(e) => {
                return Err(StoreError(format!(
                    "cannot read the credential store file {}: {e}; check its owner and permissions (it should be 0600 and yours)",
                    path.display()
                )));
            }
        };
        let parsed: FileFormat = serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, &json_error(&e)))?;
        if parsed.version != FORMAT_VERSION {
            return Err(corrupt(
                &path,
                &format!(
                    "unsupported format version {} (this latchkey reads version {FORMAT_VERSION})",
                    parsed.version
                ),
            ));
        }
        for key in parsed.credentials.keys() {
            if RegistryKey::parse(key).map(|k| k.as_str() != key).unwrap_or(true) {
                return Err(corrupt(&path, &format!("entry {key:?} is not a normalised registry key")));
            }
        }
        Ok(parsed)
    }

    /// Read-modify-write under the store's exclusive lock.
    fn update<T>(&self, change: impl FnOnce(&mut FileFormat) -> T) -> Result<T, StoreError> {
        let path = self.path();
        let io_err = |what: &str, e: io::Error| {
            StoreError(format!("cannot {what} the credential store in {}: {e}", self.dir.display()))
        };
        fsutil::ensure_private_dir(&self.dir).map_err(|e| io_err("create", e))?;
        self.check_trusted()?;
        let _lock = fsutil::lock_exclusive(&self.dir.join(LOCK_NAME)).map_err(|e| io_err("lock", e))?;
        let mut contents = self.load()?;
        let result = change(&mut contents);
        let mut json = serde_json::to_vec_pretty(&contents).expect("store contents always serialise");
        json.push(b'\n');
        let written = fsutil::write_atomic(&path, &json, 0o600);
        zeroize::Zeroize::zeroize(&mut json);
        written.map_err(|e| io_err("write", e))?;
        Ok(result)
    }
}

fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let file = fs::File::open(path)?;
    bounded::read_bounded(file, MAX_FILE_BYTES).map_err(|e| match e {
        BoundedReadError::TooLarge { .. } => {
            io::Error::other(format!("file is larger than {} MiB", MAX_FILE_BYTES >> 20))
        }
        BoundedReadError::Io(e) => e,
    })
}

/// serde_json's messages quote the offending value (`invalid type: string "..."`), which in
/// this file may be a secret: say what is wrong and where, never the value.
fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "not valid JSON",
        Category::Eof => "truncated JSON",
        Category::Data => "JSON that is not in the store's format",
    };
    format!("{what} at line {}, column {}", e.line(), e.column())
}

fn corrupt(path: &Path, why: &str) -> StoreError {
    StoreError(format!(
        "the credential store file {} is corrupt ({why}); latchkey will not overwrite it. \
         Move it aside (mv {0} {0}.bad) to start with an empty store, or restore it from a backup",
        path.display()
    ))
}

impl Store for FileStore {
    fn describe(&self) -> String {
        format!("file store at {}", self.path().display())
    }

    fn get(&self, key: &RegistryKey) -> Result<Option<StoredCredential>, StoreError> {
        let contents = self.load()?;
        Ok(contents.credentials.get(key.as_str()).map(Entry::to_credential))
    }

    fn set(&self, key: &RegistryKey, credential: &StoredCredential) -> Result<(), StoreError> {
        let entry = Entry {
            server_url: credential.server_url.clone(),
            username: credential.username.clone(),
            secret: credential.secret.expose().clone(),
        };
        self.update(|c| {
            c.credentials.insert(key.as_str().to_owned(), entry);
        })
    }

    fn delete(&self, key: &RegistryKey) -> Result<bool, StoreError> {
        // Nothing stored means nothing to lock or rewrite.
        if !self.load()?.credentials.contains_key(key.as_str()) {
            return Ok(false);
        }
        self.update(|c| c.credentials.remove(key.as_str()).is_some())
    }

    fn list(&self) -> Result<Vec<(RegistryKey, StoredCredential)>, StoreError> {
        let contents = self.load()?;
        Ok(contents
            .credentials
            .iter()
            .filter_map(|(k, e)| Some((RegistryKey::parse(k).ok()?, e.to_credential())))
            .collect())
    }
}

impl Entry {
    fn to_credential(&self) -> StoredCredential {
        StoredCredential {
            server_url: self.server_url.clone(),
            username: self.username.clone(),
            secret: Secret::new(self.secret.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(u: &str, s: &str) -> StoredCredential {
        StoredCredential { server_url: "https://ghcr.io".into(), username: u.into(), secret: Secret::from(s) }
    }

    #[test]
    fn round_trip_and_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("latchkey");
        let store = FileStore::new(dir.clone());
        let key = RegistryKey::parse("ghcr.io").unwrap();
        assert_eq!(store.get(&key).unwrap(), None);
        store.set(&key, &cred("u", "s")).unwrap();
        store.set(&key, &cred("u2", "s2")).unwrap();
        assert_eq!(store.get(&key).unwrap(), Some(cred("u2", "s2")));
        assert_eq!(store.list().unwrap().len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
            assert_eq!(fs::metadata(store.path()).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(store.delete(&key).unwrap());
        assert!(!store.delete(&key).unwrap());
        assert_eq!(store.get(&key).unwrap(), None);
    }

    #[test]
    fn corrupt_file_is_an_error_and_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileStore::new(tmp.path().to_path_buf());
        fs::write(store.path(), b"{not json").unwrap();
        let key = RegistryKey::parse("ghcr.io").unwrap();
        let err = store.get(&key).unwrap_err().0;
        assert!(err.contains("corrupt") && err.contains(&store.path().display().to_string()), "{err}");
        assert!(store.set(&key, &cred("u", "s")).is_err());
        assert_eq!(fs::read(store.path()).unwrap(), b"{not json");
    }
}

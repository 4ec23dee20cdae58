//! Windows: generic credentials in Credential Manager, through keyring-core's
//! windows-native store. The credential for a registry is named `latchkey:<registry key>`.
//!
//! Credential Manager holds at most 2,560 bytes a credential, so a larger payload is spread
//! over several credentials (see `chunks.rs`): the main one names the others, which are
//! written before it and deleted after it, so a reader never sees half an overwrite.
//! Writers hold a lock file (see [`Backend::writer_lock`]); readers retry (see [`Backend::get`]).

use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::api::CredentialStoreApi;
use keyring_core::{Entry, Error};
use windows_native_keyring_store::Store as CredStore;
use zeroize::Zeroizing;

use super::SERVICE;
use super::chunks;
use super::keyring_core_util::describe;

/// CRED_MAX_CREDENTIAL_BLOB_SIZE.
const MAX_BLOB: usize = 5 * 512;
/// How long a writer waits for another one (a 1 MiB secret is ~410 credentials).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// A reader that keeps losing the race to writers gives up after this many reads.
const MAX_READ_ATTEMPTS: u32 = 20;

/// A generation for a credential that was not chunked before: from the clock and the PID.
fn fresh_generation() -> u32 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (now.subsec_nanos() ^ (now.as_secs() as u32).rotate_left(16) ^ std::process::id().rotate_left(8)) & 0x7fff_ffff
}

pub struct Backend {
    store: Arc<CredStore>,
}

fn main_name(key: &str) -> String {
    format!("{SERVICE}:{key}")
}

impl Backend {
    pub fn open() -> Result<Self, String> {
        let store = CredStore::new().map_err(|e| format!("cannot open Credential Manager: {}", describe(&e)))?;
        let backend = Backend { store };
        // A read of a credential that does not exist proves Credential Manager answers (it
        // does not in some service logon sessions: ERROR_NO_SUCH_LOGON_SESSION).
        match backend.read(&main_name("latchkey-probe")) {
            Ok(_) => Ok(backend),
            Err(e) => Err(format!("Credential Manager is not usable: {e}")),
        }
    }

    pub fn describe(&self) -> String {
        "OS keyring (Windows Credential Manager)".into()
    }

    fn entry(&self, name: &str) -> Result<Entry, String> {
        // Local persistence, as docker-credential-wincred: this machine, never roaming.
        let modifiers = HashMap::from([("target", name), ("persistence", "Local")]);
        self.store.build(SERVICE, name, Some(&modifiers)).map_err(|e| format!("credential {name}: {}", describe(&e)))
    }

    fn read(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        match self.entry(name)?.get_secret() {
            Ok(blob) => Ok(Some(Zeroizing::new(blob))),
            Err(Error::NoEntry) => Ok(None),
            Err(e) => Err(format!("cannot read credential {name}: {}", describe(&e))),
        }
    }

    fn write(&self, name: &str, blob: &[u8]) -> Result<(), String> {
        self.entry(name)?.set_secret(blob).map_err(|e| format!("cannot write credential {name}: {}", describe(&e)))
    }

    fn remove(&self, name: &str) -> Result<bool, String> {
        match self.entry(name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(Error::NoEntry) => Ok(false),
            Err(e) => Err(format!("cannot delete credential {name}: {}", describe(&e))),
        }
    }

    /// Delete the parts (not the main credential) that `main_blob`'s header names.
    fn remove_parts(&self, main: &str, main_blob: &[u8]) -> Result<(), String> {
        if let Ok(Some(h)) = chunks::header(main_blob) {
            for i in 1..h.count {
                self.remove(&chunks::part_name(main, h.generation, i))?;
            }
        }
        Ok(())
    }

    /// Writers (store, erase) of a chunked credential take turns: two interleaved writers
    /// would write the same generation's parts. The lock is a file in the user's local
    /// application data (Credential Manager is the user's, whatever LATCHKEY_DATA_DIR says),
    /// released by Windows when a writer dies.
    fn writer_lock(&self) -> Result<std::fs::File, String> {
        let dir = std::env::var_os("LOCALAPPDATA")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join("latchkey");
        let path = dir.join("credential-manager.lock");
        latchkey_fs::ensure_private_dir(&dir)
            .and_then(|()| latchkey_fs::lock_exclusive_within(&path, LOCK_WAIT))
            .map_err(|e| format!("cannot lock {}: {e}", path.display()))
    }

    /// Readers take no lock. A chunked main credential names its generation's parts, which a
    /// writer removes only after switching the main credential to a new generation; a part
    /// missing while the main credential changed means an overwrite or erase went by, and
    /// the reader starts again. So a reader sees one whole secret or none.
    pub fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        let main = main_name(key);
        let corrupt = |why: String| {
            format!(
                "the credential {main} is corrupt ({why}); remove it with: echo {key} | docker-credential-latchkey erase"
            )
        };
        let mut attempt = 0;
        'read: loop {
            attempt += 1;
            let Some(blob) = self.read(&main)? else { return Ok(None) };
            let Some(h) = chunks::header(&blob).map_err(corrupt)? else { return Ok(Some(blob)) };
            let mut parts = Vec::with_capacity(h.count - 1);
            for i in 1..h.count {
                let name = chunks::part_name(&main, h.generation, i);
                // A part being deleted can also fail to read (Wine: ERROR_KEY_DELETED).
                let why = match self.read(&name) {
                    Ok(Some(part)) => {
                        parts.push(part);
                        continue;
                    }
                    Ok(None) => corrupt(format!("its part {name} is missing")),
                    Err(e) => e,
                };
                match self.read(&main)? {
                    None => return Ok(None),
                    Some(now) if now != blob && attempt < MAX_READ_ATTEMPTS => continue 'read,
                    Some(_) => return Err(why),
                }
            }
            return chunks::join(&blob, &parts).map(Some).map_err(corrupt);
        }
    }

    pub fn set(&self, key: &str, payload: &[u8]) -> Result<(), String> {
        let main = main_name(key);
        let _lock = self.writer_lock()?;
        let old = self.read(&main)?;
        let old_generation = old.as_deref().and_then(|b| chunks::header(b).ok().flatten()).map(|h| h.generation);
        // A new chunked credential starts at an unpredictable generation, so a reader still
        // holding an older main credential of generation 0 never joins it with new parts.
        let generation = old_generation.map_or_else(fresh_generation, |g| g.wrapping_add(1));
        let blobs = chunks::split(payload, MAX_BLOB, generation);
        // Parts first, then the main credential (the switch-over), then the old parts.
        for (i, blob) in blobs.iter().enumerate().skip(1) {
            self.write(&chunks::part_name(&main, generation, i), blob)?;
        }
        self.write(&main, &blobs[0])?;
        if let Some(old) = old {
            self.remove_parts(&main, &old)?;
        }
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<bool, String> {
        let main = main_name(key);
        let _lock = self.writer_lock()?;
        let Some(old) = self.read(&main)? else { return Ok(false) };
        let existed = self.remove(&main)?;
        self.remove_parts(&main, &old)?;
        Ok(existed)
    }

    pub fn list(&self) -> Result<super::Listed, String> {
        let prefix = format!("{SERVICE}:");
        // Main credentials only: part names contain '#', which no registry key does.
        let spec = HashMap::from([("pattern", "^latchkey:[^#]+$")]);
        let entries =
            self.store.search(&spec).map_err(|e| format!("cannot search Credential Manager: {}", describe(&e)))?;
        let mut out = Vec::new();
        for entry in entries {
            let Ok(attrs) = entry.get_attributes() else { continue };
            let Some(key) = attrs.get("target_name").and_then(|t| t.strip_prefix(&prefix)) else { continue };
            if let Some(payload) = self.get(key)? {
                out.push((key.to_owned(), payload));
            }
        }
        Ok(out)
    }
}

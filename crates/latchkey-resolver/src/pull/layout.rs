//! Writing an OCI image layout.
//!
//! - One pull at a time per directory: the directory itself is locked (`flock`) while a pull
//!   writes into it, so one run can clean what an earlier one left without touching a running
//!   one's files.
//! - `oci-layout` is written first, so a pull that fails or is interrupted leaves a directory the
//!   next pull into the same place accepts. A directory without `oci-layout` is accepted only
//!   when empty or holding nothing but what latchkey leaves (`blobs/sha256/`, its temp
//!   directories).
//! - Temp files (blobs being downloaded, manifests waiting for their blobs) live in
//!   `.latchkey-partial/` next to `blobs/`, never in it; it is removed when the pull ends, and a
//!   left-over one (`kill -9`, power loss) is removed by the next pull.
//! - `blobs` and `blobs/<alg>` must be real directories (a symlink is refused); a blob already
//!   there is trusted only after it hashes to its name, else it is replaced.
//! - `index.json` names a reference by tag (replacing its previous entry) and is written last.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::digest::Hasher;
use super::manifest::OCI_INDEX;
use super::platform::PlatformSpec;
use crate::client::{ErrorKind, RegistryError};
use crate::reference::Reference;

/// The annotation naming a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd's `ctr import` reads for the image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Where a pull keeps its temp files, next to `blobs/`.
pub(super) const PARTIAL_DIR: &str = ".latchkey-partial";
/// Temp directories of earlier latchkey versions (`.latchkey-tmp-XXXXXX`), cleaned like it.
const LEGACY_TEMP_PREFIX: &str = ".latchkey-tmp-";
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout being written (locked until dropped).
pub(super) struct Layout {
    root: PathBuf,
    partial: PathBuf,
    /// Held for the lock; `None` where directories cannot be locked.
    _lock: Option<File>,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> RegistryError {
    RegistryError::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

fn refuse(root: &Path, why: String) -> RegistryError {
    RegistryError::new(ErrorKind::Io, format!("{}: {why}; refusing to write into it", root.display()))
}

/// `path` as a real directory: created if missing; a symlink or a file there is refused.
fn real_dir(root: &Path, path: &Path) -> Result<(), RegistryError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(refuse(
            root,
            format!("{} is a symlink (blobs must be real directories inside the layout)", path.display()),
        )),
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(refuse(root, format!("{} is not a directory", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => real_dir(root, path),
            Err(e) => Err(io_error("cannot create", path, e)),
        },
        Err(e) => Err(io_error("cannot read", path, e)),
    }
}

/// Is `name` (an entry of the layout's root) something a latchkey pull leaves behind?
fn is_ours(root: &Path, name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else { return false };
    if name == PARTIAL_DIR || name.starts_with(LEGACY_TEMP_PREFIX) {
        return true;
    }
    // blobs/ holding at most sha256/ (whose files are verified before they are trusted).
    name == "blobs"
        && std::fs::symlink_metadata(root.join("blobs")).is_ok_and(|m| m.is_dir())
        && std::fs::read_dir(root.join("blobs"))
            .is_ok_and(|entries| entries.flatten().all(|e| e.file_name() == "sha256"))
}

/// Lock the directory `root` for this process (released when the handle closes, also on
/// `kill -9`).
fn lock(root: &Path) -> Result<Option<File>, RegistryError> {
    #[cfg(unix)]
    {
        let dir = File::open(root).map_err(|e| io_error("cannot open", root, e))?;
        match dir.try_lock() {
            Ok(()) => Ok(Some(dir)),
            Err(std::fs::TryLockError::WouldBlock) => Err(RegistryError::new(
                ErrorKind::Io,
                format!("another pull is writing into {}; wait for it to finish", root.display()),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(io_error("cannot lock", root, e)),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = root;
        Ok(None)
    }
}

impl Layout {
    pub(super) fn open(root: &Path) -> Result<Layout, RegistryError> {
        std::fs::create_dir_all(root).map_err(|e| io_error("cannot create", root, e))?;
        let lock = lock(root)?;
        let marker = root.join("oci-layout");
        match std::fs::read(&marker) {
            Ok(text) => {
                let v: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
                if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
                    return Err(refuse(root, "not an OCI image layout version 1.0.0".into()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let entries = std::fs::read_dir(root).map_err(|e| io_error("cannot read", root, e))?;
                for entry in entries {
                    let entry = entry.map_err(|e| io_error("cannot read", root, e))?;
                    if !is_ours(root, &entry.file_name()) {
                        return Err(refuse(
                            root,
                            format!(
                                "neither empty nor an OCI image layout (no oci-layout file, and it holds {:?})",
                                entry.file_name()
                            ),
                        ));
                    }
                }
            }
            Err(e) => return Err(io_error("cannot read", &marker, e)),
        }
        let blobs = root.join("blobs");
        real_dir(root, &blobs)?;
        real_dir(root, &blobs.join("sha256"))?;
        // What an earlier pull left (kill -9): nobody else is writing here, we hold the lock.
        let entries = std::fs::read_dir(root).map_err(|e| io_error("cannot read", root, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == PARTIAL_DIR || name.starts_with(LEGACY_TEMP_PREFIX) {
                remove_any(&entry.path())?;
            }
        }
        let partial = root.join(PARTIAL_DIR);
        std::fs::create_dir(&partial).map_err(|e| io_error("cannot create", &partial, e))?;
        // Written first: whatever happens next, the next pull recognises the directory.
        if !marker.exists() {
            latchkey_fs::write_atomic(&marker, OCI_LAYOUT, 0o644).map_err(|e| io_error("cannot write", &marker, e))?;
        }
        Ok(Layout { root: root.to_path_buf(), partial, _lock: lock })
    }

    pub(super) fn blob_path(&self, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').expect("validated digest");
        self.root.join("blobs").join(alg).join(hex)
    }

    pub(super) fn temp_file(&self) -> Result<tempfile::NamedTempFile, RegistryError> {
        tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.partial)
            .map_err(|e| io_error("cannot create a temp file in", &self.partial, e))
    }

    /// Is `digest` already in `blobs/`, whole and hashing to its name? A file that is not (a
    /// corrupt or truncated blob, a symlink) is removed so it is fetched again. Hashing runs on
    /// a blocking thread; `advanced` hears of every chunk read.
    pub(super) async fn verified_present(
        &self,
        digest: &str,
        size: u64,
        advanced: impl Fn(u64) + Send + 'static,
    ) -> Result<bool, RegistryError> {
        let target = self.blob_path(digest);
        let metadata = match std::fs::symlink_metadata(&target) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_error("cannot read", &target, e)),
        };
        if metadata.is_dir() {
            return Err(refuse(&self.root, format!("{} is a directory", target.display())));
        }
        if metadata.is_file() && metadata.len() == size {
            let (path, digest) = (target.clone(), digest.to_owned());
            let hashed = tokio::task::spawn_blocking(move || hash_file(&path, &digest, &advanced))
                .await
                .map_err(|_| RegistryError::new(ErrorKind::Io, format!("hashing {} stopped", target.display())))?
                .map_err(|e| io_error("cannot read", &target, e))?;
            if hashed {
                return Ok(true);
            }
        }
        std::fs::remove_file(&target).map_err(|e| io_error("cannot remove a damaged blob", &target, e))?;
        Ok(false)
    }

    pub(super) fn install(&self, temp: tempfile::NamedTempFile, digest: &str) -> Result<(), RegistryError> {
        let target = self.blob_path(digest);
        if let Some(dir) = target.parent() {
            real_dir(&self.root, dir)?;
        }
        set_mode(temp.as_file(), 0o644);
        temp.persist(&target).map_err(|e| io_error("cannot move a blob into", &target, e.error))?;
        Ok(())
    }

    /// Keep verified content (a manifest) in the temp directory until [`Layout::commit`]
    /// moves it into `blobs/`; so only its descriptor need stay in memory.
    pub(super) fn stage(&self, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let path = self.staged_path(digest);
        let mut file = File::create(&path).map_err(|e| io_error("cannot create", &path, e))?;
        file.write_all(bytes).map_err(|e| io_error("cannot write", &path, e))?;
        set_mode(&file, 0o644);
        Ok(())
    }

    /// Move a staged manifest into `blobs/` (replacing whatever is there: these bytes are verified).
    pub(super) fn commit(&self, digest: &str) -> Result<(), RegistryError> {
        let (staged, target) = (self.staged_path(digest), self.blob_path(digest));
        if let Some(dir) = target.parent() {
            real_dir(&self.root, dir)?;
        }
        std::fs::rename(&staged, &target).map_err(|e| io_error("cannot move a manifest into", &target, e))
    }

    fn staged_path(&self, digest: &str) -> PathBuf {
        self.partial.join(format!("manifest-{}", digest.replace(':', "-")))
    }

    /// Add (or replace) this reference's entry in index.json, and write oci-layout.
    pub(super) fn name(
        &self,
        reference: &Reference,
        digest: &str,
        media_type: &str,
        size: u64,
        platform: Option<&PlatformSpec>,
    ) -> Result<(), RegistryError> {
        let index_path = self.root.join("index.json");
        let mut index: serde_json::Value = match std::fs::read(&index_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                RegistryError::new(ErrorKind::Io, format!("{} is not valid JSON: {e}", index_path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
            }
            Err(e) => return Err(io_error("cannot read", &index_path, e)),
        };
        let mut annotations = serde_json::Map::new();
        annotations.insert(CONTAINERD_NAME.into(), reference.to_string().into());
        if let Some(tag) = &reference.tag {
            annotations.insert(REF_NAME.into(), tag.clone().into());
        }
        let mut descriptor = serde_json::json!({"mediaType": media_type, "digest": digest, "size": size});
        if let Some(p) = platform {
            let mut platform = serde_json::json!({"architecture": p.architecture, "os": p.os});
            if let Some(v) = &p.variant {
                platform["variant"] = v.clone().into();
            }
            descriptor["platform"] = platform;
        }
        descriptor["annotations"] = annotations.into();
        let manifests = index.get_mut("manifests").and_then(|m| m.as_array_mut()).ok_or_else(|| {
            RegistryError::new(ErrorKind::Io, format!("{} has no manifests list", index_path.display()))
        })?;
        let ref_name = reference.tag.as_deref();
        manifests.retain(|m| {
            let name = m.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1"))).and_then(|v| v.as_str());
            match ref_name {
                Some(tag) => name != Some(tag),
                None => !(name.is_none() && m.get("digest").and_then(|d| d.as_str()) == Some(digest)),
            }
        });
        manifests.push(descriptor);
        let layout_marker = self.root.join("oci-layout");
        if !layout_marker.exists() {
            latchkey_fs::write_atomic(&layout_marker, OCI_LAYOUT, 0o644)
                .map_err(|e| io_error("cannot write", &layout_marker, e))?;
        }
        let text = serde_json::to_vec(&index).expect("JSON serialises");
        latchkey_fs::write_atomic(&index_path, &text, 0o644).map_err(|e| io_error("cannot write", &index_path, e))
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        // Before the lock goes (it is a field, dropped after this).
        let _ = std::fs::remove_dir_all(&self.partial);
    }
}

/// Remove a file, symlink or directory tree (never following a symlink).
fn remove_any(path: &Path) -> Result<(), RegistryError> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| io_error("cannot remove what an earlier pull left:", path, e))
}

/// Does the file at `path` hash to `digest`?
fn hash_file(path: &Path, digest: &str, advanced: &dyn Fn(u64)) -> std::io::Result<bool> {
    let algorithm = digest.split_once(':').map_or("sha256", |(a, _)| a);
    let mut hasher = Hasher::new(algorithm);
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 256 << 10];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        advanced(n as u64);
    }
    Ok(hasher.finish() == digest)
}

fn set_mode(file: &File, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (file, mode);
}

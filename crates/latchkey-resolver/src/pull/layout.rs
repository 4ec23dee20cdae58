//! Writing an OCI image layout: refusing a directory that is neither empty nor a layout,
//! temp files next to `blobs/` (never in it, removed with the layout), blobs moved in whole,
//! and `index.json` naming a reference by tag (replacing its previous entry), written last.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::manifest::OCI_INDEX;
use super::platform::PlatformSpec;
use crate::client::{ErrorKind, RegistryError};
use crate::reference::Reference;

/// The annotation naming a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd's `ctr import` reads for the image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// An OCI image layout being written.
pub(super) struct Layout {
    root: PathBuf,
    temp: Option<tempfile::TempDir>,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> RegistryError {
    RegistryError::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

impl Layout {
    pub(super) fn open(root: &Path) -> Result<Layout, RegistryError> {
        std::fs::create_dir_all(root).map_err(|e| io_error("cannot create", root, e))?;
        let marker = root.join("oci-layout");
        match std::fs::read(&marker) {
            Ok(text) => {
                let v: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
                if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
                    return Err(RegistryError::new(
                        ErrorKind::Io,
                        format!(
                            "{} is not an OCI image layout version 1.0.0; refusing to write into it",
                            root.display()
                        ),
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut entries = std::fs::read_dir(root).map_err(|e| io_error("cannot read", root, e))?;
                if entries.next().is_some() {
                    return Err(RegistryError::new(
                        ErrorKind::Io,
                        format!(
                            "{} is neither empty nor an OCI image layout (no oci-layout file); refusing to write into it",
                            root.display()
                        ),
                    ));
                }
            }
            Err(e) => return Err(io_error("cannot read", &marker, e)),
        }
        let blobs = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| io_error("cannot create", &blobs, e))?;
        // Temp files live next to blobs/, never in it, and go away with this directory.
        let temp = tempfile::Builder::new()
            .prefix(".latchkey-tmp-")
            .tempdir_in(root)
            .map_err(|e| io_error("cannot create a temp dir in", root, e))?;
        Ok(Layout { root: root.to_path_buf(), temp: Some(temp) })
    }

    pub(super) fn blob_path(&self, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').expect("validated digest");
        self.root.join("blobs").join(alg).join(hex)
    }

    pub(super) fn temp_file(&self) -> Result<tempfile::NamedTempFile, RegistryError> {
        let dir = self.temp.as_ref().expect("open until finish").path();
        tempfile::NamedTempFile::new_in(dir).map_err(|e| io_error("cannot create a temp file in", dir, e))
    }

    pub(super) fn install(&self, temp: tempfile::NamedTempFile, digest: &str) -> Result<(), RegistryError> {
        let target = self.blob_path(digest);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
        }
        set_mode(temp.as_file(), 0o644);
        temp.persist(&target).map_err(|e| io_error("cannot move a blob into", &target, e.error))?;
        Ok(())
    }

    /// Write verified content (manifests) as a blob.
    pub(super) fn put_verified(&self, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let target = self.blob_path(digest);
        if std::fs::metadata(&target).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(());
        }
        let mut temp = self.temp_file()?;
        temp.write_all(bytes).map_err(|e| io_error("cannot write", temp.path(), e))?;
        self.install(temp, digest)
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
            latchkey_fs::write_atomic(&layout_marker, br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644)
                .map_err(|e| io_error("cannot write", &layout_marker, e))?;
        }
        let text = serde_json::to_vec(&index).expect("JSON serialises");
        latchkey_fs::write_atomic(&index_path, &text, 0o644).map_err(|e| io_error("cannot write", &index_path, e))
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        if let Some(t) = self.temp.take() {
            let _ = t.close();
        }
    }
}

fn set_mode(file: &std::fs::File, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (file, mode);
}

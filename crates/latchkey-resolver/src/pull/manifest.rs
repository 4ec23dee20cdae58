//! What `pull` reads from a registry's manifests, as pure functions: a manifest's media type
//! (only images), an index's entries, an image manifest's blobs, every digest checked before
//! it goes into a URL or a file name. No I/O here, so the fuzz target (fuzz/oci_manifest) and
//! the property tests (tests/it/properties.rs) reach all of it through
//! [`check_manifest_invariants`].

use oci_spec::image::{ImageIndex, ImageManifest};

use super::fetch::MAX_MANIFEST_BYTES;
use super::platform::PlatformSpec;
use crate::reference::validate_digest;

/// The largest blob a descriptor may announce (4 TiB): a larger `size` is refused before
/// anything is fetched (and millions of blobs sum without overflow).
pub const MAX_BLOB_SIZE: u64 = 1 << 42;

/// A descriptor's `size`, refused when larger than `max` (`limit` says what that is).
fn bounded_size(size: u64, max: u64, digest: &str, limit: &str) -> Result<u64, String> {
    if size > max {
        return Err(format!("names {digest} with size {size} bytes, more than {limit}; refusing it"));
    }
    Ok(size)
}

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];
/// What a manifest request accepts, best first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

pub(super) struct Blob {
    pub(super) digest: String,
    pub(super) size: u64,
}

pub(super) fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// The media type of a fetched manifest: its own `mediaType`, else the `Content-Type` the
/// registry sent, else guessed from its shape. Only image manifests and indexes (OCI or
/// Docker schema 2) are accepted. Errors read after "manifest X ".
pub(super) fn media_type_of(bytes: &[u8], header_type: Option<&str>) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default, rename = "mediaType")]
        media_type: Option<String>,
        #[serde(default, rename = "schemaVersion")]
        schema_version: Option<u64>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| format!("is not JSON: {e}"))?;
    let media_type = probe
        .media_type
        .clone()
        .or(header_type.filter(|t| *t != "application/json" && !t.is_empty()).map(str::to_owned))
        .unwrap_or_else(|| if probe.manifests.is_some() { OCI_INDEX.to_owned() } else { OCI_MANIFEST.to_owned() });
    if DOCKER_SCHEMA1.contains(&media_type.as_str()) || probe.schema_version == Some(1) {
        return Err(
            "is Docker schema 1, which is deprecated and not supported; push the image again with a current client"
                .into(),
        );
    }
    if ![OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].contains(&media_type.as_str()) {
        return Err(format!("has media type {media_type:?}, which is not an image"));
    }
    Ok(media_type)
}

/// One entry of an image index, checked.
#[derive(Debug)]
pub(super) struct IndexEntry {
    pub(super) digest: String,
    pub(super) size: u64,
    pub(super) is_index: bool,
    pub(super) platform: Option<PlatformSpec>,
}

/// The entries of an image index (OCI index or Docker manifest list), in order, each digest
/// checked before it goes into a URL. Errors read after "index X ".
pub(super) fn index_entries(bytes: &[u8]) -> Result<Vec<IndexEntry>, String> {
    let index: ImageIndex = serde_json::from_slice(bytes).map_err(|e| format!("is not a valid image index: {e}"))?;
    index
        .manifests()
        .iter()
        .map(|d| {
            let digest = d.digest().to_string();
            validate_digest(&digest)?;
            Ok(IndexEntry {
                size: bounded_size(d.size(), MAX_MANIFEST_BYTES as u64, &digest, "a manifest may have (4 MiB)")?,
                digest,
                is_index: is_index(d.media_type().as_ref()),
                platform: d.platform().as_ref().map(PlatformSpec::of),
            })
        })
        .collect()
}

/// The blobs an image manifest names (config, then layers), each digest checked. Errors read
/// after "manifest X ".
pub(super) fn manifest_blobs(bytes: &[u8]) -> Result<Vec<Blob>, String> {
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("is not a valid image manifest: {e}"))?;
    std::iter::once(manifest.config())
        .chain(manifest.layers().iter())
        .map(|d| {
            let digest = d.digest().to_string();
            validate_digest(&digest)?;
            Ok(Blob { size: bounded_size(d.size(), MAX_BLOB_SIZE, &digest, "a blob may have (4 TiB)")?, digest })
        })
        .collect()
}

/// The fuzz targets' and property tests' entry: read `bytes` the way `pull` reads a manifest
/// the registry sent with `Content-Type: header_type`, and panic if an invariant breaks: what
/// is accepted has an image media type, every digest that would go into a URL or a file name
/// is valid, and a platform prints as something `--platform` reads back.
#[doc(hidden)]
pub fn check_manifest_invariants(bytes: &[u8], header_type: Option<&str>) {
    // Independent of `validate_digest`: what a URL path segment and a file name under
    // blobs/<alg>/ may safely be.
    let safe = |digest: &str| match digest.split_once(':') {
        Some(("sha256", hex)) | Some(("sha512", hex)) => {
            hex.len() == if digest.starts_with("sha256") { 64 } else { 128 }
                && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        _ => false,
    };
    let Ok(media_type) = media_type_of(bytes, header_type) else { return };
    assert!([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].contains(&media_type.as_str()));
    if is_index(&media_type) {
        for entry in index_entries(bytes).unwrap_or_default() {
            assert!(safe(&entry.digest), "{:?}", entry.digest);
            assert!(entry.size <= MAX_MANIFEST_BYTES as u64, "{}", entry.size);
            // A '/' inside a component (no real platform has one) cannot round-trip.
            if let Some(p) = entry.platform.filter(|p| ![&p.os, &p.architecture].iter().any(|c| c.contains('/'))) {
                let printed = p.to_string();
                if let Ok(back) = printed.parse::<PlatformSpec>() {
                    assert!(back.matches(&p), "{printed} does not select its own entry");
                }
            }
        }
    } else {
        for blob in manifest_blobs(bytes).unwrap_or_default() {
            assert!(safe(&blob.digest), "{:?}", blob.digest);
            assert!(blob.size <= MAX_BLOB_SIZE, "{}", blob.size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{ImageIndex, ImageManifest};

    #[test]
    fn what_pull_accepts_from_a_registry() {
        let hex = "a".repeat(64);
        // Media type: its own, else the header, else its shape; only images.
        assert_eq!(media_type_of(br#"{"manifests":[]}"#, None).unwrap(), OCI_INDEX);
        assert_eq!(media_type_of(br#"{"layers":[]}"#, Some(DOCKER_MANIFEST)).unwrap(), DOCKER_MANIFEST);
        assert_eq!(media_type_of(br#"{"layers":[]}"#, Some("application/json")).unwrap(), OCI_MANIFEST);
        assert!(media_type_of(br#"{"schemaVersion":1}"#, None).unwrap_err().contains("schema 1"));
        let artifact = br#"{"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}"#;
        assert!(media_type_of(artifact, None).unwrap_err().contains("not an image"));
        assert!(media_type_of(b"<html>", None).unwrap_err().contains("not JSON"));
        // Digests are checked before they go into a URL or a file name.
        let index = |digest: &str| {
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1}}]}}"#
            )
        };
        let entries = index_entries(index(&format!("sha256:{hex}")).as_bytes()).unwrap();
        assert!(entries.len() == 1 && !entries[0].is_index && entries[0].platform.is_none());
        assert!(index_entries(index("sha256:abc").as_bytes()).is_err());
        assert!(index_entries(index("md5:d41d8cd98f00b204e9800998ecf8427e").as_bytes()).is_err());
        let manifest = |layer: &str| {
            format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"sha256:{hex}","size":2}},"layers":[{{"mediaType":"y","digest":"{layer}","size":3}}]}}"#
            )
        };
        let blobs = manifest_blobs(manifest(&format!("sha512:{}", "b".repeat(128))).as_bytes()).unwrap();
        assert_eq!(blobs.iter().map(|b| b.size).collect::<Vec<_>>(), [2, 3]);
        assert!(manifest_blobs(manifest(&format!("sha256:{}", "A".repeat(64))).as_bytes()).is_err());
        assert!(manifest_blobs(br#"{"schemaVersion":2}"#).is_err());
    }

    #[test]
    fn absurd_descriptor_sizes_are_refused_before_anything_is_fetched() {
        let hex = "a".repeat(64);
        let index = |size: &str| {
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{hex}","size":{size}}}]}}"#
            )
        };
        let manifest = |size: &str| {
            format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"sha256:{hex}","size":1}},"layers":[{{"mediaType":"y","digest":"sha256:{hex}","size":{size}}}]}}"#
            )
        };
        assert_eq!(index_entries(index("4194304").as_bytes()).unwrap()[0].size, 4 << 20);
        assert_eq!(manifest_blobs(manifest("4398046511104").as_bytes()).unwrap()[1].size, MAX_BLOB_SIZE);
        for huge in ["4194305", "18446744073709551615", "9223372036854775808"] {
            let e = index_entries(index(huge).as_bytes()).unwrap_err();
            assert!(e.contains(&format!("size {huge} bytes, more than a manifest may have (4 MiB)")), "{e}");
        }
        for huge in ["4398046511105", "18446744073709551615", "9223372036854775808"] {
            let Err(e) = manifest_blobs(manifest(huge).as_bytes()) else { panic!("{huge} accepted") };
            assert!(e.contains(&format!("size {huge} bytes, more than a blob may have (4 TiB)")), "{e}");
        }
        // Negative, fractional and too-large-for-u64 sizes are not descriptors at all.
        for bad in ["-1", "1.5", "1e300", "99999999999999999999999"] {
            assert!(index_entries(index(bad).as_bytes()).is_err(), "{bad}");
            assert!(manifest_blobs(manifest(bad).as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_manifest_lists_parse_as_indexes() {
        let list = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":7143,
            "digest":"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
            "platform":{"architecture":"ppc64le","os":"linux"}}]}"#;
        let index: ImageIndex = serde_json::from_str(list).unwrap();
        assert_eq!(index.manifests()[0].media_type().to_string(), DOCKER_MANIFEST);
        let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,
            "digest":"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":32654,
            "digest":"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"}]}"#;
        let m: ImageManifest = serde_json::from_str(manifest).unwrap();
        assert_eq!(m.layers().len(), 1);
    }
}

//! `pull`: an image from a registry into a standard OCI image layout.
//!
//! Index -> platform manifests -> config and layer blobs; an index may name further indexes
//! (up to 4 deep), walked in order so the first platform match wins. Blobs are fetched concurrently
//! (bounded), streamed to a temp file outside `blobs/` while their digest is computed on a
//! separate thread, and renamed into `blobs/<alg>/<hex>` only when digest and size match; a
//! blob already there is not fetched again. A body that breaks off is resumed with a `Range`
//! request (or fetched again). Manifests go in after the blobs they name and `index.json`
//! last, so an interrupted or failed pull never leaves a layout that names a missing blob, nor
//! a partial file in `blobs/`. Docker's schema 2 manifests and manifest lists are accepted
//! and kept as they are (their digests are the registry's).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use oci_spec::image::{ImageIndex, ImageManifest, Platform};
use serde::Serialize;
use sha2::Digest as _;

use super::client::{ClientStats, ErrorKind, RegistryClient, RegistryError};
use super::reference::{Reference, validate_digest};

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
/// Manifests larger than this are refused (containerd's limit).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// The annotation naming a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd's `ctr import` reads for the image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Which manifests of an index to pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformSelector {
    /// The machine's own (`linux/<arch>`), as docker pulls.
    Host,
    /// One platform.
    One(PlatformSpec),
    /// Every manifest of the index (and the index itself).
    All,
}

/// `os/arch[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::str::FromStr for PlatformSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || format!("invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7");
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [os, arch] => Ok(PlatformSpec { os: os.to_string(), architecture: arch.to_string(), variant: None }),
            [os, arch, variant] => Ok(PlatformSpec {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl PlatformSpec {
    /// `linux/<this machine's arch>`.
    pub fn host() -> PlatformSpec {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        PlatformSpec { os: "linux".into(), architecture: architecture.into(), variant: variant.map(str::to_owned) }
    }

    /// Whether an index entry for `p` serves this platform.
    fn matches(&self, p: &PlatformSpec) -> bool {
        if p.os != self.os || p.architecture != self.architecture {
            return false;
        }
        match (&self.variant, &p.variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // arm64's default variant is v8.
            (Some(want), None) => self.architecture == "arm64" && want == "v8",
        }
    }

    fn of(p: &Platform) -> PlatformSpec {
        PlatformSpec {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        }
    }
}

/// Where and how to pull.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// The OCI layout directory (created if missing; an existing layout is added to).
    pub output: PathBuf,
    pub platforms: PlatformSelector,
    /// Blobs fetched at once.
    pub concurrency: usize,
}

/// Progress callbacks (the CLI draws bars with them). All methods have empty defaults.
pub trait Progress: Send + Sync {
    /// The blobs to fetch are known: `count` of them, `bytes` in all (present ones included).
    fn planned(&self, _count: usize, _bytes: u64) {}
    fn blob_started(&self, _digest: &str, _size: u64) {}
    fn blob_advanced(&self, _digest: &str, _bytes: u64) {}
    /// A broken-off body is fetched again from `offset`.
    fn blob_restarted(&self, _digest: &str, _offset: u64) {}
    /// Done; `fetched` is false for a blob that was already present.
    fn blob_finished(&self, _digest: &str, _size: u64, _fetched: bool) {}
}

/// A [`Progress`] that reports nothing.
pub struct Quiet;
impl Progress for Quiet {}

/// One manifest written to the layout.
#[derive(Clone, Debug, Serialize)]
pub struct PulledManifest {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// `os/arch[/variant]`, when the index says.
    pub platform: Option<String>,
}

/// What a pull did.
#[derive(Clone, Debug, Serialize)]
pub struct PullSummary {
    pub reference: String,
    /// The digest `index.json` now names for this reference.
    pub digest: String,
    pub media_type: String,
    pub output: PathBuf,
    pub manifests: Vec<PulledManifest>,
    /// Config and layer blobs of the pulled manifests.
    pub blobs: usize,
    pub blobs_fetched: usize,
    pub blobs_present: usize,
    pub bytes_fetched: u64,
    pub elapsed_secs: f64,
    pub http: ClientStats,
}

/// A manifest fetched and checked against its digest.
struct Fetched {
    bytes: Vec<u8>,
    media_type: String,
    digest: String,
}

struct Blob {
    digest: String,
    size: u64,
}

/// Pull `reference` into `options.output`. See the module docs.
pub async fn pull(
    client: &RegistryClient,
    reference: &Reference,
    options: &PullOptions,
    progress: Arc<dyn Progress>,
) -> Result<PullSummary, RegistryError> {
    let started = Instant::now();
    let layout = Layout::open(&options.output)?;
    let top = fetch_manifest(client, reference, reference.manifest_reference(), None).await?;
    if let Some(pinned) = &reference.digest
        && &top.digest != pinned
    {
        return Err(RegistryError::new(
            ErrorKind::DigestMismatch,
            format!("{reference}: the registry's manifest has digest {}, not the requested one", top.digest),
        ));
    }

    // Which manifests, and what index.json will name.
    let mut manifests: Vec<(Fetched, Option<PlatformSpec>)> = Vec::new();
    // Indexes met below the top one (an index may name indexes), stored before the top one.
    let mut nested: Vec<Fetched> = Vec::new();
    let named: (String, String, u64, Option<PlatformSpec>);
    let mut top_index: Option<Fetched> = None;
    if is_index(&top.media_type) {
        let mut walk = IndexWalk {
            client,
            reference,
            want: match &options.platforms {
                PlatformSelector::All => None,
                PlatformSelector::One(p) => Some(p.clone()),
                PlatformSelector::Host => Some(PlatformSpec::host()),
            },
            manifests: Vec::new(),
            nested: Vec::new(),
            seen_platforms: Vec::new(),
            visited: HashSet::from([top.digest.clone()]),
        };
        walk.visit(&top, 0).await?;
        // An empty index is legal: --all-platforms pulls it as it is.
        if let (Some(want), true) = (&walk.want, walk.manifests.is_empty()) {
            return Err(RegistryError::new(
                ErrorKind::NoMatch,
                format!(
                    "{reference} has no manifest for {want}; it has: {} (use --platform or --all-platforms)",
                    walk.seen_platforms.join(", ")
                ),
            ));
        }
        (manifests, nested) = (walk.manifests, walk.nested);
        if options.platforms == PlatformSelector::All {
            named = (top.digest.clone(), top.media_type.clone(), top.bytes.len() as u64, None);
            top_index = Some(top);
        } else {
            nested.clear(); // only the chosen manifest is named, so the indexes on the way are not needed
            let (m, p) = &manifests[0];
            named = (m.digest.clone(), m.media_type.clone(), m.bytes.len() as u64, p.clone());
        }
    } else {
        named = (top.digest.clone(), top.media_type.clone(), top.bytes.len() as u64, None);
        manifests.push((top, None));
    }

    // Blobs of every chosen manifest, once each.
    let mut blobs: BTreeMap<String, Blob> = BTreeMap::new();
    for (m, _) in &manifests {
        let named = manifest_blobs(&m.bytes)
            .map_err(|e| RegistryError::new(ErrorKind::Protocol, format!("{reference}: manifest {} {e}", m.digest)))?;
        for blob in named {
            blobs.entry(blob.digest.clone()).or_insert(blob);
        }
    }
    progress.planned(blobs.len(), blobs.values().map(|b| b.size).sum());

    // Fetch them, bounded. The futures run on this task; sockets are driven by the HTTP
    // client's connection tasks and hashing/writing by blocking threads, so all cores work.
    let semaphore = tokio::sync::Semaphore::new(options.concurrency.max(1));
    let mut running: FuturesUnordered<_> = blobs
        .values()
        .map(|blob| {
            let semaphore = &semaphore;
            let layout = &layout;
            let progress = progress.as_ref();
            async move {
                let _permit = semaphore.acquire().await.expect("semaphore open");
                fetch_blob(client, reference, layout, blob, progress).await
            }
        })
        .collect();
    let (mut fetched_count, mut present_count, mut bytes_fetched) = (0usize, 0usize, 0u64);
    while let Some(result) = running.next().await {
        // The first error drops the rest: their downloads stop and their temp files go.
        match result? {
            Some(n) => {
                fetched_count += 1;
                bytes_fetched += n;
            }
            None => present_count += 1,
        }
    }
    drop(running);

    // Manifests after their blobs, then the index, then index.json.
    for (m, _) in &manifests {
        layout.put_verified(&m.digest, &m.bytes)?;
    }
    let mut summary_manifests: Vec<PulledManifest> = manifests
        .iter()
        .map(|(m, p)| PulledManifest {
            digest: m.digest.clone(),
            media_type: m.media_type.clone(),
            size: m.bytes.len() as u64,
            platform: p.as_ref().map(ToString::to_string),
        })
        .collect();
    // Inner indexes before the outer ones that name them (the walk records each index after
    // its contents), the top one last; the summary lists the top first.
    for index in nested.iter().chain(top_index.as_ref()) {
        layout.put_verified(&index.digest, &index.bytes)?;
        summary_manifests.insert(
            0,
            PulledManifest {
                digest: index.digest.clone(),
                media_type: index.media_type.clone(),
                size: index.bytes.len() as u64,
                platform: None,
            },
        );
    }
    layout.name(reference, &named.0, &named.1, named.2, named.3.as_ref())?;

    Ok(PullSummary {
        reference: reference.to_string(),
        digest: named.0,
        media_type: named.1,
        output: options.output.clone(),
        manifests: summary_manifests,
        blobs: blobs.len(),
        blobs_fetched: fetched_count,
        blobs_present: present_count,
        bytes_fetched,
        elapsed_secs: started.elapsed().as_secs_f64(),
        http: client.stats(),
    })
}

fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

// ---------------------------------------------------------------------------------------
// What pull reads from the registry's manifests: pure functions, fuzzed (fuzz/) and
// property-tested (tests/properties.rs) through `check_manifest_invariants`.

/// The media type of a fetched manifest: its own `mediaType`, else the `Content-Type` the
/// registry sent, else guessed from its shape. Only image manifests and indexes (OCI or
/// Docker schema 2) are accepted. Errors read after "manifest X ".
fn media_type_of(bytes: &[u8], header_type: Option<&str>) -> Result<String, String> {
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
struct IndexEntry {
    digest: String,
    size: u64,
    is_index: bool,
    platform: Option<PlatformSpec>,
}

/// The entries of an image index (OCI index or Docker manifest list), in order, each digest
/// checked before it goes into a URL. Errors read after "index X ".
fn index_entries(bytes: &[u8]) -> Result<Vec<IndexEntry>, String> {
    let index: ImageIndex = serde_json::from_slice(bytes).map_err(|e| format!("is not a valid image index: {e}"))?;
    index
        .manifests()
        .iter()
        .map(|d| {
            let digest = d.digest().to_string();
            validate_digest(&digest)?;
            Ok(IndexEntry {
                digest,
                size: d.size(),
                is_index: is_index(d.media_type().as_ref()),
                platform: d.platform().as_ref().map(PlatformSpec::of),
            })
        })
        .collect()
}

/// The blobs an image manifest names (config, then layers), each digest checked. Errors read
/// after "manifest X ".
fn manifest_blobs(bytes: &[u8]) -> Result<Vec<Blob>, String> {
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("is not a valid image manifest: {e}"))?;
    std::iter::once(manifest.config())
        .chain(manifest.layers().iter())
        .map(|d| {
            let digest = d.digest().to_string();
            validate_digest(&digest)?;
            Ok(Blob { digest, size: d.size() })
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
        }
    }
}

/// How deep indexes may nest (an index naming an index naming ...): real images use one or
/// two levels; the bound stops a registry from leading the walk on forever.
const MAX_INDEX_DEPTH: usize = 4;

/// Walks an image index and the indexes it names, choosing manifests by platform.
struct IndexWalk<'a> {
    client: &'a RegistryClient,
    reference: &'a Reference,
    /// The platform to find, or `None` for every manifest.
    want: Option<PlatformSpec>,
    /// The chosen image manifests: every one for `All`, else the first match.
    manifests: Vec<(Fetched, Option<PlatformSpec>)>,
    /// Indexes below the top one, each after everything it names.
    nested: Vec<Fetched>,
    /// Platforms met on the way, for a "no match" message.
    seen_platforms: Vec<String>,
    /// Digests already taken: an index may name something twice, or two indexes the same
    /// thing, and each is fetched and kept once (else a hostile registry could make the walk
    /// grow with the product of the indexes' sizes).
    visited: HashSet<String>,
}

impl IndexWalk<'_> {
    /// Visit `index` (already fetched) at `depth`, in the index's order: the first match wins.
    fn visit<'s>(
        &'s mut self,
        index: &'s Fetched,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), RegistryError>> + Send + 's>> {
        Box::pin(async move {
            let reference = self.reference;
            let entries = index_entries(&index.bytes).map_err(|e| {
                RegistryError::new(ErrorKind::Protocol, format!("{reference}: index {} {e}", index.digest))
            })?;
            for entry in entries {
                if self.want.is_some() && !self.manifests.is_empty() {
                    break;
                }
                // For one platform: an entry whose platform is known must match; one without a
                // platform can only lead to a match if it is an index.
                let wanted = match (&self.want, &entry.platform) {
                    (Some(want), Some(p)) => want.matches(p),
                    (Some(_), None) => entry.is_index,
                    (None, _) => true,
                };
                if let Some(p) = &entry.platform {
                    let p = p.to_string();
                    if !self.seen_platforms.contains(&p) {
                        self.seen_platforms.push(p);
                    }
                }
                if !wanted || !self.visited.insert(entry.digest.clone()) {
                    continue;
                }
                if entry.is_index {
                    if depth + 1 >= MAX_INDEX_DEPTH {
                        return Err(RegistryError::new(
                            ErrorKind::Protocol,
                            format!(
                                "{reference}: image indexes nested more than {MAX_INDEX_DEPTH} deep (at {})",
                                entry.digest
                            ),
                        ));
                    }
                    let inner = fetch_manifest(self.client, reference, &entry.digest, Some(entry.size)).await?;
                    self.visit(&inner, depth + 1).await?;
                    self.nested.push(inner);
                } else {
                    let fetched = fetch_manifest(self.client, reference, &entry.digest, Some(entry.size)).await?;
                    self.manifests.push((fetched, entry.platform));
                }
            }
            Ok(())
        })
    }
}

/// GET a manifest by tag or digest, check it (digest, size, media type) and return it.
async fn fetch_manifest(
    client: &RegistryClient,
    reference: &Reference,
    tag_or_digest: &str,
    expected_size: Option<u64>,
) -> Result<Fetched, RegistryError> {
    let path = format!("{}/manifests/{tag_or_digest}", reference.repository);
    let answer = client.get(&reference.registry, &reference.repository, &path, Some(MANIFEST_ACCEPT), 0).await?;
    let header_type = answer
        .response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
    let header_digest =
        answer.response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut response = answer.response;
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_MANIFEST_BYTES {
                    return Err(RegistryError::new(
                        ErrorKind::Protocol,
                        format!("{reference}: manifest {tag_or_digest} is larger than 4 MiB"),
                    ));
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(RegistryError::new(
                    ErrorKind::Transport,
                    format!("{reference}: reading manifest {tag_or_digest}: {}", latchkey_http::error_chain(&e)),
                ));
            }
        }
    }
    let pinned = tag_or_digest.contains(':').then_some(tag_or_digest);
    let algorithm = pinned.and_then(|d| d.split_once(':')).map_or("sha256", |(a, _)| a);
    let digest = digest_of(algorithm, &bytes);
    let mismatch = |claimed: &str| {
        RegistryError::new(
            ErrorKind::DigestMismatch,
            format!("{reference}: manifest {tag_or_digest} has digest {digest}, but {claimed}; nothing was written"),
        )
    };
    if let Some(pinned) = pinned
        && pinned != digest
    {
        return Err(mismatch(&format!("{pinned} was asked for")));
    }
    if let Some(h) = header_digest.filter(|h| h.starts_with("sha256:"))
        && algorithm == "sha256"
        && h != digest
    {
        return Err(mismatch(&format!("the registry says {h}")));
    }
    if let Some(size) = expected_size
        && size != bytes.len() as u64
    {
        return Err(mismatch(&format!("its descriptor says {size} bytes and it has {}", bytes.len())));
    }
    let media_type = media_type_of(&bytes, header_type.as_deref())
        .map_err(|e| RegistryError::new(ErrorKind::Protocol, format!("{reference}: manifest {tag_or_digest} {e}")))?;
    Ok(Fetched { bytes, media_type, digest })
}

fn digest_of(algorithm: &str, bytes: &[u8]) -> String {
    let mut h = Hasher::new(algorithm);
    h.update(bytes);
    h.finish()
}

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algorithm: &str) -> Hasher {
        if algorithm == "sha512" { Hasher::Sha512(sha2::Sha512::new()) } else { Hasher::Sha256(sha2::Sha256::new()) }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", data_encoding::HEXLOWER.encode(&h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", data_encoding::HEXLOWER.encode(&h.finalize())),
        }
    }
}

/// What the writer thread is told.
enum Chunk {
    Data(bytes::Bytes),
    /// The server ignored a Range request: start over.
    Reset,
}

/// Fetch one blob into the layout. `Ok(Some(bytes))` when fetched, `Ok(None)` when present.
async fn fetch_blob(
    client: &RegistryClient,
    reference: &Reference,
    layout: &Layout,
    blob: &Blob,
    progress: &dyn Progress,
) -> Result<Option<u64>, RegistryError> {
    let target = layout.blob_path(&blob.digest);
    if std::fs::metadata(&target).is_ok_and(|m| m.is_file() && m.len() == blob.size) {
        progress.blob_finished(&blob.digest, blob.size, false);
        return Ok(None);
    }
    progress.blob_started(&blob.digest, blob.size);
    let temp = layout.temp_file()?;
    let algorithm = blob.digest.split_once(':').map_or("sha256", |(a, _)| a).to_owned();
    // Hash and write on a blocking thread, fed through a small bounded channel: the network
    // side keeps reading while the previous chunk is hashed.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<(tempfile::NamedTempFile, String, u64)> {
        let mut temp = temp;
        let mut hasher = Hasher::new(&algorithm);
        let mut written = 0u64;
        {
            let mut out = std::io::BufWriter::with_capacity(256 << 10, temp.as_file_mut());
            while let Some(chunk) = rx.blocking_recv() {
                match chunk {
                    Chunk::Data(data) => {
                        hasher.update(&data);
                        out.write_all(&data)?;
                        written += data.len() as u64;
                    }
                    Chunk::Reset => {
                        out.flush()?;
                        out.get_mut().set_len(0)?;
                        out.get_mut().rewind()?;
                        hasher = Hasher::new(&algorithm);
                        written = 0;
                    }
                }
            }
            out.flush()?;
        }
        Ok((temp, hasher.finish(), written))
    });

    let path = format!("{}/blobs/{}", reference.repository, blob.digest);
    let mut received = 0u64;
    let mut attempt = 0u32;
    let broken_writer = || RegistryError::new(ErrorKind::Io, format!("writing blob {} stopped", blob.digest));
    'attempts: loop {
        let answer = match client.get(&reference.registry, &reference.repository, &path, None, received).await {
            Ok(a) => a,
            Err(e) => {
                return Err(RegistryError::new(e.kind, format!("{reference}: blob {}: {e}", blob.digest)));
            }
        };
        let mut response = answer.response;
        if received > 0 && response.status() == reqwest::StatusCode::PARTIAL_CONTENT {
            // `Content-Range: bytes START-END/TOTAL` must continue where we stopped.
            let start = response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if start != Some(received) {
                return Err(RegistryError::new(
                    ErrorKind::Protocol,
                    format!(
                        "{reference}: blob {}: asked to resume at byte {received}, the registry answered a range starting at {start:?}; nothing was written",
                        blob.digest
                    ),
                ));
            }
        }
        if received > 0 && response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            // The server sends the whole blob again.
            tx.send(Chunk::Reset).await.map_err(|_| broken_writer())?;
            received = 0;
            progress.blob_restarted(&blob.digest, 0);
        }
        loop {
            match response.chunk().await {
                Ok(Some(data)) => {
                    received += data.len() as u64;
                    if received > blob.size {
                        return Err(RegistryError::new(
                            ErrorKind::DigestMismatch,
                            format!(
                                "{reference}: blob {} is larger than its descriptor's {} bytes; nothing was written",
                                blob.digest, blob.size
                            ),
                        ));
                    }
                    progress.blob_advanced(&blob.digest, data.len() as u64);
                    tx.send(Chunk::Data(data)).await.map_err(|_| broken_writer())?;
                }
                Ok(None) if received == blob.size => break 'attempts,
                Ok(None) | Err(_) if attempt < client.retries() => {
                    attempt += 1;
                    client.note_retry();
                    progress.blob_restarted(&blob.digest, received);
                    tokio::time::sleep(client.backoff(attempt)).await;
                    continue 'attempts;
                }
                Ok(None) => {
                    return Err(RegistryError::new(
                        ErrorKind::Transport,
                        format!(
                            "{reference}: blob {} ended after {received} of {} bytes, {} times; nothing was written",
                            blob.digest,
                            blob.size,
                            attempt + 1
                        ),
                    ));
                }
                Err(e) => {
                    return Err(RegistryError::new(
                        ErrorKind::Transport,
                        format!(
                            "{reference}: blob {} broke off after {received} of {} bytes ({}), {} attempts; nothing was written",
                            blob.digest,
                            blob.size,
                            latchkey_http::error_chain(&e),
                            attempt + 1
                        ),
                    ));
                }
            }
        }
    }
    drop(tx);
    let (temp, digest, written) = writer
        .await
        .map_err(|_| broken_writer())?
        .map_err(|e| RegistryError::new(ErrorKind::Io, format!("writing blob {}: {e}", blob.digest)))?;
    if digest != blob.digest || written != blob.size {
        return Err(RegistryError::new(
            ErrorKind::DigestMismatch,
            format!(
                "{reference}: blob {} arrived with digest {digest} ({written} bytes, {} expected); it was discarded and nothing was written",
                blob.digest, blob.size
            ),
        ));
    }
    layout.install(temp, &blob.digest)?;
    progress.blob_finished(&blob.digest, blob.size, true);
    Ok(Some(written))
}

/// An OCI image layout being written.
struct Layout {
    root: PathBuf,
    temp: Option<tempfile::TempDir>,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> RegistryError {
    RegistryError::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

impl Layout {
    fn open(root: &Path) -> Result<Layout, RegistryError> {
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

    fn blob_path(&self, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').expect("validated digest");
        self.root.join("blobs").join(alg).join(hex)
    }

    fn temp_file(&self) -> Result<tempfile::NamedTempFile, RegistryError> {
        let dir = self.temp.as_ref().expect("open until finish").path();
        tempfile::NamedTempFile::new_in(dir).map_err(|e| io_error("cannot create a temp file in", dir, e))
    }

    fn install(&self, temp: tempfile::NamedTempFile, digest: &str) -> Result<(), RegistryError> {
        let target = self.blob_path(digest);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
        }
        set_mode(temp.as_file(), 0o644);
        temp.persist(&target).map_err(|e| io_error("cannot move a blob into", &target, e.error))?;
        Ok(())
    }

    /// Write verified content (manifests) as a blob.
    fn put_verified(&self, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let target = self.blob_path(digest);
        if std::fs::metadata(&target).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(());
        }
        let mut temp = self.temp_file()?;
        temp.write_all(bytes).map_err(|e| io_error("cannot write", temp.path(), e))?;
        self.install(temp, digest)
    }

    /// Add (or replace) this reference's entry in index.json, and write oci-layout.
    fn name(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p: PlatformSpec = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!("linux".parse::<PlatformSpec>().is_err());
        assert!("linux//v7".parse::<PlatformSpec>().is_err());
        let platform: Platform =
            serde_json::from_str(r#"{"architecture":"arm64","os":"linux","features":["sse4"]}"#).unwrap();
        let platform = PlatformSpec::of(&platform);
        assert!("linux/arm64".parse::<PlatformSpec>().unwrap().matches(&platform));
        assert!("linux/arm64/v8".parse::<PlatformSpec>().unwrap().matches(&platform));
        assert!(!"linux/arm64/v9".parse::<PlatformSpec>().unwrap().matches(&platform));
        assert!(!"linux/amd64".parse::<PlatformSpec>().unwrap().matches(&platform));
    }

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

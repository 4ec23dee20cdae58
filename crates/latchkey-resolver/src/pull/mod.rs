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
//!
//! One job per file: `platform` (which manifests), `manifest` (what is read from a registry,
//! pure), `fetch` (one checked manifest), `walk` (the index walk), `blob` (one blob, hashed
//! and resumed), `digest` (hashing), `layout` (the OCI layout writer). This file holds the
//! public types and `pull` itself, which puts them in order.

mod blob;
mod digest;
mod fetch;
mod layout;
mod manifest;
mod platform;
mod walk;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;

use super::client::{ClientStats, ErrorKind, RegistryClient, RegistryError};
use super::reference::Reference;
use blob::fetch_blob;
use fetch::{Fetched, fetch_manifest};
use layout::Layout;
use manifest::{Blob, is_index, manifest_blobs};
use walk::IndexWalk;

pub use fetch::MAX_MANIFEST_BYTES;
pub use layout::{CONTAINERD_NAME, REF_NAME};
#[doc(hidden)]
pub use manifest::check_manifest_invariants;
pub use manifest::{DOCKER_LIST, DOCKER_MANIFEST, MANIFEST_ACCEPT, OCI_INDEX, OCI_MANIFEST};
pub use platform::{PlatformSelector, PlatformSpec};

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
    progress.planned(blobs.len(), blobs.values().fold(0, |sum, b| sum.saturating_add(b.size)));

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

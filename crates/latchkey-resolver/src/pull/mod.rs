//! `pull`: an image from a registry into a standard OCI image layout.
//!
//! Index -> platform manifests -> config and layer blobs; an index may name further indexes
//! (up to 4 deep), walked in order so the first platform match wins. Blobs are fetched concurrently
//! (bounded), streamed to a temp file outside `blobs/` while their digest is computed on a
//! separate thread, and renamed into `blobs/<alg>/<hex>` only when digest and size match; a
//! blob already there is not fetched again once it hashes to its name (else it is replaced). A
//! body that breaks off is resumed with a `Range` request (or fetched again). Manifests are
//! staged in the layout's temp directory as soon as they are checked (only their descriptors
//! stay in memory, and every count a registry controls is bounded: [`MAX_INDEX_ENTRIES`],
//! [`MAX_MANIFESTS`], [`MAX_BLOBS`]), and go into `blobs/` after the blobs they name, `index.json`
//! last, so an interrupted or failed pull never leaves a layout that names a missing blob, nor
//! a partial file in `blobs/`; and the next pull into the same directory takes up what it left
//! (`oci-layout` is written first, left-over temp files are removed). A pull with no progress
//! for [`PullOptions::stall_timeout`] is stopped. Docker's schema 2 manifests and manifest
//! lists are accepted and kept as they are (their digests are the registry's).
//!
//! One job per file: `platform` (which manifests), `manifest` (what is read from a registry,
//! pure), `fetch` (one checked manifest), `walk` (the index walk), `blob` (one blob, hashed
//! and resumed), `digest` (hashing), `layout` (the OCI layout writer), `stall` (the stall
//! deadline). This file holds the public types and `pull` itself, which puts them in order.

mod blob;
mod digest;
mod fetch;
mod layout;
mod manifest;
mod platform;
mod stall;
mod walk;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;

use super::client::{ClientStats, ErrorKind, RegistryClient, RegistryError};
use super::reference::Reference;
use blob::fetch_blob;
use fetch::fetch_manifest;
use layout::Layout;
use manifest::{Blob, is_index};
use stall::Activity;
use walk::{Described, IndexWalk};

pub use fetch::MAX_MANIFEST_BYTES;
pub use layout::{CONTAINERD_NAME, REF_NAME};
#[doc(hidden)]
pub use manifest::check_manifest_invariants;
pub use manifest::{DOCKER_LIST, DOCKER_MANIFEST, MANIFEST_ACCEPT, OCI_INDEX, OCI_MANIFEST};
pub use platform::{PlatformSelector, PlatformSpec};
pub use stall::STALL_BYTES;
pub use walk::{MAX_BLOBS, MAX_INDEX_ENTRIES, MAX_MANIFESTS};

/// The default for [`PullOptions::stall_timeout`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to pull.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// The OCI layout directory (created if missing; an existing layout is added to).
    pub output: PathBuf,
    pub platforms: PlatformSelector,
    /// Blobs fetched at once.
    pub concurrency: usize,
    /// Stop the pull when, for this long, no manifest or blob finished and less than
    /// [`STALL_BYTES`] arrived (a server trickling bytes); `None` waits forever.
    pub stall_timeout: Option<Duration>,
}

impl PullOptions {
    /// Into `output`: this machine's platform, 4 blobs at once, [`DEFAULT_STALL_TIMEOUT`].
    pub fn new(output: impl Into<PathBuf>) -> PullOptions {
        PullOptions {
            output: output.into(),
            platforms: PlatformSelector::Host,
            concurrency: 4,
            stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
        }
    }
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
    let activity = Activity::default();
    let pulling = pull_watched(client, reference, options, progress, &activity);
    match options.stall_timeout {
        Some(timeout) => {
            let what = reference.to_string();
            tokio::select! {
                result = pulling => result,
                stalled = stall::stalled(&activity, timeout, &what) => Err(stalled),
            }
        }
        None => pulling.await,
    }
}

async fn pull_watched(
    client: &RegistryClient,
    reference: &Reference,
    options: &PullOptions,
    progress: Arc<dyn Progress>,
    activity: &Activity,
) -> Result<PullSummary, RegistryError> {
    let started = Instant::now();
    let layout = Layout::open(&options.output)?;
    let top = fetch_manifest(client, reference, reference.manifest_reference(), None, activity).await?;
    if let Some(pinned) = &reference.digest
        && &top.digest != pinned
    {
        return Err(RegistryError::new(
            ErrorKind::DigestMismatch,
            format!("{reference}: the registry's manifest has digest {}, not the requested one", top.digest),
        ));
    }

    // Which manifests (staged in the layout as they come), and what index.json will name.
    let want = match &options.platforms {
        PlatformSelector::All => None,
        PlatformSelector::One(p) => Some(p.clone()),
        PlatformSelector::Host => Some(PlatformSpec::host()),
    };
    let mut walk = IndexWalk::new(client, reference, &layout, activity, want);
    walk.visited.insert(top.digest.clone());
    let named: Described;
    // The top index, kept (after everything it names) with --all-platforms.
    let mut top_index: Option<Described> = None;
    if is_index(&top.media_type) {
        let entries = walk.entries_of(&top)?;
        if walk.want.is_none() {
            layout.stage(&top.digest, &top.bytes)?;
            top_index = Some(Described::of(&top, None));
        }
        let top_described = Described::of(&top, None);
        drop(top);
        walk.visit(entries, 0).await?;
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
        named = if walk.want.is_none() { top_described } else { walk.manifests[0].clone() };
    } else {
        walk.choose(top, None)?;
        named = walk.manifests[0].clone();
    }
    let IndexWalk { manifests, nested, blobs, .. } = walk;

    // Blobs of every chosen manifest, once each.
    let blobs: Vec<Blob> = blobs.into_iter().map(|(digest, size)| Blob { digest, size }).collect();
    // Sizes come from the registry: the total saturates instead of overflowing.
    progress.planned(blobs.len(), blobs.iter().fold(0u64, |sum, b| sum.saturating_add(b.size)));

    // Fetch them, bounded. The futures run on this task; sockets are driven by the HTTP
    // client's connection tasks and hashing/writing by blocking threads, so all cores work.
    let semaphore = tokio::sync::Semaphore::new(options.concurrency.max(1));
    let mut running: FuturesUnordered<_> = blobs
        .iter()
        .map(|blob| {
            let semaphore = &semaphore;
            let layout = &layout;
            let progress = progress.as_ref();
            async move {
                let _permit = semaphore.acquire().await.expect("semaphore open");
                fetch_blob(client, reference, layout, blob, progress, activity).await
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

    // Manifests after their blobs, then the indexes (inner ones before the outer ones that
    // name them: the walk records each index after its contents, the top one last), then
    // index.json. The summary lists the top first.
    let mut summary_manifests: Vec<PulledManifest> = Vec::new();
    for m in manifests.iter().chain(nested.iter()).chain(top_index.iter()) {
        layout.commit(&m.digest)?;
    }
    for m in top_index.iter().chain(nested.iter().rev()).chain(manifests.iter()) {
        summary_manifests.push(PulledManifest {
            digest: m.digest.clone(),
            media_type: m.media_type.clone(),
            size: m.size,
            platform: m.platform.as_ref().map(ToString::to_string),
        });
    }
    layout.name(reference, &named.digest, &named.media_type, named.size, named.platform.as_ref())?;

    Ok(PullSummary {
        reference: reference.to_string(),
        digest: named.digest,
        media_type: named.media_type,
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

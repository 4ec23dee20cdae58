//! The index walk: an image index and the indexes it names (up to `MAX_INDEX_DEPTH` deep), in
//! order, so the first platform match wins; each digest fetched once, only entries whose
//! platform can match followed.
//!
//! Memory stays bounded whatever the registry sends: each manifest is checked, read for what
//! the walk needs (an index's entries, a manifest's blobs), staged in the layout's temp
//! directory if the layout will hold it, and dropped; only descriptors are kept. Every count a
//! registry controls has a limit with a clear error.

use std::collections::{BTreeMap, HashSet};

use super::fetch::{Fetched, fetch_manifest};
use super::layout::Layout;
use super::manifest::{IndexEntry, index_entries, manifest_blobs};
use super::platform::PlatformSpec;
use super::stall::Activity;
use crate::client::{ErrorKind, RegistryClient, RegistryError};
use crate::reference::Reference;

/// How deep indexes may nest (an index naming an index naming ...): real images use one or
/// two levels; the bound stops a registry from leading the walk on forever.
const MAX_INDEX_DEPTH: usize = 4;
/// Entries one index may have (real ones have a few dozen: platforms and attestations).
pub const MAX_INDEX_ENTRIES: usize = 1024;
/// Manifests and indexes one pull fetches.
pub const MAX_MANIFESTS: usize = 4096;
/// Distinct config and layer blobs one pull fetches.
pub const MAX_BLOBS: usize = 16384;

/// A manifest or index the layout will hold: what `index.json` and the summary need of it.
#[derive(Clone, Debug)]
pub(super) struct Described {
    pub(super) digest: String,
    pub(super) media_type: String,
    pub(super) size: u64,
    pub(super) platform: Option<PlatformSpec>,
}

impl Described {
    pub(super) fn of(fetched: &Fetched, platform: Option<PlatformSpec>) -> Described {
        Described {
            digest: fetched.digest.clone(),
            media_type: fetched.media_type.clone(),
            size: fetched.bytes.len() as u64,
            platform,
        }
    }
}

/// Walks an image index and the indexes it names, choosing manifests by platform.
pub(super) struct IndexWalk<'a> {
    pub(super) client: &'a RegistryClient,
    pub(super) reference: &'a Reference,
    pub(super) layout: &'a Layout,
    pub(super) activity: &'a Activity,
    /// The platform to find, or `None` for every manifest (and every index on the way).
    pub(super) want: Option<PlatformSpec>,
    /// The chosen image manifests (staged): every one for `All`, else the first match.
    pub(super) manifests: Vec<Described>,
    /// Indexes below the top one (staged for `All` only), each after everything it names.
    pub(super) nested: Vec<Described>,
    /// Config and layer blobs of the chosen manifests, by digest: their sizes.
    pub(super) blobs: BTreeMap<String, u64>,
    /// Platforms met on the way, for a "no match" message.
    pub(super) seen_platforms: Vec<String>,
    /// Digests already taken: an index may name something twice, or two indexes the same
    /// thing, and each is fetched and kept once (else a hostile registry could make the walk
    /// grow with the product of the indexes' sizes).
    pub(super) visited: HashSet<String>,
}

impl<'a> IndexWalk<'a> {
    pub(super) fn new(
        client: &'a RegistryClient,
        reference: &'a Reference,
        layout: &'a Layout,
        activity: &'a Activity,
        want: Option<PlatformSpec>,
    ) -> IndexWalk<'a> {
        IndexWalk {
            client,
            reference,
            layout,
            activity,
            want,
            manifests: Vec::new(),
            nested: Vec::new(),
            blobs: BTreeMap::new(),
            seen_platforms: Vec::new(),
            visited: HashSet::new(),
        }
    }

    fn protocol(&self, message: String) -> RegistryError {
        RegistryError::new(ErrorKind::Protocol, format!("{}: {message}", self.reference))
    }

    /// The entries of a fetched index, checked and bounded.
    pub(super) fn entries_of(&self, index: &Fetched) -> Result<Vec<IndexEntry>, RegistryError> {
        let entries = index_entries(&index.bytes).map_err(|e| self.protocol(format!("index {} {e}", index.digest)))?;
        if entries.len() > MAX_INDEX_ENTRIES {
            return Err(self.protocol(format!(
                "index {} has {} entries; latchkey follows at most {MAX_INDEX_ENTRIES} per index",
                index.digest,
                entries.len()
            )));
        }
        Ok(entries)
    }

    /// Take a fetched image manifest: note its blobs, stage it, keep its descriptor.
    pub(super) fn choose(&mut self, manifest: Fetched, platform: Option<PlatformSpec>) -> Result<(), RegistryError> {
        let named =
            manifest_blobs(&manifest.bytes).map_err(|e| self.protocol(format!("manifest {} {e}", manifest.digest)))?;
        for blob in named {
            self.blobs.entry(blob.digest).or_insert(blob.size);
        }
        if self.blobs.len() > MAX_BLOBS {
            return Err(self.protocol(format!(
                "the chosen manifests name more than {MAX_BLOBS} blobs; latchkey pulls at most that many at once"
            )));
        }
        self.layout.stage(&manifest.digest, &manifest.bytes)?;
        self.manifests.push(Described::of(&manifest, platform));
        Ok(())
    }

    async fn fetch(&mut self, entry: &IndexEntry) -> Result<Fetched, RegistryError> {
        if self.visited.len() >= MAX_MANIFESTS {
            return Err(self.protocol(format!(
                "the image names more than {MAX_MANIFESTS} manifests and indexes; latchkey fetches at most that many"
            )));
        }
        fetch_manifest(self.client, self.reference, &entry.digest, Some(entry.size), self.activity).await
    }

    /// Visit the `entries` of an index at `depth`, in order: the first match wins.
    pub(super) fn visit<'s>(
        &'s mut self,
        entries: Vec<IndexEntry>,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), RegistryError>> + Send + 's>> {
        Box::pin(async move {
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
                if !wanted || self.visited.contains(&entry.digest) {
                    continue;
                }
                if entry.is_index && depth + 1 >= MAX_INDEX_DEPTH {
                    return Err(self.protocol(format!(
                        "image indexes nested more than {MAX_INDEX_DEPTH} deep (at {})",
                        entry.digest
                    )));
                }
                let fetched = self.fetch(&entry).await?;
                self.visited.insert(entry.digest.clone());
                if entry.is_index {
                    let inner = self.entries_of(&fetched)?;
                    // For one platform only the chosen manifest is named, so the indexes on the
                    // way are not kept; for every platform they are, after what they name.
                    let described = self.want.is_none().then(|| Described::of(&fetched, None));
                    if described.is_some() {
                        self.layout.stage(&fetched.digest, &fetched.bytes)?;
                    }
                    drop(fetched);
                    self.visit(inner, depth + 1).await?;
                    self.nested.extend(described);
                } else {
                    self.choose(fetched, entry.platform)?;
                }
            }
            Ok(())
        })
    }
}

//! The index walk: an image index and the indexes it names (up to `MAX_INDEX_DEPTH` deep), in
//! order, so the first platform match wins; each digest fetched once, only entries whose
//! platform can match followed.

use std::collections::HashSet;

use super::fetch::{Fetched, fetch_manifest};
use super::manifest::index_entries;
use super::platform::PlatformSpec;
use crate::client::{ErrorKind, RegistryClient, RegistryError};
use crate::reference::Reference;

/// How deep indexes may nest (an index naming an index naming ...): real images use one or
/// two levels; the bound stops a registry from leading the walk on forever.
const MAX_INDEX_DEPTH: usize = 4;

/// Walks an image index and the indexes it names, choosing manifests by platform.
pub(super) struct IndexWalk<'a> {
    pub(super) client: &'a RegistryClient,
    pub(super) reference: &'a Reference,
    /// The platform to find, or `None` for every manifest.
    pub(super) want: Option<PlatformSpec>,
    /// The chosen image manifests: every one for `All`, else the first match.
    pub(super) manifests: Vec<(Fetched, Option<PlatformSpec>)>,
    /// Indexes below the top one, each after everything it names.
    pub(super) nested: Vec<Fetched>,
    /// Platforms met on the way, for a "no match" message.
    pub(super) seen_platforms: Vec<String>,
    /// Digests already taken: an index may name something twice, or two indexes the same
    /// thing, and each is fetched and kept once (else a hostile registry could make the walk
    /// grow with the product of the indexes' sizes).
    pub(super) visited: HashSet<String>,
}

impl IndexWalk<'_> {
    /// Visit `index` (already fetched) at `depth`, in the index's order: the first match wins.
    pub(super) fn visit<'s>(
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

//! Fetching one manifest or index by tag or digest, bounded in size, and checking it before
//! anything else reads it: its digest against the one asked for and the one the registry
//! claims, its size against its descriptor, its media type (only images).

use super::digest::digest_of;
use super::manifest::{MANIFEST_ACCEPT, media_type_of};
use super::stall::Activity;
use crate::client::{ErrorKind, RegistryClient, RegistryError};
use crate::reference::Reference;

/// Manifests larger than this are refused (containerd's limit).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A manifest fetched and checked against its digest.
pub(super) struct Fetched {
    pub(super) bytes: Vec<u8>,
    pub(super) media_type: String,
    pub(super) digest: String,
}

/// GET a manifest by tag or digest, check it (digest, size, media type) and return it.
pub(super) async fn fetch_manifest(
    client: &RegistryClient,
    reference: &Reference,
    tag_or_digest: &str,
    expected_size: Option<u64>,
    activity: &Activity,
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
    // The descriptor's size when it has one (so the buffer is not doubled past it).
    let mut bytes = Vec::with_capacity(expected_size.unwrap_or(0).min(MAX_MANIFEST_BYTES as u64 + 1) as usize);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                activity.bytes(chunk.len() as u64);
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
    activity.finished();
    Ok(Fetched { bytes, media_type, digest })
}

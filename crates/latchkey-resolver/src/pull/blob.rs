//! Downloading one blob into the layout: streamed to a temp file outside `blobs/` while a
//! blocking thread hashes and writes it, resumed with a `Range` request (or fetched again) when
//! the body breaks off, and moved into `blobs/<alg>/<hex>` only when digest and size match. A
//! blob already there is not fetched again if it hashes to its name (else it is replaced).

use std::io::{Seek, Write};

use super::Progress;
use super::digest::Hasher;
use super::layout::Layout;
use super::manifest::Blob;
use super::stall::Activity;
use crate::client::{ErrorKind, RegistryClient, RegistryError};
use crate::reference::Reference;

/// What the writer thread is told.
enum Chunk {
    Data(bytes::Bytes),
    /// The server ignored a Range request: start over.
    Reset,
}

/// Fetch one blob into the layout. `Ok(Some(bytes))` when fetched, `Ok(None)` when present.
pub(super) async fn fetch_blob(
    client: &RegistryClient,
    reference: &Reference,
    layout: &Layout,
    blob: &Blob,
    progress: &dyn Progress,
    activity: &Activity,
) -> Result<Option<u64>, RegistryError> {
    // Hashing a present blob counts as progress for the stall deadline.
    let present = layout.verified_present(&blob.digest, blob.size, activity.counter()).await;
    if present? {
        activity.finished();
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
                    activity.bytes(data.len() as u64);
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
    activity.finished();
    progress.blob_finished(&blob.digest, blob.size, true);
    Ok(Some(written))
}

//! The stall deadline: a pull that makes no progress for a while is stopped, even when the
//! server keeps every connection alive by trickling a byte at a time (which per-read timeouts
//! never catch). Progress is a manifest or blob finished, or [`STALL_BYTES`] more received (or
//! hashed, for a blob already present) since the last progress.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::{ErrorKind, RegistryError};

/// Bytes that count as progress: about 1 KiB/s over the default 60 s deadline.
pub const STALL_BYTES: u64 = 64 << 10;

/// What the pull has done so far, counted by everything that fetches or hashes.
#[derive(Default)]
pub(super) struct Activity {
    bytes: Arc<AtomicU64>,
    finished: AtomicU64,
}

impl Activity {
    pub(super) fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts bytes from another thread (hashing a present blob).
    pub(super) fn counter(&self) -> impl Fn(u64) + Send + 'static {
        let bytes = self.bytes.clone();
        move |n| {
            bytes.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(super) fn finished(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (u64, u64) {
        (self.bytes.load(Ordering::Relaxed), self.finished.load(Ordering::Relaxed))
    }
}

/// Resolves (with the error to return) once `activity` has not progressed for `timeout`.
pub(super) async fn stalled(activity: &Activity, timeout: Duration, what: &str) -> RegistryError {
    let tick = (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let (mut since, mut mark) = (Instant::now(), activity.snapshot());
    loop {
        tokio::time::sleep(tick).await;
        let now = activity.snapshot();
        if now.0.saturating_sub(mark.0) >= STALL_BYTES || now.1 != mark.1 {
            (since, mark) = (Instant::now(), now);
        } else if since.elapsed() >= timeout {
            return RegistryError::new(
                ErrorKind::Transport,
                format!(
                    "{what}: stalled: no manifest or blob finished and less than {} KiB arrived in {} s (the stall timeout); stopped",
                    STALL_BYTES >> 10,
                    timeout.as_secs_f64()
                ),
            );
        }
    }
}

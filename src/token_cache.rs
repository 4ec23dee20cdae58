//! On-disk cache of fetched or minted bearer tokens, with single-flight refresh.
//!
//! One small JSON file per (registry, source, audience) key, 0600 in a 0700 directory,
//! replaced atomically. Readers take no lock (rename is atomic). A refresh takes the key's
//! lock file, re-reads the cache (another process may have just refreshed it) and only then
//! asks the source, so N concurrent cold `get`s cause exactly one upstream call.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use latchkey_fs as fsutil;
use latchkey_protocol::secret::Secret;

const MAX_ENTRY_BYTES: u64 = 128 * 1024;

/// A cached token and what `status` may show about it (never the token itself).
#[derive(Serialize, Deserialize)]
pub struct CachedToken {
    pub token: String,
    /// Unix seconds.
    pub expires_at: u64,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub audience: Vec<String>,
    /// Unix seconds when latchkey obtained it.
    pub obtained_at: u64,
}

impl Drop for CachedToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token);
    }
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("subject", &self.subject)
            .field("audience", &self.audience)
            .finish()
    }
}

impl CachedToken {
    pub fn secret(&self) -> Secret<String> {
        Secret::new(self.token.clone())
    }

    /// Whether the token stays valid for at least `margin` after `now`.
    pub fn fresh(&self, now: SystemTime, margin: Duration) -> bool {
        unix(now).saturating_add(margin.as_secs()) < self.expires_at
    }

    /// Whether this is the token whose SHA-256 is `digest`.
    pub fn has_sha256(&self, digest: &[u8; 32]) -> bool {
        Sha256::digest(self.token.as_bytes())[..] == digest[..]
    }
}

pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The cache entry for one key.
pub struct TokenCache {
    path: PathBuf,
    lock: PathBuf,
    dir: PathBuf,
}

impl TokenCache {
    /// `identity` is everything that determines the token: registry, source config, audience.
    pub fn new(cache_dir: &Path, identity: &str) -> TokenCache {
        let digest = Sha256::digest(identity.as_bytes());
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let dir = cache_dir.join("tokens");
        TokenCache { path: dir.join(format!("{name}.json")), lock: dir.join(format!("{name}.lock")), dir }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached token, if any. A missing, unreadable or corrupt entry is just a miss: the
    /// cache holds nothing that cannot be fetched again.
    pub fn read(&self) -> Option<CachedToken> {
        let file = fs::File::open(&self.path).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY_BYTES).read_to_end(&mut bytes).ok()?;
        let parsed = serde_json::from_slice(&bytes).ok();
        zeroize::Zeroize::zeroize(&mut bytes);
        parsed
    }

    /// Return a token fresh for `margin`, refreshing through `fetch` under the lock if needed.
    /// `wait` bounds how long to wait for another process's refresh. A cached token whose
    /// SHA-256 is `rejected` (a registry refused it) is stale whatever its expiry; many callers
    /// naming the same rejected token still cause one refresh, as the first replaces it.
    pub fn get_or_refresh(
        &self,
        margin: Duration,
        wait: Duration,
        rejected: Option<&[u8; 32]>,
        fetch: impl FnOnce() -> Result<CachedToken, String>,
    ) -> Result<CachedToken, String> {
        let usable = |t: &CachedToken| t.fresh(SystemTime::now(), margin) && !rejected.is_some_and(|d| t.has_sha256(d));
        if let Some(hit) = self.read().filter(usable) {
            return Ok(hit);
        }
        let cache_err =
            |what: &str, e: io::Error| format!("cannot {what} the token cache in {}: {e}", self.dir.display());
        fsutil::ensure_private_dir(&self.dir).map_err(|e| cache_err("create", e))?;
        let _lock = lock_with_deadline(&self.lock, wait).map_err(|e| cache_err("lock", e))?;
        if let Some(hit) = self.read().filter(usable) {
            return Ok(hit);
        }
        let token = fetch()?;
        let mut json = serde_json::to_vec(&token).expect("cache entries always serialise");
        let written = fsutil::write_atomic(&self.path, &json, 0o600);
        zeroize::Zeroize::zeroize(&mut json);
        written.map_err(|e| cache_err("write", e))?;
        Ok(token)
    }

    /// Forget the cached token (e.g. after the registry rejected it).
    pub fn clear(&self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn lock_with_deadline(path: &Path, wait: Duration) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::other(format!(
                    "another latchkey process has been refreshing this token for over {}s; if none is running, delete {}",
                    wait.as_secs(),
                    path.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_in: u64) -> CachedToken {
        let now = unix(SystemTime::now());
        CachedToken {
            token: "t".into(),
            expires_at: now + expires_in,
            subject: None,
            audience: vec![],
            obtained_at: now,
        }
    }

    #[test]
    fn refreshes_only_when_stale() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "reg|mint");
        let margin = Duration::from_secs(60);
        let wait = Duration::from_secs(5);
        let mut calls = 0;
        cache
            .get_or_refresh(margin, wait, None, || {
                calls += 1;
                Ok(token(600))
            })
            .unwrap();
        cache
            .get_or_refresh(margin, wait, None, || {
                calls += 1;
                Ok(token(600))
            })
            .unwrap();
        assert_eq!(calls, 1);
        fs::write(cache.path(), serde_json::to_vec(&token(30)).unwrap()).unwrap();
        cache
            .get_or_refresh(margin, wait, None, || {
                calls += 1;
                Ok(token(600))
            })
            .unwrap();
        assert_eq!(calls, 2);
    }

    #[test]
    fn a_rejected_token_is_replaced_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "reg|mint");
        let (margin, wait) = (Duration::from_secs(60), Duration::from_secs(5));
        let named = |name: &str| {
            let mut t = token(600);
            t.token = name.into();
            t
        };
        cache.get_or_refresh(margin, wait, None, || Ok(named("first"))).unwrap();
        let first: [u8; 32] = Sha256::digest(b"first").into();
        let other: [u8; 32] = Sha256::digest(b"someone else's").into();
        // Naming another token changes nothing.
        let kept = cache.get_or_refresh(margin, wait, Some(&other), || panic!("not stale")).unwrap();
        assert_eq!(kept.token, "first");
        // Naming the cached one replaces it, and a second caller naming it gets the replacement.
        let second = cache.get_or_refresh(margin, wait, Some(&first), || Ok(named("second"))).unwrap();
        assert_eq!(second.token, "second");
        let again = cache.get_or_refresh(margin, wait, Some(&first), || panic!("refreshed twice")).unwrap();
        assert_eq!(again.token, "second");
    }

    #[test]
    fn concurrent_callers_naming_a_rejected_token_refresh_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "reg|mint");
        let (margin, wait) = (Duration::from_secs(60), Duration::from_secs(30));
        let mut first = token(600);
        first.token = "first".into();
        cache.get_or_refresh(margin, wait, None, || Ok(first)).unwrap();
        let rejected: [u8; 32] = Sha256::digest(b"first").into();
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        let answers: Vec<String> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..16)
                .map(|_| {
                    s.spawn(|| {
                        let cache = TokenCache::new(dir.path(), "reg|mint");
                        let got = cache.get_or_refresh(margin, wait, Some(&rejected), || {
                            fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let mut t = token(600);
                            t.token = "second".into();
                            Ok(t)
                        });
                        got.unwrap().token.clone()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(answers.iter().all(|a| a == "second"), "{answers:?}");
    }

    #[test]
    fn corrupt_entry_is_a_miss_and_errors_keep_old_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "k");
        fs::create_dir_all(cache.path().parent().unwrap()).unwrap();
        fs::write(cache.path(), b"{garbage").unwrap();
        assert!(cache.read().is_none());
        let err =
            cache.get_or_refresh(Duration::ZERO, Duration::from_secs(1), None, || Err("down".into())).unwrap_err();
        assert_eq!(err, "down");
        assert_eq!(fs::read(cache.path()).unwrap(), b"{garbage");
    }
}

//! On-disk cache of fetched or minted bearer tokens, with single-flight refresh.
//!
//! One small JSON file per (registry, source, audience) key, 0600 in a 0700 directory,
//! replaced atomically. Readers take no lock (rename is atomic). A refresh takes the key's
//! lock file, re-reads the cache (another process may have just refreshed it) and only then
//! asks the source, so N concurrent cold `get`s cause exactly one upstream call.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// cache holds nothing that cannot be fetched again. So is an entry another user could
    /// have written (or a symlink): it is never served, and the next refresh replaces it.
    pub fn read(&self) -> Option<CachedToken> {
        use fsutil::trust::{Purpose, check_dir, check_file};
        if check_dir(&self.dir, Purpose::Cache).is_err() || check_file(&self.path, Purpose::Cache).is_err() {
            return None;
        }
        let file = fsutil::open_nofollow(&self.path).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY_BYTES).read_to_end(&mut bytes).ok()?;
        let parsed = serde_json::from_slice(&bytes).ok();
        zeroize::Zeroize::zeroize(&mut bytes);
        parsed
    }

    /// Return a token fresh for `margin`, refreshing through `fetch` under the lock if needed.
    /// `wait` bounds how long to wait for another process's refresh. A cached token whose
    /// SHA-256 is `rejected` (a registry refused it) is stale whatever its expiry; many callers
    /// naming the same rejected token still cause one refresh, as the first replaces it. A
    /// cached token is served only if `valid` says it still is what the source would issue
    /// (a well-formed JWT for that audience); otherwise the source is asked again.
    pub fn get_or_refresh(
        &self,
        margin: Duration,
        wait: Duration,
        rejected: Option<&[u8; 32]>,
        valid: impl Fn(&CachedToken) -> bool,
        fetch: impl FnOnce() -> Result<CachedToken, String>,
    ) -> Result<CachedToken, String> {
        let usable = |t: &CachedToken| {
            t.fresh(SystemTime::now(), margin) && !rejected.is_some_and(|d| t.has_sha256(d)) && valid(t)
        };
        if let Some(hit) = self.read().filter(usable) {
            return Ok(hit);
        }
        let cache_err = |what: &str, e: &dyn std::fmt::Display| {
            format!("cannot {what} the token cache in {}: {e}", self.dir.display())
        };
        // The cache is an optimisation: if it cannot be created or locked (read-only home,
        // disk full), the source is asked without it and the answer still goes out.
        let lock = match fsutil::ensure_private_dir(&self.dir) {
            Ok(()) => {
                fsutil::trust::check_dir(&self.dir, fsutil::trust::Purpose::Cache).map_err(|e| e.to_string())?;
                match fsutil::lock_exclusive_within(&self.lock, wait) {
                    Ok(lock) => Some(lock),
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(cache_err("lock", &e)),
                    Err(e) => {
                        eprintln!("latchkey: warning: {}; asking the source without the cache", cache_err("lock", &e));
                        None
                    }
                }
            }
            Err(e) => {
                eprintln!("latchkey: warning: {}; asking the source without the cache", cache_err("create", &e));
                None
            }
        };
        if lock.is_some()
            && let Some(hit) = self.read().filter(usable)
        {
            return Ok(hit);
        }
        let token = fetch()?;
        if lock.is_some() {
            let mut json = serde_json::to_vec(&token).expect("cache entries always serialise");
            if let Err(e) = fsutil::write_atomic(&self.path, &json, 0o600) {
                eprintln!("latchkey: warning: {}; the token is answered but not cached", cache_err("write", &e));
            }
            zeroize::Zeroize::zeroize(&mut json);
        }
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
            .get_or_refresh(
                margin,
                wait,
                None,
                |_| true,
                || {
                    calls += 1;
                    Ok(token(600))
                },
            )
            .unwrap();
        cache
            .get_or_refresh(
                margin,
                wait,
                None,
                |_| true,
                || {
                    calls += 1;
                    Ok(token(600))
                },
            )
            .unwrap();
        assert_eq!(calls, 1);
        fs::write(cache.path(), serde_json::to_vec(&token(30)).unwrap()).unwrap();
        cache
            .get_or_refresh(
                margin,
                wait,
                None,
                |_| true,
                || {
                    calls += 1;
                    Ok(token(600))
                },
            )
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
        cache.get_or_refresh(margin, wait, None, |_| true, || Ok(named("first"))).unwrap();
        let first: [u8; 32] = Sha256::digest(b"first").into();
        let other: [u8; 32] = Sha256::digest(b"someone else's").into();
        // Naming another token changes nothing.
        let kept = cache.get_or_refresh(margin, wait, Some(&other), |_| true, || panic!("not stale")).unwrap();
        assert_eq!(kept.token, "first");
        // Naming the cached one replaces it, and a second caller naming it gets the replacement.
        let second = cache.get_or_refresh(margin, wait, Some(&first), |_| true, || Ok(named("second"))).unwrap();
        assert_eq!(second.token, "second");
        let again = cache.get_or_refresh(margin, wait, Some(&first), |_| true, || panic!("refreshed twice")).unwrap();
        assert_eq!(again.token, "second");
    }

    #[test]
    fn concurrent_callers_naming_a_rejected_token_refresh_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "reg|mint");
        let (margin, wait) = (Duration::from_secs(60), Duration::from_secs(30));
        let mut first = token(600);
        first.token = "first".into();
        cache.get_or_refresh(margin, wait, None, |_| true, || Ok(first)).unwrap();
        let rejected: [u8; 32] = Sha256::digest(b"first").into();
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        let answers: Vec<String> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..16)
                .map(|_| {
                    s.spawn(|| {
                        let cache = TokenCache::new(dir.path(), "reg|mint");
                        let got = cache.get_or_refresh(
                            margin,
                            wait,
                            Some(&rejected),
                            |_| true,
                            || {
                                fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                let mut t = token(600);
                                t.token = "second".into();
                                Ok(t)
                            },
                        );
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
        let err = cache
            .get_or_refresh(Duration::ZERO, Duration::from_secs(1), None, |_| true, || Err("down".into()))
            .unwrap_err();
        assert_eq!(err, "down");
        assert_eq!(fs::read(cache.path()).unwrap(), b"{garbage");
    }

    /// The cache is data on disk: an entry another user could have written, a symlink, or one
    /// the source would no longer issue is never served; the source is asked again.
    #[cfg(unix)]
    #[test]
    fn untrusted_or_invalid_entries_are_asked_again() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "reg|mint");
        let (margin, wait) = (Duration::from_secs(60), Duration::from_secs(5));
        let mut calls = 0;
        let mut ask = |cache: &TokenCache, valid: &dyn Fn(&CachedToken) -> bool| {
            cache
                .get_or_refresh(margin, wait, None, valid, || {
                    calls += 1;
                    Ok(token(600))
                })
                .unwrap();
        };
        ask(&cache, &|_| true);
        ask(&cache, &|_| true);
        fs::set_permissions(cache.path(), fs::Permissions::from_mode(0o666)).unwrap();
        assert!(cache.read().is_none(), "a world-writable entry is not served");
        ask(&cache, &|_| true);
        ask(&cache, &|_| false);
        fs::remove_file(cache.path()).unwrap();
        let elsewhere = dir.path().join("planted.json");
        let planted = serde_json::to_vec(&token(600)).unwrap();
        fs::write(&elsewhere, &planted).unwrap();
        std::os::unix::fs::symlink(&elsewhere, cache.path()).unwrap();
        assert!(cache.read().is_none(), "a symlinked entry is not served");
        ask(&cache, &|_| true);
        assert_eq!(calls, 4, "first ask, world-writable entry, invalid entry, symlinked entry");
        assert!(!fs::symlink_metadata(cache.path()).unwrap().file_type().is_symlink(), "replaced, not followed");
        assert_eq!(fs::read(&elsewhere).unwrap(), planted, "the symlink's target is left as it was");
    }

    /// A read-only cache directory (or a full disk) costs the cache, not the answer.
    #[cfg(unix)]
    #[test]
    fn an_unwritable_cache_still_answers() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("cache");
        fs::create_dir(&cache_dir).unwrap();
        // Not creatable: the cache dir's parent is a file.
        fs::write(cache_dir.join("tokens"), b"not a directory").unwrap();
        let cache = TokenCache::new(&cache_dir, "reg|mint");
        let got = cache.get_or_refresh(Duration::ZERO, Duration::from_secs(1), None, |_| true, || Ok(token(600)));
        assert_eq!(got.unwrap().token, "t");
    }
}

//! Is the browser session behind a device secret still alive? Ask the registry's token
//! endpoint (`GET realm?service=..` with Basic auth, as docker itself would), and remember a
//! positive answer on disk (no secret in it) for `check-interval-secs`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::browser::check_endpoint_url;
use latchkey_fs as fsutil;
use latchkey_http as http;
use latchkey_protocol::challenge::parse_challenge;
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;

/// The token endpoint a device secret is checked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub realm: Url,
    pub service: Option<String>,
}

impl Endpoint {
    /// The realm without its query, for messages.
    pub fn shown(&self) -> String {
        let mut u = self.realm.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.to_string()
    }
}

/// What the token endpoint said about the device secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 200: a token was issued.
    Alive,
    /// 401 `{"error":"oauth_session_expired", ...}`: the secret is fine, its browser session is not.
    Expired { login_url: Option<String>, message: Option<String> },
    /// Any other 401/403: the secret itself is not accepted (revoked, deleted, wrong account).
    Rejected { status: u16, detail: String },
}

/// Find the token endpoint from the registry's `/v2/` challenge
/// (`WWW-Authenticate: Bearer realm="..",service=".."`).
pub fn discover(registry_base: &str, timeout: Duration) -> Result<Endpoint, String> {
    let client = http::Client::new("registry", timeout)?;
    let url = format!("{}/v2/", registry_base.trim_end_matches('/'));
    let response = client.send(client.get(&url), &url)?;
    let challenge = response
        .headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| parse_challenge(v).filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")));
    let Some((_, params)) = challenge else {
        return Err(match response.status {
            200 => format!(
                "the registry at {url} answered 200 without asking for credentials, so it has no token endpoint to check; set realm in the device table if its token endpoint is elsewhere"
            ),
            401 => format!(
                "the registry at {url} asks for credentials but names no Bearer token endpoint (no `WWW-Authenticate: Bearer realm=..`); set realm in the device table"
            ),
            status => format!(
                "the registry at {url} answered HTTP {status} with {} instead of a 401 naming its token endpoint; set realm in the device table",
                response.server_message()
            ),
        });
    };
    let realm = params.get("realm").ok_or_else(|| {
        format!("the registry at {url} sent a Bearer challenge without a realm; set realm in the device table")
    })?;
    let realm = check_endpoint_url(realm, &format!("the token endpoint the registry at {url} names"))?;
    Ok(Endpoint { realm, service: params.get("service").cloned() })
}

/// Ask the token endpoint for a token with the device secret as the Basic password.
pub fn check(
    endpoint: &Endpoint,
    scope: Option<&str>,
    account: &str,
    secret: &Secret<String>,
    timeout: Duration,
) -> Result<Verdict, String> {
    let client = http::Client::new("token endpoint", timeout)?.redacting_basic(account, secret);
    let mut url = endpoint.realm.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(service) = &endpoint.service {
            q.append_pair("service", service);
        }
        if let Some(scope) = scope {
            q.append_pair("scope", scope);
        }
    }
    let shown = endpoint.shown();
    let request =
        client.get(url.as_str()).basic_auth(account, Some(secret.expose())).header("Accept", "application/json");
    let response = client.send(request, &shown)?;
    let quote = |text: &str, max: usize| response.redactor().quote(text, max);
    match response.status {
        // A 200 is a live session only if it is a token answer: a captive portal or a proxy's
        // login page also answers 200, and must not be remembered as a live session.
        200 => {
            let json: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
            let has_token = json.as_ref().is_some_and(|j| {
                ["token", "access_token"]
                    .iter()
                    .any(|f| j.get(f).and_then(|t| t.as_str()).is_some_and(|t| !t.is_empty()))
            });
            if has_token {
                return Ok(Verdict::Alive);
            }
            // Never quote this body: an answer that is almost a token answer may hold a token.
            let what = match json {
                Some(_) => "JSON without a token or access_token",
                None if response.body.trim_ascii_start().starts_with(b"<") => "an HTML page",
                None => "a body that is not JSON (truncated or not a token answer)",
            };
            Err(format!("the token endpoint at {shown} answered HTTP 200 with {what} instead of a token"))
        }
        401 | 403 => {
            #[derive(Deserialize)]
            struct ErrorBody {
                error: Option<String>,
                message: Option<String>,
                login_url: Option<String>,
            }
            let parsed: Option<ErrorBody> = serde_json::from_slice(&response.body).ok();
            match parsed {
                Some(ErrorBody { error: Some(e), message, login_url }) if e == "oauth_session_expired" => {
                    Ok(Verdict::Expired { login_url, message: message.map(|m| quote(&m, 300)) })
                }
                Some(ErrorBody { error: Some(e), message, .. }) => {
                    let detail = match message {
                        Some(m) => format!("{}: {}", quote(&e, 80), quote(&m, 200)),
                        None => quote(&e, 80),
                    };
                    Ok(Verdict::Rejected { status: response.status, detail })
                }
                _ => Ok(Verdict::Rejected { status: response.status, detail: response.server_message() }),
            }
        }
        status => {
            Err(format!("the token endpoint at {shown} answered HTTP {status} with {}", response.server_message()))
        }
    }
}

// ---------------------------------------------------------------------------------------
// On-disk state, one set of files per registry under `<cache>/device/`: the last positive
// check (account, time, endpoint; never the secret), and the outcome of the last browser
// login so that processes that waited for it give the same answer.

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub account: String,
    /// Unix seconds of the last 200 from the token endpoint.
    pub alive_at: u64,
    pub realm: String,
    pub service: Option<String>,
}

/// The outcome of a browser login one process led while others waited.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginOutcome {
    /// Unix milliseconds when the leader finished.
    pub at_ms: u64,
    pub alive: bool,
    /// The error the leader failed with (no secret in it).
    pub message: String,
}

pub struct SessionCache {
    dir: PathBuf,
    record: PathBuf,
    outcome: PathBuf,
    lock: PathBuf,
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(64 * 1024).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl SessionCache {
    pub fn new(cache_dir: &Path, key: &RegistryKey) -> SessionCache {
        let digest = Sha256::digest(format!("device|{key}").as_bytes());
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let dir = cache_dir.join("device");
        SessionCache {
            record: dir.join(format!("{name}.json")),
            outcome: dir.join(format!("{name}.login.json")),
            lock: dir.join(format!("{name}.login.lock")),
            dir,
        }
    }

    pub fn lock_path(&self) -> &Path {
        &self.lock
    }

    pub fn ensure_dir(&self) -> std::io::Result<()> {
        fsutil::ensure_private_dir(&self.dir)
    }

    pub fn read(&self) -> Option<SessionRecord> {
        read_json(&self.record)
    }

    /// The record, if it says `account`'s session was alive less than `interval` ago.
    pub fn fresh(&self, account: &str, interval: Duration) -> Option<SessionRecord> {
        let record = self.read()?;
        let now = now_secs();
        // A record from the future (clock moved back) is not trusted.
        let fresh = record.account == account
            && record.alive_at <= now + 5
            && now - record.alive_at.min(now) < interval.as_secs();
        fresh.then_some(record)
    }

    /// Remember that `account`'s session answered 200 just now. Failing to write is not fatal:
    /// the next `get` checks again.
    pub fn write_alive(&self, account: &str, endpoint: &Endpoint) {
        let record = SessionRecord {
            account: account.to_owned(),
            alive_at: now_secs(),
            realm: endpoint.realm.to_string(),
            service: endpoint.service.clone(),
        };
        if self.ensure_dir().is_ok() {
            let json = serde_json::to_vec(&record).expect("records always serialise");
            let _ = fsutil::write_atomic(&self.record, &json, 0o600);
        }
    }

    pub fn read_outcome(&self) -> Option<LoginOutcome> {
        read_json(&self.outcome)
    }

    pub fn write_outcome(&self, alive: bool, message: &str) {
        let outcome = LoginOutcome { at_ms: now_ms(), alive, message: message.to_owned() };
        if self.ensure_dir().is_ok() {
            let json = serde_json::to_vec(&outcome).expect("outcomes always serialise");
            let _ = fsutil::write_atomic(&self.outcome, &json, 0o600);
        }
    }

    /// Forget everything (after login or logout: a new secret, or none).
    pub fn clear(&self) {
        for path in [&self.record, &self.outcome] {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_fresh_only_for_the_same_account_and_interval() {
        let dir = tempfile::tempdir().unwrap();
        let key = RegistryKey::parse("reg.example").unwrap();
        let cache = SessionCache::new(dir.path(), &key);
        let endpoint = Endpoint { realm: Url::parse("https://reg.example/auth/token").unwrap(), service: None };
        assert!(cache.fresh("alice", Duration::from_secs(60)).is_none());
        cache.write_alive("alice", &endpoint);
        assert!(cache.fresh("alice", Duration::from_secs(60)).is_some());
        assert!(cache.fresh("bob", Duration::from_secs(60)).is_none());
        assert!(cache.fresh("alice", Duration::ZERO).is_none());
        cache.clear();
        assert!(cache.fresh("alice", Duration::from_secs(60)).is_none());
    }
}

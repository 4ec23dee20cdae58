//! An in-process test authorization server for device mode: the RFC 8628 endpoints, the
//! ATCR-style token endpoint (`GET /auth/token?service=&scope=` with Basic auth, device
//! secrets dispatched on the `atcr_device_` prefix, the `oauth_session_expired` 401 body), the
//! pages a browser visits, an RFC 7009 revocation endpoint, and a registry `/v2/` that names
//! the token endpoint. Tests flip its state (expire the session, revoke the secret, ...), and a
//! stand-in browser script records the URLs it is given and "logs in" by fetching them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;

pub const SECRET_PREFIX: &str = "atcr_device_";
pub const ACCOUNT: &str = "alice.test";
pub const SERVICE: &str = "test-registry";

/// What the user does on a page the browser opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrowserAction {
    Approve,
    Deny,
    Ignore,
}

pub struct Device {
    pub secret: String,
    pub account: String,
    pub session_alive: bool,
    pub revoked: bool,
}

pub struct Code {
    pub device_code: String,
    pub user_code: String,
    pub approved: Option<bool>,
    pub polls: u32,
}

/// Issues the `token` of a successful token-endpoint answer: (account, service, scopes) -> JWT.
pub type Issuer = Box<dyn Fn(&str, &str, &[String]) -> String + Send>;

pub struct State {
    pub browser: BrowserAction,
    /// Answer `authorization_pending` to this many polls of a code before looking at approval.
    pub pending_polls: u32,
    /// Answer `slow_down` to this poll (0-based) of a code.
    pub slow_down_at: Option<u32>,
    /// Approve a code by itself at this poll (a user approving on another device).
    pub auto_approve_at: Option<u32>,
    /// Answer `expired_token` to every poll.
    pub expire_codes: bool,
    pub expires_in: u64,
    pub interval: u64,
    pub account: String,
    pub devices: Vec<Device>,
    pub codes: Vec<Code>,
    /// `verification_uri` (and `_complete`) sent by the device endpoint (default `<base>/device`).
    pub verification_uri: Option<String>,
    /// `login_url` in the `oauth_session_expired` body (default `<base>/auth/oauth/login`).
    pub login_url: Option<String>,
    /// Make the token endpoint answer this status and body instead.
    pub token_override: Option<(u16, String)>,
    pub token_delay: Duration,
    /// Token-endpoint requests seen.
    pub token_checks: u32,
    /// What each device-code poll was answered (`authorization_pending`, `slow_down`, `ok`, ...).
    pub polls: Vec<String>,
    pub revoked: Vec<String>,
    /// `METHOD path?query` of every request.
    pub requests: Vec<String>,
    pub issuer: Option<Issuer>,
}

impl Default for State {
    fn default() -> Self {
        State {
            browser: BrowserAction::Approve,
            pending_polls: 0,
            slow_down_at: None,
            auto_approve_at: None,
            expire_codes: false,
            expires_in: 600,
            interval: 1,
            account: ACCOUNT.into(),
            devices: Vec::new(),
            codes: Vec::new(),
            verification_uri: None,
            login_url: None,
            token_override: None,
            token_delay: Duration::ZERO,
            token_checks: 0,
            polls: Vec::new(),
            revoked: Vec::new(),
            requests: Vec::new(),
            issuer: None,
        }
    }
}

impl State {
    pub fn expire_sessions(&mut self) {
        for d in &mut self.devices {
            d.session_alive = false;
        }
    }

    pub fn revoke_all(&mut self) {
        for d in &mut self.devices {
            d.revoked = true;
        }
    }

    pub fn secret(&self) -> Option<String> {
        self.devices.last().map(|d| d.secret.clone())
    }
}

pub struct AuthServer {
    pub base: String,
    /// `127.0.0.1:PORT`: the registry key when this server is also the registry.
    pub host: String,
    pub state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

fn unique() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{:x}{:04x}", nanos, COUNTER.fetch_add(1, Ordering::SeqCst))
}

struct Reply {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply { status, body: body.into(), headers: Vec::new() }
}

/// An error as Distribution words it (latchkey quotes only such fields, never a raw body).
fn oci_error(status: u16, message: &str) -> Reply {
    json(status, serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": message}]}))
}

fn json(status: u16, value: serde_json::Value) -> Reply {
    Reply { status, body: value.to_string(), headers: vec![("Content-Type".into(), "application/json".into())] }
}

impl AuthServer {
    pub fn start() -> AuthServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let host = server.server_addr().to_ip().unwrap().to_string();
        let base = format!("http://{host}");
        let state = Arc::new(Mutex::new(State::default()));
        let (s, st, b) = (server.clone(), state.clone(), base.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let (st, b) = (st.clone(), b.clone());
                std::thread::spawn(move || {
                    let mut body = String::new();
                    let _ = request.as_reader().take(1 << 20).read_to_string(&mut body);
                    let authorization = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Authorization"))
                        .map(|h| h.value.as_str().to_owned());
                    let method = request.method().as_str().to_owned();
                    let url = request.url().to_owned();
                    let (delay, out) = handle(&st, &b, &method, &url, authorization.as_deref(), &body);
                    std::thread::sleep(delay);
                    let mut response = tiny_http::Response::from_string(out.body).with_status_code(out.status);
                    for (name, value) in out.headers {
                        response.add_header(tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap());
                    }
                    let _ = request.respond(response);
                });
            }
        });
        AuthServer { base, host, state, server }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

fn query(url: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some((_, q)) = url.split_once('?') {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            out.entry(k.into_owned()).or_default().push(v.into_owned());
        }
    }
    out
}

fn handle(
    state: &Mutex<State>,
    base: &str,
    method: &str,
    url: &str,
    authorization: Option<&str>,
    body: &str,
) -> (Duration, Reply) {
    let mut s = state.lock().unwrap();
    s.requests.push(format!("{method} {url}"));
    let path = url.split('?').next().unwrap_or("");
    let q = query(url);
    let first = |name: &str| q.get(name).and_then(|v| v.first()).cloned();
    match (method, path) {
        ("GET", "/v2/") => {
            let mut r = reply(401, "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
            r.headers
                .push(("WWW-Authenticate".into(), format!("Bearer realm=\"{base}/auth/token\",service=\"{SERVICE}\"")));
            (Duration::ZERO, r)
        }
        ("POST", "/auth/device/code") => {
            let form: BTreeMap<String, String> = serde_urlencoded::from_str(body).unwrap_or_default();
            if form.get("client_id").map(String::as_str) != Some("latchkey") {
                return (Duration::ZERO, json(400, serde_json::json!({"error": "invalid_client"})));
            }
            let device_code = format!("dc-{}", unique());
            let user_code = format!("WDJB-{:04}", COUNTER.fetch_add(1, Ordering::SeqCst) % 10_000);
            s.codes.push(Code {
                device_code: device_code.clone(),
                user_code: user_code.clone(),
                approved: None,
                polls: 0,
            });
            let answer = serde_json::json!({
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": s.verification_uri.clone().unwrap_or_else(|| format!("{base}/device")),
                "verification_uri_complete": s.verification_uri.clone().unwrap_or_else(|| format!("{base}/device?user_code={user_code}")),
                "expires_in": s.expires_in,
                "interval": s.interval,
            });
            (Duration::ZERO, json(200, answer))
        }
        ("POST", "/auth/device/token") => {
            let form: BTreeMap<String, String> = serde_urlencoded::from_str(body).unwrap_or_default();
            if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:device_code") {
                return (Duration::ZERO, json(400, serde_json::json!({"error": "unsupported_grant_type"})));
            }
            let device_code = form.get("device_code").cloned().unwrap_or_default();
            let (expire, slow, pending, auto) = (s.expire_codes, s.slow_down_at, s.pending_polls, s.auto_approve_at);
            let Some(code) = s.codes.iter_mut().find(|c| c.device_code == device_code) else {
                return (Duration::ZERO, json(400, serde_json::json!({"error": "invalid_grant"})));
            };
            let n = code.polls;
            code.polls += 1;
            if auto.is_some_and(|a| n >= a) && code.approved.is_none() {
                code.approved = Some(true);
            }
            let error = if expire {
                Some("expired_token")
            } else if slow == Some(n) {
                Some("slow_down")
            } else if n < pending {
                Some("authorization_pending")
            } else {
                match code.approved {
                    None => Some("authorization_pending"),
                    Some(false) => Some("access_denied"),
                    Some(true) => None,
                }
            };
            if let Some(e) = error {
                s.polls.push(e.into());
                return (Duration::ZERO, json(400, serde_json::json!({"error": e})));
            }
            s.codes.retain(|c| c.device_code != device_code);
            s.polls.push("ok".into());
            let secret = format!("{SECRET_PREFIX}{}", unique());
            let account = s.account.clone();
            s.devices.push(Device {
                secret: secret.clone(),
                account: account.clone(),
                session_alive: true,
                revoked: false,
            });
            (
                Duration::ZERO,
                json(200, serde_json::json!({"device_secret": secret, "username": account, "token_type": "device"})),
            )
        }
        ("GET", "/device") => {
            let action = s.browser;
            if let Some(code) = first("user_code").and_then(|u| s.codes.iter_mut().find(|c| c.user_code == u)) {
                match action {
                    BrowserAction::Approve => code.approved = Some(true),
                    BrowserAction::Deny => code.approved = Some(false),
                    BrowserAction::Ignore => {}
                }
            }
            (Duration::ZERO, reply(200, "<html><body>Device login</body></html>"))
        }
        ("GET", "/auth/oauth/login") => {
            if s.browser == BrowserAction::Approve {
                for d in &mut s.devices {
                    if !d.revoked {
                        d.session_alive = true;
                    }
                }
            }
            (Duration::ZERO, reply(200, "<html><body>Logged in</body></html>"))
        }
        ("POST", "/auth/revoke") => {
            let form: BTreeMap<String, String> = serde_urlencoded::from_str(body).unwrap_or_default();
            let token = form.get("token").cloned().unwrap_or_default();
            for d in &mut s.devices {
                if d.secret == token {
                    d.revoked = true;
                }
            }
            s.revoked.push(token);
            (Duration::ZERO, reply(200, ""))
        }
        ("GET", "/auth/token") => {
            s.token_checks += 1;
            let delay = s.token_delay;
            if let Some((status, body)) = s.token_override.clone() {
                return (delay, reply(status, body));
            }
            let basic = |r: Reply| {
                let mut r = r;
                r.headers.push(("WWW-Authenticate".into(), format!("Basic realm=\"{base}/auth/token\"")));
                r
            };
            let Some((user, password)) = authorization.and_then(decode_basic) else {
                return (delay, basic(reply(401, "authentication required")));
            };
            if !password.starts_with(SECRET_PREFIX) {
                return (delay, basic(reply(401, "invalid username or password")));
            }
            let login_url = s.login_url.clone().unwrap_or_else(|| format!("{base}/auth/oauth/login"));
            let Some(device) = s.devices.iter().find(|d| d.secret == password) else {
                return (delay, basic(oci_error(401, "invalid device secret")));
            };
            if device.revoked || device.account != user {
                return (delay, basic(oci_error(401, "device secret revoked")));
            }
            if !device.session_alive {
                let body = serde_json::json!({
                    "error": "oauth_session_expired",
                    "message": "Your OAuth session has expired. Please log in again.",
                    "login_url": login_url,
                });
                return (delay, basic(json(401, body)));
            }
            let service = first("service").unwrap_or_default();
            let scopes = q.get("scope").cloned().unwrap_or_default();
            let token = match &s.issuer {
                Some(issue) => issue(&user, &service, &scopes),
                None => format!("registry-token-{}", unique()),
            };
            let issued_at = humantime_now();
            (
                delay,
                json(
                    200,
                    serde_json::json!({"token": token, "access_token": token, "expires_in": 300, "issued_at": issued_at}),
                ),
            )
        }
        _ => (Duration::ZERO, reply(404, "not found")),
    }
}

fn decode_basic(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// RFC 3339 UTC, second precision, without a date crate.
fn humantime_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// A stand-in browser: records each URL it is given (one per line) and "logs in" by fetching
/// it (a bash script, no shell involved in latchkey's call), which the test server treats as
/// the user completing the page.
pub struct StandInBrowser {
    pub script: PathBuf,
    pub log: PathBuf,
}

impl StandInBrowser {
    pub fn new(dir: &Path) -> StandInBrowser {
        let script = dir.join("browser.sh");
        let log = dir.join("browser.log");
        // bash's /dev/tcp instead of curl: no extra package for CI. Only plain-http loopback
        // URLs are fetched (the test server); anything else is just recorded.
        let body = r#"#!/bin/bash
printf '%s\n' "$1" >> "__LOG__"
case "$1" in http://*) ;; *) exit 0 ;; esac
rest="${1#http://}"
hostport="${rest%%/*}"
path="/${rest#*/}"
[ "$rest" = "$hostport" ] && path="/"
exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
timeout 10 cat <&3 >/dev/null
"#;
        std::fs::write(&script, body.replace("__LOG__", &log.display().to_string())).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        StandInBrowser { script, log }
    }

    /// The URLs opened so far.
    pub fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).map(|s| s.lines().map(str::to_owned).collect()).unwrap_or_default()
    }

    /// The URLs opened, once there are at least `n` (or after 20 s): latchkey does not wait
    /// for a browser it started, so the stand-in may log after latchkey has exited.
    pub fn opened_at_least(&self, n: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let opened = self.opened();
            if opened.len() >= n || std::time::Instant::now() > deadline {
                return opened;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

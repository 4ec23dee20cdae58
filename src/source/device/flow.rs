//! RFC 8628, the OAuth 2.0 device authorization grant: ask for a device code, show the user
//! code and verification URL (and open it where a person and a browser are), then poll the
//! token endpoint honouring `interval`, `authorization_pending`, `slow_down` (+5 s),
//! `access_denied` and `expired_token`, within a bounded total time. Cancelling (Ctrl-C sets
//! `cancel`) returns before anything is stored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::DeviceConfig;
use super::progress::Progress;
use crate::browser::{self, printable};
use crate::duration::human_secs;
use latchkey_http as http;
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_numbers;
use latchkey_protocol::server_url::RegistryKey;

pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Consecutive transport failures tolerated while polling before giving up.
const MAX_POLL_FAILURES: u32 = 3;

/// What a completed login yields.
pub struct Grant {
    pub account: String,
    pub secret: Secret<String>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant").field("account", &self.account).field("secret", &"<redacted>").finish()
    }
}

#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    #[serde(alias = "verification_url")]
    verification_uri: String,
    #[serde(default, alias = "verification_url_complete")]
    verification_uri_complete: Option<String>,
    /// Any JSON: read through `server_numbers` (defaulted and clamped, never an error).
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    interval: Option<serde_json::Value>,
}

impl Drop for DeviceAuthorization {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.device_code);
    }
}

/// Run the whole grant for `key`. Human text goes to stderr; nothing is stored here.
pub fn run(config: &DeviceConfig, key: &RegistryKey, cancel: &AtomicBool) -> Result<Grant, String> {
    let timeout = Duration::from_secs(config.timeout_secs);
    let device_url = config.device_authorization_url(key);
    let token_url = config.token_url(key);
    let client = http::Client::new("device authorization endpoint", timeout)?;
    let mut form: Vec<(&str, &str)> = vec![("client_id", &config.client_id)];
    if let Some(scope) = &config.scope {
        form.push(("scope", scope));
    }
    let body = serde_urlencoded::to_string(&form).map_err(|e| format!("cannot encode the device request: {e}"))?;
    let request = client
        .post(&device_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(body);
    let response = client.send(request, &device_url)?;
    if response.status != 200 {
        return Err(format!(
            "the device authorization endpoint at {device_url} answered HTTP {} with {}",
            response.status,
            response.server_message()
        ));
    }
    // A 200 holds the device code, a secret: its body is described, never quoted.
    let auth: DeviceAuthorization = serde_json::from_slice(&response.body).map_err(|e| {
        let what = match serde_json::from_slice::<serde_json::Value>(&response.body) {
            Ok(serde_json::Value::Object(o)) => format!(
                "JSON with the fields {}",
                o.keys().map(|k| printable(k, 40)).collect::<Vec<_>>().join(", ")
            ),
            Ok(_) => "JSON that is not an object".to_owned(),
            Err(_) => response.redactor().server_message(&response.body),
        };
        let e = if e.is_data() { "missing or mistyped fields".to_owned() } else { format!("line {}, column {}", e.line(), e.column()) };
        format!(
            "the device authorization endpoint at {device_url} answered with {what} instead of device_code, user_code and verification_uri ({e})"
        )
    })?;
    let codes = http::Redactor::new().secret(&auth.device_code);

    let allowed = config.allowed_hosts(key);
    let user_code = printable(&auth.user_code, 64);
    let verification = browser::check_login_url(&auth.verification_uri, &allowed, &codes.spellings()).map_err(|e| {
        format!("the device authorization endpoint at {device_url} sent an unsafe verification URL: {e}")
    })?;
    // The complete URI (with the user code in it) is a convenience: fall back to the plain one.
    let complete = auth
        .verification_uri_complete
        .as_deref()
        .and_then(|u| browser::check_login_url(u, &allowed, &codes.spellings()).ok());

    eprintln!("latchkey: to log in to {key}, open");
    eprintln!("latchkey:     {verification}");
    eprintln!("latchkey: and enter the code  {user_code}");
    match browser::interactive() {
        Ok(()) => match browser::open(complete.as_ref().unwrap_or(&verification)) {
            Ok(how) => eprintln!("latchkey: opened it {how}; check that the page shows the code {user_code}."),
            Err(e) => eprintln!("latchkey: {e}; open the URL yourself."),
        },
        Err(why) => {
            eprintln!("latchkey: not opening a browser here ({why}); open the URL on any device.");
            let target = complete.as_ref().unwrap_or(&verification);
            if let Some(drawing) = super::qr::wanted().then(|| super::qr::render(target.as_str())).flatten() {
                eprintln!("latchkey: or scan this with a phone ({target}):");
                eprintln!("{drawing}");
            }
        }
    }

    // Server numbers are clamped (server_numbers): the code lives 1 s..=login-timeout-secs,
    // polls are 1..=60 s apart.
    let total =
        server_numbers::device_code_lifetime(auth.expires_in.as_ref(), Duration::from_secs(config.login_timeout_secs));
    let deadline = server_numbers::deadline_after(Instant::now(), total);
    let mut interval = server_numbers::poll_interval(auth.interval.as_ref());
    // The next pause: the interval, or longer once when a busy server asks (Retry-After).
    let mut pause = interval;
    let device_code = Secret::new(auth.device_code.clone());
    let progress = Progress::new("waiting for the login to be approved");
    let mut failures = 0;
    let poll_client = http::Client::new("token endpoint", timeout)?.redacting(&device_code);
    loop {
        if !sleep_unless_cancelled(pause, deadline, cancel, &progress) {
            progress.finish();
            return Err("login cancelled; nothing was stored".into());
        }
        if Instant::now() >= deadline {
            progress.finish();
            return Err(format!(
                "the login was not approved within {}; nothing was stored. Run the login again when you are ready",
                human_secs(total.as_secs() as i64)
            ));
        }
        let form = serde_urlencoded::to_string([
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", device_code.expose()),
            ("client_id", &config.client_id),
        ])
        .map(Secret::new)
        .map_err(|e| format!("cannot encode the token request: {e}"))?;
        let request = poll_client
            .post(&token_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(form.expose().clone());
        pause = interval;
        let response = match poll_client.send(request, &token_url) {
            Ok(r) if r.status < 500 && r.status != 429 => r,
            Ok(r) => {
                // Busy or failing: wait what it asks (at most 60 s, never past the deadline).
                if let Some(wait) = r.headers.get("retry-after").and_then(|v| v.to_str().ok()) {
                    pause = interval.max(server_numbers::retry_after(wait).unwrap_or_default());
                }
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    progress.finish();
                    return Err(format!(
                        "the token endpoint at {token_url} answered HTTP {} with {} {failures} times in a row; nothing was stored",
                        r.status,
                        r.server_message()
                    ));
                }
                continue;
            }
            Err(e) => {
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    progress.finish();
                    return Err(format!("{e} ({failures} times in a row); nothing was stored"));
                }
                continue;
            }
        };
        failures = 0;
        if response.status == 200 {
            progress.finish();
            return grant_from(&response.body, config, &token_url);
        }
        let json: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
        let error = json.as_ref().and_then(|j| j.get("error")?.as_str().map(str::to_owned));
        match error.as_deref() {
            Some("authorization_pending") => {}
            Some("slow_down") => {
                interval = server_numbers::slowed_down(interval);
                pause = interval;
            }
            Some("access_denied") => {
                progress.finish();
                return Err("the login was denied in the browser; nothing was stored".into());
            }
            Some("expired_token") => {
                progress.finish();
                return Err(format!(
                    "the code {user_code} expired before the login was approved; nothing was stored. Run the login again"
                ));
            }
            _ => {
                progress.finish();
                return Err(format!(
                    "the token endpoint at {token_url} refused the login (HTTP {}): {}; nothing was stored",
                    response.status,
                    response.server_message()
                ));
            }
        }
    }
}

/// Pull the device secret and the account name out of the token answer.
fn grant_from(body: &[u8], config: &DeviceConfig, token_url: &str) -> Result<Grant, String> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        let what =
            if body.trim_ascii_start().starts_with(b"<") { "an HTML page" } else { "not JSON (or truncated JSON)" };
        format!("the token endpoint at {token_url} approved the login but its answer is {what}; nothing was stored")
    })?;
    let fields = || {
        json.as_object().map(|o| o.keys().map(|k| printable(k, 40)).collect::<Vec<_>>().join(", ")).unwrap_or_default()
    };
    let secret = match json.get(&config.secret_field) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Secret::new(s.trim().to_owned()),
        _ => {
            return Err(format!(
                "the token endpoint at {token_url} approved the login but its answer has no string field {:?} (secret-field) holding the device secret; it has: {}",
                config.secret_field,
                fields()
            ));
        }
    };
    let account = match json.get(&config.account_field) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => {
            return Err(format!(
                "the token endpoint at {token_url} approved the login but its answer has no string field {:?} (account-field) naming the account; it has: {}",
                config.account_field,
                fields()
            ));
        }
    };
    if account.chars().any(char::is_control) || account.len() > 256 {
        return Err(format!("the token endpoint at {token_url} sent an account name that is not printable"));
    }
    Ok(Grant { account, secret })
}

/// Sleep `interval` in small steps. Returns false if cancelled.
fn sleep_unless_cancelled(interval: Duration, deadline: Instant, cancel: &AtomicBool, progress: &Progress) -> bool {
    let until = server_numbers::deadline_after(Instant::now(), interval).min(deadline);
    loop {
        if cancel.load(Ordering::SeqCst) {
            return false;
        }
        progress.tick(deadline);
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}

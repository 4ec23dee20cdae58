//! Device secrets: a long-lived secret (e.g. `atcr_device_...`) obtained once through a
//! browser login (RFC 8628, [`flow`]) and kept in the credential store, answered by `get` as
//! `{"Username": <account>, "Secret": <device secret>}` after checking, at most once per
//! `check-interval-secs`, that the browser session behind it is alive ([`session`]).
//!
//! When the registry's token endpoint says `oauth_session_expired`, an interactive `get` opens
//! the (checked) `login_url` once, however many `get`s are running: the first takes a
//! per-registry lock and leads, the others wait on it and give the leader's answer. A
//! non-interactive `get` opens nothing and fails at once with the URL and the command to run.

pub mod flow;
pub mod progress;
pub mod qr;
pub mod session;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Answer, CredentialSource, Mode, SourceStatus};
use crate::browser::{self, AllowedHosts, check_endpoint_url, printable};
use crate::duration::human_secs;
use crate::store::LazyStore;
use latchkey_protocol::helper::HelperError;
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;
use latchkey_store::{Store, StoredCredential};
use session::{Endpoint, SessionCache, Verdict};

/// The exact command a user runs to (re)create a device secret.
pub fn login_command(key: &RegistryKey) -> String {
    format!("docker-credential-latchkey login {key}")
}

/// Re-check the session this often while waiting for the browser login.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// `[registries."host".device]`: every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceConfig {
    /// RFC 8628 device authorization endpoint (default `<registry-url>/auth/device/code`).
    pub device_authorization_url: Option<String>,
    /// RFC 8628 token endpoint polled during login (default `<registry-url>/auth/device/token`).
    pub token_url: Option<String>,
    pub client_id: String,
    /// OAuth scope requested at login.
    pub scope: Option<String>,
    /// The registry's base URL (default `https://<host>`; `http://` for loopback hosts).
    pub registry_url: Option<String>,
    /// The token endpoint the device secret is checked at; default: from `/v2/`'s challenge.
    pub realm: Option<String>,
    /// The `service` sent to the realm; default: from `/v2/`'s challenge.
    pub service: Option<String>,
    /// A `scope` sent with the session check (default none).
    pub check_scope: Option<String>,
    /// Remember a live session this long before checking again (0 = check on every `get`).
    pub check_interval_secs: u64,
    /// How long an interactive `get` waits for the browser login to renew the session.
    pub login_wait_secs: u64,
    /// Upper bound on `login` (the device code's `expires_in` may shorten it).
    pub login_timeout_secs: u64,
    /// Hosts besides the registry's (and the configured endpoints') a login page may be on.
    pub allowed_login_hosts: Vec<String>,
    /// JSON field of the token answer holding the device secret.
    pub secret_field: String,
    /// JSON field of the token answer holding the account name (the Basic user name).
    pub account_field: String,
    /// RFC 7009 revocation endpoint used by `logout` (default: none, local erase only).
    pub revocation_url: Option<String>,
    /// Timeout of each HTTP request.
    pub timeout_secs: u64,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            device_authorization_url: None,
            token_url: None,
            client_id: "latchkey".into(),
            scope: None,
            registry_url: None,
            realm: None,
            service: None,
            check_scope: None,
            check_interval_secs: 60,
            login_wait_secs: 120,
            login_timeout_secs: 900,
            allowed_login_hosts: Vec::new(),
            secret_field: "device_secret".into(),
            account_field: "username".into(),
            revocation_url: None,
            timeout_secs: 10,
        }
    }
}

impl DeviceConfig {
    pub fn registry_url(&self, key: &RegistryKey) -> String {
        match &self.registry_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let host = key.api_host();
                let loopback = browser::host_of(host).is_some_and(|h| latchkey_http::is_loopback_host(&h));
                format!("{}://{host}", if loopback { "http" } else { "https" })
            }
        }
    }

    pub fn device_authorization_url(&self, key: &RegistryKey) -> String {
        self.device_authorization_url.clone().unwrap_or_else(|| format!("{}/auth/device/code", self.registry_url(key)))
    }

    pub fn token_url(&self, key: &RegistryKey) -> String {
        self.token_url.clone().unwrap_or_else(|| format!("{}/auth/device/token", self.registry_url(key)))
    }

    /// Hosts a login or verification page may be on: the registry's, the configured
    /// endpoints', and `allowed-login-hosts`.
    pub fn allowed_hosts(&self, key: &RegistryKey) -> AllowedHosts {
        let mut allowed = AllowedHosts::new();
        allowed.add(key.api_host());
        allowed.add(key.as_str());
        for url in
            [&self.registry_url, &self.device_authorization_url, &self.token_url, &self.realm].into_iter().flatten()
        {
            allowed.add(url);
        }
        for host in &self.allowed_login_hosts {
            allowed.add(host);
        }
        allowed
    }

    /// Load-time checks; the message names the key at fault.
    pub fn validate(&self, key: &RegistryKey) -> Result<(), String> {
        let urls = [
            ("registry-url", Some(self.registry_url(key))),
            ("device-authorization-url", Some(self.device_authorization_url(key))),
            ("token-url", Some(self.token_url(key))),
            ("realm", self.realm.clone()),
            ("revocation-url", self.revocation_url.clone()),
        ];
        for (name, url) in urls {
            if let Some(url) = url {
                check_endpoint_url(&url, name)?;
            }
        }
        for host in &self.allowed_login_hosts {
            let valid = !host.is_empty()
                && !host.contains("://")
                && !host.contains(['/', '@', '?', '#', ' '])
                && browser::host_of(host).is_some();
            if !valid {
                return Err(format!(
                    "allowed-login-hosts entry {host:?} is not a host name (write `login.example.com`, no scheme or path)"
                ));
            }
        }
        if self.client_id.trim().is_empty() {
            return Err("client-id must not be empty".into());
        }
        for (name, value) in [("secret-field", &self.secret_field), ("account-field", &self.account_field)] {
            if value.trim().is_empty() {
                return Err(format!("{name} must name a JSON field"));
            }
        }
        if !(1..=3600).contains(&self.login_wait_secs) {
            return Err("login-wait-secs must be between 1 and 3600".into());
        }
        if !(10..=86_400).contains(&self.login_timeout_secs) {
            return Err("login-timeout-secs must be between 10 and 86400".into());
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err("timeout-secs must be between 1 and 120".into());
        }
        Ok(())
    }
}

/// A device-mode registry: its device secret lives in the credential store.
pub struct DeviceSource<'a> {
    pub key: &'a RegistryKey,
    pub config: DeviceConfig,
    pub cache_dir: PathBuf,
    /// The config file that made this a device registry (for messages).
    pub config_path: &'a Path,
}

impl CredentialSource for DeviceSource<'_> {
    fn mode(&self) -> Mode {
        Mode::Device
    }

    fn get(&self, store: &mut LazyStore) -> Result<Answer, HelperError> {
        self.get_from(store.get()?)
    }

    fn store(&self, _store: &mut LazyStore, _credential: &StoredCredential) -> Result<(), HelperError> {
        Err(super::nothing_to("store", self.key, self.mode(), self.config_path))
    }

    /// `docker logout`: erase the device secret here (`logout` also revokes it).
    fn erase(&self, store: &mut LazyStore) -> Result<(), HelperError> {
        self.logout(store.get()?, false).map_err(HelperError::Failed)
    }

    fn status(&self, store: &mut LazyStore) -> Option<SourceStatus> {
        let device = match store.open() {
            Ok(opened) => self.status_in(opened.store.as_ref()),
            Err(e) => DeviceStatus { account: None, session: "unknown".into(), note: Some(e.to_string()) },
        };
        Some(SourceStatus {
            username: device.account,
            source: Some("device login".into()),
            token: None,
            session: Some(device.session),
            note: device.note,
        })
    }
}

impl DeviceSource<'_> {
    /// `get` with the store open.
    fn get_from(&self, store: &dyn Store) -> Result<Answer, HelperError> {
        let Some(stored) = self.stored(store)? else {
            eprintln!(
                "latchkey: {} is a device-login registry and no device secret is stored; run: {}",
                self.key,
                login_command(self.key)
            );
            return Err(HelperError::NotFound);
        };
        // A browser login that fails after this moment is this burst's answer too.
        let started_ms = session::now_ms();
        let answer = || Answer { username: stored.username.clone(), secret: stored.secret.clone() };
        let cache = self.cache();
        let interval = Duration::from_secs(self.config.check_interval_secs);
        let cached = cache.read();
        if cache.fresh(&stored.username, interval).is_some() {
            return Ok(answer());
        }
        let cached_endpoint =
            cached.and_then(|r| Some(Endpoint { realm: reqwest::Url::parse(&r.realm).ok()?, service: r.service }));
        let (endpoint, verdict) = self.check(&stored, cached_endpoint).map_err(HelperError::Failed)?;
        match verdict {
            Verdict::Alive => {
                cache.write_alive(&stored.username, &endpoint);
                Ok(answer())
            }
            Verdict::Rejected { status, detail } => Err(HelperError::Failed(self.rejected(&endpoint, status, &detail))),
            Verdict::Expired { login_url, message } => {
                self.recover(&stored, &endpoint, login_url, message, started_ms).map_err(HelperError::Failed)?;
                Ok(answer())
            }
        }
    }

    fn cache(&self) -> SessionCache {
        SessionCache::new(&self.cache_dir, self.key)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_secs)
    }

    /// The stored account and device secret, if any.
    pub fn stored(&self, store: &dyn Store) -> Result<Option<StoredCredential>, HelperError> {
        let stored = store.get(self.key).map_err(|e| HelperError::Failed(e.0))?;
        Ok(stored.filter(|c| !c.secret.expose().is_empty()))
    }

    /// The token endpoint: configured, else remembered from the last check, else from `/v2/`.
    fn endpoint(&self, remembered: Option<Endpoint>) -> Result<Endpoint, String> {
        if let Some(realm) = &self.config.realm {
            let realm = check_endpoint_url(realm, "realm")?;
            return Ok(Endpoint { realm, service: self.config.service.clone() });
        }
        if let Some(mut e) = remembered {
            if self.config.service.is_some() {
                e.service = self.config.service.clone();
            }
            return Ok(e);
        }
        let mut e = session::discover(&self.config.registry_url(self.key), self.timeout())
            .map_err(|e| format!("cannot find the token endpoint of {}: {e}", self.key))?;
        if self.config.service.is_some() {
            e.service = self.config.service.clone();
        }
        Ok(e)
    }

    /// One check at the token endpoint. A remembered endpoint that fails to answer is
    /// rediscovered once (the registry may have moved it).
    fn check(&self, stored: &StoredCredential, remembered: Option<Endpoint>) -> Result<(Endpoint, Verdict), String> {
        let was_remembered = remembered.is_some() && self.config.realm.is_none();
        let endpoint = self.endpoint(remembered)?;
        let ask = |e: &Endpoint| {
            session::check(e, self.config.check_scope.as_deref(), &stored.username, &stored.secret, self.timeout())
        };
        match ask(&endpoint) {
            Ok(v) => Ok((endpoint, v)),
            Err(_) if was_remembered => {
                let fresh = self.endpoint(None)?;
                let verdict = ask(&fresh).map_err(|e| self.unreachable(&e))?;
                Ok((fresh, verdict))
            }
            Err(e) => Err(self.unreachable(&e)),
        }
    }

    fn unreachable(&self, e: &str) -> String {
        format!(
            "cannot check the device secret for {}: {e} (pulls and pushes need this endpoint too: check that the registry is reachable, then try again)",
            self.key
        )
    }

    fn rejected(&self, endpoint: &Endpoint, status: u16, detail: &str) -> String {
        format!(
            "the device secret stored for {key} is no longer accepted by the token endpoint at {realm} (HTTP {status}: {detail}); log in again with: {cmd} (the stored secret was left in place; `docker-credential-latchkey logout {key}` removes it)",
            key = self.key,
            realm = endpoint.shown(),
            cmd = login_command(self.key),
        )
    }

    /// The browser session behind the secret expired: renew it (interactive) or explain.
    fn recover(
        &self,
        stored: &StoredCredential,
        endpoint: &Endpoint,
        login_url: Option<String>,
        message: Option<String>,
        started_ms: u64,
    ) -> Result<(), String> {
        let key = self.key;
        let secrets = secrets_of(stored);
        let safe_url = match &login_url {
            Some(url) => browser::check_login_url(url, &self.config.allowed_hosts(key), &secrets.spellings()),
            None => Err("the registry named no login page".into()),
        };
        if let Some(m) = &message {
            eprintln!("latchkey: {key}: the registry says: {m}");
        }
        if let Err(why) = browser::interactive() {
            return Err(self.explain_expired(&safe_url, &format!("not opening a browser: {why}")));
        }

        let cache = self.cache();
        cache.ensure_dir().map_err(|e| format!("cannot create the latchkey cache directory: {e}"))?;
        let lock_file = latchkey_fs::open_lock_file(cache.lock_path())
            .map_err(|e| format!("cannot open the login lock {}: {e}", cache.lock_path().display()))?;
        let waited = match lock_file.try_lock() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => {
                let bound = Duration::from_secs(self.config.login_wait_secs) + self.timeout() * 2;
                eprintln!(
                    "latchkey: {key}: another latchkey process is renewing the login session in the browser; waiting up to {} for it",
                    human_secs(bound.as_secs() as i64)
                );
                latchkey_fs::lock_within(&lock_file, bound).map_err(|_| {
                    format!(
                        "gave up after {} waiting for the browser login another latchkey process opened for {key}; finish it, or run: {}",
                        human_secs(bound.as_secs() as i64),
                        login_command(key)
                    )
                })?;
                true
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", cache.lock_path().display()));
            }
        };
        // We hold the lock. A browser login that failed after this process started belongs to
        // the same burst of `get`s: give its answer rather than open the browser again.
        if let Some(outcome) = cache.read_outcome().filter(|o| !o.alive && o.at_ms >= started_ms) {
            return Err(secrets.clean(&outcome.message));
        }
        // Whoever held the lock may have renewed the session: ask the registry again.
        if let Ok(Verdict::Alive) = self.recheck(stored, endpoint) {
            cache.write_alive(&stored.username, endpoint);
            if waited {
                eprintln!("latchkey: {key}: the login session was renewed.");
            }
            return Ok(());
        }

        // We lead: open the login page once and wait for the session to come back.
        let result = self.lead_login(stored, endpoint, safe_url);
        match &result {
            Ok(()) => {
                cache.write_alive(&stored.username, endpoint);
                cache.write_outcome(true, "");
            }
            // What goes to disk is cleaned like what goes to the screen.
            Err(message) => cache.write_outcome(false, &secrets.clean(message)),
        }
        drop(lock_file);
        result
    }

    fn recheck(&self, stored: &StoredCredential, endpoint: &Endpoint) -> Result<Verdict, String> {
        session::check(endpoint, self.config.check_scope.as_deref(), &stored.username, &stored.secret, self.timeout())
    }

    fn lead_login(
        &self,
        stored: &StoredCredential,
        endpoint: &Endpoint,
        safe_url: Result<reqwest::Url, String>,
    ) -> Result<(), String> {
        let key = self.key;
        let url = match safe_url {
            Ok(url) => url,
            Err(why) => return Err(self.explain_expired(&Err(why), "")),
        };
        let how = browser::open(&url).map_err(|e| self.explain_expired(&Ok(url.clone()), &e))?;
        let wait = Duration::from_secs(self.config.login_wait_secs);
        eprintln!("latchkey: {key}: your login session has expired; opened {url} {how} to renew it.");
        let deadline = Instant::now() + wait;
        let progress = progress::Progress::new(&format!("waiting for the browser login to {key}"));
        let mut last_error: Option<String>;
        loop {
            let next = (Instant::now() + RECHECK_EVERY).min(deadline);
            while Instant::now() < next {
                progress.tick(deadline);
                std::thread::sleep(Duration::from_millis(100).min(next.saturating_duration_since(Instant::now())));
            }
            match self.recheck(stored, endpoint) {
                Ok(Verdict::Alive) => {
                    progress.finish();
                    eprintln!("latchkey: {key}: login session renewed.");
                    return Ok(());
                }
                Ok(Verdict::Rejected { status, detail }) => {
                    progress.finish();
                    return Err(self.rejected(endpoint, status, &detail));
                }
                Ok(Verdict::Expired { .. }) => last_error = None,
                Err(e) => last_error = Some(e),
            }
            if Instant::now() >= deadline {
                progress.finish();
                let also = last_error.map(|e| format!(" (last check: {e})")).unwrap_or_default();
                return Err(format!(
                    "the browser login for {key} did not finish within {}{also}; finish it at {url} and try again, or run: {}",
                    human_secs(wait.as_secs() as i64),
                    login_command(key)
                ));
            }
        }
    }

    /// stderr guidance and the stdout error for an expired session nobody renews now.
    fn explain_expired(&self, safe_url: &Result<reqwest::Url, String>, why: &str) -> String {
        let key = self.key;
        let cmd = login_command(key);
        if !why.is_empty() {
            eprintln!("latchkey: {key}: {why}.");
        }
        match safe_url {
            Ok(url) => {
                eprintln!(
                    "latchkey: {key}: the login session behind your device secret has expired. To renew it, open"
                );
                eprintln!("latchkey:     {url}");
                eprintln!("latchkey: in a browser, or log in again with:");
                eprintln!("latchkey:     {cmd}");
                format!(
                    "the login session behind the device secret for {key} has expired; open {url} in a browser, or run: {cmd}"
                )
            }
            Err(refused) => {
                eprintln!("latchkey: {key}: the login session behind your device secret has expired.");
                eprintln!("latchkey: {key}: not opening its login page: {refused}.");
                eprintln!("latchkey: log in again with:");
                eprintln!("latchkey:     {cmd}");
                format!(
                    "the login session behind the device secret for {key} has expired; not opening its login page ({refused}); run: {cmd}"
                )
            }
        }
    }

    /// `status`: the account, and whether its session is alive (from the cache if fresh).
    fn status_in(&self, store: &dyn Store) -> DeviceStatus {
        let stored = match self.stored(store) {
            Ok(Some(s)) => s,
            Ok(None) => {
                return DeviceStatus {
                    account: None,
                    session: "not logged in".into(),
                    note: Some(format!("run: {}", login_command(self.key))),
                };
            }
            Err(e) => return DeviceStatus { account: None, session: "unknown".into(), note: Some(e.to_string()) },
        };
        let account = Some(stored.username.clone());
        let cache = self.cache();
        if let Some(r) = cache.fresh(&stored.username, Duration::from_secs(self.config.check_interval_secs)) {
            let ago = session::now_secs().saturating_sub(r.alive_at) as i64;
            return DeviceStatus { account, session: format!("alive (checked {} ago)", human_secs(ago)), note: None };
        }
        let remembered = cache
            .read()
            .and_then(|r| Some(Endpoint { realm: reqwest::Url::parse(&r.realm).ok()?, service: r.service }));
        match self.check(&stored, remembered) {
            Ok((endpoint, Verdict::Alive)) => {
                cache.write_alive(&stored.username, &endpoint);
                DeviceStatus { account, session: "alive".into(), note: None }
            }
            Ok((_, Verdict::Expired { login_url, .. })) => {
                let safe = login_url.as_deref().and_then(|u| {
                    browser::check_login_url(u, &self.config.allowed_hosts(self.key), &secrets_of(&stored).spellings())
                        .ok()
                });
                let note = match safe {
                    Some(url) => format!("open {url} or run: {}", login_command(self.key)),
                    None => format!("run: {}", login_command(self.key)),
                };
                DeviceStatus { account, session: "expired".into(), note: Some(note) }
            }
            Ok((_, Verdict::Rejected { status, .. })) => DeviceStatus {
                account,
                session: format!("secret rejected (HTTP {status})"),
                note: Some(format!("run: {}", login_command(self.key))),
            },
            Err(e) => DeviceStatus { account, session: "unknown".into(), note: Some(e) },
        }
    }
}

/// Every spelling of the stored device secret (also as the Basic password of its account).
fn secrets_of(stored: &StoredCredential) -> latchkey_http::Redactor {
    latchkey_http::Redactor::new().basic(&stored.username, stored.secret.expose())
}

/// What `status` shows for a device registry (never a secret).
struct DeviceStatus {
    account: Option<String>,
    session: String,
    note: Option<String>,
}

// ---------------------------------------------------------------------------------------
// login / logout

/// `login REGISTRY`: run the device grant and store the secret. Ctrl-C before the answer
/// stores nothing; once the answer is in, the write completes before the process exits.
impl DeviceSource<'_> {
    pub fn login(&self, opened: &latchkey_store::Opened) -> Result<(), String> {
        login(self.key, &self.config, opened)
    }

    /// `logout REGISTRY` (`revoke`) and `docker logout` (no revocation).
    pub fn logout(&self, store: &dyn Store, revoke: bool) -> Result<(), String> {
        logout(self.key, &self.config, store, revoke)
    }
}

fn login(key: &RegistryKey, config: &DeviceConfig, opened: &latchkey_store::Opened) -> Result<(), String> {
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        // Only `login` installs a handler; failing to (one is already set) just means
        // Ctrl-C ends the process at once, which also stores nothing.
        let _ = ctrlc::set_handler(move || cancel.store(true, Ordering::SeqCst));
    }
    let grant = flow::run(config, key, &cancel)?;
    let credential =
        StoredCredential { server_url: key.to_string(), username: grant.account.clone(), secret: grant.secret };
    opened
        .store
        .set(key, &credential)
        .map_err(|e| format!("the login succeeded but storing the device secret failed: {e}"))?;
    SessionCache::new(&crate::paths::cache_dir(), key).clear();
    eprintln!(
        "latchkey: logged in to {key} as {}; the device secret is in the {}.",
        printable(&grant.account, 256),
        opened.store.describe()
    );
    if cancel.load(Ordering::SeqCst) {
        eprintln!("latchkey: (Ctrl-C arrived while storing; the login was completed first)");
    }
    Ok(())
}

/// `logout REGISTRY`: revoke the secret where a revocation endpoint is configured, and erase it.
fn logout(key: &RegistryKey, config: &DeviceConfig, store: &dyn Store, revoke: bool) -> Result<(), String> {
    let stored = store.get(key).map_err(|e| e.0)?;
    SessionCache::new(&crate::paths::cache_dir(), key).clear();
    let Some(stored) = stored else {
        eprintln!("latchkey: not logged in to {key}; nothing to erase from the {}.", store.describe());
        return Ok(());
    };
    if let Some(url) = config.revocation_url.as_ref().filter(|_| revoke) {
        match revoke_secret(url, config, &stored.secret) {
            Ok(()) => eprintln!("latchkey: revoked the device secret for {key} at {url}."),
            Err(e) => {
                eprintln!("latchkey: could not revoke the device secret for {key}: {e}; erasing the local copy anyway.")
            }
        }
    }
    store.delete(key).map_err(|e| e.0)?;
    eprintln!("latchkey: logged out of {key}: erased the device secret from the {}.", store.describe());
    Ok(())
}

/// RFC 7009: POST token=<secret>, token_type_hint, client_id.
fn revoke_secret(url: &str, config: &DeviceConfig, secret: &Secret<String>) -> Result<(), String> {
    let client =
        latchkey_http::Client::new("revocation endpoint", Duration::from_secs(config.timeout_secs))?.redacting(secret);
    let form = serde_urlencoded::to_string([
        ("token", secret.expose().as_str()),
        ("token_type_hint", "refresh_token"),
        ("client_id", &config.client_id),
    ])
    .map(Secret::new)
    .map_err(|e| format!("cannot encode the revocation request: {e}"))?;
    let request =
        client.post(url).header("Content-Type", "application/x-www-form-urlencoded").body(form.expose().clone());
    let response = client.send(request, url)?;
    match response.status {
        200 | 204 => Ok(()),
        status => {
            Err(format!("the revocation endpoint at {url} answered HTTP {status} with {}", response.server_message()))
        }
    }
}

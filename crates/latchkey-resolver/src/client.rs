//! An async client for the registry API (`/v2/`) that authenticates the way the
//! [`super::Resolver`] says, and no further than that.
//!
//! * A static bearer is sent on every request from the first one: no `/v2/` ping, no
//!   challenge, no token endpoint. If the registry answers 401, the helper is asked once more,
//!   told which token was refused (so a caching helper such as latchkey replaces it), and the
//!   request is retried once; a second 401 is an error that says so.
//! * Otherwise the first 401's `WWW-Authenticate` challenge decides: `Bearer` fetches a token
//!   from the realm (refresh-token grant for an identity token, Basic-authenticated GET for a
//!   user name and password, anonymous GET otherwise), cached per repository scope for the
//!   client's lifetime; `Basic` sends the user name and password.
//! * Redirects are followed by this client, not by reqwest: `Authorization` is only sent to
//!   the registry's own origin (scheme, host and port), never to blob storage or a CDN.
//! * Idempotent requests are retried on connection errors and 5xx/429 answers.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, LOCATION, RANGE, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};
use serde::Serialize;

use super::{Credential, Resolved, Resolver};
use latchkey_http::error_chain;
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;

/// Redirect hops followed before giving up.
pub const MAX_REDIRECTS: usize = 5;
/// Token endpoint and error bodies are small.
const MAX_SMALL_BODY: usize = 256 * 1024;

/// Which registries are spoken to over plain HTTP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// HTTPS everywhere except loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`), which get
    /// plain HTTP, as a registry started for local work usually is.
    #[default]
    Loopback,
    /// HTTPS everywhere.
    Never,
    /// Plain HTTP everywhere (test setups).
    Always,
}

/// Settings for a [`RegistryClient`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub plain_http: PlainHttp,
    pub connect_timeout: Duration,
    /// Longest wait for any single read from a server.
    pub read_timeout: Duration,
    /// Extra attempts for a request that failed on the way (connection error, 5xx, 429).
    pub retries: u32,
    /// Pause before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            plain_http: PlainHttp::Loopback,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retries: 3,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

/// What the client did, for summaries and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientStats {
    /// HTTP requests sent to registries, blob stores and token endpoints.
    pub requests: u64,
    /// 401 answers received from registries.
    pub unauthorized: u64,
    /// Requests to token endpoints (realms).
    pub token_requests: u64,
    /// Redirects followed.
    pub redirects: u64,
    /// Requests repeated after a transient failure.
    pub retries: u64,
    /// Helper processes run by the resolver.
    pub helper_calls: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    unauthorized: AtomicU64,
    token_requests: AtomicU64,
    redirects: AtomicU64,
    retries: AtomicU64,
}

/// What went wrong, by kind, with a message that names the registry and the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The registry refused the credentials (or their absence).
    Unauthorized,
    /// 404: no such repository, tag or blob.
    NotFound,
    /// Connection, TLS or timeout trouble that retries did not cure.
    Transport,
    /// Another unexpected status.
    Status(u16),
    /// The registry's answer is malformed (bad JSON, unsupported media type, too large).
    Protocol,
    /// Content does not match its digest or size.
    DigestMismatch,
    /// Local file trouble.
    Io,
    /// Nothing matches the requested platform.
    NoMatch,
}

#[derive(Debug, Clone)]
pub struct RegistryError {
    pub kind: ErrorKind,
    pub message: String,
}

impl RegistryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RegistryError { kind, message: message.into() }
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RegistryError {}

/// A WWW-Authenticate challenge we know how to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

/// Parse the first challenge we can answer from `WWW-Authenticate` values.
pub fn parse_challenge(values: &[&str]) -> Option<Challenge> {
    for value in values {
        let value = value.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            let params = parse_params(rest);
            let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
            if let Some(realm) = get("realm") {
                return Some(Challenge::Bearer { realm, service: get("service") });
            }
        }
    }
    None
}

/// `error` of a Bearer challenge (`insufficient_scope`, `invalid_token`), if any.
fn challenge_error(values: &[&str]) -> Option<String> {
    values.iter().find_map(|v| {
        let (_, rest) = v.trim().split_once(char::is_whitespace)?;
        parse_params(rest).into_iter().find(|(n, _)| n.eq_ignore_ascii_case("error")).map(|(_, v)| v)
    })
}

/// `a="x", b=y, c="q\"uoted,comma"` -> pairs.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            return out;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name.trim().to_owned(), value.trim().to_owned()));
    }
}

/// A token from a realm, valid until `expires`.
#[derive(Clone)]
struct Token {
    value: Secret<String>,
    expires: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Used {
    Nothing,
    Static(u64),
    Basic,
    Token,
}

struct HostAuth {
    resolved: Option<Arc<Resolved>>,
    /// Bumped each time the resolver is asked again.
    generation: u64,
    refreshed: bool,
    challenge: Option<Challenge>,
}

struct Host {
    key: RegistryKey,
    base: Url,
    auth: tokio::sync::Mutex<HostAuth>,
    tokens: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Token>>>>>,
}

/// An authenticated response, redirects already followed.
pub struct Answer {
    pub response: reqwest::Response,
    /// The request URL as first sent (to the registry), for messages.
    pub url: Url,
}

/// Async registry API client. Clone-free: share it by reference or `Arc`.
pub struct RegistryClient {
    http: reqwest::Client,
    resolver: Arc<Resolver>,
    options: ClientOptions,
    hosts: std::sync::Mutex<HashMap<RegistryKey, Arc<Host>>>,
    counters: Counters,
}

impl RegistryClient {
    /// A client using `resolver` for credentials. Builds the HTTP client (rustls with ring and
    /// the platform's roots); needs no runtime until a request is made.
    pub fn new(resolver: Arc<Resolver>, options: ClientOptions) -> Result<RegistryClient, RegistryError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            // Redirects are ours to follow: see `send_following`.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                RegistryError::new(ErrorKind::Transport, format!("cannot set up HTTP: {}", error_chain(&e)))
            })?;
        Ok(RegistryClient { http, resolver, options, hosts: Default::default(), counters: Default::default() })
    }

    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }

    pub fn stats(&self) -> ClientStats {
        let c = &self.counters;
        ClientStats {
            requests: c.requests.load(Ordering::Relaxed),
            unauthorized: c.unauthorized.load(Ordering::Relaxed),
            token_requests: c.token_requests.load(Ordering::Relaxed),
            redirects: c.redirects.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            helper_calls: self.resolver.helper_calls(),
        }
    }

    /// `https://host` (or `http://` per [`PlainHttp`]) for a registry.
    pub fn base_url(&self, registry: &RegistryKey) -> Url {
        let host = registry.api_host();
        let plain = match self.options.plain_http {
            PlainHttp::Always => true,
            PlainHttp::Never => false,
            PlainHttp::Loopback => is_loopback(host),
        };
        let scheme = if plain { "http" } else { "https" };
        Url::parse(&format!("{scheme}://{host}/")).expect("a RegistryKey is a valid authority")
    }

    fn host(&self, registry: &RegistryKey) -> Arc<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts
            .entry(registry.clone())
            .or_insert_with(|| {
                Arc::new(Host {
                    key: registry.clone(),
                    base: self.base_url(registry),
                    auth: tokio::sync::Mutex::new(HostAuth {
                        resolved: None,
                        generation: 0,
                        refreshed: false,
                        challenge: None,
                    }),
                    tokens: Default::default(),
                })
            })
            .clone()
    }

    /// The resolver's answer for this host, asking it (off the async threads) on first use.
    async fn resolved(&self, host: &Host, auth: &mut HostAuth) -> Arc<Resolved> {
        if let Some(r) = &auth.resolved {
            return r.clone();
        }
        let resolver = self.resolver.clone();
        let key = host.key.clone();
        let r = tokio::task::spawn_blocking(move || resolver.resolve_key(&key)).await.expect("resolver panicked");
        // "Nothing stored" is a normal answer (docker goes on anonymously too); a failure is
        // worth a line, and a 401 later quotes it again.
        if let Some(e) = r.helper_error.as_ref().filter(|e| !matches!(e, super::HelperCallError::NotFound { .. })) {
            eprintln!("latchkey: warning: {e}; going on without credentials for {}", host.key);
        }
        auth.resolved = Some(r.clone());
        r
    }

    /// GET `/v2/<path>` on `registry` for `repository` (the token scope is its pull scope),
    /// authenticated, redirects followed, transient failures retried. Returns a 2xx (or 206)
    /// answer; anything else is an error naming the request.
    pub async fn get(
        &self,
        registry: &RegistryKey,
        repository: &str,
        path: &str,
        accept: Option<&str>,
        range_from: u64,
    ) -> Result<Answer, RegistryError> {
        let host = self.host(registry);
        let url = host.base.join(&format!("v2/{path}")).map_err(|e| {
            RegistryError::new(ErrorKind::Protocol, format!("cannot build a URL for {registry} /v2/{path}: {e}"))
        })?;
        let scope = format!("repository:{repository}:pull");
        let mut attempt = 0;
        loop {
            match self.get_authorized(&host, &scope, &url, accept, range_from).await {
                Err(e) if e.kind == ErrorKind::Transport && attempt < self.options.retries => {}
                Err(e)
                    if matches!(e.kind, ErrorKind::Status(s) if s >= 500 || s == 429)
                        && attempt < self.options.retries => {}
                other => return other,
            }
            attempt += 1;
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.options.retry_backoff * 2u32.pow(attempt - 1)).await;
        }
    }

    /// The retry policy's pause before attempt `attempt` (1-based), for callers that retry
    /// body reads themselves.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.options.retry_backoff * 2u32.pow(attempt.saturating_sub(1).min(10))
    }

    /// How many extra attempts a transient failure gets.
    pub fn retries(&self) -> u32 {
        self.options.retries
    }

    /// Count a retry made by a caller (a body that broke off and is fetched again).
    pub fn note_retry(&self) {
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
    }

    async fn get_authorized(
        &self,
        host: &Host,
        scope: &str,
        url: &Url,
        accept: Option<&str>,
        range_from: u64,
    ) -> Result<Answer, RegistryError> {
        let mut challenged = false;
        loop {
            let (authorization, used) = self.authorization(host, scope).await?;
            let (response, same_origin) = self.send_following(url, authorization.as_ref(), accept, range_from).await?;
            let status = response.status();
            if status.is_success() {
                return Ok(Answer { response, url: url.clone() });
            }
            if status != StatusCode::UNAUTHORIZED || !same_origin {
                return Err(self.status_error(url, response, authorization.as_ref()).await);
            }
            self.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
            let values: Vec<String> = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let challenge = parse_challenge(&values);
            let error = challenge_error(&values);
            match used {
                Used::Static(generation) => {
                    if let Err(why) = self.refresh_static(host, generation).await {
                        let auth = host.auth.lock().await;
                        let source = auth.resolved.as_ref().map(|r| r.source.to_string()).unwrap_or_default();
                        return Err(RegistryError::new(
                            ErrorKind::Unauthorized,
                            format!(
                                "{} refused the static bearer token from {source} for GET {} (401 Unauthorized{}); {why}. Check the token's audience, issuer, access and expiry (docker-credential-latchkey status shows latchkey's)",
                                host.key,
                                url.path(),
                                error.map(|e| format!(", {e}")).unwrap_or_default(),
                            ),
                        ));
                    }
                }
                Used::Nothing if !challenged => {
                    challenged = true;
                    let mut auth = host.auth.lock().await;
                    auth.challenge = challenge.clone();
                    let resolved = self.resolved(host, &mut auth).await;
                    match (&challenge, &resolved.credential) {
                        (None, _) => {
                            return Err(self.unauthorized(host, &resolved, url, "with no challenge it can answer"));
                        }
                        (Some(Challenge::Basic), Credential::Anonymous | Credential::IdentityToken { .. }) => {
                            return Err(self.unauthorized(host, &resolved, url, "and asks for Basic authentication"));
                        }
                        _ => {}
                    }
                }
                Used::Token if !challenged && error.as_deref() != Some("insufficient_scope") => {
                    // A cached token the registry no longer takes (expired early, revoked): once more.
                    challenged = true;
                    host.tokens.lock().unwrap_or_else(|p| p.into_inner()).remove(scope);
                }
                _ => {
                    let mut auth = host.auth.lock().await;
                    let resolved = self.resolved(host, &mut auth).await;
                    let why = match error {
                        Some(e) => format!("({e})"),
                        None => "to the credentials it was given".to_owned(),
                    };
                    return Err(self.unauthorized(host, &resolved, url, &why));
                }
            }
        }
    }

    fn unauthorized(&self, host: &Host, resolved: &Resolved, url: &Url, why: &str) -> RegistryError {
        let sent = match &resolved.credential {
            Credential::Anonymous => "no credentials were sent".to_owned(),
            c => format!("it was sent the {} from {}", c.kind(), resolved.source),
        };
        let cause = match (&resolved.helper_error, &resolved.credential) {
            (Some(e), _) => format!("; likely cause: {e} [{}]", resolved.source),
            (None, Credential::Anonymous) => format!("; {}", resolved.describe()),
            _ => String::new(),
        };
        RegistryError::new(
            ErrorKind::Unauthorized,
            format!("{} answered 401 Unauthorized to GET {} {why}; {sent}{cause}", host.key, url.path()),
        )
    }

    /// After a static bearer's 401: ask the helper again, once per host. `Ok` if there is a
    /// different credential to retry with, else why not.
    async fn refresh_static(&self, host: &Host, used_generation: u64) -> Result<(), &'static str> {
        let mut auth = host.auth.lock().await;
        if auth.generation != used_generation {
            // Someone else refreshed meanwhile: retry with what they got.
            return Ok(());
        }
        if auth.refreshed {
            return Err("it was already asked for a new token once and the new one was refused too");
        }
        auth.refreshed = true;
        let old = auth.resolved.clone();
        let resolver = self.resolver.clone();
        let key = host.key.clone();
        let refused = old.clone();
        let fresh = tokio::task::spawn_blocking(move || {
            let rejected = match refused.as_ref().map(|r| &r.credential) {
                Some(Credential::StaticBearer(token)) => Some(token),
                _ => None,
            };
            resolver.refresh(&key, rejected)
        })
        .await
        .expect("resolver panicked");
        let changed = match (&old.as_ref().map(|r| &r.credential), &fresh.credential) {
            (Some(Credential::StaticBearer(a)), Credential::StaticBearer(b)) => a.expose() != b.expose(),
            _ => true,
        };
        if let Some(e) = &fresh.helper_error {
            eprintln!("latchkey: warning: asking again after a 401: {e}");
        }
        auth.resolved = Some(fresh);
        auth.generation += 1;
        if changed { Ok(()) } else { Err("asked again, the helper answered the same token") }
    }

    /// The Authorization value for a request in `scope`, and what it is.
    async fn authorization(&self, host: &Host, scope: &str) -> Result<(Option<Secret<String>>, Used), RegistryError> {
        let (resolved, challenge, generation) = {
            let mut auth = host.auth.lock().await;
            let resolved = self.resolved(host, &mut auth).await;
            (resolved, auth.challenge.clone(), auth.generation)
        };
        match (&resolved.credential, challenge) {
            (Credential::StaticBearer(token), _) => {
                Ok((Some(Secret::new(format!("Bearer {}", token.expose()))), Used::Static(generation)))
            }
            (_, None) => Ok((None, Used::Nothing)),
            (Credential::UsernamePassword { username, password }, Some(Challenge::Basic)) => {
                Ok((Some(basic(username, password.expose())), Used::Basic))
            }
            (_, Some(Challenge::Basic)) => Ok((None, Used::Nothing)),
            (credential, Some(Challenge::Bearer { realm, service })) => {
                let token = self.token(host, scope, &realm, service.as_deref(), credential, &resolved).await?;
                Ok((Some(Secret::new(format!("Bearer {}", token.expose()))), Used::Token))
            }
        }
    }

    /// A token for `scope`, from the cache or the realm (one request per scope at a time).
    async fn token(
        &self,
        host: &Host,
        scope: &str,
        realm: &str,
        service: Option<&str>,
        credential: &Credential,
        resolved: &Resolved,
    ) -> Result<Secret<String>, RegistryError> {
        let slot = host.tokens.lock().unwrap_or_else(|p| p.into_inner()).entry(scope.to_owned()).or_default().clone();
        let mut slot = slot.lock().await;
        if let Some(token) = slot.as_ref()
            && token.expires > Instant::now()
        {
            return Ok(token.value.clone());
        }
        let fetched = self.fetch_token(host, scope, realm, service, credential, resolved).await?;
        let value = fetched.value.clone();
        *slot = Some(fetched);
        Ok(value)
    }

    async fn fetch_token(
        &self,
        host: &Host,
        scope: &str,
        realm: &str,
        service: Option<&str>,
        credential: &Credential,
        resolved: &Resolved,
    ) -> Result<Token, RegistryError> {
        let realm_url = Url::parse(realm).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
            RegistryError::new(
                ErrorKind::Protocol,
                format!("{} sent a token realm that is not an http(s) URL", host.key),
            )
        })?;
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            params.push(("service", service));
        }
        params.push(("scope", scope));
        let what = match credential {
            Credential::IdentityToken { .. } => "refresh-token grant",
            Credential::UsernamePassword { .. } => "token request with Basic credentials",
            _ => "anonymous token request",
        };
        let request = match credential {
            Credential::IdentityToken { token, .. } => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.expose().as_str()),
                    ("client_id", "latchkey"),
                ];
                form.extend(params.iter().copied());
                let body = serde_urlencoded::to_string(&form).expect("strings encode");
                self.http
                    .post(realm_url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            Credential::UsernamePassword { username, password } => {
                let mut url = realm_url.clone();
                url.query_pairs_mut().extend_pairs(params.iter()).append_pair("account", username);
                self.http.get(url).header(AUTHORIZATION, header(&basic(username, password.expose())))
            }
            _ => {
                let mut url = realm_url.clone();
                url.query_pairs_mut().extend_pairs(params.iter());
                self.http.get(url)
            }
        };
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.counters.token_requests.fetch_add(1, Ordering::Relaxed);
        let endpoint = format!("{}{}", origin_text(&realm_url), realm_url.path());
        let response = request.send().await.map_err(|e| {
            RegistryError::new(
                ErrorKind::Transport,
                format!("the token service of {} at {endpoint} did not answer: {}", host.key, error_chain(&e)),
            )
        })?;
        let status = response.status();
        let body = read_small(response).await.unwrap_or_default();
        if !status.is_success() {
            let kind = if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                ErrorKind::Unauthorized
            } else {
                ErrorKind::Status(status.as_u16())
            };
            let cause = match (&resolved.helper_error, credential) {
                (Some(e), _) => format!("; likely cause: {e} [{}]", resolved.source),
                (None, Credential::Anonymous) => format!("; {}", resolved.describe()),
                (None, c) => format!(" ({} from {})", c.kind(), resolved.source),
            };
            return Err(RegistryError::new(
                kind,
                format!(
                    "the token service of {} at {endpoint} refused the {what} for {scope}: {status} {}{cause}",
                    host.key,
                    excerpt(&redact_secrets(&body, &credential_secrets(credential)))
                ),
            ));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            RegistryError::new(
                ErrorKind::Protocol,
                format!("the token service at {endpoint} answered no JSON token: {e}"),
            )
        })?;
        let value = answer.token.or(answer.access_token).filter(|t| !t.is_empty()).ok_or_else(|| {
            RegistryError::new(ErrorKind::Protocol, format!("the token service at {endpoint} answered without a token"))
        })?;
        // The spec's default lifetime is 60 s; keep a margin so a token never dies in flight.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).max(60));
        Ok(Token { value: Secret::new(value), expires: Instant::now() + lifetime - Duration::from_secs(10) })
    }

    /// Send a GET, following redirects ourselves. Authorization goes only to `url`'s origin.
    /// Returns the final response and whether it came from that origin.
    async fn send_following(
        &self,
        url: &Url,
        authorization: Option<&Secret<String>>,
        accept: Option<&str>,
        range_from: u64,
    ) -> Result<(reqwest::Response, bool), RegistryError> {
        let origin = url.origin();
        let mut current = url.clone();
        for _hop in 0..=MAX_REDIRECTS {
            let same_origin = current.origin() == origin;
            let mut request = self.http.get(current.clone());
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if range_from > 0 {
                request = request.header(RANGE, format!("bytes={range_from}-"));
            }
            if same_origin && let Some(value) = authorization {
                request = request.header(AUTHORIZATION, header(value));
            }
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let response = request.send().await.map_err(|e| {
                let why = if e.is_timeout() { "timed out".to_owned() } else { error_chain(&e) };
                RegistryError::new(ErrorKind::Transport, format!("GET {} failed: {why}", redact(&current)))
            })?;
            if response.status().is_redirection()
                && let Some(location) = response.headers().get(LOCATION)
            {
                let location = location.to_str().ok().and_then(|l| current.join(l).ok()).ok_or_else(|| {
                    RegistryError::new(
                        ErrorKind::Protocol,
                        format!("GET {} redirected to an invalid URL", redact(&current)),
                    )
                })?;
                if !matches!(location.scheme(), "http" | "https") {
                    return Err(RegistryError::new(
                        ErrorKind::Protocol,
                        format!("GET {} redirected to a {} URL", redact(&current), location.scheme()),
                    ));
                }
                self.counters.redirects.fetch_add(1, Ordering::Relaxed);
                current = location;
                continue;
            }
            return Ok((response, same_origin));
        }
        Err(RegistryError::new(
            ErrorKind::Protocol,
            format!("GET {} was redirected more than {MAX_REDIRECTS} times", redact(url)),
        ))
    }

    async fn status_error(
        &self,
        url: &Url,
        response: reqwest::Response,
        authorization: Option<&Secret<String>>,
    ) -> RegistryError {
        let status = response.status();
        let final_url = redact(response.url());
        let body = read_small(response).await.unwrap_or_default();
        let kind = match status {
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::Unauthorized,
            s => ErrorKind::Status(s.as_u16()),
        };
        let via = if final_url != redact(url) { format!(" (redirected to {final_url})") } else { String::new() };
        // Whatever the request carried never comes back in a message, even if the server echoes it.
        let sent = authorization.map(|a| a.expose().split_once(' ').map_or(a.expose().as_str(), |(_, v)| v));
        let body = redact_secrets(&body, &sent.into_iter().collect::<Vec<_>>());
        RegistryError::new(kind, format!("GET {}{via} answered {status}: {}", redact(url), excerpt(&body)))
    }
}

fn basic(username: &str, password: &str) -> Secret<String> {
    let raw = Secret::new(format!("{username}:{password}"));
    Secret::new(format!("Basic {}", data_encoding::BASE64.encode(raw.expose().as_bytes())))
}

fn header(value: &Secret<String>) -> HeaderValue {
    let mut v = HeaderValue::from_str(value.expose()).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    v.set_sensitive(true);
    v
}

/// `localhost`, `127.0.0.0/8` or `[::1]`, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn origin_text(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A URL without query or userinfo, for messages (blob storage URLs carry signatures).
fn redact(url: &Url) -> String {
    format!("{}{}", origin_text(url), url.path())
}

async fn read_small(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_SMALL_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_SMALL_BODY {
            break;
        }
    }
    Ok(body)
}

/// The secrets a token request carries, as they could be echoed back.
fn credential_secrets(credential: &Credential) -> Vec<&str> {
    match credential {
        Credential::StaticBearer(t) | Credential::IdentityToken { token: t, .. } => vec![t.expose().as_str()],
        Credential::UsernamePassword { password, .. } => vec![password.expose().as_str()],
        Credential::Anonymous => Vec::new(),
    }
}

/// `body` with each secret replaced in its plain, form-encoded, JSON-escaped and (for Basic)
/// base64 spellings, before anything of it is quoted.
fn redact_secrets(body: &[u8], secrets: &[&str]) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(body).into_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        let form = serde_urlencoded::to_string([("", secret)]).unwrap_or_default();
        let form = form.trim_start_matches('=').to_owned();
        let json = serde_json::to_string(secret).unwrap_or_default();
        let json = json.trim_matches('"').to_owned();
        for spelling in [secret.to_string(), form, json] {
            if !spelling.is_empty() {
                text = text.replace(&spelling, "<redacted>");
            }
        }
    }
    text.into_bytes()
}

/// The registry's error message: `errors[0].message` of its JSON, else the first line.
fn excerpt(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body)
        && let Some(first) = e.errors.first()
    {
        return format!("{} {}", first.code, first.message).trim().to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let line: String = text.trim().lines().next().unwrap_or("").chars().take(200).collect();
    if line.is_empty() { "(no body)".to_owned() } else { line }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(&[
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull""#
            ]),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(parse_challenge(&[r#"Basic realm="Registry Realm""#]), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(&["Negotiate", r#"bearer realm=http://r/t"#]),
            Some(Challenge::Bearer { realm: "http://r/t".into(), service: None })
        );
        assert_eq!(parse_challenge(&["Bearer service=\"x\""]), None);
        assert_eq!(
            challenge_error(&[r#"Bearer realm="r",error="insufficient_scope",scope="a,b""#]).as_deref(),
            Some("insufficient_scope")
        );
        assert_eq!(parse_params(r#"a="x\"y,z", b=c"#), vec![("a".into(), "x\"y,z".into()), ("b".into(), "c".into())]);
    }

    #[test]
    fn loopback_hosts() {
        for h in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "[::1]"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["ghcr.io", "10.0.0.1:5000", "localhost.example.com", "[::2]:5000"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn echoed_secrets_are_redacted() {
        let body = br#"{"errors":[{"code":"DENIED","message":"bad token s3cr+t/1 (s3cr%2Bt%2F1)"}]}"#;
        let text = excerpt(&redact_secrets(body, &["s3cr+t/1"]));
        assert_eq!(text, "DENIED bad token <redacted> (<redacted>)");
    }

    #[test]
    fn registry_error_excerpts() {
        assert_eq!(
            excerpt(br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#),
            "UNAUTHORIZED authentication required"
        );
        assert_eq!(excerpt(b""), "(no body)");
        assert_eq!(excerpt(b"oops\nmore"), "oops");
    }
}

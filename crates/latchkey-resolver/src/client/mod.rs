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
//!
//! One job per file: `options` (settings, stats), `error` (the error type), `auth` (what a
//! request carries, what a 401 does), `token` (token service requests), `transport` (one GET,
//! redirects, bodies), `quote` (quoting answers without secrets), `advice` (messages that say
//! what happened and what to do). This file holds the client itself and the retry loop around
//! each request.

mod advice;
mod auth;
mod error;
mod options;
mod quote;
mod token;

pub(crate) use token::parse_token_answer;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Url;

use super::{Resolved, Resolver};
use latchkey_http::error_chain;
use latchkey_protocol::server_url::RegistryKey;

pub use auth::{Challenge, parse_challenge};
pub use error::{ErrorKind, RegistryError};
pub use options::{ClientOptions, ClientStats, PlainHttp};
pub use transport::MAX_REDIRECTS;

use options::Counters;
use token::Token;

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
            PlainHttp::Loopback => latchkey_http::is_loopback_host(host),
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
}

//! Settings and counters of a [`super::RegistryClient`]: what callers choose (plain HTTP,
//! timeouts, retries) and what they can read back afterwards ([`ClientStats`]).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::Serialize;

/// Which registries are spoken to over plain HTTP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// HTTPS everywhere except loopback hosts ([`latchkey_http::is_loopback_host`]: `localhost`,
    /// `*.localhost`, `127.0.0.0/8`, `[::1]`), which get plain HTTP, as a registry started for
    /// local work usually is.
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
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) unauthorized: AtomicU64,
    pub(super) token_requests: AtomicU64,
    pub(super) redirects: AtomicU64,
    pub(super) retries: AtomicU64,
}

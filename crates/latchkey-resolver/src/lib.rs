//! The companion resolver: from docker's config to what to send each registry.
//!
//! A credential helper only pays off if the client uses its answer well. This module reads
//! docker's `config.json` (and containers' `auth.json`), asks **any** `docker-credential-*`
//! helper the way docker does, and turns the answer into a [`Credential`]:
//!
//! | helper / config answer | [`Credential`] | what a request carries |
//! |---|---|---|
//! | Username `<static_bearer>`, or `auths.registrytoken` | [`Credential::StaticBearer`] | `Authorization: Bearer <Secret>` on every request; no `/v2/` ping, no challenge, no token endpoint |
//! | Username `Bearer` | [`Credential::BearerJwt`] | the JWT as `Authorization: Bearer` on a GET of the challenge's realm; the scoped token it answers on the requests |
//! | Username `<token>`, or `auths.identitytoken` | [`Credential::IdentityToken`] | OAuth2 refresh-token grant (POST) at the challenge's realm, token cached per scope |
//! | a user name and password | [`Credential::UsernamePassword`] | challenge flow (GET the realm with Basic), or Basic when the registry asks for Basic |
//! | nothing, not-found, or a failing helper | [`Credential::Anonymous`] | anonymous token if the realm hands one out; a 401 names the helper failure |
//!
//! Lookup order per registry, as docker does it: `credHelpers[host]`, then `credsStore`, then
//! `auths[host]` (Docker Hub's spellings are one registry). Files are read in the order of
//! [`latchkey_protocol::auth_files::default_files`]; the first file that configures the registry decides. Each
//! registry's helper runs at most once per [`Resolver`] (the answer is cached for the
//! process), with a deadline, its stderr passed through.
//!
//! [`RegistryClient`] is an async HTTP client for the registry API built on it, and
//! [`pull()`] writes an OCI image layout with it.
//!
//! # Example
//!
//! ```
//! use latchkey_resolver::{Credential, Resolver};
//!
//! let resolver = Resolver::from_json(r#"{
//!     "auths": {
//!         "registry.example.com": {"auth": "YWxpY2U6czNjcmV0"},
//!         "https://index.docker.io/v1/": {"registrytoken": "eyJhbGciOi..."}
//!     }
//! }"#).unwrap();
//!
//! let resolved = resolver.resolve("registry.example.com").unwrap();
//! assert!(matches!(&resolved.credential, Credential::UsernamePassword { username, .. } if username == "alice"));
//! // Docker Hub by any of its names.
//! assert!(matches!(resolver.resolve("docker.io").unwrap().credential, Credential::StaticBearer(_)));
//! assert!(matches!(resolver.resolve("ghcr.io").unwrap().credential, Credential::Anonymous));
//! ```
//!
//! Pulling an image into an OCI layout (the README's example):
//!
//! ```no_run
//! use std::sync::Arc;
//! use latchkey_resolver::pull::{PlatformSelector, Quiet};
//! use latchkey_resolver::{pull, ClientOptions, Credential, PullOptions, Reference, RegistryClient, Resolver};
//!
//! async fn pull_app() -> Result<(), Box<dyn std::error::Error>> {
//!     let resolver = Arc::new(Resolver::from_env()?); // docker config.json, then auth.json
//!     match &resolver.resolve("ghcr.io")?.credential { // runs the helper once; cached
//!         Credential::StaticBearer(_) => println!("literal Authorization header, no challenge"),
//!         other => println!("{}", other.kind()), // identity token, username/password, anonymous
//!     }
//!     let client = RegistryClient::new(resolver, ClientOptions::default())?;
//!     let image: Reference = "ghcr.io/org/app:1.2".parse()?;
//!     let options = PullOptions { platforms: PlatformSelector::All, ..PullOptions::new("app") };
//!     let summary = pull(&client, &image, &options, Arc::new(Quiet)).await?; // OCI layout in ./app
//!     println!("{}: {} blobs, {} 401s", summary.digest, summary.blobs, summary.http.unauthorized);
//!     Ok(())
//! }
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! runtime.block_on(pull_app()).unwrap();
//! ```

pub mod client;
pub mod hosts_toml;
pub mod pull;
pub mod reference;
pub mod scoped_token;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use client::{ClientOptions, ClientStats, RegistryClient, RegistryError};
pub use latchkey_protocol::auth_files::{AuthFile, AuthFileKind, ConfigFileError};
pub use latchkey_protocol::client::{HelperCallError, HelperCredentials};
pub use pull::{PlatformSelector, PullOptions, PullSummary, pull};
pub use reference::Reference;

use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::{DOCKER_HUB, InvalidServerUrl, RegistryKey};
pub use latchkey_protocol::{BEARER_USERNAME, DOCKER_HUB_SERVER_URL, IDENTITY_TOKEN_USERNAME, STATIC_BEARER_USERNAME};

/// How long a helper may take by default before it is stopped.
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// What to present to a registry.
#[derive(Clone, Debug)]
pub enum Credential {
    /// Send `Authorization: Bearer <token>` as it is, on every request; no challenge flow.
    StaticBearer(Secret<String>),
    /// A JWT presented as `Authorization: Bearer` to the challenge's realm, which answers a
    /// registry token for the scope (Username `Bearer`).
    BearerJwt(Secret<String>),
    /// An OAuth2 refresh token, exchanged at the realm for access tokens.
    IdentityToken { username: Option<String>, token: Secret<String> },
    /// A user name and password: the challenge flow, or Basic.
    UsernamePassword { username: String, password: Secret<String> },
    /// Nothing to send.
    Anonymous,
}

impl Credential {
    /// `static bearer`, `identity token`, `username/password` or `anonymous`.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::StaticBearer(_) => "static bearer",
            Credential::BearerJwt(_) => "bearer JWT",
            Credential::IdentityToken { .. } => "identity token",
            Credential::UsernamePassword { .. } => "username/password",
            Credential::Anonymous => "anonymous",
        }
    }

    /// What a helper's `get` answer means, by its Username conventions.
    pub fn from_helper(answer: HelperCredentials) -> Credential {
        match answer.username.as_str() {
            STATIC_BEARER_USERNAME => Credential::StaticBearer(answer.secret),
            BEARER_USERNAME => Credential::BearerJwt(answer.secret),
            IDENTITY_TOKEN_USERNAME => Credential::IdentityToken { username: None, token: answer.secret },
            _ => Credential::UsernamePassword { username: answer.username, password: answer.secret },
        }
    }
}

/// Where a registry's credential came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A helper named in `credHelpers` (`per_registry`) or `credsStore` of `file`.
    Helper { program: String, file: PathBuf, per_registry: bool },
    /// An `auths` entry of `file`.
    Auths { file: PathBuf },
    /// No file configures this registry.
    Unconfigured,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Helper { program, file, per_registry } => {
                let via = if *per_registry { "credHelpers" } else { "credsStore" };
                write!(f, "{program} ({via} in {})", file.display())
            }
            Source::Auths { file } => write!(f, "auths in {}", file.display()),
            Source::Unconfigured => f.write_str("no credentials configured"),
        }
    }
}

/// The answer for one registry.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub registry: RegistryKey,
    pub credential: Credential,
    pub source: Source,
    /// Why the credential is [`Credential::Anonymous`] although a source is configured (the
    /// helper had nothing, failed or timed out). A 401 from the registry quotes it.
    pub helper_error: Option<HelperCallError>,
}

impl Resolved {
    /// One line for messages: which source, which kind, and what went wrong if anything.
    pub fn describe(&self) -> String {
        match (&self.helper_error, &self.source) {
            (Some(e), _) => format!("{e} [{}]", self.source),
            (None, Source::Unconfigured) => format!(
                "no credentials are configured for {} (docker config: credHelpers, credsStore or auths)",
                self.registry
            ),
            (None, source) => format!("{} from {source}", self.credential.kind()),
        }
    }
}

/// Resolves registries to credentials from docker's config, calling helpers at most once per
/// registry. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Resolver {
    files: Vec<AuthFile>,
    helper_timeout: Duration,
    cache: Mutex<HashMap<RegistryKey, Arc<OnceLock<Arc<Resolved>>>>>,
    helper_calls: std::sync::atomic::AtomicU64,
}

/// A config file that could not be read or parsed.
pub type ResolverError = ConfigFileError;

impl Resolver {
    /// Read the default files ([`latchkey_protocol::auth_files::default_files`]). Missing files are fine; a file that
    /// exists but cannot be read or parsed is an error.
    pub fn from_env() -> Result<Resolver, ResolverError> {
        Resolver::from_files(latchkey_protocol::auth_files::default_files())
    }

    /// Read these files, in this order of precedence.
    pub fn from_files(files: impl IntoIterator<Item = (PathBuf, AuthFileKind)>) -> Result<Resolver, ResolverError> {
        let mut parsed = Vec::new();
        for (path, kind) in files {
            if let Some(file) = AuthFile::read(&path, kind)? {
                parsed.push(file);
            }
        }
        Ok(Resolver::from_auth_files(parsed))
    }

    /// A resolver over one docker `config.json` given as text (tests, embedding).
    pub fn from_json(docker_config: &str) -> Result<Resolver, ResolverError> {
        let file = AuthFile::parse(Path::new("<config.json text>"), AuthFileKind::Docker, docker_config)?;
        Ok(Resolver::from_auth_files(vec![file]))
    }

    pub fn from_auth_files(files: Vec<AuthFile>) -> Resolver {
        Resolver {
            files,
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
            cache: Mutex::new(HashMap::new()),
            helper_calls: Default::default(),
        }
    }

    /// Stop helpers that take longer than `timeout` (default [`DEFAULT_HELPER_TIMEOUT`]).
    pub fn with_helper_timeout(mut self, timeout: Duration) -> Resolver {
        self.helper_timeout = timeout;
        self
    }

    /// The files in use, in order.
    pub fn files(&self) -> &[AuthFile] {
        &self.files
    }

    /// How many helper processes this resolver has run.
    pub fn helper_calls(&self) -> u64 {
        self.helper_calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The credential for `registry` (`ghcr.io`, `localhost:5000`, `https://host`,
    /// `docker.io`...). The first call for a registry may run its helper (blocking, up to the
    /// helper timeout); later calls, from any thread, get the cached answer. Concurrent first
    /// calls for the same registry wait for one helper run.
    pub fn resolve(&self, registry: &str) -> Result<Arc<Resolved>, InvalidServerUrl> {
        let key = RegistryKey::parse_host(registry)?;
        Ok(self.resolve_key(&key))
    }

    /// [`Resolver::resolve`] for an already normalised key.
    pub fn resolve_key(&self, key: &RegistryKey) -> Arc<Resolved> {
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.entry(key.clone()).or_default().clone()
        };
        cell.get_or_init(|| Arc::new(self.lookup(key, None))).clone()
    }

    /// Ask again, bypassing the cache, and cache the new answer. For a static bearer the
    /// registry refused (`rejected`): the helper may have a fresh token by now, and is told
    /// which one was refused (see [`helper::get_replacing`]).
    pub fn refresh(&self, key: &RegistryKey, rejected: Option<&Secret<String>>) -> Arc<Resolved> {
        let fresh = Arc::new(self.lookup(key, rejected));
        let cell = OnceLock::new();
        let _ = cell.set(fresh.clone());
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), Arc::new(cell));
        fresh
    }

    fn lookup(&self, key: &RegistryKey, rejected: Option<&Secret<String>>) -> Resolved {
        for file in &self.files {
            if let Some(helper) = file.helper_for(key) {
                return self.ask(key, helper, &file.path, true, rejected);
            }
            if let Some(store) = &file.creds_store {
                return self.ask(key, store, &file.path, false, rejected);
            }
            if let Some(entry) = file.auth_for(key).filter(|e| !e.is_empty()) {
                let credential = if let Some(token) = &entry.registry_token {
                    Credential::StaticBearer(token.clone())
                } else if let Some(token) = &entry.identity_token {
                    Credential::IdentityToken { username: entry.username.clone(), token: token.clone() }
                } else if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
                    Credential::UsernamePassword { username: username.clone(), password: password.clone() }
                } else {
                    Credential::Anonymous
                };
                return Resolved {
                    registry: key.clone(),
                    credential,
                    source: Source::Auths { file: file.path.clone() },
                    helper_error: None,
                };
            }
        }
        Resolved {
            registry: key.clone(),
            credential: Credential::Anonymous,
            source: Source::Unconfigured,
            helper_error: None,
        }
    }

    fn ask(
        &self,
        key: &RegistryKey,
        helper: &str,
        file: &Path,
        per_registry: bool,
        rejected: Option<&Secret<String>>,
    ) -> Resolved {
        let server_url = if key.as_str() == DOCKER_HUB { DOCKER_HUB_SERVER_URL } else { key.as_str() };
        self.helper_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = match rejected {
            Some(token) => latchkey_protocol::client::get_replacing(helper, server_url, self.helper_timeout, token),
            None => latchkey_protocol::client::get(helper, server_url, self.helper_timeout),
        };
        let program = match &result {
            Err(e) => e.program().to_owned(),
            Ok(_) if helper.contains(std::path::MAIN_SEPARATOR) => helper.to_owned(),
            Ok(_) => format!("docker-credential-{helper}"),
        };
        let source = Source::Helper { program, file: file.to_path_buf(), per_registry };
        match result {
            Ok(answer) => Resolved {
                registry: key.clone(),
                credential: Credential::from_helper(answer),
                source,
                helper_error: None,
            },
            Err(e) => {
                Resolved { registry: key.clone(), credential: Credential::Anonymous, source, helper_error: Some(e) }
            }
        }
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("files", &self.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>())
            .field("helper_timeout", &self.helper_timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, AuthFileKind, &str)]) -> Resolver {
        Resolver::from_auth_files(
            list.iter().map(|(name, kind, text)| AuthFile::parse(Path::new(name), *kind, text).unwrap()).collect(),
        )
    }

    #[test]
    #[cfg(unix)] // the helper is a /bin/sh script
    fn order_is_cred_helpers_then_creds_store_then_auths() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("h");
        let log = dir.path().join("calls");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nread -r url; echo \"$url\" >> {}\nprintf '{{\"Username\":\"\\\\u003cstatic_bearer\\\\u003e\",\"Secret\":\"tok-%s\"}}' \"$url\"\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let h = helper.display().to_string();
        let docker = format!(
            r#"{{"credHelpers": {{"a.io": "{h}"}}, "auths": {{"a.io": {{"auth": "dTpw"}}, "b.io": {{"auth": "dTpw"}}}}}}"#
        );
        let r = files(&[
            ("config.json", AuthFileKind::Docker, &docker),
            (
                "auth.json",
                AuthFileKind::Containers,
                r#"{"auths": {"c.io": {"identitytoken": "rt"}}, "credsStore": "x"}"#,
            ),
        ]);
        let a = r.resolve("https://a.io/v2/").unwrap();
        assert!(matches!(&a.credential, Credential::StaticBearer(t) if t.expose() == "tok-a.io"), "{a:?}");
        assert!(matches!(&a.source, Source::Helper { per_registry: true, .. }));
        // Cached: one helper run per registry, however often and however spelled.
        r.resolve("a.io").unwrap();
        r.resolve("A.IO").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a.io\n");
        assert_eq!(r.helper_calls(), 1);
        // refresh asks again.
        r.refresh(&RegistryKey::parse("a.io").unwrap(), None);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a.io\na.io\n");

        assert!(matches!(r.resolve("b.io").unwrap().credential, Credential::UsernamePassword { .. }));
        // auth.json's credsStore is ignored; its auths are used.
        assert!(matches!(r.resolve("c.io").unwrap().credential, Credential::IdentityToken { .. }));
        let d = r.resolve("d.io").unwrap();
        assert!(matches!(d.credential, Credential::Anonymous) && d.source == Source::Unconfigured);

        // credsStore takes every registry that has no credHelpers entry, before auths.
        let store = format!(r#"{{"credsStore": "{h}", "auths": {{"b.io": {{"auth": "dTpw"}}}}}}"#);
        let r = files(&[("config.json", AuthFileKind::Docker, &store)]);
        let b = r.resolve("b.io").unwrap();
        assert!(matches!(&b.source, Source::Helper { per_registry: false, .. }), "{b:?}");
        // Docker Hub is asked for with docker's server URL.
        r.resolve("registry-1.docker.io").unwrap();
        assert!(std::fs::read_to_string(&log).unwrap().ends_with("b.io\nhttps://index.docker.io/v1/\n"));
    }

    #[test]
    fn a_failing_helper_means_anonymous_with_the_reason_kept() {
        let r =
            files(&[("config.json", AuthFileKind::Docker, r#"{"credHelpers": {"a.io": "latchkey-test-missing"}}"#)]);
        let a = r.resolve("a.io").unwrap();
        assert!(matches!(a.credential, Credential::Anonymous));
        assert!(matches!(a.helper_error, Some(HelperCallError::NotInstalled { .. })));
        assert!(a.describe().contains("docker-credential-latchkey-test-missing"), "{}", a.describe());
    }
}

//! Bazel's credential-helper protocol (EngFlow credential-helper-spec), served by the same
//! `get` verb as docker's: Bazel writes `{"uri":"https://host/v2/..."}` on stdin and reads
//! `{"headers":{"Authorization":["..."]},"expires":"<RFC 3339>"}`; `{}` means "no credentials".
//! Docker's `get` reads a bare server URL, never JSON, so a first non-whitespace byte `{` picks
//! this protocol.
//!
//! * A static-bearer registry answers its JWT (`expires` = its `exp` minus min-validity-secs),
//!   or, with `answer = "bearer"`, the scoped registry token the JWT buys at the token service.
//! * Any other registry's credential (stored, identity token, device secret: whatever latchkey's
//!   own source answers) is exchanged here, by the registry's challenge flow, for a pull token
//!   of the URI's repository, cached on disk per registry and scope (single-flight, like the
//!   static bearer's cache) so that Bazel's hundreds of parallel helper runs cost one token
//!   request per scope. A Basic-only registry gets `Basic`.
//! * Only `/v2/<repo>/(manifests|blobs|tags)/<one segment>` URIs get credentials; anything else
//!   (a CDN after a redirect, a non-API path) gets `{}`. Credentials are looked up by the URI's
//!   own host, so they never go to a host they were not issued for.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{Config, Mode};
use crate::registry;
use crate::source::static_bearer::AnswerConvention;
use crate::store::LazyStore;
use crate::token_cache::{CachedToken, TokenCache, unix};
use latchkey_protocol::helper::HelperError;
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;
use latchkey_resolver::scoped_token::{ScopedAuth, ScopedTokenRequest, basic_header, scoped_token};
use latchkey_resolver::{ClientOptions, Credential, HelperCredentials};

/// Each network request (the `/v2/` ping, the token request) ends within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a helper run waits for another run's refresh of the same scope.
const CACHE_WAIT: Duration = Duration::from_secs(25);
/// A cached scoped token is served only while it stays valid this long, and `expires` says so.
const SCOPED_MARGIN: Duration = Duration::from_secs(30);
/// How long Bazel may keep a Basic header (or "nothing needed") before asking again.
const NO_EXPIRY_ANSWER: Duration = Duration::from_secs(300);

/// Whether `stdin` is a Bazel request (a JSON object) rather than docker's bare server URL.
pub fn is_bazel_request(stdin: &[u8]) -> bool {
    stdin.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[derive(Deserialize)]
struct Request {
    uri: Option<String>,
}

/// What goes on stdout.
pub enum Response {
    None,
    Header { value: Secret<String>, expires: Option<u64> },
}

impl Response {
    pub fn to_json(&self) -> String {
        match self {
            Response::None => "{}".to_owned(),
            Response::Header { value, expires } => {
                let mut out = serde_json::json!({ "headers": { "Authorization": [value.expose()] } });
                if let Some(at) = expires {
                    out["expires"] = serde_json::Value::String(latchkey_jwt::rfc3339(*at));
                }
                out.to_string()
            }
        }
    }
}

/// Serve one Bazel `get`: the answer on stdout, or a message on stderr and exit 1.
pub fn serve(stdin: &[u8]) -> ExitCode {
    match answer(stdin) {
        Ok(response) => {
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{}", response.to_json()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Err(message) => {
            eprintln!("latchkey: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The registry API URI's registry and repository, if it is one latchkey answers for: GET/HEAD
/// targets `/v2/<repo>/manifests/<ref>`, `/v2/<repo>/blobs/<digest>`, `/v2/<repo>/tags/list`.
pub fn registry_api_target(uri: &url::Url) -> Option<(String, String)> {
    if !matches!(uri.scheme(), "https" | "http") || !uri.username().is_empty() || uri.password().is_some() {
        return None;
    }
    let host = uri.host_str()?;
    let authority = match uri.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let path = uri.path().strip_prefix("/v2/")?;
    let segments: Vec<&str> = path.split('/').collect();
    let n = segments.len();
    if n < 3 || segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let ok = match (segments[n - 2], segments[n - 1]) {
        ("manifests", _) => true,
        ("blobs", last) => last != "uploads",
        ("tags", last) => last == "list",
        _ => false,
    };
    ok.then(|| (authority, segments[..n - 2].join("/")))
}

/// Whether `raw`'s authority is already what the URL parser made of it (case aside, and an
/// explicit default port allowed). The WHATWG parser rewrites hosts that other parsers read
/// differently (`0177.0.0.1`, `0x7f.1` and `2130706433` become `127.0.0.1`; tabs and newlines
/// are dropped): credentials looked up for the rewritten host must not be answered to a client
/// that connects to the host as written.
fn authority_as_written(raw: &str, uri: &url::Url) -> bool {
    let Some(host) = uri.host_str() else { return false };
    let raw = raw.trim_matches(|c: char| c <= ' ');
    let Some((_, rest)) = raw.split_once("://") else { return false };
    let written = rest.split(['/', '?', '#', '\\']).next().unwrap_or("").to_ascii_lowercase();
    let normal = match uri.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let with_default = uri.port_or_known_default().map(|port| format!("{host}:{port}"));
    written == normal || with_default.is_some_and(|w| written == w)
}

fn answer(stdin: &[u8]) -> Result<Response, String> {
    let request: Request =
        serde_json::from_slice(stdin).map_err(|e| format!("the Bazel credential request is not valid JSON: {e}"))?;
    let uri = request.uri.ok_or("the Bazel credential request has no \"uri\"")?;
    let raw = uri;
    let uri = url::Url::parse(&raw).map_err(|e| format!("the Bazel credential request's uri is not a URL: {e}"))?;
    if !authority_as_written(&raw, &uri) {
        return Ok(Response::None);
    }
    let Some((authority, repository)) = registry_api_target(&uri) else {
        return Ok(Response::None);
    };
    let key = registry::key(&authority).map_err(|e| e.to_string())?;
    if uri.scheme() == "http" && !latchkey_http::is_loopback_host(key.api_host()) {
        eprintln!(
            "latchkey: warning: not sending credentials for {key} over plain http (only loopback registries may use it)"
        );
        return Ok(Response::None);
    }
    let config = Config::load_default().map_err(|e| e.0)?;
    let scope = format!("repository:{repository}:pull");
    let registry_config = config.registry(&key);
    if registry_config.mode == Mode::StaticBearer {
        let source = registry::static_bearer(&config, &key).map_err(|e| e.to_string())?;
        let token = source.token()?;
        if registry_config.answer.unwrap_or_default() == AnswerConvention::StaticBearer {
            let expires = token.expires_at.saturating_sub(source.min_validity.as_secs());
            let value = Secret::new(format!("Bearer {}", token.secret().expose()));
            return Ok(Response::Header { value, expires: Some(expires) });
        }
        let credential = Credential::BearerJwt(token.secret());
        return exchange(&key, &scope, &credential);
    }
    let mut store = LazyStore::new(config.store)?;
    let answer = match registry::source_for(&config, &key).map_err(|e| e.to_string())?.get(&mut store) {
        Ok(answer) => answer,
        Err(HelperError::NotFound) => return Ok(Response::None),
        Err(e) => return Err(e.to_string()),
    };
    let credential = Credential::from_helper(HelperCredentials { username: answer.username, secret: answer.secret });
    match &credential {
        Credential::StaticBearer(token) => {
            Ok(Response::Header { value: Secret::new(format!("Bearer {}", token.expose())), expires: None })
        }
        Credential::Anonymous => Ok(Response::None),
        _ => exchange(&key, &scope, &credential),
    }
}

/// The scoped answer for `credential`, from the cache or the registry's challenge flow.
fn exchange(key: &RegistryKey, scope: &str, credential: &Credential) -> Result<Response, String> {
    // Keyed by everything that decides the token, including (a digest of) the credential: a new
    // login is a new entry, never the old account's token.
    let mut digest = Sha256::new();
    for part in credential_parts(credential) {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    let cache_key = format!("bazel|{key}|{scope}|{}|{:x}", credential.kind(), digest.finalize());
    let cache = TokenCache::new(&crate::paths::cache_dir(), &cache_key);
    let request = ScopedTokenRequest {
        registry: key,
        scope,
        credential,
        plain_http: ClientOptions::default().plain_http,
        timeout: REQUEST_TIMEOUT,
    };
    let fetch = || {
        let now = SystemTime::now();
        let (token, lifetime) = match scoped_token(&request)? {
            ScopedAuth::NotNeeded => (String::new(), NO_EXPIRY_ANSWER),
            // The header itself is built from the credential on every answer: the cache never
            // holds a password.
            ScopedAuth::Basic => ("Basic".to_owned(), NO_EXPIRY_ANSWER),
            ScopedAuth::Bearer { token, lifetime } => (format!("Bearer {}", token.expose()), lifetime),
        };
        Ok(CachedToken {
            token,
            expires_at: unix(now).saturating_add(lifetime.as_secs()),
            subject: None,
            audience: Vec::new(),
            obtained_at: unix(now),
        })
    };
    let margin = SCOPED_MARGIN;
    let cached = cache
        .get_or_refresh(margin, CACHE_WAIT, None, |_| true, fetch)
        .map_err(|e| format!("{key} ({} for {scope}): {e}", credential.kind()))?;
    let expires = Some(cached.expires_at.saturating_sub(margin.as_secs()).max(unix(SystemTime::now()) + 1));
    Ok(match (cached.token.as_str(), credential) {
        ("", _) => Response::None,
        ("Basic", Credential::UsernamePassword { username, password }) => {
            Response::Header { value: basic_header(username, password.expose()), expires }
        }
        ("Basic", _) => {
            return Err(format!("{key} asks for Basic authentication, which a {} cannot answer", credential.kind()));
        }
        (header, _) => Response::Header { value: Secret::new(header.to_owned()), expires },
    })
}

fn credential_parts(credential: &Credential) -> Vec<&str> {
    match credential {
        Credential::StaticBearer(t) | Credential::BearerJwt(t) => vec![t.expose().as_str()],
        Credential::IdentityToken { username, token } => {
            vec![username.as_deref().unwrap_or(""), token.expose().as_str()]
        }
        Credential::UsernamePassword { username, password } => vec![username.as_str(), password.expose().as_str()],
        Credential::Anonymous => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Option<(String, String)> {
        registry_api_target(&url::Url::parse(uri).unwrap())
    }

    #[test]
    fn only_registry_api_paths_get_credentials() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            target(&format!("https://ghcr.io/v2/org/app/manifests/{d}")),
            Some(("ghcr.io".into(), "org/app".into()))
        );
        assert_eq!(target("https://ghcr.io/v2/org/app/manifests/1.2"), Some(("ghcr.io".into(), "org/app".into())));
        assert_eq!(
            target(&format!("http://127.0.0.1:5000/v2/a/blobs/{d}")),
            Some(("127.0.0.1:5000".into(), "a".into()))
        );
        assert_eq!(target("https://r.example:443/v2/x/tags/list"), Some(("r.example".into(), "x".into())));
        // A repository may have a component named like an endpoint.
        assert_eq!(
            target("https://r.example/v2/a/blobs/b/manifests/1"),
            Some(("r.example".into(), "a/blobs/b".into()))
        );
        for uri in [
            "https://ghcr.io/v2/",
            "https://ghcr.io/v2/app/manifests/",
            "https://ghcr.io/v2/manifests/1",
            "https://ghcr.io/v2/app/blobs/uploads",
            "https://ghcr.io/v2/app/tags/other",
            "https://ghcr.io/token?scope=x",
            "https://pkg-containers.githubusercontent.com/ghcr1/blobs/sha256:00",
            "https://user:pw@ghcr.io/v2/app/manifests/1",
            "ftp://ghcr.io/v2/app/manifests/1",
        ] {
            assert_eq!(target(uri), None, "{uri}");
        }
    }

    #[test]
    fn hosts_the_url_parser_rewrites_get_nothing() {
        let written = |raw: &str| authority_as_written(raw, &url::Url::parse(raw).unwrap());
        for ok in [
            "https://ghcr.io/v2/a/manifests/1",
            "https://GHCR.io/v2/a/manifests/1",
            "https://ghcr.io:443/v2/a/manifests/1",
            "http://127.0.0.1:5000/v2/a/manifests/1",
            "http://[::1]:5000/v2/a/manifests/1",
            " https://ghcr.io/v2/a/manifests/1\n",
        ] {
            assert!(written(ok), "{ok}");
        }
        for rewritten in [
            "http://0177.0.0.1:5000/v2/a/manifests/1",
            "http://0x7f.1:5000/v2/a/manifests/1",
            "http://2130706433:5000/v2/a/manifests/1",
            "http://127.1:5000/v2/a/manifests/1",
            "http://127.0.0.1:05000/v2/a/manifests/1",
            "http://127.0.0.1:5000\t/v2/a/manifests/1",
            "https://gh\ncr.io/v2/a/manifests/1",
            "https://gh%63r.io/v2/a/manifests/1",
            "http://[0:0::1]:5000/v2/a/manifests/1",
        ] {
            assert!(!written(rewritten), "{rewritten}");
        }
    }

    #[test]
    fn the_request_is_told_apart_by_its_first_byte() {
        assert!(is_bazel_request(b"  \n{\"uri\":\"https://x\"}"));
        assert!(!is_bazel_request(b"ghcr.io\n"));
        assert!(!is_bazel_request(b""));
    }

    #[test]
    fn responses_are_the_spec_s_json() {
        assert_eq!(Response::None.to_json(), "{}");
        let r = Response::Header { value: Secret::from("Bearer t"), expires: Some(1_796_128_496) };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["headers"]["Authorization"][0], "Bearer t");
        assert_eq!(v["expires"], "2026-12-01T12:34:56Z");
        let r = Response::Header { value: Secret::from("Basic x"), expires: None };
        assert_eq!(r.to_json(), r#"{"headers":{"Authorization":["Basic x"]}}"#);
    }

    #[test]
    fn answer_is_a_static_bearer_key() {
        use std::path::Path;
        let text = "[registries.\"r.example\"]\nmode = \"static-bearer\"\nanswer = \"bearer\"\n[registries.\"r.example\".identity]\nsource = \"env\"\nvar = \"T\"\n";
        let config = Config::parse(Path::new("c.toml"), text).unwrap();
        let key = RegistryKey::parse_host("r.example").unwrap();
        assert_eq!(config.registry(&key).answer, Some(AnswerConvention::Bearer));
        assert_eq!(AnswerConvention::Bearer.username(), "Bearer");
        assert_eq!(AnswerConvention::default().username(), "<static_bearer>");
        let err =
            Config::parse(Path::new("c.toml"), "[registries.\"r.example\"]\nanswer = \"bearer\"\n").unwrap_err().0;
        assert!(err.contains("only for mode = \"static-bearer\""), "{err}");
    }
}

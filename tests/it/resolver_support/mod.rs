//! Fixtures for the resolver and `pull` tests: a Distribution registry with its access log on,
//! a token service that records every request (and can issue registry JWTs signed with
//! `latchkey_jwt::mint`), multi-platform test images pushed over HTTP, a fault-injecting
//! proxy, a "CDN" that records what it is sent, and layout checks.
//!
//! Every server here listens on 127.0.0.1 only, stops when dropped, and bounds its waits.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use crate::common::{self, RegistryAuth, RegistryOptions, require, run_command, sha256_hex};

pub const SERVICE: &str = "latchkey-resolver-registry";
pub const ISSUER: &str = "latchkey-resolver-issuer";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The test signing key (its certificate is the registry's whole rootcertbundle).
pub fn signing_key_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support_registry/keys/p256_pkcs8.pem")
}

pub fn signing_cert_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support_registry/keys/p256_cert.pem")
}

/// A registry JWT for `repo` with `actions`, as a token service would issue it.
pub fn registry_jwt(repo: &str, actions: &[&str], lifetime: Duration) -> String {
    let mut extra = serde_json::Map::new();
    extra.insert("access".into(), json!([{"type": "repository", "name": repo, "actions": actions}]));
    let spec = latchkey_jwt::MintSpec {
        algorithm: latchkey_jwt::Algorithm::ES256,
        private_key_pem: fs::read_to_string(signing_key_path()).unwrap().into(),
        key_id: latchkey_jwt::KeyIdHeader::Libtrust,
        issuer: ISSUER.into(),
        subject: "resolver-test".into(),
        audience: SERVICE.into(),
        lifetime,
        not_before_skew: Duration::from_secs(30),
        extra_claims: extra,
    };
    latchkey_jwt::mint(&spec, SystemTime::now()).unwrap().expose().clone()
}

// =============================================================================================
// Distribution with its access log
// =============================================================================================

pub enum Auth {
    None,
    Htpasswd(Vec<(&'static str, &'static str)>),
    /// `auth: token` with this realm; the bundle is the test signing certificate.
    Token {
        realm: String,
    },
}

/// The shared registry ([`common::Registry`]) with its access log on.
pub struct Distribution(common::Registry);

impl std::ops::Deref for Distribution {
    type Target = common::Registry;
    fn deref(&self) -> &common::Registry {
        &self.0
    }
}

/// One access-log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub user_agent: String,
}

impl Distribution {
    pub fn start(auth: Auth) -> Distribution {
        let auth = match auth {
            Auth::None => RegistryAuth::None,
            Auth::Htpasswd(users) => {
                RegistryAuth::Htpasswd { users: users.into_iter().map(|(u, p)| (u.to_owned(), p.to_owned())).collect() }
            }
            Auth::Token { realm } => RegistryAuth::Token {
                realm,
                service: SERVICE.into(),
                issuer: ISSUER.into(),
                root_cert_bundle: signing_cert_path(),
            },
        };
        Distribution(common::Registry::start_with(RegistryOptions {
            access_log: true,
            log_level: "warn",
            storage_health_check: false,
            ..RegistryOptions::new(auth)
        }))
    }

    /// Every access-log line so far.
    pub fn access_log(&self) -> Vec<Access> {
        self.log_file("access.log").lines().filter_map(parse_access).collect()
    }

    /// Access-log lines of requests made by latchkey (its user agent).
    pub fn latchkey_requests(&self) -> Vec<Access> {
        self.access_log().into_iter().filter(|a| a.user_agent.starts_with("latchkey/")).collect()
    }
}

/// `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 401 87 "" "ua"`.
fn parse_access(line: &str) -> Option<Access> {
    let request_start = line.find("] \"")? + 3;
    let rest = &line[request_start..];
    let request_end = rest.find('"')?;
    let mut request = rest[..request_end].split(' ');
    let method = request.next()?.to_owned();
    let path = request.next()?.to_owned();
    let after = rest[request_end + 1..].trim_start();
    let status = after.split(' ').next()?.parse().ok()?;
    let user_agent = after.rsplit('"').nth(1).unwrap_or("").to_owned();
    Some(Access { method, path, status, user_agent })
}

// =============================================================================================
// A token service: records every request; refuses, or issues registry JWTs.
// =============================================================================================

#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub method: String,
    pub url: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Clone, Default)]
pub struct TokenPolicy {
    /// Accepted Basic credentials (GET realm, or grant_type=password).
    pub users: Vec<(String, String)>,
    /// Accepted refresh tokens (grant_type=refresh_token).
    pub refresh_tokens: Vec<String>,
    /// Anonymous GETs get pull access (a public repository, Docker Hub style).
    pub anonymous_pull: bool,
    /// Accept `Authorization: Bearer <JWT>` on a GET (the `Bearer` helper convention) when the
    /// JWT's `sub` is this, its `iss` is [`ISSUER`] and it has not expired.
    pub bearer_subject: Option<String>,
}

pub struct TokenServer {
    pub url: String,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    /// A realm that must never be called: records and answers 500.
    pub fn recorder() -> TokenServer {
        TokenServer::start(None)
    }

    pub fn issuing(policy: TokenPolicy) -> TokenServer {
        TokenServer::start(Some(policy))
    }

    fn start(policy: Option<TokenPolicy>) -> TokenServer {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind token server");
        let url = format!("http://{}/auth/token", server.server_addr().to_ip().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(50)) else { continue };
                let mut body = String::new();
                let _ = request.as_reader().take(64 * 1024).read_to_string(&mut body);
                let authorization = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_owned());
                let recorded = TokenRequest {
                    method: request.method().as_str().to_owned(),
                    url: request.url().to_owned(),
                    authorization: authorization.clone(),
                    body: body.clone(),
                };
                log.lock().unwrap().push(recorded.clone());
                let (status, answer) = match &policy {
                    None => (500, "recorder: no token for you".to_owned()),
                    Some(policy) => issue(policy, &recorded),
                };
                let response = tiny_http::Response::from_string(answer)
                    .with_status_code(status)
                    .with_header(tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap());
                let _ = request.respond(response);
            }
        });
        TokenServer { url, requests, stop, thread: Some(thread) }
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn query_param(url_or_body: &str, name: &str) -> Option<String> {
    let query = url_or_body.split_once('?').map_or(url_or_body, |(_, q)| q);
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn issue(policy: &TokenPolicy, request: &TokenRequest) -> (u16, String) {
    let (scope, authorized) = if request.method == "POST" {
        let grant = query_param(&request.body, "grant_type").unwrap_or_default();
        let ok = match grant.as_str() {
            "refresh_token" => {
                query_param(&request.body, "refresh_token").is_some_and(|t| policy.refresh_tokens.contains(&t))
            }
            "password" => policy.users.iter().any(|(u, p)| {
                query_param(&request.body, "username").as_deref() == Some(u)
                    && query_param(&request.body, "password").as_deref() == Some(p)
            }),
            _ => false,
        };
        (query_param(&request.body, "scope"), ok)
    } else {
        let ok = match &request.authorization {
            Some(bearer) if bearer.starts_with("Bearer ") => policy.bearer_subject.as_deref().is_some_and(|want| {
                latchkey_jwt::inspect(&bearer["Bearer ".len()..]).is_ok_and(|c| {
                    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
                    c.subject.as_deref() == Some(want)
                        && c.issuer.as_deref() == Some(ISSUER)
                        && c.expires_at.is_some_and(|e| e > now)
                })
            }),
            Some(basic) => policy.users.iter().any(|(u, p)| *basic == common::basic_auth(u, p)),
            None => false,
        };
        (query_param(&request.url, "scope"), ok)
    };
    let anonymous = request.authorization.is_none() && request.method == "GET";
    if !(authorized || policy.anonymous_pull && anonymous) {
        return (401, r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.to_owned());
    }
    let mut actions: Vec<&str> = Vec::new();
    let mut repo = String::new();
    if let Some(scope) = &scope {
        let parts: Vec<&str> = scope.split(':').collect();
        if parts.len() == 3 && parts[0] == "repository" {
            repo = parts[1].to_owned();
            actions = if authorized { parts[2].split(',').collect() } else { vec!["pull"] };
        }
    }
    let token = registry_jwt(&repo, &actions, Duration::from_secs(300));
    (200, json!({"token": token, "access_token": token, "expires_in": 300}).to_string())
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// =============================================================================================
// Test images, pushed over the registry API
// =============================================================================================

/// A multi-platform image: blobs by digest, each platform's manifest, the index.
pub struct TestImage {
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// (platform "os/arch", manifest digest, manifest bytes)
    pub manifests: Vec<(String, String, Vec<u8>)>,
    pub index_digest: String,
    pub index: Vec<u8>,
    pub index_media_type: &'static str,
}

/// Deterministic pseudo-random bytes (xorshift), so layers do not compress or dedupe.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

impl TestImage {
    /// `platforms` like `["linux/amd64", "linux/arm64"]`; each gets a config and two layers of
    /// `layer_size` bytes (tar archives of noise); `docker` picks Docker schema 2 media types.
    pub fn build(seed: u64, platforms: &[&str], layer_size: usize, docker: bool) -> TestImage {
        let (manifest_type, config_type, layer_type, index_type) = if docker {
            (
                DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar",
                DOCKER_LIST,
            )
        } else {
            (
                OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar",
                OCI_INDEX,
            )
        };
        let mut blobs = BTreeMap::new();
        let mut manifests = Vec::new();
        let mut descriptors = Vec::new();
        for (i, platform) in platforms.iter().enumerate() {
            let (os, arch) = platform.split_once('/').unwrap();
            let mut layers = Vec::new();
            let mut diff_ids = Vec::new();
            for l in 0..2u64 {
                let name = format!("{arch}-layer-{l}.bin");
                let data = noise(seed * 1000 + i as u64 * 10 + l, layer_size);
                let layer = common::tar(&[(name.as_str(), &data)]);
                let d = digest(&layer);
                diff_ids.push(d.clone());
                layers.push(json!({"mediaType": layer_type, "digest": d, "size": layer.len()}));
                blobs.insert(d, layer);
            }
            let config = json!({"architecture": arch, "os": os, "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}})
                .to_string()
                .into_bytes();
            let config_digest = digest(&config);
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": manifest_type,
                "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
                "layers": layers,
            })
            .to_string()
            .into_bytes();
            blobs.insert(config_digest, config);
            let manifest_digest = digest(&manifest);
            descriptors.push(json!({
                "mediaType": manifest_type, "digest": manifest_digest, "size": manifest.len(),
                "platform": {"architecture": arch, "os": os},
            }));
            manifests.push((platform.to_string(), manifest_digest, manifest));
        }
        let index =
            json!({"schemaVersion": 2, "mediaType": index_type, "manifests": descriptors}).to_string().into_bytes();
        TestImage { blobs, manifests, index_digest: digest(&index), index, index_media_type: index_type }
    }

    /// Every digest a full pull must write: blobs, manifests and the index.
    pub fn all_digests(&self) -> Vec<String> {
        let mut all: Vec<String> = self.blobs.keys().cloned().collect();
        all.extend(self.manifests.iter().map(|(_, d, _)| d.clone()));
        all.push(self.index_digest.clone());
        all.sort();
        all
    }

    /// The digests one platform's pull writes (blobs of that manifest, and the manifest).
    pub fn platform_digests(&self, platform: &str) -> Vec<String> {
        let (_, d, m) = self.manifests.iter().find(|(p, _, _)| p == platform).unwrap();
        let v: serde_json::Value = serde_json::from_slice(m).unwrap();
        let mut all = vec![d.clone(), v["config"]["digest"].as_str().unwrap().to_owned()];
        all.extend(v["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()));
        all.sort();
        all
    }

    pub fn manifest_digest(&self, platform: &str) -> String {
        self.manifests.iter().find(|(p, _, _)| p == platform).unwrap().1.clone()
    }

    /// A layer digest of `platform` (for faults aimed at one blob).
    pub fn a_layer(&self, platform: &str) -> String {
        let (_, _, m) = self.manifests.iter().find(|(p, _, _)| p == platform).unwrap();
        let v: serde_json::Value = serde_json::from_slice(m).unwrap();
        v["layers"][1]["digest"].as_str().unwrap().to_owned()
    }

    /// Push everything to `base` (`http://127.0.0.1:PORT`) as `repo:tag`, with `authorization`.
    pub fn push(&self, base: &str, repo: &str, tag: &str, authorization: Option<&str>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let with_auth = |mut req: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            if let Some(a) = authorization {
                req = req.header("Authorization", a);
            }
            req
        };
        for (d, bytes) in &self.blobs {
            let started = with_auth(agent.post(format!("{base}/v2/{repo}/blobs/uploads/"))).send_empty().unwrap();
            assert_eq!(started.status(), 202, "start upload of {d}");
            let location = started.headers().get("Location").unwrap().to_str().unwrap().to_owned();
            let url = if location.starts_with("http") { location } else { format!("{base}{location}") };
            let sep = if url.contains('?') { '&' } else { '?' };
            let done = with_auth(agent.put(format!("{url}{sep}digest={d}")))
                .header("Content-Type", "application/octet-stream")
                .send(&bytes[..])
                .unwrap();
            assert_eq!(done.status(), 201, "finish upload of {d}");
        }
        let manifest_type = if self.index_media_type == DOCKER_LIST { DOCKER_MANIFEST } else { OCI_MANIFEST };
        for (_, d, bytes) in &self.manifests {
            push_manifest(base, repo, d, manifest_type, bytes, authorization);
        }
        let got = push_manifest(base, repo, tag, self.index_media_type, &self.index, authorization);
        assert_eq!(got, self.index_digest, "the registry keeps the index bytes as pushed");
    }
}

/// PUT a manifest (or index) as `repo:reference`; returns the digest the registry names.
pub fn push_manifest(
    base: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
    authorization: Option<&str>,
) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut put = agent.put(format!("{base}/v2/{repo}/manifests/{reference}")).header("Content-Type", media_type);
    if let Some(a) = authorization {
        put = put.header("Authorization", a);
    }
    let mut answer = put.send(bytes).unwrap();
    let status = answer.status();
    assert_eq!(status, 201, "push {repo}:{reference}: {}", answer.body_mut().read_to_string().unwrap_or_default());
    answer.headers().get("Docker-Content-Digest").unwrap().to_str().unwrap().to_owned()
}

/// An OCI index of `children` (`(media type, digest, size)`), with no platforms: an index of indexes.
pub fn index_of(children: &[(&str, &str, usize)]) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> =
        children.iter().map(|(t, d, size)| json!({"mediaType": t, "digest": d, "size": size})).collect();
    json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).to_string().into_bytes()
}

// =============================================================================================
// The layout latchkey wrote
// =============================================================================================

/// Check `dir` is a clean OCI layout: every file in blobs/sha256 hashes to its name, nothing
/// else in blobs/, no temp dir left. Returns the blob digests, sorted.
pub fn check_layout(dir: &Path) -> Vec<String> {
    let mut digests = Vec::new();
    let blobs = dir.join("blobs");
    if blobs.exists() {
        for alg in fs::read_dir(&blobs).unwrap() {
            let alg = alg.unwrap();
            assert_eq!(alg.file_name(), "sha256", "unexpected entry in blobs/: {:?}", alg.path());
            for entry in fs::read_dir(alg.path()).unwrap() {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                let bytes = fs::read(entry.path()).unwrap();
                assert_eq!(
                    sha256_hex(&bytes),
                    name,
                    "blobs/sha256/{name} does not hash to its name (partial or corrupt)"
                );
                digests.push(format!("sha256:{name}"));
            }
        }
    }
    if dir.exists() {
        for entry in fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                ["blobs", "index.json", "oci-layout"].contains(&name.as_str()),
                "unexpected file left in the layout: {name}"
            );
        }
    }
    digests.sort();
    digests
}

/// index.json's manifests.
pub fn index_entries(dir: &Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    v["manifests"].as_array().unwrap().clone()
}

// =============================================================================================
// Docker config, latchkey config, helper scripts
// =============================================================================================

/// Write `config.json` into a DOCKER_CONFIG dir of `env` and point DOCKER_CONFIG at it.
pub fn docker_config(env: &mut common::TestEnv, config: serde_json::Value) -> PathBuf {
    let dir = env.path("docker");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.json"), config.to_string()).unwrap();
    env.set("DOCKER_CONFIG", &dir);
    dir.join("config.json")
}

/// A latchkey config whose `host` is a static-bearer registry minting pull tokens for `repos`.
pub fn latchkey_mint_config(env: &common::TestEnv, host: &str, repos: &[&str]) {
    let access: Vec<String> =
        repos.iter().map(|r| format!("{{ type = \"repository\", name = \"{r}\", actions = [\"pull\"] }}")).collect();
    let text = format!(
        "[registries.\"{host}\"]\nmode = \"static-bearer\"\n[registries.\"{host}\".identity]\nsource = \"mint\"\nalgorithm = \"ES256\"\nprivate-key-file = {key:?}\nissuer = \"{ISSUER}\"\nsubject = \"resolver-test\"\naudience = \"{SERVICE}\"\nlifetime-secs = 600\naccess = [{access}]\n",
        key = common::private_copy(env, &signing_key_path(), "signing-key.pem").display().to_string(),
        access = access.join(", ")
    );
    let path = env.config_path();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A directory of helper scripts, put first on `env`'s PATH.
pub fn helper_dir(env: &mut common::TestEnv) -> PathBuf {
    let dir = env.path("helpers");
    fs::create_dir_all(&dir).unwrap();
    let path = env.var("PATH").unwrap().to_owned();
    let mut joined = std::ffi::OsString::from(&dir);
    joined.push(":");
    joined.push(path);
    env.set("PATH", joined);
    dir
}

/// `docker-credential-NAME` in `dir`, a shell script with `body`.
pub fn helper_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("docker-credential-{name}"));
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// A helper that logs each call (one line: the server URL) to `log` and runs latchkey.
pub fn counting_latchkey(dir: &Path, log: &Path) {
    helper_script(
        dir,
        "counting",
        &format!(
            "url=$(cat); printf '%s\\n' \"$url\" >> {log:?}; printf '%s' \"$url\" | exec {:?} \"$@\"",
            common::LATCHKEY
        ),
    );
}

// =============================================================================================
// A fault-injecting proxy in front of the registry, and a CDN
// =============================================================================================

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Flip one byte in the body of this blob, every time.
    Corrupt(String),
    /// Send half of this blob's body, then close the connection; the first `n` times.
    DropBody(String, usize),
    /// Send half of this blob's body, then hold the connection open until the proxy is dropped.
    Stall(String),
    /// Answer blob GETs with 307 to `base` + `/cdn/<digest>`.
    RedirectBlobs(String),
}

#[derive(Clone, Debug)]
pub struct ProxyRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
}

pub struct FaultProxy {
    pub port: u16,
    requests: Arc<Mutex<Vec<ProxyRequest>>>,
    /// Set when a Stall fault is holding a connection.
    pub stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new(0usize));
        let (log, stopping, stall_flag) = (requests.clone(), stop.clone(), stalled.clone());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (log, fault, stopping, counts, stall_flag) =
                            (log.clone(), fault.clone(), stopping.clone(), counts.clone(), stall_flag.clone());
                        workers.push(std::thread::spawn(move || {
                            let _ = proxy_one(stream, upstream_port, &fault, &log, &stopping, &counts, &stall_flag);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        FaultProxy { port, requests, stalled, stop, thread: Some(thread) }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn proxy_one(
    mut client: TcpStream,
    upstream_port: u16,
    fault: &Fault,
    log: &Mutex<Vec<ProxyRequest>>,
    stopping: &AtomicBool,
    counts: &Mutex<usize>,
    stalled: &AtomicBool,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = read_head(&mut client).ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let head_text = String::from_utf8_lossy(&head).into_owned();
    let mut first = head_text.lines().next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let path = first.next().unwrap_or("").to_owned();
    log.lock().unwrap().push(ProxyRequest {
        path: path.clone(),
        authorization: header_value(&head_text, "authorization"),
        range: header_value(&head_text, "range"),
    });
    let is_blob = |digest: &str| method == "GET" && path.ends_with(&format!("/blobs/{digest}"));
    if let Fault::RedirectBlobs(base) = fault
        && method == "GET"
        && path.contains("/blobs/sha256:")
    {
        let digest = path.rsplit('/').next().unwrap();
        let answer = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {base}/cdn/{digest}?signature=test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return client.write_all(answer.as_bytes());
    }
    // Forward with Connection: close and read the whole answer.
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    upstream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut forwarded = String::new();
    for (i, line) in head_text.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    upstream.write_all(forwarded.as_bytes())?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(answer.len(), |p| p + 4);
    let (answer_head, body) = answer.split_at(split);
    let mut body = body.to_vec();
    match fault {
        Fault::Corrupt(d) if is_blob(d) && !body.is_empty() => {
            let mid = body.len() / 2;
            body[mid] ^= 0xff;
        }
        Fault::DropBody(d, n) if is_blob(d) => {
            let mut count = counts.lock().unwrap();
            if *count < *n {
                *count += 1;
                drop(count);
                client.write_all(answer_head)?;
                client.write_all(&body[..body.len() / 2])?;
                client.flush()?;
                return client.shutdown(std::net::Shutdown::Both);
            }
        }
        Fault::Stall(d) if is_blob(d) => {
            client.write_all(answer_head)?;
            client.write_all(&body[..body.len() / 2])?;
            client.flush()?;
            stalled.store(true, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stopping.load(Ordering::Relaxed) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            return Ok(());
        }
        _ => {}
    }
    client.write_all(answer_head)?;
    client.write_all(&body)?;
    client.flush()
}

/// Blob storage on another port: serves blobs by digest, records each request's headers.
pub struct Cdn {
    pub base: String,
    requests: Arc<Mutex<Vec<ProxyRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cdn {
    pub fn start(blobs: BTreeMap<String, Vec<u8>>) -> Cdn {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) else { continue };
                let find = |name: &'static str| {
                    request.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_owned())
                };
                let path = request.url().to_owned();
                log.lock().unwrap().push(ProxyRequest {
                    path: path.clone(),
                    authorization: find("Authorization"),
                    range: find("Range"),
                });
                let digest = path.trim_start_matches("/cdn/").split('?').next().unwrap_or("").to_owned();
                let response = match blobs.get(&digest) {
                    Some(bytes) => tiny_http::Response::from_data(bytes.clone()),
                    None => tiny_http::Response::from_data(b"no such blob".to_vec()).with_status_code(404),
                };
                let _ = request.respond(response);
            }
        });
        Cdn { base, requests, stop, thread: Some(thread) }
    }

    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Cdn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Run `skopeo ARGS` in `env` (it needs no network for oci: to oci: copies).
pub fn skopeo(env: &common::TestEnv, args: &[&str]) -> common::Output {
    let mut cmd = env.command(require(common::SKOPEO));
    cmd.args(args);
    run_command(cmd, b"", common::DEFAULT_TIMEOUT)
}

// =============================================================================================
// A hostile registry, for what Distribution cannot be made to do
// =============================================================================================

/// A body a [`Hostile`] registry sends.
pub enum Body {
    Bytes(Vec<u8>),
    /// One byte at a time, this long apart (the `Content-Length` is the whole body's).
    Trickle(Vec<u8>, Duration),
}

/// One answer of a [`Hostile`] registry.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Body,
}

impl Answer {
    pub fn ok(content_type: &'static str, bytes: Vec<u8>) -> Answer {
        Answer { status: 200, content_type, body: Body::Bytes(bytes) }
    }

    pub fn not_found() -> Answer {
        Answer {
            status: 404,
            content_type: "application/json",
            body: Body::Bytes(br#"{"errors":[{"code":"NOT_FOUND","message":"no such thing"}]}"#.to_vec()),
        }
    }
}

/// A plain-HTTP "registry" on loopback answering GETs with `handler(path)` (`/v2/` is 200);
/// every answer closes its connection. Stops when dropped (a trickle stops too).
pub struct Hostile {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hostile {
    pub fn start(handler: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (handler, stopping) = (handler.clone(), stopping.clone());
                        workers.push(std::thread::spawn(move || {
                            let _ = hostile_one(stream, handler.as_ref(), &stopping);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Hostile { port, stop, thread: Some(thread) }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hostile_one(mut client: TcpStream, handler: &dyn Fn(&str) -> Answer, stopping: &AtomicBool) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = read_head(&mut client).ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.lines().next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_owned();
    let answer = if path == "/v2/" { Answer::ok("application/json", b"{}".to_vec()) } else { handler(&path) };
    let len = match &answer.body {
        Body::Bytes(b) | Body::Trickle(b, _) => b.len(),
    };
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        answer.status, answer.content_type
    );
    client.write_all(head.as_bytes())?;
    match answer.body {
        Body::Bytes(b) => client.write_all(&b)?,
        Body::Trickle(b, pause) => {
            for byte in b {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                client.write_all(&[byte])?;
                client.flush()?;
                std::thread::sleep(pause);
            }
        }
    }
    client.flush()
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    digest(bytes)
}

/// Spawn `latchkey ARGS` in `env` (stdout and stderr to files in `env`), for tests that kill it
/// or measure it.
pub fn spawn_latchkey(env: &common::TestEnv, args: &[&str], name: &str) -> std::process::Child {
    let mut cmd = env.command(common::LATCHKEY);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(env.path(&format!("{name}.stdout"))).unwrap())
        .stderr(fs::File::create(env.path(&format!("{name}.stderr"))).unwrap());
    cmd.spawn().unwrap()
}

/// Run `latchkey ARGS` in `env` under GNU time and return its exit code and its peak resident
/// memory in KiB, at most `timeout` (then it is killed and the test fails).
///
/// Why GNU time and not `wait4` here: Linux carries a process's peak RSS across `exec` from the
/// address space it replaced, and this test binary spawns with `posix_spawn` (vfork), so
/// `wait4` would report the test process's own peak (measured: 71 MiB for both pulls, the
/// harness's, not latchkey's). `time` forks a fresh child, whose peak is latchkey's alone.
#[cfg(unix)]
pub fn max_rss_of_latchkey(env: &common::TestEnv, args: &[&str], name: &str, timeout: Duration) -> (Option<i32>, u64) {
    let time = common::require(common::Tool { name: "time", package: "time" });
    let rss_file = env.path(&format!("{name}.maxrss"));
    let mut cmd = env.command(&time);
    cmd.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(common::LATCHKEY).args(args);
    cmd.stdin(std::process::Stdio::null())
        .stdout(fs::File::create(env.path(&format!("{name}.stdout"))).unwrap())
        .stderr(fs::File::create(env.path(&format!("{name}.stderr"))).unwrap());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name}: latchkey did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = fs::read_to_string(&rss_file).unwrap_or_default();
    let kib = text.lines().rev().find_map(|l| l.trim().parse::<u64>().ok());
    (status.code(), kib.unwrap_or_else(|| panic!("{name}: no peak RSS from time: {text:?}")))
}

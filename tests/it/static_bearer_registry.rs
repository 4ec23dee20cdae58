//! End to end: JWTs minted by `latchkey_jwt` and sent verbatim as `Authorization: Bearer <JWT>`
//! to a real Debian Distribution (`docker-registry` 2.8) in `auth: token` mode, with no challenge
//! flow: the registry's realm is a recorder that must never be called.
//!
//! The PKI (a root CA in the registry's `rootcertbundle`, an intermediate, leaf certificates) is
//! made in the test with the `openssl` CLI; each signing key comes in a different PEM form
//! (SEC1, PKCS#1, PKCS#8) so that the key loading is exercised on real files too.
//!
//! Needs `/usr/bin/docker-registry` (`apt-get install docker-registry`) and `openssl`.

use crate::common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use latchkey_jwt::{self as jwt, Algorithm, JwtError, KeyIdHeader, MintSpec};
use latchkey_protocol::secret::Secret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use common::{Registry, RegistryAuth, RegistryOptions};

const SERVICE: &str = "latchkey-test-registry";
const ISSUER: &str = "latchkey-test-issuer";
const REPO: &str = "latchkey/hello";
const TAG: &str = "v1";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

// =============================================================================================
// The token realm.
// =============================================================================================

/// The token realm: an HTTP listener that records every request line and answers 500. A static
/// bearer never goes through the challenge flow, so it must stay silent.
pub struct RealmRecorder {
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RealmRecorder {
    pub fn start() -> RealmRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind realm");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => log.lock().unwrap().push(answer_500(stream)),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        RealmRecorder { url, requests, stop, thread: Some(thread) }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer_500(mut stream: TcpStream) -> String {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    String::from_utf8_lossy(&head).lines().next().unwrap_or("(empty request)").to_owned()
}

impl Drop for RealmRecorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

// =============================================================================================
// Test PKI, made with the openssl CLI.
// =============================================================================================

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
";

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

struct Pki {
    dir: tempfile::TempDir,
}

/// A signing key and how its token names it.
struct Signer {
    label: &'static str,
    algorithm: Algorithm,
    key_pem: String,
    key_id: KeyIdHeader,
}

impl Pki {
    fn new() -> Pki {
        if find_in_path("openssl").is_none() {
            panic!("openssl is not installed: `apt-get install openssl`");
        }
        let pki = Pki { dir: tempfile::tempdir().expect("temp dir") };
        fs::write(pki.path("openssl.cnf"), OPENSSL_CNF).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .env("OPENSSL_CONF", self.path("openssl.cnf"))
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap()
    }

    /// Key generation: `ec-sec1` (EC PRIVATE KEY), `ec-pkcs8`, `rsa-pkcs1` (RSA PRIVATE KEY), `rsa-pkcs8`.
    fn key(&self, name: &str, form: &str) {
        let out = format!("{name}.key");
        match form {
            "ec-sec1" => self.openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &out]),
            "ec-pkcs8" => {
                self.openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &out])
            }
            "rsa-pkcs1" => self.openssl(&["genrsa", "-traditional", "-out", &out, "2048"]),
            "rsa-pkcs8" => {
                self.openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &out])
            }
            other => panic!("unknown key form {other}"),
        }
    }

    fn self_signed(&self, name: &str, extensions: &str) {
        let (key, cert, subj) = (format!("{name}.key"), format!("{name}.pem"), format!("/CN=latchkey-test-{name}"));
        let cnf = self.path("openssl.cnf");
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-subj",
            &subj,
            "-days",
            "2",
            "-config",
            cnf.to_str().unwrap(),
            "-extensions",
            extensions,
            "-out",
            &cert,
        ]);
    }

    fn signed_by(&self, name: &str, issuer: &str, extensions: &str) {
        let (key, csr, cert) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        let subj = format!("/CN=latchkey-test-{name}");
        let (ca, ca_key) = (format!("{issuer}.pem"), format!("{issuer}.key"));
        let cnf = self.path("openssl.cnf");
        self.openssl(&["req", "-new", "-key", &key, "-subj", &subj, "-config", cnf.to_str().unwrap(), "-out", &csr]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            cnf.to_str().unwrap(),
            "-extensions",
            extensions,
            "-out",
            &cert,
        ]);
    }
}

/// The registry's trust (root CA + two kid certificates), four trusted signers covering
/// {ES256, RS256} x {kid, x5c}, and a rogue key the registry does not trust.
struct Trust {
    pki: Pki,
    signers: Vec<Signer>,
    rogue: Signer,
}

impl Trust {
    fn new() -> Trust {
        let pki = Pki::new();
        pki.key("root", "ec-pkcs8");
        pki.self_signed("root", "v3_ca");
        pki.key("inter", "ec-pkcs8");
        pki.signed_by("inter", "root", "v3_ca");
        // kid signers: their (self-signed) certificates sit in the bundle; only the key matters.
        pki.key("es-kid", "ec-sec1");
        pki.self_signed("es-kid", "v3_leaf");
        pki.key("rs-kid", "rsa-pkcs1");
        pki.self_signed("rs-kid", "v3_leaf");
        // x5c signers: not in the bundle; their chains end at the root, one via an intermediate.
        pki.key("es-x5c", "ec-pkcs8");
        pki.signed_by("es-x5c", "inter", "v3_leaf");
        pki.key("rs-x5c", "rsa-pkcs8");
        pki.signed_by("rs-x5c", "root", "v3_leaf");
        pki.key("rogue", "ec-sec1");
        pki.self_signed("rogue", "v3_leaf");

        let bundle = [pki.read("root.pem"), pki.read("es-kid.pem"), pki.read("rs-kid.pem")].concat();
        fs::write(pki.path("bundle.pem"), bundle).unwrap();

        let x5c = |files: &[&str]| {
            let text: String = files.iter().map(|f| pki.read(f)).collect();
            KeyIdHeader::X5c(jwt::load_pem_chain(&text).expect("load chain"))
        };
        let signers = vec![
            Signer {
                label: "ES256 + libtrust kid",
                algorithm: Algorithm::ES256,
                key_pem: pki.read("es-kid.key"),
                key_id: KeyIdHeader::Libtrust,
            },
            Signer {
                label: "RS256 + libtrust kid",
                algorithm: Algorithm::RS256,
                key_pem: pki.read("rs-kid.key"),
                key_id: KeyIdHeader::Libtrust,
            },
            Signer {
                label: "ES256 + x5c (leaf, intermediate)",
                algorithm: Algorithm::ES256,
                key_pem: pki.read("es-x5c.key"),
                key_id: x5c(&["es-x5c.pem", "inter.pem"]),
            },
            Signer {
                label: "RS256 + x5c (leaf)",
                algorithm: Algorithm::RS256,
                key_pem: pki.read("rs-x5c.key"),
                key_id: x5c(&["rs-x5c.pem"]),
            },
        ];
        let rogue = Signer {
            label: "untrusted ES256 + libtrust kid",
            algorithm: Algorithm::ES256,
            key_pem: pki.read("rogue.key"),
            key_id: KeyIdHeader::Libtrust,
        };
        Trust { pki, signers, rogue }
    }
}

// =============================================================================================
// Registry API helpers.
// =============================================================================================

fn access(repo: &str, actions: &[&str]) -> serde_json::Map<String, Value> {
    let mut extra = serde_json::Map::new();
    extra.insert("access".into(), json!([{"type": "repository", "name": repo, "actions": actions}]));
    extra
}

fn mint_spec(signer: &Signer, extra_claims: serde_json::Map<String, Value>) -> MintSpec {
    MintSpec {
        algorithm: signer.algorithm,
        private_key_pem: Secret::from(signer.key_pem.as_str()),
        key_id: signer.key_id.clone(),
        issuer: ISSUER.into(),
        subject: "latchkey-e2e".into(),
        audience: SERVICE.into(),
        lifetime: Duration::from_secs(300),
        not_before_skew: Duration::from_secs(30),
        extra_claims,
    }
}

fn mint(signer: &Signer, actions: &[&str]) -> String {
    let token = jwt::mint(&mint_spec(signer, access(REPO, actions)), SystemTime::now())
        .unwrap_or_else(|e| panic!("{}: mint failed: {e}", signer.label));
    token.expose().clone()
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", data_encoding::HEXLOWER.encode(&Sha256::digest(bytes)))
}

struct Client {
    agent: ureq::Agent,
    base: String,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn describe(&self) -> String {
        format!("HTTP {} {:?} {}", self.status, self.headers, String::from_utf8_lossy(&self.body))
    }
}

impl Client {
    fn new(registry: &Registry) -> Client {
        Client { agent: http_agent(), base: registry.base() }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") { path_or_url.to_owned() } else { format!("{}{path_or_url}", self.base) }
    }

    fn answer(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let mut resp = resp.expect("HTTP request to the registry");
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = resp.body_mut().read_to_vec().unwrap_or_default();
        Answer { status: resp.status().as_u16(), headers, body }
    }

    fn get(&self, path: &str, token: &str, accept: Option<&str>) -> Answer {
        let mut req = self.agent.get(self.url(path)).header("Authorization", format!("Bearer {token}"));
        if let Some(accept) = accept {
            req = req.header("Accept", accept);
        }
        Self::answer(req.call())
    }

    fn post_empty(&self, path: &str, token: &str) -> Answer {
        Self::answer(self.agent.post(self.url(path)).header("Authorization", format!("Bearer {token}")).send_empty())
    }

    fn put(&self, path: &str, token: &str, content_type: &str, body: &[u8]) -> Answer {
        Self::answer(
            self.agent
                .put(self.url(path))
                .header("Authorization", format!("Bearer {token}"))
                .header("Content-Type", content_type)
                .send(body),
        )
    }

    /// POST an upload, then PUT the whole blob (monolithic upload).
    fn push_blob(&self, token: &str, blob: &[u8]) -> String {
        let d = digest(blob);
        let started = self.post_empty(&format!("/v2/{REPO}/blobs/uploads/"), token);
        assert_eq!(started.status, 202, "start upload: {}", started.describe());
        let location = started.header("Location").expect("upload Location").to_owned();
        let sep = if location.contains('?') { '&' } else { '?' };
        let done = self.put(&format!("{location}{sep}digest={d}"), token, "application/octet-stream", blob);
        assert_eq!(done.status, 201, "finish upload: {}", done.describe());
        d
    }
}

/// A tiny pushed image: its manifest bytes and its one layer.
struct Image {
    manifest: Vec<u8>,
    layer: Vec<u8>,
    layer_digest: String,
}

fn push_image(client: &Client, push_token: &str) -> Image {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let layer = b"latchkey static bearer test layer\n".to_vec();
    let config_digest = client.push_blob(push_token, &config);
    let layer_digest = client.push_blob(push_token, &layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let put = client.put(&format!("/v2/{REPO}/manifests/{TAG}"), push_token, OCI_MANIFEST, &manifest);
    assert_eq!(put.status, 201, "push manifest: {}", put.describe());
    assert_eq!(put.header("Docker-Content-Digest"), Some(digest(&manifest).as_str()));
    Image { manifest, layer, layer_digest }
}

/// Registry, realm and a pushed image: what every test starts from.
struct Setup {
    trust: Trust,
    realm: RealmRecorder,
    registry: Registry,
    client: Client,
    image: Image,
}

impl Setup {
    fn new() -> Setup {
        let trust = Trust::new();
        let realm = RealmRecorder::start();
        let bundle = trust.pki.path("bundle.pem");
        let registry = Registry::start_with(RegistryOptions {
            log_level: "debug",
            storage_health_check: false,
            ..RegistryOptions::new(RegistryAuth::Token {
                realm: realm.url.clone(),
                service: SERVICE.into(),
                issuer: ISSUER.into(),
                root_cert_bundle: bundle,
            })
        });
        let v2 = common::http_request(registry.port, "GET", "/v2/", &[]);
        assert_eq!(v2, Some(401), "/v2/ must demand a token:\n{}", registry.logs());
        let client = Client::new(&registry);
        let push_token = mint(&trust.signers[0], &["pull", "push"]);
        let image = push_image(&client, &push_token);
        Setup { trust, realm, registry, client, image }
    }

    fn pull_manifest(&self, token: &str) -> Answer {
        self.client.get(&format!("/v2/{REPO}/manifests/{TAG}"), token, Some(OCI_MANIFEST))
    }

    /// GET the manifest with `token`: Distribution must answer 401 and log `reason` for it.
    fn assert_refused(&self, what: &str, token: &str, reason: &str) {
        let before = self.registry.logs().len();
        let answer = self.pull_manifest(token);
        assert_eq!(answer.status, 401, "{what}: {}", answer.describe());
        let log = self.registry.logs();
        let new = log.get(before..).unwrap_or_default();
        assert!(new.contains(reason), "{what}: the registry log does not give the reason {reason:?}:\n{new}");
    }

    fn assert_realm_untouched(&self) {
        assert_eq!(self.realm.requests(), Vec::<String>::new(), "the token realm must never be called");
    }
}

// =============================================================================================
// Tests
// =============================================================================================

#[test]
fn minted_static_bearers_pull_from_distribution() {
    let s = Setup::new();
    for signer in &s.trust.signers {
        let token = mint(signer, &["pull"]);
        // What a source would do before handing the token out.
        let claims = jwt::inspect(&token).unwrap();
        jwt::check_usable(&claims, SystemTime::now(), Duration::from_secs(60), Some(SERVICE)).unwrap();
        assert!(!claims.audience_is_list);

        let manifest = s.pull_manifest(&token);
        assert_eq!(manifest.status, 200, "{}: GET manifest: {}", signer.label, manifest.describe());
        assert_eq!(manifest.body, s.image.manifest, "{}", signer.label);
        let blob = s.client.get(&format!("/v2/{REPO}/blobs/{}", s.image.layer_digest), &token, None);
        assert_eq!(blob.status, 200, "{}: GET blob: {}", signer.label, blob.describe());
        assert_eq!(blob.body, s.image.layer, "{}", signer.label);

        // Pull-only means pull only: the same token may not start an upload.
        let push = s.client.post_empty(&format!("/v2/{REPO}/blobs/uploads/"), &token);
        assert_eq!(push.status, 401, "{}: pull-only token pushing: {}", signer.label, push.describe());
        assert!(
            push.header("WWW-Authenticate").is_some_and(|h| h.contains("insufficient_scope")),
            "{}: {}",
            signer.label,
            push.describe()
        );
    }
    s.assert_realm_untouched();
    assert!(s.registry.logs().contains("authorized request"), "the registry log shows token-authorized requests");
}

#[test]
fn dead_tokens_are_caught_before_use_and_distribution_agrees() {
    let s = Setup::new();
    let signer = &s.trust.signers[0];
    let now = SystemTime::now();
    let margin = Duration::from_secs(60);
    let check = |token: &str| {
        let claims = jwt::inspect(token).expect("a well-formed token");
        jwt::check_usable(&claims, now, margin, Some(SERVICE))
    };
    let pull = access(REPO, &["pull"]);

    // Control: the same signer, fresh token, same request: 200.
    let good = mint(signer, &["pull"]);
    check(&good).unwrap();
    assert_eq!(s.pull_manifest(&good).status, 200);

    // Expired: minted two hours ago with a 5 minute lifetime (well past Distribution's 60 s leeway).
    let expired = jwt::mint(&mint_spec(signer, pull.clone()), now - Duration::from_secs(7200)).unwrap();
    let err = check(expired.expose()).unwrap_err();
    assert!(matches!(err, JwtError::Expired { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("token expired 1h 5") && msg.contains("ago (exp 20"), "{msg}");

    // Not yet valid: minted two hours from now.
    let early = jwt::mint(&mint_spec(signer, pull.clone()), now + Duration::from_secs(7200)).unwrap();
    let err = check(early.expose()).unwrap_err();
    assert!(matches!(err, JwtError::NotYetValid { .. }), "{err}");
    assert!(err.to_string().starts_with("token is not valid yet: nbf 20"), "{err}");

    // Wrong audience.
    let mut spec = mint_spec(signer, pull.clone());
    spec.audience = "some-other-registry".into();
    let foreign = jwt::mint(&spec, now).unwrap();
    let err = check(foreign.expose()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("token audience is \"some-other-registry\", but the registry expects \"{SERVICE}\"")
    );

    // Sent anyway, Distribution refuses every one of them, for that very reason.
    s.assert_refused("expired", expired.expose(), "token not to be used after");
    s.assert_refused("not yet valid", early.expose(), "token not to be used before");
    s.assert_refused("wrong audience", foreign.expose(), "token intended for another audience");

    // What check_usable cannot see, the registry still refuses: a key it does not trust (by kid
    // or by a self-signed x5c), and a token for another repository.
    let rogue_kid = mint(&s.trust.rogue, &["pull"]);
    check(&rogue_kid).unwrap();
    s.assert_refused("untrusted kid", &rogue_kid, "token signed by untrusted key with ID");
    let rogue_x5c = Signer {
        label: "untrusted ES256 + self-signed x5c",
        algorithm: Algorithm::ES256,
        key_pem: s.trust.rogue.key_pem.clone(),
        key_id: KeyIdHeader::X5c(jwt::load_pem_chain(&s.trust.pki.read("rogue.pem")).unwrap()),
    };
    s.assert_refused("untrusted x5c", &mint(&rogue_x5c, &["pull"]), "certificate signed by unknown authority");
    let other_repo = jwt::mint(&mint_spec(signer, access("someone/else", &["pull"])), now).unwrap();
    s.assert_refused("token for another repository", other_repo.expose(), "insufficient scope");

    s.assert_realm_untouched();
}

/// NOTES §3 says Distribution 2.8 rejects `aud` as a JSON list, even one holding its service
/// name. latchkey never mints that; `inspect` flags it. Checked here with a token signed outside
/// latchkey's minting code (p256 directly), next to a control that differs only in `aud`.
#[test]
fn distribution_rejects_a_list_audience() {
    let s = Setup::new();
    let signer = &s.trust.signers[0];
    let key = p256::SecretKey::from_sec1_pem(&signer.key_pem).unwrap();
    let kid = jwt::libtrust_key_id_from_pem(&signer.key_pem).unwrap();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let token_with = |aud: Value| {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        let claims = json!({
            "iss": ISSUER, "sub": "hand-made", "aud": aud, "iat": now, "nbf": now - 30, "exp": now + 300,
            "jti": "0123456789abcdef", "access": [{"type": "repository", "name": REPO, "actions": ["pull"]}],
        });
        let b64 = |v: &Value| data_encoding::BASE64URL_NOPAD.encode(v.to_string().as_bytes());
        let signed = format!("{}.{}", b64(&header), b64(&claims));
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(&key).sign(signed.as_bytes());
        format!("{signed}.{}", data_encoding::BASE64URL_NOPAD.encode(&sig.to_bytes()))
    };

    let single = token_with(json!(SERVICE));
    assert_eq!(s.pull_manifest(&single).status, 200, "control: aud as a string");

    let list = token_with(json!([SERVICE]));
    let claims = jwt::inspect(&list).unwrap();
    assert!(claims.audience_is_list);
    jwt::check_usable(&claims, SystemTime::now(), Duration::from_secs(60), Some(SERVICE)).unwrap();
    s.assert_refused("aud as a list", &list, "error while unmarshalling raw token");
    s.assert_realm_untouched();
}

/// The same registry, driven the way rules_oci drives a helper: latchkey in `mint` mode,
/// configured by a TOML file, asked through the protocol with `https://<host>`, and the
/// `<static_bearer>` answer sent verbatim. Covers ES256/RS256 with libtrust kid and x5c.
#[test]
fn helper_in_mint_mode_answers_bearers_distribution_accepts() {
    let s = Setup::new();
    let host = s.registry.host();
    // (key file, chain files for x5c, algorithm)
    let configs: [(&str, &[&str], &str); 4] = [
        ("es-kid.key", &[], "ES256"),
        ("rs-kid.key", &[], "RS256"),
        ("es-x5c.key", &["es-x5c.pem", "inter.pem"], "ES256"),
        ("rs-x5c.key", &["rs-x5c.pem"], "RS256"),
    ];
    for (key_file, chain, algorithm) in configs {
        let dir = tempfile::tempdir().unwrap();
        let chain_line = if chain.is_empty() {
            String::new()
        } else {
            let text: String = chain.iter().map(|f| s.trust.pki.read(f)).collect();
            fs::write(dir.path().join("chain.pem"), text).unwrap();
            format!("certificate-chain-file = {:?}\n", dir.path().join("chain.pem"))
        };
        let config = format!(
            "[registries.\"{host}\"]\nmode = \"static-bearer\"\n[registries.\"{host}\".identity]\n\
             source = \"mint\"\nalgorithm = \"{algorithm}\"\nprivate-key-file = {:?}\n{chain_line}\
             issuer = \"{ISSUER}\"\nsubject = \"ci\"\naudience = \"{SERVICE}\"\nlifetime-secs = 300\n\
             access = [{{ type = \"repository\", name = \"{REPO}\", actions = [\"pull\"] }}]\n",
            s.trust.pki.path(key_file)
        );
        fs::write(dir.path().join("config.toml"), config).unwrap();
        let get = |server_url: &str| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_docker-credential-latchkey"))
                .arg("get")
                .env("LATCHKEY_CONFIG", dir.path().join("config.toml"))
                .env("LATCHKEY_CACHE_DIR", dir.path().join("cache"))
                .env("LATCHKEY_DATA_DIR", dir.path().join("data"))
                .env("LATCHKEY_STORE", "file")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(server_url.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{algorithm} {key_file}: get failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["Username"], "<static_bearer>");
            v["Secret"].as_str().unwrap().to_owned()
        };
        let token = get(&format!("https://{host}"));
        // Cached: docker's bare-host spelling gets the very same token.
        assert_eq!(get(&host), token, "{key_file}: the second get is served from the cache");
        let claims = jwt::inspect(&token).unwrap();
        assert_eq!(claims.has_x5c, !chain.is_empty(), "{key_file}");
        assert_eq!(claims.key_id.is_some(), chain.is_empty(), "{key_file}");

        let manifest = s.pull_manifest(&token);
        assert_eq!(manifest.status, 200, "{key_file}: GET manifest: {}", manifest.describe());
        let blob = s.client.get(&format!("/v2/{REPO}/blobs/{}", s.image.layer_digest), &token, None);
        assert_eq!(blob.status, 200, "{key_file}: GET blob: {}", blob.describe());
        assert_eq!(blob.body, s.image.layer);
    }
    s.assert_realm_untouched();
}

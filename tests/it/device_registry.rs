//! Real client end to end in device mode: Debian's Distribution registry in `auth: token` mode
//! whose realm is the test authorization server (ATCR-style token endpoint issuing ES256 JWTs
//! with a libtrust `kid` that Distribution verifies), latchkey logged in through RFC 8628, and
//! `skopeo copy` (push, then pull) with `credHelpers` pointing at latchkey. Then the server
//! expires the browser session: a non-interactive `skopeo copy` fails with latchkey's message,
//! and an interactive one recovers through the stand-in browser.
//!
//! Needs `docker-registry`, `skopeo` and `openssl` (./scripts/test.sh installs them).

use crate::common;
use crate::device_auth;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::*;
use device_auth::{AuthServer, StandInBrowser};
use latchkey_jwt::{self as jwt, Algorithm, KeyIdHeader, MintSpec};
use latchkey_protocol::secret::Secret;

const SERVICE: &str = "latchkey-device-registry";
const ISSUER: &str = "latchkey-device-issuer";
const REPO: &str = "latchkey/device";

/// An EC P-256 key and its self-signed certificate (the registry's rootcertbundle), by openssl.
fn signing_key(dir: &Path) -> (String, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "signer.key"]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "signer.key",
        "-subj",
        "/CN=latchkey-device-test",
        "-days",
        "2",
        "-out",
        "signer.pem",
    ]);
    (fs::read_to_string(dir.join("signer.key")).unwrap(), dir.join("signer.pem"))
}

/// Distribution's `access` claim for `scope` parameters like `repository:a/b:pull,push`.
fn access(scopes: &[String]) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    serde_json::Value::Array(entries)
}

struct Setup {
    env: TestEnv,
    server: AuthServer,
    browser: StandInBrowser,
    registry: Registry,
    authfile: String,
    policy: String,
    _pki: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let pki = tempfile::tempdir().unwrap();
        let (key_pem, cert) = signing_key(pki.path());
        let server = AuthServer::start();
        server.with(|s| {
            s.issuer = Some(Box::new(move |account: &str, service: &str, scopes: &[String]| {
                let mut extra = serde_json::Map::new();
                extra.insert("access".into(), access(scopes));
                let spec = MintSpec {
                    algorithm: Algorithm::ES256,
                    private_key_pem: Secret::from(key_pem.as_str()),
                    key_id: KeyIdHeader::Libtrust,
                    issuer: ISSUER.into(),
                    subject: account.into(),
                    audience: service.into(),
                    lifetime: Duration::from_secs(300),
                    not_before_skew: Duration::from_secs(30),
                    extra_claims: extra,
                };
                jwt::mint(&spec, SystemTime::now()).expect("mint a registry token").expose().clone()
            }))
        });
        let registry = Registry::start(RegistryAuth::Token {
            realm: format!("{}/auth/token", server.base),
            service: SERVICE.into(),
            issuer: ISSUER.into(),
            root_cert_bundle: cert,
        });

        let mut env = TestEnv::new();
        let browser = StandInBrowser::new(env.root.path());
        env.set("BROWSER", &browser.script);
        let registries_conf = env.path("registries.conf");
        fs::write(&registries_conf, "").unwrap();
        env.set("CONTAINERS_REGISTRIES_CONF", &registries_conf);
        let policy = env.path("policy.json");
        fs::write(&policy, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
        let authfile = env.path("auth.json");
        fs::write(&authfile, serde_json::json!({"credHelpers": {registry.host(): "latchkey"}}).to_string()).unwrap();

        // The registry is 127.0.0.1:REGISTRY_PORT; its /v2/ names the realm (discovered, not
        // configured). The device endpoints live on the authorization server. Every get checks
        // the session (check-interval-secs = 0) so the expiry below is seen at once.
        fs::create_dir_all(env.config_path().parent().unwrap()).unwrap();
        let config = format!(
            "store = \"file\"\n[registries.\"{host}\"]\nmode = \"device\"\n[registries.\"{host}\".device]\n\
             device-authorization-url = \"{base}/auth/device/code\"\ntoken-url = \"{base}/auth/device/token\"\n\
             check-interval-secs = 0\nlogin-wait-secs = 30\n",
            host = registry.host(),
            base = server.base
        );
        fs::write(env.config_path(), config).unwrap();
        Setup {
            authfile: authfile.display().to_string(),
            policy: policy.display().to_string(),
            env,
            server,
            browser,
            registry,
            _pki: pki,
        }
    }

    fn skopeo(&self, args: &[&str]) -> Output {
        let mut all = vec!["--policy", &self.policy];
        all.extend_from_slice(args);
        run(require(SKOPEO), &all, b"", &self.env)
    }

    fn image(&self) -> String {
        format!("docker://{}/{REPO}:v1", self.registry.host())
    }

    fn push(&self, image: &OciImage) -> Output {
        self.skopeo(&[
            "copy",
            "--authfile",
            &self.authfile,
            "--dest-tls-verify=false",
            &image.reference(),
            &self.image(),
        ])
    }

    fn pull(&self, dest: &Path) -> Output {
        let target = format!("oci:{}:v1", dest.display());
        self.skopeo(&["copy", "--authfile", &self.authfile, "--src-tls-verify=false", &self.image(), &target])
    }
}

fn pulled_config_digest(layout: &Path) -> String {
    let index: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let blob = layout.join("blobs/sha256").join(manifest_digest.trim_start_matches("sha256:"));
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(blob).unwrap()).unwrap();
    manifest["config"]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn skopeo_pushes_and_pulls_in_device_mode_and_recovers_an_expired_session() {
    let mut s = Setup::new();

    // Log in (headless: the user approves on another device; the server approves at once).
    s.server.with(|st| st.auto_approve_at = Some(0));
    let mut login = s.env.command(LATCHKEY);
    login.env("LATCHKEY_INTERACTIVE", "0").args(["login", &s.registry.host()]);
    run_command(login, b"", DEFAULT_TIMEOUT).assert_success();
    let secret = s.server.with(|st| st.secret()).unwrap();

    let image = build_oci_image(&s.env.path("image"), "v1", &[("hello.txt", b"hello from a device secret\n")]);
    let push = s.push(&image);
    assert_eq!(push.code, Some(0), "push failed:\n{push}\nregistry log:\n{}", s.registry.logs());
    let pulled = s.env.path("pulled-1");
    let pull = s.pull(&pulled);
    assert_eq!(pull.code, Some(0), "pull failed:\n{pull}\nregistry log:\n{}", s.registry.logs());
    assert_eq!(pulled_config_digest(&pulled), image.config_digest);
    // skopeo itself fetched tokens with the device secret (latchkey's own checks carry no scope).
    let requests = s.server.with(|st| st.requests.clone());
    assert!(requests.iter().any(|r| r.starts_with("GET /auth/token?") && r.contains("push")), "{requests:?}");

    // The session expires. Non-interactive: skopeo fails with latchkey's message, no browser.
    s.server.with(|st| st.expire_sessions());
    s.env.set("LATCHKEY_INTERACTIVE", "0");
    let failed = s.pull(&s.env.path("pulled-2"));
    assert_ne!(failed.code, Some(0), "pull with an expired session must fail:\n{failed}");
    eprintln!("what the user sees (skopeo, non-interactive):\n{failed}");
    let text = format!("{}{}", failed.stdout_str(), failed.stderr_str());
    assert!(text.contains("has expired") && text.contains("docker-credential-latchkey login"), "{failed}");
    assert!(!text.contains(&secret), "secret leaked:\n{failed}");
    assert!(s.browser.opened().is_empty());

    // Interactive: latchkey opens the login page once, waits, and skopeo's pull goes through.
    s.env.set("LATCHKEY_INTERACTIVE", "1");
    let pulled = s.env.path("pulled-3");
    let recovered = s.pull(&pulled);
    assert_eq!(recovered.code, Some(0), "recovery failed:\n{recovered}\nregistry log:\n{}", s.registry.logs());
    eprintln!("what the user sees (skopeo, interactive):\n{recovered}");
    assert_eq!(pulled_config_digest(&pulled), image.config_digest);
    assert_eq!(s.browser.opened(), [format!("{}/auth/oauth/login", s.server.base)]);
}

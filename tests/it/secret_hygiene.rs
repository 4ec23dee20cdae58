//! Secret hygiene through the real binary: every command, run at the most verbose settings
//! (`RUST_LOG=trace RUST_BACKTRACE=1`) with known secret values, must never show a secret on
//! stderr, in an error message, in `list` or in `status`. Only `get`, `token` and `header` may
//! print the one secret they were asked for, and only on success.
//!
//! The secrets: a stored password, a static-bearer token (env and file sources), a request
//! bearer for the identity endpoint, an STS subject token, a mint private key, and a device
//! secret issued by the test authorization server. Peers that echo what they were sent back in
//! their error bodies are part of the test: latchkey must not pass the echo on.

use crate::common;
use crate::device_auth;

use std::io::Read;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Output, TestEnv, store_json};

const STORED_SECRET: &str = "stored-Pa55w0rd-8c1f0e";
const REQUEST_BEARER: &str = "request-bearer-5f2d77a9";
const SUBJECT_SECRET_MARK: &str = "subjectmark";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A structurally valid JWT whose signature part is `sig` (recognisable in any output).
fn jwt(sub: &str, aud: &str, expires_in: i64, sig: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
    let claims =
        serde_json::json!({"iss": "test", "sub": sub, "aud": aud, "iat": now(), "exp": (now() as i64 + expires_in)});
    format!("{header}.{}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()), URL_SAFE_NO_PAD.encode(sig))
}

/// The parts of a secret that must not show: the whole value and, for a JWT, its signature
/// and payload (a leak of either is a leak).
fn needles(secret: &str) -> Vec<String> {
    let mut v = vec![secret.to_owned()];
    let parts: Vec<&str> = secret.split('.').collect();
    if parts.len() == 3 {
        v.push(parts[1].to_owned());
        v.push(parts[2].to_owned());
    }
    v
}

fn verbose(env: &mut TestEnv) {
    env.set("RUST_LOG", "trace").set("RUST_BACKTRACE", "1").set("RUST_LIB_BACKTRACE", "1");
}

/// No secret anywhere in `out`; `allowed` may appear on stdout (and only there) when the
/// command succeeded.
fn assert_clean(out: &Output, secrets: &[&str], allowed: Option<&str>) {
    out.assert_no_panic();
    let stdout = out.stdout_str();
    let stderr = out.stderr_str();
    for secret in secrets {
        for needle in needles(secret) {
            assert!(!stderr.contains(&needle), "secret {needle:?} on stderr:\n{out}");
            let may_print = allowed == Some(*secret) && out.code == Some(0);
            if !may_print {
                assert!(!stdout.contains(&needle), "secret {needle:?} on stdout:\n{out}");
            }
        }
    }
}

fn write_config(env: &TestEnv, text: &str) {
    let path = env.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

// ---------------------------------------------------------------------------------------
// A tiny HTTP peer answering every request with `handler(method, url, authorization, body)`.

type Handler = dyn Fn(&str, &str, Option<&str>, &str) -> (u16, String) + Send + Sync;

struct Peer {
    url: String,
    server: Arc<tiny_http::Server>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

impl Peer {
    fn start(handler: impl Fn(&str, &str, Option<&str>, &str) -> (u16, String) + Send + Sync + 'static) -> Peer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let handler: Arc<Handler> = Arc::new(handler);
        let s = server.clone();
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let handler = handler.clone();
                std::thread::spawn(move || {
                    let mut body = String::new();
                    let _ = request.as_reader().take(1 << 20).read_to_string(&mut body);
                    let auth = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Authorization"))
                        .map(|h| h.value.as_str().to_owned());
                    let (status, text) = handler(request.method().as_str(), request.url(), auth.as_deref(), &body);
                    let _ = request.respond(tiny_http::Response::from_string(text).with_status_code(status));
                });
            }
        });
        Peer { url, server }
    }
}

// ---------------------------------------------------------------------------------------
// Stored credentials (file store)

#[test]
fn stored_credentials_never_leak_outside_get() {
    let mut env = TestEnv::new();
    verbose(&mut env);
    let secrets = [STORED_SECRET];
    let registry = "reg.example:5000";

    let out = env.latchkey(&["store"], &store_json(registry, "alice", STORED_SECRET));
    out.assert_success();
    assert_clean(&out, &secrets, None);

    let out = env.latchkey(&["get"], registry.as_bytes());
    out.assert_success();
    assert!(out.stdout_str().contains(STORED_SECRET), "{out}");
    assert_clean(&out, &secrets, Some(STORED_SECRET));

    for (args, stdin) in [
        (&["list"][..], &b"unused"[..]),
        (&["version"], b""),
        (&["status"], b""),
        (&["status", "--json"], b""),
        (&["get"], b"other.example"),
        (&["get"], b"https://alice:stored-Pa55w0rd-8c1f0e@reg.example:5000/v2/"),
        (&["erase"], b"ftp://alice:stored-Pa55w0rd-8c1f0e@reg.example"),
        (&["get"], b"http://[stored-Pa55w0rd-8c1f0e"),
        (&["nonsense"], b""),
        (&["get", "extra"], b""),
        (&["token", registry], b""),
        (&["header", registry], b""),
        (&["login", registry], b""),
        (&["logout", registry], b""),
        (&["configure-docker", registry], b""),
        (&["configure-docker", "--dry-run", registry], b""),
        (&["unconfigure-docker", registry], b""),
    ] {
        let out = env.latchkey(args, stdin);
        assert_clean(&out, &secrets, None);
    }

    // Bad store input that carries the secret: the parser's message must not quote it.
    for input in [
        format!(r#"{{"ServerURL":"{registry}","Username":"alice","Secret":"{STORED_SECRET}""#),
        format!(r#"{{"ServerURL":"{registry}","Username":"alice","Secret":"{STORED_SECRET}\x"}}"#),
        format!(r#"{{"ServerURL":"{registry}","Username":"","Secret":"{STORED_SECRET}"}}"#),
        format!(r#"{{"ServerURL":"","Username":"alice","Secret":"{STORED_SECRET}"}}"#),
        format!(r#"{{"ServerURL":"{registry}","Username":"alice","Secret":["{STORED_SECRET}"]}}"#),
        format!(r#"["{STORED_SECRET}"]"#),
        format!(r#""{STORED_SECRET}""#),
        format!(r#"{{"ServerURL":"https://alice:{STORED_SECRET}@@/","Username":"a","Secret":"b"}}"#),
    ] {
        let out = env.latchkey(&["store"], input.as_bytes());
        assert_eq!(out.code, Some(1), "{out}");
        assert_clean(&out, &secrets, None);
    }

    // A store file that is corrupt around the secret: the error names the file, not the value.
    let store_file = env.store_file();
    let good = std::fs::read_to_string(&store_file).unwrap();
    for corrupt in [
        good.replace(&format!("\"{STORED_SECRET}\""), STORED_SECRET),
        good.replace(&format!("\"{STORED_SECRET}\""), &format!("[\"{STORED_SECRET}\"]")),
        good.replace("\"Secret\"", "\"Secret\": 1, \"Extra\""),
        good[..good.find(STORED_SECRET).unwrap() + 4].to_owned(),
    ] {
        std::fs::write(&store_file, corrupt).unwrap();
        for (args, stdin) in [
            (&["get"][..], registry.as_bytes()),
            (&["list"], b"unused"),
            (&["erase"], registry.as_bytes()),
            (&["status"], b""),
            (&["status", "--json"], b""),
            (&["store"], &store_json("other.example", "bob", "x")[..]),
        ] {
            let out = env.latchkey(args, stdin);
            assert_clean(&out, &secrets, None);
        }
    }
    std::fs::write(&store_file, &good).unwrap();

    // A secret pasted into the config as an unknown key is not quoted back. (The config holds
    // no secrets by design: values of known keys, such as an unknown `store` kind, are quoted.)
    write_config(&env, &format!("[registries.\"{registry}\"]\nmode = \"stored\"\npassword = \"{STORED_SECRET}\"\n"));
    for args in [&["get"][..], &["status"], &["status", "--json"]] {
        assert_clean(&env.latchkey(args, registry.as_bytes()), &secrets, None);
    }
    std::fs::remove_file(env.config_path()).unwrap();

    let out = env.latchkey(&["erase"], registry.as_bytes());
    out.assert_success();
    assert_clean(&out, &secrets, None);
}

// ---------------------------------------------------------------------------------------
// Static bearer: env and file tokens, identity endpoint with a request bearer, STS exchange

#[test]
fn static_bearer_tokens_only_on_get_token_header() {
    let mut env = TestEnv::new();
    verbose(&mut env);
    let registry = "reg.test:5000";
    let token = jwt("ci", "reg.test", 600, "sig-env-token-4e1b");
    env.set("REGISTRY_ID_TOKEN", &token);
    write_config(
        &env,
        &format!(
            "[registries.\"{registry}\"]\nmode = \"static-bearer\"\n[registries.\"{registry}\".identity]\nsource = \"env\"\nvar = \"REGISTRY_ID_TOKEN\"\n"
        ),
    );
    let secrets = [token.as_str()];
    for args in [&["get"][..], &["token", registry], &["header", registry]] {
        let out = env.latchkey(args, registry.as_bytes());
        out.assert_success();
        assert!(out.stdout_str().contains(&token), "{out}");
        assert_clean(&out, &secrets, Some(&token));
    }
    for (args, stdin) in [
        (&["list"][..], &b"unused"[..]),
        (&["status"], b""),
        (&["status", "--json"], b""),
        (&["erase"], registry.as_bytes()),
        (&["store"], &store_json(registry, "x", "y")[..]),
        (&["login", registry], b""),
        (&["logout", registry], b""),
        (&["configure-docker", registry], b""),
    ] {
        assert_clean(&env.latchkey(args, stdin), &secrets, None);
    }

    // Unusable tokens: expired, wrong audience, not a JWT at all, a JWT with garbage claims.
    let expired = jwt("ci", "reg.test", -600, "sig-expired-77aa");
    let wrong_aud = jwt("ci", "elsewhere", 600, "sig-wrongaud-2b2b");
    let garbage_claims = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#),
        URL_SAFE_NO_PAD.encode(b"{\"exp\": \"opaque-claims-c0ffee\""),
        URL_SAFE_NO_PAD.encode("sig-garbage-9d9d")
    );
    for bad in [expired.as_str(), wrong_aud.as_str(), "opaque-not-a-jwt-31337", garbage_claims.as_str()] {
        env.set("REGISTRY_ID_TOKEN", bad);
        for args in [&["get"][..], &["token", registry], &["header", registry], &["status"], &["status", "--json"]] {
            let out = env.latchkey(args, registry.as_bytes());
            // No audience is configured, so only the wrong-audience token is usable.
            if args[0] != "status" && bad != wrong_aud {
                assert_eq!(out.code, Some(1), "{out}");
            }
            let allowed = (bad == wrong_aud && args[0] != "status").then_some(bad);
            assert_clean(&out, &[bad, "opaque-claims-c0ffee"], allowed);
        }
    }
}

#[test]
fn identity_endpoint_and_sts_echoes_are_not_passed_on() {
    let mut env = TestEnv::new();
    verbose(&mut env);
    let registry = "reg.test:5000";
    let issued = jwt("ci", "reg.test", 600, "sig-issued-a1a1");
    let subject = jwt("ci", "sts", 600, &format!("sig-{SUBJECT_SECRET_MARK}-b2b2"));
    env.set("REQ_TOKEN", REQUEST_BEARER);
    let subject_file = env.path("subject.jwt");
    std::fs::write(&subject_file, &subject).unwrap();

    // The peers answer errors that quote back what they were sent (header and body).
    let mode = Arc::new(std::sync::Mutex::new(0u8));
    let (m, i) = (mode.clone(), issued.clone());
    let peer = Peer::start(move |_method, url, auth, body| {
        let echo = format!("bad request: auth={auth:?} body={body} url={url}");
        match *m.lock().unwrap() {
            0 if url.starts_with("/token") => (200, serde_json::json!({ "value": i }).to_string()),
            0 => (200, serde_json::json!({"access_token": i, "token_type": "Bearer", "expires_in": 600}).to_string()),
            1 => (401, echo),
            2 => (500, format!("<html><body>{echo}</body></html>")),
            3 => (200, serde_json::json!({ "error": echo }).to_string()),
            4 => (200, echo),
            _ => (400, serde_json::json!({"error": "invalid_grant", "error_description": echo}).to_string()),
        }
    });
    let http_cfg = format!(
        "[registries.\"{registry}\"]\nmode = \"static-bearer\"\n[registries.\"{registry}\".identity]\nsource = \"http\"\nurl = \"{}/token\"\naudience = \"reg.test\"\nbearer-env = \"REQ_TOKEN\"\nfield = \"value\"\ntimeout-secs = 5\n",
        peer.url
    );
    let sts_cfg = format!(
        "[registries.\"{registry}\"]\nmode = \"static-bearer\"\n[registries.\"{registry}\".identity]\nsource = \"exchange\"\nurl = \"{}/sts\"\naudience = \"reg.test\"\ntimeout-secs = 5\nsubject = {{ source = \"file\", path = {:?} }}\n",
        peer.url, subject_file
    );
    let inputs = [REQUEST_BEARER, subject.as_str(), issued.as_str()];
    for cfg in [&http_cfg, &sts_cfg] {
        write_config(&env, cfg);
        *mode.lock().unwrap() = 0;
        let out = env.latchkey(&["get"], registry.as_bytes());
        out.assert_success();
        assert_clean(&out, &inputs, Some(&issued));
        for args in [&["status"][..], &["status", "--json"], &["list"]] {
            assert_clean(&env.latchkey(args, b"unused"), &inputs, None);
        }
        for m in 1..=5 {
            *mode.lock().unwrap() = m;
            // Drop the cache so the peer is asked again.
            assert_clean(&env.latchkey(&["erase"], registry.as_bytes()), &inputs, None);
            for args in [&["get"][..], &["token", registry], &["header", registry], &["status"], &["status", "--json"]]
            {
                let out = env.latchkey(args, registry.as_bytes());
                if args[0] != "status" {
                    assert_eq!(out.code, Some(1), "mode {m}: {out}");
                }
                assert_clean(&out, &[REQUEST_BEARER, &subject], None);
            }
        }
    }
}

#[test]
fn mint_private_key_never_shows() {
    let mut env = TestEnv::new();
    verbose(&mut env);
    let registry = "reg.test:5000";
    let key_file = env.path("key.pem");
    // 0600, as latchkey demands of a private key; writes below keep the mode.
    std::fs::write(&key_file, b"").unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let key_body = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSECRETKEYMATERIAL";
    let cfg = |algorithm: &str| {
        format!(
            "[registries.\"{registry}\"]\nmode = \"static-bearer\"\n[registries.\"{registry}\".identity]\nsource = \"mint\"\nalgorithm = \"{algorithm}\"\nprivate-key-file = {key_file:?}\nissuer = \"i\"\nsubject = \"s\"\naudience = \"reg.test\"\n"
        )
    };
    let real_key = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support_registry/keys/p256_pkcs8.pem"),
    )
    .unwrap();
    let real_body: String = real_key.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("");
    for (pem, algorithm) in [
        (format!("-----BEGIN PRIVATE KEY-----\n{key_body}\n-----END PRIVATE KEY-----\n"), "ES256"),
        (format!("-----BEGIN EC PRIVATE KEY-----\n{key_body}==\n-----END EC PRIVATE KEY-----\n"), "ES256"),
        (key_body.to_owned(), "ES256"),
        (real_key.clone(), "RS256"),
        (real_key.clone(), "ES384"),
    ] {
        std::fs::write(&key_file, &pem).unwrap();
        write_config(&env, &cfg(algorithm));
        for args in [&["get"][..], &["token", registry], &["status"], &["status", "--json"]] {
            let out = env.latchkey(args, registry.as_bytes());
            assert_clean(&out, &[key_body, &real_body[..40], &real_body[real_body.len() - 40..]], None);
        }
    }
    // A good key: the token may print, the key may not.
    std::fs::write(&key_file, &real_key).unwrap();
    write_config(&env, &cfg("ES256"));
    for args in [&["get"][..], &["token", registry], &["status"], &["status", "--json"]] {
        let out = env.latchkey(args, registry.as_bytes());
        assert_eq!(out.code, Some(0), "{out}");
        assert_clean(&out, &[&real_body[..40], &real_body[real_body.len() - 40..]], None);
    }
}

// ---------------------------------------------------------------------------------------
// Device secrets

#[test]
fn device_secret_only_on_get() {
    let server = device_auth::AuthServer::start();
    let mut env = TestEnv::new();
    verbose(&mut env);
    env.set("LATCHKEY_INTERACTIVE", "0").set("BROWSER", "/bin/false");
    let key = server.host.clone();
    write_config(
        &env,
        &format!(
            "store = \"file\"\n[registries.\"{key}\"]\nmode = \"device\"\n[registries.\"{key}\".device]\nlogin-wait-secs = 30\n"
        ),
    );
    server.with(|s| s.auto_approve_at = Some(0));
    let out = env.latchkey(&["login", &key], b"");
    assert_eq!(out.code, Some(0), "{out}");
    server.with(|s| s.auto_approve_at = None);
    let secret = server.with(|s| s.secret()).expect("a device secret was issued");
    let device_codes: Vec<String> = server.with(|s| s.codes.iter().map(|c| c.device_code.clone()).collect());
    let basic = common::basic_auth(device_auth::ACCOUNT, &secret);
    let basic = basic.trim_start_matches("Basic ").to_owned();
    let mut secrets = vec![secret.as_str(), basic.as_str()];
    secrets.extend(device_codes.iter().map(String::as_str));
    assert_clean(&out, &secrets, None);

    let out = env.latchkey(&["get"], key.as_bytes());
    out.assert_success();
    assert_clean(&out, &secrets, Some(&secret));
    for (args, stdin) in [
        (&["list"][..], &b"unused"[..]),
        (&["status"], b""),
        (&["status", "--json"], b""),
        (&["token", &key], b""),
        (&["header", &key], b""),
    ] {
        assert_clean(&env.latchkey(args, stdin), &secrets, None);
    }

    // The token endpoint echoes the Basic credentials it was sent, in every failure shape.
    let echo_bodies = [
        (401, format!("unauthorized: {} ({secret})", common::basic_auth(device_auth::ACCOUNT, &secret))),
        (403, format!("{{\"error\":\"denied\",\"message\":\"{secret}\"}}")),
        (500, format!("<html>{secret}</html>")),
        (
            401,
            format!(
                "{{\"error\":\"oauth_session_expired\",\"message\":\"{secret}\",\"login_url\":\"http://{key}/{secret}\"}}"
            ),
        ),
        (200, format!("{{\"token\":1, \"x\":\"{secret}\"")),
    ];
    for (status, body) in echo_bodies {
        server.with(|s| s.token_override = Some((status, body.clone())));
        for (args, stdin) in [(&["get"][..], key.as_bytes()), (&["status"], b""), (&["status", "--json"], b"")] {
            let out = env.latchkey(args, stdin);
            // A 200 is a live session: then `get` answers the secret, as it should.
            assert_clean(&out, &secrets, (args[0] == "get").then_some(secret.as_str()));
        }
        // Forget the last positive check so the next get asks again.
        let _ = std::fs::remove_dir_all(env.path("latchkey/cache"));
    }
    server.with(|s| s.token_override = None);

    // Revoked: get and logout fail or succeed without the secret.
    server.with(|s| s.revoke_all());
    let _ = std::fs::remove_dir_all(env.path("latchkey/cache"));
    for (args, stdin) in [(&["get"][..], key.as_bytes()), (&["status"], b""), (&["logout", &key], b"")] {
        assert_clean(&env.latchkey(args, stdin), &secrets, None);
    }
    assert_clean(&env.latchkey(&["erase"], key.as_bytes()), &secrets, None);
}

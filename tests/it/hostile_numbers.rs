//! Issue 9 class 4: numbers from servers never crash latchkey. A hostile peer answers absurd
//! `expires_in`, `interval`, `Retry-After`, JWT `exp` and descriptor sizes to device login
//! polling, to a registry token request during `pull`, and to a static-bearer identity source;
//! every run must end on its own (the harness's timeout bounds it), with no panic and no signal,
//! and either do the right thing with the clamped number or refuse it with a clear message.

use crate::common;

use std::io::Read;
use std::sync::{Arc, Mutex};

use common::{Output, TestEnv, sha256_hex};

/// What the hostile server answers: status, headers, body.
type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);
/// `(method, path?query, Authorization, body) -> reply`.
type Handler = dyn Fn(&str, &str, Option<&str>, &str) -> Reply + Send + Sync;

/// A tiny_http server on 127.0.0.1 whose answers come from a closure; it records every request.
struct Hostile {
    host: String,
    requests: Arc<Mutex<Vec<String>>>,
    server: Arc<tiny_http::Server>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

impl Hostile {
    fn start(handler: impl Fn(&str, &str, Option<&str>, &str) -> Reply + Send + Sync + 'static) -> Hostile {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let host = server.server_addr().to_ip().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, log) = (server.clone(), requests.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let (handler, log) = (handler.clone(), log.clone());
                std::thread::spawn(move || {
                    let mut body = String::new();
                    let _ = request.as_reader().take(1 << 20).read_to_string(&mut body);
                    let auth = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Authorization"))
                        .map(|h| h.value.as_str().to_owned());
                    let (method, url) = (request.method().as_str().to_owned(), request.url().to_owned());
                    log.lock().unwrap().push(format!("{method} {url}"));
                    let (status, headers, body) = handler(&method, &url, auth.as_deref(), &body);
                    let mut response = tiny_http::Response::from_data(body).with_status_code(status);
                    for (name, value) in headers {
                        response.add_header(tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap());
                    }
                    let _ = request.respond(response);
                });
            }
        });
        Hostile { host, requests, server }
    }

    fn requests(&self, prefix: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|r| r.starts_with(prefix)).count()
    }
}

fn json(status: u16, body: &str) -> Reply {
    (status, vec![("Content-Type", "application/json".to_owned())], body.as_bytes().to_vec())
}

/// The run ended by itself: an exit code (no signal such as SIGABRT), and no panic message.
fn assert_clean(out: &Output, what: &str) {
    let stderr = out.stderr_str();
    eprintln!("--- {what}: exit {:?} signal {:?}\n{}{stderr}", out.code, out.signal, out.stdout_str());
    assert!(out.signal.is_none(), "{what}: ended by signal {:?}: {stderr}", out.signal);
    assert!(out.code.is_some(), "{what}: no exit code: {stderr}");
    for needle in ["panicked", "overflow", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(needle) && !out.stdout_str().contains(needle), "{what}: {needle}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------
// pull: the registry's token service answers absurd lifetimes and pauses

const REPO: &str = "hostile/numbers";

/// A one-layer OCI image: (manifest, [(digest, blob)]).
fn image(layer_size: Option<&str>) -> (String, Vec<(String, Vec<u8>)>) {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let layer = b"hello, hostile numbers".to_vec();
    let (cd, ld) = (format!("sha256:{}", sha256_hex(&config)), format!("sha256:{}", sha256_hex(&layer)));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        layer_size.map_or(layer.len().to_string(), str::to_owned)
    );
    (manifest, vec![(cd, config), (ld, layer)])
}

/// A registry at 127.0.0.1 that wants a bearer token from its own `/token`, which answers
/// `token_answer(n)` to the n-th token request (0-based); with `busy`, the first manifest
/// request is a 503 with an absurd `Retry-After`.
fn registry(
    layer_size: Option<&'static str>,
    busy: bool,
    token_answer: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> Hostile {
    let (manifest, blobs) = image(layer_size);
    let tokens = Mutex::new(0usize);
    let manifests = Mutex::new(0usize);
    let base: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let b = base.clone();
    let server = Hostile::start(move |_, url, auth, _| {
        let path = url.split('?').next().unwrap_or(url);
        if path == "/token" {
            let mut n = tokens.lock().unwrap();
            *n += 1;
            return token_answer(*n - 1);
        }
        if auth != Some("Bearer hostile-token") {
            let challenge = format!("Bearer realm=\"{}/token\",service=\"hostile\"", b.lock().unwrap());
            return (401, vec![("WWW-Authenticate", challenge)], b"{}".to_vec());
        }
        if path == "/v2/" {
            return json(200, "{}");
        }
        if path.starts_with(&format!("/v2/{REPO}/manifests/")) {
            let mut n = manifests.lock().unwrap();
            *n += 1;
            if busy && *n == 1 {
                return (503, vec![("Retry-After", "99999999999999999999999".to_owned())], b"busy".to_vec());
            }
            let headers = vec![
                ("Content-Type", "application/vnd.oci.image.manifest.v1+json".to_owned()),
                ("Docker-Content-Digest", format!("sha256:{}", sha256_hex(manifest.as_bytes()))),
            ];
            return (200, headers, manifest.as_bytes().to_vec());
        }
        for (digest, blob) in &blobs {
            if path == format!("/v2/{REPO}/blobs/{digest}") {
                return (200, vec![("Content-Type", "application/octet-stream".to_owned())], blob.clone());
            }
        }
        json(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no such thing"}]}"#)
    });
    *base.lock().unwrap() = format!("http://{}", server.host);
    server
}

fn pull(registry: &Hostile, env: &TestEnv) -> (Output, std::path::PathBuf) {
    let out_dir = env.path("layout");
    let image = format!("{}/{REPO}:latest", registry.host);
    let out = env.latchkey(&["pull", &image, "--output", out_dir.to_str().unwrap()], b"");
    (out, out_dir)
}

#[test]
fn pull_survives_absurd_token_lifetimes() {
    // Each is clamped (60 s ..= 1 day; absent, unreadable or <= 0 is 60 s) and the pull works.
    for expires_in in [
        "18446744073709551615",
        "9223372036854775808",
        "9999999999999999999999",
        "1e300",
        "-1",
        "-9223372036854775808",
        "0",
        "0.5",
        "\"3600\"",
        "\"soon\"",
        "null",
        "[1]",
    ] {
        let answer = format!(r#"{{"token":"hostile-token","expires_in":{expires_in}}}"#);
        let registry = registry(None, false, move |_| json(200, &answer));
        let env = TestEnv::new();
        let (out, layout) = pull(&registry, &env);
        assert_clean(&out, &format!("expires_in {expires_in}"));
        assert_eq!(out.code, Some(0), "expires_in {expires_in}: {}", out.stderr_str());
        assert!(layout.join("index.json").is_file(), "expires_in {expires_in}: no layout");
        assert!(registry.requests("GET /token") >= 1);
    }
}

#[test]
fn pull_survives_absurd_retry_after_from_the_token_service_and_the_registry() {
    // The token service is busy once with a Retry-After of ~3e15 years, then answers; the
    // registry's first manifest answer is a 503 with the same. latchkey keeps its own bounded
    // backoff and the pull completes.
    let registry = registry(None, true, |n| {
        if n == 0 {
            (429, vec![("Retry-After", "99999999999999999999999".to_owned())], b"slow down".to_vec())
        } else {
            json(200, r#"{"access_token":"hostile-token","expires_in":1e300}"#)
        }
    });
    let env = TestEnv::new();
    let (out, _) = pull(&registry, &env);
    assert_clean(&out, "Retry-After");
    assert_eq!(out.code, Some(0), "{}", out.stderr_str());
    assert!(registry.requests("GET /token") >= 2, "the busy token service was asked again");
}

#[test]
fn pull_refuses_an_absurd_blob_size_with_a_message() {
    for size in ["18446744073709551615", "9223372036854775808", "4398046511105"] {
        let registry = registry(Some(size), false, |_| json(200, r#"{"token":"hostile-token"}"#));
        let env = TestEnv::new();
        let (out, _) = pull(&registry, &env);
        assert_clean(&out, &format!("size {size}"));
        assert_eq!(out.code, Some(1), "size {size}: {}", out.stderr_str());
        let said = format!("{}{}", out.stdout_str(), out.stderr_str());
        assert!(said.contains(&format!("size {size} bytes, more than a blob may have (4 TiB)")), "{said}");
        assert_eq!(registry.requests(&format!("GET /v2/{REPO}/blobs/")), 0, "nothing fetched for {size}");
    }
}

// ---------------------------------------------------------------------------------------
// device login: the RFC 8628 endpoints answer absurd lifetimes, intervals and pauses

/// A device-mode config for `server`'s host with its endpoints on `server`.
fn device_env(server: &Hostile, login_timeout_secs: u64) -> TestEnv {
    let mut env = TestEnv::new();
    let (key, base) = (&server.host, format!("http://{}", server.host));
    let config = format!(
        "store = \"file\"\n[registries.\"{key}\"]\nmode = \"device\"\n[registries.\"{key}\".device]\n\
         device-authorization-url = \"{base}/device/code\"\ntoken-url = \"{base}/device/token\"\n\
         login-timeout-secs = {login_timeout_secs}\ntimeout-secs = 5\n"
    );
    std::fs::create_dir_all(env.config_path().parent().unwrap()).unwrap();
    std::fs::write(env.config_path(), config).unwrap();
    env.set("LATCHKEY_INTERACTIVE", "0");
    env
}

/// A device endpoint answering `expires_in` and `interval` as given, and a token endpoint
/// answering `poll(n)` to the n-th poll.
fn device_server(expires_in: &str, interval: &str, poll: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Hostile {
    let base: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let (b, polls) = (base.clone(), Mutex::new(0usize));
    let (expires_in, interval) = (expires_in.to_owned(), interval.to_owned());
    let server = Hostile::start(move |_, url, _, _| match url.split('?').next().unwrap_or(url) {
        "/device/code" => json(
            200,
            &format!(
                r#"{{"device_code":"dc-hostile","user_code":"HOST-ILE","verification_uri":"{}/device","expires_in":{expires_in},"interval":{interval}}}"#,
                b.lock().unwrap()
            ),
        ),
        "/device/token" => {
            let mut n = polls.lock().unwrap();
            *n += 1;
            poll(*n - 1)
        }
        _ => json(404, "{}"),
    });
    *base.lock().unwrap() = format!("http://{}", server.host);
    server
}

const PENDING: &str = r#"{"error":"authorization_pending"}"#;
const APPROVED: &str = r#"{"device_secret":"atcr_device_hostile","username":"alice.test"}"#;

#[test]
fn device_login_clamps_absurd_lifetimes_and_intervals() {
    // Huge lifetimes are clamped to login-timeout-secs (10 s here), huge intervals to 60 s,
    // unreadable ones are 5 s; the deadline then ends the wait with the usual message instead
    // of an overflow.
    for (expires_in, interval, within) in [
        ("18446744073709551615", "1e300", "10s"),
        ("9999999999999999999999", "18446744073709551615", "10s"),
        ("3", "9223372036854775808", "3s"),
        ("2.5", "\"forever\"", "2s"),
        ("3", "-1", "3s"),
    ] {
        let server = device_server(expires_in, interval, |_| json(400, PENDING));
        let env = device_env(&server, 10);
        let out = env.latchkey(&["login", &server.host], b"");
        let what = format!("expires_in {expires_in}, interval {interval}");
        assert_clean(&out, &what);
        assert_eq!(out.code, Some(1), "{what}");
        let expected = format!("the login was not approved within {within}; nothing was stored");
        assert!(out.stderr_str().contains(&expected), "{what}: {}", out.stderr_str());
    }
}

#[test]
fn device_login_works_with_nonsense_numbers_that_clamp_to_something_usable() {
    // A negative lifetime is the configured bound; a fractional interval of 1.9 s is 1 s.
    let server = device_server("-5", "1.9", |n| if n == 0 { json(400, PENDING) } else { json(200, APPROVED) });
    let env = device_env(&server, 30);
    let out = env.latchkey(&["login", &server.host], b"");
    assert_clean(&out, "negative lifetime");
    assert_eq!(out.code, Some(0), "{}", out.stderr_str());
    assert!(out.stderr_str().contains("logged in to"), "{}", out.stderr_str());
    assert_eq!(server.requests("POST /device/token"), 2);
}

#[test]
fn device_login_bounds_slow_down_and_retry_after_by_its_deadline() {
    // slow_down on every poll (interval 1 s, +5 s each, capped at 60 s), and a busy token
    // endpoint with an absurd Retry-After: both end when the 4 s device code expires.
    let slow = device_server("4", "1", |_| json(400, r#"{"error":"slow_down"}"#));
    let env = device_env(&slow, 10);
    let out = env.latchkey(&["login", &slow.host], b"");
    assert_clean(&out, "slow_down");
    assert_eq!(out.code, Some(1));
    assert!(out.stderr_str().contains("the login was not approved within 4s"), "{}", out.stderr_str());

    for status in [429, 503] {
        let busy = device_server("4", "1", move |_| {
            (status, vec![("Retry-After", "18446744073709551616".to_owned())], b"busy".to_vec())
        });
        let env = device_env(&busy, 10);
        let out = env.latchkey(&["login", &busy.host], b"");
        assert_clean(&out, &format!("Retry-After on {status}"));
        assert_eq!(out.code, Some(1));
        assert!(out.stderr_str().contains("the login was not approved within 4s"), "{status}: {}", out.stderr_str());
        assert_eq!(busy.requests("POST /device/token"), 1, "{status}: the Retry-After pause is honoured");
    }
}

// ---------------------------------------------------------------------------------------
// static bearer: an identity endpoint hands out JWTs whose dates do not fit

fn jwt(claims: &str) -> String {
    use base64::Engine;
    let b64 = |s: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.{}", b64(br#"{"alg":"ES256","typ":"JWT"}"#), b64(claims.as_bytes()), b64(b"signature"))
}

#[test]
fn a_jwt_exp_beyond_year_9999_is_refused_never_shown_as_expired() {
    for exp in ["9223372036854775808", "18446744073709551615", "1e300", "253402300800"] {
        let token = jwt(&format!(r#"{{"aud":"hostile","sub":"ci","exp":{exp}}}"#));
        let server = Hostile::start(move |_, _, _, _| (200, vec![], token.as_bytes().to_vec()));
        let env = TestEnv::new();
        let key = "registry.hostile.test";
        let config = format!(
            "[registries.\"{key}\"]\nmode = \"static-bearer\"\n[registries.\"{key}\".identity]\n\
             source = \"http\"\nurl = \"http://{}/identity\"\n",
            server.host
        );
        std::fs::create_dir_all(env.config_path().parent().unwrap()).unwrap();
        std::fs::write(env.config_path(), config).unwrap();
        let out = env.latchkey(&["get"], key.as_bytes());
        assert_clean(&out, &format!("exp {exp}"));
        assert_eq!(out.code, Some(1), "exp {exp}: {}", out.stdout_str());
        assert!(out.stdout_str().contains("\"exp\" is a date after year 9999"), "exp {exp}: {}", out.stdout_str());
        assert!(!out.stdout_str().contains("expired"), "exp {exp}: {}", out.stdout_str());
        let status = env.latchkey(&["status"], b"");
        assert_clean(&status, &format!("status, exp {exp}"));
        assert!(!status.stdout_str().contains("expired"), "exp {exp}: {}", status.stdout_str());
    }
    // The last second of year 9999 is a valid (if odd) expiry: handed out, shown as far ahead.
    let token = jwt(r#"{"aud":"hostile","sub":"ci","exp":253402300799}"#);
    let t = token.clone();
    let server = Hostile::start(move |_, _, _, _| (200, vec![], t.as_bytes().to_vec()));
    let env = TestEnv::new();
    let key = "registry.hostile.test";
    let config = format!(
        "[registries.\"{key}\"]\nmode = \"static-bearer\"\n[registries.\"{key}\".identity]\n\
         source = \"http\"\nurl = \"http://{}/identity\"\n",
        server.host
    );
    std::fs::create_dir_all(env.config_path().parent().unwrap()).unwrap();
    std::fs::write(env.config_path(), config).unwrap();
    let out = env.latchkey(&["get"], key.as_bytes());
    assert_clean(&out, "exp 9999-12-31");
    assert_eq!(out.code, Some(0), "{}", out.stdout_str());
    assert!(out.stdout_str().contains(&token));
    let status = env.latchkey(&["status"], b"");
    assert_clean(&status, "status, exp 9999-12-31");
    assert!(!status.stdout_str().contains("expired"), "{}", status.stdout_str());
}

//! Static-bearer identity sources through the real binary: file, env, command, an
//! in-process identity endpoint and an RFC 8693 STS, their faults, and the cache's
//! single-flight claim (32 concurrent cold `get`s, one upstream call).

// Unix only: RefusingPort (a bound, never-listening socket) and /bin/sh stand-ins.
#![cfg(unix)]

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-latchkey");
const REGISTRY: &str = "reg.test:5000";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A structurally valid JWT (latchkey inspects, it does not verify signatures).
fn jwt(sub: &str, aud: &str, expires_in: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
    let claims =
        serde_json::json!({"iss": "test", "sub": sub, "aud": aud, "iat": now(), "exp": (now() as i64 + expires_in)});
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

struct Sandbox {
    dir: tempfile::TempDir,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Sandbox {
    fn new(identity_toml: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[registries.\"{REGISTRY}\"]\nmode = \"static-bearer\"\n[registries.\"{REGISTRY}\".identity]\n{identity_toml}\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Sandbox { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("LATCHKEY_CONFIG", self.path("config.toml"))
            .env("LATCHKEY_DATA_DIR", self.path("data"))
            .env("LATCHKEY_CACHE_DIR", self.path("cache"))
            .env("LATCHKEY_STORE", "file")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Out {
        let mut child = self.command(args, env).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        wait(child)
    }

    fn get(&self, server_url: &str, env: &[(&str, &str)]) -> Out {
        self.run(&["get"], server_url, env)
    }
}

/// Wait with a generous bound so a hung helper fails the test instead of hanging CI.
fn wait(child: std::process::Child) -> Out {
    let done = common::wait_child(child, "docker-credential-latchkey", Duration::from_secs(60));
    let out = Out { code: done.code.unwrap_or(-1), stdout: done.stdout_str(), stderr: done.stderr_str() };
    assert!(!out.stderr.contains("panicked"), "panic: {}", out.stderr);
    out
}

fn answer(out: &Out) -> serde_json::Value {
    assert_eq!(out.code, 0, "stdout: {} stderr: {}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

fn assert_bearer(out: &Out, token: &str, server_url: &str) {
    let v = answer(out);
    assert_eq!(v["Username"], "<static_bearer>");
    assert_eq!(v["Secret"], token);
    assert_eq!(v["ServerURL"], server_url);
    // Go's encoder escapes '<' and '>'; so must we.
    assert!(out.stdout.contains(r#""Username":"\u003cstatic_bearer\u003e""#), "{}", out.stdout);
}

fn assert_fails(out: &Out, needles: &[&str], secret: Option<&str>) {
    assert_eq!(out.code, 1, "stdout: {} stderr: {}", out.stdout, out.stderr);
    for n in needles {
        assert!(out.stdout.contains(n), "expected {n:?} in stdout: {}", out.stdout);
    }
    if let Some(s) = secret {
        assert!(!out.stdout.contains(s) && !out.stderr.contains(s), "secret leaked: {} / {}", out.stdout, out.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// A recording HTTP server (identity endpoint, STS). Each request is answered on its own
// thread by `handler`, so a deliberately slow answer does not block the others.

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    url: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

type Handler = dyn Fn(&Seen) -> (u16, String, Duration) + Send + Sync;

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    server: Arc<tiny_http::Server>,
}

impl Server {
    fn start(handler: impl Fn(&Seen) -> (u16, String, Duration) + Send + Sync + 'static) -> Server {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, log) = (server.clone(), seen.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let header = |name: &str| {
                    request
                        .headers()
                        .iter()
                        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                        .map(|h| h.value.as_str().to_owned())
                };
                let (authorization, content_type) = (header("Authorization"), header("Content-Type"));
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let item = Seen {
                    method: request.method().as_str().to_owned(),
                    url: request.url().to_owned(),
                    authorization,
                    content_type,
                    body,
                };
                log.lock().unwrap().push(item.clone());
                let handler = handler.clone();
                std::thread::spawn(move || {
                    let (status, body, delay) = handler(&item);
                    std::thread::sleep(delay);
                    let response = tiny_http::Response::from_string(body).with_status_code(status);
                    let _ = request.respond(response);
                });
            }
        });
        Server { url, seen, server }
    }

    fn calls(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn ok(body: String) -> (u16, String, Duration) {
    (200, body, Duration::ZERO)
}

// ---------------------------------------------------------------------------------------

#[test]
fn file_source_is_reread_and_found_under_every_spelling() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    let sb = Sandbox::new(&format!("source = \"file\"\npath = {:?}", token_file.path()));
    let first = jwt("ci-job", "reg.test", 600);
    std::fs::write(token_file.path(), format!("{first}\n")).unwrap();
    // docker sends the bare host, skopeo host:port, rules_oci https://host.
    for spelling in [REGISTRY, "https://reg.test:5000", "https://REG.TEST:5000/v2/"] {
        assert_bearer(&sb.get(spelling, &[]), &first, spelling);
    }
    let second = jwt("ci-job-2", "reg.test", 600);
    std::fs::write(token_file.path(), &second).unwrap();
    assert_bearer(&sb.get(REGISTRY, &[]), &second, REGISTRY);

    let header = sb.run(&["header", REGISTRY], "", &[]);
    assert_eq!(header.code, 0, "{}", header.stderr);
    assert_eq!(header.stdout, format!("Authorization: Bearer {second}\n"));
    let token = sb.run(&["token", "https://reg.test:5000"], "", &[]);
    assert_eq!(token.stdout, format!("{second}\n"));

    let status = sb.run(&["status", "--json"], "", &[]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(!status.stdout.contains(&second), "status must never print the token");
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let reg = &v["registries"][0];
    assert_eq!(reg["mode"], "static-bearer");
    assert_eq!(reg["token"]["subject"], "ci-job-2");
}

#[test]
fn file_and_env_tokens_that_are_dead_or_malformed_are_refused() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    let sb = Sandbox::new(&format!("source = \"file\"\npath = {:?}", token_file.path()));
    let expired = jwt("s", "a", -30);
    std::fs::write(token_file.path(), &expired).unwrap();
    let path = token_file.path().display().to_string();
    assert_fails(&sb.get(REGISTRY, &[]), &["expired", &path], Some(&expired));

    // Valid now, but inside the safety margin (default 120 s).
    let expiring = jwt("s", "a", 60);
    std::fs::write(token_file.path(), &expiring).unwrap();
    assert_fails(&sb.get(REGISTRY, &[]), &[&path], Some(&expiring));

    for garbage in ["not-a-jwt", "a.b.c", "", "eyJhbGciOiJFUzI1NiJ9.eyJleHAiOiJzb29uIn0.c2ln"] {
        std::fs::write(token_file.path(), garbage).unwrap();
        assert_fails(&sb.get(REGISTRY, &[]), &[&path], None);
    }
    std::fs::remove_file(token_file.path()).unwrap();
    assert_fails(&sb.get(REGISTRY, &[]), &["cannot read the token file", &path], None);

    let sb = Sandbox::new("source = \"env\"\nvar = \"REGISTRY_ID_TOKEN\"");
    let good = jwt("s", "a", 600);
    assert_bearer(&sb.get(REGISTRY, &[("REGISTRY_ID_TOKEN", &good)]), &good, REGISTRY);
    assert_fails(&sb.get(REGISTRY, &[]), &["REGISTRY_ID_TOKEN", "not set"], None);
    let dead = jwt("s", "a", -1);
    assert_fails(&sb.get(REGISTRY, &[("REGISTRY_ID_TOKEN", &dead)]), &["expired", "REGISTRY_ID_TOKEN"], Some(&dead));
}

#[test]
fn command_source_runs_once_then_serves_the_cache() {
    let sb = Sandbox::new("");
    let token = jwt("cmd", "a", 600);
    let script = sb.path("issue.sh");
    let counter = sb.path("calls");
    std::fs::write(&script, format!("#!/bin/sh\necho call >> {}\necho '{token}'\n", counter.display())).unwrap();
    make_executable(&script);
    write_identity(&sb, &format!("source = \"command\"\nargv = [{:?}]", script.display().to_string()));
    assert_bearer(&sb.get(REGISTRY, &[]), &token, REGISTRY);
    assert_bearer(&sb.get(REGISTRY, &[]), &token, REGISTRY);
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap().lines().count(),
        1,
        "the second get must be served from the cache"
    );

    // `erase` (docker logout) forgets the cached token; the next get asks again.
    assert_eq!(sb.run(&["erase"], REGISTRY, &[]).code, 0);
    assert_bearer(&sb.get(REGISTRY, &[]), &token, REGISTRY);
    assert_eq!(std::fs::read_to_string(&counter).unwrap().lines().count(), 2);

    // A client naming a refused token: only the cached token's own hash makes latchkey ask
    // again; another hash, or a malformed value (with a warning), leaves the cache alone.
    let calls = || std::fs::read_to_string(&counter).unwrap().lines().count();
    let var = "LATCHKEY_REJECTED_TOKEN_SHA256";
    let out = sb.get(REGISTRY, &[(var, "not-hex")]);
    assert_bearer(&out, &token, REGISTRY);
    assert!(out.stderr.contains("ignoring LATCHKEY_REJECTED_TOKEN_SHA256"), "{}", out.stderr);
    assert_bearer(&sb.get(REGISTRY, &[(var, &"ab".repeat(32))]), &token, REGISTRY);
    assert_eq!(calls(), 2);
    let own = {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_bearer(&sb.get(REGISTRY, &[(var, &own.to_uppercase())]), &token, REGISTRY);
    assert_eq!(calls(), 3);

    // Cache files hold secrets: 0600 in a 0700 dir.
    use std::os::unix::fs::PermissionsExt;
    let tokens = sb.path("cache").join("tokens");
    assert_eq!(std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777, 0o700);
    for entry in std::fs::read_dir(&tokens).unwrap() {
        let entry = entry.unwrap();
        assert_eq!(entry.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{:?}", entry.path());
    }
}

#[test]
fn command_source_faults() {
    let sb = Sandbox::new("");
    write_identity(&sb, "source = \"command\"\nargv = [\"/bin/sh\", \"-c\", \"echo boom >&2; exit 3\"]");
    let out = sb.get(REGISTRY, &[]);
    assert_fails(&out, &["failed", "exit status: 3"], None);
    assert!(out.stderr.contains("boom"), "the program's stderr reaches the user: {}", out.stderr);

    write_identity(&sb, "source = \"command\"\nargv = [\"/bin/sleep\", \"30\"]\ntimeout-secs = 1");
    assert_fails(&sb.get(REGISTRY, &[]), &["did not finish within 1s"], None);

    write_identity(&sb, "source = \"command\"\nargv = [\"/nonexistent/issuer\"]");
    assert_fails(&sb.get(REGISTRY, &[]), &["cannot run", "/nonexistent/issuer"], None);

    write_identity(&sb, "source = \"command\"\nargv = [\"/bin/echo\", \"opaque-token\"]");
    let out = sb.get(REGISTRY, &[]);
    assert_fails(&out, &["not a usable JWT"], Some("opaque-token"));
    assert_eq!(out.stdout.matches("not a usable JWT").count(), 1, "said once: {}", out.stdout);
}

#[test]
fn identity_endpoint_with_request_bearer_and_audience() {
    let token = jwt("repo:org/app:ref:refs/heads/main", "reg.test", 600);
    let t = token.clone();
    let server = Server::start(move |seen| {
        if seen.authorization.as_deref() == Some("Bearer request-token") && seen.url.contains("audience=reg.test") {
            ok(serde_json::json!({"count": 1, "value": t}).to_string())
        } else {
            (401, "no".into(), Duration::ZERO)
        }
    });
    let sb = Sandbox::new(&format!(
        "source = \"http\"\nurl = \"{}/token?api-version=2.0\"\naudience = \"reg.test\"\nbearer-env = \"REQ_TOKEN\"\nfield = \"value\"",
        server.url
    ));
    assert_bearer(&sb.get(REGISTRY, &[("REQ_TOKEN", "request-token")]), &token, REGISTRY);
    assert_bearer(&sb.get(REGISTRY, &[("REQ_TOKEN", "request-token")]), &token, REGISTRY);
    let calls = server.calls();
    assert_eq!(calls.len(), 1, "second get is cached: {calls:?}");
    assert_eq!(calls[0].method, "GET");
    assert!(calls[0].url.contains("api-version=2.0"), "{}", calls[0].url);

    // The GitHub Actions preset is the same protocol with the runner's variables.
    let gh = Sandbox::new("source = \"github-actions\"\naudience = \"reg.test\"");
    let env = [("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{}/gh?api-version=2.0", server.url))];
    let out = gh.get(REGISTRY, &[(env[0].0, &env[0].1), ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token")]);
    assert_bearer(&out, &token, REGISTRY);
    // Outside a job (and with nothing cached) the preset says what is missing.
    let outside = Sandbox::new("source = \"github-actions\"\naudience = \"reg.test\"");
    assert_fails(&outside.get(REGISTRY, &[]), &["ACTIONS_ID_TOKEN_REQUEST_URL", "id-token: write"], None);
}

#[test]
fn identity_endpoint_faults_are_clear_and_bounded() {
    let wrong_aud = jwt("s", "someone-else", 600);
    type Case = (&'static str, Box<Handler>, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "500",
            Box::new(|_: &Seen| (500, "internal error".into(), Duration::ZERO)),
            // A body that is not a JSON error is described, never quoted (issue 9, class 3).
            vec!["HTTP 500", "not JSON (not quoted)"],
        ),
        ("html", Box::new(|_: &Seen| ok("<html><body>Sign in</body></html>".into())), vec!["HTML"]),
        ("no field", Box::new(|_: &Seen| ok(r#"{"count":1}"#.into())), vec!["without the field \"value\""]),
        ("truncated", Box::new(|_: &Seen| ok(r#"{"value":"eyJ"#.into())), vec!["invalid JSON"]),
        ("oversize", Box::new(|_: &Seen| ok("x".repeat(300 * 1024))), vec!["more than 256 KiB"]),
        ("malformed jwt", Box::new(|_: &Seen| ok(r#"{"value":"abc.def"}"#.into())), vec!["not a usable JWT"]),
        ("slow", Box::new(|_: &Seen| (200, "{}".into(), Duration::from_secs(5))), vec!["timed out"]),
        (
            "wrong audience",
            Box::new(move |_: &Seen| ok(serde_json::json!({ "value": wrong_aud }).to_string())),
            vec!["audience"],
        ),
    ];
    for (name, handler, needles) in cases {
        let server = Server::start(handler);
        // Only the slow case is about the timeout; the others must not meet it on a loaded machine.
        let timeout = if name == "slow" { 2 } else { 20 };
        let sb = Sandbox::new(&format!(
            "source = \"http\"\nurl = \"{}/token\"\naudience = \"reg.test\"\nfield = \"value\"\ntimeout-secs = {timeout}",
            server.url
        ));
        let out = sb.get(REGISTRY, &[]);
        assert_eq!(out.code, 1, "{name}: {}", out.stdout);
        for n in needles {
            assert!(out.stdout.contains(n), "{name}: expected {n:?} in {}", out.stdout);
        }
        assert!(out.stdout.contains("identity endpoint") || out.stdout.contains("JWT"), "{name}: {}", out.stdout);
        assert!(!sb.path("cache").join("tokens").exists() || no_cached_tokens(&sb), "{name}: nothing cached");
    }
    // Nobody listening.
    let closed = common::RefusingPort::new();
    let sb = Sandbox::new(&format!("source = \"http\"\nurl = \"{}/token\"\nfield = \"value\"", closed.base()));
    assert_fails(&sb.get(REGISTRY, &[]), &["identity endpoint", "cannot connect"], None);
}

fn no_cached_tokens(sb: &Sandbox) -> bool {
    std::fs::read_dir(sb.path("cache").join("tokens"))
        .unwrap()
        .all(|e| !e.unwrap().path().to_string_lossy().ends_with(".json"))
}

#[test]
fn token_exchange_follows_rfc_8693() {
    let subject = jwt("k8s:sa:builder", "sts", 600);
    let issued = jwt("builder", "reg.test", 900);
    let (s, i) = (subject.clone(), issued.clone());
    let sts = Server::start(move |seen| {
        let form: std::collections::HashMap<String, String> =
            serde_urlencoded::from_str(&seen.body).unwrap_or_default();
        let well_formed = seen.method == "POST"
            && seen.content_type.as_deref() == Some("application/x-www-form-urlencoded")
            && form.get("grant_type").map(String::as_str) == Some("urn:ietf:params:oauth:grant-type:token-exchange")
            && form.get("subject_token_type").map(String::as_str) == Some("urn:ietf:params:oauth:token-type:jwt")
            && form.get("audience").map(String::as_str) == Some("reg.test");
        if !well_formed {
            return (400, r#"{"error":"invalid_request","error_description":"malformed"}"#.into(), Duration::ZERO);
        }
        if form.get("subject_token") != Some(&s) {
            return (
                400,
                r#"{"error":"invalid_grant","error_description":"subject token rejected"}"#.into(),
                Duration::ZERO,
            );
        }
        let body = serde_json::json!({
            "access_token": i,
            "issued_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_type": "Bearer",
            "expires_in": 900,
        });
        ok(body.to_string())
    });
    let subject_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(subject_file.path(), &subject).unwrap();
    let sb = Sandbox::new(&format!(
        "source = \"exchange\"\nurl = \"{}/sts\"\naudience = \"reg.test\"\nsubject = {{ source = \"file\", path = {:?} }}",
        sts.url,
        subject_file.path()
    ));
    let out = sb.get(REGISTRY, &[]);
    assert_bearer(&out, &issued, REGISTRY);
    assert!(!out.stderr.contains(&subject), "subject token leaked to stderr");

    std::fs::write(subject_file.path(), jwt("other", "sts", 600)).unwrap();
    sb.run(&["erase"], REGISTRY, &[]);
    let out = sb.get(REGISTRY, &[]);
    assert_fails(&out, &["token exchange", "invalid_grant", "subject token rejected"], None);
}

#[test]
fn thirty_two_concurrent_cold_gets_make_one_upstream_call() {
    let token = jwt("shared", "reg.test", 600);
    let t = token.clone();
    // A slow endpoint widens the race window: every process starts cold.
    let server =
        Server::start(move |_| (200, serde_json::json!({ "value": t }).to_string(), Duration::from_millis(500)));
    let sb = Sandbox::new(&format!("source = \"http\"\nurl = \"{}/token\"\nfield = \"value\"", server.url));
    let children: Vec<_> = (0..32)
        .map(|_| {
            let mut child = sb.command(&["get"], &[]).spawn().unwrap();
            child.stdin.take().unwrap().write_all(b"https://reg.test:5000").unwrap();
            child
        })
        .collect();
    let outs: Vec<Out> = children.into_iter().map(wait).collect();
    for out in &outs {
        assert_eq!(answer(out)["Secret"], token);
    }
    assert!(outs.windows(2).all(|w| w[0].stdout == w[1].stdout), "all answers identical");
    assert_eq!(server.calls().len(), 1, "exactly one upstream call");
}

#[test]
fn tokens_that_expire_within_the_margin_are_refetched_not_served() {
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    // First answer is valid for 200 s, later ones for 600 s; with min-validity 300 the first
    // is refused (the source issues unusable tokens) and never cached.
    let server = Server::start(move |_| {
        let mut n = c.lock().unwrap();
        *n += 1;
        let life = if *n == 1 { 200 } else { 600 };
        ok(serde_json::json!({ "value": jwt("s", "reg.test", life) }).to_string())
    });
    let sb = Sandbox::new(&format!("source = \"http\"\nurl = \"{}/token\"\nfield = \"value\"", server.url));
    let config = std::fs::read_to_string(sb.path("config.toml")).unwrap();
    std::fs::write(
        sb.path("config.toml"),
        config.replace("mode = \"static-bearer\"", "mode = \"static-bearer\"\nmin-validity-secs = 300"),
    )
    .unwrap();
    let out = sb.get(REGISTRY, &[]);
    assert_fails(&out, &["min-validity-secs = 300"], None);
    let out = sb.get(REGISTRY, &[]);
    let exp = claims(answer(&out)["Secret"].as_str().unwrap())["exp"].as_u64().unwrap();
    assert!(exp > now() + 300);
}

fn claims(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn write_identity(sb: &Sandbox, identity_toml: &str) {
    let config = format!(
        "[registries.\"{REGISTRY}\"]\nmode = \"static-bearer\"\n[registries.\"{REGISTRY}\".identity]\n{identity_toml}\n"
    );
    std::fs::write(sb.path("config.toml"), config).unwrap();
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn cached_static_bearer_get_touches_no_keyring_and_no_network() {
    let token = jwt("cached", "reg.test", 600);
    let t = token.clone();
    let server = Server::start(move |_| ok(serde_json::json!({ "value": t }).to_string()));
    let sb = Sandbox::new(&format!("source = \"http\"\nurl = \"{}/token\"\nfield = \"value\"", server.url));
    assert_bearer(&sb.get(REGISTRY, &[]), &token, REGISTRY);
    // A keyring store that cannot possibly be opened: a static-bearer get must not try.
    let no_keyring = [("LATCHKEY_STORE", "keyring"), ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")];
    let out = sb.get("https://reg.test:5000", &no_keyring);
    assert_bearer(&out, &token, "https://reg.test:5000");
    assert!(out.stderr.is_empty(), "a cached get says nothing on stderr: {}", out.stderr);
    assert_eq!(server.calls().len(), 1, "the cached get made no request");
}

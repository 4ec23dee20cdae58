//! Device mode through the real binary: `login` (RFC 8628 with slow_down, pending, denial,
//! expiry, headless), `get` with the session check and its cache, `oauth_session_expired`
//! recovery (interactive through a stand-in browser, non-interactive), 16 parallel `get`s
//! opening the browser once, hostile login URLs, revoked secrets, a down/slow/failing token
//! endpoint, `status`, `logout` and `erase`, and the device secret on a real Secret Service.
//! No timing assertions: every wait is bounded so a hang fails instead of hanging CI.

// Unix only: RefusingPort (a bound, never-listening socket) and /bin/sh stand-ins.
#![cfg(unix)]

use crate::common;
use crate::device_auth;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use device_auth::{ACCOUNT, AuthServer, BrowserAction, SECRET_PREFIX, StandInBrowser};

const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-latchkey");

struct Sandbox {
    dir: tempfile::TempDir,
    server: AuthServer,
    browser: StandInBrowser,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Sandbox {
    /// A sandbox whose registry is the test server itself (`127.0.0.1:PORT`, realm from `/v2/`);
    /// `device_toml` goes into the registry's device table.
    fn new(device_toml: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let server = AuthServer::start();
        let browser = StandInBrowser::new(dir.path());
        let sb = Sandbox { dir, server, browser };
        sb.write_config(device_toml);
        sb
    }

    fn key(&self) -> &str {
        &self.server.host
    }

    fn write_config(&self, device_toml: &str) {
        let key = self.key();
        // Bound every wait well below the test's own 90 s bound.
        let wait = if device_toml.contains("login-wait-secs") { "" } else { "login-wait-secs = 30\n" };
        let config = format!(
            "store = \"file\"\n[registries.\"{key}\"]\nmode = \"device\"\n[registries.\"{key}\".device]\n{wait}{device_toml}\n"
        );
        std::fs::write(self.path("config.toml"), config).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str], interactive: bool, env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("LATCHKEY_CONFIG", self.path("config.toml"))
            .env("LATCHKEY_DATA_DIR", self.path("data"))
            .env("LATCHKEY_CACHE_DIR", self.path("cache"))
            .env("LATCHKEY_STORE", "file")
            .env("LATCHKEY_INTERACTIVE", if interactive { "1" } else { "0" })
            .env("BROWSER", &self.browser.script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str], stdin: &str, interactive: bool) -> Out {
        let mut child = self.command(args, interactive, &[]).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        wait(child)
    }

    fn get(&self, interactive: bool) -> Out {
        self.run(&["get"], self.key(), interactive)
    }

    fn login(&self, interactive: bool) -> Out {
        self.run(&["login", self.key()], "", interactive)
    }

    /// Log in headless with the server approving on its own at the first poll.
    fn logged_in(self) -> Sandbox {
        self.server.with(|s| s.auto_approve_at = Some(0));
        let out = self.login(false);
        assert_eq!(out.code, 0, "login failed: {}", out.stderr);
        self.server.with(|s| s.auto_approve_at = None);
        self
    }

    fn secret(&self) -> String {
        self.server.with(|s| s.secret()).expect("a device secret was issued")
    }

    /// The file store's entry for the registry, if any: (Username, Secret).
    fn stored(&self) -> Option<(String, String)> {
        let text = std::fs::read_to_string(self.path("data").join("credentials.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let entry = v["credentials"].get(self.key())?;
        Some((entry["Username"].as_str()?.to_owned(), entry["Secret"].as_str()?.to_owned()))
    }
}

/// Wait with a generous bound so a hung helper fails the test instead of hanging CI.
fn wait(child: std::process::Child) -> Out {
    let done = common::wait_child(child, "docker-credential-latchkey", Duration::from_secs(90));
    let out = Out { code: done.code.unwrap_or(-1), stdout: done.stdout_str(), stderr: done.stderr_str() };
    assert!(!out.stderr.contains("panicked"), "panic: {}", out.stderr);
    out
}

fn assert_answer(out: &Out, secret: &str, server_url: &str) {
    assert_eq!(out.code, 0, "stdout: {} stderr: {}", out.stdout, out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["Username"], ACCOUNT);
    assert_eq!(v["Secret"], secret);
    assert_eq!(v["ServerURL"], server_url);
    assert!(!out.stderr.contains(secret), "secret on stderr: {}", out.stderr);
}

fn assert_fails(out: &Out, needles: &[&str], secret: Option<&str>) {
    // Shown with --nocapture: what the user sees.
    eprintln!("--- exit {}\n--- stdout:\n{}--- stderr:\n{}", out.code, out.stdout, out.stderr);
    assert_eq!(out.code, 1, "stdout: {} stderr: {}", out.stdout, out.stderr);
    for n in needles {
        assert!(out.stdout.contains(n), "expected {n:?} in stdout: {}\nstderr: {}", out.stdout, out.stderr);
    }
    assert_eq!(out.stdout.lines().count(), 1, "one error line on stdout: {}", out.stdout);
    if let Some(s) = secret {
        assert!(!out.stdout.contains(s) && !out.stderr.contains(s), "secret leaked: {} / {}", out.stdout, out.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// login

#[test]
fn login_honours_pending_and_slow_down_then_stores_the_secret() {
    let sb = Sandbox::new("");
    // Poll 0: authorization_pending, poll 1: slow_down, then the browser's approval counts.
    sb.server.with(|s| {
        s.pending_polls = 2;
        s.slow_down_at = Some(1);
    });
    let out = sb.login(true);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "", "login prints nothing on stdout");
    let polls = sb.server.with(|s| s.polls.clone());
    assert_eq!(polls, ["authorization_pending", "slow_down", "ok"]);

    // The browser got the complete verification URI (with the user code), once.
    let opened = sb.browser.opened();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(opened[0].starts_with(&format!("{}/device?user_code=WDJB-", sb.server.base)), "{opened:?}");
    let user_code = opened[0].rsplit('=').next().unwrap();
    assert!(out.stderr.contains(user_code), "the code is shown: {}", out.stderr);
    assert!(out.stderr.contains(&format!("{}/device", sb.server.base)), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("logged in to {} as {ACCOUNT}", sb.key())), "{}", out.stderr);

    let secret = sb.secret();
    assert!(secret.starts_with(SECRET_PREFIX));
    assert!(!out.stderr.contains(&secret), "secret on stderr");
    assert_eq!(sb.stored(), Some((ACCOUNT.to_owned(), secret.clone())));

    // get answers with the account and the device secret, under every spelling.
    for spelling in [sb.key().to_owned(), format!("https://{}", sb.key())] {
        let out = sb.run(&["get"], &spelling, false);
        assert_answer(&out, &secret, &spelling);
    }
    // The check went to the realm /v2/ named, with the service it named, as Basic auth.
    let requests = sb.server.with(|s| s.requests.clone());
    assert!(requests.iter().any(|r| r == "GET /v2/"), "{requests:?}");
    assert!(requests.iter().any(|r| r.starts_with("GET /auth/token?service=test-registry")), "{requests:?}");
    assert!(!requests.iter().any(|r| r.contains(&secret)), "no secret in any URL: {requests:?}");
}

#[test]
fn headless_login_prints_the_url_and_code_and_opens_nothing() {
    let sb = Sandbox::new("");
    sb.server.with(|s| s.auto_approve_at = Some(1));
    let out = sb.login(false);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert!(sb.browser.opened().is_empty(), "no browser when headless");
    assert!(out.stderr.contains("not opening a browser here (LATCHKEY_INTERACTIVE=0)"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("{}/device", sb.server.base)), "{}", out.stderr);
    assert!(out.stderr.contains("WDJB-"), "the user code is shown: {}", out.stderr);
    assert!(!out.stderr.contains('\u{2588}'), "no QR code when stderr is not a terminal: {}", out.stderr);
    assert!(sb.stored().is_some());
}

#[test]
fn headless_login_draws_a_qr_code_of_the_url_when_asked() {
    let sb = Sandbox::new("");
    sb.server.with(|s| s.auto_approve_at = Some(1));
    let mut child = sb.command(&["login", sb.key()], false, &[("LATCHKEY_QR", "1")]).spawn().unwrap();
    drop(child.stdin.take());
    let out = wait(child);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("scan this with a phone"), "{}", out.stderr);
    // A square of half blocks: at least 21 modules (version 1) wide plus the quiet zone.
    let rows: Vec<&str> = out.stderr.lines().filter(|l| l.contains('\u{2588}')).collect();
    assert!(rows.len() >= 14, "a QR code on stderr: {}", out.stderr);
    assert!(rows.iter().all(|r| r.chars().count() >= 29 && !r.contains("latchkey")), "{}", out.stderr);
    assert!(sb.browser.opened().is_empty(), "no browser when headless");
    assert!(sb.stored().is_some());
}

#[test]
fn denied_login_stores_nothing() {
    let sb = Sandbox::new("");
    sb.server.with(|s| s.browser = BrowserAction::Deny);
    let out = sb.login(true);
    assert_eq!(out.code, 1, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("the login was denied in the browser; nothing was stored"), "{}", out.stderr);
    assert_eq!(sb.browser.opened().len(), 1);
    assert_eq!(sb.stored(), None);
}

#[test]
fn expired_device_code_stores_nothing() {
    let sb = Sandbox::new("");
    sb.server.with(|s| s.expire_codes = true);
    let out = sb.login(false);
    assert_eq!(out.code, 1, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("expired before the login was approved; nothing was stored"), "{}", out.stderr);
    assert_eq!(sb.stored(), None);
}

#[test]
fn login_is_bounded_by_the_codes_lifetime() {
    let sb = Sandbox::new("");
    sb.server.with(|s| {
        s.expires_in = 2;
        s.browser = BrowserAction::Ignore;
    });
    let out = sb.login(true);
    assert_eq!(out.code, 1, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("the login was not approved within 2s; nothing was stored"), "{}", out.stderr);
    assert_eq!(sb.stored(), None);
}

#[test]
fn ctrl_c_during_login_stores_nothing() {
    let sb = Sandbox::new("");
    sb.server.with(|s| s.browser = BrowserAction::Ignore);
    let mut child = sb.command(&["login", sb.key()], false, &[]).spawn().unwrap();
    drop(child.stdin.take());
    // Wait (bounded) until latchkey holds a device code and is polling.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sb.server.with(|s| s.codes.is_empty()) {
        assert!(Instant::now() < deadline, "login never asked for a device code");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = wait(child);
    assert_eq!(out.code, 1, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("login cancelled; nothing was stored"), "{}", out.stderr);
    assert_eq!(sb.stored(), None);
    assert!(!sb.path("data").join("credentials.json").exists());
}

#[test]
fn login_refuses_an_unsafe_verification_url_and_unknown_registries() {
    let sb = Sandbox::new("");
    for (url, why) in [
        ("https://evil.example/device", "neither the registry's host"),
        ("javascript:alert(1)", "scheme \"javascript\""),
    ] {
        sb.server.with(|s| s.verification_uri = Some(url.into()));
        let out = sb.login(true);
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains("sent an unsafe verification URL") && out.stderr.contains(why), "{}", out.stderr);
        assert!(sb.browser.opened().is_empty());
        assert_eq!(sb.stored(), None);
    }

    let out = sb.run(&["login", "elsewhere.example"], "", false);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("elsewhere.example is not a device-login registry"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// get: the session check

#[test]
fn get_without_login_is_not_found_with_a_hint() {
    let sb = Sandbox::new("");
    let out = sb.get(false);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "credentials not found in native keychain\n");
    assert!(out.stderr.contains(&format!("docker-credential-latchkey login {}", sb.key())), "{}", out.stderr);
}

#[test]
fn a_live_session_is_remembered_for_check_interval_secs() {
    let sb = Sandbox::new("check-interval-secs = 300").logged_in();
    let secret = sb.secret();
    for _ in 0..3 {
        assert_answer(&sb.get(false), &secret, sb.key());
    }
    assert_eq!(sb.server.with(|s| s.token_checks), 1, "checked once, then remembered");
    // The cache holds no secret.
    for entry in walk(&sb.path("cache")) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!text.contains(&secret), "secret in {}", entry.display());
    }

    // With check-interval-secs = 0 every get asks.
    sb.write_config("check-interval-secs = 0");
    assert_answer(&sb.get(false), &secret, sb.key());
    assert_answer(&sb.get(false), &secret, sb.key());
    assert_eq!(sb.server.with(|s| s.token_checks), 3);
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn expired_session_interactive_opens_the_login_page_once_and_answers() {
    let sb = Sandbox::new("check-interval-secs = 0").logged_in();
    let secret = sb.secret();
    sb.server.with(|s| s.expire_sessions());
    let out = sb.get(true);
    assert_answer(&out, &secret, sb.key());
    let login_url = format!("{}/auth/oauth/login", sb.server.base);
    assert_eq!(sb.browser.opened(), std::slice::from_ref(&login_url));
    assert!(out.stderr.contains("the registry says: Your OAuth session has expired"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("opened {login_url}")), "{}", out.stderr);
    assert!(out.stderr.contains("login session renewed"), "{}", out.stderr);
    // Alive again: the next get answers without a browser.
    assert_answer(&sb.get(true), &secret, sb.key());
    assert_eq!(sb.browser.opened().len(), 1);
}

#[test]
fn expired_session_non_interactive_fails_at_once_with_the_url_and_command() {
    let sb = Sandbox::new("check-interval-secs = 0").logged_in();
    let secret = sb.secret();
    sb.server.with(|s| s.expire_sessions());
    let out = sb.get(false);
    let login_url = format!("{}/auth/oauth/login", sb.server.base);
    let command = format!("docker-credential-latchkey login {}", sb.key());
    assert_fails(&out, &["has expired", &login_url, &command], Some(&secret));
    assert!(out.stderr.contains(&login_url) && out.stderr.contains(&command), "{}", out.stderr);
    assert!(out.stderr.contains("not opening a browser: LATCHKEY_INTERACTIVE=0"), "{}", out.stderr);
    assert!(sb.browser.opened().is_empty(), "no browser when non-interactive");
    assert_eq!(sb.stored().map(|(_, s)| s), Some(secret), "the secret stays stored");
}

#[test]
fn interactive_recovery_that_never_completes_is_bounded() {
    let sb = Sandbox::new("check-interval-secs = 0").logged_in();
    sb.write_config("check-interval-secs = 0\nlogin-wait-secs = 2");
    sb.server.with(|s| {
        s.expire_sessions();
        s.browser = BrowserAction::Ignore;
    });
    let out = sb.get(true);
    assert_fails(&out, &["did not finish within 2s", "docker-credential-latchkey login"], Some(&sb.secret()));
    assert_eq!(sb.browser.opened_at_least(1).len(), 1);
}

#[test]
fn sixteen_parallel_gets_on_an_expired_session_open_the_browser_once() {
    let sb = Sandbox::new("check-interval-secs = 0").logged_in();
    let secret = sb.secret();
    sb.server.with(|s| s.expire_sessions());
    let children: Vec<_> = (0..16)
        .map(|_| {
            let mut child = sb.command(&["get"], true, &[]).spawn().unwrap();
            child.stdin.take().unwrap().write_all(sb.key().as_bytes()).unwrap();
            child
        })
        .collect();
    let outs: Vec<Out> = children.into_iter().map(wait).collect();
    for out in &outs {
        assert_answer(out, &secret, sb.key());
    }
    assert_eq!(sb.browser.opened().len(), 1, "browser opened once: {:?}", sb.browser.opened());
}

#[test]
fn sixteen_parallel_gets_share_one_failed_login() {
    let sb = Sandbox::new("check-interval-secs = 0").logged_in();
    // Long enough for all 16 to be waiting on the first one's login before it gives up.
    sb.write_config("check-interval-secs = 0\nlogin-wait-secs = 6");
    sb.server.with(|s| {
        s.expire_sessions();
        s.browser = BrowserAction::Ignore;
    });
    let children: Vec<_> = (0..16)
        .map(|_| {
            let mut child = sb.command(&["get"], true, &[]).spawn().unwrap();
            child.stdin.take().unwrap().write_all(sb.key().as_bytes()).unwrap();
            child
        })
        .collect();
    let outs: Vec<Out> = children.into_iter().map(wait).collect();
    for out in &outs {
        assert_fails(out, &["did not finish within 6s"], Some(&sb.secret()));
    }
    assert_eq!(outs.iter().map(|o| &o.stdout).collect::<std::collections::BTreeSet<_>>().len(), 1, "same message");
    assert_eq!(sb.browser.opened_at_least(1).len(), 1, "browser opened once: {:?}", sb.browser.opened());
}

#[test]
fn hostile_login_urls_are_refused() {
    let sb = Sandbox::new("check-interval-secs = 0").logged_in();
    let secret = sb.secret();
    let port = sb.key().rsplit(':').next().unwrap().to_owned();
    let cases = [
        ("https://evil.example/auth/oauth/login".to_owned(), "neither the registry's host"),
        (format!("http://localhost:{port}/auth/oauth/login"), "neither the registry's host"),
        ("http://registry.example/auth/oauth/login".to_owned(), "plain http"),
        ("javascript:alert(document.cookie)".to_owned(), "scheme \"javascript\""),
        ("file:///etc/passwd".to_owned(), "scheme \"file\""),
        (format!("http://alice:pw@{}/auth/oauth/login", sb.key()), "user name or password"),
        (format!("http://{}/auth/oauth/login?s={secret}", sb.key()), "carries the device secret"),
    ];
    sb.server.with(|s| s.expire_sessions());
    for (url, why) in cases {
        sb.server.with(|s| s.login_url = Some(url.clone()));
        let out = sb.get(true);
        assert_fails(&out, &["has expired", "not opening its login page", why], Some(&secret));
        assert!(out.stderr.contains(why), "{url}: {}", out.stderr);
    }
    assert!(sb.browser.opened().is_empty(), "nothing opened: {:?}", sb.browser.opened());

    // A host the user allowed is opened (as an https URL it is only printed here: the
    // stand-in cannot reach it, so the wait runs out).
    sb.write_config("check-interval-secs = 0\nlogin-wait-secs = 1\nallowed-login-hosts = [\"login.example\"]");
    sb.server.with(|s| s.login_url = Some("https://login.example/sso".into()));
    let out = sb.get(true);
    assert_fails(&out, &["did not finish within 1s"], Some(&secret));
    assert_eq!(sb.browser.opened_at_least(1), ["https://login.example/sso"]);
}

#[test]
fn a_revoked_secret_says_so_and_is_kept() {
    let sb = Sandbox::new("check-interval-secs = 0").logged_in();
    let secret = sb.secret();
    sb.server.with(|s| s.revoke_all());
    let out = sb.get(true);
    assert_fails(
        &out,
        &[
            "no longer accepted",
            "HTTP 401",
            "device secret revoked",
            "docker-credential-latchkey login",
            "left in place",
        ],
        Some(&secret),
    );
    assert!(sb.browser.opened().is_empty());
    assert_eq!(sb.stored().map(|(_, s)| s), Some(secret));
}

#[test]
fn token_endpoint_down_slow_or_failing_is_a_clear_bounded_error() {
    let sb = Sandbox::new("check-interval-secs = 0").logged_in();
    let secret = sb.secret();
    let realm = format!("{}/auth/token", sb.server.base);

    sb.server.with(|s| s.token_override = Some((503, "upstream unavailable".into())));
    assert_fails(&sb.get(true), &["token endpoint", &realm, "HTTP 503", "not JSON (not quoted)"], Some(&secret));

    sb.server.with(|s| {
        s.token_override = None;
        s.token_delay = Duration::from_secs(5);
    });
    // The realm is configured, so the timeout bounds only the slow token endpoint (not /v2/).
    let service = device_auth::SERVICE;
    sb.write_config(&format!(
        "check-interval-secs = 0\ntimeout-secs = 2\nrealm = \"{realm}\"\nservice = \"{service}\""
    ));
    assert_fails(&sb.get(true), &["token endpoint", &realm, "timed out"], Some(&secret));
    sb.server.with(|s| s.token_delay = Duration::ZERO);

    // Nothing listening there.
    let closed = common::RefusingPort::new();
    let dead = format!("{}/auth/token", closed.base());
    sb.write_config(&format!("check-interval-secs = 0\nrealm = \"{dead}\"\nservice = \"{}\"", device_auth::SERVICE));
    assert_fails(&sb.get(true), &["token endpoint", &dead, "cannot connect"], Some(&secret));
    assert!(sb.browser.opened().is_empty());
}

// ---------------------------------------------------------------------------------------
// status, logout, erase, config

#[test]
fn status_shows_account_and_session_state_without_secrets() {
    let sb = Sandbox::new("check-interval-secs = 0").logged_in();
    let secret = sb.secret();
    let status = |sb: &Sandbox| {
        let out = sb.run(&["status", "--json"], "", false);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(!out.stdout.contains(&secret), "status must never print the secret");
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v["registries"].as_array().unwrap().iter().find(|r| r["registry"] == sb.key()).unwrap().clone()
    };
    let reg = status(&sb);
    assert_eq!(reg["mode"], "device");
    assert_eq!(reg["username"], ACCOUNT);
    assert_eq!(reg["session"], "alive");

    sb.server.with(|s| s.expire_sessions());
    let reg = status(&sb);
    assert_eq!(reg["session"], "expired");
    assert!(reg["note"].as_str().unwrap().contains("/auth/oauth/login"), "{reg}");
    assert!(sb.browser.opened().is_empty(), "status opens nothing");

    let human = sb.run(&["status"], "", false);
    assert!(
        human.stdout.contains(&format!("user {ACCOUNT}")) && human.stdout.contains("session expired"),
        "{}",
        human.stdout
    );
}

#[test]
fn logout_revokes_and_erases_and_erase_erases() {
    let sb = Sandbox::new("");
    sb.write_config(&format!("revocation-url = \"{}/auth/revoke\"", sb.server.base));
    let sb = sb.logged_in();
    let secret = sb.secret();
    let out = sb.run(&["logout", sb.key()], "", false);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("revoked the device secret"), "{}", out.stderr);
    assert_eq!(sb.server.with(|s| s.revoked.clone()), std::slice::from_ref(&secret));
    assert_eq!(sb.stored(), None);
    assert_eq!(sb.get(false).stdout, "credentials not found in native keychain\n");
    let again = sb.run(&["logout", sb.key()], "", false);
    assert_eq!(again.code, 0);
    assert!(again.stderr.contains("not logged in"), "{}", again.stderr);

    // docker logout -> erase: local erase only.
    let sb = sb.logged_in();
    let out = sb.run(&["erase"], sb.key(), false);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    assert_eq!(sb.stored(), None);
    assert_eq!(sb.server.with(|s| s.revoked.len()), 1, "erase does not revoke");

    // store is refused for a device registry: its secret comes from login.
    let out =
        sb.run(&["store"], &format!("{{\"ServerURL\":\"{}\",\"Username\":\"x\",\"Secret\":\"y\"}}", sb.key()), false);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("device registry"), "{}", out.stdout);
}

#[test]
fn bad_device_config_fails_every_verb_with_a_clear_error() {
    let sb = Sandbox::new("realm = \"http://registry.example/auth/token\"");
    let out = sb.get(false);
    assert_fails(&out, &["config", "realm", "plain http"], None);
    let out = sb.login(false);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("plain http"), "{}", out.stderr);
}

#[test]
fn on_a_real_secret_service_the_device_secret_lives_in_the_keyring() {
    let session = common::KeyringSession::start();
    let sb = Sandbox::new("");
    sb.server.with(|s| s.auto_approve_at = Some(0));
    let env = [("LATCHKEY_STORE", "keyring"), ("DBUS_SESSION_BUS_ADDRESS", session.address.as_str())];
    let run = |args: &[&str], stdin: &str| {
        let mut child = sb.command(args, false, &env).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        wait(child)
    };

    let out = run(&["login", sb.key()], "");
    assert_eq!(out.code, 0, "stderr: {}\n{}", out.stderr, session.logs());
    let secret = sb.secret();
    let items = session.search_items(&[("service", "latchkey"), ("username", sb.key())]);
    assert_eq!(items.len(), 1, "one Secret Service item for the registry: {items:?}");
    assert_eq!(sb.stored(), None, "nothing in the file store");
    assert!(!sb.path("data").join("credentials.json").exists());

    assert_answer(&run(&["get"], sb.key()), &secret, sb.key());
    let status = run(&["status"], "");
    assert!(status.stdout.contains(&format!("user {ACCOUNT}")), "{}", status.stdout);
    assert!(!status.stdout.contains(&secret) && !status.stderr.contains(&secret));

    let out = run(&["logout", sb.key()], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(session.search_items(&[("service", "latchkey"), ("username", sb.key())]).is_empty());
    assert_eq!(run(&["get"], sb.key()).stdout, "credentials not found in native keychain\n");
}

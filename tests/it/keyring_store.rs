//! The keyring store through the built binary, against a real Secret Service: a private
//! dbus-daemon and gnome-keyring-daemon per test, with HOME and the XDG directories in a
//! temporary directory, so no test ever touches a real keyring.
//!
//! Needs `dbus-daemon` and `dbus-send` (Debian: dbus), `gnome-keyring-daemon` (gnome-keyring)
//! and, for the test that checks other apps' items are left alone,
//! `docker-credential-secretservice` (golang-docker-credential-helpers). A missing tool is a
//! failure that says what to install, never a silent skip.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-latchkey");
const NOT_FOUND: &str = "credentials not found in native keychain";

fn require(tool: &str, package: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed; these tests need a real Secret Service: install it with `apt-get install {package}`"
    );
}

/// A private D-Bus session bus, optionally with an unlocked gnome-keyring on it. Both
/// daemons are killed on drop.
struct Session {
    dir: tempfile::TempDir,
    address: String,
    bus: Child,
    keyring: Option<Child>,
}

impl Session {
    fn bus_only() -> Session {
        require("dbus-daemon", "dbus");
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "data", "config", "cache", "runtime", "latchkey-data"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(bus.stdout.take().unwrap()), &mut line).unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon printed no address: {line:?}");
        Session { dir, address, bus, keyring: None }
    }

    fn with_keyring() -> Session {
        require("gnome-keyring-daemon", "gnome-keyring");
        require("dbus-send", "dbus");
        let mut s = Session::bus_only();
        let mut cmd = Command::new("gnome-keyring-daemon");
        let mut keyring = s
            .env(&mut cmd)
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gnome-keyring-daemon");
        // --unlock reads the new login keyring's password from stdin; it must not be empty.
        keyring.stdin.take().unwrap().write_all(b"test-password").unwrap();
        s.keyring = Some(keyring);
        // Ready when org.freedesktop.secrets is owned and the login collection answers.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = s.latchkey("keyring", &["list"], "");
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "gnome-keyring-daemon did not come up on the private bus: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// Everything a child needs to see this session and nothing of the real user's.
    fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("XDG_RUNTIME_DIR", self.path("runtime"))
            .env("LATCHKEY_DATA_DIR", self.path("latchkey-data"))
    }

    fn latchkey(&self, store: &str, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(BIN);
        self.env(&mut cmd).env("LATCHKEY_STORE", store);
        run(cmd, args, stdin)
    }

    fn store(&self, url: &str, user: &str, secret: &str) {
        let input = serde_json::json!({"ServerURL": url, "Username": user, "Secret": secret}).to_string();
        let out = self.latchkey("keyring", &["store"], &input);
        assert_ok(&out, "store");
    }

    fn get(&self, url: &str) -> Output {
        self.latchkey("keyring", &["get"], url)
    }

    fn get_json(&self, url: &str) -> serde_json::Value {
        let out = self.get(url);
        assert_ok(&out, "get");
        serde_json::from_slice(&out.stdout).expect("get prints JSON")
    }

    fn list(&self) -> serde_json::Value {
        let out = self.latchkey("keyring", &["list"], "");
        assert_ok(&out, "list");
        serde_json::from_slice(&out.stdout).expect("list prints JSON")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(k) = &mut self.keyring {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

fn run(mut cmd: Command, args: &[&str], stdin: &str) -> Output {
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker-credential-latchkey");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): stdout {:?} stderr {:?}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn assert_not_found(out: &Output) {
    assert_eq!(out.status.code(), Some(1), "stderr {:?}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), NOT_FOUND);
}

#[test]
fn store_get_overwrite_erase() {
    let s = Session::with_keyring();
    assert_not_found(&s.get("ghcr.io"));

    s.store("https://ghcr.io", "alice", "first-secret");
    let got = s.get_json("ghcr.io");
    assert_eq!(got["Username"], "alice");
    assert_eq!(got["Secret"], "first-secret");
    // Any spelling of the registry finds it.
    assert_eq!(s.get_json("https://ghcr.io/v2/")["Secret"], "first-secret");

    // A second store replaces the first, whatever the username.
    s.store("ghcr.io", "bob", "second-secret");
    let got = s.get_json("https://ghcr.io");
    assert_eq!(got["Username"], "bob");
    assert_eq!(got["Secret"], "second-secret");
    assert_eq!(s.list(), serde_json::json!({"ghcr.io": "bob"}));

    let out = s.latchkey("keyring", &["erase"], "ghcr.io");
    assert_ok(&out, "erase");
    assert_not_found(&s.get("ghcr.io"));
    // Erasing what is not there succeeds, as docker-credential-secretservice does.
    let out = s.latchkey("keyring", &["erase"], "ghcr.io\n");
    assert_ok(&out, "erase of a missing entry");
    assert!(out.stdout.is_empty());
    assert_eq!(s.list(), serde_json::json!({}));
}

#[test]
fn token_usernames_large_and_unicode_secrets_round_trip() {
    let s = Session::with_keyring();
    s.store("localhost:5000", "<token>", "refresh-token-value");
    let got = s.get_json("localhost:5000");
    assert_eq!(got["Username"], "<token>");
    assert_eq!(got["Secret"], "refresh-token-value");

    let big: String = (0..10 * 1024).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    s.store("big.example.com", "u", &big);
    assert_eq!(s.get_json("big.example.com")["Secret"], big.as_str());

    let unicode = "pässwörd ✓ 秘密 🔑 \"quoted\" \\ tab\t";
    s.store("registry.example.org:443", "ünï", unicode);
    let got = s.get_json("registry.example.org:443");
    assert_eq!(got["Secret"], unicode);
    assert_eq!(got["Username"], "ünï");

    assert_eq!(
        s.list(),
        serde_json::json!({
            "localhost:5000": "<token>",
            "big.example.com": "u",
            "registry.example.org:443": "ünï",
        })
    );
}

#[test]
fn list_and_erase_leave_other_apps_items_alone() {
    require("docker-credential-secretservice", "golang-docker-credential-helpers");
    let s = Session::with_keyring();
    // docker's own helper, on the same keyring, for the same registry.
    let mut docker = Command::new("docker-credential-secretservice");
    s.env(&mut docker);
    let out = run(docker, &["store"], r#"{"ServerURL":"ghcr.io","Username":"docker-user","Secret":"docker-secret"}"#);
    assert_ok(&out, "docker-credential-secretservice store");

    assert_eq!(s.list(), serde_json::json!({}));
    assert_not_found(&s.get("ghcr.io"));

    s.store("ghcr.io", "latchkey-user", "latchkey-secret");
    s.store("quay.io", "q", "quay-secret");
    assert_eq!(s.list(), serde_json::json!({"ghcr.io": "latchkey-user", "quay.io": "q"}));
    assert_eq!(s.get_json("ghcr.io")["Secret"], "latchkey-secret");

    assert_ok(&s.latchkey("keyring", &["erase"], "ghcr.io"), "erase");
    assert_not_found(&s.get("ghcr.io"));
    // docker's item is still there.
    let mut docker = Command::new("docker-credential-secretservice");
    s.env(&mut docker);
    let out = run(docker, &["get"], "ghcr.io");
    assert_ok(&out, "docker-credential-secretservice get");
    assert!(text(&out.stdout).contains("docker-secret"));
}

#[test]
fn keyring_without_dbus_session_fails_naming_the_cause() {
    let s = Session::bus_only();
    let mut cmd = Command::new(BIN);
    s.env(&mut cmd).env_remove("DBUS_SESSION_BUS_ADDRESS").env("LATCHKEY_STORE", "keyring");
    let out = run(cmd, &["get"], "ghcr.io");
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out.stdout);
    assert!(msg.contains("no D-Bus session bus") && msg.contains("DBUS_SESSION_BUS_ADDRESS is not set"), "{msg}");
    assert!(msg.contains("LATCHKEY_STORE=file"), "the error says how to use the file store: {msg}");
}

#[test]
fn auto_without_dbus_session_falls_back_to_the_file_store() {
    let s = Session::bus_only();
    let auto = || {
        let mut cmd = Command::new(BIN);
        s.env(&mut cmd).env_remove("DBUS_SESSION_BUS_ADDRESS").env("LATCHKEY_STORE", "auto");
        cmd
    };
    let out = run(auto(), &["store"], r#"{"ServerURL":"ghcr.io","Username":"u","Secret":"file-secret"}"#);
    assert_ok(&out, "store with auto");
    let notice = text(&out.stderr);
    assert!(notice.contains("no D-Bus session bus") && notice.contains("file store"), "{notice}");
    assert!(Path::new(&s.path("latchkey-data")).read_dir().unwrap().next().is_some(), "the file store was written");

    let out = run(auto(), &["get"], "ghcr.io");
    assert_ok(&out, "get with auto");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["Secret"], "file-secret");
}

#[test]
fn bus_without_secret_service_fails_naming_the_cause() {
    // A bus whose session config may list an activatable org.freedesktop.secrets: latchkey
    // must not start it, and must say there is no Secret Service.
    let s = Session::bus_only();
    let out = s.latchkey("keyring", &["get"], "ghcr.io");
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out.stdout);
    assert!(msg.contains("no Secret Service on the session bus"), "{msg}");

    let out = s.latchkey("auto", &["get"], "ghcr.io");
    assert_not_found(&out);
    assert!(text(&out.stderr).contains("no Secret Service"), "{}", text(&out.stderr));
}

#[test]
fn locked_default_collection_is_reported() {
    let s = Session::with_keyring();
    s.store("ghcr.io", "u", "s");
    // gnome-keyring can answer a new client's first call with UnknownMethod (a race in the
    // daemon; see src/store/keyring/linux.rs): retry that answer.
    let locked = (0..5)
        .map(|attempt| {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
            let mut lock = Command::new("dbus-send");
            s.env(&mut lock).args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.Lock",
                "array:objpath:/org/freedesktop/secrets/collection/login",
            ]);
            run(lock, &[], "")
        })
        .find(|out| !text(&out.stderr).contains("org.freedesktop.DBus.Error.UnknownMethod"));
    assert_ok(&locked.expect("dbus-send Lock kept meeting the gnome-keyring race"), "dbus-send Lock");
    let out = s.get("ghcr.io");
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out.stdout);
    assert!(msg.contains("the default collection is locked"), "{msg}");
    assert!(!msg.contains("credentials not found"), "{msg}");
}

/// Four processes at a time, 300 `get`s each, against one gnome-keyring: every one answers.
/// New clients arriving together are what trip gnome-keyring's client-registration race
/// (see the keyring backend's `open`), so this is where a first call in the wrong order
/// shows up: as an aborted daemon or an UnknownMethod answer.
#[test]
fn four_parallel_loops_of_gets_all_answer() {
    let s = Session::with_keyring();
    s.store("ghcr.io", "alice", "parallel-secret");
    let failures: Vec<String> = std::thread::scope(|scope| {
        let loops: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut failures = Vec::new();
                    for _ in 0..300 {
                        let out = s.get("ghcr.io");
                        if !out.status.success() || !text(&out.stdout).contains("parallel-secret") {
                            failures.push(format!("{}: {:?} {:?}", out.status, text(&out.stdout), text(&out.stderr)));
                        }
                    }
                    failures
                })
            })
            .collect();
        loops.into_iter().flat_map(|l| l.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{} of 1200 gets failed; first: {}", failures.len(), failures[0]);
}

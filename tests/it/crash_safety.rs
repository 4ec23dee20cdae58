//! Crash safety: SIGKILL the binary at random points in the middle of every write path
//! (file-store `store` and `erase`, a static-bearer cache refresh, a device `login`) many times,
//! and check after each kill that the store and the cache are still readable and consistent:
//! the store file parses, every entry holds either its old or its new value, other entries are
//! untouched, the next write leaves no temp file behind, and the next `get` works.
//!
//! No timing assertions: the kill delay is random (seeded; the seed is in every failure
//! message), and every wait is bounded.

use crate::common;
use crate::device_auth;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{TestEnv, parse_get, store_json};

/// xorshift64*: enough randomness for kill points, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
        eprintln!("crash_safety seed: CRASH_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Start `args` with `stdin`, wait `delay`, then SIGKILL it (if it is still running) and reap it.
fn kill_after(env: &TestEnv, args: &[&str], stdin: &[u8], delay: Duration) {
    let mut cmd = env.command(common::LATCHKEY);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child: Child = cmd.spawn().expect("start latchkey");
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin);
    }
    // Busy-wait in small sleeps so short delays are honoured.
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill(); // SIGKILL on Unix
    let reaped = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(reaped.elapsed() < Duration::from_secs(30), "a SIGKILLed child did not exit");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The store file's entries, Server key -> (Username, Secret). The file must parse.
fn store_entries(env: &TestEnv, seed_note: &str) -> BTreeMap<String, (String, String)> {
    let path = env.store_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => panic!("{seed_note}: cannot read {}: {e}", path.display()),
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{seed_note}: store file does not parse ({e}):\n{text}"));
    let creds = v["credentials"].as_object().unwrap_or_else(|| panic!("{seed_note}: no credentials object:\n{text}"));
    creds
        .iter()
        .map(|(k, e)| {
            (k.clone(), (e["Username"].as_str().unwrap().to_owned(), e["Secret"].as_str().unwrap().to_owned()))
        })
        .collect()
}

/// Temp files (`.NAME.tmp.PID`) in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect()
}

#[test]
fn killed_store_and_erase_leave_a_consistent_file_store() {
    let env = TestEnv::new();
    let mut rng = Rng::new();
    let seed = format!("seed {}", rng.0);
    // Bystanders that must survive every kill untouched.
    let bystanders: Vec<(String, String)> =
        (0..20).map(|i| (format!("other{i}.example"), format!("keep-{i}"))).collect();
    for (host, secret) in &bystanders {
        env.latchkey(&["store"], &store_json(host, "u", secret)).assert_success();
    }
    let target = "target.example:5000";
    env.latchkey(&["store"], &store_json(target, "u", "v0")).assert_success();

    let mut current: Option<String> = Some("v0".into());
    let mut kills = 0;
    // What the kills hit, for the log: (old value kept, new value in place, temp file left).
    let (mut kept, mut replaced, mut orphans) = (0, 0, 0);
    for i in 1..=120u64 {
        let erase = i % 3 == 0 && current.is_some();
        let new = format!("v{i}");
        let delay = Duration::from_micros(rng.below(12_000));
        if erase {
            kill_after(&env, &["erase"], target.as_bytes(), delay);
        } else {
            kill_after(&env, &["store"], &store_json(target, "u", &new), delay);
        }
        kills += 1;
        let note = format!("{seed}, iteration {i} ({}, killed after {delay:?})", if erase { "erase" } else { "store" });
        let entries = store_entries(&env, &note);
        for (host, secret) in &bystanders {
            assert_eq!(entries.get(host), Some(&("u".to_owned(), secret.clone())), "{note}: bystander {host} changed");
        }
        let now = entries.get(target).map(|(_, s)| s.clone());
        let allowed = if erase { [current.clone(), None] } else { [current.clone(), Some(new.clone())] };
        assert!(allowed.contains(&now), "{note}: target is {now:?}, expected one of {allowed:?}");
        if now == current {
            kept += 1;
        } else {
            replaced += 1;
        }
        orphans += temp_files(&env.data_dir()).len();
        current = now;

        // The next read works and agrees with the file.
        let out = env.latchkey(&["get"], target.as_bytes());
        match &current {
            Some(secret) => assert_eq!(&parse_get(out.assert_success()).2, secret, "{note}"),
            None => assert_eq!(out.assert_protocol_error(), common::NOT_FOUND, "{note}"),
        }
        // Every few kills, a completed write must clean up what the killed ones left.
        if i % 10 == 0 {
            env.latchkey(&["store"], &store_json(target, "u", &new)).assert_success();
            current = Some(new.clone());
            let left = temp_files(&env.data_dir());
            assert!(left.is_empty(), "{note}: temp files survive a completed write: {left:?}");
        }
    }
    eprintln!("{kills} kills: old value kept {kept}, new value in place {replaced}, temp files orphaned {orphans}");
    assert!(kills >= 100);
    let out = env.latchkey(&["list"], b"unused");
    let listed: BTreeMap<String, String> = serde_json::from_slice(&out.assert_success().stdout).unwrap();
    assert_eq!(listed.len(), bystanders.len() + usize::from(current.is_some()));
}

fn jwt(sub: &str, expires_in: i64) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
    let claims = serde_json::json!({"iss": "t", "sub": sub, "aud": "reg.test", "iat": now, "exp": now + expires_in});
    format!("{header}.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

#[test]
fn killed_cache_refresh_leaves_a_readable_cache() {
    let mut env = TestEnv::new();
    let mut rng = Rng::new();
    let seed = format!("seed {}", rng.0);
    let registry = "reg.test:5000";
    let token_file = env.path("token.jwt");
    let script = env.path("issue.sh");
    // Sleeps a random few ms so the kill lands before, during or after the refresh.
    std::fs::write(&script, format!("#!/bin/sh\nsleep \"$ISSUE_DELAY\"\ncat {:?}\n", token_file)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = env.config_path();
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "[registries.\"{registry}\"]\nmode = \"static-bearer\"\n[registries.\"{registry}\".identity]\nsource = \"command\"\nargv = [{:?}]\ntimeout-secs = 10\n",
            script.display().to_string()
        ),
    )
    .unwrap();
    let cache_tokens = env.path("latchkey/cache/tokens");
    let mut orphans = 0;
    for i in 0..50u64 {
        let token = jwt(&format!("t{i}"), 600);
        std::fs::write(&token_file, &token).unwrap();
        let delay_ms = rng.below(40);
        env.set("ISSUE_DELAY", format!("0.0{:02}", rng.below(30)));
        // Erase drops the cached token, so each kill lands on a cold refresh.
        env.latchkey(&["erase"], registry.as_bytes()).assert_success();
        kill_after(&env, &["get"], registry.as_bytes(), Duration::from_millis(delay_ms));
        orphans += temp_files(&cache_tokens).len();
        let note = format!("{seed}, iteration {i} (killed after {delay_ms} ms)");
        // Every cache entry that exists parses.
        if let Ok(entries) = std::fs::read_dir(&cache_tokens) {
            for e in entries.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".json") && !name.starts_with('.') {
                    let text = std::fs::read(e.path()).unwrap();
                    let v: serde_json::Value = serde_json::from_slice(&text)
                        .unwrap_or_else(|err| panic!("{note}: cache entry {name} does not parse: {err}"));
                    assert_eq!(v["token"].as_str(), Some(token.as_str()), "{note}: cache entry holds another token");
                }
            }
        }
        // The next get works, without waiting out a dead process's lock.
        env.set("ISSUE_DELAY", "0");
        let out = common::run_command(
            {
                let mut c = env.command(common::LATCHKEY);
                c.arg("get");
                c
            },
            registry.as_bytes(),
            Duration::from_secs(60),
        );
        assert_eq!(parse_get(out.assert_success()).2, token, "{note}");
        let left = temp_files(&cache_tokens);
        assert!(left.is_empty(), "{note}: temp files survive a completed refresh: {left:?}");
    }
    eprintln!("50 kills mid-refresh: orphaned temp files seen and cleaned by the next refresh: {orphans}");
}

#[test]
fn killed_device_login_leaves_a_consistent_store() {
    let server = device_auth::AuthServer::start();
    let mut env = TestEnv::new();
    let mut rng = Rng::new();
    let seed = format!("seed {}", rng.0);
    env.set("LATCHKEY_INTERACTIVE", "0").set("BROWSER", "/bin/false");
    let key = server.host.clone();
    std::fs::create_dir_all(env.config_path().parent().unwrap()).unwrap();
    std::fs::write(
        env.config_path(),
        format!("store = \"file\"\n[registries.\"{key}\"]\nmode = \"device\"\n[registries.\"{key}\".device]\nlogin-wait-secs = 30\n"),
    )
    .unwrap();
    env.latchkey(&["store"], &store_json("bystander.example", "u", "keep")).assert_success();
    server.with(|s| {
        s.auto_approve_at = Some(0);
        s.interval = 0;
    });
    // Polling waits at least 1 s, so a login takes a little over a second: kill anywhere in it.
    for i in 0..24u64 {
        let delay = Duration::from_millis(rng.below(1400));
        kill_after(&env, &["login", &key], b"", delay);
        let note = format!("{seed}, iteration {i} (killed after {delay:?})");
        let entries = store_entries(&env, &note);
        assert_eq!(entries.get("bystander.example"), Some(&("u".to_owned(), "keep".to_owned())), "{note}");
        let issued: Vec<String> = server.with(|s| s.devices.iter().map(|d| d.secret.clone()).collect());
        if let Some((user, secret)) = entries.get(&key) {
            assert_eq!(user, device_auth::ACCOUNT, "{note}");
            assert!(issued.contains(secret), "{note}: stored secret was never issued");
            let out = env.latchkey(&["get"], key.as_bytes());
            assert_eq!(parse_get(out.assert_success()).2, *secret, "{note}");
        }
    }
    // A completed login afterwards works and leaves no temp files.
    env.latchkey(&["login", &key], b"").assert_success();
    assert!(temp_files(&env.data_dir()).is_empty(), "{seed}: {:?}", temp_files(&env.data_dir()));
    env.latchkey(&["get"], key.as_bytes()).assert_success();
}

//! Files are trusted only when they could only have been written by the user (issue: trust
//! boundaries, class 2). Each test writes the hostile file itself: a group- or
//! world-writable config, store or cache, another user's file (as root, which CI is), a key
//! others can read, symlinks planted where latchkey writes, an unwritable cache.

// Unix only: file modes, owners and symlinks.
#![cfg(unix)]

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use common::TestEnv;

const REGISTRY: &str = "reg.test:5000";

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A structurally valid JWT (latchkey inspects, it does not verify signatures).
fn jwt(aud: &str, expires_in: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let claims = serde_json::json!({"iss": "t", "sub": "s", "aud": aud, "iat": now, "exp": now + expires_in});
    format!("{}.{}.c2ln", b64(br#"{"alg":"ES256","typ":"JWT"}"#), b64(claims.to_string().as_bytes()))
}

fn write_config(env: &TestEnv, text: &str) {
    let path = env.config_path();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    chmod(&path, 0o600);
}

/// A config whose registry's token comes from a counting `command` source.
fn counting_command_config(env: &TestEnv, token: &str) -> std::path::PathBuf {
    let script = env.path("issue.sh");
    let counter = env.path("calls");
    fs::write(&script, format!("#!/bin/sh\necho call >> {}\necho '{token}'\n", counter.display())).unwrap();
    chmod(&script, 0o700);
    write_config(
        env,
        &format!(
            "[registries.\"{REGISTRY}\"]\nmode = \"static-bearer\"\n[registries.\"{REGISTRY}\".identity]\nsource = \"command\"\nargv = [{:?}]\n",
            script.display().to_string()
        ),
    );
    counter
}

fn calls(counter: &Path) -> usize {
    fs::read_to_string(counter).map(|t| t.lines().count()).unwrap_or(0)
}

/// The refusal names the path and the command that fixes it, on stdout (the protocol's
/// error channel) with exit 1.
fn assert_refused(out: &common::Output, path: &Path, fix: &str) {
    let message = out.assert_protocol_error();
    assert!(message.contains(&path.display().to_string()), "names {}:\n{out}", path.display());
    assert!(message.contains(fix), "says `{fix}`:\n{out}");
}

#[test]
fn a_config_others_can_write_is_refused() {
    let env = TestEnv::new();
    let counter = counting_command_config(&env, &jwt("a", 600));
    let config = env.config_path();
    env.latchkey(&["get"], REGISTRY.as_bytes()).assert_success();

    chmod(&config, 0o664);
    assert_refused(&env.latchkey(&["get"], REGISTRY.as_bytes()), &config, "chmod go-w");
    chmod(&config, 0o606);
    assert_refused(&env.latchkey(&["get"], REGISTRY.as_bytes()), &config, "chmod go-w");
    chmod(&config, 0o600);
    let dir = config.parent().unwrap();
    chmod(dir, 0o777);
    assert_refused(&env.latchkey(&["get"], REGISTRY.as_bytes()), dir, "chmod go-w");
    let status = env.latchkey(&["status"], b"");
    assert_ne!(status.code, Some(0), "status reports it too:\n{status}");
    chmod(dir, 0o755);
    env.latchkey(&["get"], REGISTRY.as_bytes()).assert_success();
    assert_eq!(calls(&counter), 1, "the program a refused config names never ran (the second get is cached)");
}

#[test]
fn another_users_config_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to give a file to another user (CI runs as root)");
        return;
    }
    let env = TestEnv::new();
    let counter = counting_command_config(&env, &jwt("a", 600));
    let config = env.config_path();
    std::os::unix::fs::chown(&config, Some(65534), Some(65534)).unwrap();
    let out = env.latchkey(&["get"], REGISTRY.as_bytes());
    assert_refused(&out, &config, "chown");
    assert!(out.assert_protocol_error().contains("owned by uid 65534"), "{out}");
    assert_eq!(calls(&counter), 0, "root never runs what another user's config names");
}

#[test]
fn a_store_others_can_write_is_refused_and_left_alone() {
    let env = TestEnv::new();
    let stored = common::store_json("ghcr.io", "me", "store-secret-1");
    env.latchkey(&["store"], &stored).assert_success();
    let data = env.data_dir();
    let file = env.store_file();
    let before = fs::read(&file).unwrap();

    chmod(&file, 0o666);
    assert_refused(&env.latchkey(&["get"], b"ghcr.io"), &file, "chmod go-w");
    let other = common::store_json("ghcr.io", "attacker", "x");
    assert_refused(&env.latchkey(&["store"], &other), &file, "chmod go-w");
    chmod(&file, 0o600);
    chmod(&data, 0o777);
    assert_refused(&env.latchkey(&["store"], &other), &data, "chmod go-w");
    assert_refused(&env.latchkey(&["list"], b""), &data, "chmod go-w");
    chmod(&data, 0o700);
    assert_eq!(fs::read(&file).unwrap(), before, "nothing was written while refused");

    // A symlink planted as the store file is refused, and its target is not touched.
    let victim = env.path("victim.json");
    fs::write(&victim, b"{\"victim\": true}\n").unwrap();
    fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&victim, &file).unwrap();
    assert_refused(&env.latchkey(&["store"], &stored), &file, "symbolic link");
    assert_eq!(fs::read(&victim).unwrap(), b"{\"victim\": true}\n");
}

#[test]
fn a_lock_symlink_never_creates_a_file_elsewhere() {
    let env = TestEnv::new();
    env.latchkey(&["store"], &common::store_json("ghcr.io", "me", "s")).assert_success();
    let lock = env.data_dir().join("credentials.lock");
    fs::remove_file(&lock).unwrap();
    let elsewhere = env.path("created-through-symlink");
    std::os::unix::fs::symlink(&elsewhere, &lock).unwrap();
    let out = env.latchkey(&["store"], &common::store_json("ghcr.io", "me", "s2"));
    out.assert_protocol_error();
    assert!(!elsewhere.exists(), "the lock's symlink was followed:\n{out}");
}

#[test]
fn a_private_key_others_can_read_is_refused() {
    let env = TestEnv::new();
    let key = common::private_copy(
        &env,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support_registry/keys/p256_pkcs8.pem"),
        "signing.pem",
    );
    write_config(
        &env,
        &format!(
            "[registries.\"{REGISTRY}\"]\nmode = \"static-bearer\"\n[registries.\"{REGISTRY}\".identity]\nsource = \"mint\"\nalgorithm = \"ES256\"\nprivate-key-file = {:?}\nissuer = \"i\"\nsubject = \"s\"\naudience = \"a\"\n",
            key.display().to_string()
        ),
    );
    env.latchkey(&["get"], REGISTRY.as_bytes()).assert_success();
    env.latchkey(&["erase"], REGISTRY.as_bytes()).assert_success();
    chmod(&key, 0o644);
    assert_refused(&env.latchkey(&["get"], REGISTRY.as_bytes()), &key, "chmod 600");
    chmod(&key, 0o620);
    assert_refused(&env.latchkey(&["get"], REGISTRY.as_bytes()), &key, "chmod go-w");
}

#[test]
fn a_cache_entry_others_could_write_is_never_served() {
    let env = TestEnv::new();
    let good = jwt("a", 600);
    let counter = counting_command_config(&env, &good);
    let get = || common::parse_get(&env.latchkey(&["get"], REGISTRY.as_bytes())).2;
    assert_eq!(get(), good);
    assert_eq!(get(), good);
    assert_eq!(calls(&counter), 1, "served from the cache");
    let tokens = env.path("latchkey/cache/tokens");
    let entry = fs::read_dir(&tokens)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a cache entry");

    // Another user (anyone, if world-writable) could have planted a token: ask the source.
    let planted = jwt("a", 3000);
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&entry).unwrap()).unwrap();
    record["token"] = planted.clone().into();
    fs::write(&entry, record.to_string()).unwrap();
    chmod(&entry, 0o666);
    assert_eq!(get(), good, "a world-writable entry is not served");
    assert_eq!(calls(&counter), 2);
    assert_eq!(fs::metadata(&entry).unwrap().permissions().mode() & 0o777, 0o600, "replaced by a private one");

    // An entry that is no longer a usable JWT for this source is asked again too.
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&entry).unwrap()).unwrap();
    record["token"] = "not-a-jwt".into();
    fs::write(&entry, record.to_string()).unwrap();
    assert_eq!(get(), good);
    assert_eq!(calls(&counter), 3);
}

#[test]
fn an_unwritable_cache_still_answers_with_a_warning() {
    let env = TestEnv::new();
    let good = jwt("a", 600);
    let counter = counting_command_config(&env, &good);
    // The cache dir cannot be created: a file stands where it would go (as on a read-only
    // or full disk, the write fails).
    let cache = env.path("latchkey/cache");
    fs::create_dir_all(cache.parent().unwrap()).unwrap();
    fs::write(&cache, b"not a directory").unwrap();
    for round in 1..=2 {
        let out = env.latchkey(&["get"], REGISTRY.as_bytes());
        out.assert_success();
        assert_eq!(common::parse_get(&out).2, good);
        assert!(out.stderr_str().contains("warning") && out.stderr_str().contains("cache"), "{out}");
        assert_eq!(calls(&counter), round, "without a cache, each get asks the source");
    }
}

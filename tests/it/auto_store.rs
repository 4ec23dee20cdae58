//! `store = "auto"` never hides a credential: what was stored while the keyring was
//! unreachable (no D-Bus session over SSH, in CI) lands in the file store, and once a real
//! gnome-keyring Secret Service answers, `get` still finds it, `list` and `status` show it
//! (with the store it is in), and `erase` removes it from both stores.
//!
//! Needs `dbus-daemon`, `dbus-send` (dbus) and `gnome-keyring-daemon` (gnome-keyring).
#![cfg(target_os = "linux")]

use crate::common;

use std::collections::BTreeMap;

use common::*;

/// An environment with `store = "auto"` that talks to `session`.
fn auto_env(session: &KeyringSession) -> TestEnv {
    let mut env = TestEnv::new();
    env.with_keyring(session).store("auto");
    env
}

fn with_store(env: &TestEnv, store: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = env.command(latchkey());
    cmd.env("LATCHKEY_STORE", store).args(args);
    run_command(cmd, stdin, DEFAULT_TIMEOUT)
}

/// `list` in `store` (`auto`, `file` or `keyring`), as server URL -> username.
fn list(env: &TestEnv, store: &str) -> BTreeMap<String, String> {
    let out = with_store(env, store, &["list"], b"");
    out.assert_success();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("list is not a JSON object ({e}):\n{out}"))
}

/// `status --json`'s stored rows as (registry, username, store, note).
fn status_rows(env: &TestEnv) -> Vec<(String, String, String, Option<String>)> {
    let out = env.latchkey(&["status", "--json"], b"");
    out.assert_success();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    let s = |r: &serde_json::Value, f: &str| r.get(f).and_then(|x| x.as_str()).map(str::to_owned);
    v["registries"]
        .as_array()
        .unwrap_or_else(|| panic!("no registries:\n{out}"))
        .iter()
        .map(|r| {
            (
                s(r, "registry").unwrap(),
                s(r, "username").unwrap_or_default(),
                s(r, "store").unwrap_or_default(),
                s(r, "note"),
            )
        })
        .collect()
}

fn latchkey_items(session: &KeyringSession, key: &str) -> usize {
    session.search_items(&[("service", "latchkey"), ("username", key)]).len()
}

#[test]
fn credentials_stored_without_the_keyring_stay_visible_once_it_answers() {
    let session = KeyringSession::start();
    let mut env = auto_env(&session);

    // No D-Bus session at all (SSH, CI), then one that does not answer: both fall back.
    env.remove("DBUS_SESSION_BUS_ADDRESS");
    let out = env.latchkey(&["store"], &store_json("https://ghcr.io", "ci-bot", "file-secret-1"));
    out.assert_success();
    assert!(out.stderr_str().contains("OS keyring is not usable"), "no fallback notice:\n{out}");
    env.set("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", env.path("no-such-bus").display()));
    env.latchkey(&["store"], &store_json("quay.io", "robot", "file-secret-2")).assert_success();
    let in_file = list(&env, "file");
    assert_eq!(in_file.get("https://ghcr.io").map(String::as_str), Some("ci-bot"));
    assert_eq!(in_file.get("quay.io").map(String::as_str), Some("robot"));

    // The keyring answers now; it holds nothing of these.
    env.set("DBUS_SESSION_BUS_ADDRESS", &session.address);
    assert!(list(&env, "keyring").is_empty());
    assert_eq!(latchkey_items(&session, "ghcr.io"), 0);

    let got = env.latchkey(&["get"], b"ghcr.io");
    got.assert_success();
    assert_eq!(parse_get(&got), ("ghcr.io".into(), "ci-bot".into(), "file-secret-1".into()));
    assert!(got.stderr.is_empty(), "get from the file store is quiet:\n{got}");
    // Answered where it is, not moved: it must still be there when the keyring is not.
    assert_eq!(list(&env, "file").len(), 2);
    assert!(list(&env, "keyring").is_empty());

    let listed = list(&env, "auto");
    assert_eq!(listed, in_file, "auto lists the file store's entries");

    let rows = status_rows(&env);
    assert!(rows.contains(&("ghcr.io".into(), "ci-bot".into(), "file".into(), None)), "{rows:?}");
    assert!(rows.contains(&("quay.io".into(), "robot".into(), "file".into(), None)), "{rows:?}");
    let human = env.latchkey(&["status"], b"");
    human.assert_success();
    let text = human.stdout_str();
    assert!(
        text.lines().any(|l| l.contains("ghcr.io") && l.contains("user ci-bot") && l.contains("in file store")),
        "{human}"
    );
    assert!(text.contains("file store at"), "status names both stores:\n{human}");
    let json = env.latchkey(&["status", "--json"], b"");
    assert!(json.stdout_str().contains(r#""server_url": "https://ghcr.io""#), "{json}");
    for out in [&human, &json] {
        assert!(!out.stdout_str().contains("file-secret"), "status shows a secret:\n{out}");
    }

    // A new login with the keyring answering goes to the keyring and retires the file copy.
    env.latchkey(&["store"], &store_json("quay.io", "robot2", "keyring-secret-2")).assert_success();
    assert_eq!(latchkey_items(&session, "quay.io"), 1);
    assert!(!list(&env, "file").contains_key("quay.io"), "the older file copy would resurface without the keyring");
    let got = env.latchkey(&["get"], b"quay.io");
    assert_eq!(parse_get(&got).2, "keyring-secret-2", "{got}");

    // Erase removes from both stores.
    env.latchkey(&["erase"], b"ghcr.io").assert_success();
    env.latchkey(&["erase"], b"quay.io").assert_success();
    for key in ["ghcr.io", "quay.io"] {
        assert_eq!(env.latchkey(&["get"], key.as_bytes()).assert_protocol_error(), NOT_FOUND);
        assert_eq!(latchkey_items(&session, key), 0, "{key} left in the keyring");
    }
    assert!(list(&env, "file").is_empty());
    assert!(list(&env, "keyring").is_empty());
    assert!(list(&env, "auto").is_empty());
}

#[test]
fn the_keyring_wins_when_both_stores_hold_a_key_and_erase_removes_both() {
    let session = KeyringSession::start();
    let env = auto_env(&session);
    with_store(&env, "file", &["store"], &store_json("ghcr.io", "file-user", "file-secret")).assert_success();
    with_store(&env, "keyring", &["store"], &store_json("https://ghcr.io", "keyring-user", "keyring-secret"))
        .assert_success();

    let got = env.latchkey(&["get"], b"ghcr.io");
    got.assert_success();
    assert_eq!(parse_get(&got), ("ghcr.io".into(), "keyring-user".into(), "keyring-secret".into()));
    assert_eq!(list(&env, "auto"), BTreeMap::from([("https://ghcr.io".to_owned(), "keyring-user".to_owned())]));

    let rows = status_rows(&env);
    assert_eq!(rows.len(), 2, "one row per store: {rows:?}");
    assert_eq!(rows[0], ("ghcr.io".into(), "keyring-user".into(), "keyring".into(), None));
    assert_eq!((&rows[1].0, &rows[1].1, &rows[1].2), (&"ghcr.io".into(), &"file-user".into(), &"file".into()));
    assert!(rows[1].3.as_deref().is_some_and(|n| n.contains("not used")), "{rows:?}");

    env.latchkey(&["erase"], b"ghcr.io").assert_success();
    assert_eq!(env.latchkey(&["get"], b"ghcr.io").assert_protocol_error(), NOT_FOUND);
    assert_eq!(latchkey_items(&session, "ghcr.io"), 0);
    assert!(list(&env, "file").is_empty());
    assert!(list(&env, "keyring").is_empty());
}

#[test]
fn with_no_file_store_auto_is_just_the_keyring() {
    let session = KeyringSession::start();
    let env = auto_env(&session);
    assert_eq!(env.latchkey(&["get"], b"ghcr.io").assert_protocol_error(), NOT_FOUND);
    env.latchkey(&["store"], &store_json("ghcr.io", "u", "s")).assert_success();
    assert_eq!(list(&env, "auto").len(), 1);
    assert_eq!(status_rows(&env), [("ghcr.io".into(), "u".into(), "keyring".into(), None)]);
    env.latchkey(&["erase"], b"ghcr.io").assert_success();
    assert!(!env.store_file().exists(), "auto with the keyring never creates the file store");
    assert_eq!(latchkey_items(&session, "ghcr.io"), 0);
}

/// With `store = "keyring"` alone, credentials left in the file store are invisible to every
/// client: `status` names them as a problem (exit 1) and says how to use or remove them.
#[test]
fn status_names_credentials_the_keyring_only_store_leaves_unused() {
    let session = KeyringSession::start();
    let env = auto_env(&session);
    with_store(&env, "file", &["store"], &common::store_json("left.example", "lefty", "left-secret-1"))
        .assert_success();
    let out = with_store(&env, "keyring", &["status"], b"");
    assert_eq!(out.code, Some(1), "{out}");
    let text = out.stdout_str();
    assert!(text.contains("left.example") && text.contains("store = \"auto\""), "{out}");
    assert!(!text.contains("left-secret-1") && !out.stderr_str().contains("left-secret-1"), "{out}");
    // Once erased from the file store, nothing is left to report.
    with_store(&env, "file", &["erase"], b"left.example").assert_success();
    let out = with_store(&env, "keyring", &["status"], b"");
    assert!(!out.stdout_str().contains("left.example"), "{out}");
}

//! Bad input and bad surroundings: every case must end in exit 1 with a clear message on
//! stdout (where clients read it), nothing on stdout that looks like credentials, no
//! secret on stdout or stderr, no panic, and the store left exactly as it was.

use crate::common;

use std::fs;
use std::path::Path;

use common::*;

/// A credential stored before each case; no failure may print it.
const SEED_URL: &str = "seed.example";
const SEED_SECRET: &str = "seed-SECRET-4f1d9c";

const VERBS: &[&str] = &["get", "store", "erase", "list"];

/// An env whose file store holds the seed credential.
fn seeded() -> TestEnv {
    let mut env = TestEnv::new();
    env.store("file");
    env.latchkey(&["store"], &store_json(SEED_URL, "seed-user", SEED_SECRET)).assert_success();
    env
}

/// Exit 1, one line on stdout, no panic, no credentials on stdout, none of `secrets` (nor
/// the seed secret) on stdout or stderr. Returns the message.
fn assert_clean_failure(out: &Output, secrets: &[&str]) -> String {
    let msg = out.assert_protocol_error();
    let (stdout, stderr) = (out.stdout_str(), out.stderr_str());
    assert!(
        !stdout.contains("\"Secret\"") && !stdout.contains("\"Username\"") && !stdout.starts_with('{'),
        "stdout looks like credentials:\n{out}"
    );
    for secret in secrets.iter().chain([&SEED_SECRET]) {
        assert!(!stdout.contains(secret), "stdout shows the secret {secret:?}:\n{out}");
        assert!(!stderr.contains(secret), "stderr shows the secret {secret:?}:\n{out}");
    }
    msg
}

/// The input each verb gets in the "surroundings are broken" cases.
fn ordinary_stdin(verb: &str) -> Vec<u8> {
    match verb {
        "store" => store_json("new.example", "new-user", "new-SECRET-77"),
        "list" => b"unused".to_vec(),
        _ => SEED_URL.as_bytes().to_vec(),
    }
}

fn snapshot(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

fn temp_files_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_seed_intact(env: &TestEnv) {
    let got = env.latchkey(&["get"], SEED_URL.as_bytes());
    got.assert_success();
    assert_eq!(parse_get(&got).2, SEED_SECRET);
}

#[test]
fn two_mib_of_stdin_is_refused_and_changes_nothing() {
    let env = seeded();
    let before = snapshot(&env.store_file());
    let big_secret = "BIGSECRET-".repeat(2 * 1024 * 1024 / 10);
    let big_store = store_json("big.example", "big-user", &big_secret);
    assert!(big_store.len() > 2 << 20);
    // A URL padded to 2 MiB would name the seed once trimmed: it must still be refused.
    let mut padded_url = SEED_URL.as_bytes().to_vec();
    padded_url.resize(2 << 20, b' ');
    let garbage = vec![b'a'; 2 << 20];
    for (verb, stdin) in [("store", &big_store), ("get", &padded_url), ("erase", &padded_url), ("get", &garbage)] {
        let out = env.latchkey(&[verb], stdin);
        let msg = assert_clean_failure(&out, &["BIGSECRET-BIGSECRET"]);
        assert!(msg.contains("larger than"), "{verb}: unclear message:\n{out}");
    }
    assert_eq!(snapshot(&env.store_file()), before, "the store changed");
    assert_seed_intact(&env);
    assert_eq!(env.latchkey(&["get"], b"big.example").assert_protocol_error(), NOT_FOUND);
}

#[test]
fn invalid_utf8_is_refused() {
    let env = seeded();
    let before = snapshot(&env.store_file());
    for verb in ["get", "erase"] {
        let out = env.latchkey(&[verb], b"seed.example\xff\n");
        let msg = assert_clean_failure(&out, &[]);
        assert!(msg.contains("UTF-8"), "{verb}: unclear message:\n{out}");
    }
    for stdin in [
        &b"{\"ServerURL\":\"utf.example\",\"Username\":\"u\",\"Secret\":\"utf-SECRET-\xff\"}"[..],
        &b"{\"ServerURL\":\"utf\xfe.example\",\"Username\":\"u\",\"Secret\":\"utf-SECRET-2\"}"[..],
        &b"{\"ServerURL\":\"utf.example\",\"Username\":\"\xc3\",\"Secret\":\"utf-SECRET-3\"}"[..],
    ] {
        let out = env.latchkey(&["store"], stdin);
        let msg = assert_clean_failure(&out, &["utf-SECRET"]);
        assert!(msg.starts_with("invalid credentials JSON on stdin"), "unclear message:\n{out}");
    }
    assert_eq!(snapshot(&env.store_file()), before, "the store changed");
    assert_seed_intact(&env);
}

/// Unreadable even for root: a directory where the store file should be, and a regular
/// file where the store directory should be.
#[test]
fn unreadable_store_is_a_clear_error() {
    // credentials.json is a directory.
    let env = seeded();
    let file = env.store_file();
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    fs::write(file.join("keep"), b"x").unwrap();
    for verb in VERBS {
        let out = env.latchkey(&[verb], &ordinary_stdin(verb));
        let msg = assert_clean_failure(&out, &["new-SECRET-77"]);
        assert!(msg.contains(&file.display().to_string()), "{verb}: the message does not name the file:\n{out}");
    }
    assert!(file.is_dir() && fs::read(file.join("keep")).unwrap() == b"x", "the directory was touched");

    // The data "directory" is a regular file.
    let mut env = TestEnv::new();
    env.store("file");
    let not_a_dir = env.path("not-a-dir");
    fs::write(&not_a_dir, b"precious").unwrap();
    env.set("LATCHKEY_DATA_DIR", &not_a_dir);
    for verb in VERBS {
        let out = env.latchkey(&[verb], &ordinary_stdin(verb));
        let msg = assert_clean_failure(&out, &["new-SECRET-77"]);
        assert!(msg.contains(&not_a_dir.display().to_string()), "{verb}: the message does not name the path:\n{out}");
    }
    assert_eq!(fs::read(&not_a_dir).unwrap(), b"precious");
}

const CORRUPT_FILES: &[(&str, &[u8])] = &[
    ("not JSON", b"{not json"),
    ("empty", b""),
    ("truncated", b"{\"version\":1,\"credentials\":{\"ghcr.io\":{\"ServerURL\":\"ghcr.io\",\"Username\":\"u\",\"Sec"),
    ("binary", b"\x00\x01\x02\xff\xfe"),
    ("wrong shape", b"[1,2,3]\n"),
    ("wrong field type", b"{\"version\":1,\"credentials\":{\"ghcr.io\":{\"ServerURL\":1,\"Username\":\"u\",\"Secret\":\"s\"}}}"),
    ("unknown field", b"{\"version\":1,\"credentials\":{},\"extra\":true}"),
    ("future version", b"{\"version\":99,\"credentials\":{}}"),
    ("unnormalised key", b"{\"version\":1,\"credentials\":{\"HTTPS://GHCR.IO/\":{\"ServerURL\":\"ghcr.io\",\"Username\":\"u\",\"Secret\":\"s\"}}}"),
];

#[test]
fn corrupt_store_file_is_an_error_and_is_kept_byte_identical() {
    for (what, contents) in CORRUPT_FILES {
        let env = seeded();
        let file = env.store_file();
        fs::write(&file, contents).unwrap();
        for verb in VERBS {
            let out = env.latchkey(&[verb], &ordinary_stdin(verb));
            let msg = assert_clean_failure(&out, &["new-SECRET-77"]);
            assert!(
                msg.contains(&file.display().to_string()) && msg.contains("corrupt"),
                "{what}, {verb}: the message does not say the file is corrupt and where:\n{out}"
            );
            assert_eq!(fs::read(&file).unwrap(), *contents, "{what}, {verb}: the corrupt file was rewritten");
        }
        assert!(temp_files_in(&env.data_dir()).is_empty(), "{what}: temp files left behind");
    }
}

/// A corrupt store still holds secrets; the error must not quote them.
#[test]
fn corrupt_store_file_errors_do_not_echo_its_contents() {
    let cases: &[&[u8]] = &[
        // A hand-edited store: a bare token where an entry belongs.
        b"{\"version\":1,\"credentials\":{\"ghcr.io\":\"file-SECRET-1\"}}",
        b"{\"version\":\"file-SECRET-2\",\"credentials\":{}}",
        b"{\"version\":1,\"credentials\":{\"ghcr.io\":{\"ServerURL\":\"ghcr.io\",\"Username\":\"u\",\"Secret\":[\"file-SECRET-3\"]}}}",
        b"{\"version\":1,\"credentials\":{\"ghcr.io\":{\"ServerURL\":\"ghcr.io\",\"Username\":\"u\",\"Secret\":\"file-SECRET-4\",\"Password\":\"file-SECRET-5\"}}}",
    ];
    let mut failures = Vec::new();
    for contents in cases {
        let env = seeded();
        fs::write(env.store_file(), contents).unwrap();
        for verb in VERBS {
            let out = env.latchkey(&[verb], &ordinary_stdin(verb));
            if let Err(e) = std::panic::catch_unwind(|| assert_clean_failure(&out, &["file-SECRET"])) {
                let text = e.downcast_ref::<String>().cloned().unwrap_or_default();
                failures.push(format!("{}: {text}", String::from_utf8_lossy(contents)));
            }
        }
    }
    assert!(failures.is_empty(), "{} case(s) leaked:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn bad_config_file_names_file_and_line() {
    let cases: &[(&str, &str)] = &[
        ("store = \"file\"\n\n[registries.\"ghcr.io\"]\nmdoe = \"stored\"\n", "line 4"),
        ("store = \n", "line 1"),
        ("# a comment\nstore = \"floppy\"\n", "line 2"),
        ("[registries.\"ghcr.io\"]\nmode = \"stored\"\n[registries.\"ftp://bad\"]\n", "ftp://bad"),
    ];
    for (text, locator) in cases {
        let env = seeded();
        let before = snapshot(&env.store_file());
        let config = env.config_path();
        fs::create_dir_all(config.parent().unwrap()).unwrap();
        fs::write(&config, text).unwrap();
        for verb in VERBS {
            let out = env.latchkey(&[verb], &ordinary_stdin(verb));
            let msg = assert_clean_failure(&out, &["new-SECRET-77"]);
            assert!(
                msg.contains(&config.display().to_string()) && msg.contains(locator),
                "{verb} with config {text:?}: the message does not name the file and {locator:?}:\n{out}"
            );
        }
        // `version` does not need the config.
        env.latchkey(&["version"], b"").assert_success();
        assert_eq!(snapshot(&env.store_file()), before, "the store changed");
    }

    // A config path that cannot be read (a directory).
    let env = seeded();
    fs::create_dir_all(env.config_path()).unwrap();
    for verb in VERBS {
        let out = env.latchkey(&[verb], &ordinary_stdin(verb));
        let msg = assert_clean_failure(&out, &["new-SECRET-77"]);
        assert!(msg.contains(&env.config_path().display().to_string()), "{verb}:\n{out}");
    }
}

#[test]
fn bogus_store_kind_is_refused() {
    let mut env = seeded();
    env.store("bogus");
    for verb in VERBS {
        let out = env.latchkey(&[verb], &ordinary_stdin(verb));
        let msg = assert_clean_failure(&out, &["new-SECRET-77"]);
        assert!(msg.contains("LATCHKEY_STORE") && msg.contains("bogus"), "{verb}: unclear message:\n{out}");
    }
    env.store("file");
    assert_seed_intact(&env);
    assert_eq!(env.latchkey(&["get"], b"new.example").assert_protocol_error(), NOT_FOUND);
}

const INVALID_URLS: &[&str] =
    &["ftp://x", "user:pw@host", "https://u:pw-SECRET-9@ghcr.io/v2/", "x .io", ":5000", "https://"];

#[test]
fn invalid_server_urls_are_refused() {
    let env = seeded();
    let before = snapshot(&env.store_file());
    for url in INVALID_URLS {
        for verb in ["get", "erase", "store"] {
            let stdin = if verb == "store" { store_json(url, "u", "url-SECRET-3") } else { url.as_bytes().to_vec() };
            let out = env.latchkey(&[verb], &stdin);
            let msg = out.assert_protocol_error();
            assert!(msg.starts_with("invalid registry server URL"), "{verb} {url:?}: unclear message:\n{out}");
            assert!(!out.stdout_str().contains("url-SECRET") && !out.stderr_str().contains("url-SECRET"), "{out}");
        }
    }
    assert_eq!(snapshot(&env.store_file()), before, "the store changed");
}

/// A server URL with userinfo carries a password in the wrong place; the error that
/// refuses it must not print that password (docker shows the helper's stdout to the user
/// and to CI logs).
#[test]
fn invalid_server_url_errors_do_not_echo_passwords() {
    let env = seeded();
    let mut failures = Vec::new();
    for (url, password) in [("user:pw@host", "pw@"), ("https://u:pw-SECRET-9@ghcr.io/v2/", "pw-SECRET-9")] {
        for verb in ["get", "erase", "store"] {
            let stdin = if verb == "store" { store_json(url, "u", "s") } else { url.as_bytes().to_vec() };
            let out = env.latchkey(&[verb], &stdin);
            out.assert_protocol_error();
            if out.stdout_str().contains(password) || out.stderr_str().contains(password) {
                failures.push(format!("{verb} {url:?} printed the password:\n{out}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// LATCHKEY_STORE=keyring with no session bus: a clear error naming the way out, quickly.
#[test]
fn keyring_store_without_a_session_bus_is_a_clear_error() {
    let mut env = TestEnv::new();
    env.store("keyring");
    assert!(env.var("DBUS_SESSION_BUS_ADDRESS").is_none());
    for verb in VERBS {
        let out = env.latchkey(&[verb], &ordinary_stdin(verb));
        let msg = assert_clean_failure(&out, &["new-SECRET-77"]);
        assert!(msg.contains("keyring") && msg.contains("LATCHKEY_STORE=file"), "{verb}: unclear message:\n{out}");
    }
    assert!(!env.store_file().exists(), "the keyring store fell back to the file store");
}

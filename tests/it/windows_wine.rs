//! The Windows build, run under Wine (issue 13): the protocol conversation on Credential
//! Manager and on the file store, byte-compared with the Linux build's answers on its file
//! store; nothing of latchkey's left in Credential Manager after the erases; `auto` picks
//! Credential Manager; concurrent stores and gets of a chunked secret.
//!
//! Needs `LATCHKEY_WINE_EXE` (the Windows .exe) and a Wine prefix with a running
//! wineserver: `scripts/test.sh` builds the .exe and sources `scripts/cross/wine-env.sh`.
//! Without `LATCHKEY_WINE_EXE` every test here says so and passes: it is the one switch,
//! so a run that should have covered Windows shows the message.

#![cfg(target_os = "linux")]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::*;

/// Wine's first call in a fresh prefix can take seconds; a hang still fails.
const WINE_TIMEOUT: Duration = Duration::from_secs(120);

/// Credential Manager is one per Wine prefix: the tests that use it take turns.
static CREDENTIAL_MANAGER: Mutex<()> = Mutex::new(());

fn credential_manager() -> MutexGuard<'static, ()> {
    CREDENTIAL_MANAGER.lock().unwrap_or_else(|e| e.into_inner())
}

fn wine_exe() -> Option<PathBuf> {
    match std::env::var_os("LATCHKEY_WINE_EXE").filter(|v| !v.is_empty()) {
        Some(exe) => {
            let exe = PathBuf::from(exe);
            assert!(exe.is_file(), "LATCHKEY_WINE_EXE={} is not a file", exe.display());
            Some(exe)
        }
        None => {
            eprintln!(
                "SKIPPED: LATCHKEY_WINE_EXE is not set (scripts/test.sh sets it after building the Windows .exe \
                 and starting Wine with scripts/cross/wine-env.sh)"
            );
            None
        }
    }
}

/// A Unix path as the Windows program sees it: Wine maps `/` to drive Z:.
fn windows_path(p: &Path) -> String {
    format!("Z:{}", p.display().to_string().replace('/', "\\"))
}

/// The Windows .exe with its own config, cache and data dirs, on one store kind.
struct Wine {
    exe: PathBuf,
    dir: tempfile::TempDir,
    store: &'static str,
}

impl Wine {
    fn new(exe: &Path, store: &'static str) -> Wine {
        let dir = tempfile::tempdir().unwrap();
        // LATCHKEY_CONFIG must name a file that exists (a missing one is an error).
        std::fs::write(dir.path().join("config.toml"), "").unwrap();
        Wine { exe: exe.to_path_buf(), dir, store }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("wine");
        cmd.arg(&self.exe).args(args);
        let d = self.dir.path();
        cmd.env("LATCHKEY_STORE", self.store)
            .env("LATCHKEY_CONFIG", windows_path(&d.join("config.toml")))
            .env("LATCHKEY_DATA_DIR", windows_path(&d.join("data")))
            .env("LATCHKEY_CACHE_DIR", windows_path(&d.join("cache")))
            .env("WINEDEBUG", "-all")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        cmd
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_command(self.command(args), stdin, WINE_TIMEOUT)
    }
}

/// Every Credential Manager credential latchkey owns (`latchkey:...`, parts included), as
/// Wine keeps them: keys of HKCU\Software\Wine\Credential Manager.
fn latchkey_credentials() -> Vec<String> {
    let mut cmd = Command::new("wine");
    cmd.args(["reg", "query", r"HKCU\Software\Wine\Credential Manager"]).env("WINEDEBUG", "-all");
    let out = run_command(cmd, b"", WINE_TIMEOUT);
    // No key at all (nothing was ever stored) is an empty list.
    if out.code != Some(0) {
        return Vec::new();
    }
    let mut names: Vec<String> = out
        .stdout_str()
        .lines()
        .map(|l| l.trim())
        .filter(|l| l.to_ascii_lowercase().contains("latchkey:"))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// Erases `registries` from Credential Manager when dropped, so a failed test leaves
/// nothing behind for the next one.
struct EraseOnDrop<'a>(&'a Wine, &'static [&'static str]);

impl Drop for EraseOnDrop<'_> {
    fn drop(&mut self) {
        for registry in self.1 {
            let _ = self.0.run(&["erase"], registry.as_bytes());
        }
    }
}

/// A secret of `len` bytes, varied so a misplaced chunk shows.
fn secret(len: usize, seed: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=";
    (0..len).map(|i| ALPHABET[(i * 7 + i / 61 + seed) % ALPHABET.len()] as char).collect()
}

fn store_input(server: &str, user: &str, secret: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"ServerURL": server, "Username": user, "Secret": secret})).unwrap()
}

struct Step {
    name: &'static str,
    args: &'static [&'static str],
    stdin: Vec<u8>,
}

fn step(name: &'static str, args: &'static [&'static str], stdin: impl Into<Vec<u8>>) -> Step {
    Step { name, args, stdin: stdin.into() }
}

/// The conversation: hit, miss, overwrite, list, erase twice, unicode, 3 kB / 10 kB / 200 kB
/// secrets (chunked on Credential Manager, whose limit is 2,560 bytes a credential), one
/// shrinking back under the limit, and errors. It starts and ends with an empty store.
fn conversation() -> Vec<Step> {
    vec![
        step("list-empty", &["list"], "unused"),
        step("get-miss", &["get"], "hit.example"),
        step("store", &["store"], store_input("hit.example", "alice", "s3cret-1")),
        step("get-hit", &["get"], "hit.example"),
        step("get-trailing-newline", &["get"], "hit.example\n"),
        step("list-one", &["list"], "unused"),
        step("store-overwrite", &["store"], store_input("hit.example", "bob", "s3cret-2")),
        step("get-after-overwrite", &["get"], "hit.example"),
        step("store-unicode", &["store"], store_input("unicode.example", "zoë-Ωμέγα-日本", "pässwörd-🔑-\u{2028}")),
        step("get-unicode", &["get"], "unicode.example"),
        step("store-3k", &["store"], store_input("big.example", "big", &secret(3 * 1024, 1))),
        step("get-3k", &["get"], "big.example"),
        step("store-10k", &["store"], store_input("big.example", "big", &secret(10 * 1024, 2))),
        step("get-10k", &["get"], "big.example"),
        step("store-200k", &["store"], store_input("https://big.example/v2/", "bigger", &secret(200 * 1024, 3))),
        step("get-200k", &["get"], "big.example"),
        step("list-with-big", &["list"], "unused"),
        step("store-shrunk", &["store"], store_input("big.example", "small", "back-under-the-limit")),
        step("get-shrunk", &["get"], "big.example"),
        step("erase", &["erase"], "hit.example"),
        step("get-after-erase", &["get"], "hit.example"),
        step("erase-again", &["erase"], "hit.example"),
        step("erase-unicode", &["erase"], "unicode.example"),
        step("store-10k-again", &["store"], store_input("big.example", "big", &secret(10 * 1024, 4))),
        step("erase-big", &["erase"], "big.example"),
        step("get-big-after-erase", &["get"], "big.example"),
        step("erase-big-again", &["erase"], "big.example"),
        step("list-end", &["list"], "unused"),
        // Errors.
        step("store-malformed-json", &["store"], r#"{"ServerURL":"#),
        step("store-missing-username", &["store"], r#"{"ServerURL":"nouser.example","Secret":"s"}"#),
        step("store-empty-serverurl", &["store"], r#"{"ServerURL":"","Username":"u","Secret":"s"}"#),
        step("store-invalid-url", &["store"], r#"{"ServerURL":"ftp://x","Username":"u","Secret":"s"}"#),
        step("get-empty-stdin", &["get"], ""),
        step("erase-empty-stdin", &["erase"], ""),
        step("get-invalid-utf8", &["get"], &b"utf.example\xff"[..]),
        step("unknown-verb", &["frobnicate"], "hit.example"),
        step("list-final", &["list"], "unused"),
    ]
}

/// What one step answered: the protocol's part of it.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    code: Option<i32>,
    stdout: String,
}

fn play(steps: &[Step], mut run: impl FnMut(&Step) -> Output, mut after: impl FnMut(&'static str)) -> Vec<Answer> {
    steps
        .iter()
        .map(|s| {
            let out = run(s);
            out.assert_no_panic();
            after(s.name);
            Answer { code: out.code, stdout: String::from_utf8_lossy(&out.stdout).into_owned() }
        })
        .collect()
}

fn compare(steps: &[Step], reference: &[Answer], name: &str, answers: &[Answer]) {
    let failures: Vec<String> = steps
        .iter()
        .zip(reference.iter().zip(answers))
        .filter(|(_, (a, b))| a != b)
        .map(|(s, (a, b))| format!("step {} ({:?}): Linux file store {a:?}, {name} {b:?}", s.name, s.args))
        .collect();
    assert!(failures.is_empty(), "{} step(s) differ:\n{}", failures.len(), failures.join("\n"));
}

/// The Linux build's answers on its file store: the reference.
fn linux_answers(steps: &[Step]) -> Vec<Answer> {
    let mut env = TestEnv::new();
    env.store("file");
    play(steps, |s| env.latchkey(s.args, &s.stdin), |_| {})
}

#[test]
fn file_store_answers_as_the_linux_build() {
    let Some(exe) = wine_exe() else { return };
    let steps = conversation();
    let reference = linux_answers(&steps);
    let wine = Wine::new(&exe, "file");
    let answers = play(&steps, |s| wine.run(s.args, &s.stdin), |_| {});
    compare(&steps, &reference, "Windows file store", &answers);
}

#[test]
fn credential_manager_answers_as_the_linux_file_store_and_keeps_nothing() {
    let Some(exe) = wine_exe() else { return };
    let _turn = credential_manager();
    assert_eq!(
        latchkey_credentials(),
        Vec::<String>::new(),
        "Credential Manager holds latchkey's credentials before the test"
    );
    let steps = conversation();
    let reference = linux_answers(&steps);
    let wine = Wine::new(&exe, "keyring");
    let _cleanup = EraseOnDrop(&wine, &["hit.example", "unicode.example", "big.example"]);
    let mut seen = Vec::new();
    let answers = play(
        &steps,
        |s| wine.run(s.args, &s.stdin),
        |name| match name {
            // Chunked: the main credential and its parts.
            "get-200k" => seen.push((name, latchkey_credentials())),
            // Back under the limit: the main credentials only, no part left behind.
            "get-shrunk" | "list-end" => seen.push((name, latchkey_credentials())),
            _ => {}
        },
    );
    compare(&steps, &reference, "Windows Credential Manager", &answers);
    let [(_, big), (_, shrunk), (_, end)] = &seen[..] else { panic!("{seen:?}") };
    assert!(big.iter().filter(|n| n.contains("latchkey:big.example#")).count() >= 80, "200 kB in parts: {big:?}");
    assert!(shrunk.iter().all(|n| !n.contains('#')), "parts left after shrinking: {shrunk:?}");
    assert_eq!(shrunk.len(), 3, "hit, unicode and big: {shrunk:?}");
    assert_eq!(end, &Vec::<String>::new(), "latchkey's credentials left in Credential Manager after the erases");
    assert_eq!(latchkey_credentials(), Vec::<String>::new());
}

#[test]
fn auto_picks_credential_manager() {
    let Some(exe) = wine_exe() else { return };
    let _turn = credential_manager();
    let auto = Wine::new(&exe, "auto");
    let _cleanup = EraseOnDrop(&auto, &["auto.example"]);
    let out = auto.run(&["status", "--json"], b"");
    out.assert_success();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(status["store"]["kind"], "keyring", "{out}");
    assert!(status["store"]["description"].as_str().unwrap_or("").contains("Credential Manager"), "{out}");
    // What `auto` stores, Credential Manager holds (and the file store does not).
    auto.run(&["store"], &store_input("auto.example", "u", &secret(6000, 5))).assert_success();
    let keyring = Wine::new(&exe, "keyring");
    let out = keyring.run(&["get"], b"auto.example");
    out.assert_success();
    assert!(out.stdout_str().contains(&secret(6000, 5)), "{out}");
    assert!(!auto.dir.path().join("data").join("credentials.json").exists());
    auto.run(&["erase"], b"auto.example").assert_success();
    assert_eq!(latchkey_credentials(), Vec::<String>::new());
}

/// Issue 13: concurrent stores of a chunked secret to one registry, with gets racing them.
/// Every get answers one writer's whole secret (or, before the first store lands, "not
/// found"); every store succeeds; afterwards the secret is one writer's, and an erase
/// leaves no part behind.
#[test]
fn concurrent_stores_and_gets_of_a_chunked_secret_never_mix() {
    let Some(exe) = wine_exe() else { return };
    let _turn = credential_manager();
    const WRITERS: usize = 4;
    const ROUNDS: usize = 3;
    let wine = Wine::new(&exe, "keyring");
    let _cleanup = EraseOnDrop(&wine, &["race.example"]);
    let secrets: Vec<String> = (0..WRITERS).map(|w| secret(9000 + 700 * w, 10 + w)).collect();
    let whole: Vec<String> = secrets
        .iter()
        .enumerate()
        .map(|(w, s)| format!("{{\"ServerURL\":\"race.example\",\"Username\":\"w{w}\",\"Secret\":\"{s}\"}}\n"))
        .collect();
    let gets = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for (w, s) in secrets.iter().enumerate() {
            let wine = &wine;
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let out = wine.run(&["store"], &store_input("race.example", &format!("w{w}"), s));
                    assert_eq!(out.code, Some(0), "writer {w} round {round}: {out}");
                }
            });
        }
        for r in 0..2 {
            let (wine, whole, gets) = (&wine, &whole, &gets);
            scope.spawn(move || {
                for _ in 0..WRITERS * ROUNDS {
                    let out = wine.run(&["get"], b"race.example");
                    let text = out.stdout_str();
                    if out.code == Some(1) && text.trim_end() == NOT_FOUND {
                        continue;
                    }
                    assert_eq!(out.code, Some(0), "reader {r}: {out}");
                    assert!(
                        whole.contains(&text),
                        "reader {r} got a secret of no single writer ({} bytes)",
                        text.len()
                    );
                    gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let out = wine.run(&["get"], b"race.example");
    assert!(whole.contains(&out.stdout_str()), "the final secret is of no single writer: {out}");
    assert!(gets.into_inner() > 0, "no get overlapped the stores");
    wine.run(&["erase"], b"race.example").assert_success();
    assert_eq!(latchkey_credentials(), Vec::<String>::new(), "left after the erase");
}

#[test]
fn a_data_dir_that_is_a_file_is_an_error_not_an_empty_store() {
    let Some(exe) = wine_exe() else { return };
    let wine = Wine::new(&exe, "file");
    std::fs::write(wine.dir.path().join("data"), b"not a directory").unwrap();
    let out = wine.run(&["get"], b"hit.example");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(!out.stdout_str().contains(NOT_FOUND), "answered not found: {out}");
    assert!(out.stdout_str().contains("not a directory"), "{out}");
}

/// Without LATCHKEY_DATA_DIR, the file store lives in Local AppData (it must not roam).
#[test]
fn the_file_store_defaults_to_local_appdata() {
    let Some(exe) = wine_exe() else { return };
    let prefix = PathBuf::from(std::env::var_os("WINEPREFIX").expect("WINEPREFIX is set (scripts/cross/wine-env.sh)"));
    let wine = Wine::new(&exe, "file");
    let run = |args: &[&str], stdin: &[u8]| {
        let mut cmd = wine.command(args);
        cmd.env_remove("LATCHKEY_DATA_DIR");
        run_command(cmd, stdin, WINE_TIMEOUT)
    };
    run(&["store"], &store_input("local.example", "u", "s")).assert_success();
    let stores: Vec<PathBuf> = std::fs::read_dir(prefix.join("drive_c/users"))
        .unwrap()
        .flatten()
        .map(|user| user.path().join("AppData/Local/latchkey/data/credentials.json"))
        .filter(|p| p.is_file())
        .collect();
    let roaming: Vec<PathBuf> = std::fs::read_dir(prefix.join("drive_c/users"))
        .unwrap()
        .flatten()
        .map(|user| user.path().join("AppData/Roaming/latchkey"))
        .filter(|p| p.exists())
        .collect();
    run(&["erase"], b"local.example").assert_success();
    assert_eq!(stores.len(), 1, "no credentials.json under AppData/Local/latchkey/data");
    assert!(roaming.is_empty(), "latchkey wrote to Roaming AppData: {roaming:?}");
}

/// A temp file a killed writer left (the whole store, in plaintext) is removed by the next
/// write, on Windows too.
#[test]
fn a_killed_writers_temp_file_is_removed() {
    let Some(exe) = wine_exe() else { return };
    let wine = Wine::new(&exe, "file");
    let data = wine.dir.path().join("data");
    wine.run(&["store"], &store_input("one.example", "u", "s")).assert_success();
    // No Windows process has this PID now: Wine's PIDs are small multiples of 4.
    let stale = data.join(".credentials.json.tmp.4000001");
    std::fs::write(&stale, b"{\"secret\":\"left behind\"}").unwrap();
    wine.run(&["store"], &store_input("two.example", "u", "s")).assert_success();
    assert!(!stale.exists(), "the dead writer's temp file is still there");
}

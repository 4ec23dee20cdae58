//! The file store under a storm of concurrent processes: 64 workers, each a sequence of
//! real `docker-credential-latchkey` processes doing store/get/erase on 8 shared keys and
//! on a key of its own, while readers loop on `list`, `get` and the file itself.
//!
//! Afterwards no update is lost (every worker's own key holds its last value), every answer
//! during the storm was a protocol answer, the file always parsed, no temp file is left,
//! and the permissions are 0600 (file) and 0700 (directory).

use crate::common;

use std::collections::BTreeMap;
use std::fs;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::*;

const WORKERS: usize = 64;
const SHARED_KEYS: usize = 8;
const ROUNDS: usize = 4;

fn shared_key(k: usize) -> String {
    format!("shared-{}.example", k % SHARED_KEYS)
}

fn unique_key(worker: usize) -> String {
    format!("unique-{worker}.example:5000")
}

/// Every secret names its writer and key, so a torn or mixed-up answer shows.
fn secret_for(user: &str, key: &str) -> String {
    format!("{user}@{key}")
}

/// A `get` during the storm: either a complete, self-consistent credential for `key` or
/// exactly "not found".
fn check_get_answer(out: &Output, key: &str) {
    out.assert_no_panic();
    match out.code {
        Some(0) => {
            let (server, user, secret) = parse_get(out);
            assert_eq!(server, key, "{out}");
            assert_eq!(secret, secret_for(&user, key), "torn or mixed-up credential:\n{out}");
        }
        Some(1) => assert_eq!(out.stdout_str(), format!("{NOT_FOUND}\n"), "not a protocol answer:\n{out}"),
        _ => panic!("unexpected exit:\n{out}"),
    }
}

/// A `list` answer: a JSON object of strings.
fn parse_list(out: &Output) -> BTreeMap<String, String> {
    out.assert_no_panic();
    assert_eq!(out.code, Some(0), "list failed during the storm:\n{out}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("list answer is not a JSON object ({e}):\n{out}"))
}

#[test]
fn sixty_four_processes_lose_no_update() {
    let mut env = TestEnv::new();
    env.store("file");
    let env = env;
    let file = env.store_file();
    let dir = env.data_dir();
    assert!(!dir.exists(), "the data dir must start absent so latchkey creates it");

    let start = Barrier::new(WORKERS + 2);
    let done = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);

    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (env, start) = (&env, &start);
                scope.spawn(move || {
                    let user = format!("w{w}");
                    let own = unique_key(w);
                    start.wait();
                    env.latchkey(&["store"], &store_json(&own, &user, "first-value")).assert_success();
                    for r in 0..ROUNDS {
                        let k = shared_key(w + r);
                        env.latchkey(&["store"], &store_json(&k, &user, &secret_for(&user, &k))).assert_success();
                        let k = shared_key(w + r + 3);
                        check_get_answer(&env.latchkey(&["get"], k.as_bytes()), &k);
                        if w % 2 == 1 {
                            let k = shared_key(w + r + 5);
                            env.latchkey(&["erase"], k.as_bytes()).assert_success();
                        }
                    }
                    // The final value of this worker's own key, written mid-storm.
                    let own_user = format!("{user}-final");
                    env.latchkey(&["store"], &store_json(&own, &own_user, &secret_for(&own_user, &own)))
                        .assert_success();
                    check_get_answer(&env.latchkey(&["get"], own.as_bytes()), &own);
                })
            })
            .collect();

        // Readers through the protocol and through the file, until the workers finish.
        let protocol_reader = {
            let (env, start, done, reads) = (&env, &start, &done, &reads);
            scope.spawn(move || {
                start.wait();
                let mut i = 0;
                while !done.load(Ordering::Relaxed) {
                    let list = parse_list(&env.latchkey(&["list"], b"unused"));
                    for (server, user) in &list {
                        assert!(user.starts_with('w'), "list shows a stranger: {server} -> {user}");
                    }
                    let k = shared_key(i);
                    check_get_answer(&env.latchkey(&["get"], k.as_bytes()), &k);
                    i += 1;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let file_reader = {
            let (file, start, done) = (&file, &start, &done);
            scope.spawn(move || {
                start.wait();
                let mut parsed = 0usize;
                while !done.load(Ordering::Relaxed) {
                    match fs::read(file) {
                        Ok(bytes) => {
                            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                                panic!(
                                    "the store file did not parse mid-storm ({e}): {:?}",
                                    String::from_utf8_lossy(&bytes)
                                );
                            }
                            parsed += 1;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => panic!("reading {}: {e}", file.display()),
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                parsed
            })
        };

        let mut failures = Vec::new();
        for (w, h) in workers.into_iter().enumerate() {
            if let Err(e) = h.join() {
                failures.push(format!("worker {w}: {}", panic_text(&e)));
            }
        }
        done.store(true, Ordering::Relaxed);
        if let Err(e) = protocol_reader.join() {
            failures.push(format!("protocol reader: {}", panic_text(&e)));
        }
        match file_reader.join() {
            Ok(parsed) => assert!(parsed > 0, "the file reader never saw the store file during the storm"),
            Err(e) => failures.push(format!("file reader: {}", panic_text(&e))),
        }
        assert!(failures.is_empty(), "{} thread(s) failed:\n{}", failures.len(), failures.join("\n"));
    });
    assert!(reads.load(Ordering::Relaxed) > 0, "the protocol reader never ran during the storm");

    // No lost update: every worker's own key holds its final value.
    let list = parse_list(&env.latchkey(&["list"], b"unused"));
    for w in 0..WORKERS {
        let own = unique_key(w);
        assert_eq!(list.get(&own).map(String::as_str), Some(format!("w{w}-final").as_str()), "list: {list:?}");
        let got = env.latchkey(&["get"], own.as_bytes());
        got.assert_success();
        let user = format!("w{w}-final");
        assert_eq!(parse_get(&got), (own.clone(), user.clone(), secret_for(&user, &own)));
    }
    // Shared keys: absent, or the complete value of one writer.
    for k in 0..SHARED_KEYS {
        let key = shared_key(k);
        check_get_answer(&env.latchkey(&["get"], key.as_bytes()), &key);
    }
    let unexpected: Vec<_> = list.keys().filter(|k| !k.starts_with("unique-") && !k.starts_with("shared-")).collect();
    assert!(unexpected.is_empty(), "unexpected entries: {unexpected:?}");

    // The file parses, holds the same, and is private; nothing temporary is left behind.
    let text = fs::read_to_string(&file).expect("store file");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the store file parses after the storm");
    assert_eq!(json["credentials"].as_object().map(|m| m.len()), Some(list.len()), "{text}");
    #[cfg(unix)]
    {
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "store file mode");
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "store dir mode");
    }
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left in {}: {leftovers:?}", dir.display());
    #[cfg(unix)]
    for entry in fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is readable by others ({mode:o})", entry.path().display());
    }
}

fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

//! Differential protocol conformance: one script of protocol invocations, run against
//! Debian's `docker-credential-secretservice` (the reference implementation of the
//! protocol, golang-docker-credential-helpers 0.6.4) and against latchkey, both on one real
//! gnome-keyring Secret Service in a private D-Bus session. Stdout and exit codes must be
//! identical, except for the deliberate differences listed in [`DIFFERENCES`], each
//! checked for being exactly the documented difference.
//!
//! The same script also runs against latchkey's file store, which must behave exactly like
//! its keyring store.

use crate::common;

use common::*;

/// One protocol invocation: arguments and stdin.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
    stdin: Input,
}

/// What a step writes to the helper's stdin.
#[derive(Debug)]
enum Input {
    Bytes(&'static [u8]),
    /// `n` copies of one byte (inputs too big to write out).
    Repeat(u8, usize),
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Input::Bytes(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Input::Repeat(byte, n) => write!(f, "{n} x {:?}", byte as char),
        }
    }
}

impl Input {
    fn bytes(&self) -> Vec<u8> {
        match *self {
            Input::Bytes(b) => b.to_vec(),
            Input::Repeat(byte, n) => vec![byte; n],
        }
    }
}

const fn step(name: &'static str, args: &'static [&'static str], stdin: &'static str) -> Step {
    Step { name, args, stdin: Input::Bytes(stdin.as_bytes()) }
}

const fn step_bytes(name: &'static str, args: &'static [&'static str], stdin: &'static [u8]) -> Step {
    Step { name, args, stdin: Input::Bytes(stdin) }
}

/// The script. It starts and ends with an empty store, so two implementations can run it
/// one after the other on the same keyring.
const SCRIPT: &[Step] = &[
    step("list-empty", &["list"], "unused"),
    step("get-miss", &["get"], "hit.example"),
    step("store", &["store"], r#"{"ServerURL":"hit.example","Username":"alice","Secret":"s3cret-1"}"#),
    step("get-hit", &["get"], "hit.example"),
    step("get-trailing-newline", &["get"], "hit.example\n"),
    step("get-surrounding-whitespace", &["get"], " \thit.example \r\n"),
    step("get-inner-newline", &["get"], "hit.\nexample\n"),
    step("list-one", &["list"], "unused"),
    step("list-no-stdin", &["list"], ""),
    // Same username, new secret: both replace.
    step("store-new-secret", &["store"], r#"{"ServerURL":"hit.example","Username":"alice","Secret":"s3cret-1b"}"#),
    step("get-new-secret", &["get"], "hit.example"),
    // A second username for the same server.
    step("store-overwrite", &["store"], r#"{"ServerURL":"hit.example","Username":"bob","Secret":"s3cret-2"}"#),
    step("get-after-overwrite", &["get"], "hit.example"),
    step("list-after-overwrite", &["list"], "unused"),
    step("erase", &["erase"], "hit.example"),
    step("get-after-erase", &["get"], "hit.example"),
    step("erase-missing", &["erase"], "hit.example"),
    step("erase-missing-again", &["erase"], "hit.example\n"),
    // Identity tokens: docker stores them with the username `<token>`; Go escapes `<`, `>`.
    step("store-token", &["store"], r#"{"ServerURL":"token.example","Username":"<token>","Secret":"refresh-token"}"#),
    step("get-token", &["get"], "token.example"),
    // Characters Go's encoding/json escapes: & < > U+2028 U+2029.
    step(
        "store-special-secret",
        &["store"],
        "{\"ServerURL\":\"special.example\",\"Username\":\"carol&<x>\",\"Secret\":\"a&b<c>d\u{2028}e\u{2029}f \\\" \\\\ \\u0001 é\"}",
    ),
    step("get-special-secret", &["get"], "special.example"),
    step("list-escaped", &["list"], "unused"),
    // An empty secret is stored but `get` answers "not found" (libsecret's view).
    step("store-empty-secret", &["store"], r#"{"ServerURL":"empty.example","Username":"dave","Secret":""}"#),
    step("get-empty-secret", &["get"], "empty.example"),
    step("list-with-empty-secret", &["list"], "unused"),
    // Field names are matched case-insensitively, unknown fields and trailing bytes ignored.
    step(
        "store-loose-json",
        &["store"],
        "{\"serverurl\":\"loose.example\",\n \"USERNAME\":\"erin\",\n \"secret\":\"s3\", \"Extra\": [1]}\ntrailing",
    ),
    step("get-loose-json", &["get"], "loose.example"),
    step("erase-token", &["erase"], "token.example"),
    step("erase-special", &["erase"], "special.example"),
    step("erase-empty-secret", &["erase"], "empty.example"),
    step("erase-loose", &["erase"], "loose.example"),
    // Server URL spellings: latchkey normalises, the Go helper matches exact strings.
    step(
        "store-url-with-scheme",
        &["store"],
        r#"{"ServerURL":"https://norm.example/v2/","Username":"frank","Secret":"s4"}"#,
    ),
    step("get-bare-host-of-url", &["get"], "norm.example"),
    step("get-url-exact", &["get"], "https://norm.example/v2/"),
    step("list-url", &["list"], "unused"),
    step("erase-url-exact", &["erase"], "https://norm.example/v2/"),
    step("store-invalid-url", &["store"], r#"{"ServerURL":"ftp://x","Username":"u","Secret":"s"}"#),
    step("erase-invalid-url", &["erase"], "ftp://x"),
    step("list-end", &["list"], "unused"),
    // Bad store input.
    step("store-malformed-json", &["store"], r#"{"ServerURL":"#),
    step("store-not-an-object", &["store"], "[1]"),
    step("store-wrong-type", &["store"], r#"{"ServerURL":1,"Username":"u","Secret":"s"}"#),
    step("store-null", &["store"], "null"),
    step("store-empty-serverurl", &["store"], r#"{"ServerURL":"","Username":"u","Secret":"s"}"#),
    step("store-missing-serverurl", &["store"], r#"{"Username":"u","Secret":"s"}"#),
    step("store-missing-username", &["store"], r#"{"ServerURL":"nouser.example","Secret":"s"}"#),
    step("store-empty-username", &["store"], r#"{"ServerURL":"nouser.example","Username":"","Secret":"s"}"#),
    step("get-after-failed-stores", &["get"], "nouser.example"),
    // Empty stdin.
    step("get-empty-stdin", &["get"], ""),
    step("get-blank-stdin", &["get"], " \n"),
    step("erase-empty-stdin", &["erase"], ""),
    step("store-empty-stdin", &["store"], ""),
    step("store-blank-stdin", &["store"], "\n"),
    // Not UTF-8, and too big.
    step_bytes("get-invalid-utf8", &["get"], b"utf.example\xff"),
    step_bytes(
        "store-invalid-utf8",
        &["store"],
        b"{\"ServerURL\":\"utf.example\",\"Username\":\"u\",\"Secret\":\"ab\xffcd\"}",
    ),
    step("erase-invalid-utf8-entry", &["erase"], "utf.example"),
    Step { name: "get-2-mib-stdin", args: &["get"], stdin: Input::Repeat(b'a', 2 << 20) },
    // Verbs.
    step("unknown-verb", &["frobnicate"], "hit.example"),
    step("uppercase-verb", &["GET"], "hit.example"),
    step("no-verb", &[], ""),
    step("two-verbs", &["get", "list"], "hit.example"),
    step("empty-verb", &[""], "hit.example"),
    step("version", &["version"], ""),
    step("dash-v", &["-v"], ""),
    step("dash-dash-help", &["--help"], ""),
    step("list-final", &["list"], "unused"),
];

/// What one step did.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}, stdout {:?}, stderr {:?}", self.code, self.stdout, self.stderr)
    }
}

/// A deliberate difference between docker-credential-secretservice (`go`) and latchkey
/// (`lk`): the step, why, and a check that the difference is exactly this one.
struct Difference {
    step: &'static str,
    reason: &'static str,
    check: fn(&Run, &Outcome, &Run, &Outcome),
}

const USAGE_VERBS: &str = "<store|get|erase|list|version>";

fn check_usage(go_run: &Run, go: &Outcome, lk_run: &Run, lk: &Outcome) {
    for (run, o) in [(go_run, go), (lk_run, lk)] {
        assert_eq!(o.code, Some(1), "{}: {o:?}", run.name);
        assert_eq!(o.stdout, format!("Usage: {} {USAGE_VERBS}\n", run.program.display()), "{}", run.name);
    }
}

fn check_json_wording(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!(go.code, Some(1), "secretservice: {go:?}");
    assert_eq!(lk.code, Some(1), "latchkey: {lk:?}");
    assert!(go.stdout.starts_with("unexpected EOF") || go.stdout.starts_with("json: "), "secretservice: {go:?}");
    assert!(lk.stdout.starts_with("invalid credentials JSON on stdin: "), "latchkey: {lk:?}");
    assert_eq!(lk.stdout.lines().count(), 1, "latchkey: {lk:?}");
}

fn check_invalid_utf8_get(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!((go.code, go.stdout.as_str()), (Some(1), "credentials not found in native keychain\n"));
    assert_eq!((lk.code, lk.stdout.as_str()), (Some(1), "the server URL on stdin is not valid UTF-8\n"));
}

fn check_invalid_utf8_store(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!((go.code, go.stdout.as_str()), (Some(0), ""), "secretservice");
    assert_eq!(lk.code, Some(1), "latchkey: {lk:?}");
    assert!(lk.stdout.starts_with("invalid credentials JSON on stdin: "), "latchkey: {lk:?}");
}

fn check_huge_stdin(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!((go.code, go.stdout.as_str()), (Some(1), "bufio.Scanner: token too long\n"));
    assert_eq!(lk.code, Some(1), "latchkey: {lk:?}");
    assert!(lk.stdout.starts_with("stdin is larger than 1024 KiB"), "latchkey: {lk:?}");
}

fn check_version(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!(go.code, Some(0), "secretservice: {go:?}");
    assert_eq!(lk.code, Some(0), "latchkey: {lk:?}");
    assert_eq!(lk.stdout, format!("docker-credential-latchkey (latchkey) {}\n", env!("CARGO_PKG_VERSION")));
}

fn check_dash_v(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!((go.code, go.stdout.as_str()), (Some(1), "Unknown credential action `-v`\n"), "secretservice");
    assert_eq!(lk.code, Some(0), "latchkey: {lk:?}");
    assert_eq!(lk.stdout, format!("docker-credential-latchkey (latchkey) {}\n", env!("CARGO_PKG_VERSION")));
}

fn check_help(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!((go.code, go.stdout.as_str()), (Some(1), "Unknown credential action `--help`\n"), "secretservice");
    assert_eq!(lk.code, Some(0), "latchkey: {lk:?}");
    assert!(lk.stdout.contains("Usage:") && lk.stdout.contains("get"), "latchkey: {lk:?}");
}

fn check_get_after_overwrite(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!(lk.code, Some(0), "latchkey: {lk:?}");
    assert_eq!(lk.stdout, "{\"ServerURL\":\"hit.example\",\"Username\":\"bob\",\"Secret\":\"s3cret-2\"}\n");
    assert_eq!(go.code, Some(0), "secretservice: {go:?}");
    assert!(
        [
            "{\"ServerURL\":\"hit.example\",\"Username\":\"alice\",\"Secret\":\"s3cret-1b\"}\n",
            "{\"ServerURL\":\"hit.example\",\"Username\":\"bob\",\"Secret\":\"s3cret-2\"}\n"
        ]
        .contains(&go.stdout.as_str()),
        "secretservice: {go:?}"
    );
}

fn check_list_after_overwrite(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!((lk.code, lk.stdout.as_str()), (Some(0), "{\"hit.example\":\"bob\"}\n"), "latchkey");
    assert_eq!(go.code, Some(0), "secretservice: {go:?}");
    assert!(
        ["{\"hit.example\":\"alice\"}\n", "{\"hit.example\":\"bob\"}\n"].contains(&go.stdout.as_str()),
        "secretservice: {go:?}"
    );
}

fn check_inner_newline(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    // Go joins the lines ("hit.example") and finds it; latchkey refuses the URL.
    assert_eq!(go.code, Some(0), "secretservice: {go:?}");
    assert!(go.stdout.contains("\"Username\":\"alice\""), "secretservice: {go:?}");
    assert_eq!(lk.code, Some(1), "latchkey: {lk:?}");
    assert!(lk.stdout.starts_with("invalid registry server URL"), "latchkey: {lk:?}");
}

fn check_bare_host_of_url(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!((go.code, go.stdout.as_str()), (Some(1), "credentials not found in native keychain\n"));
    assert_eq!(lk.code, Some(0), "latchkey: {lk:?}");
    assert_eq!(lk.stdout, "{\"ServerURL\":\"norm.example\",\"Username\":\"frank\",\"Secret\":\"s4\"}\n");
}

fn check_invalid_url(_: &Run, go: &Outcome, _: &Run, lk: &Outcome) {
    assert_eq!((go.code, go.stdout.as_str()), (Some(0), ""), "secretservice");
    assert_eq!(lk.code, Some(1), "latchkey: {lk:?}");
    assert!(lk.stdout.starts_with("invalid registry server URL \"ftp://x\""), "latchkey: {lk:?}");
}

/// Every deliberate difference from docker-credential-secretservice 0.6.4.
const DIFFERENCES: &[Difference] = &[
    Difference {
        step: "no-verb",
        reason: "the usage line names argv[0], so each helper prints its own path",
        check: check_usage,
    },
    Difference {
        step: "two-verbs",
        reason: "the usage line names argv[0], so each helper prints its own path",
        check: check_usage,
    },
    Difference {
        step: "store-malformed-json",
        reason: "JSON parser wording: Go's encoding/json vs serde_json (both exit 1 with one line)",
        check: check_json_wording,
    },
    Difference { step: "store-not-an-object", reason: "JSON parser wording", check: check_json_wording },
    Difference { step: "store-wrong-type", reason: "JSON parser wording", check: check_json_wording },
    Difference {
        step: "version",
        reason: "each helper prints its own name and version (Go prints only `0.6.4`)",
        check: check_version,
    },
    Difference {
        step: "dash-v",
        reason: "latchkey answers -v/--version for people; Go treats `-v` as an unknown action",
        check: check_dash_v,
    },
    Difference {
        step: "dash-dash-help",
        reason: "latchkey prints its help for people; Go treats `--help` as an unknown action",
        check: check_help,
    },
    Difference {
        step: "get-after-overwrite",
        reason: "secretservice keeps BOTH items on a second store and returns whichever libsecret lists first; \
                 latchkey replaces (one credential per registry)",
        check: check_get_after_overwrite,
    },
    Difference {
        step: "list-after-overwrite",
        reason: "same as get-after-overwrite: secretservice lists one of its two items",
        check: check_list_after_overwrite,
    },
    Difference {
        step: "get-inner-newline",
        reason: "Go's bufio.Scanner joins stdin lines into one URL; latchkey only trims and refuses a URL with a newline inside",
        check: check_inner_newline,
    },
    Difference {
        step: "get-bare-host-of-url",
        reason: "latchkey normalises server URLs (https://host/v2/ and host are one registry); Go matches exact strings",
        check: check_bare_host_of_url,
    },
    Difference {
        step: "store-invalid-url",
        reason: "latchkey refuses a server URL that names no registry; Go stores any string",
        check: check_invalid_url,
    },
    Difference {
        step: "erase-invalid-url",
        reason: "latchkey refuses a server URL that names no registry; Go erases any string",
        check: check_invalid_url,
    },
    Difference {
        step: "get-invalid-utf8",
        reason: "latchkey says the server URL is not UTF-8; Go looks it up (libsecret refuses the string) and answers not found",
        check: check_invalid_utf8_get,
    },
    Difference {
        step: "store-invalid-utf8",
        reason: "Go's encoding/json replaces invalid UTF-8 with U+FFFD and stores the altered secret; latchkey refuses it",
        check: check_invalid_utf8_store,
    },
    Difference {
        step: "get-2-mib-stdin",
        reason: "both refuse with exit 1; Go's message is bufio.Scanner's, latchkey's names its 1 MiB limit",
        check: check_huge_stdin,
    },
];

/// One implementation under test, with its environment.
struct Run<'a> {
    name: &'static str,
    program: std::path::PathBuf,
    env: &'a TestEnv,
}

impl Run<'_> {
    fn play(&self) -> Vec<Outcome> {
        SCRIPT
            .iter()
            .map(|s| {
                let out = run(&self.program, s.args, &s.stdin.bytes(), self.env);
                out.assert_no_panic();
                if std::env::var_os("LATCHKEY_TEST_TRACE").is_some() {
                    eprintln!(
                        "[{}] {}: {:?} -> exit {:?} {:?}",
                        self.name,
                        s.name,
                        s.stdin,
                        out.code,
                        out.stdout_str()
                    );
                }
                Outcome { code: out.code, stdout: out.stdout_str(), stderr: out.stderr_str() }
            })
            .collect()
    }
}

/// Compare two runs step by step; `differences` lists the steps allowed to differ.
fn compare(a: &Run, a_out: &[Outcome], b: &Run, b_out: &[Outcome], differences: &[Difference]) {
    let mut failures = Vec::new();
    for ((s, x), y) in SCRIPT.iter().zip(a_out).zip(b_out) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match differences.iter().find(|d| d.step == s.name) {
                Some(d) => (d.check)(a, x, b, y),
                None => assert!(
                    x.code == y.code && x.stdout == y.stdout,
                    "{} and {} differ:\n  {}: {x:?}\n  {}: {y:?}",
                    a.name,
                    b.name,
                    a.name,
                    b.name
                ),
            }
        }));
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("step {:?} (args {:?}, stdin {}): {msg}", s.name, s.args, s.stdin));
        }
    }
    assert!(failures.is_empty(), "{} step(s) failed:\n{}", failures.len(), failures.join("\n\n"));
}

/// latchkey prints nothing on stderr while answering the protocol (docker shows stderr
/// on every pull), except for human-facing flags.
fn assert_quiet(run: &Run, outcomes: &[Outcome]) {
    for (s, o) in SCRIPT.iter().zip(outcomes) {
        assert!(o.stderr.is_empty(), "{}: step {:?} wrote to stderr: {o:?}", run.name, s.name);
    }
}

fn assert_store_empty(run: &Run) {
    let out = run_list(run);
    assert_eq!((out.code, out.stdout_str().as_str()), (Some(0), "{}\n"), "{}: store not empty:\n{out}", run.name);
}

fn run_list(run: &Run) -> Output {
    common::run(&run.program, &["list"], b"unused", run.env)
}

fn secretservice_run(env: &TestEnv) -> Run<'_> {
    Run { name: "docker-credential-secretservice", program: require(SECRETSERVICE_HELPER), env }
}

fn latchkey_run<'a>(name: &'static str, env: &'a TestEnv) -> Run<'a> {
    Run { name, program: latchkey(), env }
}

#[test]
fn differences_table_names_real_steps() {
    for d in DIFFERENCES {
        assert!(SCRIPT.iter().any(|s| s.name == d.step), "DIFFERENCES names unknown step {:?}", d.step);
        assert!(!d.reason.is_empty());
    }
    let mut names: Vec<_> = SCRIPT.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), SCRIPT.len(), "step names must be unique");
}

/// The main differential test: the reference helper and latchkey's keyring store on the
/// same Secret Service.
#[test]
fn latchkey_keyring_store_matches_secretservice() {
    let session = KeyringSession::start();
    let mut env = TestEnv::new();
    env.with_keyring(&session);
    let go = secretservice_run(&env);
    let lk = latchkey_run("latchkey (keyring store)", &env);

    assert_store_empty(&go);
    let go_out = go.play();
    assert_store_empty(&go);
    assert!(session.search_items(&[("server", "hit.example")]).is_empty(), "secretservice left items behind");

    assert_store_empty(&lk);
    let lk_out = lk.play();
    assert_store_empty(&lk);
    assert_store_empty(&go);

    assert_quiet(&lk, &lk_out);
    compare(&go, &go_out, &lk, &lk_out, DIFFERENCES);
}

/// The same comparison against latchkey's file store (runs with or without a keyring
/// backend, so the differences table is checked in every build).
#[test]
fn latchkey_file_store_matches_secretservice() {
    let session = KeyringSession::start();
    let mut go_env = TestEnv::new();
    go_env.with_keyring(&session);
    let mut lk_env = TestEnv::new();
    lk_env.store("file");
    let go = secretservice_run(&go_env);
    let lk = latchkey_run("latchkey (file store)", &lk_env);

    let go_out = go.play();
    assert_store_empty(&go);
    let lk_out = lk.play();
    assert_store_empty(&lk);

    assert_quiet(&lk, &lk_out);
    compare(&go, &go_out, &lk, &lk_out, DIFFERENCES);
}

/// latchkey's two stores are indistinguishable through the protocol.
#[test]
fn latchkey_file_store_matches_keyring_store() {
    let session = KeyringSession::start();
    let mut keyring_env = TestEnv::new();
    keyring_env.with_keyring(&session);
    let mut file_env = TestEnv::new();
    file_env.store("file");
    let keyring = latchkey_run("latchkey (keyring store)", &keyring_env);
    let file = latchkey_run("latchkey (file store)", &file_env);

    let keyring_out = keyring.play();
    let file_out = file.play();
    assert_store_empty(&keyring);
    assert_store_empty(&file);
    assert_quiet(&keyring, &keyring_out);
    compare(&keyring, &keyring_out, &file, &file_out, &[]);
}

/// The premise of the overwrite difference, checked on the Secret Service itself:
/// docker-credential-secretservice 0.6.4 keeps both items and erases both.
#[test]
fn secretservice_overwrite_keeps_both_items() {
    let session = KeyringSession::start();
    let mut env = TestEnv::new();
    env.with_keyring(&session);
    let go = require(SECRETSERVICE_HELPER);
    run(&go, &["store"], &store_json("dup.example", "alice", "one"), &env).assert_success();
    run(&go, &["store"], &store_json("dup.example", "bob", "two"), &env).assert_success();
    assert_eq!(session.search_items(&[("server", "dup.example")]).len(), 2, "{}", session.logs());
    let got = run(&go, &["get"], b"dup.example", &env);
    got.assert_success();
    let (_, user, secret) = parse_get(&got);
    assert!(matches!((user.as_str(), secret.as_str()), ("alice", "one") | ("bob", "two")), "{got}");
    run(&go, &["erase"], b"dup.example", &env).assert_success();
    assert!(session.search_items(&[("server", "dup.example")]).is_empty());
}

/// Both latchkey stores replace on overwrite and keep one credential per registry,
/// whichever spelling of the server URL was used; `list` shows the latest spelling.
fn overwrite_replaces(env: &TestEnv) {
    env.latchkey(&["store"], &store_json("dup.example", "alice", "one")).assert_success();
    env.latchkey(&["store"], &store_json("https://dup.example/v2/", "bob", "two")).assert_success();
    let got = env.latchkey(&["get"], b"dup.example");
    got.assert_success();
    assert_eq!(parse_get(&got), ("dup.example".into(), "bob".into(), "two".into()));
    let list = env.latchkey(&["list"], b"unused");
    list.assert_success();
    assert_eq!(list.stdout_str(), "{\"https://dup.example/v2/\":\"bob\"}\n");
    env.latchkey(&["erase"], b"DUP.example").assert_success();
    let got = env.latchkey(&["get"], b"dup.example");
    assert_eq!(got.assert_protocol_error(), NOT_FOUND);
    let list = env.latchkey(&["list"], b"unused");
    assert_eq!(list.stdout_str(), "{}\n", "{list}");
}

#[test]
fn latchkey_keyring_store_overwrite_replaces() {
    let session = KeyringSession::start();
    let mut env = TestEnv::new();
    env.with_keyring(&session);
    overwrite_replaces(&env);
}

#[test]
fn latchkey_file_store_overwrite_replaces() {
    let mut env = TestEnv::new();
    env.store("file");
    overwrite_replaces(&env);
}

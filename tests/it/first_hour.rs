//! Issue 12, "the first hour": a newcomer's usual mistakes, each answered with what to do.
//! Completions that complete, one man page with no dangling references, help for people at
//! the protocol verbs, `status` that finds what is wrong, and errors that point the right way.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Output, TestEnv, require};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-latchkey");
const SCRIPT: common::Tool = common::Tool { name: "script", package: "bsdutils" };
const BASH: common::Tool = common::Tool { name: "bash", package: "bash" };

fn write_config(env: &TestEnv, text: &str) -> PathBuf {
    let path = env.config_path();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

fn docker_config(env: &mut TestEnv, config: serde_json::Value) -> PathBuf {
    let dir = env.path("docker");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.json"), config.to_string()).unwrap();
    env.set("DOCKER_CONFIG", &dir);
    dir.join("config.json")
}

/// `status` found a problem: exit 1, and the problem line on stdout says `needles`.
fn assert_problem(out: &Output, needles: &[&str]) {
    assert_eq!(out.code, Some(1), "status must fail:\n{out}");
    let stdout = out.stdout_str();
    let problems = stdout.split_once("problems:\n").map(|(_, p)| p).unwrap_or_else(|| panic!("no problems:\n{out}"));
    assert!(
        problems.lines().any(|line| needles.iter().all(|n| line.contains(n))),
        "no problem line with {needles:?}:\n{out}"
    );
    assert!(out.stderr_str().contains("status found"), "{out}");
}

// ---------------------------------------------------------------------------------------
// Item 4: completions and the man page

/// What bash offers for `words` with the cursor on the last one.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    // The function gets (command, word, previous word), as `complete -F` calls it.
    let line = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _docker__credential__latchkey docker-credential-latchkey '{}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.join(" "),
        words[cword],
    );
    let out = Command::new(require(BASH)).args(["--norc", "--noprofile", "-c", &line]).output().unwrap();
    assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

#[test]
fn bash_completion_offers_subcommand_flags() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/completions/docker-credential-latchkey.bash");
    assert_eq!(bash_complete(&script, &["docker-credential-latchkey", "pull", "--pl"]), ["--platform", "--plain-http"]);
    assert_eq!(bash_complete(&script, &["docker-credential-latchkey", "status", "--ch"]), ["--check"]);
    assert_eq!(bash_complete(&script, &["docker-credential-latchkey", "hosts-toml", "x", "--wr"]), ["--write"]);
    assert!(bash_complete(&script, &["docker-credential-latchkey", "conf"]).contains(&"configure-docker".to_owned()));
    // The generated script is the committed one (tests/packaging.rs), so install.sh installs this.
    let generated = Command::new(BIN).args(["completions", "bash"]).output().unwrap().stdout;
    assert_eq!(generated, fs::read(&script).unwrap());
}

#[test]
fn man_page_is_one_page_with_configuration_environment_and_files() {
    let out = Command::new(BIN).arg("man").output().unwrap();
    assert!(out.status.success());
    let man = String::from_utf8(out.stdout).unwrap();
    // No `docker-credential-latchkey-get(1)`: there are no sub-pages.
    let unescaped = man.replace("\\-", "-");
    for (i, _) in unescaped.match_indices("docker-credential-latchkey-") {
        let rest = &unescaped[i + "docker-credential-latchkey-".len()..];
        let word: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        assert!(!rest[word.len()..].starts_with("(1)"), "dangling reference docker-credential-latchkey-{word}(1)");
    }
    assert!(!unescaped.contains(".SH SUBCOMMANDS"), "the sub-page list is gone");
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "CONFIGURATION", "ENVIRONMENT", "FILES"] {
        assert!(man.lines().any(|l| l == format!(".SH {section}")), "no {section} section");
    }
    // Every command is documented on this page, with its options.
    for sub in ["get", "store", "erase", "list", "version", "configure-docker", "status", "pull", "hosts-toml", "login"]
    {
        assert!(unescaped.lines().any(|l| l == format!(".SS {sub}")), "no subsection for {sub}");
    }
    for text in
        ["--platform", "--check", "--write", "LATCHKEY_CONFIG", "LATCHKEY_STORE", "config.toml", "credentials.json"]
    {
        assert!(unescaped.contains(text), "man page lacks {text}");
    }
}

// ---------------------------------------------------------------------------------------
// Item 5: the protocol verbs for people

#[test]
fn help_for_every_verb_and_the_version_flags() {
    let env = TestEnv::new();
    for verb in ["get", "store", "erase", "list", "version"] {
        for args in [vec!["help", verb], vec![verb, "--help"], vec![verb, "-h"]] {
            let out = env.latchkey(&args, b"");
            assert_eq!(out.code, Some(0), "{args:?}:\n{out}");
            let text = out.stdout_str();
            assert!(text.contains(&format!("Usage: docker-credential-latchkey {verb}")), "{args:?}:\n{out}");
            assert!(!text.contains("Unknown credential action"), "{args:?}:\n{out}");
        }
    }
    let out = env.latchkey(&["help", "get"], b"");
    assert!(out.stdout_str().contains("echo ghcr.io | docker-credential-latchkey get"), "{out}");
    let out = env.latchkey(&["help"], b"");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout_str().contains("configure-docker") && out.stdout_str().contains("status"), "{out}");
    let out = env.latchkey(&["help", "status"], b"");
    assert!(out.code == Some(0) && out.stdout_str().contains("--check"), "{out}");
    let out = env.latchkey(&["help", "nonsense"], b"");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("configure-docker"), "names the commands there are: {out}");

    let line = format!("docker-credential-latchkey (latchkey) {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["-V", "--version", "-v", "version"] {
        let out = env.latchkey(&[flag], b"");
        assert_eq!((out.code, out.stdout_str()), (Some(0), line.clone()), "{flag}");
    }
}

/// `args` run with a pseudo-terminal as stdin (and stdout, stderr), by util-linux `script`;
/// its own stdin is empty, which the terminal passes on as end-of-file.
fn at_terminal(env: &TestEnv, args: &str) -> Output {
    let mut cmd = env.command(require(SCRIPT));
    cmd.args(["-qec", &format!("{BIN} {args}"), "/dev/null"]);
    common::run_command(cmd, b"", common::DEFAULT_TIMEOUT)
}

#[test]
fn a_person_at_a_terminal_is_told_what_the_verb_reads() {
    let env = TestEnv::new();
    let out = at_terminal(&env, "get");
    let text = out.stdout_str();
    assert!(text.contains("reading a server URL from stdin"), "{out}");
    assert!(text.contains("echo ghcr.io | docker-credential-latchkey get") && text.contains("Ctrl-D"), "{out}");
    let out = at_terminal(&env, "store");
    assert!(out.stdout_str().contains("reading {\"ServerURL\",\"Username\",\"Secret\"} JSON from stdin"), "{out}");

    // No verb: the help, not only the usage line.
    let out = at_terminal(&env, "");
    assert!(out.stdout_str().contains("configure-docker"), "{out}");
    assert_eq!(out.code, Some(1), "{out}");

    // A program (stdin a pipe) gets the protocol's answers, without the hint.
    let out = env.latchkey(&["get"], b"");
    assert_eq!((out.code, out.stdout_str()), (Some(1), "no credentials server URL\n".to_owned()));
    assert!(out.stderr.is_empty(), "{out}");
    let out = env.latchkey(&[], b"");
    assert_eq!(out.code, Some(1));
    assert!(out.stdout_str().starts_with("Usage: ") && out.stdout_str().ends_with(" <store|get|erase|list|version>\n"));
}

// ---------------------------------------------------------------------------------------
// Item 6: errors that point the right way

#[test]
fn latchkey_config_naming_a_missing_file_is_an_error() {
    let mut env = TestEnv::new();
    let missing = env.path("nope/config.toml");
    env.set("LATCHKEY_CONFIG", &missing);
    let out = env.latchkey(&["get"], b"ghcr.io");
    assert_eq!(out.code, Some(1), "{out}");
    let text = out.stdout_str();
    assert!(text.contains(&format!("LATCHKEY_CONFIG names the config file {}", missing.display())), "{out}");
    assert!(text.contains("does not exist: create it, or unset LATCHKEY_CONFIG"), "{out}");
    let out = env.latchkey(&["status"], b"");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("does not exist: create it, or unset LATCHKEY_CONFIG"), "{out}");
    // `version` answers regardless.
    env.latchkey(&["version"], b"").assert_success();

    // Not set: the default location may be missing (no config, all defaults).
    env.remove("LATCHKEY_CONFIG");
    let out = env.latchkey(&["get"], b"ghcr.io");
    assert_eq!(out.stdout_str(), format!("{}\n", common::NOT_FOUND), "{out}");
}

/// A JWT whose claims say it expires in an hour (hosts-toml only reads the claims).
fn jwt_expiring_in_an_hour() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({"sub": "ci", "aud": "reg.example", "exp": now + 3600, "iat": now});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(b"signature")
    )
}

// ---------------------------------------------------------------------------------------
// Item 8: hosts-toml --write DIR names DIR

#[test]
fn hosts_toml_write_tells_you_to_rewrite_into_the_same_dir() {
    let mut env = TestEnv::new();
    docker_config(&mut env, json!({"auths": {"reg.example": {"registrytoken": jwt_expiring_in_an_hour()}}}));
    let dir = env.path("my certs.d");
    let out = env.latchkey(&["hosts-toml", "reg.example", "--write", dir.to_str().unwrap()], b"");
    out.assert_success();
    let rewrite = format!("docker-credential-latchkey hosts-toml reg.example --write '{}'", dir.display());
    let file = fs::read_to_string(dir.join("reg.example/hosts.toml")).unwrap();
    assert!(file.contains(&format!("#   {rewrite}\n")), "{file}");
    assert!(!file.contains("/etc/containerd/certs.d"), "{file}");
    assert!(out.stderr_str().contains(&format!("rewrite it before then: {rewrite}")), "{out}");
    toml::from_str::<toml::Table>(&file).unwrap();

    // Printed (no --write), the example keeps the usual directory.
    let out = env.latchkey(&["hosts-toml", "reg.example"], b"");
    assert!(out.stdout_str().contains("--write /etc/containerd/certs.d"), "{out}");
}

// ---------------------------------------------------------------------------------------
// Item 7: status finds what is wrong

const MINT_MISSING_KEY: &str = r#"
[registries."reg.example"]
mode = "static-bearer"
[registries."reg.example".identity]
source = "mint"
algorithm = "ES256"
private-key-file = "/nonexistent/latchkey-test/key.pem"
issuer = "i"
subject = "s"
audience = "reg.example"
"#;

const FILE_MISSING_TOKEN: &str = r#"
[registries."reg.example"]
mode = "static-bearer"
[registries."reg.example".identity]
source = "file"
path = "/nonexistent/latchkey-test/token"
"#;

#[test]
fn status_is_healthy_only_when_it_is() {
    let mut env = TestEnv::new();
    docker_config(&mut env, json!({"credHelpers": {"ghcr.io": "latchkey"}}));
    let out = env.latchkey(&["status"], b"");
    out.assert_success();
    assert!(out.stdout_str().contains("problems: none found"), "{out}");
    let json: serde_json::Value = serde_json::from_slice(&env.latchkey(&["status", "--json"], b"").stdout).unwrap();
    assert_eq!(json["problems"], json!([]));
}

#[test]
fn status_fails_on_a_missing_private_key_file() {
    let env = TestEnv::new();
    let config = write_config(&env, MINT_MISSING_KEY);
    let out = env.latchkey(&["status"], b"");
    assert_problem(
        &out,
        &["reg.example: private-key-file /nonexistent/latchkey-test/key.pem cannot be read", "fix private-key-file"],
    );
    assert!(out.stdout_str().contains(&config.display().to_string()), "names the config file: {out}");
    let out = env.latchkey(&["status", "--json"], b"");
    assert_eq!(out.code, Some(1), "{out}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = json["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p.as_str().unwrap().contains("private-key-file")), "{json}");
}

#[test]
fn status_fails_on_an_unreadable_token_file() {
    let env = TestEnv::new();
    write_config(&env, FILE_MISSING_TOKEN);
    assert_problem(
        &env.latchkey(&["status"], b""),
        &[
            "reg.example: path /nonexistent/latchkey-test/token cannot be read",
            "fix path in [registries.\"reg.example\".identity]",
        ],
    );
}

#[test]
fn status_fails_when_docker_cannot_find_latchkey_on_path() {
    let mut env = TestEnv::new();
    docker_config(&mut env, json!({"credHelpers": {"ghcr.io": "latchkey"}}));
    env.set("PATH", "/usr/bin:/bin");
    let dir = Path::new(BIN).parent().unwrap().display().to_string();
    assert_problem(
        &env.latchkey(&["status"], b""),
        &[
            "docker-credential-latchkey is not on PATH, so docker cannot run it for ghcr.io",
            &format!("add {dir} to PATH"),
        ],
    );
}

#[test]
fn status_fails_on_a_misspelled_cred_helpers_value() {
    for value in ["latchky", "docker-credential-latchkey"] {
        let mut env = TestEnv::new();
        docker_config(&mut env, json!({"credHelpers": {"ghcr.io": value}}));
        assert_problem(
            &env.latchkey(&["status"], b""),
            &[
                &format!("credHelpers[\"ghcr.io\"] = \"{value}\""),
                &format!("docker runs docker-credential-{value}, which is not on PATH"),
                "the value must be \"latchkey\" (run: docker-credential-latchkey configure-docker ghcr.io)",
            ],
        );
    }
}

#[test]
fn status_check_asks_each_registry() {
    // A registry that answers 401 with a challenge: reported, not a problem.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let registry = format!("127.0.0.1:{port}");
    let challenge = format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test\"");
    let answer = challenge.clone();
    let thread = std::thread::spawn(move || {
        let request = server.recv().unwrap();
        let path = request.url().to_owned();
        let header = tiny_http::Header::from_bytes("WWW-Authenticate", answer.as_bytes()).unwrap();
        request.respond(tiny_http::Response::from_string("{}").with_status_code(401).with_header(header)).unwrap();
        path
    });
    let mut env = TestEnv::new();
    docker_config(&mut env, json!({"credHelpers": {registry.clone(): "latchkey"}}));
    let out = env.latchkey(&["status", "--check"], b"");
    assert_eq!(thread.join().unwrap(), "/v2/");
    out.assert_success();
    assert!(out.stdout_str().contains(&format!("GET http://{registry}/v2/: 401, {challenge}")), "{out}");

    // One that refuses: a problem.
    let refusing = common::RefusingPort::new();
    let registry = format!("127.0.0.1:{}", refusing.port);
    let mut env = TestEnv::new();
    docker_config(&mut env, json!({"credHelpers": {registry.clone(): "latchkey"}}));
    let out = env.latchkey(&["status", "--check", "--json"], b"");
    assert_eq!(out.code, Some(1), "{out}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["checks"][0]["registry"], registry.as_str());
    let problem = json["problems"][0].as_str().unwrap();
    assert!(
        problem.starts_with(&format!("{registry}: the registry at http://{registry}/v2/ did not answer")),
        "{json}"
    );
}

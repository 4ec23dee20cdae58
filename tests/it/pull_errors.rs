//! `pull` errors that say what happened and what to do (issue 12, item 6), against a real
//! Distribution (Debian `docker-registry`) on loopback, through the built binary:
//!
//! * https spoken to a registry that answers plain HTTP: "answered plain HTTP", `--plain-http`;
//! * no credentials configured and a 401: docker's config is named, with the commands that
//!   configure it (`configure-docker`, `docker login`), not the token service;
//! * latchkey's own static-bearer source failing: the credential helper is named as what
//!   failed, not the token service;
//! * `--plain-http`'s help names the hosts that get plain HTTP by default.
//!
//! Needs `docker-registry` and `htpasswd` (apache2-utils); a missing one fails the test saying
//! which package to install.

use crate::common;
use crate::resolver_support;

use std::fs;

use common::TestEnv;
use resolver_support::*;
use serde_json::json;

const REPO: &str = "errors/app";
const TAG: &str = "v1";

/// `pull IMAGE --output DIR --platform linux/amd64 EXTRA...`, which must fail; its stderr.
fn failing_pull(env: &TestEnv, image: &str, extra: &[&str]) -> String {
    let out_dir = env.path("layout");
    let mut args = vec!["pull", image, "--output", out_dir.to_str().unwrap(), "--platform", "linux/amd64"];
    args.extend_from_slice(extra);
    let out = env.latchkey(&args, b"");
    out.assert_no_panic();
    assert_ne!(out.code, Some(0), "the pull must fail:\n{out}");
    eprintln!("--- pull {image} {extra:?} said:\n{}", out.stderr_str());
    out.stderr_str()
}

/// An empty docker config directory (no config.json at all), and no containers auth files.
fn empty_docker_config(env: &mut TestEnv) -> std::path::PathBuf {
    let dir = env.path("docker");
    fs::create_dir_all(&dir).unwrap();
    env.set("DOCKER_CONFIG", &dir);
    dir.join("config.json")
}

#[test]
fn https_to_a_plain_http_registry_says_so_and_names_plain_http() {
    let registry = Distribution::start(Auth::None);
    let mut env = TestEnv::new();
    empty_docker_config(&mut env);
    let image = format!("{}/{REPO}:{TAG}", registry.host());
    let err = failing_pull(&env, &image, &["--https-only"]);
    let host = registry.host();
    assert!(err.contains(&format!("{host} answered plain HTTP on an https connection")), "says what happened: {err}");
    assert!(err.contains("if it really serves plain http, use --plain-http"), "says what to do: {err}");
    assert!(!err.contains("InvalidContentType"), "not rustls's words: {err}");
}

#[test]
fn no_credentials_configured_names_docker_config_and_what_to_run_htpasswd() {
    let registry = Distribution::start(Auth::Htpasswd(vec![("alice", "s3cret")]));
    let mut env = TestEnv::new();
    let config = empty_docker_config(&mut env);
    let host = registry.host();
    let err = failing_pull(&env, &format!("{host}/{REPO}:{TAG}"), &[]);
    assert_no_credentials_message(&err, &host, &config);
}

#[test]
fn no_credentials_configured_names_docker_config_and_what_to_run_token() {
    // The token service hands out nothing anonymously (a private registry).
    let realm = TokenServer::issuing(TokenPolicy::default());
    let registry = Distribution::start(Auth::Token { realm: realm.url.clone() });
    let mut env = TestEnv::new();
    let config = empty_docker_config(&mut env);
    let host = registry.host();
    let err = failing_pull(&env, &format!("{host}/{REPO}:{TAG}"), &[]);
    assert_no_credentials_message(&err, &host, &config);
    assert!(!err.starts_with("the token service"), "does not lead with the token service: {err}");
    assert_eq!(realm.requests().len(), 1, "one anonymous token request: {:?}", realm.requests());

    // A config.json that exists but configures other registries only: the same advice.
    fs::write(&config, json!({"credHelpers": {"ghcr.io": "latchkey"}}).to_string()).unwrap();
    let err = failing_pull(&env, &format!("{host}/{REPO}:{TAG}"), &[]);
    assert_no_credentials_message(&err, &host, &config);
}

fn assert_no_credentials_message(err: &str, host: &str, config: &std::path::Path) {
    assert!(err.contains(&format!("no credentials for {host} were found in docker's config")), "what happened: {err}");
    assert!(err.contains(&config.display().to_string()), "names the file looked at: {err}");
    assert!(err.contains(&format!("docker-credential-latchkey configure-docker {host}")), "what to run: {err}");
    assert!(err.contains(&format!("docker login {host}")), "or docker login: {err}");
}

#[test]
fn a_failing_static_bearer_source_is_reported_as_the_helper_failing() {
    let realm = TokenServer::issuing(TokenPolicy::default());
    let registry = Distribution::start(Auth::Token { realm: realm.url.clone() });
    let host = registry.host();
    let mut env = TestEnv::new();
    let config = env.config_path();
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(
        &config,
        format!(
            "[registries.\"{host}\"]\nmode = \"static-bearer\"\n[registries.\"{host}\".identity]\n\
             source = \"command\"\nargv = [\"/bin/sh\", \"-c\", \"echo issuer-says-no >&2; exit 1\"]\n"
        ),
    )
    .unwrap();
    docker_config(&mut env, json!({"credHelpers": {&host: "latchkey"}}));
    let err = failing_pull(&env, &format!("{host}/{REPO}:{TAG}"), &[]);
    assert!(err.contains("issuer-says-no"), "the source's stderr is passed through: {err}");
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(
        last.starts_with(&format!("latchkey: the credential helper docker-credential-latchkey failed for {host}")),
        "the error line leads with the helper, and says it failed: {err}"
    );
    assert!(
        last.contains("echo") && last.contains("docker-credential-latchkey get"),
        "how to see it fail alone: {err}"
    );
}

#[test]
fn plain_http_help_names_the_loopback_hosts() {
    let env = TestEnv::new();
    for verb in ["pull", "hosts-toml"] {
        let out = env.latchkey(&[verb, "--help"], b"");
        out.assert_success();
        let help = out.stdout_str();
        let flag =
            help.split("--plain-http").nth(1).unwrap_or_else(|| panic!("no --plain-http in {verb} --help:\n{help}"));
        let text: String = flag.split("--https-only").next().unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
        for words in ["localhost", "*.localhost", "127.0.0.0/8", "[::1]", "every registry", "HTTPS"] {
            assert!(text.contains(words), "{verb} --plain-http help names {words:?}: {text}");
        }
    }
}

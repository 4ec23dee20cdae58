//! `pull` errors that say what happened and what to do (issue 12, item 6), against a real
//! Distribution (Debian `docker-registry`) on loopback, through the built binary:
//!
//! * https spoken to a registry that answers plain HTTP: "answered plain HTTP", `--plain-http`.
//!
//! Needs `docker-registry` and `htpasswd` (apache2-utils); a missing one fails the test saying
//! which package to install.

mod common;
mod resolver_support;

use std::fs;

use common::TestEnv;
use resolver_support::*;

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

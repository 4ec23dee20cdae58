//! The real docker CLI (it reaches credential helpers without a daemon) driving latchkey:
//! `docker login`/`logout` against a Distribution registry, and Docker Hub's OAuth token
//! entries (docker CLI >= 27.4 keeps `.../access-token` and `.../refresh-token` beside
//! `https://index.docker.io/v1/`), which must stay three credentials.

// Unix only: the docker CLI and /bin/sh stand-ins.
#![cfg(unix)]

use crate::common;

use std::process::Command;

use common::{Registry, RegistryAuth, TestEnv, Tool};

const DOCKER: Tool = Tool { name: "docker", package: "docker.io" };

const HUB: &str = "https://index.docker.io/v1/";
const HUB_ACCESS: &str = "https://index.docker.io/v1/access-token";
const HUB_REFRESH: &str = "https://index.docker.io/v1/refresh-token";

/// A test env whose docker config sends `hosts` to latchkey.
fn docker_env(hosts: &[&str]) -> TestEnv {
    let mut env = TestEnv::new();
    let docker_config = env.path("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let helpers: serde_json::Map<String, serde_json::Value> =
        hosts.iter().map(|h| ((*h).to_owned(), serde_json::Value::from("latchkey"))).collect();
    std::fs::write(docker_config.join("config.json"), serde_json::json!({ "credHelpers": helpers }).to_string())
        .unwrap();
    env.set("DOCKER_CONFIG", &docker_config);
    env
}

fn docker(env: &TestEnv, args: &[&str], stdin: &[u8]) -> common::Output {
    let mut cmd: Command = env.command(common::require(DOCKER));
    cmd.args(args);
    common::run_command(cmd, stdin, common::DEFAULT_TIMEOUT)
}

fn get(env: &TestEnv, server_url: &str) -> (String, String, String) {
    let out = env.latchkey(&["get"], server_url.as_bytes());
    out.assert_success();
    common::parse_get(&out)
}

#[test]
fn docker_login_and_logout_go_through_latchkey() {
    let registry = Registry::start(RegistryAuth::Htpasswd { users: vec![("alice".into(), "alice-pw-1".into())] });
    let host = registry.host();
    let env = docker_env(&[&host]);

    let refused = docker(&env, &["login", "-u", "alice", "--password-stdin", &host], b"wrong-password\n");
    assert_ne!(refused.code, Some(0), "a wrong password must fail:\n{refused}");
    assert_eq!(env.latchkey(&["list"], b"").stdout_str().trim_end(), "{}", "nothing stored after a failed login");

    docker(&env, &["login", "-u", "alice", "--password-stdin", &host], b"alice-pw-1\n").assert_success();
    assert_eq!(get(&env, &host), (host.clone(), "alice".into(), "alice-pw-1".into()));

    docker(&env, &["logout", &host], b"").assert_success();
    let after = env.latchkey(&["get"], host.as_bytes());
    assert_eq!(after.assert_protocol_error(), common::NOT_FOUND);
}

#[test]
fn docker_hub_token_entries_are_three_credentials() {
    let env = docker_env(&["index.docker.io", HUB, "docker.io"]);
    for (url, secret) in [(HUB, "hub-password"), (HUB_ACCESS, "access-jwt"), (HUB_REFRESH, "refresh-token")] {
        env.latchkey(&["store"], &common::store_json(url, "hubuser", secret)).assert_success();
    }
    // Each entry answers its own secret, whatever order they were stored in.
    assert_eq!(get(&env, HUB).2, "hub-password");
    assert_eq!(get(&env, HUB_ACCESS).2, "access-jwt");
    assert_eq!(get(&env, HUB_REFRESH).2, "refresh-token");
    // The Hub's aliases still find the Hub entry, not a token entry.
    assert_eq!(get(&env, "docker.io").2, "hub-password");
    let listed: serde_json::Value = serde_json::from_slice(&env.latchkey(&["list"], b"").stdout).unwrap();
    assert_eq!(listed, serde_json::json!({HUB: "hubuser", HUB_ACCESS: "hubuser", HUB_REFRESH: "hubuser"}));

    // `docker logout` erases the Hub entry; the refresh token is still there for it to read
    // and revoke, and erasing it removes it alone.
    docker(&env, &["logout"], b"").assert_success();
    assert_eq!(env.latchkey(&["get"], HUB.as_bytes()).assert_protocol_error(), common::NOT_FOUND);
    assert_eq!(get(&env, HUB_REFRESH).2, "refresh-token");
    env.latchkey(&["erase"], HUB_REFRESH.as_bytes()).assert_success();
    assert_eq!(env.latchkey(&["get"], HUB_REFRESH.as_bytes()).assert_protocol_error(), common::NOT_FOUND);
    assert_eq!(get(&env, HUB_ACCESS).2, "access-jwt");
}

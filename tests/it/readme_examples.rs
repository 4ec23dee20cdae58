//! Every shell example in README.md runs, as written, against loopback servers, so that a
//! newcomer following only the README never meets an example that fails.
//!
//! The ```sh blocks (and the ```toml config blocks the examples rely on) are extracted from
//! README.md and looked up in [`KNOWN`], keyed by the block's first line and pinned by a short
//! hash of its text: a block the table does not know, or a known block whose text changed,
//! fails [`every_readme_block_is_known`] (so a new or edited example cannot go untested). Each
//! known block is either run by the test named in the table or skipped with a written reason.
//!
//! A run is the block's text through `bash` (`set -euo pipefail`) in a [`TestEnv`] whose PATH
//! has the built binary first, with
//! - named substitutions, each of which must occur in the block: README hosts such as
//!   `ghcr.io` or `registry.internal:5000` become a real Distribution registry's
//!   `127.0.0.1:PORT`, `atcr.example` the device-auth test server, `$GITHUB_TOKEN` a test
//!   password, `sha256:...` the digest the test pushed;
//! - skipped lines, each with its reason (a docker daemon, a real browser) and, where one
//!   exists, a stand-in that does what the line would (`docker pull` becomes the `skopeo
//!   inspect` that asks latchkey the same way);
//! - a prelude for the state earlier README steps leave behind (an image on the registry, a
//!   `docker login`), written out in the test.
//!
//! After a run the test checks the effect the README promises (credHelpers written, an OCI
//! layout skopeo inspects, a `[host]` table, files removed). No timing assertions; every child
//! is bounded by [`common::DEFAULT_TIMEOUT`].

use crate::common;
use crate::device_auth;
use crate::resolver_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::{Output, Registry, RegistryAuth, RegistryOptions, TestEnv, Tool};
use resolver_support::TestImage;

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
const INSTALL_SH: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"));

const CURL: Tool = Tool { name: "curl", package: "curl" };
const DOCKER: Tool = Tool { name: "docker", package: "docker.io" };

// =============================================================================================
// The table of README blocks
// =============================================================================================

/// What happens to a README block.
#[derive(Clone, Copy, Debug)]
enum Handling {
    /// Run (or, for a config block, loaded) by this test function.
    Run(&'static str),
    /// Not run, for this reason.
    Skip(&'static str),
}

/// A README block the tests know: its fence language, its first line, the first 12 hex digits
/// of the SHA-256 of its text, and what happens to it.
struct Known {
    lang: &'static str,
    first_line: &'static str,
    fingerprint: &'static str,
    handling: Handling,
}

const KNOWN: &[Known] = &[
    Known {
        lang: "sh",
        first_line: "./install.sh            # build (about 5 minutes), install to ~/.local/bin, self-check store/get/erase on the default store",
        fingerprint: "b5b2e255e6f7",
        handling: Handling::Skip("run by scripts/test.sh itself"),
    },
    Known {
        lang: "sh",
        first_line: "docker-credential-latchkey configure-docker ghcr.io 127.0.0.1:5000   # edits ~/.docker/config.json credHelpers",
        fingerprint: "6f141d66d3af",
        handling: Handling::Run("configure_docker_example"),
    },
    Known {
        lang: "toml",
        first_line: "store = \"auto\"                  # auto | keyring | file",
        fingerprint: "a5dbc8837b13",
        handling: Handling::Run("configuration_reference_loads"),
    },
    Known {
        lang: "toml",
        first_line: "[registries.\"atcr.example\"]",
        fingerprint: "b8c7a0a29a54",
        handling: Handling::Run("device_login_example"),
    },
    Known {
        lang: "sh",
        first_line: "docker-credential-latchkey login atcr.example     # once: browser login, secret stored",
        fingerprint: "a6568e08558c",
        handling: Handling::Run("device_login_example"),
    },
    Known {
        lang: "sh",
        first_line: "docker-credential-latchkey configure-docker ghcr.io",
        fingerprint: "d70c500ea314",
        handling: Handling::Run("stored_credentials_example"),
    },
    Known {
        lang: "sh",
        first_line: "echo '{\"credHelpers\":{\"127.0.0.1:5000\":\"latchkey\"}}' > auth.json",
        fingerprint: "fa9cc5033584",
        handling: Handling::Run("skopeo_auth_json_example"),
    },
    Known {
        lang: "toml",
        first_line: "[registries.\"registry.internal:5000\"]",
        fingerprint: "a7eecba8d71a",
        handling: Handling::Run("minted_static_bearer_example"),
    },
    Known {
        lang: "sh",
        first_line: "docker-credential-latchkey header registry.internal:5000 | curl -sf -H @- https://registry.internal:5000/v2/team/app/tags/list",
        fingerprint: "f30d58a93c4c",
        handling: Handling::Run("minted_static_bearer_example"),
    },
    Known {
        lang: "toml",
        first_line: "# Kubernetes projected service-account token",
        fingerprint: "e55bf7cbe50d",
        handling: Handling::Run("static_bearer_sources_load"),
    },
    Known {
        lang: "rust",
        first_line: "use std::sync::Arc;",
        fingerprint: "041e16c411ee",
        handling: Handling::Run("rust_example_compiles"),
    },
    Known {
        lang: "sh",
        first_line: "docker-credential-latchkey pull ghcr.io/org/app:1.2 --output app               # this machine's platform",
        fingerprint: "d113b6f8413b",
        handling: Handling::Run("pull_and_hosts_toml_example"),
    },
    Known {
        lang: "sh",
        first_line: "docker-credential-latchkey unconfigure-docker ghcr.io 127.0.0.1:5000   # the registries you configured",
        fingerprint: "0db3cb9f46db",
        handling: Handling::Run("uninstall_example"),
    },
];

/// Fence languages whose blocks must be in [`KNOWN`]. Other fences are not examples to run.
const CHECKED_LANGS: &[&str] = &["sh", "bash", "shell", "console", "toml", "rust"];

/// A fenced block of README.md.
#[derive(Clone, Debug)]
struct Block {
    lang: String,
    /// 1-based line of the opening fence.
    line: usize,
    text: String,
}

impl Block {
    fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("").trim_end()
    }

    fn fingerprint(&self) -> String {
        common::sha256_hex(self.text.as_bytes())[..12].to_owned()
    }
}

/// Every fenced block of README.md, in order.
fn readme_blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in README.lines().enumerate() {
        let fence = line.trim_start();
        match open.as_mut() {
            None => {
                if let Some(info) = fence.strip_prefix("```") {
                    let lang = info.split_whitespace().next().unwrap_or("").to_owned();
                    open = Some(Block { lang, line: i + 1, text: String::new() });
                }
            }
            Some(block) => {
                if fence.trim_end() == "```" {
                    blocks.push(open.take().expect("open"));
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
        }
    }
    if let Some(block) = open {
        panic!("README.md line {}: a ```{} block is never closed", block.line, block.lang);
    }
    blocks
}

fn known_entry(block: &Block) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.lang == block.lang && k.first_line == block.first_line())
}

/// Why `block` is not (or no longer) covered, if it is not.
fn coverage_problem(block: &Block) -> Option<String> {
    let Some(known) = known_entry(block) else {
        return Some(format!(
            "README.md line {}: a ```{} block starting `{}` is not in the KNOWN table; add it to \
             tests/it/readme_examples.rs (run it, or skip its lines with a reason), fingerprint \"{}\"",
            block.line,
            block.lang,
            block.first_line(),
            block.fingerprint()
        ));
    };
    (known.fingerprint != block.fingerprint()).then(|| {
        format!(
            "README.md line {}: the ```{} block starting `{}` changed; check that tests/it/readme_examples.rs \
             ({}) still runs it as written, then set its fingerprint to \"{}\" (was \"{}\")",
            block.line,
            block.lang,
            block.first_line(),
            match known.handling {
                Handling::Run(test) => format!("test `{test}`"),
                Handling::Skip(reason) => format!("skipped: {reason}"),
            },
            block.fingerprint(),
            known.fingerprint
        )
    })
}

#[test]
fn every_readme_block_is_known() {
    let blocks: Vec<Block> = readme_blocks().into_iter().filter(|b| CHECKED_LANGS.contains(&b.lang.as_str())).collect();
    let mut problems: Vec<String> = blocks.iter().filter_map(coverage_problem).collect();
    for known in KNOWN {
        let matching = blocks.iter().filter(|b| b.lang == known.lang && b.first_line() == known.first_line).count();
        if matching == 0 {
            problems.push(format!(
                "KNOWN lists a ```{} block starting `{}` that README.md no longer has; remove it from \
                 tests/it/readme_examples.rs (and its test, if nothing else uses it)",
                known.lang, known.first_line
            ));
        } else if matching > 1 {
            problems.push(format!(
                "README.md has {matching} ```{} blocks starting `{}`; KNOWN keys blocks by their first line, \
                 so make the first lines differ",
                known.lang, known.first_line
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "README blocks not covered by tests/it/readme_examples.rs:\n- {}",
        problems.join("\n- ")
    );
}

/// The ```LANG README block the table says `test` runs, checked against the table (a changed
/// block fails here too, so a test never silently runs another text than the one it was
/// written for).
fn block_of(test: &str, lang: &str) -> Block {
    let known: Vec<&Known> =
        KNOWN.iter().filter(|k| k.lang == lang && matches!(k.handling, Handling::Run(t) if t == test)).collect();
    assert_eq!(known.len(), 1, "KNOWN should give `{test}` exactly one ```{lang} block");
    let first_line = known[0].first_line;
    let found: Vec<Block> =
        readme_blocks().into_iter().filter(|b| b.lang == lang && b.first_line() == first_line).collect();
    assert_eq!(found.len(), 1, "README.md should have exactly one ```{lang} block starting `{first_line}`");
    let block = found.into_iter().next().expect("one");
    if let Some(problem) = coverage_problem(&block) {
        panic!("{problem}");
    }
    block
}

// =============================================================================================
// Turning a block into a script and running it
// =============================================================================================

/// A line of a block that is not run: the start of the (logical) line, why, and optionally a
/// stand-in that does what the line would.
struct Skip {
    line: &'static str,
    reason: &'static str,
    instead: Option<&'static str>,
}

/// `block`'s text with `skips` commented out (their stand-ins in their place) and then `subs`
/// applied in order. Each substitution must occur in the block and each skip must match a line,
/// so a README edit that makes one pointless fails here instead of quietly testing less.
fn render(block: &Block, subs: &[(&str, String)], skips: &[Skip]) -> String {
    let mut logical: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in block.text.lines() {
        current.push_str(line);
        if line.ends_with('\\') {
            current.push('\n');
        } else {
            logical.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        logical.push(current);
    }
    let mut used = vec![false; skips.len()];
    let mut script = String::new();
    for line in logical {
        match skips.iter().position(|s| line.trim_start().starts_with(s.line)) {
            Some(i) => {
                used[i] = true;
                let skip = &skips[i];
                script.push_str(&format!("# skipped ({}): {}\n", skip.reason, line.replace("\\\n", " ")));
                if let Some(instead) = skip.instead {
                    script.push_str(&format!("{instead}   # stand-in\n"));
                }
            }
            None => {
                script.push_str(&line);
                script.push('\n');
            }
        }
    }
    for (skip, used) in skips.iter().zip(used) {
        assert!(
            used,
            "README.md line {}: no line of the block starts with `{}` any more; update its skip in tests/it/readme_examples.rs",
            block.line, skip.line
        );
    }
    for (from, to) in subs {
        assert!(
            block.text.contains(from),
            "README.md line {}: the block no longer contains `{from}`; update its substitutions in tests/it/readme_examples.rs",
            block.line
        );
        script = script.replace(from, to);
    }
    script
}

/// Run `prelude` (the state earlier README steps leave) and then `script` with bash in `env`,
/// from `env`'s temp root. Each command gets [`common::DEFAULT_TIMEOUT`].
fn run_script(env: &TestEnv, prelude: &str, script: &str) -> Output {
    let full = format!("set -euo pipefail\nset -x\n{prelude}\n# ---- the README block ----\n{script}");
    let commands = full.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).count();
    let mut cmd = env.command("bash");
    cmd.arg("-c").arg(&full);
    let out = common::run_command(cmd, b"", common::DEFAULT_TIMEOUT * commands.max(1) as u32);
    assert_eq!(
        out.code,
        Some(0),
        "the README example failed as run:\n----- script -----\n{full}----- end -----\n{out}"
    );
    out
}

/// A test env as a newcomer's shell has it: the built binary first on PATH, HOME and
/// DOCKER_CONFIG (= `~/.docker`) in temp dirs, the file store.
fn newcomer_env() -> TestEnv {
    let mut env = TestEnv::new();
    let docker_config = env.path("home/.docker");
    env.set("DOCKER_CONFIG", &docker_config);
    fs::create_dir_all(env.config_path().parent().expect("config dir")).expect("create config dir");
    env
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e}):\n{text}", path.display()))
}

fn cred_helpers(env: &TestEnv) -> serde_json::Value {
    read_json(&env.path("home/.docker/config.json"))["credHelpers"].clone()
}

/// `get` through latchkey, as a client would: (ServerURL, Username, Secret).
fn get(env: &TestEnv, server: &str) -> (String, String, String) {
    let out = env.latchkey(&["get"], server.as_bytes());
    out.assert_success();
    common::parse_get(&out)
}

/// This machine's platform as `pull` and skopeo pick it by default (`linux/amd64` on x86_64).
fn machine_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// A small multi-platform OCI image: linux/amd64, linux/arm64, and this machine's platform.
fn test_image(seed: u64) -> TestImage {
    let machine = machine_platform();
    let mut platforms = vec!["linux/amd64", "linux/arm64"];
    if !platforms.contains(&machine.as_str()) {
        platforms.push(&machine);
    }
    TestImage::build(seed, &platforms, 2048, false)
}

// =============================================================================================
// The examples
// =============================================================================================

#[test]
fn configure_docker_example() {
    let env = newcomer_env();
    let block = block_of("configure_docker_example", "sh");
    let out = run_script(&env, "", &render(&block, &[], &[]));
    assert_eq!(
        cred_helpers(&env),
        serde_json::json!({"127.0.0.1:5000": "latchkey"}),
        "configure-docker wrote both, unconfigure-docker removed ghcr.io:\n{out}"
    );
    assert!(
        out.stderr_str().contains("--dry-run ghcr.io\nlatchkey:") && out.stderr_str().contains("\"ghcr.io\""),
        "--dry-run says what it would do with ghcr.io:\n{out}"
    );
}

/// Load a config block as latchkey's config: `list` answers (a config that does not parse
/// fails every verb), and `status` names each of its registries.
fn assert_config_loads(block: &Block, registries: &[&str]) {
    let env = newcomer_env();
    fs::write(env.config_path(), &block.text).expect("write config");
    let listed = env.latchkey(&["list"], b"");
    listed.assert_success();
    assert_eq!(listed.stdout_str().trim_end(), "{}", "the README config loads:\n{listed}");
    let status = env.latchkey(&["status"], b"");
    status.assert_no_panic();
    let text = format!("{}{}", status.stdout_str(), status.stderr_str());
    assert!(!text.contains("invalid config"), "the README config loads:\n{status}");
    for registry in registries {
        assert!(text.contains(registry), "status names {registry} from the README config:\n{status}");
    }
}

#[test]
fn configuration_reference_loads() {
    let block = block_of("configuration_reference_loads", "toml");
    assert_config_loads(&block, &["ghcr.io", "reg.internal:5000"]);
}

#[test]
fn static_bearer_sources_load() {
    let block = block_of("static_bearer_sources_load", "toml");
    let registries: Vec<String> =
        ["reg.example", "reg2.example", "reg3.example", "reg4.example", "reg5.example", "reg6.example", "reg7.example"]
            .map(String::from)
            .to_vec();
    assert_config_loads(&block, &registries.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn device_login_example() {
    let server = device_auth::AuthServer::start();
    // The user approves on their phone: no browser is needed on this machine.
    server.with(|s| s.auto_approve_at = Some(0));
    let mut env = newcomer_env();
    // A real browser is not available here; headless login prints the URL and polls.
    env.set("LATCHKEY_INTERACTIVE", "0");
    env.set("LATCHKEY_QR", "0");

    let config = block_of("device_login_example", "toml");
    let config_text =
        render(&config, &[("https://atcr.example", server.base.clone()), ("atcr.example", server.host.clone())], &[]);
    fs::write(env.config_path(), config_text).expect("write config");

    let example = block_of("device_login_example", "sh");
    let script = render(
        &example,
        &[("atcr.example", server.host.clone())],
        &[Skip {
            line: "docker push ",
            reason: "needs a docker daemon; the stand-in asks latchkey what docker's `get` would",
            instead: Some("docker-credential-latchkey get <<< atcr.example"),
        }],
    );
    let out = run_script(&env, "", &script);

    let stdout = out.stdout_str();
    assert!(
        stdout.contains(&format!("\"Username\":\"{}\"", device_auth::ACCOUNT))
            && stdout.contains(&format!("\"Secret\":\"{}", device_auth::SECRET_PREFIX)),
        "`get` answered the device secret `login` stored:\n{out}"
    );
    assert!(stdout.contains("alive"), "status shows the session alive:\n{out}");
    assert_eq!(cred_helpers(&env), serde_json::json!({ server.host.clone(): "latchkey" }));
    let after = env.latchkey(&["get"], server.host.as_bytes());
    assert_eq!(after.assert_protocol_error(), common::NOT_FOUND, "logout erased the device secret");
}

#[test]
fn stored_credentials_example() {
    let registry = password_registry("test-token-1");
    let host = registry.host();
    test_image(1).push(&registry.base(), "me/private", "latest", Some(&common::basic_auth("me", "test-token-1")));
    common::require(DOCKER);
    common::require(common::SKOPEO);
    let mut env = newcomer_env();
    env.set("GITHUB_TOKEN", "test-token-1");

    let example = block_of("stored_credentials_example", "sh");
    let script = render(
        &example,
        &[("ghcr.io", host.clone())],
        &[Skip {
            line: "docker pull ",
            reason: "needs a docker daemon; skopeo asks latchkey through the same credHelpers entry",
            instead: Some("skopeo inspect --tls-verify=false docker://ghcr.io/me/private:latest"),
        }],
    );
    let out = run_script(&env, "", &script);
    assert_eq!(cred_helpers(&env), serde_json::json!({ host.clone(): "latchkey" }));
    assert_eq!(
        get(&env, &host),
        (host.clone(), "me".into(), "test-token-1".into()),
        "docker login stored through latchkey"
    );
    assert!(out.stdout_str().contains("\"Digest\""), "the image was inspected with the stored credential:\n{out}");
}

#[test]
fn skopeo_auth_json_example() {
    let registry = password_registry("secret");
    let host = registry.host();
    test_image(2).push(&registry.base(), "app", "1", Some(&common::basic_auth("me", "secret")));
    common::require(common::SKOPEO);
    let env = newcomer_env();

    let example = block_of("skopeo_auth_json_example", "sh");
    let out = run_script(&env, "", &render(&example, &[("127.0.0.1:5000", host.clone())], &[]));
    assert_eq!(get(&env, &host), (host.clone(), "me".into(), "secret".into()), "skopeo login stored through latchkey");
    let layout = env.path("app");
    assert!(
        layout.join("oci-layout").is_file() && layout.join("index.json").is_file(),
        "skopeo copy wrote an OCI layout:\n{out}"
    );
    resolver_support::check_layout(&layout);
}

/// The registry of the minted static-bearer example: Distribution with `auth: token`, issuer
/// `latchkey`, service `registry.internal`, trusting the test signing certificate.
fn token_registry() -> Registry {
    quiet_registry(RegistryAuth::Token {
        realm: "http://127.0.0.1:9/no-token-service".into(),
        service: "registry.internal".into(),
        issuer: "latchkey".into(),
        root_cert_bundle: resolver_support::signing_cert_path(),
    })
}

/// A Distribution registry logging warnings only (its log is printed when a test fails).
fn quiet_registry(auth: RegistryAuth) -> Registry {
    Registry::start_with(RegistryOptions { log_level: "warn", ..RegistryOptions::new(auth) })
}

/// A registry whose only user is `me` with `password` (htpasswd).
fn password_registry(password: &str) -> Registry {
    quiet_registry(RegistryAuth::Htpasswd { users: vec![("me".into(), password.into())] })
}

/// A token the example's registry accepts for pushing `repo` (the test's own, not latchkey's).
fn push_token(repo: &str) -> String {
    let mut extra = serde_json::Map::new();
    extra.insert(
        "access".into(),
        serde_json::json!([{"type": "repository", "name": repo, "actions": ["push", "pull"]}]),
    );
    let spec = latchkey_jwt::MintSpec {
        algorithm: latchkey_jwt::Algorithm::ES256,
        private_key_pem: fs::read_to_string(resolver_support::signing_key_path()).expect("test key").into(),
        key_id: latchkey_jwt::KeyIdHeader::Libtrust,
        issuer: "latchkey".into(),
        subject: "readme-test".into(),
        audience: "registry.internal".into(),
        lifetime: Duration::from_secs(600),
        not_before_skew: Duration::from_secs(30),
        extra_claims: extra,
    };
    format!("Bearer {}", latchkey_jwt::mint(&spec, SystemTime::now()).expect("mint").expose())
}

/// The minted static-bearer config block, written as `env`'s latchkey config for `host`.
fn write_mint_config(env: &TestEnv, host: &str) {
    let key = common::private_copy(env, &resolver_support::signing_key_path(), "signing-key.pem");
    let config = block_of("minted_static_bearer_example", "toml");
    let text = render(
        &config,
        &[("/etc/latchkey/signing-key.pem", key.display().to_string()), ("registry.internal:5000", host.to_owned())],
        &[],
    );
    fs::write(env.config_path(), text).expect("write config");
}

#[test]
fn minted_static_bearer_example() {
    common::require(CURL);
    let registry = token_registry();
    let host = registry.host();
    test_image(3).push(&registry.base(), "team/app", "1", Some(&push_token("team/app")));
    let env = newcomer_env();
    write_mint_config(&env, &host);

    let example = block_of("minted_static_bearer_example", "sh");
    let script = render(
        &example,
        &[
            // The test registry speaks plain HTTP on loopback.
            ("https://registry.internal:5000", registry.base()),
            ("registry.internal:5000", host.clone()),
        ],
        &[],
    );
    let out = run_script(&env, "", &script);
    let tags: serde_json::Value = serde_json::from_str(out.stdout_str().trim())
        .unwrap_or_else(|e| panic!("curl printed the tag list ({e}):\n{out}"));
    assert_eq!(tags, serde_json::json!({"name": "team/app", "tags": ["1"]}));
}

#[test]
fn pull_and_hosts_toml_example() {
    common::require(common::SKOPEO);
    let registry = password_registry("secret");
    let host = registry.host();
    let basic = common::basic_auth("me", "secret");
    let org_app = test_image(4);
    org_app.push(&registry.base(), "org/app", "1.2", Some(&basic));
    test_image(5).push(&registry.base(), "team/app", "v1", Some(&basic));
    let bearer_registry = token_registry();
    let bearer_host = bearer_registry.host();

    let env = newcomer_env();
    write_mint_config(&env, &bearer_host);
    let certs = env.path("certs.d");
    // What the earlier README steps leave: docker sends both registries to latchkey, and
    // `docker login` stored the password registry's credential.
    let prelude = format!(
        "docker-credential-latchkey configure-docker {host} {bearer_host}\n\
         printf '%s' '{{\"ServerURL\":\"{host}\",\"Username\":\"me\",\"Secret\":\"secret\"}}' | docker-credential-latchkey store"
    );
    let example = block_of("pull_and_hosts_toml_example", "sh");
    let script = render(
        &example,
        &[
            ("ghcr.io", host.clone()),
            ("sha256:...", org_app.index_digest.clone()),
            ("127.0.0.1:5000", host.clone()),
            ("registry.internal:5000", bearer_host.clone()),
            // Writing /etc needs root; the same command writes a temp dir instead.
            ("/etc/containerd/certs.d", certs.display().to_string()),
        ],
        &[],
    );
    let out = run_script(&env, &prelude, &script);

    let layout = env.path("app");
    let blobs = resolver_support::check_layout(&layout);
    // This machine's platform by tag, then linux/arm64 by the index's digest.
    for digest in
        org_app.platform_digests(&machine_platform()).into_iter().chain(org_app.platform_digests("linux/arm64"))
    {
        assert!(blobs.contains(&digest), "the layout holds {digest} of org/app:\n{out}");
    }
    let names: Vec<String> = resolver_support::index_entries(&layout)
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&"1.2".to_owned()), "index.json names tag 1.2: {names:?}\n{out}");
    let stdout = out.stdout_str();
    assert!(stdout.contains("\"Digest\""), "skopeo inspected the layout:\n{out}");
    assert!(stdout.contains("[host."), "hosts-toml printed a [host] table:\n{out}");
    let written = certs.join(&bearer_host).join("hosts.toml");
    let hosts_toml = fs::read_to_string(&written).unwrap_or_else(|e| panic!("{}: {e}\n{out}", written.display()));
    assert!(hosts_toml.contains("[host.") && hosts_toml.contains("Authorization"), "{hosts_toml}");
}

/// What install.sh installs under PREFIX (with `BINDIR` = `$PREFIX/bin`): the paths it writes,
/// read from install.sh itself, so a file it starts installing must be in the uninstall block.
fn installed_files(prefix: &Path) -> Vec<PathBuf> {
    let bin = "docker-credential-latchkey";
    let mut files = Vec::new();
    for line in INSTALL_SH.lines() {
        let line = line.trim();
        let destination = if line.starts_with("install ") {
            line.rsplit(' ').next()
        } else if let Some((_, after)) = line.split_once(" > ") {
            after.split_whitespace().next()
        } else {
            None
        };
        let Some(destination) = destination else { continue };
        let path = destination
            .trim_matches('"')
            .replace("$BINDIR", "$PREFIX/bin")
            .replace("$BIN", bin)
            .replace("$PREFIX", &prefix.display().to_string());
        if !path.contains('$') && path.starts_with(&prefix.display().to_string()) {
            files.push(PathBuf::from(path));
        }
    }
    assert!(
        files.len() >= 5,
        "install.sh's installed files were not found (binary, man page, 3 completions): {files:?}"
    );
    files
}

#[test]
fn uninstall_example() {
    let env = newcomer_env();
    let prefix = env.path("home/.local");
    // Not install.sh itself (a release build): the files it installs, and the credHelpers
    // entries `./install.sh ghcr.io 127.0.0.1:5000` writes.
    let files = installed_files(&prefix);
    for file in &files {
        fs::create_dir_all(file.parent().expect("has a dir")).expect("create install dir");
        fs::write(file, "installed by install.sh\n").expect("create installed file");
    }
    let prelude = "docker-credential-latchkey configure-docker ghcr.io 127.0.0.1:5000";
    let example = block_of("uninstall_example", "sh");
    let out = run_script(&env, prelude, &render(&example, &[], &[]));
    for file in &files {
        assert!(!file.exists(), "the uninstall block removes {}:\n{out}", file.display());
    }
    let helpers = cred_helpers(&env);
    assert!(
        helpers.is_null() || helpers == serde_json::json!({}),
        "unconfigure-docker removed both entries, left {helpers}:\n{out}"
    );
}

// =============================================================================================
// The README's Rust example, compiled
// =============================================================================================

/// The README's ```rust block, verbatim between the markers: it is compiled with this test (so
/// `latchkey::resolver` and every name it uses exist), and [`rust_example_compiles`] checks the
/// README still holds exactly this text. It is not run: it pulls from ghcr.io.
#[rustfmt::skip]
#[allow(dead_code)]
mod readme_rust_example {
// BEGIN README RUST EXAMPLE
use std::sync::Arc;
use latchkey::resolver::pull::{PlatformSelector, Quiet};
use latchkey::resolver::{pull, ClientOptions, Credential, PullOptions, Reference, RegistryClient, Resolver};

async fn pull_app() -> Result<(), Box<dyn std::error::Error>> {
    let resolver = Arc::new(Resolver::from_env()?); // docker config.json, then auth.json
    match &resolver.resolve("ghcr.io")?.credential { // runs the helper once; cached
        Credential::StaticBearer(_) => println!("literal Authorization header, no challenge"),
        other => println!("{}", other.kind()), // identity token, username/password, anonymous
    }
    let client = RegistryClient::new(resolver, ClientOptions::default())?;
    let image: Reference = "ghcr.io/org/app:1.2".parse()?;
    let options = PullOptions { platforms: PlatformSelector::All, ..PullOptions::new("app") };
    let summary = pull(&client, &image, &options, Arc::new(Quiet)).await?; // OCI layout in ./app
    println!("{}: {} blobs, {} 401s", summary.digest, summary.blobs, summary.http.unauthorized);
    Ok(())
}
// END README RUST EXAMPLE
}

#[test]
fn rust_example_compiles() {
    let readme = block_of("rust_example_compiles", "rust");
    let this_file = include_str!("readme_examples.rs");
    let begin = "// BEGIN README RUST EXAMPLE\n";
    let start = this_file.find(begin).expect("begin marker") + begin.len();
    let end = this_file.find("// END README RUST EXAMPLE").expect("end marker");
    assert_eq!(
        readme.text,
        &this_file[start..end],
        "README.md line {}: copy the ```rust block into tests/it/readme_examples.rs's readme_rust_example module",
        readme.line
    );
}

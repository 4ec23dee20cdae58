//! `configure-docker` / `unconfigure-docker` through the real binary, on config files in a
//! temporary DOCKER_CONFIG and HOME.

use std::fs;
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-latchkey");

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    docker_dir: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let docker_dir = root.join("docker");
        fs::create_dir_all(root.join("home")).unwrap();
        Env { _tmp: tmp, root, docker_dir }
    }

    fn config(&self) -> PathBuf {
        self.docker_dir.join("config.json")
    }

    fn write_config(&self, text: &str) {
        fs::create_dir_all(&self.docker_dir).unwrap();
        fs::write(self.config(), text).unwrap();
    }

    fn read_config(&self) -> String {
        fs::read_to_string(self.config()).unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("DOCKER_CONFIG", &self.docker_dir)
            .env("HOME", self.root.join("home"))
            .env("XDG_RUNTIME_DIR", self.root.join("run"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("RUST_BACKTRACE");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(out.status.success(), "exit {:?}\nstdout: {}\nstderr: {}", out.status, stdout(out), stderr(out));
}

#[track_caller]
fn assert_exit_1(out: &Output) {
    assert_eq!(out.status.code(), Some(1), "stdout: {}\nstderr: {}", stdout(out), stderr(out));
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A config as docker and a user leave it: docker's tab layout, credsStore, proxies, keys
/// latchkey knows nothing about, escapes and number spellings serde_json would rewrite.
const RICH_CONFIG: &str = r#"{
	"auths": {
		"registry.example.com": {
			"auth": "dXNlcjpwdw=="
		},
		"https://index.docker.io/v1/": {}
	},
	"zzFirstUnknown": {"nested": [1, 2.50, 1e3, -0, true, null]},
	"credsStore": "secretservice",
	"proxies": {
		"default": {
			"httpProxy": "http://proxy:3128",
			"noProxy": "localhost,127.0.0.1"
		}
	},
	"detachKeys": "ctrl-e,e",
	"escaped": "caf\u00e9 \/ \"q\"",
	"aaLastUnknown": 12345678901234567890
}
"#;

#[test]
fn existing_keys_are_kept_byte_for_byte_in_order() {
    let env = Env::new();
    env.write_config(RICH_CONFIG);
    let out = env.run(&["configure-docker", "ghcr.io"]);
    assert_ok(&out);
    let expected = RICH_CONFIG.replace(
        "\t\"aaLastUnknown\": 12345678901234567890\n}\n",
        "\t\"aaLastUnknown\": 12345678901234567890,\n\t\"credHelpers\": {\n\t\t\"ghcr.io\": \"latchkey\"\n\t}\n}\n",
    );
    assert_ne!(expected, RICH_CONFIG);
    assert_eq!(env.read_config(), expected);
    assert!(stdout(&out).is_empty(), "human text belongs on stderr: {}", stdout(&out));

    // A second registry joins the existing credHelpers object, after the first.
    assert_ok(&env.run(&["configure-docker", "https://LOCALHOST:5000/v2/"]));
    let expected = expected.replace(
        "\t\t\"ghcr.io\": \"latchkey\"\n",
        "\t\t\"ghcr.io\": \"latchkey\",\n\t\t\"localhost:5000\": \"latchkey\"\n",
    );
    assert_eq!(env.read_config(), expected);
}

#[test]
fn second_run_changes_nothing_and_says_so() {
    let env = Env::new();
    env.write_config(RICH_CONFIG);
    assert_ok(&env.run(&["configure-docker", "ghcr.io", "localhost:5000"]));
    let first = fs::read(env.config()).unwrap();
    let out = env.run(&["configure-docker", "localhost:5000", "ghcr.io"]);
    assert_ok(&out);
    assert_eq!(fs::read(env.config()).unwrap(), first);
    let err = stderr(&out);
    assert!(err.contains("nothing changed"), "{err}");
    assert!(err.contains("already uses \"latchkey\""), "{err}");
}

#[test]
fn another_helpers_entry_needs_force() {
    let env = Env::new();
    let original = "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\",\n\t\t\"quay.io\": \"latchkey\"\n\t}\n}\n";
    env.write_config(original);

    let out = env.run(&["configure-docker", "quay.io", "gcr.io", "ghcr.io"]);
    assert_exit_1(&out);
    let err = stderr(&out);
    assert!(err.starts_with("latchkey: "), "{err}");
    assert!(err.contains("\"gcloud\"") && err.contains("--force") && err.contains("gcr.io"), "{err}");
    assert!(err.contains(&env.config().display().to_string()), "{err}");
    // Nothing at all is written, not even the registries that had no conflict.
    assert_eq!(env.read_config(), original);

    let out = env.run(&["configure-docker", "--force", "gcr.io", "ghcr.io"]);
    assert_ok(&out);
    assert!(stderr(&out).contains("replaced \"gcloud\""), "{}", stderr(&out));
    assert_eq!(
        env.read_config(),
        "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"latchkey\",\n\t\t\"quay.io\": \"latchkey\",\n\t\t\"ghcr.io\": \"latchkey\"\n\t}\n}\n"
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_config_stays_a_symlink_and_its_target_is_updated() {
    let env = Env::new();
    let dotfiles = env.root.join("dotfiles");
    fs::create_dir_all(&dotfiles).unwrap();
    let target = dotfiles.join("docker-config.json");
    fs::write(&target, "{\"credsStore\": \"pass\"}\n").unwrap();
    set_mode(&target, 0o664); // wider than a usual umask lets through
    fs::create_dir_all(&env.docker_dir).unwrap();
    let link_text = Path::new("../dotfiles/docker-config.json");
    std::os::unix::fs::symlink(link_text, env.config()).unwrap();

    assert_ok(&env.run(&["configure-docker", "ghcr.io"]));

    let meta = fs::symlink_metadata(env.config()).unwrap();
    assert!(meta.file_type().is_symlink(), "config.json was replaced by a regular file");
    assert_eq!(fs::read_link(env.config()).unwrap(), link_text);
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "{\"credsStore\": \"pass\", \"credHelpers\": {\"ghcr.io\": \"latchkey\"}}\n"
    );
    assert_eq!(mode(&target), 0o664, "the target's mode is kept");
    let leftovers: Vec<_> = fs::read_dir(&dotfiles).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "temp files left behind: {leftovers:?}");
}

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let env = Env::new();
    let original = "{\n\t\"auths\": {}\n}\n";
    env.write_config(original);
    let out = env.run(&["configure-docker", "--dry-run", "ghcr.io"]);
    assert_ok(&out);
    let config = env.config().display().to_string();
    assert_eq!(
        stdout(&out),
        format!(
            "--- {config}\n+++ {config}\n@@ -1,3 +1,6 @@\n {{\n-\t\"auths\": {{}}\n+\t\"auths\": {{}},\n\
             +\t\"credHelpers\": {{\n+\t\t\"ghcr.io\": \"latchkey\"\n+\t}}\n }}\n"
        )
    );
    assert!(stderr(&out).contains("dry run"), "{}", stderr(&out));
    assert_eq!(env.read_config(), original);

    // Missing file: the diff is against /dev/null and neither file nor directory appears.
    let env = Env::new();
    let out = env.run(&["configure-docker", "--dry-run", "ghcr.io"]);
    assert_ok(&out);
    assert!(stdout(&out).starts_with("--- /dev/null\n"), "{}", stdout(&out));
    assert!(!env.docker_dir.exists());

    // unconfigure --dry-run too.
    let env = Env::new();
    let original = "{\"credHelpers\": {\"ghcr.io\": \"latchkey\"}}";
    env.write_config(original);
    let out = env.run(&["unconfigure-docker", "--dry-run", "ghcr.io"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("-{\"credHelpers\""), "{}", stdout(&out));
    assert_eq!(env.read_config(), original);
}

#[test]
fn a_missing_file_is_created_private() {
    let env = Env::new();
    let out = env.run(&["configure-docker", "ghcr.io"]);
    assert_ok(&out);
    assert_eq!(env.read_config(), "{\n\t\"credHelpers\": {\n\t\t\"ghcr.io\": \"latchkey\"\n\t}\n}\n");
    #[cfg(unix)]
    {
        assert_eq!(mode(&env.config()), 0o600);
        assert_eq!(mode(&env.docker_dir), 0o700);
    }
}

#[test]
fn invalid_json_is_an_error_naming_the_file_and_position_and_is_left_alone() {
    let env = Env::new();
    let broken = "{\n\t\"auths\": {},\n\t\"credHelpers\": {\"a.io\": \"x\",}\n}\n";
    env.write_config(broken);
    for args in [
        &["configure-docker", "ghcr.io"][..],
        &["configure-docker", "--force", "ghcr.io"],
        &["unconfigure-docker", "a.io"],
    ] {
        let out = env.run(args);
        assert_exit_1(&out);
        let err = stderr(&out);
        assert!(err.starts_with("latchkey: "), "{err}");
        assert!(err.contains(&env.config().display().to_string()), "{err}");
        assert!(err.contains("line 3 column"), "{err}");
        assert!(stdout(&out).is_empty());
        assert_eq!(env.read_config(), broken);
    }

    // Valid JSON that is not an object is refused the same way.
    env.write_config("[\"ghcr.io\"]\n");
    let out = env.run(&["configure-docker", "ghcr.io"]);
    assert_exit_1(&out);
    assert!(stderr(&out).contains("not a JSON object"), "{}", stderr(&out));
    assert_eq!(env.read_config(), "[\"ghcr.io\"]\n");
}

#[test]
fn unconfigure_removes_only_latchkey_entries() {
    let env = Env::new();
    env.write_config(
        "{\n\t\"credHelpers\": {\n\t\t\"ghcr.io\": \"latchkey\",\n\t\t\"gcr.io\": \"gcloud\",\n\t\t\"quay.io\": \"latchkey\"\n\t},\n\t\"credsStore\": \"pass\"\n}\n",
    );
    let out = env.run(&["unconfigure-docker", "ghcr.io", "gcr.io"]);
    assert_ok(&out);
    assert_eq!(
        env.read_config(),
        "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\",\n\t\t\"quay.io\": \"latchkey\"\n\t},\n\t\"credsStore\": \"pass\"\n}\n"
    );
    let err = stderr(&out);
    assert!(err.contains("\"gcr.io\" uses \"gcloud\"") && err.contains("left alone"), "{err}");

    // Removing the last entry removes the emptied credHelpers object too.
    let out = env.run(&["unconfigure-docker", "quay.io", "gcr.io"]);
    assert_ok(&out);
    assert!(env.read_config().contains("\"gcr.io\": \"gcloud\""));
    env.write_config("{\n\t\"credHelpers\": {\n\t\t\"quay.io\": \"latchkey\"\n\t},\n\t\"credsStore\": \"pass\"\n}\n");
    assert_ok(&env.run(&["unconfigure-docker", "quay.io"]));
    assert_eq!(env.read_config(), "{\n\t\"credsStore\": \"pass\"\n}\n");

    // Nothing to remove: the file is not touched, and a missing file is not created.
    assert_ok(&env.run(&["unconfigure-docker", "quay.io"]));
    assert_eq!(env.read_config(), "{\n\t\"credsStore\": \"pass\"\n}\n");
    let empty = Env::new();
    let out = empty.run(&["unconfigure-docker", "ghcr.io"]);
    assert_ok(&out);
    assert!(!empty.config().exists());
}

#[test]
fn docker_hub_is_written_under_the_keys_docker_skopeo_and_crane_look_up() {
    let env = Env::new();
    assert_ok(&env.run(&["configure-docker", "docker.io"]));
    let value: serde_json::Value = serde_json::from_str(&env.read_config()).unwrap();
    assert_eq!(
        value["credHelpers"],
        serde_json::json!({"https://index.docker.io/v1/": "latchkey", "docker.io": "latchkey", "index.docker.io": "latchkey"})
    );
    // Any Hub alias is the same registry, so this changes nothing.
    let before = env.read_config();
    assert_ok(&env.run(&["configure-docker", "index.docker.io", "https://registry-1.docker.io/v2/"]));
    assert_eq!(env.read_config(), before);
    assert_ok(&env.run(&["unconfigure-docker", "registry-1.docker.io"]));
    assert_eq!(env.read_config(), "{}\n");
}

#[test]
fn config_file_location() {
    // --config wins over DOCKER_CONFIG.
    let env = Env::new();
    let explicit = env.root.join("elsewhere.json");
    assert_ok(&env.run(&["configure-docker", "--config", explicit.to_str().unwrap(), "ghcr.io"]));
    assert!(fs::read_to_string(&explicit).unwrap().contains("\"ghcr.io\": \"latchkey\""));
    assert!(!env.config().exists());

    // Without DOCKER_CONFIG (or with it empty, as docker treats it): ~/.docker/config.json.
    for docker_config in [None, Some("")] {
        let env = Env::new();
        let mut cmd = env.command(&["configure-docker", "ghcr.io"]);
        match docker_config {
            None => cmd.env_remove("DOCKER_CONFIG"),
            Some(v) => cmd.env("DOCKER_CONFIG", v),
        };
        assert_ok(&cmd.output().unwrap());
        let home_config = env.root.join("home").join(".docker").join("config.json");
        assert!(fs::read_to_string(home_config).unwrap().contains("\"ghcr.io\": \"latchkey\""));
    }
}

#[test]
fn containers_auth_is_edited_too_when_asked() {
    let env = Env::new();
    let auth_file = env.root.join("containers-auth.json");
    fs::write(&auth_file, "{\n\t\"auths\": {\n\t\t\"quay.io\": {\"auth\": \"eDp5\"}\n\t}\n}\n").unwrap();
    let out = env
        .command(&["configure-docker", "--containers-auth", "docker.io", "ghcr.io"])
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .output()
        .unwrap();
    assert_ok(&out);
    // containers-auth.json is read by containers/image only: Docker Hub is docker.io there.
    assert_eq!(
        fs::read_to_string(&auth_file).unwrap(),
        "{\n\t\"auths\": {\n\t\t\"quay.io\": {\"auth\": \"eDp5\"}\n\t},\n\t\"credHelpers\": {\n\t\t\"docker.io\": \"latchkey\",\n\t\t\"ghcr.io\": \"latchkey\"\n\t}\n}\n"
    );
    assert!(env.read_config().contains("\"https://index.docker.io/v1/\": \"latchkey\""));

    // Without REGISTRY_AUTH_FILE: $XDG_RUNTIME_DIR/containers/auth.json.
    let out = env.run(&["unconfigure-docker", "--containers-auth", "ghcr.io"]);
    assert_ok(&out);
    assert!(!env.read_config().contains("ghcr.io"));
    assert!(!env.root.join("run/containers/auth.json").exists());
    assert_ok(&env.run(&["configure-docker", "--containers-auth", "ghcr.io"]));
    assert_eq!(
        fs::read_to_string(env.root.join("run/containers/auth.json")).unwrap(),
        "{\n\t\"credHelpers\": {\n\t\t\"ghcr.io\": \"latchkey\"\n\t}\n}\n"
    );

    // A conflict in either file stops both.
    let env = Env::new();
    fs::write(&auth_file, "{\"credHelpers\": {\"ghcr.io\": \"pass\"}}").unwrap();
    let out = env
        .command(&["configure-docker", "--containers-auth", "ghcr.io"])
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .output()
        .unwrap();
    assert_exit_1(&out);
    assert!(!env.config().exists(), "config.json was written although auth.json refused");
}

#[test]
fn bad_registry_names_are_refused() {
    let env = Env::new();
    for bad in ["ftp://ghcr.io", "user:pw@ghcr.io", ""] {
        let out = env.run(&["configure-docker", bad]);
        assert_exit_1(&out);
        assert!(stderr(&out).contains("invalid registry"), "{bad:?}: {}", stderr(&out));
    }
    assert!(!env.config().exists());
}

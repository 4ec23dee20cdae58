//! skopeo as a real client of latchkey: a Distribution registry with htpasswd auth on
//! loopback, an auth file whose `credHelpers` routes the registry to latchkey, and then
//! `skopeo login` (stores through latchkey), `skopeo copy` (pulls with what latchkey
//! answers), `skopeo logout` (erases through latchkey) and a pull after logout (refused).
//! Once with the keyring store in a private gnome-keyring session, once with the file store.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

const USER: &str = "skopeo-user";
/// Characters a careless client or helper would mangle in JSON or on a command line.
const PASSWORD: &str = "pa ss&<word>\"\\é";
const REPO: &str = "latchkey/tiny";

struct Client<'a> {
    env: &'a TestEnv,
    skopeo: PathBuf,
    registry: &'a Registry,
    authfile: PathBuf,
    policy: PathBuf,
}

impl<'a> Client<'a> {
    fn new(env: &'a mut TestEnv, registry: &'a Registry) -> Self {
        let skopeo = require(SKOPEO);
        // Isolate skopeo from the machine's containers config as well.
        let registries_conf = env.path("registries.conf");
        fs::write(&registries_conf, "").expect("write registries.conf");
        env.set("CONTAINERS_REGISTRIES_CONF", &registries_conf);
        let policy = env.path("policy.json");
        fs::write(&policy, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).expect("write policy.json");
        let authfile = env.path("auth.json");
        let helpers = serde_json::json!({ "credHelpers": { registry.host(): "latchkey" } });
        fs::write(&authfile, helpers.to_string()).expect("write auth.json");
        Client { env, skopeo, registry, authfile, policy }
    }

    fn skopeo(&self, args: &[&str]) -> Output {
        let mut all = vec!["--policy", self.policy.to_str().unwrap()];
        all.extend_from_slice(args);
        run(&self.skopeo, &all, b"", self.env)
    }

    fn image(&self) -> String {
        format!("docker://{}/{REPO}:v1", self.registry.host())
    }

    fn push_with_explicit_creds(&self, image: &OciImage) {
        let creds = format!("{USER}:{PASSWORD}");
        let out = self.skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &image.reference(),
            &self.image(),
        ]);
        assert_eq!(out.code, Some(0), "push failed:\n{out}\nregistry log:\n{}", self.registry.logs());
    }

    fn login(&self) -> Output {
        self.skopeo(&[
            "login",
            "--authfile",
            self.authfile.to_str().unwrap(),
            "--tls-verify=false",
            "--username",
            USER,
            "--password",
            PASSWORD,
            &self.registry.host(),
        ])
    }

    fn logout(&self) -> Output {
        self.skopeo(&[
            "logout",
            "--authfile",
            self.authfile.to_str().unwrap(),
            "--tls-verify=false",
            &self.registry.host(),
        ])
    }

    fn pull(&self, dest: &Path) -> Output {
        self.skopeo(&[
            "copy",
            "--authfile",
            self.authfile.to_str().unwrap(),
            "--src-tls-verify=false",
            &self.image(),
            &format!("oci:{}:v1", dest.display()),
        ])
    }

    /// What latchkey itself answers for the registry, in the same environment.
    fn helper_get(&self) -> Output {
        self.env.latchkey(&["get"], self.registry.host().as_bytes())
    }
}

/// The config digest of the one image in an OCI layout.
fn pulled_config_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("pulled index.json")).expect("index JSON");
    let manifest_digest = index["manifests"][0]["digest"].as_str().expect("manifest digest").to_owned();
    let blob = layout.join("blobs/sha256").join(manifest_digest.trim_start_matches("sha256:"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(blob).expect("pulled manifest")).expect("manifest JSON");
    manifest["config"]["digest"].as_str().expect("config digest").to_owned()
}

fn login_pull_logout(env: &mut TestEnv, check_store: impl Fn(&TestEnv, &Registry, bool)) {
    let registry = Registry::start(RegistryAuth::Htpasswd { users: vec![(USER.into(), PASSWORD.into())] });
    let layout = env.path("image");
    let image = build_oci_image(&layout, "v1", &[("hello.txt", b"hello from latchkey's tests\n")]);
    let client = Client::new(env, &registry);
    client.push_with_explicit_creds(&image);

    // Anonymous pulls are refused, and latchkey has nothing yet.
    let anonymous = client.pull(&client.env.path("pull-anonymous"));
    assert_ne!(anonymous.code, Some(0), "anonymous pull should fail:\n{anonymous}");
    assert!(anonymous.stderr_str().contains("unauthorized"), "{anonymous}");
    assert_eq!(client.helper_get().assert_protocol_error(), NOT_FOUND);

    // login: skopeo checks the password against the registry, then stores it through latchkey.
    let login = client.login();
    assert_eq!(login.code, Some(0), "skopeo login failed:\n{login}\nregistry log:\n{}", registry.logs());
    let got = client.helper_get();
    got.assert_success();
    assert_eq!(parse_get(&got), (registry.host(), USER.to_owned(), PASSWORD.to_owned()));
    check_store(client.env, &registry, true);
    // The auth file still routes to latchkey and holds no password of its own.
    let authfile = fs::read_to_string(&client.authfile).expect("auth file");
    assert!(!authfile.contains("pa ss") && !authfile.contains(&base64(PASSWORD.as_bytes())), "{authfile}");
    assert!(authfile.contains("latchkey"), "{authfile}");

    // copy: skopeo asks latchkey (`get`) and pulls with the answer.
    let dest = client.env.path("pulled");
    let pull = client.pull(&dest);
    assert_eq!(pull.code, Some(0), "skopeo copy with latchkey's credentials failed:\n{pull}\n{}", registry.logs());
    assert_eq!(pulled_config_digest(&dest), image.config_digest, "pulled a different image");

    // logout: skopeo erases through latchkey.
    let logout = client.logout();
    assert_eq!(logout.code, Some(0), "skopeo logout failed:\n{logout}");
    assert_eq!(client.helper_get().assert_protocol_error(), NOT_FOUND);
    check_store(client.env, &registry, false);

    // With nothing stored, skopeo goes on anonymously and the registry refuses it.
    let after = client.pull(&client.env.path("pulled-after-logout"));
    assert_ne!(after.code, Some(0), "a pull after logout should fail:\n{after}");
    let stderr = after.stderr_str();
    assert!(stderr.contains("unauthorized") || stderr.contains("authentication required"), "{after}");
    assert!(!stderr.contains(PASSWORD), "the password leaked into skopeo's output:\n{after}");
}

#[test]
fn skopeo_login_pull_logout_with_keyring_store() {
    let session = KeyringSession::start();
    let mut env = TestEnv::new();
    env.with_keyring(&session);
    login_pull_logout(&mut env, |env, _registry, stored| {
        // The keyring store keeps nothing on disk.
        assert!(!env.store_file().exists(), "the keyring store wrote {}", env.store_file().display());
        let list = env.latchkey(&["list"], b"unused");
        list.assert_success();
        assert_eq!(list.stdout_str() != "{}\n", stored, "{list}");
    });
}

#[test]
fn skopeo_login_pull_logout_with_file_store() {
    let mut env = TestEnv::new();
    env.store("file");
    login_pull_logout(&mut env, |env, registry, stored| {
        let file = env.store_file();
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let json: serde_json::Value = serde_json::from_str(&text).expect("the store file is JSON");
        let entry = &json["credentials"][registry.host()];
        if stored {
            assert_eq!(entry["Username"], USER, "{text}");
            assert_eq!(entry["Secret"], PASSWORD, "{text}");
        } else {
            assert!(entry.is_null(), "logout left the entry in the store file:\n{text}");
        }
    });
}

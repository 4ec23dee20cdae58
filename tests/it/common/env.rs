//! An isolated environment.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// A cleared environment whose HOME, XDG dirs and LATCHKEY_* all point into one temp
/// dir, so nothing a test runs can read or write a real user's files or keyring.
/// The store defaults to `file`; the latchkey data dir is not created, so the binary
/// must create it with the right permissions.
pub struct TestEnv {
    pub root: tempfile::TempDir,
    vars: BTreeMap<OsString, OsString>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let root = tempfile::Builder::new().prefix("latchkey-test-").tempdir().expect("temp dir");
        let r = root.path();
        let mut vars = BTreeMap::new();
        let mut set = |k: &str, v: &Path| {
            vars.insert(OsString::from(k), v.as_os_str().to_owned());
        };
        for (var, sub) in [
            ("HOME", "home"),
            ("XDG_CONFIG_HOME", "home/.config"),
            ("XDG_DATA_HOME", "home/.local/share"),
            ("XDG_CACHE_HOME", "home/.cache"),
            ("XDG_STATE_HOME", "home/.local/state"),
            ("XDG_RUNTIME_DIR", "run"),
            ("TMPDIR", "tmp"),
        ] {
            let dir = r.join(sub);
            fs::create_dir_all(&dir).expect("create temp sub dir");
            set(var, &dir);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(r.join("run"), fs::Permissions::from_mode(0o700)).expect("chmod run dir");
        }
        set("LATCHKEY_DATA_DIR", &r.join("latchkey/data"));
        set("LATCHKEY_CACHE_DIR", &r.join("latchkey/cache"));
        vars.insert("LATCHKEY_STORE".into(), "file".into());
        // The binary's own directory first: clients (skopeo) find the helper on PATH.
        let bin_dir = latchkey().parent().expect("binary has a directory").to_path_buf();
        let inherited = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&inherited)))
            .expect("PATH joins");
        vars.insert("PATH".into(), path);
        vars.insert("LANG".into(), "C.UTF-8".into());
        TestEnv { root, vars }
    }

    /// A path inside the temp root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    pub fn set(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.vars.insert(key.as_ref().to_owned(), value.as_ref().to_owned());
        self
    }

    pub fn remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.vars.remove(key.as_ref());
        self
    }

    pub fn var(&self, key: &str) -> Option<&OsStr> {
        self.vars.get(OsStr::new(key)).map(OsString::as_os_str)
    }

    /// LATCHKEY_STORE.
    pub fn store(&mut self, kind: &str) -> &mut Self {
        self.set("LATCHKEY_STORE", kind)
    }

    /// Talk to `session`'s Secret Service (and use the keyring store).
    pub fn with_keyring(&mut self, session: &KeyringSession) -> &mut Self {
        self.set("DBUS_SESSION_BUS_ADDRESS", &session.address);
        self.store("keyring")
    }

    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(self.var("LATCHKEY_DATA_DIR").expect("set in new()"))
    }

    /// The default config location under the temp home (no LATCHKEY_CONFIG: naming a missing
    /// file there is an error, and most tests have no config).
    pub fn config_path(&self) -> PathBuf {
        PathBuf::from(self.var("XDG_CONFIG_HOME").expect("set in new()")).join("latchkey/config.toml")
    }

    /// The file store's credentials file.
    pub fn store_file(&self) -> PathBuf {
        self.data_dir().join("credentials.json")
    }

    pub fn vars(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// `program` with exactly this environment, run from the temp root.
    pub fn command(&self, program: impl AsRef<Path>) -> Command {
        let mut cmd = Command::new(program.as_ref());
        cmd.env_clear().envs(self.vars()).current_dir(self.root.path());
        cmd
    }

    /// Run latchkey with `args` and `stdin`.
    pub fn latchkey(&self, args: &[&str], stdin: &[u8]) -> Output {
        run(LATCHKEY, args, stdin, self)
    }
}

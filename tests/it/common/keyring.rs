//! A private D-Bus session with a real gnome-keyring Secret Service.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

/// A session bus of our own (no service activation, nothing else on it) and an unlocked
/// gnome-keyring-daemon serving `org.freedesktop.secrets` on it, with its keyrings in a
/// temp dir. Both processes are killed on drop.
pub struct KeyringSession {
    pub address: String,
    dir: tempfile::TempDir,
    dbus: Child,
    keyring: Child,
    _dbus_stdout: BufReader<ChildStdout>,
}

const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

impl KeyringSession {
    pub fn start() -> Self {
        let dbus_daemon = require(DBUS_DAEMON);
        require(DBUS_SEND);
        let gnome_keyring = require(GNOME_KEYRING);
        let dir = tempfile::Builder::new().prefix("latchkey-keyring-").tempdir().expect("temp dir");
        let d = dir.path();
        for sub in ["home", "data", "config", "cache", "run"] {
            fs::create_dir_all(d.join(sub)).expect("create keyring sub dir");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(d.join("run"), fs::Permissions::from_mode(0o700)).expect("chmod run dir");
        }
        let config = d.join("bus.conf");
        fs::write(&config, BUS_CONFIG.replace("@SOCKET@", &d.join("bus").display().to_string()))
            .expect("write bus config");

        let mut dbus = Command::new(&dbus_daemon)
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(d.join("dbus.log")).expect("dbus log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", dbus_daemon.display()));
        let (tx, rx) = mpsc::channel();
        let stdout = dbus.stdout.take().expect("piped");
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send((line, reader));
        });
        let (address, dbus_stdout) = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok((line, reader)) if !line.trim().is_empty() => (line.trim().to_owned(), reader),
            _ => {
                let _ = dbus.kill();
                let _ = dbus.wait();
                panic!(
                    "dbus-daemon did not print its address; its log:\n{}",
                    fs::read_to_string(d.join("dbus.log")).unwrap_or_default()
                );
            }
        };

        let keyring = Command::new(&gnome_keyring)
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", d.join("home"))
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_CACHE_HOME", d.join("cache"))
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .stdin(Stdio::piped())
            .stdout(fs::File::create(d.join("keyring.out")).expect("keyring log"))
            .stderr(fs::File::create(d.join("keyring.log")).expect("keyring log"))
            .spawn();
        let mut keyring = match keyring {
            Ok(k) => k,
            Err(e) => {
                let _ = dbus.kill();
                let _ = dbus.wait();
                panic!("cannot start {}: {e}", gnome_keyring.display());
            }
        };
        {
            // The login keyring's password: non-empty, then EOF.
            let mut stdin = keyring.stdin.take().expect("piped");
            let _ = stdin.write_all(b"latchkey-test-password");
        }
        let mut session = KeyringSession { address, dir, dbus, keyring, _dbus_stdout: dbus_stdout };
        session.wait_ready();
        session
    }

    /// Wait until the Secret Service owns its name and has a default collection.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.keyring.try_wait() {
                panic!("gnome-keyring-daemon exited ({status}) before serving secrets:\n{}", self.logs());
            }
            let owned = self.dbus_send(&[
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ]);
            if owned.code == Some(0) && owned.stdout_str().contains("boolean true") {
                let alias = self.dbus_send(&[
                    "--dest=org.freedesktop.secrets",
                    "/org/freedesktop/secrets",
                    "org.freedesktop.Secret.Service.ReadAlias",
                    "string:default",
                ]);
                if alias.code == Some(0) && alias.stdout_str().contains("/org/freedesktop/secrets/collection/") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the Secret Service did not come up in 30 s:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `dbus-send --session --print-reply ARGS` on this bus. gnome-keyring can answer a brand-new
    /// client's first call with UnknownMethod before it has registered the client (the race
    /// src/store/keyring/linux.rs works around for latchkey); that answer is retried.
    pub fn dbus_send(&self, args: &[&str]) -> Output {
        let mut attempt = 0;
        loop {
            let mut cmd = Command::new(require(DBUS_SEND));
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .args(["--session", "--print-reply"])
                .args(args);
            let out = run_command(cmd, b"", Duration::from_secs(20));
            attempt += 1;
            let raced = out.code != Some(0) && out.stderr_str().contains("org.freedesktop.DBus.Error.UnknownMethod");
            if !raced || attempt == 5 {
                return out;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Object paths of the Secret Service items whose attributes include all of `attrs`.
    pub fn search_items(&self, attrs: &[(&str, &str)]) -> Vec<String> {
        let dict = attrs.iter().map(|(k, v)| format!("{k},{v}")).collect::<Vec<_>>().join(",");
        let out = self.dbus_send(&[
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.SearchItems",
            &format!("dict:string:string:{dict}"),
        ]);
        out.assert_success();
        out.stdout_str()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("object path \"").and_then(|p| p.strip_suffix('"')))
            .filter(|p| p.starts_with("/org/freedesktop/secrets/collection/"))
            .map(str::to_owned)
            .collect()
    }

    pub fn logs(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "dbus-daemon log:\n{}\ngnome-keyring-daemon log:\n{}{}",
            read("dbus.log"),
            read("keyring.out"),
            read("keyring.log")
        )
    }
}

impl Drop for KeyringSession {
    fn drop(&mut self) {
        let _ = self.keyring.kill();
        let _ = self.keyring.wait();
        let _ = self.dbus.kill();
        let _ = self.dbus.wait();
    }
}

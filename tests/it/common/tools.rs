//! System tools.

use std::fs;
use std::path::{Path, PathBuf};

/// A program from a Debian package that a test needs.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    pub name: &'static str,
    pub package: &'static str,
}

pub const DBUS_DAEMON: Tool = Tool { name: "dbus-daemon", package: "dbus" };
pub const DBUS_SEND: Tool = Tool { name: "dbus-send", package: "dbus" };
pub const GNOME_KEYRING: Tool = Tool { name: "gnome-keyring-daemon", package: "gnome-keyring" };
pub const SECRETSERVICE_HELPER: Tool =
    Tool { name: "docker-credential-secretservice", package: "golang-docker-credential-helpers" };
pub const DOCKER_REGISTRY: Tool = Tool { name: "docker-registry", package: "docker-registry" };
pub const SKOPEO: Tool = Tool { name: "skopeo", package: "skopeo" };
pub const HTPASSWD: Tool = Tool { name: "htpasswd", package: "apache2-utils" };

/// The path of `tool`, or a test failure that says which package to install.
pub fn require(tool: Tool) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(tool.name);
        if is_executable(&candidate) {
            return candidate;
        }
    }
    panic!(
        "`{}` is not installed; this test needs it. Install it with `apt-get install -y {}` \
         (./scripts/test.sh installs every test dependency)",
        tool.name, tool.package
    );
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file())
}

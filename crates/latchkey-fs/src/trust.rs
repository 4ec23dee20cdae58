//! Whether a file could only have been written by the user running latchkey.
//!
//! latchkey's config can name a `command` source, which runs as whoever runs docker; its
//! token cache and file store decide what `get` answers. So, like ssh ("Bad owner or
//! permissions") and git ("dubious ownership"), latchkey refuses such files, and the
//! directories holding them, when another user could have written them:
//! - owned by another uid: refused, except root in a system location (outside the user's
//!   home directory: `/etc/latchkey`, a mounted secret), and except nothing when latchkey
//!   runs as root (root using another user's files would act on that user's say);
//! - writable by group or others: refused, except a directory with the sticky bit (`/tmp`);
//! - a private key readable by group or others: refused, as ssh refuses an unprotected key.
//!
//! Every refusal names the path and the `chmod`/`chown` that fixes it. On Windows the
//! checks pass: files there are protected by the profile directory's ACL.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What a file is for: it decides which checks apply and how the refusal is worded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// latchkey's config file (it can name programs to run).
    Config,
    /// A private key latchkey signs with: also refused when others can read it.
    PrivateKey,
    /// A token cache file or directory.
    Cache,
    /// The file store's credentials or directory.
    Store,
}

impl Purpose {
    fn noun(self) -> &'static str {
        match self {
            Purpose::Config => "config",
            Purpose::PrivateKey => "private key",
            Purpose::Cache => "token cache",
            Purpose::Store => "credential store",
        }
    }
}

/// Why a path is not trusted, and what fixes it. Its text never contains file contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untrusted {
    pub path: PathBuf,
    pub purpose: Purpose,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusing to use the {} {}: {}; another user could have written it. Fix: {}",
            self.purpose.noun(),
            self.path.display(),
            self.problem,
            self.fix
        )
    }
}

impl std::error::Error for Untrusted {}

impl From<Untrusted> for io::Error {
    fn from(e: Untrusted) -> io::Error {
        io::Error::new(io::ErrorKind::PermissionDenied, e.to_string())
    }
}

/// Check a file (following a symlink to what it names) for `purpose`. A missing file passes:
/// callers handle absence themselves.
pub fn check_file(path: &Path, purpose: Purpose) -> Result<(), Untrusted> {
    imp::check(path, purpose, false)
}

/// Check a directory for `purpose`: owned by the user (or root in a system location) and
/// not writable by others unless sticky. A missing directory passes.
pub fn check_dir(dir: &Path, purpose: Purpose) -> Result<(), Untrusted> {
    imp::check(dir, purpose, true)
}

/// Check `path` and every directory above it, as ssh's StrictModes does: whoever can write
/// any of them can rename the real file away and plant another. Root-owned directories
/// outside the user's home (`/`, `/etc`, `/home`) and sticky ones (`/tmp`) pass.
pub fn check_file_and_ancestors(path: &Path, purpose: Purpose) -> Result<(), Untrusted> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for dir in absolute.ancestors().skip(1) {
        if !dir.as_os_str().is_empty() {
            check_dir(dir, purpose)?;
        }
    }
    check_file(path, purpose)
}

/// Check `path` and the directory it is in.
pub fn check_file_and_dir(path: &Path, purpose: Purpose) -> Result<(), Untrusted> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        check_dir(dir, purpose)?;
    }
    check_file(path, purpose)
}

#[cfg(unix)]
mod imp {
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    use super::{Purpose, Untrusted};

    pub fn check(path: &Path, purpose: Purpose, is_dir: bool) -> Result<(), Untrusted> {
        let Ok(meta) = std::fs::metadata(path) else { return Ok(()) };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let refuse = |problem: String, fix: String| Untrusted { path: path.to_path_buf(), purpose, problem, fix };
        let shown = path.display();
        let owner = meta.uid();
        if owner != me && !(owner == 0 && me != 0 && in_system_location(path)) {
            return Err(refuse(
                format!("it is owned by uid {owner}, not by you (uid {me})"),
                if me == 0 {
                    format!("run latchkey as uid {owner} (the owner), or `chown root {shown}` if root should own it")
                } else {
                    format!("`chown {me} {shown}` (as root), or use a {} of your own", purpose.noun())
                },
            ));
        }
        let mode = meta.mode() & 0o7777;
        let sticky = mode & 0o1000 != 0;
        if mode & 0o022 != 0 && !(is_dir && sticky) {
            return Err(refuse(
                format!("it is writable by group or others (mode {:04o})", mode),
                format!("`chmod go-w {shown}`"),
            ));
        }
        if purpose == Purpose::PrivateKey && !is_dir && mode & 0o077 != 0 {
            return Err(refuse(
                format!("it is readable by group or others (mode {:04o}), as ssh refuses a key", mode),
                format!("`chmod 600 {shown}`"),
            ));
        }
        Ok(())
    }

    /// A path outside the user's home directory (`/etc`, `/var/run/secrets`, ...), where
    /// root-owned files are how administrators provide them.
    fn in_system_location(path: &Path) -> bool {
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => {
                let home = std::fs::canonicalize(&home).unwrap_or_else(|_| home.into());
                home == Path::new("/") || !absolute.starts_with(&home)
            }
            None => true,
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use std::path::Path;

    use super::{Purpose, Untrusted};

    pub fn check(_path: &Path, _purpose: Purpose, _is_dir: bool) -> Result<(), Untrusted> {
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn own_private_files_pass() {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o700);
        let file = dir.path().join("config.toml");
        fs::write(&file, "x").unwrap();
        chmod(&file, 0o644);
        check_file_and_dir(&file, Purpose::Config).unwrap();
        chmod(&file, 0o600);
        check_file_and_dir(&file, Purpose::PrivateKey).unwrap();
        check_file(&dir.path().join("missing"), Purpose::Config).unwrap();
    }

    #[test]
    fn group_or_other_writable_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        fs::write(&file, "x").unwrap();
        for mode in [0o664, 0o646, 0o666] {
            chmod(&file, mode);
            let e = check_file(&file, Purpose::Config).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(&file.display().to_string()) && text.contains("chmod go-w"), "{text}");
        }
        chmod(&file, 0o600);
        chmod(dir.path(), 0o777);
        let e = check_file_and_dir(&file, Purpose::Store).unwrap_err();
        assert_eq!(e.path, dir.path());
        chmod(dir.path(), 0o1777);
        check_dir(dir.path(), Purpose::Cache).expect("a sticky directory such as /tmp is fine");
        let e = check_file(&file, Purpose::Store);
        assert!(e.is_ok(), "the file itself is private: {e:?}");
        chmod(dir.path(), 0o700);
    }

    /// As root (CI runs as root), a file of another user is refused: root acting on another
    /// user's config would run what that user wrote.
    #[test]
    fn another_users_file_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root to give a file to another uid");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        fs::write(&file, "x").unwrap();
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        let e = check_file(&file, Purpose::Config).unwrap_err();
        assert!(e.problem.contains("owned by uid 65534"), "{e}");
        assert!(e.fix.contains("chown root"), "{e}");
    }

    #[test]
    fn a_writable_ancestor_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        fs::create_dir_all(&nested).unwrap();
        let file = nested.join("config.toml");
        fs::write(&file, "x").unwrap();
        check_file_and_ancestors(&file, Purpose::Config).unwrap();
        chmod(&dir.path().join("a"), 0o777);
        let e = check_file_and_ancestors(&file, Purpose::Config).unwrap_err();
        assert_eq!(e.path, dir.path().join("a"), "{e}");
        chmod(&dir.path().join("a"), 0o1777);
        check_file_and_ancestors(&file, Purpose::Config).expect("a sticky ancestor is fine");
    }

    #[test]
    fn a_private_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        fs::write(&key, "k").unwrap();
        chmod(&key, 0o640);
        let text = check_file(&key, Purpose::PrivateKey).unwrap_err().to_string();
        assert!(text.contains("chmod 600") && text.contains("private key"), "{text}");
        check_file(&key, Purpose::Config).expect("a readable config is fine");
    }
}

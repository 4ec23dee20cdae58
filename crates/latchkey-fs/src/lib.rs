//! Private directories and atomic, permission-safe file replacement, and [`trust`]: whether
//! a file could only have been written by the user.

pub mod trust;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Create `dir` (and missing parents) owner-only (0700 on Unix). An existing directory is
/// left as it is: latchkey never chmods a directory it did not create (it may be shared, or
/// a symlink to somewhere else); callers that need it private check it with [`trust`].
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_private_dir(parent)?;
    }
    #[cfg(unix)]
    let builder = {
        use std::os::unix::fs::DirBuilderExt;
        let mut builder = fs::DirBuilder::new();
        builder.mode(0o700);
        builder
    };
    #[cfg(not(unix))]
    let builder = fs::DirBuilder::new();
    match builder.create(dir) {
        Ok(()) => {}
        // Someone else made it (or planted a symlink) since we looked: not ours, so not chmodded.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    #[cfg(unix)]
    {
        // We created it; the umask may have narrowed 0700 further. Set exactly owner-only,
        // on the directory itself (never through a symlink someone swapped in).
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::symlink_metadata(dir)?;
        if meta.is_dir() && meta.permissions().mode() & 0o777 != 0o700 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// Replace `path` with `contents` atomically: write a sibling temp file with `mode`,
/// fsync it, rename it over `path`, fsync the directory. A crash at any point leaves either
/// the old or the new file, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = create_new_with_mode(&tmp, mode)?;
        // The umask narrowed the creation mode; set exactly what the caller asked for.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        rename_replacing(&tmp, path)?;
        sync_dir(dir);
        remove_stale_temp_files(dir, name);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `rename(from, to)`, replacing `to`. On Windows a rename over a file that another process
/// has open (a reader of the cache, an antivirus, the indexer) fails with a sharing
/// violation or "access denied" until it closes it: retry those for a bounded while (about
/// 2 s in all) before giving up.
fn rename_replacing(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(windows)]
    {
        const ERROR_ACCESS_DENIED: i32 = 5;
        const ERROR_SHARING_VIOLATION: i32 = 32;
        const ERROR_LOCK_VIOLATION: i32 = 33;
        let mut pause = std::time::Duration::from_millis(1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match fs::rename(from, to) {
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION)
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }
    #[cfg(not(windows))]
    fs::rename(from, to)
}

/// Remove the temp files (`.NAME.tmp.PID`) that processes killed mid-write left next to
/// `NAME`, so they do not pile up: a file whose PID no longer runs is garbage. A file of a
/// live process is left alone (it may be writing right now, under a lock we do not hold).
fn remove_stale_temp_files(dir: &Path, name: &std::ffi::OsStr) {
    let Some(name) = name.to_str() else { return };
    let prefix = format!(".{name}.tmp.");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this PID exists. Where that cannot be asked, assume it does.
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
        // Signal 0 checks existence only; EPERM means it exists but is someone else's.
        // SAFETY: kill(2) with signal 0 sends nothing and has no memory effects.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(windows)]
    {
        windows::process_alive(pid)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = pid;
        true
    }
}

#[cfg(windows)]
mod windows {
    use std::ffi::c_void;

    const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;
    const ERROR_INVALID_PARAMETER: i32 = 87;
    const STILL_ACTIVE: u32 = 259;

    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn OpenProcess(desired_access: u32, inherit_handle: i32, process_id: u32) -> *mut c_void;
        fn GetExitCodeProcess(process: *mut c_void, exit_code: *mut u32) -> i32;
        fn CloseHandle(handle: *mut c_void) -> i32;
    }

    /// OpenProcess fails with ERROR_INVALID_PARAMETER for a PID no process has; a process
    /// that exited but whose handle someone still holds answers an exit code other than
    /// STILL_ACTIVE. Anything else (access denied: another user's process) counts as alive.
    pub fn process_alive(pid: u32) -> bool {
        // SAFETY: plain Win32 calls; the handle is checked for null and closed once.
        unsafe {
            let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
            if handle.is_null() {
                return std::io::Error::last_os_error().raw_os_error() != Some(ERROR_INVALID_PARAMETER);
            }
            let mut code = 0u32;
            let ok = GetExitCodeProcess(handle, &mut code);
            CloseHandle(handle);
            ok == 0 || code == STILL_ACTIVE
        }
    }
}

fn create_new_with_mode(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    match options.open(path) {
        // A temp file left by a killed process with our pid (pids are reused): replace it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            options.open(path)
        }
        other => other,
    }
}

fn sync_dir(dir: &Path) {
    // Durability of the rename itself; not available (nor needed) on every platform.
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Open (creating if needed) a lock file and hold an exclusive lock on it until the
/// returned guard drops. The lock file is separate from the data file because the data
/// file is replaced by rename, which would orphan a lock held on it.
pub fn lock_exclusive(lock_path: &Path) -> io::Result<File> {
    let file = open_lock_file(lock_path)?;
    file.lock()?;
    Ok(file)
}

/// [`lock_exclusive`], giving up after `wait`: every wait in latchkey is bounded. The error
/// says who holds it (another latchkey process) and what to do if none is running.
pub fn lock_exclusive_within(lock_path: &Path, wait: std::time::Duration) -> io::Result<File> {
    let file = open_lock_file(lock_path)?;
    lock_within(&file, wait).map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "another latchkey process has held {} for over {}s; if none is running, delete it",
                lock_path.display(),
                wait.as_secs()
            ),
        ),
        _ => e,
    })?;
    Ok(file)
}

/// Take the exclusive lock on an open lock file, polling until `wait` has passed
/// (`ErrorKind::TimedOut`). A `wait` too large for the clock is capped at a day.
pub fn lock_within(file: &File, wait: std::time::Duration) -> io::Result<()> {
    use std::time::{Duration, Instant};
    let now = Instant::now();
    let deadline = now.checked_add(wait).or_else(|| now.checked_add(Duration::from_secs(86_400))).unwrap_or(now);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the lock is held by another process"));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Open (creating if needed, 0600) a lock file, without following a symlink.
pub fn open_lock_file(lock_path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        // O_NOFOLLOW: a lock path someone replaced with a symlink must not make us create
        // (or truncate) a file elsewhere.
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(lock_path)
}

/// Open a file for reading without following a symlink at its last component (on Unix): a
/// cache or store file replaced by a symlink is refused, not read through.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Follow a symlink chain to the file that should actually be rewritten, so that a
/// symlinked config stays a symlink.
pub fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("too many levels of symbolic links at {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Not a test: the live writer of `a_write_removes_temp_files_of_dead_writers_only`
    /// (this test binary, run with `--ignored --exact tests::live_writer`).
    #[test]
    #[ignore]
    fn live_writer() {
        if std::env::var_os("LATCHKEY_FS_LIVE_WRITER").is_some() {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }

    fn this_test_binary(args: &[&str]) -> std::process::Child {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(args)
            .env("LATCHKEY_FS_LIVE_WRITER", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    #[test]
    fn a_write_removes_temp_files_of_dead_writers_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f.json");
        // A process that has exited (its handle still held on Windows: still dead).
        let mut dead = this_test_binary(&["--list"]);
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let mut live = this_test_binary(&["--ignored", "--exact", "tests::live_writer"]);
        let stale = tmp.path().join(format!(".f.json.tmp.{dead_pid}"));
        let busy = tmp.path().join(format!(".f.json.tmp.{}", live.id()));
        let other = tmp.path().join(format!(".g.json.tmp.{dead_pid}"));
        for p in [&stale, &busy, &other] {
            fs::write(p, b"partial").unwrap();
        }
        write_atomic(&path, b"{}", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        assert!(!stale.exists(), "a dead writer's temp file is removed");
        assert!(busy.exists(), "a live writer's temp file is left alone");
        assert!(other.exists(), "another file's temp file is left alone");
        let _ = live.kill();
        let _ = live.wait();
    }

    #[test]
    fn a_replace_succeeds_while_readers_hold_the_file_open() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f.json");
        write_atomic(&path, b"0", 0o600).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if let Ok(mut f) = File::open(&path) {
                            let mut text = String::new();
                            std::io::Read::read_to_string(&mut f, &mut text).unwrap();
                            assert!(text.parse::<u32>().is_ok(), "a reader saw {text:?}");
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                });
            }
            for i in 1..=60u32 {
                let written = write_atomic(&path, i.to_string().as_bytes(), 0o600);
                if written.is_err() {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                written.unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(fs::read(&path).unwrap(), b"60");
    }
}

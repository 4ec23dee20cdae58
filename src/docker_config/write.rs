//! Writing a planned edit back: atomically, through symlinks, keeping the file's mode, and
//! redoing the edit if the file changed since it was read.

use std::path::Path;

use anyhow::{Context, Result, bail};

use latchkey_fs as fsutil;

use super::plan::{Plan, read_optional, run_edit};

/// Write a plan's text over its target, atomically, keeping the target's permissions (a new
/// file is 0600, in a directory created 0700). If the file changed since it was read (docker
/// login running at the same time), the edit is redone on the new content.
pub(super) fn write_plan(plan: &mut Plan<'_>) -> Result<()> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let current = read_optional(&plan.target)?;
        if current != plan.original {
            plan.edited = run_edit(&plan.path, current.as_deref(), &*plan.redo)?;
            plan.original = current;
            if !plan.edited.changed {
                return Ok(());
            }
            continue;
        }
        let mode = match &plan.original {
            Some(_) => existing_mode(&plan.target)?,
            None => {
                if let Some(dir) = plan.target.parent().filter(|d| !d.as_os_str().is_empty())
                    && !dir.exists()
                {
                    fsutil::ensure_private_dir(dir)
                        .with_context(|| format!("cannot create directory {}", dir.display()))?;
                }
                0o600
            }
        };
        fsutil::write_atomic(&plan.target, plan.edited.text.as_bytes(), mode)
            .with_context(|| format!("cannot write {}", plan.target.display()))?;
        restore_mode(&plan.target, mode)?;
        return Ok(());
    }
    bail!("{} keeps changing while latchkey edits it; try again", plan.path.display())
}

#[cfg(unix)]
pub(super) fn existing_mode(path: &Path) -> Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    Ok(meta.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
pub(super) fn existing_mode(_path: &Path) -> Result<u32> {
    Ok(0o600)
}

/// `write_atomic` creates the file with `mode` as filtered by the umask; put back the exact
/// mode the file had (e.g. 0644 under a umask of 077).
#[cfg(unix)]
pub(super) fn restore_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if existing_mode(path)? != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the permissions of {}", path.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn restore_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

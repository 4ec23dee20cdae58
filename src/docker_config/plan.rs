//! Reading a file and planning its edit; then printing the notes and writing (or diffing) every
//! planned file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use latchkey_fs as fsutil;

use super::HELPER;
use super::diff::unified_diff;
use super::edit::{EditError, Edited};
use super::json_text::Value;
use super::write::write_plan;

/// An edit of a file's text (configure or unconfigure).
pub(super) type EditFn<'a> = dyn Fn(&str) -> std::result::Result<Edited, EditError> + 'a;

pub(super) struct Plan<'a> {
    /// The path as given (what the user knows it by).
    pub(super) path: PathBuf,
    /// The file actually written: `path` with symlinks resolved.
    pub(super) target: PathBuf,
    /// The bytes read, `None` if the file did not exist.
    pub(super) original: Option<Vec<u8>>,
    pub(super) edited: Edited,
    /// The same edit, to redo it if the file changes between reading and writing.
    pub(super) redo: Box<EditFn<'a>>,
}

pub(super) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Read `path` (through symlinks) and compute the edit, without writing anything.
pub(super) fn plan<'a, F>(path: &Path, edit: F) -> Result<Plan<'a>>
where
    F: Fn(&str) -> std::result::Result<Edited, EditError> + 'a,
{
    let target = fsutil::resolve_symlinks(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let original = read_optional(&target)?;
    let edited = run_edit(path, original.as_deref(), &edit)?;
    Ok(Plan { path: path.to_path_buf(), target, original, edited, redo: Box::new(edit) })
}

pub(super) fn run_edit(path: &Path, original: Option<&[u8]>, edit: &EditFn<'_>) -> Result<Edited> {
    let text = match original {
        None => String::new(),
        Some(bytes) => {
            // Validate with serde_json first: its messages carry line and column.
            if !is_blank(bytes)
                && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            {
                bail!("{} is not valid JSON: {e}; it was left unchanged", path.display());
            }
            match String::from_utf8(bytes.to_vec()) {
                Ok(text) => text,
                Err(e) => bail!("{} is not UTF-8 text: {e}; it was left unchanged", path.display()),
            }
        }
    };
    edit(&text).map_err(|e| match e {
        EditError::Invalid(why) => anyhow::anyhow!("{}: {why}; it was left unchanged", path.display()),
        EditError::HelpersNotObject(kind) => anyhow::anyhow!(
            "{}: \"credHelpers\" is {kind}, not an object; fix it by hand (the file was left unchanged)",
            path.display()
        ),
        EditError::Conflicts(conflicts) => {
            let list = conflicts
                .iter()
                .map(|(key, value)| match value {
                    Value::Str(helper) => format!("{key:?} uses {helper:?} (docker-credential-{helper})"),
                    Value::Other(raw) => format!("{key:?} is {raw}, not a helper name"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            anyhow::anyhow!(
                "{}: credHelpers {list}; rerun with --force to replace {} with {HELPER:?} (nothing was changed)",
                path.display(),
                if conflicts.len() == 1 { "it" } else { "them" }
            )
        }
    })
}

pub(super) fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Print the notes and write (or, for a dry run, diff) every planned file. Every file was
/// planned, and so checked, before the first one is written.
pub(super) fn finish(plans: Vec<Plan<'_>>, dry_run: bool) -> Result<()> {
    for mut plan in plans {
        if !dry_run && plan.edited.changed {
            write_plan(&mut plan)?;
        }
        let shown = plan.path.display().to_string();
        for note in &plan.edited.notes {
            eprintln!("latchkey: {shown}: {note}");
        }
        if !plan.edited.changed {
            eprintln!("latchkey: {shown}: already up to date; nothing changed");
            continue;
        }
        if dry_run {
            let old = plan.original.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            let old_name = if plan.original.is_some() { shown.clone() } else { "/dev/null".to_owned() };
            let diff = unified_diff(&old, &plan.edited.text, &old_name, &shown);
            let mut stdout = io::stdout().lock();
            stdout.write_all(diff.as_bytes()).context("cannot write the diff to stdout")?;
            stdout.flush().context("cannot write the diff to stdout")?;
            eprintln!("latchkey: {shown}: dry run, not written");
        } else if plan.target != plan.path {
            eprintln!("latchkey: {shown}: updated (through the symlink, in {})", plan.target.display());
        } else if plan.original.is_none() {
            eprintln!("latchkey: {shown}: created");
        } else {
            eprintln!("latchkey: {shown}: updated");
        }
    }
    Ok(())
}

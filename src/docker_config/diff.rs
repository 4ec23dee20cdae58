//! A unified diff, for `--dry-run`, computed by `similar`.
//!
//! Hunk ranges are always written as `start,count` (`@@ -1,1 +1,1 @@`), as before `similar`
//! did the diffing; `similar`'s own formatter shortens a one-line range to `start`.

use std::ops::Range;
use std::time::Duration;

use similar::{ChangeTag, TextDiff};

const CONTEXT: usize = 3;
/// Past this, `similar` gives up looking for the smallest diff and returns a correct but larger
/// one (the file is docker's config; this bounds the time a pathological one can take).
const DIFF_TIMEOUT: Duration = Duration::from_secs(2);

/// A unified diff (`---`/`+++`, `@@ -a,b +c,d @@` hunks with 3 lines of context) of two texts.
pub(super) fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let diff = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(old, new);
    let mut out = String::new();
    for hunk in diff.unified_diff().context_radius(CONTEXT).iter_hunks() {
        if out.is_empty() {
            out = format!("--- {old_name}\n+++ {new_name}\n");
        }
        let ops = hunk.ops();
        let (first, last) = (ops[0], ops[ops.len() - 1]);
        let old_range = range(first.old_range().start..last.old_range().end);
        let new_range = range(first.new_range().start..last.new_range().end);
        out.push_str(&format!("@@ -{old_range} +{new_range} @@\n"));
        for change in hunk.iter_changes() {
            out.push(match change.tag() {
                ChangeTag::Equal => ' ',
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
            });
            out.push_str(change.value());
            if change.missing_newline() {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    out
}

/// `start,count`, 1-based; an empty range starts at the line before it (`0,0` at the top).
fn range(lines: Range<usize>) -> String {
    let count = lines.len();
    let start = if count == 0 { lines.start } else { lines.start + 1 };
    format!("{start},{count}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_is_unified() {
        let old = "{\n\t\"a\": 1\n}\n";
        let new = "{\n\t\"a\": 1,\n\t\"b\": 2\n}\n";
        assert_eq!(
            unified_diff(old, new, "f", "f"),
            "--- f\n+++ f\n@@ -1,3 +1,4 @@\n {\n-\t\"a\": 1\n+\t\"a\": 1,\n+\t\"b\": 2\n }\n"
        );
        assert_eq!(unified_diff("", "x\n", "/dev/null", "f"), "--- /dev/null\n+++ f\n@@ -0,0 +1,1 @@\n+x\n");
        assert_eq!(
            unified_diff("x", "y", "f", "f"),
            "--- f\n+++ f\n@@ -1,1 +1,1 @@\n-x\n\\ No newline at end of file\n+y\n\\ No newline at end of file\n"
        );
        assert_eq!(unified_diff("same\n", "same\n", "f", "f"), "");
    }

    #[test]
    fn distant_changes_make_separate_hunks() {
        let old: String = (0..20).map(|i| format!("{i}\n")).collect();
        let new: String = (0..20)
            .map(|i| match i {
                2 => "two\n".to_owned(),
                17 => "seventeen\n".to_owned(),
                _ => format!("{i}\n"),
            })
            .collect();
        let diff = unified_diff(&old, &new, "f", "f");
        assert_eq!(diff.matches("@@ -").count(), 2, "{diff}");
        assert!(diff.contains("@@ -1,6 +1,6 @@\n 0\n 1\n-2\n+two\n 3\n 4\n 5\n"), "{diff}");
        assert!(diff.contains("@@ -15,6 +15,6 @@\n"), "{diff}");
    }
}

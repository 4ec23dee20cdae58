//! A unified diff, for `--dry-run`.

pub(super) const CONTEXT: usize = 3;
/// Past this many cells the middle of the diff is shown as replaced whole.
pub(super) const MAX_LCS_CELLS: usize = 4 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Op {
    Keep,
    Del,
    Add,
}

/// A unified diff (`---`/`+++`, `@@ -a,b +c,d @@` hunks with 3 lines of context) of two texts.
pub(super) fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = diff_lines(&a, &b);
    if ops.iter().all(|(op, _)| *op == Op::Keep) {
        return String::new();
    }
    // Line numbers (0-based) in a and b before each op.
    let mut positions = Vec::with_capacity(ops.len());
    let (mut ia, mut ib) = (0usize, 0usize);
    for (op, _) in &ops {
        positions.push((ia, ib));
        match op {
            Op::Keep => {
                ia += 1;
                ib += 1;
            }
            Op::Del => ia += 1,
            Op::Add => ib += 1,
        }
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let changes: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].0 != Op::Keep).collect();
    let mut k = 0;
    while k < changes.len() {
        let first = changes[k];
        let mut last = first;
        while k + 1 < changes.len() && changes[k + 1] - last <= 2 * CONTEXT + 1 {
            k += 1;
            last = changes[k];
        }
        k += 1;
        let start = first.saturating_sub(CONTEXT);
        let end = (last + CONTEXT + 1).min(ops.len());
        let hunk = &ops[start..end];
        let old_count = hunk.iter().filter(|(op, _)| *op != Op::Add).count();
        let new_count = hunk.iter().filter(|(op, _)| *op != Op::Del).count();
        let (pa, pb) = positions[start];
        let old_start = if old_count == 0 { pa } else { pa + 1 };
        let new_start = if new_count == 0 { pb } else { pb + 1 };
        out.push_str(&format!("@@ -{old_start},{old_count} +{new_start},{new_count} @@\n"));
        for (op, line) in hunk {
            out.push(match op {
                Op::Keep => ' ',
                Op::Del => '-',
                Op::Add => '+',
            });
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    out
}

pub(super) fn diff_lines<'t>(a: &[&'t str], b: &[&'t str]) -> Vec<(Op, &'t str)> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<(Op, &str)> = a[..prefix].iter().map(|l| (Op::Keep, *l)).collect();
    let (n, m) = (am.len(), bm.len());
    if (n + 1).saturating_mul(m + 1) > MAX_LCS_CELLS {
        ops.extend(am.iter().map(|l| (Op::Del, *l)));
        ops.extend(bm.iter().map(|l| (Op::Add, *l)));
    } else {
        // lcs[i][j]: length of the LCS of am[i..] and bm[j..].
        let width = m + 1;
        let mut lcs = vec![0u32; (n + 1) * width];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * width + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                ops.push((Op::Keep, am[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) {
                // Deletions first, as diff(1) shows a replaced line.
                ops.push((Op::Del, am[i]));
                i += 1;
            } else {
                ops.push((Op::Add, bm[j]));
                j += 1;
            }
        }
    }
    ops.extend(a[a.len() - suffix..].iter().map(|l| (Op::Keep, *l)));
    ops
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

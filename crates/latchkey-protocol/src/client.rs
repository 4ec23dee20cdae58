//! Running any `docker-credential-*` helper's `get`, the way docker does, with a deadline.
//!
//! The helper gets the server URL on stdin (no newline, as docker sends it), answers JSON on
//! stdout, and writes its own hints to stderr, which is passed through to our stderr
//! untouched. The exact text [`NOT_FOUND`] on stdout with a failing exit is "nothing stored",
//! which is [`HelperCallError::NotFound`], not a failure.

use std::fmt;
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::process::{RunError, run_bounded};

use crate::ENV_REJECTED_TOKEN_SHA256;
use crate::helper::NOT_FOUND;
use crate::secret::Secret;

/// A helper answer is one small JSON object; more than this is a broken helper.
const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// What a helper's `get` answered.
#[derive(Clone, Debug)]
pub struct HelperCredentials {
    /// `Username`: a user name, or the conventions `<token>` (identity token) and
    /// `<static_bearer>` (a bearer token to send as it is).
    pub username: String,
    pub secret: Secret<String>,
}

/// Why a helper gave no credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelperCallError {
    /// The helper has nothing for this registry: it printed exactly
    /// `credentials not found in native keychain` (or, like docker-credential-pass, answered
    /// with an empty username and secret).
    NotFound { program: String },
    /// `docker-credential-NAME` is not on PATH (or cannot be run).
    NotInstalled { program: String, error: String },
    /// The helper did not finish in time and was killed.
    TimedOut { program: String, after: Duration },
    /// The helper failed; `message` is what it printed on stdout (helpers put errors there).
    Failed { program: String, status: String, message: String },
    /// The helper succeeded but its answer is not the protocol's JSON.
    BadAnswer { program: String, why: String },
}

impl HelperCallError {
    /// The helper executable's name, e.g. `docker-credential-latchkey`.
    pub fn program(&self) -> &str {
        match self {
            HelperCallError::NotFound { program }
            | HelperCallError::NotInstalled { program, .. }
            | HelperCallError::TimedOut { program, .. }
            | HelperCallError::Failed { program, .. }
            | HelperCallError::BadAnswer { program, .. } => program,
        }
    }
}

impl fmt::Display for HelperCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelperCallError::NotFound { program } => write!(f, "{program} has no credentials for it ({NOT_FOUND})"),
            HelperCallError::NotInstalled { program, error } => match doubled_prefix(program) {
                // credHelpers {"ghcr.io": "docker-credential-latchkey"}: docker adds the prefix itself.
                Some(name) => write!(
                    f,
                    "cannot run {program} ({error}); credHelpers and credsStore values name the helper \
                     without its docker-credential- prefix: write \"{name}\", not \"docker-credential-{name}\""
                ),
                None => write!(f, "cannot run {program} ({error}); is it installed and on PATH?"),
            },
            HelperCallError::TimedOut { program, after } => {
                write!(f, "{program} did not answer within {} s and was stopped", after.as_secs_f32())
            }
            HelperCallError::Failed { program, status, message } => {
                if message.is_empty() {
                    write!(f, "{program} failed ({status}) without a message")
                } else {
                    write!(f, "{program} failed ({status}): {message}")
                }
            }
            HelperCallError::BadAnswer { program, why } => write!(f, "{program} answered something unusable: {why}"),
        }
    }
}

impl std::error::Error for HelperCallError {}

/// `docker-credential-docker-credential-NAME` (a config value that repeats the prefix): `NAME`.
fn doubled_prefix(program: &str) -> Option<&str> {
    program.strip_prefix("docker-credential-docker-credential-").filter(|name| !name.is_empty())
}

/// Run `docker-credential-<helper> get` with `server_url` on stdin, killing it after `timeout`.
///
/// `helper` is the suffix as written in `credHelpers`/`credsStore` (`latchkey`, `pass`,
/// `desktop`, ...), or a path to an executable.
///
/// ```no_run
/// use std::time::Duration;
/// use latchkey_protocol::client::{self, HelperCallError};
///
/// match client::get("secretservice", "ghcr.io", Duration::from_secs(10)) {
///     Ok(c) if c.username == "<static_bearer>" => println!("send it as a bearer"),
///     Ok(c) => println!("user {}", c.username),
///     Err(HelperCallError::NotFound { .. }) => println!("nothing stored: go on anonymously"),
///     Err(e) => eprintln!("{e}"), // names the helper; never contains the secret
/// }
/// ```
pub fn get(helper: &str, server_url: &str, timeout: Duration) -> Result<HelperCredentials, HelperCallError> {
    run_get(helper, server_url, timeout, None)
}

/// [`get`] again after the registry refused the static bearer `rejected` that the helper gave:
/// the helper is told the token's SHA-256 in `LATCHKEY_REJECTED_TOKEN_SHA256`, so a helper that
/// caches tokens (latchkey does) replaces that one instead of answering it again. Other helpers
/// ignore the variable.
pub fn get_replacing(
    helper: &str,
    server_url: &str,
    timeout: Duration,
    rejected: &Secret<String>,
) -> Result<HelperCredentials, HelperCallError> {
    run_get(helper, server_url, timeout, Some(rejected))
}

fn run_get(
    helper: &str,
    server_url: &str,
    timeout: Duration,
    rejected: Option<&Secret<String>>,
) -> Result<HelperCredentials, HelperCallError> {
    let program = if helper.contains(std::path::MAIN_SEPARATOR) {
        helper.to_owned()
    } else {
        format!("docker-credential-{helper}")
    };
    let mut command = Command::new(&program);
    // The helper's hints (log in here, touch your key, ...) are for the user.
    command.arg("get").stderr(Stdio::inherit());
    match rejected {
        Some(token) => {
            let digest = data_encoding::HEXLOWER.encode(&Sha256::digest(token.expose().as_bytes()));
            command.env(ENV_REJECTED_TOKEN_SHA256, digest);
        }
        // Not a value left in this process's own environment: only a refusal seen here counts.
        None => {
            command.env_remove(ENV_REJECTED_TOKEN_SHA256);
        }
    }
    let done =
        run_bounded(&mut command, Some(server_url.as_bytes()), MAX_ANSWER_BYTES, timeout).map_err(|e| match e {
            RunError::Spawn(e) => HelperCallError::NotInstalled { program: program.clone(), error: e.to_string() },
            RunError::TimedOut => HelperCallError::TimedOut { program: program.clone(), after: timeout },
            RunError::Io(e) => HelperCallError::Failed {
                program: program.clone(),
                status: "wait failed".into(),
                message: e.to_string(),
            },
        })?;
    let (status, out) = (done.status, done.stdout);
    if out.len() as u64 > MAX_ANSWER_BYTES {
        return Err(HelperCallError::BadAnswer { program, why: "more than 1 MiB on stdout".into() });
    }
    let text = String::from_utf8_lossy(&out);
    if !status.success() {
        let message = text.trim();
        if message == NOT_FOUND {
            return Err(HelperCallError::NotFound { program });
        }
        // Helpers print their errors on stdout; one that fails after printing an answer (JSON,
        // which holds the secret) is never quoted.
        let message: String = if message.starts_with('{') || message.contains("\"Secret\"") {
            "(an answer that is not an error message; not quoted)".into()
        } else {
            message.lines().next().unwrap_or("").chars().take(500).collect()
        };
        return Err(HelperCallError::Failed { program, status: status.to_string(), message });
    }
    parse_answer(&program, &out)
}

fn parse_answer(program: &str, out: &[u8]) -> Result<HelperCredentials, HelperCallError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: Option<String>,
        #[serde(rename = "Secret", default)]
        secret: Option<String>,
    }
    let bad = |why: String| HelperCallError::BadAnswer { program: program.to_owned(), why };
    let answer: Answer = serde_json::from_slice(out).map_err(|e| {
        // Only a position: serde's message for a mistyped field quotes the value.
        if e.is_data() {
            bad("not the protocol's JSON (a field is missing or of the wrong type)".into())
        } else {
            bad(format!("not the protocol's JSON (line {}, column {})", e.line(), e.column()))
        }
    })?;
    let username = answer.username.unwrap_or_default();
    let secret = Secret::new(answer.secret.unwrap_or_default());
    if username.is_empty() && secret.expose().is_empty() {
        // docker-credential-pass answers "not found" this way.
        return Err(HelperCallError::NotFound { program: program.to_owned() });
    }
    if secret.expose().is_empty() {
        return Err(bad(format!("an empty Secret for username {username:?}")));
    }
    Ok(HelperCredentials { username, secret })
}

// The helpers these tests run are /bin/sh scripts.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn answers_not_found_failures_and_timeouts() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let t = Duration::from_secs(20);

        let ok = script(
            d,
            "ok",
            r#"read url; printf '{"ServerURL":"%s","Username":"\u003ctoken\u003e","Secret":"s"}' "$url""#,
        );
        let creds = get(&ok, "ghcr.io", t).unwrap();
        assert_eq!((creds.username.as_str(), creds.secret.expose().as_str()), ("<token>", "s"));

        let nf = script(d, "nf", "echo 'credentials not found in native keychain'; exit 1");
        assert!(matches!(get(&nf, "x", t), Err(HelperCallError::NotFound { .. })));
        let pass = script(d, "pass", r#"echo '{"ServerURL":"x","Username":"","Secret":""}'"#);
        assert!(matches!(get(&pass, "x", t), Err(HelperCallError::NotFound { .. })));

        let fail = script(d, "fail", "echo 'the keyring is locked'; echo hint >&2; exit 3");
        let err = get(&fail, "x", t).unwrap_err();
        assert!(matches!(err, HelperCallError::Failed { .. }));
        assert!(
            err.to_string().contains("the keyring is locked") && err.to_string().contains("exit status: 3"),
            "{err}"
        );

        let junk = script(d, "junk", "echo 'Secret: s3cret'");
        let err = get(&junk, "x", t).unwrap_err();
        assert!(matches!(err, HelperCallError::BadAnswer { .. }) && !err.to_string().contains("s3cret"), "{err}");

        let hang = script(d, "hang", "exec sleep 60");
        let started = Instant::now();
        let err = get(&hang, "x", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, HelperCallError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(30));

        let missing = get("latchkey-test-no-such-helper", "x", t).unwrap_err();
        assert!(matches!(missing, HelperCallError::NotInstalled { .. }));
        assert!(missing.to_string().contains("docker-credential-latchkey-test-no-such-helper"), "{missing}");

        // A value that repeats the prefix: say what the value must be.
        let doubled = get("docker-credential-latchkey-test-no-such-helper", "x", t).unwrap_err().to_string();
        assert!(
            doubled.contains(
                r#"write "latchkey-test-no-such-helper", not "docker-credential-latchkey-test-no-such-helper""#
            ),
            "{doubled}"
        );
        assert!(!doubled.contains("is it installed"), "{doubled}");
    }
}

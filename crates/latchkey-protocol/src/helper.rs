//! The docker-credential-helpers wire protocol, byte for byte, and nothing else.
//!
//! One verb as the only argument; stdin carries a server URL (`get`, `erase`) or a
//! credentials object (`store`); answers and *errors* go to stdout, because that is what
//! every client reads. This module knows nothing of where credentials live: it drives a
//! [`Helper`], the same four-method shape as docker-credential-helpers' `credentials.Helper`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};

use crate::bounded::{BoundedReadError, read_bounded};
use crate::secret::Secret;

/// The exact text docker, skopeo and podman treat as "nothing stored, go on anonymously".
pub const NOT_FOUND: &str = "credentials not found in native keychain";
pub const MISSING_SERVER_URL: &str = "no credentials server URL";
pub const MISSING_USERNAME: &str = "no credentials username";
/// No client sends more than a few KiB; anything past this is a mistake or an attack.
pub const MAX_STDIN_BYTES: u64 = 1 << 20;

pub const VERBS: &[&str] = &["store", "get", "erase", "list", "version"];

/// What `store` receives and `get` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub server_url: String,
    pub username: String,
    pub secret: Secret<String>,
}

/// A helper's answer other than success. `NotFound` is a normal answer, not a failure,
/// so it is a plain value: no backtrace capture, no allocation.
#[derive(Debug, PartialEq, Eq)]
pub enum HelperError {
    NotFound,
    Failed(String),
}

impl fmt::Display for HelperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelperError::NotFound => f.write_str(NOT_FOUND),
            HelperError::Failed(msg) => f.write_str(msg),
        }
    }
}

impl HelperError {
    pub fn failed(msg: impl fmt::Display) -> Self {
        HelperError::Failed(msg.to_string())
    }
}

/// The four operations a credential helper implements.
pub trait Helper {
    /// Username and secret for `server_url` (as the client sent it, whitespace trimmed).
    fn get(&mut self, server_url: &str) -> Result<(String, Secret<String>), HelperError>;
    fn store(&mut self, credentials: Credentials) -> Result<(), HelperError>;
    /// Erasing something that is not stored succeeds, as in docker-credential-secretservice.
    fn erase(&mut self, server_url: &str) -> Result<(), HelperError>;
    /// Server URL -> username of everything stored.
    fn list(&mut self) -> Result<BTreeMap<String, String>, HelperError>;
}

/// Run one protocol invocation. `program` is argv[0] (the usage line names it, as the Go
/// helpers do), `args` the remaining arguments. Returns the process exit code.
pub fn serve(
    program: &str,
    args: &[String],
    version_line: &str,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    helper: &mut dyn Helper,
) -> i32 {
    let result = match args {
        [verb] => handle(verb, version_line, stdin, helper),
        _ => Err(HelperError::Failed(usage(program))),
    };
    let (text, code) = match result {
        Ok(out) => (out, 0),
        Err(e) => (format!("{e}\n"), 1),
    };
    // A client that closed our stdout gets no answer; say so with the exit code.
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => code,
        Err(_) => 1,
    }
}

/// The usage line docker-credential-helpers prints for a wrong argument count.
pub fn usage(program: &str) -> String {
    format!("Usage: {program} <store|get|erase|list|version>")
}

fn handle(
    verb: &str,
    version_line: &str,
    stdin: &mut dyn Read,
    helper: &mut dyn Helper,
) -> Result<String, HelperError> {
    match verb {
        "get" => {
            let server_url = read_server_url(stdin)?;
            let (username, secret) = helper.get(&server_url)?;
            Ok(encode_credentials(&server_url, &username, secret.expose()))
        }
        "store" => {
            let credentials = parse_store_input(&read_stdin(stdin)?)?;
            helper.store(credentials)?;
            Ok(String::new())
        }
        "erase" => {
            let server_url = read_server_url(stdin)?;
            helper.erase(&server_url)?;
            Ok(String::new())
        }
        "list" => {
            let all = helper.list()?;
            Ok(go_json(&serde_json::to_string(&all).expect("a string map always serialises")) + "\n")
        }
        "version" => Ok(format!("{version_line}\n")),
        other => Err(HelperError::Failed(format!("Unknown credential action `{other}`"))),
    }
}

fn read_stdin(stdin: &mut dyn Read) -> Result<Vec<u8>, HelperError> {
    read_bounded(stdin, MAX_STDIN_BYTES).map_err(|e| match e {
        BoundedReadError::Io(e) => HelperError::failed(format_args!("reading stdin: {e}")),
        BoundedReadError::TooLarge { .. } => HelperError::failed(format_args!(
            "stdin is larger than {} KiB; a credential helper expects a server URL or one small JSON object",
            MAX_STDIN_BYTES / 1024
        )),
    })
}

fn read_server_url(stdin: &mut dyn Read) -> Result<String, HelperError> {
    let buf = read_stdin(stdin)?;
    let text =
        std::str::from_utf8(&buf).map_err(|_| HelperError::failed("the server URL on stdin is not valid UTF-8"))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(HelperError::failed(MISSING_SERVER_URL));
    }
    Ok(trimmed.to_owned())
}

/// Parse `store` input the way Go's `encoding/json` decodes it into `credentials.Credentials`:
/// the first JSON value only (trailing bytes ignored), field names matched case-insensitively,
/// unknown fields ignored, `null` meaning "empty".
pub fn parse_store_input(input: &[u8]) -> Result<Credentials, HelperError> {
    if input.iter().all(u8::is_ascii_whitespace) {
        // Go's decoder reports an empty stream as io.EOF; clients match on it.
        return Err(HelperError::failed("EOF"));
    }
    let mut values = serde_json::Deserializer::from_slice(input).into_iter::<serde_json::Value>();
    let value = match values.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(HelperError::failed(format_args!("invalid credentials JSON on stdin: {e}"))),
        None => return Err(HelperError::failed("EOF")),
    };
    let mut fields = [String::new(), String::new(), String::new()];
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) => {
            for (name, value) in map {
                let Some(slot) = ["serverurl", "username", "secret"].iter().position(|n| name.eq_ignore_ascii_case(n))
                else {
                    continue;
                };
                match value {
                    serde_json::Value::String(s) => fields[slot] = s,
                    serde_json::Value::Null => {}
                    other => {
                        return Err(HelperError::failed(format_args!(
                            "invalid credentials JSON on stdin: field {name:?} must be a string, not {}",
                            json_kind(&other)
                        )));
                    }
                }
            }
        }
        other => {
            return Err(HelperError::failed(format_args!(
                "invalid credentials JSON on stdin: expected an object with ServerURL, Username and Secret, not {}",
                json_kind(&other)
            )));
        }
    }
    let [server_url, username, secret] = fields;
    if server_url.is_empty() {
        return Err(HelperError::failed(MISSING_SERVER_URL));
    }
    if username.is_empty() {
        return Err(HelperError::failed(MISSING_USERNAME));
    }
    Ok(Credentials { server_url, username, secret: Secret::new(secret) })
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `{"ServerURL":..,"Username":..,"Secret":..}` and a newline, encoded as Go does.
pub fn encode_credentials(server_url: &str, username: &str, secret: &str) -> String {
    #[derive(serde::Serialize)]
    struct Wire<'a> {
        #[serde(rename = "ServerURL")]
        server_url: &'a str,
        #[serde(rename = "Username")]
        username: &'a str,
        #[serde(rename = "Secret")]
        secret: &'a str,
    }
    let json = serde_json::to_string(&Wire { server_url, username, secret }).expect("strings always serialise");
    go_json(&json) + "\n"
}

/// Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings
/// (`<token>` becomes `\u003ctoken\u003e`). serde_json emits these characters only inside
/// strings, so replacing them in its output is exact.
fn go_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

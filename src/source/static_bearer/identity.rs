//! Where a static bearer's JWT comes from: the sandbox's identity (file, env, command,
//! identity endpoint, token exchange) or latchkey's own signature (mint).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use latchkey_http as http;
use latchkey_protocol::secret::Secret;

/// Tokens are a few KiB; a source handing over more is broken.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
const DEFAULT_TIMEOUT_SECS: u64 = 10;

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_audience_param() -> String {
    "audience".into()
}

fn default_jwt_type() -> String {
    "urn:ietf:params:oauth:token-type:jwt".into()
}

fn default_lifetime() -> u64 {
    300
}

/// The `[registries."host".identity]` table, tagged by `source`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
pub enum IdentitySource {
    /// A token file (e.g. a Kubernetes projected service-account token), read on every use.
    File { path: PathBuf },
    /// An environment variable holding the token.
    Env { var: String },
    /// A program (argv, no shell) that prints the token on stdout.
    #[serde(rename_all = "kebab-case")]
    Command {
        argv: Vec<String>,
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
    },
    /// An identity endpoint: GET `url` (+ `audience` query parameter) with an optional request
    /// bearer; the token is the JSON `field` of the answer, or the raw body.
    #[serde(rename_all = "kebab-case")]
    Http {
        url: String,
        #[serde(default)]
        audience: Option<String>,
        #[serde(default = "default_audience_param")]
        audience_param: String,
        /// Environment variable holding the request bearer token.
        #[serde(default)]
        bearer_env: Option<String>,
        /// File holding the request bearer token.
        #[serde(default)]
        bearer_file: Option<PathBuf>,
        /// JSON field of the answer holding the token; absent = the whole body is the token.
        #[serde(default)]
        field: Option<String>,
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
    },
    /// RFC 8693 token exchange of `subject`'s token at the STS `url`.
    #[serde(rename_all = "kebab-case")]
    Exchange {
        url: String,
        subject: Box<IdentitySource>,
        #[serde(default = "default_jwt_type")]
        subject_token_type: String,
        #[serde(default)]
        audience: Option<String>,
        #[serde(default)]
        resource: Option<String>,
        #[serde(default)]
        scope: Option<String>,
        #[serde(default)]
        requested_token_type: Option<String>,
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
    },
    /// latchkey signs the JWT itself.
    #[serde(rename_all = "kebab-case")]
    Mint {
        algorithm: latchkey_jwt::Algorithm,
        private_key_file: PathBuf,
        /// PEM chain (leaf first) to send as `x5c`; with it, no `kid` is sent unless asked.
        #[serde(default)]
        certificate_chain_file: Option<PathBuf>,
        /// `libtrust` (Distribution 2.x key id, the default without a chain), `none`, or a literal kid.
        #[serde(default)]
        kid: Option<String>,
        issuer: String,
        subject: String,
        audience: String,
        #[serde(default = "default_lifetime")]
        lifetime_secs: u64,
        /// Distribution's `access` claim, e.g. `[{type = "repository", name = "app", actions = ["pull"]}]`.
        #[serde(default)]
        access: Option<Vec<toml::Value>>,
        /// Further claims, copied as they are.
        #[serde(default)]
        extra_claims: BTreeMap<String, toml::Value>,
    },
    /// GitHub Actions OIDC: the runner's identity endpoint (needs `permissions: id-token: write`).
    GithubActions {
        #[serde(default)]
        audience: Option<String>,
    },
    /// GitLab CI `id_tokens:`: the job's ID token from the variable you named in `.gitlab-ci.yml`.
    Gitlab {
        #[serde(default = "default_gitlab_var")]
        var: String,
    },
}

fn default_gitlab_var() -> String {
    "LATCHKEY_ID_TOKEN".into()
}

impl IdentitySource {
    /// The files this source reads, as (config key, path), for `status` to check.
    pub fn files(&self) -> Vec<(&'static str, &Path)> {
        match self {
            IdentitySource::File { path } => vec![("path", path.as_path())],
            IdentitySource::Http { bearer_file: Some(file), .. } => vec![("bearer-file", file.as_path())],
            IdentitySource::Exchange { subject, .. } => subject.files(),
            IdentitySource::Mint { private_key_file, certificate_chain_file, .. } => {
                let mut files = vec![("private-key-file", private_key_file.as_path())];
                if let Some(chain) = certificate_chain_file {
                    files.push(("certificate-chain-file", chain.as_path()));
                }
                files
            }
            _ => Vec::new(),
        }
    }

    /// Short name for status and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            IdentitySource::File { .. } => "file",
            IdentitySource::Env { .. } => "env",
            IdentitySource::Command { .. } => "command",
            IdentitySource::Http { .. } => "http",
            IdentitySource::Exchange { .. } => "exchange",
            IdentitySource::Mint { .. } => "mint",
            IdentitySource::GithubActions { .. } => "github-actions",
            IdentitySource::Gitlab { .. } => "gitlab",
        }
    }

    /// A description naming where the token comes from, with no secret in it.
    pub fn describe(&self) -> String {
        match self {
            IdentitySource::File { path } => format!("file {}", path.display()),
            IdentitySource::Env { var } | IdentitySource::Gitlab { var } => format!("environment variable {var}"),
            IdentitySource::Command { argv, .. } => {
                format!("command {:?}", argv.first().map(String::as_str).unwrap_or(""))
            }
            IdentitySource::Http { url, .. } => format!("identity endpoint {}", strip_query(url)),
            IdentitySource::Exchange { url, subject, .. } => {
                format!("token exchange at {} (subject: {})", strip_query(url), subject.describe())
            }
            IdentitySource::Mint { private_key_file, .. } => format!("minted with {}", private_key_file.display()),
            IdentitySource::GithubActions { .. } => "GitHub Actions OIDC".into(),
        }
    }

    /// Sources that hand out a new token when asked again; their tokens are cached.
    /// File and env tokens are read directly every time (as cheap as a cache read).
    pub fn refreshable(&self) -> bool {
        !matches!(self, IdentitySource::File { .. } | IdentitySource::Env { .. } | IdentitySource::Gitlab { .. })
    }

    /// The audience the token must carry, where the config states one.
    pub fn expected_audience(&self) -> Option<&str> {
        match self {
            IdentitySource::Http { audience, .. }
            | IdentitySource::Exchange { audience, .. }
            | IdentitySource::GithubActions { audience } => audience.as_deref(),
            IdentitySource::Mint { audience, .. } => Some(audience),
            _ => None,
        }
    }

    /// Check what can be checked without running anything (for config loading).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            IdentitySource::Command { argv, .. } if argv.is_empty() => Err("argv must name a program".into()),
            IdentitySource::Exchange { subject, .. } => subject.validate(),
            IdentitySource::Http { bearer_env: Some(_), bearer_file: Some(_), .. } => {
                Err("set bearer-env or bearer-file, not both".into())
            }
            IdentitySource::Mint { kid: Some(_), certificate_chain_file: Some(_), .. } => {
                Err("set either kid or certificate-chain-file (x5c), not both".into())
            }
            IdentitySource::Mint { lifetime_secs: 0, .. } => Err("lifetime-secs must be positive".into()),
            _ => Ok(()),
        }
    }

    /// Obtain a token from this source now.
    pub fn fetch(&self) -> Result<Secret<String>, String> {
        match self {
            IdentitySource::File { path } => {
                let mut text = String::new();
                std::fs::File::open(path)
                    .and_then(|f| f.take(MAX_TOKEN_BYTES as u64 + 1).read_to_string(&mut text))
                    .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
                token_text(text, &self.describe())
            }
            IdentitySource::Env { var } | IdentitySource::Gitlab { var } => match std::env::var(var) {
                Ok(v) => token_text(v, &self.describe()),
                Err(std::env::VarError::NotPresent) => Err(format!("the environment variable {var} is not set")),
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(format!("the environment variable {var} is not valid UTF-8"))
                }
            },
            IdentitySource::Command { argv, timeout_secs } => run_command(argv, Duration::from_secs(*timeout_secs)),
            IdentitySource::Http { url, audience, audience_param, bearer_env, bearer_file, field, timeout_secs } => {
                let bearer = match (bearer_env, bearer_file) {
                    (Some(var), _) => Some(Secret::new(
                        std::env::var(var).map_err(|_| format!("the request bearer variable {var} is not set"))?,
                    )),
                    (None, Some(path)) => Some(Secret::new(
                        std::fs::read_to_string(path)
                            .map_err(|e| format!("cannot read the request bearer file {}: {e}", path.display()))?
                            .trim()
                            .to_owned(),
                    )),
                    (None, None) => None,
                };
                fetch_identity_endpoint(
                    url,
                    audience.as_deref(),
                    audience_param,
                    bearer.as_ref(),
                    field.as_deref(),
                    Duration::from_secs(*timeout_secs),
                )
            }
            IdentitySource::GithubActions { audience } => {
                let url = std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL").map_err(|_| {
                    "ACTIONS_ID_TOKEN_REQUEST_URL is not set: this is not a GitHub Actions job, or the workflow lacks `permissions: id-token: write`".to_owned()
                })?;
                let bearer = Secret::new(std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN").map_err(|_| {
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set: the workflow lacks `permissions: id-token: write`"
                        .to_owned()
                })?);
                fetch_identity_endpoint(
                    &url,
                    audience.as_deref(),
                    "audience",
                    Some(&bearer),
                    Some("value"),
                    Duration::from_secs(DEFAULT_TIMEOUT_SECS),
                )
            }
            IdentitySource::Exchange {
                url,
                subject,
                subject_token_type,
                audience,
                resource,
                scope,
                requested_token_type,
                timeout_secs,
            } => {
                let subject_token = subject.fetch().map_err(|e| format!("token exchange subject: {e}"))?;
                let mut form: Vec<(&str, &str)> = vec![
                    ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                    ("subject_token", subject_token.expose()),
                    ("subject_token_type", subject_token_type),
                ];
                for (name, value) in [
                    ("audience", audience),
                    ("resource", resource),
                    ("scope", scope),
                    ("requested_token_type", requested_token_type),
                ] {
                    if let Some(v) = value {
                        form.push((name, v));
                    }
                }
                exchange(url, &form, &subject_token, Duration::from_secs(*timeout_secs))
            }
            IdentitySource::Mint { .. } => Err("mint sources are signed by the static-bearer module".into()),
        }
    }
}

fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Trim a token read from somewhere; refuse empty and oversize ones.
fn token_text(text: String, source: &str) -> Result<Secret<String>, String> {
    let secret = Secret::new(text);
    let trimmed = secret.expose().trim();
    if trimmed.is_empty() {
        return Err(format!("the {source} holds no token (it is empty)"));
    }
    if trimmed.len() > MAX_TOKEN_BYTES {
        return Err(format!("the {source} holds more than {} KiB, which is no token", MAX_TOKEN_BYTES / 1024));
    }
    Ok(Secret::new(trimmed.to_owned()))
}

fn run_command(argv: &[String], timeout: Duration) -> Result<Secret<String>, String> {
    use latchkey_protocol::process::{RunError, run_bounded};
    let program = argv.first().ok_or("argv must name a program")?;
    let what = format!("command {program:?}");
    let mut command = Command::new(program);
    // The program's own diagnostics go straight to the user.
    command.args(&argv[1..]).stderr(Stdio::inherit());
    let done = run_bounded(&mut command, None, MAX_TOKEN_BYTES as u64, timeout).map_err(|e| match e {
        RunError::Spawn(e) => format!("cannot run the {what}: {e}"),
        RunError::TimedOut => format!("the {what} did not finish within {}s; it was stopped", timeout.as_secs()),
        RunError::Io(e) => format!("waiting for the {what}: {e}"),
    })?;
    if !done.status.success() {
        return Err(format!("the {what} failed ({}); its stderr is above", done.status));
    }
    let text = String::from_utf8(done.stdout).map_err(|_| format!("the {what} printed something that is not UTF-8"))?;
    token_text(text, &what)
}

fn fetch_identity_endpoint(
    url: &str,
    audience: Option<&str>,
    audience_param: &str,
    bearer: Option<&Secret<String>>,
    field: Option<&str>,
    timeout: Duration,
) -> Result<Secret<String>, String> {
    let mut client = http::Client::new("identity endpoint", timeout)?;
    if let Some(b) = bearer {
        client = client.redacting(b);
    }
    let mut parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid identity endpoint URL {url:?}: {e}"))?;
    if let Some(aud) = audience {
        parsed.query_pairs_mut().append_pair(audience_param, aud);
    }
    let shown = strip_query(url).to_owned();
    let mut request = client.get(parsed.as_str()).header("Accept", "application/json");
    if let Some(b) = bearer {
        request = request.bearer_auth(b.expose());
    }
    let response = client.send(request, &shown)?;
    if response.status != 200 {
        return Err(format!(
            "the identity endpoint at {shown} answered HTTP {} with {}",
            response.status,
            response.server_message()
        ));
    }
    let body = String::from_utf8(response.body.clone())
        .map_err(|_| format!("the identity endpoint at {shown} answered with a body that is not UTF-8"))?;
    match field {
        None => token_text(body, &format!("identity endpoint at {shown}")),
        Some(field) => {
            let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
                let kind = if body.trim_start().starts_with('<') {
                    "an HTML page".to_owned()
                } else {
                    format!("invalid JSON ({e})")
                };
                format!("the identity endpoint at {shown} answered with {kind}, not a JSON object with {field:?}")
            })?;
            match json.get(field) {
                Some(serde_json::Value::String(s)) => token_text(s.clone(), &format!("identity endpoint at {shown}")),
                Some(_) => Err(format!("the identity endpoint at {shown} answered with a non-string {field:?}")),
                None => Err(format!("the identity endpoint at {shown} answered JSON without the field {field:?}")),
            }
        }
    }
}

/// RFC 8693 §2.1: POST the form, read `access_token` from the JSON answer; errors are
/// `{"error", "error_description"}` (RFC 6749 §5.2).
fn exchange(
    url: &str,
    form: &[(&str, &str)],
    subject_token: &Secret<String>,
    timeout: Duration,
) -> Result<Secret<String>, String> {
    let client = http::Client::new("token exchange service", timeout)?.redacting(subject_token);
    let shown = strip_query(url).to_owned();
    let body =
        serde_urlencoded::to_string(form).map_err(|e| format!("cannot encode the token exchange request: {e}"))?;
    let body = Secret::new(body);
    let request = client
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(body.expose().clone());
    let response = client.send(request, &shown)?;
    let json: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
    if response.status != 200 {
        return Err(format!(
            "the token exchange service at {shown} refused the exchange (HTTP {}): {}",
            response.status,
            response.server_message()
        ));
    }
    let json = json.ok_or_else(|| {
        format!("the token exchange service at {shown} answered with {}, not JSON", response.server_message())
    })?;
    match json.get("access_token") {
        Some(serde_json::Value::String(s)) => token_text(s.clone(), &format!("token exchange service at {shown}")),
        _ => Err(format!("the token exchange service at {shown} answered JSON without an access_token")),
    }
}

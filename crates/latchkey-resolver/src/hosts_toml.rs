//! containerd `hosts.toml` for a static-bearer registry.
//!
//! containerd (`config_path`, `/etc/containerd/certs.d/<host>/hosts.toml`) appends a host's
//! `header` table to every request. With the static bearer there, containerd (and nerdctl,
//! crictl, k3s...) pull without a challenge flow. containerd cannot renew it: the file states
//! the token's expiry and must be rewritten before then.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::client::{ClientOptions, PlainHttp};
use super::{Credential, Resolved};
use latchkey_jwt as jwt;

/// A rendered hosts.toml.
#[derive(Debug)]
pub struct HostsToml {
    /// The directory name containerd looks for under its `config_path` (`ghcr.io`,
    /// `localhost:5000`, `docker.io`).
    pub dir_name: String,
    /// The file's text (it contains the token: keep it private).
    pub text: String,
    /// The token's `exp`, when it is a JWT that has one.
    pub expires_at: Option<u64>,
}

/// Render hosts.toml for `resolved`, which must be a static bearer.
///
/// ```
/// use std::time::SystemTime;
/// use latchkey_resolver::{hosts_toml, ClientOptions, Resolver};
///
/// let resolver = Resolver::from_json(r#"{"auths": {"reg.example": {"registrytoken": "opaque"}}}"#).unwrap();
/// let resolved = resolver.resolve("reg.example").unwrap();
/// let file = hosts_toml::render(&resolved, &ClientOptions::default(), SystemTime::now()).unwrap();
/// assert_eq!(file.dir_name, "reg.example"); // /etc/containerd/certs.d/reg.example/hosts.toml
/// assert!(file.text.contains(r#"Authorization = "Bearer opaque""#));
/// assert!(file.text.contains("expiry is unknown")); // not a JWT
/// ```
pub fn render(resolved: &Resolved, options: &ClientOptions, now: SystemTime) -> Result<HostsToml, String> {
    let token = match &resolved.credential {
        Credential::StaticBearer(token) => token,
        Credential::Anonymous => {
            return Err(format!(
                "{} has no static bearer: {}; hosts.toml can only carry a static header",
                resolved.registry,
                resolved.describe()
            ));
        }
        other => {
            return Err(format!(
                "{} resolves to a {} from {}, not a static bearer; containerd's hosts.toml can only carry static headers, so use containerd's own credentials for it (or configure the registry in latchkey with mode = \"static-bearer\")",
                resolved.registry,
                other.kind(),
                resolved.source
            ));
        }
    };
    if token.expose().chars().any(|c| c.is_control() || c == '"' || c == '\\') {
        return Err(format!(
            "the static bearer for {} contains characters no HTTP header can carry",
            resolved.registry
        ));
    }
    let host = resolved.registry.api_host();
    let plain = match options.plain_http {
        PlainHttp::Always => true,
        PlainHttp::Never => false,
        PlainHttp::Loopback => latchkey_http::is_loopback_host(host),
    };
    let server = format!("{}://{host}", if plain { "http" } else { "https" });
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let claims = jwt::inspect(token.expose()).ok();
    let expires_at = claims.as_ref().and_then(|c| c.expires_at);
    let expiry = match (&claims, expires_at) {
        (None, _) => "# The token is not a JWT, so its expiry is unknown: rewrite this file whenever the\n# credential helper's token changes.".to_owned(),
        (Some(_), None) => "# The token carries no expiry (no exp claim).".to_owned(),
        (Some(_), Some(exp)) if exp <= now_secs => {
            return Err(format!("the static bearer for {} expired at {}", resolved.registry, jwt::rfc3339(exp)));
        }
        (Some(_), Some(exp)) => format!(
            "# WARNING: the bearer token below EXPIRES at {} (in {}).\n# containerd sends it as it is and cannot renew it: after that time every pull from\n# {host} fails with 401 Unauthorized. Rewrite this file before then, e.g. from a timer:\n#   docker-credential-latchkey hosts-toml {} --write /etc/containerd/certs.d",
            jwt::rfc3339(exp),
            jwt::human_duration(Duration::from_secs(exp - now_secs)),
            resolved.registry
        ),
    };
    let text = format!(
        "# containerd hosts.toml for {registry}, written by docker-credential-latchkey {version} at {now}.\n\
         # Credential: static bearer from {source}.\n\
         {expiry}\n\
         # This file holds a credential: keep it readable by root only.\n\
         server = \"{server}\"\n\
         \n\
         [host.\"{server}\"]\n\
         \x20 capabilities = [\"pull\", \"resolve\"]\n\
         \x20 [host.\"{server}\".header]\n\
         \x20   Authorization = \"Bearer {token}\"\n",
        registry = resolved.registry,
        version = env!("CARGO_PKG_VERSION"),
        now = jwt::rfc3339(now_secs),
        source = resolved.source,
        token = token.expose(),
    );
    Ok(HostsToml { dir_name: resolved.registry.as_str().to_owned(), text, expires_at })
}

/// Write `hosts` to `<dir>/<host>/hosts.toml` (mode 0600, atomically); returns the path.
pub fn write(hosts: &HostsToml, dir: &Path) -> std::io::Result<PathBuf> {
    let host_dir = dir.join(&hosts.dir_name);
    std::fs::create_dir_all(&host_dir)?;
    let path = host_dir.join("hosts.toml");
    latchkey_fs::write_atomic(&path, hosts.text.as_bytes(), 0o600)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resolver;

    #[test]
    fn renders_a_static_bearer_with_its_expiry() {
        let now = SystemTime::now();
        let spec = jwt::MintSpec {
            algorithm: jwt::Algorithm::ES256,
            private_key_pem: include_str!("../../../tests/support_registry/keys/p256_pkcs8.pem").into(),
            key_id: jwt::KeyIdHeader::Libtrust,
            issuer: "i".into(),
            subject: "s".into(),
            audience: "a".into(),
            lifetime: Duration::from_secs(600),
            not_before_skew: Duration::from_secs(0),
            extra_claims: Default::default(),
        };
        let token = jwt::mint(&spec, now).unwrap();
        let config = format!(r#"{{"auths": {{"localhost:5000": {{"registrytoken": "{}"}}}}}}"#, token.expose());
        let resolver = Resolver::from_json(&config).unwrap();
        let resolved = resolver.resolve("localhost:5000").unwrap();
        let out = render(&resolved, &ClientOptions::default(), now).unwrap();
        let parsed: toml::Table = toml::from_str(&out.text).unwrap();
        assert_eq!(parsed["server"].as_str(), Some("http://localhost:5000"));
        let header = &parsed["host"]["http://localhost:5000"]["header"]["Authorization"];
        assert_eq!(header.as_str().unwrap(), format!("Bearer {}", token.expose()));
        assert!(out.text.contains("WARNING: the bearer token below EXPIRES at"), "{}", out.text);
        assert!(out.text.contains("(in 10m)"), "{}", out.text);
        assert_eq!(out.dir_name, "localhost:5000");

        let anonymous = resolver.resolve("ghcr.io").unwrap();
        assert!(render(&anonymous, &ClientOptions::default(), now).is_err());
        let basic = Resolver::from_json(r#"{"auths": {"ghcr.io": {"auth": "dTpw"}}}"#).unwrap();
        let err = render(&basic.resolve("ghcr.io").unwrap(), &ClientOptions::default(), now).unwrap_err();
        assert!(err.contains("not a static bearer"), "{err}");
    }
}

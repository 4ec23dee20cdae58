//! One registry, one key: the normalisation every lookup goes through.
//!
//! docker sends bare hosts (`ghcr.io`), skopeo `host:port`, rules_oci `https://host`, and
//! Docker Hub goes by four names. A credential stored through any of them must be found
//! through the others, so every store and config lookup uses [`RegistryKey`].
//!
//! A server URL's path is dropped when it only names the API (empty, `/`, `/v1/`, `/v2/`)
//! and kept otherwise: docker CLI >= 27.4 stores Docker Hub's OAuth tokens under
//! `https://index.docker.io/v1/access-token` and `.../refresh-token` beside
//! `https://index.docker.io/v1/`, and those must stay three entries ([`RegistryKey::parse`]).
//! Registry names in configs and image references never carry a path
//! ([`RegistryKey::parse_host`]).

use std::fmt;

/// The canonical key for Docker Hub.
pub const DOCKER_HUB: &str = "docker.io";

const DOCKER_HUB_ALIASES: &[&str] =
    &["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"];

/// A normalised registry host (lower-case, no scheme, port kept), followed by the server
/// URL's path when that path is more than the API's (`docker.io/v1/refresh-token`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegistryKey(String);

/// Why a server URL names no registry.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidServerUrl(pub String);

impl fmt::Display for InvalidServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid registry server URL {:?}: expected a host such as ghcr.io, localhost:5000 or https://ghcr.io",
            redact_userinfo(&self.0)
        )
    }
}

/// `https://user:pw@host/v2/` -> `https://***@host/v2/`: an error never echoes a password
/// put in the wrong place (the password may itself contain '/', so cut at the last '@').
fn redact_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

impl std::error::Error for InvalidServerUrl {}

impl RegistryKey {
    /// Normalise a server URL as a credential helper receives it: the host, plus the path
    /// when it is anything but empty, `/`, `/v1/` or `/v2/` (trailing slashes ignored).
    pub fn parse(server_url: &str) -> Result<Self, InvalidServerUrl> {
        let host = Self::parse_host(server_url)?;
        let trimmed = server_url.trim();
        let rest = trimmed.find("://").map_or(trimmed, |i| &trimmed[i + 3..]);
        let path = match rest.find('/') {
            Some(i) => rest[i..].split(['?', '#']).next().unwrap_or(""),
            None => "",
        };
        let path = path.trim_end_matches('/');
        if path.is_empty() || path == "/v1" || path == "/v2" {
            return Ok(host);
        }
        // A path becomes part of a store key and a keyring attribute: printable URL characters only.
        let url_char = |c: char| c.is_ascii_alphanumeric() || "-._~/%:@!$&'()*+,;=".contains(c);
        if !path.chars().all(url_char) {
            return Err(InvalidServerUrl(server_url.to_owned()));
        }
        Ok(RegistryKey(format!("{}{path}", host.0)))
    }

    /// Normalise a registry name (a config table, an image reference, a `credHelpers` key):
    /// the host alone, whatever path follows it.
    pub fn parse_host(server_url: &str) -> Result<Self, InvalidServerUrl> {
        let invalid = || InvalidServerUrl(server_url.to_owned());
        let trimmed = server_url.trim();
        let rest = match trimmed.find("://") {
            Some(i) => {
                let scheme = &trimmed[..i];
                if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
                    return Err(invalid());
                }
                &trimmed[i + 3..]
            }
            None => trimmed,
        };
        // The authority ends at the first '/', '?' or '#'; anything after is a path.
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            // Userinfo in a server URL is a credential in the wrong place; refuse it.
            return Err(invalid());
        }
        let host = authority.to_ascii_lowercase();
        if host.is_empty() || host.starts_with(':') || host.ends_with(':') {
            return Err(invalid());
        }
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_' | '[' | ']');
        if !host.chars().all(valid_char) {
            return Err(invalid());
        }
        if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
            return Ok(RegistryKey(DOCKER_HUB.to_owned()));
        }
        Ok(RegistryKey(host))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The registry host (with port), without the path a Docker Hub token entry carries.
    pub fn host(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    /// The host:port part for building URLs (Docker Hub's API host, not its alias).
    pub fn api_host(&self) -> &str {
        match self.host() {
            DOCKER_HUB => "registry-1.docker.io",
            host => host,
        }
    }
}

impl fmt::Display for RegistryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        RegistryKey::parse(s).unwrap().0
    }

    #[test]
    fn ghcr_spellings_are_one_key() {
        for s in [
            "ghcr.io",
            "https://ghcr.io",
            "https://ghcr.io/",
            "https://ghcr.io/v2/",
            "GHCR.IO",
            " ghcr.io\n",
            "http://ghcr.io/v2",
        ] {
            assert_eq!(key(s), "ghcr.io", "{s}");
        }
    }

    #[test]
    fn ports_are_kept() {
        assert_eq!(key("127.0.0.1:5001"), "127.0.0.1:5001");
        assert_eq!(key("https://localhost:5000/v2/"), "localhost:5000");
        assert_eq!(key("[::1]:5000"), "[::1]:5000");
        assert_ne!(key("localhost:5000"), key("localhost"));
    }

    #[test]
    fn docker_hub_aliases_are_one_key() {
        for s in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
            "https://registry-1.docker.io/v2/",
        ] {
            assert_eq!(key(s), DOCKER_HUB, "{s}");
        }
    }

    /// docker CLI >= 27.4 keeps Docker Hub's OAuth tokens in entries of their own.
    #[test]
    fn docker_hub_token_entries_are_distinct_keys() {
        let hub = key("https://index.docker.io/v1/");
        let access = key("https://index.docker.io/v1/access-token");
        let refresh = key("https://index.docker.io/v1/refresh-token");
        assert_eq!(hub, "docker.io");
        assert_eq!(access, "docker.io/v1/access-token");
        assert_eq!(refresh, "docker.io/v1/refresh-token");
        assert_eq!(key("index.docker.io/v1/refresh-token/"), refresh, "trailing slash");
        assert_eq!(key("https://INDEX.docker.io/v1/refresh-token?x#y"), refresh, "host case, query, fragment");
        let parsed = RegistryKey::parse("https://index.docker.io/v1/refresh-token").unwrap();
        assert_eq!((parsed.host(), parsed.api_host()), ("docker.io", "registry-1.docker.io"));
        assert_eq!(RegistryKey::parse(parsed.as_str()).unwrap(), parsed, "a key parses back to itself");
        assert_eq!(RegistryKey::parse_host("https://index.docker.io/v1/refresh-token").unwrap().as_str(), "docker.io");
        assert_eq!(key("ghcr.io/org/app"), "ghcr.io/org/app");
        assert_eq!(RegistryKey::parse_host("ghcr.io/org/app").unwrap().as_str(), "ghcr.io");
        assert!(RegistryKey::parse("ghcr.io/a b").is_err());
        assert!(RegistryKey::parse("ghcr.io/a\"b").is_err());
    }

    #[test]
    fn garbage_is_refused() {
        for s in [
            "",
            "   ",
            "https://",
            "ftp://x.io",
            "user:pw@x.io",
            "https://u@x.io",
            "x .io",
            ":5000",
            "x.io:",
            "a\u{0}b",
        ] {
            assert!(RegistryKey::parse(s).is_err(), "{s:?}");
        }
    }
}

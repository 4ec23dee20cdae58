//! Image references as docker spells them: `[registry/]repository[:tag][@digest]`.

use std::fmt;

use latchkey_protocol::server_url::{DOCKER_HUB, RegistryKey};

/// A parsed image reference.
///
/// ```
/// use latchkey_resolver::Reference;
///
/// let r: Reference = "nginx".parse().unwrap();
/// assert_eq!(r.registry.as_str(), "docker.io");
/// assert_eq!(r.repository, "library/nginx");
/// assert_eq!(r.tag.as_deref(), Some("latest"));
///
/// let r: Reference = "localhost:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".parse().unwrap();
/// assert_eq!(r.registry.as_str(), "localhost:5000");
/// assert!(r.tag.is_none() && r.digest.is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub registry: RegistryKey,
    /// `library/nginx`, `team/app`.
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// `sha256:<hex>` when pinned.
    pub digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidReference(pub String);

impl fmt::Display for InvalidReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidReference {}

impl std::str::FromStr for Reference {
    type Err = InvalidReference;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| InvalidReference(format!("invalid image reference {s:?}: {why}"));
        let s = s.trim();
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.contains("://") {
            return Err(bad("write it without a scheme, e.g. ghcr.io/org/app:tag"));
        }
        let (name, digest) = match s.split_once('@') {
            Some((name, digest)) => {
                validate_digest(digest).map_err(|why| bad(&why))?;
                (name, Some(digest.to_owned()))
            }
            None => (s, None),
        };
        // The registry is the first component if it looks like a host (docker's rule).
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
            _ => (DOCKER_HUB, name),
        };
        let registry = RegistryKey::parse_host(registry).map_err(|e| bad(&e.to_string()))?;
        // A tag is after the last ':' of the last path component.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (&path[..last_slash + i], Some(path[last_slash + i + 1..].to_owned())),
            None => (path, None),
        };
        if repository.is_empty() {
            return Err(bad("no repository name"));
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-'))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad("repository names are lower-case letters, digits and . _ - separated by /"));
        }
        if let Some(tag) = &tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(bad("a tag is up to 128 letters, digits, . _ - (not starting with . or -)"));
            }
        }
        let mut repository = repository.to_owned();
        if registry.as_str() == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_owned()) } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }
}

/// `sha256:<64 hex>` or `sha512:<128 hex>`, lower case.
pub fn validate_digest(digest: &str) -> Result<(), String> {
    let (algorithm, hex) = digest.split_once(':').ok_or_else(|| format!("digest {digest:?} has no algorithm"))?;
    let len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        other => return Err(format!("digest algorithm {other:?} is not supported (sha256 or sha512)")),
    };
    if hex.len() != len || !hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
        return Err(format!("digest {digest:?} is not {algorithm}: followed by {len} lower-case hex digits"));
    }
    Ok(())
}

impl Reference {
    /// The tag or digest to ask the registry for (the digest when both are given).
    pub fn manifest_reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// The token scope for pulling: `repository:<name>:pull`.
    pub fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_rules() {
        let x = r("nginx:1.25");
        assert_eq!(
            (x.registry.as_str(), x.repository.as_str(), x.tag.as_deref()),
            ("docker.io", "library/nginx", Some("1.25"))
        );
        assert_eq!(r("user/app").repository, "user/app");
        assert_eq!(r("docker.io/nginx").repository, "library/nginx");
        assert_eq!(r("index.docker.io/library/nginx").registry.as_str(), "docker.io");
        let x = r("127.0.0.1:5000/a/b/c:v1");
        assert_eq!(
            (x.registry.as_str(), x.repository.as_str(), x.tag.as_deref()),
            ("127.0.0.1:5000", "a/b/c", Some("v1"))
        );
        let x = r("localhost/app");
        assert_eq!((x.registry.as_str(), x.repository.as_str()), ("localhost", "app"));
        let x = r(&format!("ghcr.io/o/app:v1@{D}"));
        assert_eq!((x.tag.as_deref(), x.digest.as_deref(), x.manifest_reference()), (Some("v1"), Some(D), D));
        assert_eq!(x.to_string(), format!("ghcr.io/o/app:v1@{D}"));
        assert_eq!(r("ghcr.io/o/app").pull_scope(), "repository:o/app:pull");
    }

    #[test]
    fn refusals() {
        for bad in ["", "https://ghcr.io/a", "ghcr.io/", "ghcr.io/A", "a:", "a@sha256:12", "a@md5:00", "a:-x", "a//b"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?}");
        }
    }
}

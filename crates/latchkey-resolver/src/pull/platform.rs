//! Which manifests of an index to pull: `--platform os/arch[/variant]`, the machine's own, or
//! all; and whether an index entry's platform serves the one asked for.

use std::fmt;

use oci_spec::image::Platform;

/// Which manifests of an index to pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformSelector {
    /// The machine's own (`linux/<arch>`), as docker pulls.
    Host,
    /// One platform.
    One(PlatformSpec),
    /// Every manifest of the index (and the index itself).
    All,
}

/// `os/arch[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::str::FromStr for PlatformSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || format!("invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7");
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [os, arch] => Ok(PlatformSpec { os: os.to_string(), architecture: arch.to_string(), variant: None }),
            [os, arch, variant] => Ok(PlatformSpec {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl PlatformSpec {
    /// `linux/<this machine's arch>`.
    pub fn host() -> PlatformSpec {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        PlatformSpec { os: "linux".into(), architecture: architecture.into(), variant: variant.map(str::to_owned) }
    }

    /// Whether an index entry for `p` serves this platform.
    pub(super) fn matches(&self, p: &PlatformSpec) -> bool {
        if p.os != self.os || p.architecture != self.architecture {
            return false;
        }
        match (&self.variant, &p.variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // arm64's default variant is v8.
            (Some(want), None) => self.architecture == "arm64" && want == "v8",
        }
    }

    pub(super) fn of(p: &Platform) -> PlatformSpec {
        PlatformSpec {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p: PlatformSpec = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!("linux".parse::<PlatformSpec>().is_err());
        assert!("linux//v7".parse::<PlatformSpec>().is_err());
        let platform: Platform =
            serde_json::from_str(r#"{"architecture":"arm64","os":"linux","features":["sse4"]}"#).unwrap();
        let platform = PlatformSpec::of(&platform);
        assert!("linux/arm64".parse::<PlatformSpec>().unwrap().matches(&platform));
        assert!("linux/arm64/v8".parse::<PlatformSpec>().unwrap().matches(&platform));
        assert!(!"linux/arm64/v9".parse::<PlatformSpec>().unwrap().matches(&platform));
        assert!(!"linux/amd64".parse::<PlatformSpec>().unwrap().matches(&platform));
    }
}

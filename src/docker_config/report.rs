//! What `status` shows about docker's config.json.

use std::fs;
use std::io;
use std::path::Path;

use super::HELPER;
use super::edit::EditError;
use super::json_text::{Doc, Value};
use super::locate::docker_config_path;
use super::plan::is_blank;

/// What `status` shows about docker's config.json.
#[derive(serde::Serialize, Debug)]
pub struct DockerReport {
    /// The config file docker reads.
    pub path: String,
    /// credHelpers keys routed to latchkey, in file order.
    pub latchkey_registries: Vec<String>,
    /// credHelpers keys routed to other helpers: (key, helper as written).
    pub other_helpers: Vec<(String, String)>,
    /// The default helper for every other registry, if any.
    pub creds_store: Option<String>,
    /// Why the file could not be read, if it could not.
    pub error: Option<String>,
}

impl std::fmt::Display for DockerReport {
    /// `PATH: latchkey for ghcr.io, docker.io; other helpers: gcr.io: gcloud; credsStore: pass`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(error) = &self.error {
            return write!(f, "{}: unreadable: {error}", self.path);
        }
        let mut parts = vec![if self.latchkey_registries.is_empty() {
            "no registry uses latchkey (run configure-docker REGISTRY)".to_owned()
        } else {
            format!("latchkey for {}", self.latchkey_registries.join(", "))
        }];
        if !self.other_helpers.is_empty() {
            let others: Vec<String> = self.other_helpers.iter().map(|(k, h)| format!("{k}: {h}")).collect();
            parts.push(format!("other helpers: {}", others.join(", ")));
        }
        if let Some(store) = &self.creds_store {
            parts.push(format!("credsStore: {store}"));
        }
        write!(f, "{}: {}", self.path, parts.join("; "))
    }
}

/// The docker config.json as `status` reports it; `None` if it does not exist (or no home).
pub fn report() -> Option<DockerReport> {
    report_at(&docker_config_path(None).ok()?)
}

pub(super) fn report_at(path: &Path) -> Option<DockerReport> {
    let mut report = DockerReport {
        path: path.display().to_string(),
        latchkey_registries: Vec::new(),
        other_helpers: Vec::new(),
        creds_store: None,
        error: None,
    };
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            report.error = Some(e.to_string());
            return Some(report);
        }
    };
    if is_blank(&bytes) {
        return Some(report);
    }
    let parsed = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|e| format!("not valid JSON: {e}"))
        .and_then(|_| String::from_utf8(bytes).map_err(|e| e.to_string()))
        .and_then(|text| match Doc::parse(&text) {
            Ok(doc) => Ok((text, doc)),
            Err(EditError::Invalid(why)) => Err(why),
            Err(EditError::HelpersNotObject(kind)) => Err(format!("\"credHelpers\" is {kind}, not an object")),
            Err(EditError::Conflicts(_)) => Err("unexpected conflict".to_owned()),
        });
    let (text, doc) = match parsed {
        Ok(parsed) => parsed,
        Err(why) => {
            report.error = Some(why);
            return Some(report);
        }
    };
    if let Some(m) = doc.root.members.iter().rev().find(|m| m.key == "credsStore") {
        report.creds_store = Some(Value::of(&text, m).plain());
    }
    if let Some(helpers) = doc.helpers_object() {
        for m in &helpers.members {
            match Value::of(&text, m) {
                Value::Str(v) if v == HELPER => report.latchkey_registries.push(m.key.clone()),
                other => report.other_helpers.push((m.key.clone(), other.plain())),
            }
        }
    }
    Some(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker_config::keys;

    #[test]
    fn status_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert!(report_at(&path).is_none());
        fs::write(
            &path,
            r#"{"credsStore": "pass", "credHelpers": {"ghcr.io": "latchkey", "gcr.io": "gcloud", "docker.io": "latchkey"}}"#,
        )
        .unwrap();
        let r = report_at(&path).unwrap();
        assert_eq!(r.latchkey_registries, keys(&["ghcr.io", "docker.io"]));
        assert_eq!(r.other_helpers, vec![("gcr.io".to_owned(), "gcloud".to_owned())]);
        assert_eq!(r.creds_store.as_deref(), Some("pass"));
        assert!(r.error.is_none());
        assert!(
            r.to_string().contains("latchkey for ghcr.io, docker.io; other helpers: gcr.io: gcloud; credsStore: pass")
        );
        fs::write(&path, "{,").unwrap();
        let r = report_at(&path).unwrap();
        assert!(r.error.as_deref().unwrap().contains("line 1 column 2"), "{r:?}");
    }
}

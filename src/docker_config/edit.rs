//! The edits, on text: set or remove `credHelpers` entries, leaving every other byte as it was.

use latchkey_protocol::server_url::RegistryKey;

use super::HELPER;
use super::json_text::{Doc, Entry, Value};
use super::locate::{FileKind, entry_keys};

/// The outcome of editing a file's text.
#[derive(Debug)]
pub(super) struct Edited {
    pub(super) text: String,
    /// Whether anything changed (a missing file with nothing to add is not created).
    pub(super) changed: bool,
    /// One line per registry key, for stderr.
    pub(super) notes: Vec<String>,
}

/// Why an edit cannot be made; the file is left as it is.
#[derive(Debug)]
pub(super) enum EditError {
    /// The text is not a JSON object (serde_json's message carries the position).
    Invalid(String),
    /// Other helpers own these keys: (key, current value).
    Conflicts(Vec<(String, Value)>),
    /// `credHelpers` exists but is not an object (its JSON type).
    HelpersNotObject(&'static str),
}

/// The fuzz targets' entry (`fuzz/`): edit `text` for `hosts` the way configure-docker and
/// unconfigure-docker do, and panic if an invariant breaks: an edit is JSON, configuring
/// twice changes nothing, and configure then unconfigure gives back the original document when
/// the file had no credHelpers of its own.
#[doc(hidden)]
pub fn check_edit_invariants(text: &str, hosts: &[&str]) {
    let registries: Vec<RegistryKey> = hosts.iter().filter_map(|h| RegistryKey::parse_host(h).ok()).collect();
    if registries.is_empty() {
        return;
    }
    let keys = entry_keys(&registries, FileKind::Docker);
    // Any text: no panic.
    let _ = unconfigure_text(text, &registries);
    let _ = configure_text(text, &keys, true);
    // The editor's scanner only sees what serde_json accepted first (see `run_edit`).
    if !text.trim().is_empty() && serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return;
    }
    let Ok(configured) = configure_text(text, &keys, false) else { return };
    serde_json::from_str::<serde_json::Value>(&configured.text).expect("a configured file is JSON");
    let again = configure_text(&configured.text, &keys, false).expect("a configured file configures again");
    assert!(!again.changed && again.text == configured.text, "configure is not idempotent");
    let had_helpers =
        serde_json::from_str::<serde_json::Value>(text).ok().is_some_and(|v| v.get("credHelpers").is_some());
    let restored = unconfigure_text(&configured.text, &registries).expect("a configured file unconfigures");
    if !had_helpers && !text.trim().is_empty() {
        // Same document; byte for byte in the layouts docker and editors write (the property
        // tests check that), but whitespace inside an empty object (`{\n\n}`) comes back as `{}`.
        let value = |t: &str| serde_json::from_str::<serde_json::Value>(t).expect("JSON");
        assert_eq!(value(&restored.text), value(text), "configure then unconfigure changes the document");
    }
}

/// A new file, or an empty one: docker's own layout (tab indentation).
pub(super) const EMPTY_DOC: &str = "{}\n";

pub(super) fn helper_json() -> String {
    json_string(HELPER)
}

pub(super) fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

/// Set `credHelpers[key] = "latchkey"` for every key. Another helper's entry is a conflict
/// unless `force`; all conflicts are reported at once and nothing is changed.
pub(super) fn configure_text(text: &str, keys: &[String], force: bool) -> std::result::Result<Edited, EditError> {
    let mut text = if text.trim().is_empty() { EMPTY_DOC.to_owned() } else { text.to_owned() };
    let doc = Doc::parse(&text)?;
    if !force {
        let conflicts: Vec<(String, Value)> = keys
            .iter()
            .filter_map(|key| match doc.helper(&text, key) {
                Some(Entry { value: Value::Str(v), .. }) if v == HELPER => None,
                Some(entry) => Some((key.clone(), entry.value)),
                None => None,
            })
            .collect();
        if !conflicts.is_empty() {
            return Err(EditError::Conflicts(conflicts));
        }
    }
    let mut notes = Vec::new();
    let mut changed = false;
    for key in keys {
        let doc = Doc::parse(&text)?;
        match doc.helper(&text, key) {
            Some(Entry { value: Value::Str(v), .. }) if v == HELPER => {
                notes.push(format!("{key:?} already uses {HELPER:?}"));
            }
            Some(entry) => {
                notes.push(format!("{key:?}: replaced {} with {HELPER:?} (--force)", entry.value.describe()));
                text.replace_range(entry.member.value_start..entry.member.value_end, &helper_json());
                changed = true;
            }
            None => {
                text = doc.insert_helper(&text, key, &helper_json());
                notes.push(format!("{key:?}: added credHelpers entry {HELPER:?}"));
                changed = true;
            }
        }
    }
    Ok(Edited { text, changed, notes })
}

/// Remove every credHelpers entry that names one of `registries` (in any spelling) and whose
/// value is "latchkey". Other helpers' entries stay, with a note. An emptied credHelpers
/// object is removed.
pub(super) fn unconfigure_text(text: &str, registries: &[RegistryKey]) -> std::result::Result<Edited, EditError> {
    let blank = text.trim().is_empty();
    let mut text = if blank { EMPTY_DOC.to_owned() } else { text.to_owned() };
    let matches = |key: &str| RegistryKey::parse_host(key).ok().filter(|k| registries.contains(k));
    let mut removed: Vec<(RegistryKey, String)> = Vec::new();
    loop {
        let doc = Doc::parse(&text)?;
        let Some(helpers) = doc.helpers_object() else { break };
        let found = helpers.members.iter().enumerate().find_map(|(i, m)| {
            let registry = matches(&m.key)?;
            let is_ours = matches!(Value::of(&text, m), Value::Str(v) if v == HELPER);
            is_ours.then(|| (i, registry, m.key.clone()))
        });
        let Some((index, registry, key)) = found else { break };
        text = doc.remove_helper(&text, index);
        removed.push((registry, key));
    }
    let mut notes = Vec::new();
    let doc = Doc::parse(&text)?;
    for registry in registries {
        let mut said = false;
        for (_, key) in removed.iter().filter(|(r, _)| r == registry) {
            notes.push(format!("{key:?}: removed the {HELPER:?} entry"));
            said = true;
        }
        if let Some(helpers) = doc.helpers_object() {
            for m in helpers.members.iter().filter(|m| matches(&m.key).as_ref() == Some(registry)) {
                notes.push(format!(
                    "note: {:?} uses {}, not {HELPER:?}; left alone",
                    m.key,
                    Value::of(&text, m).describe()
                ));
                said = true;
            }
        }
        if !said {
            notes.push(format!("{:?}: no credHelpers entry; nothing to remove", registry.as_str()));
        }
    }
    let changed = !removed.is_empty();
    Ok(Edited { text, changed, notes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker_config::keys;

    fn configure(text: &str, list: &[&str]) -> String {
        let edited = configure_text(text, &keys(list), false).unwrap_or_else(|e| panic!("{e:?}"));
        serde_json::from_str::<serde_json::Value>(&edited.text).expect("result is JSON");
        edited.text
    }

    fn unconfigure(text: &str, list: &[&str]) -> Edited {
        let registries: Vec<RegistryKey> = list.iter().map(|s| RegistryKey::parse_host(s).unwrap()).collect();
        let edited = unconfigure_text(text, &registries).unwrap_or_else(|e| panic!("{e:?}"));
        serde_json::from_str::<serde_json::Value>(&edited.text).expect("result is JSON");
        edited
    }

    #[test]
    fn new_file_uses_docker_layout() {
        assert_eq!(configure("", &["ghcr.io"]), "{\n\t\"credHelpers\": {\n\t\t\"ghcr.io\": \"latchkey\"\n\t}\n}\n");
        assert_eq!(
            configure("{}", &["a.io", "b.io"]),
            "{\n\t\"credHelpers\": {\n\t\t\"a.io\": \"latchkey\",\n\t\t\"b.io\": \"latchkey\"\n\t}\n}"
        );
    }

    #[test]
    fn appends_credhelpers_in_the_files_own_layout() {
        let text = "{\n  \"auths\": {\n    \"x.io\": {}\n  },\n  \"n\": 1.50\n}\n";
        assert_eq!(
            configure(text, &["ghcr.io"]),
            "{\n  \"auths\": {\n    \"x.io\": {}\n  },\n  \"n\": 1.50,\n  \"credHelpers\": {\n    \"ghcr.io\": \"latchkey\"\n  }\n}\n"
        );
        assert_eq!(configure(r#"{"a":1}"#, &["ghcr.io"]), r#"{"a":1,"credHelpers":{"ghcr.io":"latchkey"}}"#);
        assert_eq!(
            configure(r#"{"credHelpers": {"a.io": "x"}}"#, &["ghcr.io"]),
            r#"{"credHelpers": {"a.io": "x", "ghcr.io": "latchkey"}}"#
        );
    }

    #[test]
    fn adds_to_an_existing_credhelpers() {
        let text = "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\"\n\t},\n\t\"x\": \"\\u00e9\"\n}";
        assert_eq!(
            configure(text, &["ghcr.io"]),
            "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\",\n\t\t\"ghcr.io\": \"latchkey\"\n\t},\n\t\"x\": \"\\u00e9\"\n}"
        );
        assert_eq!(
            configure("{\n\t\"credHelpers\": {},\n\t\"a\": 1\n}", &["ghcr.io"]),
            "{\n\t\"credHelpers\": {\n\t\t\"ghcr.io\": \"latchkey\"\n\t},\n\t\"a\": 1\n}"
        );
        assert_eq!(
            configure("{\n  \"credHelpers\": null\n}", &["ghcr.io"]),
            "{\n  \"credHelpers\": {\n    \"ghcr.io\": \"latchkey\"\n  }\n}"
        );
    }

    #[test]
    fn idempotent() {
        let once = configure("{\"a\": [1, 2]}\n", &["ghcr.io", "localhost:5000"]);
        let edited = configure_text(&once, &keys(&["ghcr.io", "localhost:5000"]), false).unwrap();
        assert!(!edited.changed);
        assert_eq!(edited.text, once);
    }

    #[test]
    fn conflicts_are_all_reported_and_force_replaces() {
        let text = r#"{"credHelpers": {"gcr.io": "gcloud", "ecr.io": "ecr-login", "ghcr.io": "latchkey"}}"#;
        match configure_text(text, &keys(&["gcr.io", "ghcr.io", "ecr.io"]), false) {
            Err(EditError::Conflicts(c)) => {
                assert_eq!(
                    c,
                    vec![
                        ("gcr.io".into(), Value::Str("gcloud".into())),
                        ("ecr.io".into(), Value::Str("ecr-login".into()))
                    ]
                )
            }
            other => panic!("{other:?}"),
        }
        let forced = configure_text(text, &keys(&["gcr.io"]), true).unwrap();
        assert_eq!(
            forced.text,
            r#"{"credHelpers": {"gcr.io": "latchkey", "ecr.io": "ecr-login", "ghcr.io": "latchkey"}}"#
        );
    }

    #[test]
    fn refuses_what_is_not_an_object() {
        assert!(matches!(configure_text("[1]", &keys(&["a.io"]), false), Err(EditError::Invalid(_))));
        assert!(matches!(configure_text("{}\n}", &keys(&["a.io"]), true), Err(EditError::Invalid(_))));
        assert!(matches!(
            unconfigure_text("{} x", &[RegistryKey::parse_host("a.io").unwrap()]),
            Err(EditError::Invalid(_))
        ));
        assert!(matches!(
            configure_text(r#"{"credHelpers": "x"}"#, &keys(&["a.io"]), false),
            Err(EditError::HelpersNotObject("a string"))
        ));
    }

    #[test]
    fn unconfigure_removes_only_latchkey_entries_and_empty_credhelpers() {
        let text = "{\n\t\"a\": 1,\n\t\"credHelpers\": {\n\t\t\"ghcr.io\": \"latchkey\",\n\t\t\"gcr.io\": \"gcloud\"\n\t}\n}\n";
        let edited = unconfigure(text, &["ghcr.io", "gcr.io"]);
        assert_eq!(edited.text, "{\n\t\"a\": 1,\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\"\n\t}\n}\n");
        assert!(edited.notes.iter().any(|n| n.contains("gcloud") && n.contains("left alone")), "{:?}", edited.notes);

        let text = "{\n\t\"credHelpers\": {\n\t\t\"https://index.docker.io/v1/\": \"latchkey\",\n\t\t\"docker.io\": \"latchkey\"\n\t},\n\t\"a\": 1\n}\n";
        assert_eq!(unconfigure(text, &["docker.io"]).text, "{\n\t\"a\": 1\n}\n");
        let text = "{\"credHelpers\": {\"ghcr.io\": \"latchkey\"}}";
        assert_eq!(unconfigure(text, &["ghcr.io"]).text, "{}");
        let edited = unconfigure("{\"a\": 1}", &["ghcr.io"]);
        assert!(!edited.changed);
    }

    /// What the docker_config fuzz target found: both are inputs the invariants must allow
    /// (text serde_json refuses is never edited; `{\n\n}` comes back as `{}`).
    #[test]
    fn fuzz_findings_hold() {
        for text in ["{\n\t\"auths\":l{},\n\t\"credsStass\"\n}\n", "{\n\n}", "", "{\"a\":1 }", "[]"] {
            check_edit_invariants(text, &["ghcr.io", "docker.io", "localhost:5000"]);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A JSON object in one of the layouts people and tools write: compact, tab- or
        /// space-indented, with or without a final newline; no credHelpers of its own.
        fn document() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                "\\PC{0,12}".prop_map(serde_json::Value::from),
            ];
            let value = leaf.prop_recursive(2, 12, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
                    proptest::collection::btree_map("\\PC{0,8}", inner, 0..3)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            });
            let object = proptest::collection::btree_map("[a-zA-Z][a-zA-Z0-9]{0,10}", value, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().filter(|(k, _)| k != "credHelpers").collect()));
            (object, 0usize..4, any::<bool>()).prop_map(|(object, layout, newline)| {
                use serde::Serialize;
                let mut text = match layout {
                    0 => serde_json::to_string(&object).unwrap(),
                    1 => serde_json::to_string_pretty(&object).unwrap(),
                    indent => {
                        let indent: &[u8] = if indent == 2 { b"\t" } else { b"    " };
                        let mut out = Vec::new();
                        let formatter = serde_json::ser::PrettyFormatter::with_indent(indent);
                        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
                        object.serialize(&mut ser).unwrap();
                        String::from_utf8(out).unwrap()
                    }
                };
                if newline {
                    text.push('\n');
                }
                text
            })
        }

        fn registries() -> impl Strategy<Value = Vec<RegistryKey>> {
            proptest::collection::btree_set("[a-z][a-z0-9-]{0,8}(\\.[a-z]{2,4})?(:[1-9][0-9]{0,3})?", 1..4)
                .prop_map(|set| set.iter().map(|h| RegistryKey::parse_host(h).unwrap()).collect::<Vec<_>>())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn configure_then_unconfigure_restores_the_original_bytes(
                text in document(),
                registries in registries(),
                hub in any::<bool>(),
            ) {
                let mut registries = registries;
                if hub {
                    registries.push(RegistryKey::parse_host("docker.io").unwrap());
                }
                let keys = entry_keys(&registries, FileKind::Docker);
                let configured = configure_text(&text, &keys, false).unwrap();
                prop_assert!(configured.changed);
                let json: serde_json::Value = serde_json::from_str(&configured.text).expect("configured text is JSON");
                for key in &keys {
                    prop_assert_eq!(json["credHelpers"][key].as_str(), Some(HELPER));
                }
                // Configuring again changes nothing.
                let again = configure_text(&configured.text, &keys, false).unwrap();
                prop_assert!(!again.changed);
                prop_assert_eq!(&again.text, &configured.text);
                let restored = unconfigure_text(&configured.text, &registries).unwrap();
                prop_assert_eq!(&restored.text, &text, "configured: {:?}", configured.text);
            }

            #[test]
            fn editing_never_panics_on_arbitrary_text(
                text in "\\PC{0,120}",
                registries in registries(),
                force in any::<bool>(),
            ) {
                let keys = entry_keys(&registries, FileKind::Docker);
                let edited = configure_text(&text, &keys, force);
                // `run_edit` lets only what serde_json accepts reach the editor, whose scanner is
                // lenient inside values (`{"a":tru}`); for such input an edit must be JSON again.
                let valid = text.trim().is_empty() || serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
                if let (true, Ok(edited)) = (valid, edited) {
                    prop_assert!(serde_json::from_str::<serde_json::Value>(&edited.text).is_ok(), "edit is not JSON: {:?}", edited.text);
                }
                if let Ok(edited) = unconfigure_text(&text, &registries) {
                    prop_assert!(edited.changed || edited.text == text || text.trim().is_empty());
                }
            }

            #[test]
            fn editing_never_panics_on_json_like_text(
                text in "[\\{\\}\\[\\]\":, \\n\\ta-z0-9\\\\]{0,80}",
                registries in registries(),
            ) {
                let keys = entry_keys(&registries, FileKind::Docker);
                let _ = configure_text(&text, &keys, true);
                let _ = unconfigure_text(&text, &registries);
                let _ = Doc::parse(&text);
            }
        }
    }
}

//! keyring-core error wording shared by the macOS and Windows backends.

/// Describe a keyring-core error without ever including secret bytes: `BadEncoding` and
/// `BadDataFormat` carry the raw blob, and `Ambiguous`'s text lists entries.
pub fn describe(e: &keyring_core::Error) -> String {
    use keyring_core::Error;
    match e {
        Error::BadEncoding(_) => "the stored data is not valid UTF-8".into(),
        Error::BadDataFormat(_, _) => "the stored data is malformed".into(),
        Error::Ambiguous(entries) => format!("{} keyring items match", entries.len()),
        other => other.to_string(),
    }
}

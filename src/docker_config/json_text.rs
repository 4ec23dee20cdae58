//! A JSON document as spans of text: where the root object's and `credHelpers`' members are, so
//! that an edit touches only those bytes.
//!
//! Hand-written, not jsonc-parser 0.34's CST (tried): its `append` makes a one-line object
//! multi-line (`{"a":1}`; fails `appends_credhelpers_in_the_files_own_layout` and the compact
//! case of `configure_then_unconfigure_restores_the_original_bytes`), a new file gets 2 spaces
//! instead of docker's tab (`new_file_uses_docker_layout`), and `get` finds the first of two
//! `credHelpers` where docker and serde_json use the last.

use super::edit::{EditError, json_string};

/// One `"key": value` member of an object, by byte offsets.
#[derive(Debug, Clone)]
pub(super) struct Member {
    /// The decoded key.
    pub(super) key: String,
    /// Offset of the key's opening quote.
    pub(super) start: usize,
    /// Offset just past the key's closing quote.
    pub(super) key_end: usize,
    pub(super) value_start: usize,
    pub(super) value_end: usize,
}

#[derive(Debug, Clone)]
pub(super) struct Object {
    /// Offset of `{`.
    pub(super) open: usize,
    /// Offset of `}`.
    pub(super) close: usize,
    pub(super) members: Vec<Member>,
}

#[derive(Debug)]
pub(super) enum Helpers {
    Absent,
    /// Present with a `null` value: root member index.
    Null(usize),
    /// Root member index and the object.
    Object(usize, Object),
}

#[derive(Debug)]
pub(super) struct Doc {
    pub(super) root: Object,
    pub(super) helpers: Helpers,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Value {
    Str(String),
    /// Any other JSON value, as written.
    Other(String),
}

impl Value {
    pub(super) fn of(text: &str, m: &Member) -> Value {
        let raw = &text[m.value_start..m.value_end];
        match serde_json::from_str::<String>(raw) {
            Ok(s) => Value::Str(s),
            Err(_) => Value::Other(raw.to_owned()),
        }
    }

    /// A helper name as is, or any other value as its JSON.
    pub(super) fn plain(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Other(raw) => raw.clone(),
        }
    }

    /// The value as a user would recognise it: a quoted helper name, or the JSON as written.
    pub(super) fn describe(&self) -> String {
        match self {
            Value::Str(s) => format!("{s:?}"),
            Value::Other(raw) => raw.clone(),
        }
    }
}

pub(super) struct Entry {
    pub(super) member: Member,
    pub(super) value: Value,
}

impl Doc {
    pub(super) fn parse(text: &str) -> std::result::Result<Doc, EditError> {
        let mut scanner = Scanner { text, bytes: text.as_bytes(), pos: 0 };
        scanner.ws();
        let root = match scanner.peek()? {
            b'{' => scanner.object()?,
            other => {
                let kind = match other {
                    b'[' => "an array",
                    b'"' => "a string",
                    b'n' => "null",
                    b't' | b'f' => "a boolean",
                    _ => "a number",
                };
                return Err(EditError::Invalid(format!("the top level is {kind}, not a JSON object")));
            }
        };
        // Text after the root object would survive every edit and leave a file no JSON parser reads.
        scanner.ws();
        if scanner.pos != text.len() {
            return Err(EditError::Invalid(format!("unexpected text after the JSON object at byte {}", scanner.pos)));
        }
        // The last "credHelpers" wins, as in Go's encoding/json and serde_json.
        let helpers = match root.members.iter().rposition(|m| m.key == "credHelpers") {
            None => Helpers::Absent,
            Some(i) => {
                let m = &root.members[i];
                let mut inner = Scanner { text, bytes: text.as_bytes(), pos: m.value_start };
                match text.as_bytes()[m.value_start] {
                    b'{' => Helpers::Object(i, inner.object()?),
                    b'n' => Helpers::Null(i),
                    b'[' => return Err(EditError::HelpersNotObject("an array")),
                    b'"' => return Err(EditError::HelpersNotObject("a string")),
                    b't' | b'f' => return Err(EditError::HelpersNotObject("a boolean")),
                    _ => return Err(EditError::HelpersNotObject("a number")),
                }
            }
        };
        Ok(Doc { root, helpers })
    }

    pub(super) fn helpers_object(&self) -> Option<&Object> {
        match &self.helpers {
            Helpers::Object(_, obj) => Some(obj),
            _ => None,
        }
    }

    /// The effective entry for `key` (the last one, if the key is repeated).
    pub(super) fn helper(&self, text: &str, key: &str) -> Option<Entry> {
        let member = self.helpers_object()?.members.iter().rev().find(|m| m.key == key)?.clone();
        let value = Value::of(text, &member);
        Some(Entry { member, value })
    }

    /// The indentation unit: that of the root's members, else a tab (docker's own).
    pub(super) fn unit<'t>(&self, text: &'t str) -> &'t str {
        match self.root.members.first().and_then(|m| line_indent(text, m.start)) {
            Some(indent) if !indent.is_empty() => indent,
            _ => "\t",
        }
    }

    /// Insert `"key": value` into credHelpers, creating credHelpers if needed.
    pub(super) fn insert_helper(&self, text: &str, key: &str, value: &str) -> String {
        let unit = self.unit(text);
        let root_sep = self.root.members.last().map_or(": ", |m| &text[m.key_end..m.value_start]);
        let mut out = text.to_owned();
        match &self.helpers {
            Helpers::Object(_, obj) if !obj.members.is_empty() => {
                let last = obj.members.last().expect("not empty");
                let insertion = format!(",{}{}{}{value}", member_gap(text, obj), json_string(key), sep(text, last));
                out.insert_str(last.value_end, &insertion);
            }
            Helpers::Object(i, obj) => {
                let member = &self.root.members[*i];
                let indent = line_indent(text, member.start);
                let rendered = render_object(indent, unit, root_sep, key, value);
                out.replace_range(obj.open..obj.close + 1, &rendered);
            }
            Helpers::Null(i) => {
                let member = &self.root.members[*i];
                let indent = line_indent(text, member.start);
                let rendered = render_object(indent, unit, root_sep, key, value);
                out.replace_range(member.value_start..member.value_end, &rendered);
            }
            Helpers::Absent => {
                if let Some(last) = self.root.members.last() {
                    let indent = line_indent(text, last.start);
                    let rendered = render_object(indent, unit, root_sep, key, value);
                    let insertion =
                        format!(",{}\"credHelpers\"{}{rendered}", member_gap(text, &self.root), sep(text, last));
                    out.insert_str(last.value_end, &insertion);
                } else {
                    let inner = render_object(Some(unit), unit, ": ", key, value);
                    let rendered = format!("{{\n{unit}\"credHelpers\": {inner}\n}}");
                    out.replace_range(self.root.open..self.root.close + 1, &rendered);
                }
            }
        }
        out
    }

    /// Remove credHelpers member `index`; if it is the only one, remove credHelpers itself.
    pub(super) fn remove_helper(&self, text: &str, index: usize) -> String {
        let Helpers::Object(root_index, obj) = &self.helpers else { return text.to_owned() };
        if obj.members.len() == 1 {
            remove_member(text, &self.root, *root_index)
        } else {
            remove_member(text, obj, index)
        }
    }
}

/// `{"key": value}` laid out for a member whose line is indented by `indent` (`None`: the
/// member shares its line with others, so the object stays on one line too).
pub(super) fn render_object(indent: Option<&str>, unit: &str, sep: &str, key: &str, value: &str) -> String {
    let key = json_string(key);
    match indent {
        Some(indent) => format!("{{\n{indent}{unit}{key}{sep}{value}\n{indent}}}"),
        None => format!("{{{key}{sep}{value}}}"),
    }
}

pub(super) fn remove_member(text: &str, obj: &Object, index: usize) -> String {
    let members = &obj.members;
    let range = if members.len() == 1 {
        obj.open + 1..obj.close
    } else if index + 1 < members.len() {
        members[index].start..members[index + 1].start
    } else {
        members[index - 1].value_end..members[index].value_end
    };
    let mut out = text.to_owned();
    out.replace_range(range, "");
    out
}

/// The separator between a member's key and value, as written (`": "`, `":"`, ...).
pub(super) fn sep<'t>(text: &'t str, m: &Member) -> &'t str {
    &text[m.key_end..m.value_start]
}

/// The whitespace to put after a comma before a new last member of a non-empty `obj`: what
/// precedes its members (a newline and indentation, or the space after commas on one line).
pub(super) fn member_gap<'t>(text: &'t str, obj: &Object) -> &'t str {
    let last = obj.members.last().map_or(obj.close, |m| m.start);
    let gap = ws_before(text, last);
    if obj.members.len() > 1 || gap.contains('\n') {
        gap
    } else if obj.members.first().is_some_and(|m| sep(text, m).ends_with(' ')) {
        // `{"a": 1}`: nothing follows `{`, but the file puts spaces around punctuation.
        " "
    } else {
        gap
    }
}

/// The whitespace just before offset `at`.
pub(super) fn ws_before(text: &str, at: usize) -> &str {
    let start = text[..at].trim_end_matches([' ', '\t', '\n', '\r']).len();
    &text[start..at]
}

/// The indentation of the line holding offset `at`, if only whitespace precedes `at` on it.
pub(super) fn line_indent(text: &str, at: usize) -> Option<&str> {
    let ws = ws_before(text, at);
    ws.rfind('\n').map(|i| &ws[i + 1..])
}

/// A scanner over text already validated as JSON by serde_json; it only records where
/// things are. It still fails cleanly, never panics, on anything unexpected.
pub(super) struct Scanner<'t> {
    pub(super) text: &'t str,
    pub(super) bytes: &'t [u8],
    pub(super) pos: usize,
}

impl Scanner<'_> {
    pub(super) fn invalid(&self) -> EditError {
        EditError::Invalid(format!("unexpected JSON at byte {}", self.pos))
    }

    pub(super) fn peek(&self) -> std::result::Result<u8, EditError> {
        self.bytes.get(self.pos).copied().ok_or_else(|| self.invalid())
    }

    pub(super) fn expect(&mut self, byte: u8) -> std::result::Result<(), EditError> {
        if self.peek()? != byte {
            return Err(self.invalid());
        }
        self.pos += 1;
        Ok(())
    }

    pub(super) fn ws(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub(super) fn string(&mut self) -> std::result::Result<(), EditError> {
        self.expect(b'"')?;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.pos += 1,
            }
        }
    }

    pub(super) fn value(&mut self) -> std::result::Result<(), EditError> {
        match self.peek()? {
            b'{' => self.object().map(drop),
            b'[' => self.array(),
            b'"' => self.string(),
            _ => {
                let start = self.pos;
                while matches!(self.bytes.get(self.pos), Some(b) if !matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
                {
                    self.pos += 1;
                }
                if self.pos == start { Err(self.invalid()) } else { Ok(()) }
            }
        }
    }

    pub(super) fn array(&mut self) -> std::result::Result<(), EditError> {
        self.expect(b'[')?;
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            self.value()?;
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.invalid()),
            }
        }
    }

    pub(super) fn object(&mut self) -> std::result::Result<Object, EditError> {
        let open = self.pos;
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.ws();
        if self.peek()? == b'}' {
            let close = self.pos;
            self.pos += 1;
            return Ok(Object { open, close, members });
        }
        loop {
            self.ws();
            let start = self.pos;
            self.string()?;
            let key_end = self.pos;
            let key = serde_json::from_str::<String>(&self.text[start..key_end]).map_err(|_| self.invalid())?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let value_start = self.pos;
            self.value()?;
            let value_end = self.pos;
            members.push(Member { key, start, key_end, value_start, value_end });
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    let close = self.pos;
                    self.pos += 1;
                    return Ok(Object { open, close, members });
                }
                _ => return Err(self.invalid()),
            }
        }
    }
}

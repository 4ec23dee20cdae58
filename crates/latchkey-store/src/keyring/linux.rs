//! Linux: the freedesktop Secret Service (gnome-keyring, KeePassXC, KWallet).
//!
//! Why not keyring-core's zbus-secret-service-keyring-store: it always negotiates a
//! Diffie-Hellman session and makes its calls one after another through zbus's threads (a
//! fresh-process `get` measured 8-17 ms, slower than docker-credential-secretservice on a
//! bad day), and any of its calls may D-Bus-activate a Secret Service, which can block 25 s.
//!
//! What this does instead, over the small blocking client in `dbus.rs`:
//! - the `plain` session algorithm, which the spec allows. On a local bus it hides nothing
//!   that matters: a process that could read our bus traffic could as well ask the service.
//! - few round trips, on one thread: authentication, Hello and a harmless first call go out
//!   in one write (why a harmless one: see `open`); then the default collection's Locked
//!   property with OpenSession; then SearchItems; then GetSecrets. Four in all for a `get`.
//! - NO_AUTO_START on every call: with no Secret Service running, the bus answers at once
//!   instead of starting one (and maybe waiting for it for 25 s).
//! - no unlock prompts: a locked collection is reported as such (`auto` then falls back).
//!   Prompts the service asks for on create or delete (KeePassXC can) are run and waited for.
//!
//! Items carry the attributes `xdg:schema` = [`SCHEMA`], `service` = `latchkey` and `username`
//! = the registry key (the same `service`/`username` pair keyring-core's Secret Service store
//! uses, so `secret-tool lookup service latchkey username ghcr.io` shows the payload).

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

use super::SERVICE;
use super::dbus::{self, Connection, Reader, Writer};

const BUS_NAME: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
/// The spec's path for the default collection, whatever its real path.
const DEFAULT_ALIAS_PATH: &str = "/org/freedesktop/secrets/aliases/default";
const SERVICE_IFACE: &str = "org.freedesktop.Secret.Service";
const COLLECTION_IFACE: &str = "org.freedesktop.Secret.Collection";
const ITEM_IFACE: &str = "org.freedesktop.Secret.Item";
const PROMPT_IFACE: &str = "org.freedesktop.Secret.Prompt";
const PROPERTIES_IFACE: &str = "org.freedesktop.DBus.Properties";
const DBUS_NAME: &str = "org.freedesktop.DBus";
const DBUS_PATH: &str = "/org/freedesktop/DBus";

/// The `xdg:schema` attribute of latchkey's items (what Seahorse shows as the item's kind).
pub const SCHEMA: &str = "latchkey.Credential";
const CONTENT_TYPE: &str = "application/json";

/// The first exchange (authentication, Hello, OpenSession, Locked) is quick for any working
/// bus and service; a bus that does not answer it in this time is broken.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// D-Bus's own default reply timeout. A provider may show a confirmation dialog inside a
/// call (KeePassXC does), so this is generous; it only bounds a hung provider.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// A prompt waits for a person.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(120);

const SERVICE_UNKNOWN: &[&str] =
    &["org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"];

/// Secret values by item path.
type Secrets = Vec<(String, Zeroizing<Vec<u8>>)>;

pub struct Backend {
    conn: RefCell<Connection>,
    /// The `plain` session, opened with the first call that needs one (see [`Backend::open`]).
    session: RefCell<Option<String>>,
    /// The serial of an OpenSession whose answer has not been read yet.
    session_serial: Cell<Option<u32>>,
    /// Where new items go: the default collection.
    collection: String,
}

/// The session bus address: `DBUS_SESSION_BUS_ADDRESS`, else the systemd user bus at
/// `$XDG_RUNTIME_DIR/bus` (as libdbus and sd-bus do).
fn session_bus_address() -> Result<String, String> {
    if let Some(address) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").filter(|a| !a.is_empty()) {
        return address
            .into_string()
            .map_err(|_| "the D-Bus session bus address (DBUS_SESSION_BUS_ADDRESS) is not valid UTF-8".to_string());
    }
    let Some(runtime_dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) else {
        return Err("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set, nor is XDG_RUNTIME_DIR)".into());
    };
    let socket = Path::new(&runtime_dir).join("bus");
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(&socket) {
        Ok(m) if m.file_type().is_socket() => Ok(format!("unix:path={}", escape_address_value(&socket))),
        _ => Err(format!(
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and there is no bus socket at {})",
            socket.display()
        )),
    }
}

/// Escape a value for a D-Bus address: bytes outside `[-0-9A-Za-z_/.\*]` become `%XX`.
fn escape_address_value(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_/.\\*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// The item's label, what Seahorse and KeePassXC show.
fn label(key: &str) -> String {
    format!("latchkey: registry credentials for {key}")
}

fn attributes(key: Option<&str>) -> Vec<(&str, &str)> {
    let mut attrs = vec![("xdg:schema", SCHEMA), ("service", SERVICE)];
    if let Some(key) = key {
        attrs.push(("username", key));
    }
    attrs
}

fn locked_item(key: &str) -> String {
    format!(
        "the keyring item for {key} is in a locked collection; unlock it (log in to the desktop, or use Seahorse or KeePassXC) and try again"
    )
}

fn body(f: impl FnOnce(&mut Writer)) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::default();
    f(&mut w);
    std::mem::take(&mut w.buf)
}

fn strings(values: &[&str]) -> Zeroizing<Vec<u8>> {
    body(|w| values.iter().for_each(|v| w.str(v)))
}

/// An `ao` or `as`.
fn string_array(r: &mut Reader<'_>) -> dbus::Result<Vec<String>> {
    let mut out = Vec::new();
    r.array(4, |r| {
        out.push(r.str()?.to_owned());
        Ok(())
    })?;
    Ok(out)
}

/// A `v` holding a `b`.
fn variant_bool(r: &mut Reader<'_>) -> dbus::Result<bool> {
    match r.variant_sig()? {
        "b" => r.bool(),
        other => Err(dbus::Error::Protocol(format!("expected a boolean, got a {other:?}"))),
    }
}

/// A `v` holding an `a{ss}`.
fn variant_string_dict(r: &mut Reader<'_>) -> dbus::Result<Vec<(String, String)>> {
    let sig = r.variant_sig()?;
    if sig != "a{ss}" {
        return Err(dbus::Error::Protocol(format!("expected a{{ss}}, got a {sig:?}")));
    }
    let mut out = Vec::new();
    r.array(8, |r| {
        r.open_struct()?;
        out.push((r.str()?.to_owned(), r.str()?.to_owned()));
        Ok(())
    })?;
    Ok(out)
}

/// Queue OpenSession with the `plain` algorithm.
fn queue_open_session(conn: &mut Connection) -> u32 {
    let args = body(|w| {
        w.str("plain");
        w.variant("s", |w| w.str(""));
    });
    conn.call(BUS_NAME, SERVICE_PATH, SERVICE_IFACE, "OpenSession", "sv", &args)
}

/// Why the first call failed: no bus, or no Secret Service on it.
fn open_failure(conn: &mut Connection, address: &str, error: dbus::Error) -> String {
    let Some(name) = error.remote_name() else {
        if conn.authenticated() && matches!(error, dbus::Error::Io(_)) {
            return format!("the Secret Service on the session bus did not answer: {error}");
        }
        return format!("cannot talk to the D-Bus session bus at {address}: {error}");
    };
    if !SERVICE_UNKNOWN.contains(&name) {
        return format!("the Secret Service failed to answer: {error}");
    }
    let mut message =
        "no Secret Service on the session bus (is gnome-keyring-daemon or KeePassXC running?)".to_string();
    // Only on this error path: ask the bus whether one could be started, to say how.
    let serial = conn.call(DBUS_NAME, DBUS_PATH, DBUS_NAME, "ListActivatableNames", "", &[]);
    let activatable = conn.set_timeout(Duration::from_secs(1)).and_then(|()| conn.reply(serial)).and_then(|m| {
        let mut r = m.body("as")?;
        string_array(&mut r)
    });
    if activatable.is_ok_and(|names| names.iter().any(|n| n == BUS_NAME)) {
        message.push_str(
            "; one could be D-Bus-activated, but latchkey does not, as activation can hang for 25 s: \
             start it yourself, e.g. with `gnome-keyring-daemon --start --components=secrets`",
        );
    }
    message
}

impl Backend {
    pub fn open() -> Result<Self, String> {
        let address = session_bus_address()?;
        let mut conn = dbus::connect(&address, OPEN_TIMEOUT)
            .map_err(|e| format!("cannot connect to the D-Bus session bus at {address}: {e}"))?;
        // gnome-keyring registers a client in an idle callback after its first message
        // arrives, and a message handled before that can abort the whole daemon (an
        // OpenSession: "gkd_secret_service_publish_dispatch: assertion 'client' failed"; a
        // collection property: "invoke_get_property_in_idle_cb: assertion failed"). Upstream
        // reports put it at about one abort per 4,000 short-lived clients; it happened here
        // under load with either call first. So the first call is one that never needs the
        // client record (the Service's Collections property, served from a cached value, as
        // libsecret's first call is), sent with the authentication and Hello; everything
        // else waits for its answer.
        let probe =
            conn.call(BUS_NAME, SERVICE_PATH, PROPERTIES_IFACE, "Get", "ss", &strings(&[SERVICE_IFACE, "Collections"]));
        match conn.reply(probe) {
            Err(e) if e.remote_name().is_none_or(|n| SERVICE_UNKNOWN.contains(&n)) => {
                return Err(open_failure(&mut conn, &address, e));
            }
            // Any answer will do: its purpose is the ordering.
            _ => {}
        }
        let locked = conn.call(
            BUS_NAME,
            DEFAULT_ALIAS_PATH,
            PROPERTIES_IFACE,
            "Get",
            "ss",
            &strings(&[COLLECTION_IFACE, "Locked"]),
        );
        // The session goes out now too; its answer is read when it is needed.
        let session_serial = queue_open_session(&mut conn);
        let first = conn.reply(locked);
        let (collection, locked) = match first.and_then(|m| variant_bool(&mut m.body("v")?)) {
            Ok(locked) => (DEFAULT_ALIAS_PATH.to_string(), locked),
            // A provider that does not serve the alias path: look the alias up.
            Err(_) => {
                let serial = conn.call(BUS_NAME, SERVICE_PATH, SERVICE_IFACE, "ReadAlias", "s", &strings(&["default"]));
                let path = conn
                    .reply(serial)
                    .and_then(|m| Ok(m.body("o")?.str()?.to_owned()))
                    .map_err(|e| format!("the Secret Service failed to name its default collection: {e}"))?;
                if path == "/" {
                    return Err("the Secret Service has no default collection (create one, e.g. a \"login\" keyring in Seahorse)".into());
                }
                let serial =
                    conn.call(BUS_NAME, &path, PROPERTIES_IFACE, "Get", "ss", &strings(&[COLLECTION_IFACE, "Locked"]));
                let locked = conn.reply(serial).and_then(|m| variant_bool(&mut m.body("v")?)).map_err(|e| {
                    format!("the Secret Service failed to say whether the default collection is locked: {e}")
                })?;
                (path, locked)
            }
        };
        if locked {
            return Err(
                "the default collection is locked (unlock it: log in to the desktop, or use Seahorse or KeePassXC)"
                    .into(),
            );
        }
        conn.set_timeout(CALL_TIMEOUT).map_err(|e| format!("cannot talk to the D-Bus session bus: {e}"))?;
        Ok(Backend {
            conn: RefCell::new(conn),
            session: RefCell::new(None),
            session_serial: Cell::new(Some(session_serial)),
            collection,
        })
    }

    pub fn describe(&self) -> String {
        "OS keyring (Secret Service on the D-Bus session bus)".into()
    }

    fn fail(what: &str, e: dbus::Error) -> String {
        format!("the Secret Service failed to {what}: {e}")
    }

    /// The session's path: OpenSession's answer (queued in `open`) is read the first time.
    fn session(&self, conn: &mut Connection) -> Result<String, String> {
        if let Some(path) = self.session.borrow().clone() {
            return Ok(path);
        }
        let serial = self.session_serial.take().unwrap_or_else(|| queue_open_session(conn));
        let path = conn
            .reply(serial)
            .and_then(|m| {
                let mut r = m.body("vo")?;
                let output = r.variant_sig()?;
                r.skip(output)?;
                Ok(r.str()?.to_owned())
            })
            .map_err(|e| Self::fail("open a session", e))?;
        *self.session.borrow_mut() = Some(path.clone());
        Ok(path)
    }

    /// Paths of latchkey's items, for one key or all: (unlocked, locked).
    fn search(&self, conn: &mut Connection, key: Option<&str>) -> Result<(Vec<String>, Vec<String>), String> {
        let serial = conn.call(
            BUS_NAME,
            SERVICE_PATH,
            SERVICE_IFACE,
            "SearchItems",
            "a{ss}",
            &body(|w| w.string_dict(attributes(key))),
        );
        let (mut unlocked, mut locked) = conn
            .reply(serial)
            .and_then(|m| {
                let mut r = m.body("aoao")?;
                Ok((string_array(&mut r)?, string_array(&mut r)?))
            })
            .map_err(|e| Self::fail("search its items", e))?;
        // A deterministic choice when a key has items in several collections.
        unlocked.sort();
        locked.sort();
        Ok((unlocked, locked))
    }

    /// Queue GetSecrets for `items`; [`Self::secrets_reply`] reads the answer.
    fn secrets_call(conn: &mut Connection, session: &str, items: &[String]) -> u32 {
        let args = body(|w| {
            w.array(4, |w| items.iter().for_each(|p| w.str(p)));
            w.str(session);
        });
        conn.call(BUS_NAME, SERVICE_PATH, SERVICE_IFACE, "GetSecrets", "aoo", &args)
    }

    /// The secret values, by item path.
    fn secrets_reply(conn: &mut Connection, serial: u32) -> Result<Secrets, String> {
        let mut out = Vec::new();
        conn.reply(serial)
            .and_then(|m| {
                let mut r = m.body("a{o(oayays)}")?;
                r.array(8, |r| {
                    r.open_struct()?;
                    let path = r.str()?.to_owned();
                    r.open_struct()?;
                    let _session = r.str()?;
                    let _parameters = r.bytes()?;
                    let value = Zeroizing::new(r.bytes()?.to_vec());
                    let _content_type = r.str()?;
                    out.push((path, value));
                    Ok(())
                })
            })
            .map_err(|e| Self::fail("return secrets", e))?;
        Ok(out)
    }

    /// Run a prompt the service asked for and wait for its answer: `None` if dismissed, else
    /// the result's object path if it is one.
    fn prompt(&self, conn: &mut Connection, prompt: &str, what: &str) -> Result<Option<Option<String>>, String> {
        let fail = |e: dbus::Error| format!("the Secret Service's prompt to {what} failed: {e}");
        let rule = format!("type='signal',interface='{PROMPT_IFACE}',member='Completed',path='{prompt}'");
        let add_match = conn.call(DBUS_NAME, DBUS_PATH, DBUS_NAME, "AddMatch", "s", &strings(&[&rule]));
        conn.reply(add_match).map_err(fail)?;
        let call = conn.call(BUS_NAME, prompt, PROMPT_IFACE, "Prompt", "s", &strings(&[""]));
        conn.reply(call).map_err(fail)?;
        let signal = conn.signal(prompt, "Completed", PROMPT_TIMEOUT).map_err(fail)?;
        let mut r = signal.body("bv").map_err(fail)?;
        let dismissed = r.bool().map_err(fail)?;
        let result = match r.variant_sig().map_err(fail)? {
            "o" => Some(r.str().map_err(fail)?.to_owned()),
            _ => None,
        };
        Ok(if dismissed { None } else { Some(result) })
    }

    /// Delete `items` (the calls go out together); prompts are run one by one.
    fn delete_items(&self, conn: &mut Connection, items: &[String]) -> Result<(), String> {
        let serials: Vec<u32> =
            items.iter().map(|item| conn.call(BUS_NAME, item, ITEM_IFACE, "Delete", "", &[])).collect();
        let mut prompts = Vec::new();
        for serial in serials {
            let prompt = conn
                .reply(serial)
                .and_then(|m| Ok(m.body("o")?.str()?.to_owned()))
                .map_err(|e| Self::fail("delete an item", e))?;
            if prompt != "/" {
                prompts.push(prompt);
            }
        }
        for prompt in prompts {
            if self.prompt(conn, &prompt, "delete an item")?.is_none() {
                return Err("deleting the keyring item was refused at the keyring's prompt".into());
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        let conn = &mut *self.conn.borrow_mut();
        let (unlocked, locked) = self.search(conn, Some(key))?;
        if unlocked.is_empty() {
            return if locked.is_empty() { Ok(None) } else { Err(locked_item(key)) };
        }
        let session = self.session(conn)?;
        let serial = Self::secrets_call(conn, &session, &unlocked);
        let mut secrets = Self::secrets_reply(conn, serial)?;
        // The first item, in path order, that has a secret.
        Ok(unlocked.iter().find_map(|p| secrets.iter().position(|(q, _)| q == p)).map(|i| secrets.swap_remove(i).1))
    }

    pub fn set(&self, key: &str, payload: &[u8]) -> Result<(), String> {
        let conn = &mut *self.conn.borrow_mut();
        let (unlocked, locked) = self.search(conn, Some(key))?;
        if !locked.is_empty() {
            return Err(locked_item(key));
        }
        let session = self.session(conn)?;
        let args = body(|w| {
            // properties: a{sv}
            w.array(8, |w| {
                w.open_struct();
                w.str("org.freedesktop.Secret.Item.Label");
                w.variant("s", |w| w.str(&label(key)));
                w.open_struct();
                w.str("org.freedesktop.Secret.Item.Attributes");
                w.variant("a{ss}", |w| w.string_dict(attributes(Some(key))));
            });
            // secret: (oayays)
            w.open_struct();
            w.str(&session);
            w.bytes(&[]);
            w.bytes(payload);
            w.str(CONTENT_TYPE);
            // replace: an item with the same attributes in the collection is overwritten.
            w.bool(true);
        });
        let serial = conn.call(BUS_NAME, &self.collection, COLLECTION_IFACE, "CreateItem", "a{sv}(oayays)b", &args);
        let (mut item, prompt) = conn
            .reply(serial)
            .and_then(|m| {
                let mut r = m.body("oo")?;
                Ok((r.str()?.to_owned(), r.str()?.to_owned()))
            })
            .map_err(|e| Self::fail("store the item", e))?;
        if prompt != "/" {
            let created = self.prompt(conn, &prompt, "store the item")?;
            let created = created.ok_or("storing in the keyring was refused at the keyring's prompt")?;
            if let Some(path) = created {
                item = path;
            }
        }
        // Copies of the key in other collections would shadow the new item: remove them.
        if unlocked.iter().any(|p| *p != item) {
            let (now, _) = self.search(conn, Some(key))?;
            let stale: Vec<String> = now.into_iter().filter(|p| *p != item).collect();
            self.delete_items(conn, &stale)?;
        }
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<bool, String> {
        let conn = &mut *self.conn.borrow_mut();
        let (unlocked, locked) = self.search(conn, Some(key))?;
        if !locked.is_empty() {
            return Err(locked_item(key));
        }
        self.delete_items(conn, &unlocked)?;
        Ok(!unlocked.is_empty())
    }

    pub fn list(&self) -> Result<super::Listed, String> {
        let conn = &mut *self.conn.borrow_mut();
        let (unlocked, locked) = self.search(conn, None)?;
        if !locked.is_empty() {
            return Err("some of latchkey's keyring items are in a locked collection; unlock it (log in to the desktop, or use Seahorse or KeePassXC) and try again".into());
        }
        if unlocked.is_empty() {
            return Ok(Vec::new());
        }
        let session = self.session(conn)?;
        // Every item's attributes and all the secrets, in one write.
        let attribute_calls: Vec<u32> = unlocked
            .iter()
            .map(|item| conn.call(BUS_NAME, item, PROPERTIES_IFACE, "Get", "ss", &strings(&[ITEM_IFACE, "Attributes"])))
            .collect();
        let secrets_call = Self::secrets_call(conn, &session, &unlocked);
        let mut keys = Vec::with_capacity(unlocked.len());
        for (item, serial) in unlocked.iter().zip(attribute_calls) {
            let attrs = conn
                .reply(serial)
                .and_then(|m| variant_string_dict(&mut m.body("v")?))
                .map_err(|e| Self::fail("return an item's attributes", e))?;
            if let Some((_, key)) = attrs.into_iter().find(|(k, _)| k == "username") {
                keys.push((item, key));
            }
        }
        let mut secrets = Self::secrets_reply(conn, secrets_call)?;
        let mut out = Vec::new();
        for (item, key) in keys {
            if let Some(i) = secrets.iter().position(|(p, _)| p == item) {
                out.push((key, secrets.swap_remove(i).1));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_values_are_escaped() {
        assert_eq!(escape_address_value(Path::new("/run/user/1000/bus")), "/run/user/1000/bus");
        assert_eq!(escape_address_value(Path::new("/tmp/a b,c=d;%")), "/tmp/a%20b%2cc%3dd%3b%25");
    }

    #[test]
    fn attributes_mark_items_as_latchkeys() {
        let all = attributes(None);
        assert!(all.contains(&("xdg:schema", SCHEMA)));
        assert!(all.contains(&("service", "latchkey")));
        assert!(!all.iter().any(|(k, _)| *k == "username"));
        assert!(attributes(Some("ghcr.io")).contains(&("username", "ghcr.io")));
    }
}

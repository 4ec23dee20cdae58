//! Linux: the freedesktop Secret Service (gnome-keyring, KeePassXC, KWallet), spoken over zbus.
//!
//! Why not zbus-secret-service-keyring-store: it always negotiates a Diffie-Hellman session and
//! makes its calls one after another (a `get` measured 2-3x slower than this whole process),
//! and any of its calls may D-Bus-activate a Secret Service, which can block for 25 s.
//!
//! What this does instead:
//! - the `plain` session algorithm, which the spec allows. On a local bus it hides nothing
//!   that matters: a process that could read our bus traffic could as well ask the service.
//! - independent calls sent together: a `get` costs three round trips after the connection
//!   (OpenSession + default-collection check, SearchItems, GetSecrets).
//! - NO_AUTO_START on every call to the service: with no Secret Service running, the bus
//!   answers at once instead of starting one (and maybe waiting for it for 25 s).
//! - no unlock prompts: a locked collection is reported as such (auto then falls back).
//!
//! Items carry the attributes `xdg:schema` = [`SCHEMA`], `service` = `latchkey` and `username`
//! = the registry key (the same `service`/`username` pair keyring-core's Secret Service store
//! uses, so `secret-tool lookup service latchkey username ghcr.io` shows the payload).

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_lite::{StreamExt, future};
use zbus::proxy::{CacheProperties, MethodFlags};
use zbus::zvariant::{DynamicDeserialize, DynamicType, OwnedObjectPath, OwnedValue, Value};
use zeroize::Zeroizing;

use super::SERVICE;

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

/// Connecting to a local bus takes a millisecond; a bus that does not answer is broken.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// D-Bus's own default reply timeout. A provider may show a confirmation dialog inside a
/// call (KeePassXC does), so this is generous; it only bounds a hung provider.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// A prompt waits for a person.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(120);

const SERVICE_UNKNOWN: &[&str] =
    &["org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"];

pub struct Backend {
    conn: zbus::Connection,
    session: OwnedObjectPath,
    /// Where new items go: the default collection.
    collection: OwnedObjectPath,
}

/// A failed call: the bus's or the service's error, or no answer in time.
enum CallError {
    Bus(zbus::Error),
    Timeout(Duration),
}

impl CallError {
    fn name(&self) -> Option<String> {
        match self {
            CallError::Bus(zbus::Error::MethodError(name, _, _)) => Some(name.to_string()),
            CallError::Bus(zbus::Error::FDO(e)) => Some(zbus::DBusError::name(e.as_ref()).to_string()),
            _ => None,
        }
    }

    fn is_service_unknown(&self) -> bool {
        self.name().is_some_and(|n| SERVICE_UNKNOWN.contains(&n.as_str()))
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Bus(e) => write!(f, "{e}"),
            CallError::Timeout(d) => write!(f, "no answer within {} s", d.as_secs()),
        }
    }
}

impl From<zbus::Error> for CallError {
    fn from(e: zbus::Error) -> Self {
        CallError::Bus(e)
    }
}

/// Bound `fut` by `limit`.
async fn timed<T>(limit: Duration, fut: impl Future<Output = Result<T, CallError>>) -> Result<T, CallError> {
    future::or(fut, async {
        async_io::Timer::after(limit).await;
        Err(CallError::Timeout(limit))
    })
    .await
}

async fn proxy<'a>(
    conn: &zbus::Connection,
    dest: &'a str,
    path: &'a str,
    iface: &'a str,
) -> zbus::Result<zbus::Proxy<'a>> {
    zbus::proxy::Builder::new(conn)
        .destination(dest)?
        .path(path)?
        .interface(iface)?
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

/// Call `method` on the Secret Service, never activating it, bounded by [`CALL_TIMEOUT`].
async fn call<B, R>(conn: &zbus::Connection, path: &str, iface: &str, method: &str, body: &B) -> Result<R, CallError>
where
    B: serde::Serialize + DynamicType,
    R: for<'d> DynamicDeserialize<'d>,
{
    timed(CALL_TIMEOUT, async {
        let proxy = proxy(conn, BUS_NAME, path, iface).await?;
        let reply = proxy.call_with_flags(method, MethodFlags::NoAutoStart.into(), body).await?;
        reply.ok_or_else(|| CallError::Bus(zbus::Error::Failure("no reply".into())))
    })
    .await
}

/// Poll all of `futs` together, so their calls are on the wire at the same time.
async fn join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|v| v.expect("every future completed")).collect()
}

fn block_on<T>(fut: impl Future<Output = T>) -> T {
    async_io::block_on(fut)
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

fn attributes(key: Option<&str>) -> HashMap<&str, &str> {
    let mut attrs = HashMap::from([("xdg:schema", SCHEMA), ("service", SERVICE)]);
    if let Some(key) = key {
        attrs.insert("username", key);
    }
    attrs
}

fn locked_item(key: &str) -> String {
    format!(
        "the keyring item for {key} is in a locked collection; unlock it (log in to the desktop, or use Seahorse or KeePassXC) and try again"
    )
}

/// The open failure when OpenSession did not answer: say why there is no Secret Service.
async fn no_service(conn: &zbus::Connection, error: CallError) -> String {
    if !error.is_service_unknown() {
        return format!("the Secret Service failed to open a session: {error}");
    }
    let mut message =
        "no Secret Service on the session bus (is gnome-keyring-daemon or KeePassXC running?)".to_string();
    // Only on this error path: ask the bus whether one could be started, to say how.
    let activatable = timed(Duration::from_secs(1), async {
        let bus = proxy(conn, DBUS_NAME, DBUS_PATH, DBUS_NAME).await?;
        Ok(bus.call::<_, _, Vec<String>>("ListActivatableNames", &()).await?)
    })
    .await;
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
        block_on(async {
            let conn = timed(CONNECT_TIMEOUT, async {
                Ok(zbus::connection::Builder::address(address.as_str())?.build().await?)
            })
            .await
            .map_err(|e| format!("cannot connect to the D-Bus session bus at {address}: {e}"))?;

            let plain = ("plain", Value::from(""));
            let open_session =
                call::<_, (OwnedValue, OwnedObjectPath)>(&conn, SERVICE_PATH, SERVICE_IFACE, "OpenSession", &plain);
            let default_locked = call::<_, OwnedValue>(
                &conn,
                DEFAULT_ALIAS_PATH,
                PROPERTIES_IFACE,
                "Get",
                &(COLLECTION_IFACE, "Locked"),
            );
            let (session, default_locked) = future::zip(open_session, default_locked).await;
            let session = match session {
                Ok((_, path)) => path,
                Err(e) => return Err(no_service(&conn, e).await),
            };
            let (collection, locked) = match default_locked {
                Ok(locked) => (OwnedObjectPath::try_from(DEFAULT_ALIAS_PATH).expect("valid path"), locked),
                // A provider that does not serve the alias path: look the alias up.
                Err(_) => {
                    let path: OwnedObjectPath = call(&conn, SERVICE_PATH, SERVICE_IFACE, "ReadAlias", &("default",))
                        .await
                        .map_err(|e| format!("the Secret Service failed to name its default collection: {e}"))?;
                    if path.as_str() == "/" {
                        return Err("the Secret Service has no default collection (create one, e.g. a \"login\" keyring in Seahorse)".into());
                    }
                    let locked = call(&conn, path.as_str(), PROPERTIES_IFACE, "Get", &(COLLECTION_IFACE, "Locked"))
                        .await
                        .map_err(|e| {
                            format!("the Secret Service failed to say whether the default collection is locked: {e}")
                        })?;
                    (path, locked)
                }
            };
            if bool::try_from(&*locked).unwrap_or(true) {
                return Err(
                    "the default collection is locked (unlock it: log in to the desktop, or use Seahorse or KeePassXC)"
                        .into(),
                );
            }
            Ok(Backend { conn, session, collection })
        })
    }

    pub fn describe(&self) -> String {
        "OS keyring (Secret Service on the D-Bus session bus)".into()
    }

    fn fail(what: &str, e: CallError) -> String {
        format!("the Secret Service failed to {what}: {e}")
    }

    /// Paths of latchkey's items, for one key or all: (unlocked, locked).
    async fn search(&self, key: Option<&str>) -> Result<(Vec<OwnedObjectPath>, Vec<OwnedObjectPath>), String> {
        let (mut unlocked, mut locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) =
            call(&self.conn, SERVICE_PATH, SERVICE_IFACE, "SearchItems", &(attributes(key),))
                .await
                .map_err(|e| Self::fail("search its items", e))?;
        // Deterministic choice when a key has items in several collections.
        unlocked.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        locked.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok((unlocked, locked))
    }

    /// The secret values of `items`, by path.
    async fn secrets(&self, items: &[OwnedObjectPath]) -> Result<HashMap<OwnedObjectPath, Zeroizing<Vec<u8>>>, String> {
        if items.is_empty() {
            return Ok(HashMap::new());
        }
        let secrets: HashMap<OwnedObjectPath, (OwnedObjectPath, Vec<u8>, Vec<u8>, String)> =
            call(&self.conn, SERVICE_PATH, SERVICE_IFACE, "GetSecrets", &(items, &self.session))
                .await
                .map_err(|e| Self::fail("return secrets", e))?;
        Ok(secrets.into_iter().map(|(path, (_, _, value, _))| (path, Zeroizing::new(value))).collect())
    }

    /// Run a prompt the service asked for and wait for its answer: `None` if dismissed.
    async fn prompt(&self, prompt: &OwnedObjectPath, what: &str) -> Result<Option<OwnedValue>, String> {
        let fail = |e: CallError| format!("the Secret Service's prompt to {what} failed: {e}");
        let proxy = proxy(&self.conn, BUS_NAME, prompt.as_str(), PROMPT_IFACE).await.map_err(|e| fail(e.into()))?;
        let mut completed = proxy.receive_signal("Completed").await.map_err(|e| fail(e.into()))?;
        timed(CALL_TIMEOUT, async {
            Ok(proxy.call_with_flags::<_, _, ()>("Prompt", MethodFlags::NoAutoStart.into(), &("",)).await?)
        })
        .await
        .map_err(fail)?;
        let signal = timed(PROMPT_TIMEOUT, async {
            completed.next().await.ok_or_else(|| CallError::Bus(zbus::Error::Failure("the prompt went away".into())))
        })
        .await
        .map_err(fail)?;
        let (dismissed, result): (bool, OwnedValue) = signal.body().deserialize().map_err(|e| fail(e.into()))?;
        Ok(if dismissed { None } else { Some(result) })
    }

    /// Delete `items`; the ones whose deletion needs a prompt are prompted for one by one.
    async fn delete_items(&self, items: &[OwnedObjectPath]) -> Result<(), String> {
        let replies = join_all(
            items.iter().map(|item| call::<_, OwnedObjectPath>(&self.conn, item.as_str(), ITEM_IFACE, "Delete", &())),
        )
        .await;
        for reply in replies {
            let prompt = reply.map_err(|e| Self::fail("delete an item", e))?;
            if prompt.as_str() != "/" && self.prompt(&prompt, "delete an item").await?.is_none() {
                return Err("deleting the keyring item was refused at the keyring's prompt".into());
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        block_on(async {
            let (unlocked, locked) = self.search(Some(key)).await?;
            if unlocked.is_empty() {
                return if locked.is_empty() { Ok(None) } else { Err(locked_item(key)) };
            }
            let mut secrets = self.secrets(&unlocked).await?;
            Ok(unlocked.iter().find_map(|path| secrets.remove(path)))
        })
    }

    pub fn set(&self, key: &str, payload: &[u8]) -> Result<(), String> {
        block_on(async {
            let (unlocked, locked) = self.search(Some(key)).await?;
            if !locked.is_empty() {
                return Err(locked_item(key));
            }
            let attrs = attributes(Some(key));
            let properties = HashMap::from([
                ("org.freedesktop.Secret.Item.Label", Value::from(label(key))),
                ("org.freedesktop.Secret.Item.Attributes", Value::from(attrs)),
            ]);
            let secret = (&self.session, &[] as &[u8], payload, CONTENT_TYPE);
            // replace = true: an item with the same attributes in the collection is overwritten.
            let (mut item, prompt): (OwnedObjectPath, OwnedObjectPath) =
                call(&self.conn, self.collection.as_str(), COLLECTION_IFACE, "CreateItem", &(properties, secret, true))
                    .await
                    .map_err(|e| Self::fail("store the item", e))?;
            if prompt.as_str() != "/" {
                let created = self.prompt(&prompt, "store the item").await?;
                let created = created.ok_or("storing in the keyring was refused at the keyring's prompt")?;
                item = OwnedObjectPath::try_from(created).unwrap_or(item);
            }
            // Copies of the key in other collections would shadow the new item: remove them.
            if unlocked.iter().any(|p| *p != item) {
                let (now, _) = self.search(Some(key)).await?;
                let stale: Vec<OwnedObjectPath> = now.into_iter().filter(|p| *p != item).collect();
                self.delete_items(&stale).await?;
            }
            Ok(())
        })
    }

    pub fn delete(&self, key: &str) -> Result<bool, String> {
        block_on(async {
            let (unlocked, locked) = self.search(Some(key)).await?;
            if !locked.is_empty() {
                return Err(locked_item(key));
            }
            self.delete_items(&unlocked).await?;
            Ok(!unlocked.is_empty())
        })
    }

    pub fn list(&self) -> Result<super::Listed, String> {
        block_on(async {
            let (unlocked, locked) = self.search(None).await?;
            if !locked.is_empty() {
                return Err("some of latchkey's keyring items are in a locked collection; unlock it (log in to the desktop, or use Seahorse or KeePassXC) and try again".into());
            }
            let attributes = join_all(unlocked.iter().map(|item| {
                call::<_, OwnedValue>(&self.conn, item.as_str(), PROPERTIES_IFACE, "Get", &(ITEM_IFACE, "Attributes"))
            }));
            let (attributes, secrets) = future::zip(attributes, self.secrets(&unlocked)).await;
            let mut secrets = secrets?;
            let mut out = Vec::new();
            for (item, attrs) in unlocked.iter().zip(attributes) {
                let attrs = attrs.map_err(|e| Self::fail("return an item's attributes", e))?;
                let attrs = HashMap::<String, String>::try_from(attrs).unwrap_or_default();
                if let (Some(key), Some(payload)) = (attrs.get("username"), secrets.remove(item)) {
                    out.push((key.clone(), payload));
                }
            }
            Ok(out)
        })
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
        assert_eq!(all.get("xdg:schema"), Some(&SCHEMA));
        assert_eq!(all.get("service"), Some(&"latchkey"));
        assert!(!all.contains_key("username"));
        assert_eq!(attributes(Some("ghcr.io")).get("username"), Some(&"ghcr.io"));
    }
}

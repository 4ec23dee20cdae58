//! Linux: the freedesktop Secret Service (gnome-keyring, KeePassXC, KWallet), over zbus.
//!
//! Why zbus and not a crate over it: keyring-core's zbus-secret-service-keyring-store and the
//! `secret-service` crate always negotiate a session first and may D-Bus-activate a Secret
//! Service (which can block 25 s). `secret-service` 5.2 measured fast (a `get` in 0.22x
//! docker-credential-secretservice's time) but its first call is OpenSession, and that
//! aborted gnome-keyring under 4-way parallel load (see `first_exchange` for the race), and it cannot
//! turn auto-start off. Why not latchkey's earlier hand-written D-Bus client (a 930-line
//! codec and connection): it was faster, but the target (issue 10: a keyring `get` in at
//! most 0.4x docker-credential-secretservice's time) is met without it, and zbus is
//! maintained D-Bus code instead of our own. Measured on one gnome-keyring, interleaved
//! (release builds, 2 shared cores): 600 rounds, hand-written 0.19x, zbus blocking 0.26x,
//! zbus async pipelined 0.24x; 200 rounds, this backend 0.29x-0.30x (3.8 ms) against the
//! hand-written one's 0.21x (2.6-2.7 ms) in the same run. An earlier version of this backend,
//! with zbus's own executor thread, measured 0.50x-0.61x against the hand-written one's 0.19x
//! on a heavily loaded machine (load average 5-9; not separated from the thread's cost);
//! this one runs zbus's tasks on the calling thread instead (see [`run`]).
//! docs/benchmarks.md has the tables.
//!
//! What this does, over zbus's async API, run on the calling thread (`async_io::block_on`,
//! ticking zbus's executor meanwhile: no extra thread):
//! - the `plain` session algorithm, which the spec allows. On a local bus it hides nothing
//!   that matters: a process that could read our bus traffic could as well ask the service.
//! - few round trips: zbus's handshake and Hello, a harmless first call (why: see `first_exchange`),
//!   then the default collection's Locked property and OpenSession together; then
//!   SearchItems; then GetSecrets.
//! - NO_AUTO_START on every call: with no Secret Service running, the bus answers at once
//!   instead of starting one (and maybe waiting for it for 25 s).
//! - no unlock prompts: a locked collection is reported as such (`auto` then falls back).
//!   Prompts the service asks for on create or delete (KeePassXC can) are run and waited for.
//! - bounded waits: the connection and the first exchange within [`OPEN_TIMEOUT`], every
//!   later call within [`CALL_TIMEOUT`], a prompt within [`PROMPT_TIMEOUT`].
//!
//! Items carry the attributes `xdg:schema` = [`SCHEMA`], `service` = `latchkey` and `username`
//! = the registry key (the same `service`/`username` pair keyring-core's Secret Service store
//! uses, so `secret-tool lookup service latchkey username ghcr.io` shows the payload).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::{join, join_all};
use zbus::message::Type as MessageType;
use zbus::proxy::{Builder, CacheProperties, MethodFlags};
use zbus::zvariant::{DynamicDeserialize, DynamicType, ObjectPath, OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, MatchRule, MessageStream, Proxy};
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

/// The connection and the first exchange (handshake, Hello, the first call, Locked,
/// OpenSession) are quick for any working bus and service; a bus that does not answer them
/// in this time is broken.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// D-Bus's own default reply timeout. A provider may show a confirmation dialog inside a
/// call (KeePassXC does), so this is generous; it only bounds a hung provider.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// A prompt waits for a person.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(120);

const SERVICE_UNKNOWN: &[&str] =
    &["org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"];

/// What GetSecrets answers for one item: (session, parameters, value, content type).
type SecretStruct = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);
type Paths = Vec<OwnedObjectPath>;
/// Secret values by item path.
type Secrets = Vec<(OwnedObjectPath, Zeroizing<Vec<u8>>)>;

pub struct Backend {
    conn: Connection,
    /// The `plain` session; `None` if the OpenSession sent with the first exchange failed
    /// (it is then opened again by the first call that needs it).
    session: RefCell<Option<OwnedObjectPath>>,
    /// Where new items go: the default collection.
    collection: OwnedObjectPath,
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

fn timed_out() -> zbus::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time").into()
}

/// `future`, or a timeout error at `deadline`.
async fn until<T>(deadline: Instant, future: impl Future<Output = zbus::Result<T>>) -> zbus::Result<T> {
    let future = std::pin::pin!(future);
    match futures_util::future::select(future, async_io::Timer::at(deadline)).await {
        futures_util::future::Either::Left((result, _)) => result,
        futures_util::future::Either::Right(_) => Err(timed_out()),
    }
}

/// Wait for `future`, running zbus's tasks for `conn` meanwhile.
fn run<T>(conn: &Connection, future: impl Future<Output = T>) -> T {
    let executor = conn.executor().clone();
    let ticking = async move {
        loop {
            executor.tick().await;
        }
    };
    match async_io::block_on(futures_util::future::select(std::pin::pin!(future), std::pin::pin!(ticking))) {
        futures_util::future::Either::Left((output, _)) => output,
        futures_util::future::Either::Right((never, _)) => never,
    }
}

/// The D-Bus error name of a failed call, if the failure is one.
fn remote_name(error: &zbus::Error) -> Option<&str> {
    match error {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

/// Call `method` on `path`'s `iface` at `destination` with NO_AUTO_START and wait for the
/// answer until `deadline`.
async fn call_at<B, R>(
    conn: &Connection,
    destination: &str,
    path: &str,
    iface: &str,
    method: &str,
    body: &B,
    deadline: Instant,
) -> zbus::Result<R>
where
    B: serde::Serialize + DynamicType,
    R: for<'d> DynamicDeserialize<'d>,
{
    let call = async {
        let proxy: Proxy<'_> = Builder::new(conn)
            .destination(destination)?
            .path(path)?
            .interface(iface)?
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        proxy
            .call_with_flags(method, MethodFlags::NoAutoStart.into(), body)
            .await?
            .ok_or_else(|| zbus::Error::Failure("no reply".into()))
    };
    until(deadline, call).await
}

/// [`call_at`] to the Secret Service.
async fn call<B, R>(
    conn: &Connection,
    path: &str,
    iface: &str,
    method: &str,
    body: &B,
    deadline: Instant,
) -> zbus::Result<R>
where
    B: serde::Serialize + DynamicType,
    R: for<'d> DynamicDeserialize<'d>,
{
    call_at(conn, BUS_NAME, path, iface, method, body, deadline).await
}

fn after(timeout: Duration) -> Instant {
    Instant::now() + timeout
}

async fn open_session(conn: &Connection, deadline: Instant) -> zbus::Result<OwnedObjectPath> {
    let (_, path): (OwnedValue, OwnedObjectPath) =
        call(conn, SERVICE_PATH, SERVICE_IFACE, "OpenSession", &("plain", Value::from("")), deadline).await?;
    Ok(path)
}

/// A collection's Locked property.
async fn locked(conn: &Connection, collection: &str, deadline: Instant) -> zbus::Result<bool> {
    let value: OwnedValue =
        call(conn, collection, PROPERTIES_IFACE, "Get", &(COLLECTION_IFACE, "Locked"), deadline).await?;
    bool::try_from(value).map_err(Into::into)
}

/// Why the first call failed: no Secret Service on the bus, or one that failed.
async fn open_failure(conn: &Connection, error: zbus::Error) -> String {
    let Some(name) = remote_name(&error) else {
        return format!("the Secret Service on the session bus did not answer: {error}");
    };
    if !SERVICE_UNKNOWN.contains(&name) {
        return format!("the Secret Service failed to answer: {error}");
    }
    let mut message =
        "no Secret Service on the session bus (is gnome-keyring-daemon or KeePassXC running?)".to_string();
    // Only on this error path: ask the bus whether one could be started, to say how.
    let deadline = after(Duration::from_secs(1));
    let activatable: zbus::Result<Vec<String>> =
        call_at(conn, DBUS_NAME, DBUS_PATH, DBUS_NAME, "ListActivatableNames", &(), deadline).await;
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
        let deadline = after(OPEN_TIMEOUT);
        // No executor thread of zbus's own: its tasks (the socket reader) run on this thread
        // while we wait ([`run`]), which saves a thread and a hand-off per message.
        let connect = async { zbus::connection::Builder::address(&*address)?.internal_executor(false).build().await };
        let conn = async_io::block_on(until(deadline, connect))
            .map_err(|e| format!("cannot connect to the D-Bus session bus at {address}: {e}"))?;
        run(&conn.clone(), Self::first_exchange(conn, deadline))
    }

    /// The first call, the default collection's Locked and OpenSession.
    async fn first_exchange(conn: Connection, deadline: Instant) -> Result<Self, String> {
        // gnome-keyring registers a client in an idle callback after its first message
        // arrives, and a message handled before that can abort the whole daemon (an
        // OpenSession: "gkd_secret_service_publish_dispatch: assertion 'client' failed"; a
        // collection property: "invoke_get_property_in_idle_cb: assertion failed"). Upstream
        // reports put it at about one abort per 4,000 short-lived clients; it happened here
        // under load with either call first (and the `secret-service` crate, whose first call
        // is OpenSession, aborted it under 4-way parallel load). So the first call is one
        // that never needs the client record (the Service's Collections property, served
        // from a cached value, as libsecret's first call is); everything else waits for its
        // answer.
        let probe: zbus::Result<OwnedValue> =
            call(&conn, SERVICE_PATH, PROPERTIES_IFACE, "Get", &(SERVICE_IFACE, "Collections"), deadline).await;
        match probe {
            Err(e) if remote_name(&e).is_none_or(|n| SERVICE_UNKNOWN.contains(&n)) => {
                return Err(open_failure(&conn, e).await);
            }
            // Any answer will do: its purpose is the ordering.
            _ => {}
        }
        // The session goes out with the Locked question; if it fails, it is asked for again
        // when it is needed.
        let (first, session) = join(locked(&conn, DEFAULT_ALIAS_PATH, deadline), open_session(&conn, deadline)).await;
        let (collection, locked) = match first {
            Ok(locked) => (OwnedObjectPath::try_from(DEFAULT_ALIAS_PATH).expect("a valid path"), locked),
            // A provider that does not serve the alias path, or gnome-keyring answering
            // UnknownMethod for a client it has not registered yet (the race above): look
            // the alias up.
            Err(_) => {
                let path: OwnedObjectPath =
                    call(&conn, SERVICE_PATH, SERVICE_IFACE, "ReadAlias", &("default",), deadline)
                        .await
                        .map_err(|e| format!("the Secret Service failed to name its default collection: {e}"))?;
                if path.as_str() == "/" {
                    return Err("the Secret Service has no default collection (create one, e.g. a \"login\" keyring in Seahorse)".into());
                }
                let locked = self::locked(&conn, path.as_str(), deadline).await.map_err(|e| {
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
        Ok(Backend { conn, session: RefCell::new(session.ok()), collection })
    }

    pub fn describe(&self) -> String {
        "OS keyring (Secret Service on the D-Bus session bus)".into()
    }

    fn fail(what: &str) -> impl Fn(zbus::Error) -> String + '_ {
        move |e| format!("the Secret Service failed to {what}: {e}")
    }

    async fn call<B, R>(&self, path: &str, iface: &str, method: &str, body: &B) -> zbus::Result<R>
    where
        B: serde::Serialize + DynamicType,
        R: for<'d> DynamicDeserialize<'d>,
    {
        call(&self.conn, path, iface, method, body, after(CALL_TIMEOUT)).await
    }

    /// The session's path, opened again if the first exchange's OpenSession failed.
    async fn session(&self) -> Result<OwnedObjectPath, String> {
        if let Some(path) = self.session.borrow().clone() {
            return Ok(path);
        }
        let path = open_session(&self.conn, after(CALL_TIMEOUT)).await.map_err(Self::fail("open a session"))?;
        *self.session.borrow_mut() = Some(path.clone());
        Ok(path)
    }

    /// Paths of latchkey's items, for one key or all: (unlocked, locked).
    async fn search(&self, key: Option<&str>) -> Result<(Paths, Paths), String> {
        let (mut unlocked, mut locked): (Paths, Paths) = self
            .call(SERVICE_PATH, SERVICE_IFACE, "SearchItems", &(attributes(key),))
            .await
            .map_err(Self::fail("search its items"))?;
        // A deterministic choice when a key has items in several collections.
        unlocked.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        locked.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok((unlocked, locked))
    }

    /// The secret values of `items`, by item path.
    async fn secrets(&self, session: &OwnedObjectPath, items: &[OwnedObjectPath]) -> Result<Secrets, String> {
        let items: Vec<ObjectPath<'_>> = items.iter().map(|p| p.as_ref()).collect();
        let answer: HashMap<OwnedObjectPath, SecretStruct> = self
            .call(SERVICE_PATH, SERVICE_IFACE, "GetSecrets", &(items, session.as_ref()))
            .await
            .map_err(Self::fail("return secrets"))?;
        Ok(answer.into_iter().map(|(path, (_, _, value, _))| (path, Zeroizing::new(value))).collect())
    }

    /// Run a prompt the service asked for and wait for its answer: `None` if dismissed, else
    /// the result's object path if it is one.
    async fn prompt(&self, prompt: &OwnedObjectPath, what: &str) -> Result<Option<Option<OwnedObjectPath>>, String> {
        let fail = |e: zbus::Error| format!("the Secret Service's prompt to {what} failed: {e}");
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .interface(PROMPT_IFACE)
            .and_then(|b| b.member("Completed"))
            .and_then(|b| b.path(prompt.as_ref()))
            .map_err(fail)?
            .build();
        let mut completed =
            until(after(CALL_TIMEOUT), MessageStream::for_match_rule(rule, &self.conn, None)).await.map_err(fail)?;
        self.call::<_, ()>(prompt.as_str(), PROMPT_IFACE, "Prompt", &("",)).await.map_err(fail)?;
        let signal = until(after(PROMPT_TIMEOUT), async {
            completed.next().await.unwrap_or_else(|| Err(zbus::Error::Failure("the connection closed".into())))
        })
        .await
        .map_err(fail)?;
        let (dismissed, result): (bool, OwnedValue) = signal.body().deserialize().map_err(fail)?;
        if dismissed {
            return Ok(None);
        }
        Ok(Some(OwnedObjectPath::try_from(result).ok()))
    }

    /// Delete `items` (the calls go out together); prompts are run one by one.
    async fn delete_items(&self, items: &[OwnedObjectPath]) -> Result<(), String> {
        let answers = join_all(
            items.iter().map(|item| self.call::<_, OwnedObjectPath>(item.as_str(), ITEM_IFACE, "Delete", &())),
        )
        .await;
        let mut prompts = Vec::new();
        for answer in answers {
            let prompt = answer.map_err(Self::fail("delete an item"))?;
            if prompt.as_str() != "/" {
                prompts.push(prompt);
            }
        }
        for prompt in prompts {
            if self.prompt(&prompt, "delete an item").await?.is_none() {
                return Err("deleting the keyring item was refused at the keyring's prompt".into());
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        run(&self.conn, async {
            let (unlocked, locked) = self.search(Some(key)).await?;
            if unlocked.is_empty() {
                return if locked.is_empty() { Ok(None) } else { Err(locked_item(key)) };
            }
            let session = self.session().await?;
            let mut secrets = self.secrets(&session, &unlocked).await?;
            // The first item, in path order, that has a secret.
            Ok(unlocked.iter().find_map(|p| secrets.iter().position(|(q, _)| q == p)).map(|i| secrets.swap_remove(i).1))
        })
    }

    pub fn set(&self, key: &str, payload: &[u8]) -> Result<(), String> {
        run(&self.conn, async {
            let (unlocked, locked) = self.search(Some(key)).await?;
            if !locked.is_empty() {
                return Err(locked_item(key));
            }
            let session = self.session().await?;
            let properties = HashMap::from([
                ("org.freedesktop.Secret.Item.Label", Value::from(label(key))),
                ("org.freedesktop.Secret.Item.Attributes", Value::from(attributes(Some(key)))),
            ]);
            let secret = (session.as_ref(), &[] as &[u8], payload, CONTENT_TYPE);
            // replace: an item with the same attributes in the collection is overwritten.
            let (mut item, prompt): (OwnedObjectPath, OwnedObjectPath) = self
                .call(self.collection.as_str(), COLLECTION_IFACE, "CreateItem", &(properties, secret, true))
                .await
                .map_err(Self::fail("store the item"))?;
            if prompt.as_str() != "/" {
                let created = self.prompt(&prompt, "store the item").await?;
                let created = created.ok_or("storing in the keyring was refused at the keyring's prompt")?;
                if let Some(path) = created {
                    item = path;
                }
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
        run(&self.conn, async {
            let (unlocked, locked) = self.search(Some(key)).await?;
            if !locked.is_empty() {
                return Err(locked_item(key));
            }
            self.delete_items(&unlocked).await?;
            Ok(!unlocked.is_empty())
        })
    }

    pub fn list(&self) -> Result<super::Listed, String> {
        run(&self.conn, async {
            let (unlocked, locked) = self.search(None).await?;
            if !locked.is_empty() {
                return Err("some of latchkey's keyring items are in a locked collection; unlock it (log in to the desktop, or use Seahorse or KeePassXC) and try again".into());
            }
            if unlocked.is_empty() {
                return Ok(Vec::new());
            }
            let session = self.session().await?;
            // Every item's attributes and all the secrets, in flight together.
            let attributes = join_all(unlocked.iter().map(|item| {
                self.call::<_, OwnedValue>(item.as_str(), PROPERTIES_IFACE, "Get", &(ITEM_IFACE, "Attributes"))
            }));
            let (attributes, secrets) = join(attributes, self.secrets(&session, &unlocked)).await;
            let mut secrets = secrets?;
            let mut out = Vec::new();
            for (item, attrs) in unlocked.iter().zip(attributes) {
                let attrs = attrs
                    .and_then(|v| HashMap::<String, String>::try_from(v).map_err(Into::into))
                    .map_err(Self::fail("return an item's attributes"))?;
                let Some(key) = attrs.get("username") else { continue };
                if let Some(i) = secrets.iter().position(|(p, _)| p == item) {
                    out.push((key.clone(), secrets.swap_remove(i).1));
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

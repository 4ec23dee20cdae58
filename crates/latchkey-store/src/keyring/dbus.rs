//! A minimal, blocking, single-threaded D-Bus client: just what the Secret Service needs.
//!
//! Why not zbus: a `get` in a fresh process is dominated by connection set-up and round trips.
//! zbus authenticates in two round trips, then says Hello in a third, and runs its socket
//! reader on other threads (an executor, the async-io reactor, a thread to connect), so every
//! reply is a cross-thread hand-off, slow on a loaded machine. Here the authentication, Hello
//! and the first calls go out in one write (as sd-bus does), and replies are read on the
//! calling thread.
//!
//! The wire format (D-Bus specification, "Message Protocol"): a 12-byte fixed header, header
//! fields `a(yv)`, padding to 8, then the body. Values are aligned to their natural size from
//! the start of the message (the body starts 8-aligned, so offsets from the body start align
//! the same). Both byte orders are read; messages are written little-endian.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use zeroize::Zeroizing;

pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;
const NO_AUTO_START: u8 = 0x2;
/// The spec allows 128 MiB; nothing the Secret Service sends us comes near this.
const MAX_MESSAGE: usize = 64 << 20;
const MAX_DEPTH: usize = 64;

#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    /// The peer broke the protocol (or we could not parse what it sent).
    Protocol(String),
    /// An error reply: its D-Bus error name and message.
    Remote {
        name: String,
        message: String,
    },
}

impl Error {
    pub fn remote_name(&self) -> Option<&str> {
        match self {
            Error::Remote { name, .. } => Some(name),
            _ => None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                f.write_str("no answer in time")
            }
            Error::Io(e) => write!(f, "{e}"),
            Error::Protocol(why) => write!(f, "D-Bus protocol error: {why}"),
            Error::Remote { name, message } if message.is_empty() => f.write_str(name),
            Error::Remote { name, message } => write!(f, "{name}: {message}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn protocol(why: impl Into<String>) -> Error {
    Error::Protocol(why.into())
}

// ---------------------------------------------------------------------------------------------
// Marshalling

/// Writes values little-endian, aligned from the start of the buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: Zeroizing<Vec<u8>>,
}

impl Writer {
    pub fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    pub fn byte(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.u32(v as u32);
    }

    /// A string or object path (`s`, `o`). Callers pass no NUL bytes (registry keys and the
    /// fixed names used here cannot contain one).
    pub fn str(&mut self, s: &str) {
        debug_assert!(!s.contains('\0'));
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// A signature (`g`).
    pub fn sig(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// `ay`.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }

    /// An array whose elements have alignment `elem_align`, written by `f`.
    pub fn array(&mut self, elem_align: usize, f: impl FnOnce(&mut Self)) {
        self.u32(0);
        let len_at = self.buf.len() - 4;
        self.pad(elem_align);
        let start = self.buf.len();
        f(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// The start of a struct or dict entry.
    pub fn open_struct(&mut self) {
        self.pad(8);
    }

    /// A variant holding one value of signature `sig`, written by `f`.
    pub fn variant(&mut self, sig: &str, f: impl FnOnce(&mut Self)) {
        self.sig(sig);
        f(self);
    }

    /// `a{ss}`.
    pub fn string_dict<'a>(&mut self, entries: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.array(8, |w| {
            for (k, v) in entries {
                w.open_struct();
                w.str(k);
                w.str(v);
            }
        });
    }
}

/// Reads values of one byte order, aligned from the start of `data`.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    big: bool,
}

fn alignment(code: u8) -> usize {
    match code {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b'h' | b's' | b'o' | b'a' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1, // y g v
    }
}

/// The end (exclusive) of the single complete type starting at `sig[i]`.
fn type_end(sig: &[u8], i: usize) -> Result<usize> {
    let bad = || protocol("malformed signature");
    match sig.get(i).ok_or_else(bad)? {
        b'a' => type_end(sig, i + 1),
        open @ (b'(' | b'{') => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut j = i + 1;
            while *sig.get(j).ok_or_else(bad)? != close {
                j = type_end(sig, j)?;
            }
            Ok(j + 1)
        }
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b'h' | b's' | b'o' | b'g' | b'v' => Ok(i + 1),
        _ => Err(bad()),
    }
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], big: bool) -> Self {
        Reader { data, pos: 0, big }
    }

    fn align(&mut self, align: usize) -> Result<()> {
        let pos = self.pos.next_multiple_of(align);
        if pos > self.data.len() {
            return Err(protocol("truncated message"));
        }
        self.pos = pos;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| protocol("truncated message"))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    #[cfg(test)]
    pub fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }

    pub fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32> {
        self.align(4)?;
        let b: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        Ok(if self.big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    pub fn bool(&mut self) -> Result<bool> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(protocol("invalid boolean")),
        }
    }

    /// `s` or `o`.
    pub fn str(&mut self) -> Result<&'a str> {
        let len = self.u32()? as usize;
        let s = self.take(len)?;
        if self.byte()? != 0 {
            return Err(protocol("string without its terminating NUL"));
        }
        std::str::from_utf8(s).map_err(|_| protocol("string is not UTF-8"))
    }

    /// `g`.
    pub fn sig(&mut self) -> Result<&'a str> {
        let len = self.byte()? as usize;
        let s = self.take(len)?;
        if self.byte()? != 0 {
            return Err(protocol("signature without its terminating NUL"));
        }
        std::str::from_utf8(s).map_err(|_| protocol("signature is not ASCII"))
    }

    /// `ay`.
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// An array whose elements have alignment `elem_align`: `f` reads one element per call.
    pub fn array(&mut self, elem_align: usize, mut f: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        let len = self.u32()? as usize;
        self.align(elem_align)?;
        let end =
            self.pos.checked_add(len).filter(|&e| e <= self.data.len()).ok_or_else(|| protocol("truncated array"))?;
        while self.pos < end {
            f(self)?;
        }
        if self.pos != end {
            return Err(protocol("array element overruns the array"));
        }
        Ok(())
    }

    pub fn open_struct(&mut self) -> Result<()> {
        self.align(8)
    }

    /// A variant's signature; the caller then reads (or [`skip`](Self::skip)s) its value.
    pub fn variant_sig(&mut self) -> Result<&'a str> {
        self.sig()
    }

    /// Skip one value of each type in `sig`.
    pub fn skip(&mut self, sig: &str) -> Result<()> {
        self.skip_depth(sig.as_bytes(), 0)
    }

    fn skip_depth(&mut self, sig: &[u8], depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(protocol("values nested too deeply"));
        }
        let mut i = 0;
        while i < sig.len() {
            let end = type_end(sig, i)?;
            self.skip_one(&sig[i..end], depth)?;
            i = end;
        }
        Ok(())
    }

    fn skip_one(&mut self, t: &[u8], depth: usize) -> Result<()> {
        match t[0] {
            b'y' => drop(self.take(1)?),
            b'n' | b'q' => {
                self.align(2)?;
                self.take(2)?;
            }
            b'b' | b'i' | b'u' | b'h' => {
                self.align(4)?;
                self.take(4)?;
            }
            b'x' | b't' | b'd' => {
                self.align(8)?;
                self.take(8)?;
            }
            b's' | b'o' => drop(self.str()?),
            b'g' => drop(self.sig()?),
            b'v' => {
                let inner = self.sig()?;
                self.skip_depth(inner.as_bytes(), depth + 1)?;
            }
            b'a' => {
                let len = self.u32()? as usize;
                self.align(alignment(t[1]))?;
                self.take(len)?;
            }
            b'(' | b'{' => {
                self.align(8)?;
                self.skip_depth(&t[1..t.len() - 1], depth + 1)?;
            }
            _ => return Err(protocol("malformed signature")),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

pub struct Message {
    pub kind: u8,
    #[cfg_attr(not(test), allow(dead_code))]
    pub serial: u32,
    pub reply_serial: Option<u32>,
    pub error_name: Option<String>,
    pub signature: String,
    pub path: Option<String>,
    pub member: Option<String>,
    big: bool,
    body: Zeroizing<Vec<u8>>,
}

impl Message {
    /// The body, checked to have signature `expected`.
    pub fn body(&self, expected: &str) -> Result<Reader<'_>> {
        if self.signature != expected {
            return Err(protocol(format!("expected a reply of type {expected:?}, got {:?}", self.signature)));
        }
        Ok(Reader::new(&self.body, self.big))
    }

    fn into_error(self) -> Error {
        let name = self.error_name.clone().unwrap_or_else(|| "(unnamed error)".into());
        let message = if self.signature.starts_with('s') {
            Reader::new(&self.body, self.big).str().map(str::to_owned).unwrap_or_default()
        } else {
            String::new()
        };
        Error::Remote { name, message }
    }
}

/// The whole length of the message at the start of `data`, once its fixed header is there.
fn message_len(data: &[u8]) -> Result<Option<usize>> {
    if data.len() < 16 {
        return Ok(None);
    }
    let big = match data[0] {
        b'l' => false,
        b'B' => true,
        _ => return Err(protocol("unknown byte order")),
    };
    let mut r = Reader::new(&data[..16], big);
    r.take(4)?;
    let body_len = r.u32()? as usize;
    r.u32()?;
    let fields_len = r.u32()? as usize;
    let total = (16 + fields_len as u64).next_multiple_of(8) + body_len as u64;
    if total > MAX_MESSAGE as u64 {
        return Err(protocol(format!("a {total}-byte message is too large")));
    }
    Ok(Some(total as usize))
}

fn parse_message(data: &[u8]) -> Result<Message> {
    let big = data[0] == b'B';
    let mut r = Reader::new(data, big);
    let _endian = r.byte()?;
    let kind = r.byte()?;
    let _flags = r.byte()?;
    if r.byte()? != 1 {
        return Err(protocol("unknown protocol version"));
    }
    let body_len = r.u32()? as usize;
    let serial = r.u32()?;
    let mut m = Message {
        kind,
        serial,
        reply_serial: None,
        error_name: None,
        signature: String::new(),
        path: None,
        member: None,
        big,
        body: Zeroizing::new(Vec::new()),
    };
    r.array(8, |r| {
        r.open_struct()?;
        let code = r.byte()?;
        let sig = r.variant_sig()?;
        match (code, sig) {
            (1, "o") => m.path = Some(r.str()?.to_owned()),
            (3, "s") => m.member = Some(r.str()?.to_owned()),
            (4, "s") => m.error_name = Some(r.str()?.to_owned()),
            (5, "u") => m.reply_serial = Some(r.u32()?),
            (8, "g") => m.signature = r.sig()?.to_owned(),
            _ => r.skip(sig)?,
        }
        Ok(())
    })?;
    r.align(8)?;
    let body = r.take(body_len)?;
    m.body.extend_from_slice(body);
    Ok(m)
}

/// A complete method call message, little-endian.
pub fn method_call(serial: u32, dest: &str, path: &str, iface: &str, member: &str, sig: &str, body: &[u8]) -> Writer {
    let mut w = Writer::default();
    w.byte(b'l');
    w.byte(METHOD_CALL);
    w.byte(NO_AUTO_START);
    w.byte(1);
    w.u32(body.len() as u32);
    w.u32(serial);
    w.array(8, |w| {
        let mut field = |code: u8, t: &str, v: &str| {
            w.open_struct();
            w.byte(code);
            w.variant(t, |w| if t == "g" { w.sig(v) } else { w.str(v) });
        };
        field(1, "o", path);
        field(2, "s", iface);
        field(3, "s", member);
        field(6, "s", dest);
        if !sig.is_empty() {
            field(8, "g", sig);
        }
    });
    w.pad(8);
    w.buf.extend_from_slice(body);
    w
}

// ---------------------------------------------------------------------------------------------
// The connection

pub struct Connection {
    stream: UnixStream,
    /// Bytes to send; flushed before waiting for anything.
    out: Zeroizing<Vec<u8>>,
    /// Bytes read and not yet consumed.
    input: Zeroizing<Vec<u8>>,
    authenticated: bool,
    next_serial: u32,
    /// Messages read while waiting for another one.
    stash: VecDeque<Message>,
}

/// Connect to the first usable address of a D-Bus address list (`unix:path=` or
/// `unix:abstract=`), authenticate with EXTERNAL and say Hello, all in one write that
/// goes out with the first call.
pub fn connect(address: &str, timeout: Duration) -> std::result::Result<Connection, String> {
    let mut last_error = String::from("no usable address");
    for entry in address.split(';').filter(|e| !e.is_empty()) {
        match connect_one(entry) {
            Ok(stream) => return Connection::new(stream, timeout).map_err(|e| e.to_string()),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

fn unescape(value: &str) -> std::result::Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3).ok_or("a bad %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "a bad %-escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn connect_one(entry: &str) -> std::result::Result<UnixStream, String> {
    use std::os::unix::ffi::OsStrExt;
    let (transport, params) = entry.split_once(':').ok_or_else(|| format!("{entry:?} is not a D-Bus address"))?;
    let mut path = None;
    let mut abstract_name = None;
    for kv in params.split(',') {
        if let Some((k, v)) = kv.split_once('=') {
            let v = unescape(v).map_err(|e| format!("{entry:?} has {e}"))?;
            match k {
                "path" => path = Some(v),
                "abstract" => abstract_name = Some(v),
                _ => {}
            }
        }
    }
    if transport != "unix" {
        return Err(format!("D-Bus transport {transport:?} is not supported (only unix sockets)"));
    }
    let connected = match (path, abstract_name) {
        (Some(p), _) => UnixStream::connect(std::ffi::OsStr::from_bytes(&p)),
        (None, Some(name)) => connect_abstract(&name),
        _ => return Err(format!("{entry:?} names no socket (path= or abstract=)")),
    };
    connected.map_err(|e| format!("{e}"))
}

fn connect_abstract(name: &[u8]) -> io::Result<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    UnixStream::connect_addr(&std::os::unix::net::SocketAddr::from_abstract_name(name)?)
}

impl Connection {
    /// Start on a connected socket: queue the authentication and Hello.
    fn new(stream: UnixStream, timeout: Duration) -> io::Result<Connection> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut out = Zeroizing::new(Vec::with_capacity(1024));
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        out.extend_from_slice(b"\0AUTH EXTERNAL ");
        for b in uid.to_string().bytes() {
            out.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        out.extend_from_slice(b"\r\nBEGIN\r\n");
        let mut conn = Connection {
            stream,
            out,
            input: Zeroizing::new(Vec::with_capacity(4096)),
            authenticated: false,
            next_serial: 1,
            stash: VecDeque::new(),
        };
        conn.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "", &[]);
        Ok(conn)
    }

    /// Queue a method call (sent with the next wait); returns its serial.
    pub fn call(&mut self, dest: &str, path: &str, iface: &str, member: &str, sig: &str, body: &[u8]) -> u32 {
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1).max(1);
        let msg = method_call(serial, dest, path, iface, member, sig, body);
        self.out.extend_from_slice(&msg.buf);
        serial
    }

    fn flush(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    fn fill(&mut self) -> Result<()> {
        let mut chunk = Zeroizing::new([0u8; 8192]);
        let n = self.stream.read(&mut chunk[..])?;
        if n == 0 {
            return Err(Error::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "the bus closed the connection")));
        }
        self.input.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn read_auth(&mut self) -> Result<()> {
        loop {
            if let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.input[..end]).into_owned();
                self.input.drain(..end + 2);
                if line.starts_with("OK ") {
                    self.authenticated = true;
                    return Ok(());
                }
                return Err(protocol(format!("the bus refused authentication ({line})")));
            }
            if self.input.len() > 4096 {
                return Err(protocol("no answer to authentication"));
            }
            self.fill()?;
        }
    }

    fn read_message(&mut self) -> Result<Message> {
        if !self.authenticated {
            self.read_auth()?;
        }
        loop {
            if let Some(total) = message_len(&self.input)?
                && self.input.len() >= total
            {
                let msg = parse_message(&self.input[..total]);
                self.input.drain(..total);
                return msg;
            }
            self.fill()?;
        }
    }

    /// Whether the bus accepted us (so a later failure is the peer's, not the bus's).
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// How long any later read or write may wait.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.set_write_timeout(Some(timeout))?;
        Ok(())
    }

    /// Send what is queued and wait for the reply to `serial`; an error reply is `Err`.
    pub fn reply(&mut self, serial: u32) -> Result<Message> {
        self.flush()?;
        let found = self.stash.iter().position(|m| m.reply_serial == Some(serial) && m.kind != SIGNAL);
        let msg = match found {
            Some(i) => self.stash.remove(i).expect("index from position"),
            None => loop {
                let m = self.read_message()?;
                if m.reply_serial == Some(serial) && matches!(m.kind, METHOD_RETURN | ERROR) {
                    break m;
                }
                self.keep(m);
            },
        };
        if msg.kind == ERROR { Err(msg.into_error()) } else { Ok(msg) }
    }

    /// Wait for a signal `member` from object `path` (subscribe with AddMatch first).
    pub fn signal(&mut self, path: &str, member: &str, timeout: Duration) -> Result<Message> {
        self.flush()?;
        let matches =
            |m: &Message| m.kind == SIGNAL && m.path.as_deref() == Some(path) && m.member.as_deref() == Some(member);
        if let Some(i) = self.stash.iter().position(matches) {
            return Ok(self.stash.remove(i).expect("index from position"));
        }
        let before = self.stream.read_timeout()?;
        self.stream.set_read_timeout(Some(timeout))?;
        let result = loop {
            match self.read_message() {
                Ok(m) if matches(&m) => break Ok(m),
                Ok(m) => self.keep(m),
                Err(e) => break Err(e),
            }
        };
        self.stream.set_read_timeout(before)?;
        result
    }

    /// Keep a message read out of turn: replies (someone may wait for them) and signals;
    /// calls to us are not expected and are dropped, as is the stash beyond a bound.
    fn keep(&mut self, m: Message) {
        if m.kind != METHOD_CALL {
            if self.stash.len() >= 256 {
                self.stash.pop_front();
            }
            self.stash.push_back(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reparse(w: &Writer) -> Message {
        let total = message_len(&w.buf).unwrap().unwrap();
        assert_eq!(total, w.buf.len());
        parse_message(&w.buf).unwrap()
    }

    #[test]
    fn method_calls_parse_back() {
        let mut body = Writer::default();
        body.string_dict([("service", "latchkey"), ("username", "ghcr.io")]);
        let msg = method_call(
            7,
            "org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service",
            "SearchItems",
            "a{ss}",
            &body.buf,
        );
        let m = reparse(&msg);
        assert_eq!((m.kind, m.serial), (METHOD_CALL, 7));
        assert_eq!(m.path.as_deref(), Some("/org/freedesktop/secrets"));
        assert_eq!(m.member.as_deref(), Some("SearchItems"));
        let mut r = m.body("a{ss}").unwrap();
        let mut seen = Vec::new();
        r.array(8, |r| {
            r.open_struct()?;
            seen.push((r.str()?.to_owned(), r.str()?.to_owned()));
            Ok(())
        })
        .unwrap();
        assert!(r.at_end());
        assert_eq!(seen, [("service".into(), "latchkey".into()), ("username".into(), "ghcr.io".into())]);
        assert!(m.body("s").is_err());
    }

    #[test]
    fn nested_values_skip_and_read() {
        // (a{sv}(oayays)b) as CreateItem sends it, then read back with skip and typed reads.
        let mut w = Writer::default();
        w.array(8, |w| {
            w.open_struct();
            w.str("org.freedesktop.Secret.Item.Label");
            w.variant("s", |w| w.str("label"));
            w.open_struct();
            w.str("org.freedesktop.Secret.Item.Attributes");
            w.variant("a{ss}", |w| w.string_dict([("a", "b")]));
        });
        w.open_struct();
        w.str("/session/1");
        w.bytes(&[]);
        w.bytes(b"{\"x\":1}");
        w.str("application/json");
        w.bool(true);
        w.byte(9);
        let mut r = Reader::new(&w.buf, false);
        r.skip("a{sv}").unwrap();
        r.open_struct().unwrap();
        assert_eq!(r.str().unwrap(), "/session/1");
        assert_eq!(r.bytes().unwrap(), b"");
        assert_eq!(r.bytes().unwrap(), b"{\"x\":1}");
        assert_eq!(r.str().unwrap(), "application/json");
        assert!(r.bool().unwrap());
        assert_eq!(r.byte().unwrap(), 9);
        assert!(r.at_end());

        let mut r = Reader::new(&w.buf, false);
        r.skip("a{sv}(oayays)by").unwrap();
        assert!(r.at_end());
    }

    #[test]
    fn big_endian_messages_are_read() {
        // A method return, big-endian, serial 2, reply to 5, signature "u", body 42.
        let mut m = vec![b'B', METHOD_RETURN, 0, 1, 0, 0, 0, 4, 0, 0, 0, 2];
        let fields: Vec<u8> = vec![5, 1, b'u', 0, 0, 0, 0, 5, 8, 1, b'g', 0, 1, b'u', 0];
        m.extend_from_slice(&(fields.len() as u32).to_be_bytes());
        m.extend_from_slice(&fields);
        while m.len() % 8 != 0 {
            m.push(0);
        }
        m.extend_from_slice(&42u32.to_be_bytes());
        assert_eq!(message_len(&m).unwrap(), Some(m.len()));
        let msg = parse_message(&m).unwrap();
        assert_eq!((msg.kind, msg.serial, msg.reply_serial), (METHOD_RETURN, 2, Some(5)));
        assert_eq!(msg.body("u").unwrap().u32().unwrap(), 42);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for sig in ["a", "(", "(s", "{s", "z", "a{"] {
            assert!(Reader::new(&[0; 64], false).skip(sig).is_err(), "{sig}");
        }
        let mut r = Reader::new(&[255, 255, 255, 255, 0], false);
        assert!(r.str().is_err());
        let mut r = Reader::new(&[200, 0, 0, 0, 1, 2], false);
        assert!(r.array(1, |r| r.byte().map(drop)).is_err());
        assert!(message_len(b"x234567890123456").is_err());
        let mut huge = b"l\x02\x00\x01".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 8]);
        assert!(message_len(&huge).is_err());
    }

    /// A message as a bus would send it: string header fields, an optional reply serial.
    fn message(
        kind: u8,
        serial: u32,
        fields: &[(u8, &str, &str)],
        reply_to: Option<u32>,
        sig: &str,
        body: &[u8],
    ) -> Vec<u8> {
        let mut w = Writer::default();
        w.byte(b'l');
        w.byte(kind);
        w.byte(0);
        w.byte(1);
        w.u32(body.len() as u32);
        w.u32(serial);
        w.array(8, |w| {
            for &(code, t, v) in fields {
                w.open_struct();
                w.byte(code);
                w.variant(t, |w| w.str(v));
            }
            if let Some(r) = reply_to {
                w.open_struct();
                w.byte(5);
                w.variant("u", |w| w.u32(r));
            }
            if !sig.is_empty() {
                w.open_struct();
                w.byte(8);
                w.variant("g", |w| w.sig(sig));
            }
        });
        w.pad(8);
        w.buf.extend_from_slice(body);
        w.buf.to_vec()
    }

    #[test]
    fn pipelined_calls_get_their_own_replies_in_any_order() {
        let (client, mut server) = UnixStream::pair().unwrap();
        let fake_bus = std::thread::spawn(move || {
            let mut input = Vec::new();
            let mut chunk = [0u8; 4096];
            // Authentication, BEGIN and three calls (Hello and ours) arrive before any answer.
            let mut calls = Vec::new();
            while calls.len() < 3 {
                let n = server.read(&mut chunk).unwrap();
                assert!(n > 0, "client hung up");
                input.extend_from_slice(&chunk[..n]);
                let Some(begin) = input.windows(7).position(|w| w == b"BEGIN\r\n") else { continue };
                assert!(input.starts_with(b"\0AUTH EXTERNAL "), "{:?}", String::from_utf8_lossy(&input));
                let mut rest = &input[begin + 7..];
                calls.clear();
                while let Ok(Some(len)) = message_len(rest) {
                    if rest.len() < len {
                        break;
                    }
                    calls.push(parse_message(&rest[..len]).unwrap());
                    rest = &rest[len..];
                }
            }
            let members: Vec<_> = calls.iter().map(|m| (m.serial, m.member.clone().unwrap())).collect();
            assert_eq!(members, [(1, "Hello".into()), (2, "First".into()), (3, "Second".into())]);
            let mut out = b"OK 0123456789abcdef0123456789abcdef\r\n".to_vec();
            let mut signal_body = Writer::default();
            signal_body.bool(false);
            signal_body.variant("o", |w| w.str("/item/1"));
            let mut error_body = Writer::default();
            error_body.str("it went wrong");
            let mut hello_body = Writer::default();
            hello_body.str(":1.7");
            out.extend(message(
                SIGNAL,
                10,
                &[(1, "o", "/prompt/1"), (2, "s", "org.freedesktop.Secret.Prompt"), (3, "s", "Completed")],
                None,
                "bv",
                &signal_body.buf,
            ));
            out.extend(message(METHOD_RETURN, 11, &[], Some(3), "u", &33u32.to_le_bytes()));
            out.extend(message(ERROR, 12, &[(4, "s", "org.example.Error.Broken")], Some(2), "s", &error_body.buf));
            out.extend(message(METHOD_RETURN, 13, &[], Some(1), "s", &hello_body.buf));
            server.write_all(&out).unwrap();
        });

        let mut conn = Connection::new(client, Duration::from_secs(10)).unwrap();
        let first = conn.call("org.example", "/", "org.example.Iface", "First", "", &[]);
        let second = conn.call("org.example", "/", "org.example.Iface", "Second", "", &[]);
        assert_eq!((first, second), (2, 3));
        let reply = conn.reply(second).unwrap();
        assert_eq!(reply.body("u").unwrap().u32().unwrap(), 33);
        assert!(conn.authenticated());
        match conn.reply(first) {
            Err(Error::Remote { name, message }) => {
                assert_eq!(name, "org.example.Error.Broken");
                assert_eq!(message, "it went wrong");
            }
            other => panic!("expected the error reply, got {:?}", other.map(|m| m.signature)),
        }
        let signal = conn.signal("/prompt/1", "Completed", Duration::from_secs(10)).unwrap();
        let mut r = signal.body("bv").unwrap();
        assert!(!r.bool().unwrap());
        assert_eq!(r.variant_sig().unwrap(), "o");
        assert_eq!(r.str().unwrap(), "/item/1");
        fake_bus.join().unwrap();
    }

    #[test]
    fn a_refused_authentication_is_an_error() {
        let (client, mut server) = UnixStream::pair().unwrap();
        server.write_all(b"REJECTED EXTERNAL\r\n").unwrap();
        let mut conn = Connection::new(client, Duration::from_secs(10)).unwrap();
        let serial = conn.call("org.example", "/", "org.example.Iface", "M", "", &[]);
        let err = conn.reply(serial).err().expect("an error").to_string();
        assert!(err.contains("refused authentication") && err.contains("REJECTED"), "{err}");
    }

    #[test]
    fn address_values_unescape() {
        assert_eq!(unescape("/tmp/a%20b").unwrap(), b"/tmp/a b");
        assert!(unescape("/tmp/%zz").is_err());
        assert!(unescape("/tmp/%2").is_err());
        assert!(connect_one("tcp:host=localhost,port=1").unwrap_err().contains("not supported"));
        assert!(connect_one("unix:guid=abc").unwrap_err().contains("names no socket"));
    }
}

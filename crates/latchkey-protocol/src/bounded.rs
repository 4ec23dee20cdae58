//! Reading everything from a reader, but never more than a bound: stdin, auth files and
//! store files come from outside and must not make latchkey hold an unbounded buffer. The one
//! helper for "read it all, or say it is too large"; each caller words its own message.

use std::fmt;
use std::io::{self, Read};

/// Why [`read_bounded`] gave nothing back.
#[derive(Debug)]
pub enum BoundedReadError {
    /// There are more than `max` bytes (what was read is wiped and dropped).
    TooLarge { max: u64 },
    /// Reading failed.
    Io(io::Error),
}

impl fmt::Display for BoundedReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoundedReadError::TooLarge { max } => write!(f, "more than {max} bytes"),
            BoundedReadError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for BoundedReadError {}

/// Read `reader` to its end if it holds at most `max` bytes. Reads at most `max + 1` bytes,
/// so a larger input costs no more than that. A partial read that turns out too large is
/// zeroed before it is dropped (it may hold secrets).
pub fn read_bounded(reader: impl Read, max: u64) -> Result<Vec<u8>, BoundedReadError> {
    let mut bytes = Vec::new();
    reader.take(max.saturating_add(1)).read_to_end(&mut bytes).map_err(BoundedReadError::Io)?;
    if bytes.len() as u64 > max {
        zeroize::Zeroize::zeroize(&mut bytes);
        return Err(BoundedReadError::TooLarge { max });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_bound_and_refuses_more() {
        assert_eq!(read_bounded(&b"abc"[..], 3).unwrap(), b"abc");
        assert_eq!(read_bounded(&b""[..], 0).unwrap(), b"");
        assert!(matches!(read_bounded(&b"abcd"[..], 3), Err(BoundedReadError::TooLarge { max: 3 })));
        assert!(matches!(read_bounded(&b"a"[..], 0), Err(BoundedReadError::TooLarge { max: 0 })));
        // Never reads past max + 1 bytes of an endless reader.
        assert!(matches!(read_bounded(io::repeat(b'x'), 1 << 20), Err(BoundedReadError::TooLarge { .. })));
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let e = read_bounded(Broken, 10).unwrap_err();
        assert!(matches!(e, BoundedReadError::Io(_)) && e.to_string() == "disk on fire");
    }
}

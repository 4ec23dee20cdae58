//! Spreading one payload over several keyring items, for stores whose items are too small
//! (Windows Credential Manager holds at most 2,560 bytes a credential).
//!
//! A payload that fits is stored as it is, in the main item. A payload that does not is
//! stored as a *chunked* main item, whose blob starts with a header
//! `latchkey-chunks:<count>:<generation>\n` followed by the first part, plus `count - 1`
//! further items named [`part_name`]`(main, generation, i)`. JSON payloads start with `{`, so
//! a blob without the header is always a whole payload.
//!
//! The generation makes an overwrite safe against a crash half-way: the writer stores the
//! new generation's parts first, then the main item (the switch-over), then deletes the old
//! generation's parts; a reader only ever follows the main item it read.
//!
//! Pure functions only, so they are tested on every platform.

use zeroize::Zeroizing;

const MAGIC: &[u8] = b"latchkey-chunks:";
/// Refuse absurd counts from a corrupt header (1 MiB / 2,560 bytes is ~410).
pub const MAX_PARTS: usize = 4096;

/// What the main item's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Number of items, the main one included.
    pub count: usize,
    pub generation: u32,
    /// Where the payload's first part starts in the main item's blob.
    body_start: usize,
}

/// The name of part `index` (1-based; 0 is the main item itself) of generation `generation`.
pub fn part_name(main: &str, generation: u32, index: usize) -> String {
    debug_assert!(index >= 1);
    format!("{main}#{generation}.{index}")
}

fn header_bytes(count: usize, generation: u32) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(format!("{count}:{generation}\n").as_bytes());
    h
}

/// Split `payload` into blobs of at most `max` bytes: element 0 goes to the main item, element
/// `i` to [`part_name`]`(main, generation, i)`. One element means "not chunked".
pub fn split(payload: &[u8], max: usize, generation: u32) -> Vec<Zeroizing<Vec<u8>>> {
    assert!(max > MAGIC.len() + 32, "chunk size {max} is too small for the header");
    if payload.len() <= max && !payload.starts_with(MAGIC) {
        return vec![Zeroizing::new(payload.to_vec())];
    }
    // The smallest count whose capacity holds the payload (the header grows with its digits).
    let capacity = |count: usize| (max - header_bytes(count, generation).len()) + (count - 1) * max;
    let mut count = 1;
    while capacity(count) < payload.len() {
        count += 1;
    }
    let header = header_bytes(count, generation);
    let first_len = payload.len().min(max - header.len());
    let mut first = Zeroizing::new(Vec::with_capacity(header.len() + first_len));
    first.extend_from_slice(&header);
    first.extend_from_slice(&payload[..first_len]);
    let mut out = vec![first];
    out.extend(payload[first_len..].chunks(max).map(|c| Zeroizing::new(c.to_vec())));
    debug_assert_eq!(out.len(), count);
    out
}

/// Read the main item's header: `Ok(None)` for a whole (unchunked) payload.
pub fn header(main_blob: &[u8]) -> Result<Option<Header>, String> {
    let Some(rest) = main_blob.strip_prefix(MAGIC) else { return Ok(None) };
    let bad = || "its chunk header is corrupt".to_string();
    let end = rest.iter().position(|&b| b == b'\n').filter(|&e| e <= 32).ok_or_else(bad)?;
    let text = std::str::from_utf8(&rest[..end]).map_err(|_| bad())?;
    let (count, generation) = text.split_once(':').ok_or_else(bad)?;
    let count: usize = count.parse().map_err(|_| bad())?;
    let generation: u32 = generation.parse().map_err(|_| bad())?;
    if count == 0 || count > MAX_PARTS {
        return Err(bad());
    }
    Ok(Some(Header { count, generation, body_start: MAGIC.len() + end + 1 }))
}

/// Reassemble a payload from the main item's blob and, when it is chunked, its other parts
/// in order (`parts.len()` must be `count - 1`).
pub fn join(main_blob: &[u8], parts: &[Zeroizing<Vec<u8>>]) -> Result<Zeroizing<Vec<u8>>, String> {
    match header(main_blob)? {
        None if parts.is_empty() => Ok(Zeroizing::new(main_blob.to_vec())),
        None => Err("it is not chunked but parts were given".into()),
        Some(h) if parts.len() + 1 != h.count => Err(format!("it has {} of its {} chunks", parts.len() + 1, h.count)),
        Some(h) => {
            let body = &main_blob[h.body_start..];
            let total = body.len() + parts.iter().map(|p| p.len()).sum::<usize>();
            let mut out = Zeroizing::new(Vec::with_capacity(total));
            out.extend_from_slice(body);
            for p in parts {
                out.extend_from_slice(p);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 2560;

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| b"{abcdefghijklmnopqrstuvwxyz0123456789\"}"[i % 39]).collect()
    }

    fn round_trip(len: usize, max: usize) -> usize {
        let p = payload(len);
        let blobs = split(&p, max, 7);
        assert!(blobs.iter().all(|b| b.len() <= max), "len {len}: a blob exceeds {max}");
        assert!(blobs.len() == 1 || blobs.iter().all(|b| !b.is_empty()), "len {len}: an empty part");
        let joined = join(&blobs[0], &blobs[1..]).unwrap();
        assert_eq!(&joined[..], &p[..], "len {len}");
        match header(&blobs[0]).unwrap() {
            None => assert_eq!(blobs.len(), 1),
            Some(h) => {
                assert_eq!(h.count, blobs.len());
                assert_eq!(h.generation, 7);
            }
        }
        blobs.len()
    }

    #[test]
    fn small_payloads_are_stored_whole() {
        for len in [0, 1, 100, MAX - 1, MAX] {
            assert_eq!(round_trip(len, MAX), 1);
            let p = payload(len);
            assert_eq!(&split(&p, MAX, 1)[0][..], &p[..]);
            assert_eq!(header(&p).unwrap(), None);
        }
    }

    #[test]
    fn large_payloads_are_split_and_rejoined() {
        assert_eq!(round_trip(MAX + 1, MAX), 2);
        assert_eq!(round_trip(10 * 1024 + 60, MAX), 5);
        assert_eq!(round_trip(1 << 20, MAX), 410);
        // Every length around each multiple of the blob size (the header gains a digit at 10).
        for k in 1..=11 {
            for len in k * MAX - 40..k * MAX + 40 {
                round_trip(len, MAX);
            }
        }
        for max in [64, 100, 257] {
            for len in 0..1200 {
                round_trip(len, max);
            }
        }
    }

    #[test]
    fn a_payload_that_looks_like_a_header_is_chunked_so_it_reads_back() {
        let mut p = MAGIC.to_vec();
        p.extend_from_slice(b"3:1\nnot really");
        let blobs = split(&p, MAX, 2);
        assert_eq!(blobs.len(), 1);
        assert_eq!(&join(&blobs[0], &[]).unwrap()[..], &p[..]);
    }

    #[test]
    fn missing_or_extra_parts_and_corrupt_headers_are_errors() {
        let p = payload(3 * MAX);
        let blobs = split(&p, MAX, 1);
        assert_eq!(blobs.len(), 4);
        assert!(join(&blobs[0], &blobs[1..3]).unwrap_err().contains("3 of its 4"));
        assert!(join(&payload(10), &blobs[1..2]).is_err());
        for bad in [
            &b"latchkey-chunks:"[..],
            b"latchkey-chunks:2\n",
            b"latchkey-chunks:x:1\n",
            b"latchkey-chunks:0:1\n",
            b"latchkey-chunks:99999:1\n",
            b"latchkey-chunks:2:-1\n",
            b"latchkey-chunks:2:1",
        ] {
            assert!(header(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn part_names_cannot_collide_with_registry_keys() {
        assert_eq!(part_name("latchkey:ghcr.io", 3, 1), "latchkey:ghcr.io#3.1");
        // A normalised registry key never contains '#', so no key's main name is a part name.
        for s in ["ghcr.io#3.1", "https://ghcr.io/#3.1", "ghcr.io:5000#1.1"] {
            let key = latchkey_protocol::server_url::RegistryKey::parse(s).unwrap();
            assert!(!key.as_str().contains('#'), "{key}");
        }
    }
}

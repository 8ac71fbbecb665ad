//! The record format of segment files.
//!
//! ```text
//! record = crc32 (u32 LE, over body_len and body) ++ body_len (u32 LE) ++ body
//! body   = kind (u8) ++ version (u64 LE) ++ key_len (u32 LE) ++ key ++ value
//!
//! kind 0 PUT     key = state key, value = state value
//! kind 1 DELETE  key = state key, value empty
//! kind 2 COMMIT  key empty, value = state root (32 bytes): the last record of a block
//! kind 3 NODE    key = trie node hash (32 bytes), value = reference count change (i32 LE)
//!                ++ the node's encoding (absent when the node is already stored)
//! body_len 0     end of the segment's records (the rest of the file is unused)
//! ```

use crate::metis::MAX_VALUE_BYTES;

/// Bytes before the body: crc32 and body length.
pub(crate) const FRAME_BYTES: usize = 8;
/// Bytes of the body before the key: kind, version, key length.
pub(crate) const BODY_HEADER_BYTES: usize = 1 + 8 + 4;
/// Largest key accepted.
pub(crate) const MAX_KEY_BYTES: usize = 64 * 1024;

/// What a record says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Put = 0,
    Delete = 1,
    Commit = 2,
    Node = 3,
}

/// A decoded record, borrowing from the segment.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub kind: Kind,
    pub version: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// Total size, frame included.
    pub size: usize,
}

/// Appends the encoding of a record to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, kind: Kind, version: u64, key: &[u8], value: &[u8]) {
    encode_parts(out, kind, version, key, &[value]);
}

/// Appends a NODE record: block `version` changes the reference count of node `hash` by
/// `delta`, and stores its encoding `data` unless it is empty.
pub(crate) fn encode_node(out: &mut Vec<u8>, version: u64, hash: &[u8; 32], delta: i32, data: &[u8]) {
    encode_parts(out, Kind::Node, version, hash, &[&delta.to_le_bytes(), data]);
}

/// The reference count change and the node encoding (empty: not stored here) of a NODE
/// record's value; `None` when it is too short.
pub(crate) fn node_value(value: &[u8]) -> Option<(i32, &[u8])> {
    let delta = i32::from_le_bytes(value.get(..4)?.try_into().expect("4 bytes"));
    Some((delta, &value[4..]))
}

fn encode_parts(out: &mut Vec<u8>, kind: Kind, version: u64, key: &[u8], value: &[&[u8]]) {
    let value_len: usize = value.iter().map(|part| part.len()).sum();
    assert!(key.len() <= MAX_KEY_BYTES && value_len <= MAX_VALUE_BYTES + 4, "record too large");
    let body_len = BODY_HEADER_BYTES + key.len() + value_len;
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    for part in value {
        out.extend_from_slice(part);
    }
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Size of a record's encoding.
pub(crate) fn encoded_size(key: &[u8], value: &[u8]) -> usize {
    FRAME_BYTES + BODY_HEADER_BYTES + key.len() + value.len()
}

/// The key and value of the record at `offset` of `bytes`, a record this store wrote or checked
/// (no checksum is verified: this is the read path).
#[inline(always)]
pub(crate) fn key_value(bytes: &[u8], offset: usize) -> (&[u8], &[u8]) {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
    let body_len = u32_at(offset + 4);
    let key_len = u32_at(offset + FRAME_BYTES + 9);
    let key_start = offset + FRAME_BYTES + BODY_HEADER_BYTES;
    (&bytes[key_start..key_start + key_len], &bytes[key_start + key_len..offset + FRAME_BYTES + body_len])
}

/// How reading a record at some offset ended.
#[derive(Debug)]
pub(crate) enum Read<'a> {
    /// A valid record.
    Record(Record<'a>),
    /// The end marker (or never-written zeros).
    End,
    /// Bytes that are not a valid record: torn or damaged.
    Invalid(&'static str),
}

/// Reads the record at the start of `bytes`.
pub(crate) fn read(bytes: &[u8]) -> Read<'_> {
    if bytes.len() < FRAME_BYTES {
        return Read::End;
    }
    let crc = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let body_len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    if body_len == 0 {
        return Read::End;
    }
    if body_len < BODY_HEADER_BYTES || body_len > bytes.len() - FRAME_BYTES {
        return Read::Invalid("record length out of range");
    }
    let framed = &bytes[4..FRAME_BYTES + body_len];
    if crc32fast::hash(framed) != crc {
        return Read::Invalid("checksum mismatch");
    }
    let body = &bytes[FRAME_BYTES..FRAME_BYTES + body_len];
    let kind = match body[0] {
        0 => Kind::Put,
        1 => Kind::Delete,
        2 => Kind::Commit,
        3 => Kind::Node,
        _ => return Read::Invalid("unknown record kind"),
    };
    let version = u64::from_le_bytes(body[1..9].try_into().expect("8 bytes"));
    let key_len = u32::from_le_bytes(body[9..13].try_into().expect("4 bytes")) as usize;
    if key_len > body_len - BODY_HEADER_BYTES {
        return Read::Invalid("key length out of range");
    }
    let key = &body[BODY_HEADER_BYTES..BODY_HEADER_BYTES + key_len];
    let value = &body[BODY_HEADER_BYTES + key_len..];
    Read::Record(Record { kind, version, key, value, size: FRAME_BYTES + body_len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut out = Vec::new();
        encode(&mut out, Kind::Put, 7, b"key", b"value");
        assert_eq!(out.len(), encoded_size(b"key", b"value"));
        let Read::Record(r) = read(&out) else { panic!("valid record") };
        assert_eq!(
            (r.kind, r.version, r.key, r.value, r.size),
            (Kind::Put, 7, &b"key"[..], &b"value"[..], out.len())
        );
        let mut shifted = vec![0u8; 3];
        shifted.extend_from_slice(&out);
        assert_eq!(key_value(&shifted, 3), (&b"key"[..], &b"value"[..]));
        for i in 0..out.len() {
            let mut damaged = out.clone();
            damaged[i] ^= 0x40;
            assert!(!matches!(read(&damaged), Read::Record(_)), "flip at {i} went unnoticed");
        }
        assert!(matches!(read(&[0u8; 16]), Read::End));
        assert!(matches!(read(&out[..out.len() - 1]), Read::Invalid(_)));
    }

    /// Fixed encoding: a change here makes every existing store unreadable.
    #[test]
    fn golden_encoding() {
        let mut out = Vec::new();
        encode(&mut out, Kind::Delete, 1, b"k", b"");
        let expected = ["0e000000", "01", "0100000000000000", "01000000", "6b"].concat();
        assert_eq!(hex::encode(&out[4..]), expected);
        out.clear();
        encode_node(&mut out, 2, &[0xab; 32], -1, b"n");
        let hash = "ab".repeat(32);
        let expected = ["32000000", "03", "0200000000000000", "20000000", &hash, "ffffffff", "6e"].concat();
        assert_eq!(hex::encode(&out[4..]), expected);
        let Read::Record(r) = read(&out) else { panic!("valid record") };
        assert_eq!(node_value(r.value), Some((-1, &b"n"[..])));
    }
}

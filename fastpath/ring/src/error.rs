//! Errors of the ring.

use std::path::PathBuf;

/// Why a record was judged corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CorruptReason {
    /// Head and tail are more than a ring apart, or the tail is ahead of the head.
    #[error("inconsistent indices: head {head}, tail {tail}")]
    Indices {
        /// Head read from the header.
        head: u64,
        /// The consumer's tail.
        tail: u64,
    },
    /// Fewer bytes are published than the record claims.
    #[error("truncated record: needs {needed} bytes, {available} published")]
    Truncated {
        /// Bytes the record header (or its length field) asks for.
        needed: u64,
        /// Bytes published between tail and head.
        available: u64,
    },
    /// The record header carries an unknown framing version.
    #[error("record version {found} (expected {expected}) in header byte 6")]
    Version {
        /// Version found.
        found: u16,
        /// Version this build understands.
        expected: u16,
    },
    /// The checksum does not match the header and payload.
    #[error("checksum mismatch: record says {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// CRC in header bytes 20..24.
        stored: u32,
        /// CRC computed over the bytes read.
        computed: u32,
    },
}

/// Errors from opening or reading a ring.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// A file operation failed.
    #[error("ring file {path}: {op}: {source}")]
    Io {
        /// The ring file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The header page does not describe a ring this build can use.
    #[error(
        "ring file {path}: header field {field} at byte {offset} is {found:#x}, expected {expected}"
    )]
    BadHeader {
        /// The ring file.
        path: PathBuf,
        /// The field name.
        field: &'static str,
        /// Its offset in the header page.
        offset: u64,
        /// The value found.
        found: u64,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// A record failed validation; the consumer has resynchronised (see the crate docs).
    #[error("corrupt record at ring position {position}: {reason}")]
    Corrupt {
        /// Free-running byte position of the record.
        position: u64,
        /// What was wrong.
        reason: CorruptReason,
    },
    /// The requested data-area size is unusable.
    #[error("ring capacity {capacity} is not a power of two >= 64 bytes that fits in memory")]
    InvalidCapacity {
        /// The requested capacity.
        capacity: u64,
    },
    /// The producer replaced this file with a new one; reopen the path.
    #[error("ring file was replaced by a new one; reopen it")]
    Retired,
}

/// Why [`crate::Producer::try_send`] refused a message. It never blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not enough free space now. The message was not written; the producer will report
    /// that a snapshot is due ([`crate::Producer::snapshot_due`]).
    #[error("ring full: record needs {needed} bytes, {free} free")]
    Full {
        /// Bytes the record needs.
        needed: u64,
        /// Bytes free.
        free: u64,
    },
    /// The payload can never fit in this ring.
    #[error("payload of {len} bytes exceeds the ring's maximum of {max}")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// Largest payload the ring can carry.
        max: u64,
    },
}

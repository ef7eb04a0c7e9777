//! Decode and apply errors. Every message names the field and the byte offset.

use crate::ids::Generation;

/// Why a message could not be decoded or applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    /// The input ended before a field could be read.
    #[error("truncated input: {field} needs {needed} bytes at offset {offset}")]
    Truncated {
        /// Field being read.
        field: &'static str,
        /// Bytes it needed.
        needed: usize,
        /// Where it started.
        offset: usize,
    },
    /// The frame does not start with the magic bytes.
    #[error("bad magic at offset 0")]
    BadMagic,
    /// The frame's format version is not the one this build speaks.
    #[error("unsupported format version {found} at offset 4 (this build speaks {expected})")]
    UnsupportedVersion {
        /// Version in the frame.
        found: u16,
        /// Version this build speaks.
        expected: u16,
    },
    /// The body checksum does not match.
    #[error("body checksum mismatch (header says {expected:#010x}, body sums to {found:#010x})")]
    Checksum {
        /// Checksum in the header.
        expected: u32,
        /// Checksum of the body.
        found: u32,
    },
    /// An enum tag has no meaning.
    #[error("invalid tag {tag} for {field} at offset {offset}")]
    BadTag {
        /// Field.
        field: &'static str,
        /// The tag found.
        tag: u8,
        /// Where.
        offset: usize,
    },
    /// A value is out of its allowed range (prefix length, host bits, port range order, ...).
    #[error("invalid value for {field} at offset {offset}")]
    BadValue {
        /// Field.
        field: &'static str,
        /// Where.
        offset: usize,
    },
    /// A count claims more elements than bytes remain.
    #[error("count {count} for {field} at offset {offset} exceeds the remaining input")]
    BadCount {
        /// Field.
        field: &'static str,
        /// The count found.
        count: u32,
        /// Where.
        offset: usize,
    },
    /// The body has bytes after the message.
    #[error("{extra} trailing bytes after the message body at offset {offset}")]
    Trailing {
        /// How many.
        extra: usize,
        /// Where they start.
        offset: usize,
    },
    /// The body is larger than [`crate::MAX_BODY_LEN`].
    #[error("body length {len} exceeds the limit")]
    TooLarge {
        /// The length claimed.
        len: u32,
    },
    /// A delta does not apply on top of the current generation.
    #[error("delta for base generation {base:?} cannot apply to generation {current:?}")]
    GenerationMismatch {
        /// The delta's base.
        base: Generation,
        /// The current generation.
        current: Generation,
    },
}

//! The byte layout of the ring file: a 4 KiB header page, then the data area.
//!
//! ```text
//! offset  field                 written by     notes
//! ------  --------------------  -------------  -------------------------------------------
//!      0  magic                 producer init  "TORTRING" (LE u64), stored last on creation
//!      8  layout_version        producer init  LAYOUT_VERSION
//!     16  capacity              producer init  data-area bytes, a power of two
//!     24  header_len            producer init  HEADER_LEN (the data area starts here)
//!     32  retired               producer       non-zero once a new file replaced this one
//!     64  producer_epoch        producer       +1 on every producer open (restart detection)
//!     72  producer_pid          producer       informational
//!    128  consumer_epoch        consumer       +1 on every consumer open (restart detection)
//!    136  snapshot_requests     consumer       +1 whenever the consumer lost sync
//!    192  head                  producer       free-running byte position, Release-stored
//!    200  sent_messages         producer       counter
//!    208  sent_bytes            producer       counter (payload bytes)
//!    216  full_events           producer       counter: try_send refused for lack of room
//!    256  tail                  consumer       free-running byte position, Release-stored
//!    264  received_messages     consumer       counter
//!    272  corrupt_records       consumer       counter: records that failed validation
//!    280  skipped_records       consumer       counter: deltas dropped awaiting a snapshot
//!   4096  data area             producer       `capacity` bytes of records
//! ```
//!
//! Head and tail live on separate 64-byte cache lines so the two processes do not false-share.
//!
//! A record is a 24-byte header followed by the payload, padded to 8 bytes:
//!
//! ```text
//! 0 u32 payload_len | 4 u16 kind | 6 u16 record_version | 8 u64 generation
//! 16 u32 producer_epoch (low 32 bits) | 20 u32 crc32 (over bytes 0..20 and the payload)
//! ```
//!
//! All integers are little-endian.

/// "TORTRING" as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TORTRING");
/// Version of the file layout (header fields and record framing).
pub const LAYOUT_VERSION: u64 = 1;
/// Version written into every record header; records with another version are rejected.
pub const RECORD_VERSION: u16 = 1;
/// Size of the header page; the data area starts at this offset.
pub const HEADER_LEN: u64 = 4096;
/// Size of a record header.
pub const RECORD_HEADER_LEN: usize = 24;

/// The 8-byte header fields, by their offset in the header page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Field {
    /// See the module table.
    Magic = 0,
    /// See the module table.
    LayoutVersion = 8,
    /// See the module table.
    Capacity = 16,
    /// See the module table.
    HeaderLen = 24,
    /// See the module table.
    Retired = 32,
    /// See the module table.
    ProducerEpoch = 64,
    /// See the module table.
    ProducerPid = 72,
    /// See the module table.
    ConsumerEpoch = 128,
    /// See the module table.
    SnapshotRequests = 136,
    /// See the module table.
    Head = 192,
    /// See the module table.
    SentMessages = 200,
    /// See the module table.
    SentBytes = 208,
    /// See the module table.
    FullEvents = 216,
    /// See the module table.
    Tail = 256,
    /// See the module table.
    ReceivedMessages = 264,
    /// See the module table.
    CorruptRecords = 272,
    /// See the module table.
    SkippedRecords = 280,
}

impl Field {
    /// Byte offset of the field in the header page.
    #[must_use]
    pub fn offset(self) -> u64 {
        self as u64
    }
}

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload bytes following the header.
    pub payload_len: u32,
    /// Message kind (opaque to the ring except [`crate::MessageKind::SNAPSHOT`]).
    pub kind: u16,
    /// Record framing version, [`RECORD_VERSION`].
    pub version: u16,
    /// Table generation the message belongs to.
    pub generation: u64,
    /// Low 32 bits of the producer epoch that wrote the record.
    pub epoch: u32,
    /// CRC-32 over header bytes 0..20 and the payload.
    pub crc: u32,
}

impl RecordHeader {
    /// Encodes the header; the crc field is written as given.
    #[must_use]
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        b[0..4].copy_from_slice(&self.payload_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.kind.to_le_bytes());
        b[6..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..16].copy_from_slice(&self.generation.to_le_bytes());
        b[16..20].copy_from_slice(&self.epoch.to_le_bytes());
        b[20..24].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Decodes a header from its 24 bytes (no validation beyond the framing).
    #[must_use]
    pub fn decode(b: &[u8; RECORD_HEADER_LEN]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut g = [0u8; 8];
        g.copy_from_slice(&b[8..16]);
        Self {
            payload_len: u32_at(0),
            kind: u16::from_le_bytes([b[4], b[5]]),
            version: u16::from_le_bytes([b[6], b[7]]),
            generation: u64::from_le_bytes(g),
            epoch: u32_at(16),
            crc: u32_at(20),
        }
    }

    /// The checksum a record with this header (crc field ignored) and `payload` must carry.
    #[must_use]
    pub fn checksum(&self, payload: &[u8]) -> u32 {
        let bytes = self.encode();
        let state = crate::crc32::update(!0, &bytes[..20]);
        !crate::crc32::update(state, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = RecordHeader {
            payload_len: 0xdead_beef,
            kind: 7,
            version: RECORD_VERSION,
            generation: u64::MAX - 1,
            epoch: 3,
            crc: 0x1234_5678,
        };
        assert_eq!(RecordHeader::decode(&h.encode()), h);
    }

    #[test]
    fn checksum_covers_header_and_payload() {
        let h = RecordHeader {
            payload_len: 3,
            kind: 1,
            version: 1,
            generation: 9,
            epoch: 1,
            crc: 0,
        };
        let base = h.checksum(b"abc");
        assert_ne!(base, h.checksum(b"abd"));
        assert_ne!(
            base,
            RecordHeader {
                generation: 10,
                ..h
            }
            .checksum(b"abc")
        );
        assert_eq!(
            base,
            RecordHeader { crc: 99, ..h }.checksum(b"abc"),
            "crc field excluded"
        );
    }

    #[test]
    fn head_and_tail_sit_on_their_own_cache_lines() {
        assert_eq!(Field::Head.offset() / 64, 3);
        assert_eq!(Field::Tail.offset() / 64, 4);
        assert!(Field::SkippedRecords.offset() + 8 <= HEADER_LEN);
    }
}

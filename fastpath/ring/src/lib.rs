//! The shared-memory SPSC ring that carries compiled tables from tortie-control to
//! tortie-fastpath.
//!
//! One producer process ([`Producer`], tortie-control) and one consumer process
//! ([`Consumer`], tortie-fastpath) share a memory-mapped file (typically under `/dev/shm`):
//! a 4 KiB header page (magic, layout version, capacity, producer and consumer epochs, head,
//! tail, counters) and a power-of-two data area of length-prefixed, versioned, checksummed
//! records, each tagged with a [`MessageKind`] and a table generation. Payloads are opaque
//! here; tortie-abi defines them.
//!
//! Neither side ever blocks on the other:
//! - [`Producer::try_send`] returns [`SendError::Full`] when there is no room; the lost
//!   delta makes [`Producer::snapshot_due`] true, and control sends a full snapshot later.
//! - [`Consumer::try_recv`] returns `Ok(None)` when nothing is published. While control is
//!   down the fastpath simply keeps forwarding with the last generation it applied.
//!
//! Restarts and corruption:
//! - A restarted producer bumps the producer epoch; its `snapshot_due` starts true, and the
//!   consumer ([`Consumer::take_producer_restarted`]) skips deltas until a snapshot arrives.
//! - A restarted consumer bumps the consumer epoch; the producer's `snapshot_due` turns
//!   true, and the consumer skips deltas until a snapshot arrives.
//! - A corrupt or truncated record (bad length, version or CRC, or inconsistent indices)
//!   is returned as [`RingError::Corrupt`], counted in the header, logged at most once a
//!   second, and the consumer resynchronises: it discards everything published, asks for a
//!   snapshot (which `snapshot_due` reports) and skips deltas until one arrives. Deltas
//!   after a lost record cannot be applied safely, so the next snapshot boundary is the
//!   only sound place to resume.
//!
//!
//! Waking the consumer: the producer rings a doorbell ([`doorbell`], a Unix datagram socket
//! at `<path>.bell`) after each message, so a consumer waiting in [`Consumer::wait`] between
//! polls picks the message up at once instead of at its next poll. Best effort: without it
//! the consumer simply polls.
//!
//! Design notes, layout diagram and memory-ordering argument: `docs/design/ring.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod crc32;
pub mod cursor;
pub mod doorbell;
mod error;
pub mod layout;
mod rate_limit;
mod reader;
mod region;
mod shm;
mod writer;

pub use error::{CorruptReason, RingError, SendError};

use layout::Field;
use reader::Reader;
use region::Region;
use shm::ShmRegion;
use writer::Writer;

/// The kind of a message. The ring treats every kind as opaque except
/// [`MessageKind::SNAPSHOT`], the resynchronisation point after a restart or lost record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageKind(pub u16);

impl MessageKind {
    /// A full snapshot of the tables: applying it alone yields a complete generation.
    pub const SNAPSHOT: Self = Self(1);
    /// A delta against the previous generation.
    pub const DELTA: Self = Self(2);
}

/// Metadata of a received message; its payload is in the buffer passed to `try_recv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// The message kind.
    pub kind: MessageKind,
    /// The table generation it carries.
    pub generation: u64,
    /// Low 32 bits of the epoch of the producer that wrote it.
    pub producer_epoch: u32,
    /// Payload length in bytes.
    pub len: usize,
}

/// The header counters and epochs, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingStats {
    /// Producer instances that have opened this file.
    pub producer_epoch: u64,
    /// Consumer instances that have opened this file.
    pub consumer_epoch: u64,
    /// Messages written.
    pub sent_messages: u64,
    /// Payload bytes written.
    pub sent_bytes: u64,
    /// `try_send` calls refused for lack of room.
    pub full_events: u64,
    /// Messages delivered to the consumer.
    pub received_messages: u64,
    /// Records that failed validation (each followed by a resync).
    pub corrupt_records: u64,
    /// Deltas dropped while awaiting a snapshot.
    pub skipped_records: u64,
    /// Snapshots asked for by the consumer after losing sync.
    pub snapshot_requests: u64,
}

fn stats(region: &impl Region) -> RingStats {
    RingStats {
        producer_epoch: region.load(Field::ProducerEpoch),
        consumer_epoch: region.load(Field::ConsumerEpoch),
        sent_messages: region.load(Field::SentMessages),
        sent_bytes: region.load(Field::SentBytes),
        full_events: region.load(Field::FullEvents),
        received_messages: region.load(Field::ReceivedMessages),
        corrupt_records: region.load(Field::CorruptRecords),
        skipped_records: region.load(Field::SkippedRecords),
        snapshot_requests: region.load(Field::SnapshotRequests),
    }
}

/// The writing end (tortie-control). Exactly one producer may use a ring file at a time.
pub struct Producer {
    writer: Writer<ShmRegion>,
    ringer: doorbell::Ringer,
}

impl Producer {
    /// Opens the ring at `path` if it is a valid ring of `capacity` data bytes (a restart:
    /// the producer epoch is bumped and unread records are kept), or creates it. A file that
    /// is not a usable ring, or has another capacity, is replaced atomically (a new file is
    /// built beside it and renamed over it); if the old one was a ring it is marked retired
    /// so a consumer still mapping it gets [`RingError::Retired`] and reopens the path.
    pub fn create_or_open(path: impl AsRef<Path>, capacity: u64) -> Result<Self, RingError> {
        let path = path.as_ref();
        cursor::Cursor::new(capacity).ok_or(RingError::InvalidCapacity { capacity })?;
        let region = match ShmRegion::open(path) {
            Ok(region) if region.capacity() == capacity => region,
            Ok(old) => {
                let fresh = create_beside(path, capacity)?;
                old.store(Field::Retired, 1);
                fresh
            }
            Err(_) => create_beside(path, capacity)?,
        };
        Ok(Self {
            writer: Writer::attach(region),
            ringer: doorbell::Ringer::new(path),
        })
    }

    /// Writes one message and rings the consumer's doorbell; never blocks. On
    /// [`SendError::Full`] nothing was written and [`Producer::snapshot_due`] becomes true.
    pub fn try_send(
        &mut self,
        kind: MessageKind,
        generation: u64,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.writer.try_send(kind, generation, payload)?;
        self.ringer.ring();
        Ok(())
    }

    /// Whether a full snapshot must be sent now (after this producer started, after a
    /// `Full` refusal, after the consumer restarted or lost sync). Clears on reading.
    pub fn snapshot_due(&mut self) -> bool {
        self.writer.snapshot_due()
    }

    /// This producer's epoch.
    pub fn epoch(&self) -> u64 {
        self.writer.epoch()
    }

    /// Counters and epochs from the header.
    pub fn stats(&self) -> RingStats {
        stats(self.writer.region())
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("epoch", &self.epoch())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Builds a fresh ring in a private file next to `path` and renames it into place, so a
/// consumer never maps a half-initialised header.
fn create_beside(path: &Path, capacity: u64) -> Result<ShmRegion, RingError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = path.with_file_name(format!(".{name}.new-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let region = ShmRegion::create(&tmp, capacity)?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        RingError::Io {
            path: path.to_path_buf(),
            op: "rename new ring into place",
            source,
        }
    })?;
    Ok(region)
}

/// The reading end (tortie-fastpath). Exactly one consumer may use a ring file at a time.
pub struct Consumer {
    reader: Reader<ShmRegion>,
    bell: Option<doorbell::Bell>,
}

impl Consumer {
    /// Opens an existing ring (created by the producer); bumps the consumer epoch so the
    /// producer sends a snapshot, and skips deltas until one arrives. Binds the ring's
    /// doorbell (without one, [`Consumer::wait`] sleeps its whole timeout).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RingError> {
        let path = path.as_ref();
        let reader = Reader::attach(ShmRegion::open(path)?);
        let bell = match doorbell::Bell::bind(path) {
            Ok(bell) => Some(bell),
            Err(error) => {
                tracing::debug!(%error, ring = %path.display(), "no doorbell; the consumer polls");
                None
            }
        };
        Ok(Self { reader, bell })
    }

    /// Waits until the producer rings the doorbell or `timeout` passes; returns whether it
    /// rang. A message may be published without a ring (a doorbell lost, or none bound):
    /// callers poll [`Consumer::try_recv`] after every wait, woken or not.
    pub fn wait(&self, timeout: Duration) -> bool {
        match &self.bell {
            Some(bell) => bell.wait(timeout),
            None => {
                std::thread::sleep(timeout);
                false
            }
        }
    }

    /// Whether the doorbell is bound (else [`Consumer::wait`] is a plain sleep).
    pub fn has_doorbell(&self) -> bool {
        self.bell.is_some()
    }

    /// Receives the next message into `buf`; `Ok(None)` if none is published. Never blocks.
    /// [`RingError::Corrupt`] means a record was dropped and the ring resynchronised (see
    /// the crate docs); keep calling. [`RingError::Retired`] means reopen the path.
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<Option<Message>, RingError> {
        self.reader.try_recv(buf)
    }

    /// True once after a new producer instance took over since the last call.
    pub fn take_producer_restarted(&mut self) -> bool {
        self.reader.take_producer_restarted()
    }

    /// Whether deltas are being dropped until the next snapshot.
    pub fn awaiting_snapshot(&self) -> bool {
        self.reader.awaiting_snapshot()
    }

    /// Counters and epochs from the header.
    pub fn stats(&self) -> RingStats {
        stats(self.reader.region())
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("awaiting_snapshot", &self.awaiting_snapshot())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_can_move_to_other_threads() {
        fn is_send<T: Send>() {}
        is_send::<Producer>();
        is_send::<Consumer>();
    }
}

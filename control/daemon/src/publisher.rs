//! The ring producer: generations, snapshots and deltas.
//!
//! Generations increase across restarts: each producer instance starts at
//! `epoch << 32` (the ring's producer epoch grows with every open of the ring file), so a
//! restarted control's first snapshot always carries a higher generation than anything its
//! predecessor sent, without keeping state on disk.

use std::path::{Path, PathBuf};

use tortie_abi as abi;
use tortie_ring::{MessageKind, Producer, RingStats, SendError};

use crate::error::ControlError;

/// The ring's data capacity (64 MiB).
pub const RING_CAPACITY: u64 = 64 << 20;

/// What a send did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Written with this generation.
    Written(u64),
    /// No room: nothing written; a snapshot is due.
    Full,
}

/// The producing end with its generation counter.
pub struct Publisher {
    producer: Producer,
    path: PathBuf,
    generation: u64,
    buf: Vec<u8>,
    /// Snapshots written.
    pub snapshots: u64,
    /// Deltas written.
    pub deltas: u64,
    /// Sends refused for lack of room.
    pub full: u64,
}

impl Publisher {
    /// Creates or opens the ring (its directory is created if missing).
    pub fn open(path: &Path) -> Result<Publisher, ControlError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| ControlError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let producer =
            Producer::create_or_open(path, RING_CAPACITY).map_err(|e| ControlError::Ring {
                path: path.to_path_buf(),
                cause: e.to_string(),
            })?;
        let generation = producer.epoch() << 32;
        Ok(Publisher {
            producer,
            path: path.to_path_buf(),
            generation,
            buf: Vec::new(),
            snapshots: 0,
            deltas: 0,
            full: 0,
        })
    }

    /// The generation of the last message written (the epoch base before the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the ring asks for a snapshot (clears on reading).
    pub fn snapshot_due(&mut self) -> bool {
        self.producer.snapshot_due()
    }

    /// Ring counters.
    pub fn stats(&self) -> RingStats {
        self.producer.stats()
    }

    /// The ring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&mut self, kind: MessageKind, message: &abi::Message) -> Result<Sent, ControlError> {
        self.buf.clear();
        message.encode_into(&mut self.buf);
        let generation = message.generation().0;
        match self.producer.try_send(kind, generation, &self.buf) {
            Ok(()) => {
                self.generation = generation;
                Ok(Sent::Written(generation))
            }
            Err(SendError::Full { .. }) => {
                self.full += 1;
                Ok(Sent::Full)
            }
            Err(e) => Err(ControlError::Ring {
                path: self.path.clone(),
                cause: e.to_string(),
            }),
        }
    }

    /// Writes a full snapshot with the next generation.
    pub fn send_snapshot(&mut self, tables: abi::Tables) -> Result<Sent, ControlError> {
        let message = abi::Message::Snapshot {
            generation: abi::Generation(self.generation + 1),
            tables,
        };
        let sent = self.send(MessageKind::SNAPSHOT, &message)?;
        if matches!(sent, Sent::Written(_)) {
            self.snapshots += 1;
        }
        Ok(sent)
    }

    /// Writes a delta on top of the last generation.
    pub fn send_delta(&mut self, ops: Vec<abi::Op>) -> Result<Sent, ControlError> {
        let message = abi::Message::Delta {
            base: abi::Generation(self.generation),
            generation: abi::Generation(self.generation + 1),
            ops,
        };
        let sent = self.send(MessageKind::DELTA, &message)?;
        if matches!(sent, Sent::Written(_)) {
            self.deltas += 1;
        }
        Ok(sent)
    }
}

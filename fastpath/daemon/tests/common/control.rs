//! A stand-in for tortie-control: the ring producer and the tables it last sent.

use std::path::Path;

use tortie_abi::{Generation, Message, Op, Tables};
use tortie_ring::{MessageKind, Producer};

/// Plays tortie-control: owns the ring producer and the tables it last sent.
pub struct Control {
    pub producer: Producer,
    pub generation: u64,
    pub tables: Tables,
}

impl Control {
    pub fn new(path: &Path, tables: Tables) -> Control {
        let producer = Producer::create_or_open(path, 1 << 20).expect("create ring");
        Control {
            producer,
            generation: 0,
            tables,
        }
    }

    pub fn snapshot(&mut self) {
        self.generation += 1;
        let m = Message::Snapshot {
            generation: Generation(self.generation),
            tables: self.tables.clone(),
        };
        self.producer
            .try_send(MessageKind::SNAPSHOT, self.generation, &m.encode())
            .expect("send snapshot");
    }

    /// Sends a snapshot when the fastpath asked for one (restart, lost record).
    pub fn resync(&mut self) -> bool {
        if self.producer.snapshot_due() {
            self.snapshot();
            return true;
        }
        false
    }

    pub fn delta(&mut self, ops: Vec<Op>) {
        let base = self.generation;
        self.generation += 1;
        for op in &ops {
            self.tables.apply(op.clone());
        }
        let m = Message::Delta {
            base: Generation(base),
            generation: Generation(self.generation),
            ops,
        };
        self.producer
            .try_send(MessageKind::DELTA, self.generation, &m.encode())
            .expect("send delta");
    }

    pub fn raw(&mut self, payload: &[u8]) {
        self.producer
            .try_send(MessageKind::DELTA, self.generation + 1, payload)
            .expect("send raw");
    }
}

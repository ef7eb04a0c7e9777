//! Generation swap between the config thread and the workers, over per-worker `rtrb` rings.
//!
//! # Protocol
//!
//! 1. The config thread decodes control's message, applies it to its copy of the tables and
//!    compiles a new immutable [`Generation`] (allocating freely, off the hot path).
//! 2. It publishes an `Arc` of it to every worker's *forward* ring
//!    ([`Publisher::publish`]). A full ring means the worker has not picked up the previous
//!    ones; the publish fails and the config thread retries later.
//! 3. Between batches each worker calls [`WorkerSide::poll`]: it drains its forward ring,
//!    keeps the newest generation, and pushes every generation it retires (the one it ran
//!    on and any it skipped) onto its *return* ring. No lock, no allocation, no free: an
//!    `Arc` moved onto a ring is not dropped there.
//! 4. The config thread drains the return rings ([`Publisher::reclaim`], also done at the
//!    start of every publish) and drops the `Arc`s there, so the last reference to a
//!    retired generation, and its memory, is freed off the hot path.
//!
//! The return ring holds one more slot than the forward ring, and a worker retires at most
//! one generation per generation it received plus the one it started with, so between two
//! reclaims the return ring cannot overflow. Should it anyway, the worker keeps the
//! generation in a fixed stash (reserved up front) and retries at its next poll.

use std::sync::Arc;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::compile::Generation;
use crate::pipeline::Pipeline;

/// The config thread's end of one worker's rings.
pub struct Publisher {
    forward: Producer<Arc<Generation>>,
    back: Consumer<Arc<Generation>>,
}

/// A worker's end of its rings.
pub struct WorkerSide {
    forward: Consumer<Arc<Generation>>,
    back: Producer<Arc<Generation>>,
    stash: Vec<Arc<Generation>>,
}

/// Creates the ring pair of one worker; `depth` generations may be in flight.
pub fn channel(depth: usize) -> (Publisher, WorkerSide) {
    let depth = depth.max(1);
    let (fp, fc) = RingBuffer::new(depth);
    let (bp, bc) = RingBuffer::new(depth + 1);
    (
        Publisher {
            forward: fp,
            back: bc,
        },
        WorkerSide {
            forward: fc,
            back: bp,
            stash: Vec::with_capacity(depth + 1),
        },
    )
}

impl Publisher {
    /// Frees every generation the worker has retired; returns how many.
    pub fn reclaim(&mut self) -> usize {
        let mut n = 0;
        while let Ok(g) = self.back.pop() {
            drop(g);
            n += 1;
        }
        n
    }

    /// Reclaims, then offers `generation` to the worker. Gives it back if the worker's
    /// forward ring is full.
    pub fn publish(&mut self, generation: Arc<Generation>) -> Result<(), Arc<Generation>> {
        self.reclaim();
        self.forward
            .push(generation)
            .map_err(|rtrb::PushError::Full(g)| g)
    }

    /// Whether the worker has gone away.
    pub fn is_abandoned(&self) -> bool {
        self.forward.is_abandoned()
    }
}

impl WorkerSide {
    /// Between batches: switches `pipeline` to the newest published generation, if any, and
    /// hands the retired ones back. Returns whether the generation changed.
    pub fn poll(&mut self, pipeline: &mut Pipeline) -> bool {
        self.flush_stash();
        let mut newest = None;
        while let Ok(g) = self.forward.pop() {
            if let Some(skipped) = newest.replace(g) {
                self.retire(skipped);
            }
        }
        match newest {
            Some(g) => {
                let old = pipeline.swap_generation(g);
                self.retire(old);
                true
            }
            None => false,
        }
    }

    fn retire(&mut self, g: Arc<Generation>) {
        if let Err(rtrb::PushError::Full(g)) = self.back.push(g) {
            // Within the reserved capacity: no allocation. Beyond it the Vec would grow,
            // which the ring sizing above rules out.
            self.stash.push(g);
        }
    }

    fn flush_stash(&mut self) {
        while let Some(g) = self.stash.pop() {
            if let Err(rtrb::PushError::Full(g)) = self.back.push(g) {
                self.stash.push(g);
                return;
            }
        }
    }
}

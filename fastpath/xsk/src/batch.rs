//! A fixed-capacity vector of owned frames: what RX fills and TX drains.

use crate::umem::{Desc, FramePool};

/// Up to `capacity` owned frames. Allocated once; RX/TX never grow it, so the hot path does
/// not allocate.
#[derive(Debug)]
pub struct DescBatch {
    pub(crate) descs: Vec<Desc>,
    cap: usize,
}

impl DescBatch {
    /// An empty batch for up to `capacity` frames (typically 64).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            descs: Vec::with_capacity(capacity),
            cap: capacity,
        }
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.descs.len()
    }

    /// True when no frame is held.
    pub fn is_empty(&self) -> bool {
        self.descs.is_empty()
    }

    /// Maximum frames held.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Room left.
    pub fn spare(&self) -> usize {
        self.cap - self.descs.len()
    }

    /// Add a frame; gives it back when full.
    pub fn push(&mut self, desc: Desc) -> Result<(), Desc> {
        if self.descs.len() == self.cap {
            return Err(desc);
        }
        self.descs.push(desc);
        Ok(())
    }

    /// Take the last frame.
    pub fn pop(&mut self) -> Option<Desc> {
        self.descs.pop()
    }

    /// The frames, for the pipeline to read and rewrite.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Desc> {
        self.descs.iter_mut()
    }

    /// The frames, read-only.
    pub fn iter(&self) -> std::slice::Iter<'_, Desc> {
        self.descs.iter()
    }

    /// Return every held frame to `pool` (drop verdicts, or TX leftovers).
    pub fn free_all(&mut self, pool: &mut FramePool) {
        while let Some(d) = self.descs.pop() {
            pool.free(d);
        }
    }
}

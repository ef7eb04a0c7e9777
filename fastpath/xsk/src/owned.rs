//! Which frames one port has handed to the kernel: a bitmap over the UMEM's frame numbers.
//!
//! A bit is set when the port posts a frame to its fill ring or submits it to its TX ring and
//! cleared when the frame comes back on its RX or completion ring, so at close the set bits
//! are exactly the frames still in the port's kernel rings (see `Port::close`). One OR or
//! AND-NOT per frame; the map is sized once (4 KiB for 32768 frames).

/// Ownership bitmap of one port.
#[derive(Debug)]
pub(crate) struct OwnedFrames {
    words: Vec<u64>,
    frame_size: usize,
}

impl OwnedFrames {
    /// A map for `frames` frames of `frame_size` bytes, all clear.
    pub(crate) fn new(frames: u32, frame_size: u32) -> Self {
        Self {
            words: vec![0; (frames as usize).div_ceil(64)],
            frame_size: frame_size.max(1) as usize,
        }
    }

    /// Frame numbers covered.
    pub(crate) fn capacity(&self) -> usize {
        self.words.len() * 64
    }

    /// Mark the frame holding `addr` (aligned mode: any address inside the frame).
    #[inline]
    pub(crate) fn set(&mut self, addr: usize) {
        let i = addr / self.frame_size;
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1u64 << (i % 64);
        }
    }

    /// Unmark the frame holding `addr`.
    #[inline]
    pub(crate) fn clear(&mut self, addr: usize) {
        let i = addr / self.frame_size;
        if let Some(w) = self.words.get_mut(i / 64) {
            *w &= !(1u64 << (i % 64));
        }
    }

    /// Frames marked.
    pub(crate) fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The marked frame numbers, ascending.
    pub(crate) fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(i)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn set_clear_and_list_by_frame() {
        let mut m = OwnedFrames::new(130, 2048);
        assert_eq!(m.capacity(), 192);
        // Addresses inside frames 0, 64 and 129 (data start = frame start + 256).
        m.set(256);
        m.set(64 * 2048 + 256);
        m.set(129 * 2048 + 100);
        m.set(129 * 2048 + 256); // same frame again
        assert_eq!(m.count(), 3);
        assert_eq!(m.indices().collect::<Vec<_>>(), vec![0, 64, 129]);
        m.clear(64 * 2048 + 300);
        assert_eq!(m.indices().collect::<Vec<_>>(), vec![0, 129]);
        // Out of range: ignored, never a panic.
        m.set(10_000 * 2048);
        assert_eq!(m.count(), 2);
    }

    proptest! {
        /// The map agrees with a set of frame numbers after any sequence of operations.
        #[test]
        fn matches_a_reference_set(ops in proptest::collection::vec((any::<bool>(), 0usize..300), 0..400)) {
            let mut m = OwnedFrames::new(300, 4096);
            let mut reference = std::collections::BTreeSet::new();
            for (on, frame) in ops {
                let addr = frame * 4096 + 256;
                if on { m.set(addr); reference.insert(frame); } else { m.clear(addr); reference.remove(&frame); }
            }
            prop_assert_eq!(m.count(), reference.len());
            prop_assert_eq!(m.indices().collect::<Vec<_>>(), reference.into_iter().collect::<Vec<_>>());
        }
    }
}

//! Index arithmetic for the ring, kept apart from the shared-memory plumbing.
//!
//! Head and tail are free-running `u64` byte positions: the producer only ever adds to the
//! head, the consumer only ever adds to the tail, and `head - tail` (wrapping) is the number of
//! bytes published but not yet consumed. The capacity is a power of two, so a position maps to
//! an offset in the data area with a mask and the arithmetic stays correct across the `u64`
//! wrap. Everything here is plain, safe code tested against a model (see `tests` below and the
//! `model` property test in `reader.rs`).

use crate::layout::RECORD_HEADER_LEN;

/// Records start on this alignment, so headers never straddle a word inside the data area
/// except at the wrap, which the split copies handle.
pub const RECORD_ALIGN: u64 = 8;

/// Index arithmetic for a ring of `capacity` data bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    capacity: u64,
}

/// One contiguous piece of a copy into or out of the data area: `len` bytes at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Offset from the start of the data area.
    pub offset: u64,
    /// Number of bytes.
    pub len: usize,
}

impl Cursor {
    /// Arithmetic for a data area of `capacity` bytes; `None` unless the capacity is a power
    /// of two of at least 64 bytes (the mask trick needs the power of two).
    #[must_use]
    pub fn new(capacity: u64) -> Option<Self> {
        (capacity.is_power_of_two() && capacity >= 64).then_some(Self { capacity })
    }

    /// The data-area size in bytes.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes published and not yet consumed, or `None` when the indices are inconsistent
    /// (more than a full ring apart, or the tail ahead of the head): a corrupt header.
    #[must_use]
    pub fn used(&self, head: u64, tail: u64) -> Option<u64> {
        let used = head.wrapping_sub(tail);
        (used <= self.capacity).then_some(used)
    }

    /// Bytes the producer may still write, or `None` for inconsistent indices.
    #[must_use]
    pub fn free(&self, head: u64, tail: u64) -> Option<u64> {
        self.used(head, tail).map(|used| self.capacity - used)
    }

    /// The offset in the data area of a free-running position.
    #[must_use]
    pub fn offset(&self, position: u64) -> u64 {
        position & (self.capacity - 1)
    }

    /// Bytes a record with a `payload_len`-byte payload occupies, header and alignment
    /// padding included; `None` if it could never fit in this ring.
    #[must_use]
    pub fn record_span(&self, payload_len: usize) -> Option<u64> {
        let raw = u64::try_from(payload_len)
            .ok()?
            .checked_add(RECORD_HEADER_LEN as u64)?;
        let span = raw.checked_add(RECORD_ALIGN - 1)? & !(RECORD_ALIGN - 1);
        (span <= self.capacity).then_some(span)
    }

    /// The largest payload a single record can carry.
    #[must_use]
    pub fn max_payload(&self) -> u64 {
        self.capacity - RECORD_HEADER_LEN as u64
    }

    /// Splits a copy of `len` bytes starting at `position` into at most two contiguous
    /// segments: up to the end of the data area, then from its start. The second segment has
    /// length 0 when the copy does not wrap. `len` must not exceed the capacity.
    #[must_use]
    pub fn split(&self, position: u64, len: usize) -> [Segment; 2] {
        let offset = self.offset(position);
        let until_end = self.capacity - offset;
        let len64 = len as u64;
        debug_assert!(len64 <= self.capacity, "copy larger than the ring");
        if len64 <= until_end {
            [Segment { offset, len }, Segment { offset: 0, len: 0 }]
        } else {
            let first = until_end as usize;
            [
                Segment { offset, len: first },
                Segment {
                    offset: 0,
                    len: len - first,
                },
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_capacities_that_are_not_powers_of_two() {
        assert!(Cursor::new(0).is_none());
        assert!(Cursor::new(100).is_none());
        assert!(Cursor::new(32).is_none());
        assert!(Cursor::new(4096).is_some());
    }

    #[test]
    fn detects_inconsistent_indices() {
        let c = Cursor::new(1024).unwrap();
        assert_eq!(c.used(10, 10), Some(0));
        assert_eq!(c.used(1034, 10), Some(1024));
        assert_eq!(c.used(1035, 10), None);
        assert_eq!(c.used(9, 10), None, "tail ahead of head");
        assert_eq!(
            c.free(u64::MAX.wrapping_add(5), u64::MAX - 3),
            Some(1024 - 8)
        );
    }

    #[test]
    fn record_span_is_aligned_and_bounded() {
        let c = Cursor::new(1024).unwrap();
        assert_eq!(c.record_span(0), Some(RECORD_HEADER_LEN as u64));
        assert_eq!(c.record_span(1), Some(32));
        assert_eq!(c.record_span(8), Some(32));
        assert_eq!(c.record_span(9), Some(40));
        assert_eq!(c.record_span(1000), Some(1024));
        assert_eq!(c.record_span(1001), None);
        assert_eq!(c.record_span(usize::MAX), None);
    }

    proptest! {
        #[test]
        fn split_covers_exactly_the_requested_bytes(
            shift in 6u32..16, position: u64, len_frac in 0.0f64..=1.0,
        ) {
            let capacity = 1u64 << shift;
            let c = Cursor::new(capacity).unwrap();
            let len = (len_frac * capacity as f64) as usize;
            let [a, b] = c.split(position, len);
            prop_assert_eq!(a.len + b.len, len);
            prop_assert_eq!(a.offset, position % capacity);
            prop_assert!(a.offset + a.len as u64 <= capacity);
            prop_assert!(b.offset + b.len as u64 <= capacity);
            // Byte i of the copy lands at (position + i) mod capacity.
            for i in [0usize, len / 2, len.saturating_sub(1)] {
                if i >= len { continue; }
                let expect = position.wrapping_add(i as u64) % capacity;
                let got = if i < a.len { a.offset + i as u64 } else { b.offset + (i - a.len) as u64 };
                prop_assert_eq!(got, expect);
            }
        }

        #[test]
        fn used_plus_free_is_capacity(shift in 6u32..20, tail: u64, used_frac in 0.0f64..=1.0) {
            let capacity = 1u64 << shift;
            let c = Cursor::new(capacity).unwrap();
            let used = (used_frac * capacity as f64) as u64;
            let head = tail.wrapping_add(used);
            prop_assert_eq!(c.used(head, tail), Some(used));
            prop_assert_eq!(c.free(head, tail), Some(capacity - used));
        }
    }
}

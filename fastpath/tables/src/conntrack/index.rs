//! The conntrack hash index: fixed-size, bucketised open addressing, no tombstones.
//!
//! Layout: an array of 64-byte buckets (one cache line each). A bucket holds 7 slots of a
//! 32-bit hash tag plus a 32-bit value (the entry id and direction), and an *overflow count*:
//! how many values whose home is this bucket or an earlier one were placed past it. A lookup
//! reads the home bucket, compares up to 7 tags and moves on only while the overflow count is
//! non-zero, so a miss usually costs one cache line. Removal clears the slot and decrements
//! the counts along the probe path; there are no tombstones, so the table never degrades and
//! never needs a rehash. This is the scheme of Folly's F14 ("outboundOverflowCount"), with
//! linear probing over buckets.
//!
//! The index never grows: it is sized at construction for the table's maximum number of
//! values at a load of at most [`MAX_LOAD_PERCENT`] %, so inserts always find a slot.

/// Slots per bucket (7 × (4 + 4) bytes + overflow + padding = 64 bytes).
pub(crate) const SLOTS: usize = 7;
/// Highest fraction of slots in use, in percent, at full table capacity.
pub(crate) const MAX_LOAD_PERCENT: usize = 80;

const EMPTY: u32 = 0;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    tags: [u32; SLOTS],
    overflow: u32,
    values: [u32; SLOTS],
    _pad: u32,
}

const EMPTY_BUCKET: Bucket = Bucket {
    tags: [EMPTY; SLOTS],
    overflow: 0,
    values: [0; SLOTS],
    _pad: 0,
};

/// The home bucket's answer for a hash, before any key compare ([`Index::candidate`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Candidate {
    /// The first value of the home bucket with the hash's tag. If its key matches, it is the
    /// answer [`Index::find`] would give (a key is indexed at most once); if not, only
    /// `find` can tell.
    First(u32),
    /// No value carries the tag in the home bucket and none overflowed past it: absent.
    Absent,
    /// No tag match in the home bucket, but values overflowed past it: ask `find`.
    Unknown,
}

/// Where a value sits: bucket and slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Slot {
    bucket: u32,
    slot: u8,
}

pub(crate) struct Index {
    buckets: Vec<Bucket>,
}

#[inline]
fn tag_of(hash: u64) -> u32 {
    // Upper half of the hash, never EMPTY.
    ((hash >> 32) as u32) | 1
}

impl Index {
    /// An index able to hold `max_values` at no more than `MAX_LOAD_PERCENT` % load.
    pub(crate) fn with_max_values(max_values: usize) -> Index {
        let slots = max_values
            .saturating_mul(100)
            .div_ceil(MAX_LOAD_PERCENT)
            .max(SLOTS);
        let buckets = slots.div_ceil(SLOTS);
        Index {
            buckets: vec![EMPTY_BUCKET; buckets],
        }
    }

    /// Bytes held by the index.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        // Lemire's fast range reduction on the low 32 bits (the tag uses the high 32).
        ((u64::from(hash as u32) * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// Find a value whose tag matches and for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<(Slot, u32)> {
        let tag = tag_of(hash);
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            for s in 0..SLOTS {
                if bucket.tags[s] == tag && eq(bucket.values[s]) {
                    return Some((
                        Slot {
                            bucket: b as u32,
                            slot: s as u8,
                        },
                        bucket.values[s],
                    ));
                }
            }
            if bucket.overflow == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Where `value`, inserted with `hash`, sits (for removals): a slot is matched by tag
    /// and value, without calling back into the table.
    #[inline]
    pub(crate) fn slot_of(&self, hash: u64, value: u32) -> Option<Slot> {
        let tag = tag_of(hash);
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            for s in 0..SLOTS {
                if bucket.tags[s] == tag && bucket.values[s] == value {
                    return Some(Slot {
                        bucket: b as u32,
                        slot: s as u8,
                    });
                }
            }
            if bucket.overflow == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Load the home bucket of `hash` (batch lookups issue these loads for a whole group
    /// before probing, so the cache misses overlap). Returns a word to feed `black_box`.
    #[inline]
    pub(crate) fn touch(&self, hash: u64) -> u32 {
        self.buckets[self.home(hash)].tags[0]
    }

    /// What the home bucket of `hash` says before any key is compared: the first value
    /// whose tag matches (a likely hit, whose entry the batch lookup loads early), or that
    /// the key is certainly absent (no tag matches and nothing overflowed past the bucket).
    #[inline]
    pub(crate) fn candidate(&self, hash: u64) -> Candidate {
        let tag = tag_of(hash);
        let bucket = &self.buckets[self.home(hash)];
        for s in 0..SLOTS {
            if bucket.tags[s] == tag {
                return Candidate::First(bucket.values[s]);
            }
        }
        if bucket.overflow == 0 {
            Candidate::Absent
        } else {
            Candidate::Unknown
        }
    }

    /// Insert a value; the caller guarantees the key is absent. Returns `None` only if every
    /// slot is taken, which the sizing rules out for a table within its capacity.
    pub(crate) fn insert(&mut self, hash: u64, value: u32) -> Option<Slot> {
        let tag = tag_of(hash);
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            if let Some(s) = self.buckets[b].tags.iter().position(|&t| t == EMPTY) {
                let bucket = &mut self.buckets[b];
                bucket.tags[s] = tag;
                bucket.values[s] = value;
                let at = Slot {
                    bucket: b as u32,
                    slot: s as u8,
                };
                self.count_overflow(hash, at);
                return Some(at);
            }
            b = self.next(b);
        }
        // Full: no overflow count was touched on the way.
        None
    }

    /// Count the value placed at `at` in the overflow of every bucket it passed over.
    fn count_overflow(&mut self, hash: u64, at: Slot) {
        let mut b = self.home(hash);
        while b != at.bucket as usize {
            self.buckets[b].overflow += 1;
            b = self.next(b);
        }
    }

    /// Remove the value at `at`, which was inserted with `hash`.
    pub(crate) fn remove(&mut self, hash: u64, at: Slot) {
        let bucket = &mut self.buckets[at.bucket as usize];
        bucket.tags[usize::from(at.slot)] = EMPTY;
        let mut b = self.home(hash);
        while b != at.bucket as usize {
            self.buckets[b].overflow -= 1;
            b = self.next(b);
        }
    }

    /// The value stored at `at`.
    #[cfg(test)]
    pub(crate) fn value_at(&self, at: Slot) -> u32 {
        self.buckets[at.bucket as usize].values[usize::from(at.slot)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
    }

    #[test]
    fn colliding_hashes_overflow_and_shrink_back() {
        // 20 values with the same home bucket force two overflow buckets.
        let mut idx = Index::with_max_values(100);
        let hashes: Vec<u64> = (0..20u64).map(|i| (i << 32) | 5).collect();
        let mut at = Vec::new();
        for (i, &h) in hashes.iter().enumerate() {
            at.push(idx.insert(h, i as u32).unwrap());
        }
        for (i, &h) in hashes.iter().enumerate() {
            let (s, v) = idx.find(h, |v| v == i as u32).unwrap();
            assert_eq!((s, v), (at[i], i as u32));
            assert_eq!(idx.value_at(s), i as u32);
        }
        let home = idx.home(hashes[0]);
        assert_eq!(idx.buckets[home].overflow, 13);
        for (i, &h) in hashes.iter().enumerate() {
            idx.remove(h, at[i]);
            assert!(idx.find(h, |v| v == i as u32).is_none());
        }
        assert!(
            idx.buckets
                .iter()
                .all(|b| b.overflow == 0 && b.tags.iter().all(|&t| t == EMPTY))
        );
    }

    #[test]
    fn candidate_answers_from_the_home_bucket() {
        let mut idx = Index::with_max_values(100);
        // Same home bucket (low 32 bits), distinct tags (high 32 bits, odd like every tag).
        let h = |n: u64| ((2 * n + 1) << 32) | 5;
        assert_eq!(idx.candidate(h(1)), Candidate::Absent);
        for n in 1..=7u64 {
            idx.insert(h(n), n as u32 * 10).unwrap();
        }
        assert_eq!(idx.candidate(h(3)), Candidate::First(30));
        assert_eq!(idx.candidate(h(9)), Candidate::Absent);
        // The eighth value overflows: the home bucket can no longer rule a key out.
        let at = idx.insert(h(8), 80).unwrap();
        assert_eq!(idx.candidate(h(9)), Candidate::Unknown);
        assert_eq!(idx.candidate(h(8)), Candidate::Unknown);
        assert_eq!(idx.find(h(8), |v| v == 80).map(|f| f.1), Some(80));
        idx.remove(h(8), at);
        assert_eq!(idx.candidate(h(9)), Candidate::Absent);
    }

    #[test]
    fn full_index_refuses() {
        let mut idx = Index::with_max_values(1);
        let cap = idx.buckets.len() * SLOTS;
        for i in 0..cap {
            idx.insert(i as u64, i as u32).unwrap();
        }
        assert!(idx.insert(99, 99).is_none());
    }
}

//! One tuple table: an open-addressing hash table over the masked key of a tuple, whose slots
//! point at per-key chains of entries sorted by priority.
//!
//! Slot layout (`u32`): bits 24..32 hold an 8-bit tag (more hash bits), bits 0..24 hold the
//! chain head's entry index plus one; zero is an empty slot. The tag lets a probe skip a
//! foreign key without touching its entry. Linear probing with backward-shift deletion keeps
//! probe sequences short without tombstones, so deletes never degrade lookups.

use crate::addr::{Addr, key_hash};
use crate::entry::{Entry, NIL, Tuple};
use crate::error::ClassifierError;
use crate::rule::KeyT;

const INDEX_BITS: u32 = 24;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
/// Entries one table can address (24-bit index, zero reserved for "empty").
pub(crate) const MAX_TABLE_ENTRIES: usize = INDEX_MASK as usize - 1;
const MIN_SLOTS: usize = 4;
/// Filter bits per hash slot (at least 10.7 bits per key at the 3/4 maximum load: a
/// false-positive rate of at most about 9 per cent with one hash).
const FILTER_BITS_PER_SLOT: usize = 8;

/// A tuple table of one address family.
#[derive(Debug, Clone)]
pub(crate) struct Table<A> {
    pub tuple: Tuple,
    src_mask: A,
    dst_mask: A,
    port_mask: u64,
    slots: Box<[u32]>,
    /// One-hash Bloom filter over the keys' hashes, [`FILTER_BITS_PER_SLOT`] bits per slot: a
    /// probe for an absent key usually ends here, on a structure small enough to stay in L1.
    /// Removals leave their bit set (still correct); growth and `compact` rebuild it.
    filter: Box<[u64]>,
    /// Distinct keys (occupied slots).
    keys: u32,
    entries: Vec<Entry<A>>,
    /// Head of the free list threaded through `Entry::next`.
    free: u32,
    /// Live entries.
    live: u32,
    /// Lowest priority held (`u32::MAX` when empty).
    pub best: u32,
}

/// Outcome of a probe for a key.
enum Probe {
    Found(usize),
    Vacant(usize),
}

impl<A: Addr> Table<A> {
    pub fn new(tuple: Tuple) -> Self {
        let port_mask = Tuple::port_mask(tuple.sp)
            | (Tuple::port_mask(tuple.dp) << 16)
            | (if tuple.proto > 0 { 0xFF << 32 } else { 0 });
        Self {
            tuple,
            src_mask: A::mask(tuple.src),
            dst_mask: A::mask(tuple.dst),
            port_mask,
            slots: vec![0; MIN_SLOTS].into_boxed_slice(),
            filter: vec![0; (MIN_SLOTS * FILTER_BITS_PER_SLOT).div_ceil(64)].into_boxed_slice(),
            keys: 0,
            entries: Vec::new(),
            free: NIL,
            live: 0,
            best: u32::MAX,
        }
    }

    pub fn len(&self) -> usize {
        self.live as usize
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Heap bytes (slot array and entry arena, by capacity).
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * 4
            + self.filter.len() * 8
            + self.entries.capacity() * core::mem::size_of::<Entry<A>>()
    }

    #[inline(always)]
    fn entry_key(&self, e: &Entry<A>) -> (A, A, u64) {
        (
            e.src & self.src_mask,
            e.dst & self.dst_mask,
            e.port_word() & self.port_mask,
        )
    }

    /// Home slot of hash `h`: its top 32 bits scaled onto the slot count (any size, not just
    /// powers of two, so that a compacted table can be sized tightly).
    #[inline(always)]
    fn home(&self, h: u64) -> usize {
        (((h >> 32) * self.slots.len() as u64) >> 32) as usize
    }

    /// The slot after `i`, wrapping around.
    #[inline(always)]
    fn next_slot(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() { 0 } else { i + 1 }
    }

    #[inline(always)]
    fn head(slot: u32) -> usize {
        (slot & INDEX_MASK) as usize - 1
    }

    /// Word of hash `h` in the filter: the low 32 hash bits scaled onto the filter's length
    /// (which therefore need not be a power of two; the scaling is dominated by bits 20..32,
    /// away from the slot's home in the high half).
    #[inline(always)]
    fn filter_word(&self, h: u64) -> usize {
        ((u64::from(h as u32) * self.filter.len() as u64) >> 32) as usize
    }

    /// Bit of hash `h` within its filter word: hash bits 40..46, clear of the tag (bits
    /// 0..8) and of the word index, so a key that passes the filter by accident is no more
    /// likely to share a slot's tag.
    #[inline(always)]
    fn filter_shift(h: u64) -> u32 {
        ((h >> 40) & 63) as u32
    }

    #[inline(always)]
    fn may_contain(&self, h: u64) -> bool {
        (self.filter[self.filter_word(h)] >> Self::filter_shift(h)) & 1 != 0
    }

    fn filter_set(&mut self, h: u64) {
        let w = self.filter_word(h);
        self.filter[w] |= 1 << Self::filter_shift(h);
    }

    /// Rebuilds the filter from the live keys, sized for the current slot array.
    fn rebuild_filter(&mut self) {
        let words = (self.slots.len() * FILTER_BITS_PER_SLOT).div_ceil(64);
        self.filter = vec![0; words].into_boxed_slice();
        for i in 0..self.slots.len() {
            if self.slots[i] != 0 {
                let (s, d, p) = self.entry_key(&self.entries[Self::head(self.slots[i])]);
                self.filter_set(key_hash(s, d, p));
            }
        }
    }

    #[inline(always)]
    fn tag(h: u64) -> u32 {
        (h as u32) & 0xFF
    }

    fn probe(&self, key: (A, A, u64), h: u64) -> Probe {
        let tag = Self::tag(h);
        let mut i = self.home(h);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return Probe::Vacant(i);
            }
            if slot >> INDEX_BITS == tag && self.entry_key(&self.entries[Self::head(slot)]) == key {
                return Probe::Found(i);
            }
            i = self.next_slot(i);
        }
    }

    fn alloc(&mut self, e: Entry<A>) -> Result<u32, ClassifierError> {
        if self.free != NIL {
            let idx = self.free;
            self.free = self.entries[idx as usize].next;
            self.entries[idx as usize] = e;
            Ok(idx)
        } else if self.entries.len() >= MAX_TABLE_ENTRIES {
            Err(ClassifierError::TableFull {
                limit: MAX_TABLE_ENTRIES,
            })
        } else {
            self.entries.push(e);
            Ok((self.entries.len() - 1) as u32)
        }
    }

    /// Re-places every key into a slot array of `new_len` slots (at least one more than keys).
    fn resize(&mut self, new_len: usize) {
        let old = core::mem::replace(&mut self.slots, vec![0; new_len].into_boxed_slice());
        for slot in old.iter().copied().filter(|&s| s != 0) {
            let (s, d, p) = self.entry_key(&self.entries[Self::head(slot)]);
            let mut i = self.home(key_hash(s, d, p));
            while self.slots[i] != 0 {
                i = self.next_slot(i);
            }
            self.slots[i] = slot;
        }
        self.rebuild_filter();
    }

    /// Adds an entry; returns how many entries now share its key (the chain length).
    pub fn insert(&mut self, mut e: Entry<A>) -> Result<usize, ClassifierError> {
        // Keep the load factor at or below 3/4.
        if (self.keys as usize + 1) * 4 > self.slots.len() * 3 {
            self.resize(self.slots.len() * 2);
        }
        let key = self.entry_key(&e);
        let h = key_hash(key.0, key.1, key.2);
        let chain_len = match self.probe(key, h) {
            Probe::Vacant(i) => {
                e.next = NIL;
                let idx = self.alloc(e)?;
                self.slots[i] = (Self::tag(h) << INDEX_BITS) | (idx + 1);
                self.filter_set(h);
                self.keys += 1;
                1
            }
            Probe::Found(i) => {
                let head = Self::head(self.slots[i]) as u32;
                if e.prio < self.entries[head as usize].prio {
                    e.next = head;
                    let idx = self.alloc(e)?;
                    self.slots[i] = (Self::tag(h) << INDEX_BITS) | (idx + 1);
                } else {
                    let mut prev = head;
                    loop {
                        let nx = self.entries[prev as usize].next;
                        if nx == NIL || self.entries[nx as usize].prio > e.prio {
                            break;
                        }
                        prev = nx;
                    }
                    e.next = self.entries[prev as usize].next;
                    let idx = self.alloc(e)?;
                    self.entries[prev as usize].next = idx;
                }
                self.chain(Self::head(self.slots[i]) as u32).count()
            }
        };
        self.live += 1;
        self.best = self.best.min(e.prio);
        Ok(chain_len)
    }

    /// Entry indices of the chain starting at `idx`.
    fn chain(&self, idx: u32) -> impl Iterator<Item = u32> + '_ {
        let mut cur = idx;
        core::iter::from_fn(move || {
            if cur == NIL {
                None
            } else {
                let this = cur;
                cur = self.entries[cur as usize].next;
                Some(this)
            }
        })
    }

    /// Copies of the entries sharing `e`'s key in this table.
    pub fn colliding(&self, e: &Entry<A>) -> Vec<Entry<A>> {
        let key = self.entry_key(e);
        match self.probe(key, key_hash(key.0, key.1, key.2)) {
            Probe::Found(i) => self
                .chain(Self::head(self.slots[i]) as u32)
                .map(|x| self.entries[x as usize])
                .collect(),
            Probe::Vacant(_) => Vec::new(),
        }
    }

    /// Removes the entry equal to `e` (see [`Entry::same_rule`]); returns the removed entry.
    pub fn remove(&mut self, e: &Entry<A>) -> Option<Entry<A>> {
        let key = self.entry_key(e);
        let h = key_hash(key.0, key.1, key.2);
        let Probe::Found(i) = self.probe(key, h) else {
            return None;
        };
        let head = Self::head(self.slots[i]) as u32;
        let mut prev = NIL;
        let mut cur = head;
        while cur != NIL && !self.entries[cur as usize].same_rule(e) {
            prev = cur;
            cur = self.entries[cur as usize].next;
        }
        if cur == NIL {
            return None;
        }
        let removed = self.entries[cur as usize];
        let next = self.entries[cur as usize].next;
        if prev != NIL {
            self.entries[prev as usize].next = next;
        } else if next != NIL {
            self.slots[i] = (Self::tag(h) << INDEX_BITS) | (next + 1);
        } else {
            self.delete_slot(i);
            self.keys -= 1;
        }
        self.entries[cur as usize].next = self.free;
        self.free = cur;
        self.live -= 1;
        if self.live == 0 {
            self.best = u32::MAX;
            self.entries.clear();
            self.free = NIL;
        } else if e.prio == self.best {
            // Chains are sorted, so the table's best is the best chain head.
            self.best = self
                .slots
                .iter()
                .filter(|&&s| s != 0)
                .map(|&s| self.entries[Self::head(s)].prio)
                .min()
                .unwrap_or(u32::MAX);
        }
        Some(removed)
    }

    /// Backward-shift deletion: pulls later members of the probe run into the hole so that no
    /// tombstone is needed.
    fn delete_slot(&mut self, hole: usize) {
        let len = self.slots.len();
        let dist = |from: usize, to: usize| {
            if to >= from {
                to - from
            } else {
                to + len - from
            }
        };
        let mut i = hole;
        let mut j = hole;
        loop {
            j = self.next_slot(j);
            let slot = self.slots[j];
            if slot == 0 {
                break;
            }
            let (s, d, p) = self.entry_key(&self.entries[Self::head(slot)]);
            let home = self.home(key_hash(s, d, p));
            // Move the key back into the hole unless its home lies cyclically in (hole, j].
            if dist(home, j) >= dist(i, j) {
                self.slots[i] = slot;
                i = j;
            }
        }
        self.slots[i] = 0;
    }

    /// Removes and returns every live entry whose natural tuple fits `tuple`.
    pub fn drain_fitting(&mut self, tuple: &Tuple) -> Vec<Entry<A>> {
        let moving: Vec<Entry<A>> = self
            .slots
            .iter()
            .filter(|&&s| s != 0)
            .flat_map(|&s| self.chain(Self::head(s) as u32))
            .map(|x| self.entries[x as usize])
            .filter(|e| tuple.fits(&e.natural_tuple()))
            .collect();
        for e in &moving {
            self.remove(e);
        }
        moving
    }

    /// First half of a lookup: the hash of `k`'s masked key, or `None` when the filter rules
    /// the key out (most probes of tables that hold no match end here).
    #[inline(always)]
    pub fn start(&self, k: &KeyT<A>, pw: u64) -> Option<u64> {
        let h = key_hash(
            k.src & self.src_mask,
            k.dst & self.dst_mask,
            pw & self.port_mask,
        );
        self.may_contain(h).then_some(h)
    }

    /// Second half of a lookup, from [`Table::start`]'s hash: the first entry (lowest
    /// priority, at least `min_prio` and below `best`) whose indexed fields match `k` and for
    /// which `check` accepts the predicate.
    #[inline(always)]
    pub fn finish<F>(
        &self,
        k: &KeyT<A>,
        pw: u64,
        h: u64,
        min_prio: u32,
        best: u32,
        check: &mut F,
    ) -> Option<&Entry<A>>
    where
        F: FnMut(&Entry<A>, &KeyT<A>) -> bool,
    {
        let tag = Self::tag(h);
        let mut i = self.home(h);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            if slot >> INDEX_BITS == tag {
                let mut idx = Self::head(slot);
                let e = &self.entries[idx];
                if ((e.src ^ k.src) & self.src_mask == A::ZERO)
                    & ((e.dst ^ k.dst) & self.dst_mask == A::ZERO)
                    & ((e.port_word() ^ pw) & self.port_mask == 0)
                {
                    loop {
                        let e = &self.entries[idx];
                        if e.prio >= best {
                            return None;
                        }
                        if (e.prio >= min_prio) & e.matches(k)
                            && (e.flags & crate::entry::F_EXTRA == 0 || check(e, k))
                        {
                            return Some(e);
                        }
                        if e.next == NIL {
                            return None;
                        }
                        idx = e.next as usize;
                    }
                }
            }
            i = self.next_slot(i);
        }
    }

    /// The first entry (lowest priority, at least `min_prio` and below `best`) whose indexed
    /// fields match `k` and for which `check` accepts the predicate.
    #[inline(always)]
    pub fn lookup<F>(
        &self,
        k: &KeyT<A>,
        pw: u64,
        min_prio: u32,
        best: u32,
        check: &mut F,
    ) -> Option<&Entry<A>>
    where
        F: FnMut(&Entry<A>, &KeyT<A>) -> bool,
    {
        let h = self.start(k, pw)?;
        self.finish(k, pw, h, min_prio, best, check)
    }

    /// Rewrites the entry arena so that every chain is contiguous, in slot order, with no spare
    /// capacity: a chain walk then reads consecutive cache lines.
    pub fn compact(&mut self) {
        let mut entries = Vec::with_capacity(self.live as usize);
        let mut slots = vec![0; self.slots.len()];
        for (i, &slot) in self.slots.iter().enumerate().filter(|(_, s)| **s != 0) {
            let start = entries.len() as u32;
            let chain: Vec<u32> = self.chain(Self::head(slot) as u32).collect();
            for (n, &x) in chain.iter().enumerate() {
                let mut e = self.entries[x as usize];
                e.next = if n + 1 < chain.len() {
                    start + n as u32 + 1
                } else {
                    NIL
                };
                entries.push(e);
            }
            slots[i] = (slot & !INDEX_MASK) | (start + 1);
        }
        self.entries = entries;
        self.slots = slots.into_boxed_slice();
        self.free = NIL;
        // Tight sizing: a load factor just under 4/5 instead of the 3/8..3/4 that doubling
        // leaves (the filter keeps absent keys from walking the longer probe runs).
        self.resize(MIN_SLOTS.max(self.keys as usize * 5 / 4 + 1));
    }

    /// Distinct keys and longest chain, for statistics.
    pub fn shape(&self) -> (usize, usize) {
        let longest = self
            .slots
            .iter()
            .filter(|&&s| s != 0)
            .map(|&s| self.chain(Self::head(s) as u32).count())
            .max()
            .unwrap_or(0);
        (self.keys as usize, longest)
    }
}

#[cfg(test)]
mod tests;

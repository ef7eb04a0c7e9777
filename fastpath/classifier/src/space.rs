//! One tuple space: a set of tuple tables searched in order of their best priority, stopping
//! as soon as no remaining table can beat the match in hand.
//!
//! Table selection follows the TupleMerge idea (Daly et al., ICCCN 2017): a table indexes
//! *fewer* bits than its entries fix, so entries of many nearby tuples share one table and the
//! number of tables (the lookup cost) stays small; entries sharing a masked key form a
//! priority-sorted chain, and a chain that grows past [`CHAIN_LIMIT`] splits off a more
//! specific table. The heuristics here (most-specific fitting table, relaxation grid, split
//! rule) are this crate's own.

use crate::addr::Addr;
use crate::engine::EngineStats;
use crate::entry::{Entry, Tuple};
use crate::error::ClassifierError;
use crate::table::Table;

/// Longest same-key chain tolerated before a split is attempted.
pub(crate) const CHAIN_LIMIT: usize = 8;

/// A set of tuple tables.
#[derive(Debug, Clone, Default)]
pub(crate) struct Space<A> {
    /// Kept sorted by best priority: the lookup order.
    pub tables: Vec<Table<A>>,
    entries: usize,
}

impl<A: Addr> Space<A> {
    pub fn new() -> Self {
        Self {
            tables: Vec::new(),
            entries: 0,
        }
    }

    /// Relaxed tuple for a new table: index somewhat fewer address bits than the entry fixes
    /// so that neighbours of similar specificity can join, drop the far less specific address
    /// side entirely, and index ports only when they are exact and the addresses alone are
    /// not already selective.
    fn relax(nat: Tuple) -> Tuple {
        let mut t = nat;
        let gap = if A::BITS == 32 { 4 } else { 16 };
        if t.src > t.dst + gap {
            t.dst = 0;
            t.dp = 0;
        } else if t.dst > t.src + gap {
            t.src = 0;
            t.sp = 0;
        }
        t.src = Self::relax_len(t.src);
        t.dst = Self::relax_len(t.dst);
        // With both addresses this specific, ports add little selectivity but multiply the
        // tuple shapes (exact/any per side): leave them to the per-entry check.
        if u32::from(t.src) + u32::from(t.dst) >= u32::from(A::BITS) * 3 / 2 {
            t.sp = 0;
            t.dp = 0;
        }
        if t.sp < 16 {
            t.sp = 0;
        }
        if t.dp < 16 {
            t.dp = 0;
        }
        t
    }

    fn relax_len(len: u8) -> u8 {
        if A::BITS == 32 {
            match len {
                32 => 28,
                25..=31 => len - 3,
                17..=24 => len - 2,
                9..=16 => len - 1,
                _ => len,
            }
        } else {
            match len {
                128 => 120,
                65..=127 => len - len % 8,
                17..=64 => len - len % 16,
                _ => len - len % 8,
            }
        }
    }

    fn rebuild_order(&mut self) {
        self.tables.sort_by_key(|t| t.best);
    }

    fn find_or_make(&mut self, tuple: Tuple) -> usize {
        if let Some(i) = self.tables.iter().position(|t| t.tuple == tuple) {
            return i;
        }
        self.tables.push(Table::new(tuple));
        self.tables.len() - 1
    }

    /// Indexes one entry.
    pub fn insert(&mut self, e: Entry<A>) -> Result<(), ClassifierError> {
        let nat = e.natural_tuple();
        let chosen = self
            .tables
            .iter()
            .enumerate()
            .filter(|(_, t)| t.tuple.fits(&nat))
            .max_by_key(|(_, t)| t.tuple.weight())
            .map(|(i, _)| i);
        let (ti, created) = match chosen {
            Some(i) => (i, false),
            None => {
                self.tables.push(Table::new(Self::relax(nat)));
                (self.tables.len() - 1, true)
            }
        };
        let old_best = self.tables[ti].best;
        let chain = self.tables[ti].insert(e)?;
        self.entries += 1;
        let mut reorder = created || self.tables[ti].best != old_best;
        if chain > CHAIN_LIMIT {
            reorder |= self.split(ti, &e)?;
        }
        if reorder {
            self.rebuild_order();
        }
        Ok(())
    }

    /// Moves entries out of table `ti` into a more specific table when `e`'s chain is too long.
    /// Returns whether tables changed.
    fn split(&mut self, ti: usize, e: &Entry<A>) -> Result<bool, ClassifierError> {
        let chain = self.tables[ti].colliding(e);
        let table_tuple = self.tables[ti].tuple;
        let mut lo = chain[0].natural_tuple();
        let mut hi = lo;
        for c in &chain[1..] {
            let n = c.natural_tuple();
            for d in 0..5 {
                lo.set(d, lo.get(d).min(n.get(d)));
                hi.set(d, hi.get(d).max(n.get(d)));
            }
        }
        // `lo` fits every chain member; widen the dimension where members differ most.
        let mut target = lo;
        if let Some(d) = (0..5)
            .filter(|&d| hi.get(d) > lo.get(d))
            .max_by_key(|&d| hi.get(d) - lo.get(d))
        {
            target.set(d, (lo.get(d) + hi.get(d)).div_ceil(2));
        }
        if target == table_tuple || !table_tuple.fits(&target) {
            return Ok(false);
        }
        let to = self.find_or_make(target);
        let moving = self.tables[ti].drain_fitting(&target);
        for m in moving {
            self.tables[to].insert(m)?;
        }
        if self.tables[ti].is_empty() {
            self.tables.swap_remove(ti);
        }
        Ok(true)
    }

    /// Removes one entry (equal to one inserted earlier); returns the removed entry.
    pub fn remove(&mut self, e: &Entry<A>) -> Option<Entry<A>> {
        let nat = e.natural_tuple();
        let (ti, old_best, removed) = self
            .tables
            .iter_mut()
            .enumerate()
            .filter(|(_, t)| t.tuple.fits(&nat))
            .find_map(|(i, t)| {
                let old_best = t.best;
                t.remove(e).map(|r| (i, old_best, r))
            })?;
        self.entries -= 1;
        if self.tables[ti].is_empty() {
            self.tables.remove(ti);
        } else if self.tables[ti].best != old_best {
            self.rebuild_order();
        }
        Some(removed)
    }

    pub fn memory_bytes(&self) -> usize {
        self.tables.iter().map(Table::memory_bytes).sum::<usize>()
            + self.tables.capacity() * core::mem::size_of::<Table<A>>()
    }

    pub fn add_stats(&self, s: &mut EngineStats) {
        s.tables += self.tables.len();
        s.entries += self.entries;
        for t in &self.tables {
            let (keys, longest) = t.shape();
            s.keys += keys;
            s.longest_chain = s.longest_chain.max(longest);
        }
    }

    /// Makes every chain contiguous and releases spare capacity (after a bulk build).
    pub fn compact(&mut self) {
        self.tables.iter_mut().for_each(Table::compact);
        self.tables.shrink_to_fit();
    }

    /// Every table's tuple and size, for tuning and tests.
    pub fn table_shapes(&self) -> Vec<(Tuple, usize, u32)> {
        // (tuple, entries, best priority) in lookup order.
        self.tables
            .iter()
            .map(|t| (t.tuple, t.len(), t.best))
            .collect()
    }
}

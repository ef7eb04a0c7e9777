//! The public classifier: one tuple-space engine per family plus the shared predicate table.

use crate::engine::{Engine, EngineStats};
use crate::entry::{Entry, F_EXTRA};
use crate::error::ClassifierError;
use crate::expand::expand;
use crate::ipset::IpSetTable;
use crate::predicate::Extra;
use crate::rule::{Key, Key4, Key6, KeyT, Match, Rule};

/// A packet classifier over one program of rules (first match in priority order).
///
/// Mutation (`insert`, `remove`) takes `&mut self`; lookups take `&self`, never allocate and
/// never lock, so the usual deployment is generational: the control side clones the current
/// classifier (or builds a new one), applies updates to the copy off the hot path, and
/// publishes it with an atomic pointer swap while workers keep reading the old one.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    v4: Engine<u32>,
    v6: Engine<u128>,
    /// Predicates of rules with non-indexed conditions; `None` marks a free slot.
    extras: Vec<Option<Extra>>,
    free_extras: Vec<u32>,
    rules: usize,
}

/// Sizes of a classifier, for tuning and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassifierStats {
    /// Rules inserted.
    pub rules: usize,
    /// IPv4 engine.
    pub v4: EngineStats,
    /// IPv6 engine.
    pub v6: EngineStats,
    /// Rules with a predicate.
    pub predicates: usize,
}

impl Classifier {
    /// An empty classifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a classifier from `rules` (any order).
    pub fn build<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Result<Self, ClassifierError> {
        let mut sorted: Vec<&Rule> = rules.into_iter().collect();
        // Inserting in priority order appends to chains instead of walking them.
        sorted.sort_by_key(|r| r.priority);
        let mut c = Self::new();
        for r in sorted {
            c.insert(r)?;
        }
        c.compact();
        Ok(c)
    }

    /// Lays out every chain contiguously and releases spare capacity. [`Classifier::build`]
    /// does this; after many incremental updates it restores lookup locality (O(entries)).
    pub fn compact(&mut self) {
        self.v4.compact();
        self.v6.compact();
        self.extras.shrink_to_fit();
        self.free_extras.shrink_to_fit();
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules
    }

    /// Whether no rule is present.
    pub fn is_empty(&self) -> bool {
        self.rules == 0
    }

    /// Adds one rule. Priorities must be unique within a classifier (the classifier does not
    /// check; among equal priorities, which one matches is unspecified).
    pub fn insert(&mut self, rule: &Rule) -> Result<(), ClassifierError> {
        let mut ex = expand(rule)?;
        let mut extra_idx = None;
        if let Some(extra) = ex.extra.take() {
            let idx = match self.free_extras.pop() {
                Some(i) => {
                    self.extras[i as usize] = Some(extra);
                    i
                }
                None => {
                    self.extras.push(Some(extra));
                    (self.extras.len() - 1) as u32
                }
            };
            ex.v4.iter_mut().for_each(|e| e.payload = idx);
            ex.v6.iter_mut().for_each(|e| e.payload = idx);
            extra_idx = Some(idx);
        }
        if let Err(err) = self.insert_entries(&ex.v4, &ex.v6) {
            if let Some(i) = extra_idx {
                self.extras[i as usize] = None;
                self.free_extras.push(i);
            }
            return Err(err);
        }
        self.rules += 1;
        Ok(())
    }

    /// Indexes a rule's entries, all or none.
    fn insert_entries(
        &mut self,
        v4: &[Entry<u32>],
        v6: &[Entry<u128>],
    ) -> Result<(), ClassifierError> {
        for (i, e) in v4.iter().enumerate() {
            if let Err(err) = self.v4.insert(*e) {
                for e in &v4[..i] {
                    let _ = self.v4.remove(e);
                }
                return Err(err);
            }
        }
        for (i, e) in v6.iter().enumerate() {
            if let Err(err) = self.v6.insert(*e) {
                for e in v4 {
                    let _ = self.v4.remove(e);
                }
                for e in &v6[..i] {
                    let _ = self.v6.remove(e);
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// Removes a rule previously inserted (the same field values and priority).
    pub fn remove(&mut self, rule: &Rule) -> Result<(), ClassifierError> {
        let ex = expand(rule)?;
        let mut extra_idx = None;
        let mut found = ex.v4.is_empty() && ex.v6.is_empty();
        for e in &ex.v4 {
            if let Some(r) = self.v4.remove(e) {
                found = true;
                if r.flags & F_EXTRA != 0 {
                    extra_idx = Some(r.payload);
                }
            }
        }
        for e in &ex.v6 {
            if let Some(r) = self.v6.remove(e) {
                found = true;
                if r.flags & F_EXTRA != 0 {
                    extra_idx = Some(r.payload);
                }
            }
        }
        if !found {
            return Err(ClassifierError::NotFound {
                priority: rule.priority,
            });
        }
        if let Some(i) = extra_idx {
            self.extras[i as usize] = None;
            self.free_extras.push(i);
        }
        self.rules -= 1;
        Ok(())
    }

    #[inline(always)]
    fn extra(&self, idx: u32) -> &Extra {
        // Every F_EXTRA entry's slot is occupied for as long as the entry is indexed.
        match &self.extras[idx as usize] {
            Some(x) => x,
            None => unreachable!("predicate slot {idx} freed while still indexed"),
        }
    }

    #[inline(always)]
    fn result(&self, found: Option<(u32, u32, u8)>) -> Option<Match> {
        found.map(|(priority, payload, flags)| Match {
            priority,
            action: if flags & F_EXTRA != 0 {
                self.extra(payload).action
            } else {
                payload
            },
        })
    }

    /// First matching rule for an IPv4 key.
    #[inline]
    pub fn classify4(&self, key: &Key4, sets: &IpSetTable) -> Option<Match> {
        self.classify4_from(key, sets, 0)
    }

    /// First matching rule with priority `>= min_priority` for an IPv4 key (Calico `Pass`:
    /// continue after the current tier).
    #[inline]
    pub fn classify4_from(
        &self,
        key: &Key4,
        sets: &IpSetTable,
        min_priority: u32,
    ) -> Option<Match> {
        let k = KeyT::from(key);
        self.result(
            self.v4
                .lookup(&k, min_priority, |e, k| self.extra(e.payload).eval(k, sets)),
        )
    }

    /// Classifies a vector of IPv4 keys: `out[i]` receives the first rule with priority
    /// `>= min_priority` matching `keys[i]` (extra keys or outputs are ignored). A convenience
    /// for vector pipelines; it runs the single-key lookup per key (an interleaved,
    /// table-by-table variant measured slower once the per-table filters were in place).
    pub fn classify4_batch(
        &self,
        keys: &[Key4],
        sets: &IpSetTable,
        min_priority: u32,
        out: &mut [Option<Match>],
    ) {
        for (k, o) in keys.iter().zip(out.iter_mut()) {
            *o = self.classify4_from(k, sets, min_priority);
        }
    }

    /// First matching rule for an IPv6 key.
    #[inline]
    pub fn classify6(&self, key: &Key6, sets: &IpSetTable) -> Option<Match> {
        self.classify6_from(key, sets, 0)
    }

    /// First matching rule with priority `>= min_priority` for an IPv6 key.
    #[inline]
    pub fn classify6_from(
        &self,
        key: &Key6,
        sets: &IpSetTable,
        min_priority: u32,
    ) -> Option<Match> {
        let k = KeyT::from(key);
        self.result(
            self.v6
                .lookup(&k, min_priority, |e, k| self.extra(e.payload).eval(k, sets)),
        )
    }

    /// First matching rule for a key of either family.
    #[inline]
    pub fn classify(&self, key: &Key, sets: &IpSetTable) -> Option<Match> {
        self.classify_from(key, sets, 0)
    }

    /// First matching rule with priority `>= min_priority` for a key of either family.
    #[inline]
    pub fn classify_from(&self, key: &Key, sets: &IpSetTable, min_priority: u32) -> Option<Match> {
        match key {
            Key::V4(k) => self.classify4_from(k, sets, min_priority),
            Key::V6(k) => self.classify6_from(k, sets, min_priority),
        }
    }

    /// Heap bytes held by the lookup structures (tables, entries, predicates), by capacity.
    pub fn memory_bytes(&self) -> usize {
        self.v4.memory_bytes()
            + self.v6.memory_bytes()
            + self.extras.capacity() * core::mem::size_of::<Option<Extra>>()
            + self
                .extras
                .iter()
                .flatten()
                .map(Extra::memory_bytes)
                .sum::<usize>()
            + self.free_extras.capacity() * 4
    }

    /// Sizes of the structure.
    pub fn stats(&self) -> ClassifierStats {
        ClassifierStats {
            rules: self.rules,
            v4: self.v4.stats(),
            v6: self.v6.stats(),
            predicates: self.extras.iter().flatten().count(),
        }
    }

    /// Tuple of every IPv4 table as (src, dst, sport, dport, proto) prefix lengths and its
    /// entry count, for tuning.
    pub fn v4_tables(&self) -> Vec<([u8; 5], usize, u32)> {
        self.v4
            .table_shapes()
            .into_iter()
            .map(|(t, n, b)| ([t.src, t.dst, t.sp, t.dp, t.proto], n, b))
            .collect()
    }

    /// IPv4 tables a lookup of `key` has to consider (every table whose best priority is at
    /// or below the answer): the lookup cost in probes, for tuning and reports.
    pub fn v4_probes(&self, key: &Key4) -> usize {
        self.v4.probes(&KeyT::from(key))
    }
}

#[cfg(test)]
mod tests;

//! The engine of one address family: tuple spaces partitioned by protocol.
//!
//! Entries with an exact protocol live in a tuple space of their protocol; entries matching any
//! protocol live in a shared space. A packet searches its protocol's space and the shared one,
//! merged in best-priority order, so tables holding only, say, UDP rules cost a TCP packet
//! nothing. A lookup probes every table whose best priority is below the answer; keeping each
//! protocol's early rules out of the others' tables is what cuts that count.

use crate::addr::Addr;
use crate::entry::{Entry, F_PROTO, Tuple};
use crate::error::ClassifierError;
use crate::rule::KeyT;
use crate::space::Space;
use crate::table::Table;

/// Engine statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Tuple tables.
    pub tables: usize,
    /// Indexed entries.
    pub entries: usize,
    /// Distinct masked keys over all tables.
    pub keys: usize,
    /// Longest same-key chain.
    pub longest_chain: usize,
}

const NO_SPACE: u8 = u8::MAX;

/// All tuple spaces of one family.
#[derive(Debug, Clone)]
pub(crate) struct Engine<A> {
    /// Entries matching any protocol.
    any: Space<A>,
    /// Per-protocol spaces, indexed through `space_of`.
    spaces: Vec<Space<A>>,
    /// Protocol number to index in `spaces`, or `NO_SPACE`.
    space_of: [u8; 256],
}

impl<A: Addr> Default for Engine<A> {
    fn default() -> Self {
        Self {
            any: Space::new(),
            spaces: Vec::new(),
            space_of: [NO_SPACE; 256],
        }
    }
}

impl<A: Addr> Engine<A> {
    fn space_mut(&mut self, e: &Entry<A>) -> &mut Space<A> {
        if e.flags & F_PROTO == 0 {
            return &mut self.any;
        }
        let p = usize::from(e.proto);
        if self.space_of[p] == NO_SPACE {
            // At most 255 protocols get their own space; the 256th shares the any-space, which
            // still verifies the protocol per entry.
            if self.spaces.len() >= usize::from(NO_SPACE) {
                return &mut self.any;
            }
            self.space_of[p] = self.spaces.len() as u8;
            self.spaces.push(Space::new());
        }
        &mut self.spaces[usize::from(self.space_of[p])]
    }

    /// Indexes one entry.
    pub fn insert(&mut self, e: Entry<A>) -> Result<(), ClassifierError> {
        self.space_mut(&e).insert(e)
    }

    /// Removes one entry (equal to one inserted earlier); returns the removed entry.
    pub fn remove(&mut self, e: &Entry<A>) -> Option<Entry<A>> {
        let own = match self.space_of[usize::from(e.proto)] {
            i if e.flags & F_PROTO != 0 && i != NO_SPACE => Some(usize::from(i)),
            _ => None,
        };
        if let Some(r) = own.and_then(|i| self.spaces[i].remove(e)) {
            return Some(r);
        }
        // Wildcard-protocol entries, and those of a protocol beyond the 255th, live in `any`.
        self.any.remove(e)
    }

    /// Makes chains contiguous and drops spare capacity (after a bulk build).
    pub fn compact(&mut self) {
        self.any.compact();
        self.spaces.iter_mut().for_each(Space::compact);
        self.spaces.shrink_to_fit();
    }

    /// The first entry for `k` with priority in `min_prio..`, as (priority, payload, flags).
    ///
    /// Walks the packet's protocol space and the any-protocol space merged in best-priority
    /// order (ties to the any-space), and stops at the first table that cannot beat the match
    /// in hand. The merge is a walk over the protocol's tables that first drains the
    /// any-space tables ranked before each one: the any-space is usually short, so a step
    /// costs one comparison against the next any-space table's best, and the loop keeps
    /// few enough values live to stay in registers.
    #[inline]
    pub fn lookup<F>(&self, k: &KeyT<A>, min_prio: u32, mut check: F) -> Option<(u32, u32, u8)>
    where
        F: FnMut(&Entry<A>, &KeyT<A>) -> bool,
    {
        let pw = k.port_word();
        let mut best = u32::MAX;
        let mut found = None;
        // A function rather than a closure, so that it is inlined at each call.
        #[inline(always)]
        fn probe<A: Addr, F>(
            table: &Table<A>,
            k: &KeyT<A>,
            pw: u64,
            min_prio: u32,
            best: &mut u32,
            found: &mut Option<(u32, u32, u8)>,
            check: &mut F,
        ) where
            F: FnMut(&Entry<A>, &KeyT<A>) -> bool,
        {
            if let Some(e) = table.lookup(k, pw, min_prio, *best, check) {
                *best = e.prio;
                *found = Some((e.prio, e.payload, e.flags));
            }
        }
        let own = match self.space_of[usize::from(k.proto)] {
            NO_SPACE => &[][..],
            sid => &self.spaces[usize::from(sid)].tables[..],
        };
        let any = &self.any.tables[..];
        let any_best = |i: usize| any.get(i).map_or(u32::MAX, |t| t.best);
        // The next any-space table and its best priority (`u32::MAX` once exhausted: no
        // table holds that best, so the stop test below always fires first).
        let (mut ai, mut next_any) = (0, any_best(0));
        'merge: {
            for table in own {
                while next_any <= table.best {
                    if next_any >= best {
                        break 'merge;
                    }
                    probe(&any[ai], k, pw, min_prio, &mut best, &mut found, &mut check);
                    ai += 1;
                    next_any = any_best(ai);
                }
                if table.best >= best {
                    break 'merge;
                }
                probe(table, k, pw, min_prio, &mut best, &mut found, &mut check);
            }
            while next_any < best {
                probe(&any[ai], k, pw, min_prio, &mut best, &mut found, &mut check);
                ai += 1;
                next_any = any_best(ai);
            }
        }
        found
    }

    /// Tables a lookup of `k` probes (a cost measure for tuning): every table whose best
    /// priority is at or below the answer.
    pub fn probes(&self, k: &KeyT<A>) -> usize {
        let found = self.lookup(k, 0, |_, _| true).map_or(u32::MAX, |f| f.0);
        let other = match self.space_of[usize::from(k.proto)] {
            NO_SPACE => None,
            i => Some(&self.spaces[usize::from(i)]),
        };
        core::iter::once(&self.any)
            .chain(other)
            .map(|s| s.tables.iter().take_while(|t| t.best <= found).count())
            .sum()
    }

    pub fn memory_bytes(&self) -> usize {
        self.any.memory_bytes()
            + self.spaces.iter().map(Space::memory_bytes).sum::<usize>()
            + self.spaces.capacity() * core::mem::size_of::<Space<A>>()
    }

    pub fn stats(&self) -> EngineStats {
        let mut s = EngineStats::default();
        self.any.add_stats(&mut s);
        self.spaces.iter().for_each(|sp| sp.add_stats(&mut s));
        s
    }

    /// (tuple, entries, best priority) of every table.
    pub fn table_shapes(&self) -> Vec<(Tuple, usize, u32)> {
        core::iter::once(&self.any)
            .chain(&self.spaces)
            .flat_map(Space::table_shapes)
            .collect()
    }
}

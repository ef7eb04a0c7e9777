//! Routing information bases: Adj-RIB-In and Loc-RIB in one table (RFC 4271 §3.2).
//!
//! Every prefix maps to the list of paths known for it, tagged by source (a peer or the
//! local origin) and ADD-PATH path id. Those tagged lists *are* the Adj-RIBs-In (there is no
//! import policy beyond the RFC's loop checks, so pre- and post-policy coincide); the path at
//! index 0 is the Loc-RIB's best route. Keeping one table instead of one per peer plus a
//! Loc-RIB halves memory per route: the attributes are shared (`Arc`) by every prefix of the
//! UPDATE that carried them, so a route costs the key, one path slot and a little hash-table
//! overhead. Per-peer operations (session down, stale marking) scan the table; they happen
//! on session events, not per UPDATE.

pub mod best;
mod paths;

use crate::route::{RouteAttrs, SourceId};
use best::{SourceInfo, compare};
use paths::PathList;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use tortie_bgp_wire::{Family, Prefix};

#[cfg(test)]
mod tests;

/// One path for a prefix.
#[derive(Debug, Clone)]
pub struct Path {
    /// Where it came from.
    pub source: SourceId,
    /// ADD-PATH path id (0 without ADD-PATH).
    pub path_id: u32,
    /// Attributes and next hop, shared with the other prefixes of the same UPDATE.
    pub attrs: Arc<RouteAttrs>,
    /// Kept across a peer's restart (RFC 4724) or an enhanced route refresh (RFC 7313) and
    /// not yet re-announced.
    pub stale: bool,
}

impl Path {
    fn same_route(&self, other: &Path) -> bool {
        self.source == other.source
            && self.path_id == other.path_id
            && Arc::ptr_eq(&self.attrs, &other.attrs)
            && self.stale == other.stale
    }
}

/// How the best route of a prefix changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BestChange {
    /// There was none; now there is one.
    Added,
    /// A different path or different attributes won.
    Changed,
    /// No path is left.
    Withdrawn,
}

/// The combined Adj-RIBs-In / Loc-RIB.
#[derive(Debug, Default)]
pub struct Rib {
    dests: HashMap<Prefix, PathList>,
    /// Per-source information used by best-path selection (index = source id).
    sources: Vec<SourceInfo>,
    /// Routes held per source (index = source id).
    counts: Vec<usize>,
}

impl Rib {
    /// An empty RIB knowing `sources` (index 0 is the local origin).
    pub fn new(sources: Vec<SourceInfo>) -> Self {
        let n = sources.len();
        Rib {
            dests: HashMap::new(),
            sources,
            counts: vec![0; n],
        }
    }

    /// Updates what best-path selection knows about a source (e.g. a new router id after the
    /// session came up). Does not re-run selection: the source's routes are (re)learned next.
    pub fn set_source(&mut self, id: SourceId, info: SourceInfo) {
        let i = id as usize;
        if i >= self.sources.len() {
            self.sources.resize(i + 1, SourceInfo::default());
            self.counts.resize(i + 1, 0);
        }
        self.sources[i] = info;
    }

    /// Number of prefixes with at least one path.
    pub fn len(&self) -> usize {
        self.dests.len()
    }

    /// True when the RIB has no routes.
    pub fn is_empty(&self) -> bool {
        self.dests.is_empty()
    }

    /// Routes held from `source`.
    pub fn count(&self, source: SourceId) -> usize {
        self.counts.get(source as usize).copied().unwrap_or(0)
    }

    /// Reserves room for `n` more prefixes.
    pub fn reserve(&mut self, n: usize) {
        self.dests.reserve(n);
    }

    /// Approximate heap bytes of the table itself: hash buckets (with their control bytes)
    /// and per-prefix path vectors with allocator overhead (16 bytes per allocation).
    /// Attributes are shared between routes and not counted.
    pub fn approx_heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(Prefix, PathList)>() + 1;
        let paths: usize = self.dests.values().map(PathList::heap_bytes).sum();
        self.dests.capacity() * entry + paths
    }

    /// The best path for a prefix.
    pub fn best(&self, prefix: &Prefix) -> Option<&Path> {
        self.dests.get(prefix).and_then(|v| v.first())
    }

    /// All paths for a prefix, best first.
    pub fn paths(&self, prefix: &Prefix) -> &[Path] {
        self.dests.get(prefix).map_or(&[], |v| &v[..])
    }

    /// Every prefix with its best path.
    pub fn iter_best(&self) -> impl Iterator<Item = (&Prefix, &Path)> {
        self.dests
            .iter()
            .filter_map(|(p, v)| v.first().map(|b| (p, b)))
    }

    /// Adds or replaces the path `(source, path_id)` for `prefix`.
    pub fn update(&mut self, prefix: Prefix, path: Path) -> Option<BestChange> {
        let paths = self.dests.entry(prefix).or_default();
        let before = paths.first().cloned();
        match paths
            .iter_mut()
            .find(|p| p.source == path.source && p.path_id == path.path_id)
        {
            Some(slot) => *slot = path,
            None => {
                if let Some(c) = self.counts.get_mut(path.source as usize) {
                    *c += 1;
                }
                paths.push(path);
            }
        }
        select(paths, &self.sources);
        diff(before.as_ref(), paths.first())
    }

    /// Removes the path `(source, path_id)` for `prefix`.
    pub fn withdraw(
        &mut self,
        prefix: &Prefix,
        source: SourceId,
        path_id: u32,
    ) -> Option<BestChange> {
        let paths = self.dests.get_mut(prefix)?;
        let i = paths
            .iter()
            .position(|p| p.source == source && p.path_id == path_id)?;
        let before = paths.first().cloned();
        paths.remove_at(i);
        if let Some(c) = self.counts.get_mut(source as usize) {
            *c = c.saturating_sub(1);
        }
        select(paths, &self.sources);
        let change = diff(before.as_ref(), paths.first());
        if paths.is_empty() {
            self.dests.remove(prefix);
        }
        change
    }

    /// Removes the paths of `source` matching `pred` (all of them, the stale ones, one family…)
    /// and reports each prefix whose best route changed.
    pub fn remove_where(
        &mut self,
        source: SourceId,
        mut pred: impl FnMut(&Prefix, &Path) -> bool,
        changed: &mut Vec<(Prefix, BestChange)>,
    ) {
        if self.count(source) == 0 {
            return;
        }
        let sources = &self.sources;
        let mut removed = 0usize;
        self.dests.retain(|prefix, paths| {
            let before_len = paths.len();
            let before = paths.first().cloned();
            paths.retain(|p| !(p.source == source && pred(prefix, p)));
            if paths.len() != before_len {
                removed += before_len - paths.len();
                select(paths, sources);
                if let Some(c) = diff(before.as_ref(), paths.first()) {
                    changed.push((*prefix, c));
                }
            }
            !paths.is_empty()
        });
        if let Some(c) = self.counts.get_mut(source as usize) {
            *c = c.saturating_sub(removed);
        }
    }

    /// Marks every path of `source` in `family` stale (RFC 4724 §4.2, RFC 7313 §4).
    /// Stale paths lose to fresh ones, so best routes may change.
    pub fn mark_stale(
        &mut self,
        source: SourceId,
        family: Family,
        changed: &mut Vec<(Prefix, BestChange)>,
    ) {
        if self.count(source) == 0 {
            return;
        }
        let sources = &self.sources;
        for (prefix, paths) in self.dests.iter_mut().filter(|(p, _)| p.family() == family) {
            let before = paths.first().cloned();
            let mut touched = false;
            for p in paths.iter_mut().filter(|p| p.source == source && !p.stale) {
                p.stale = true;
                touched = true;
            }
            if touched {
                select(paths, sources);
                if let Some(c) = diff(before.as_ref(), paths.first()) {
                    changed.push((*prefix, c));
                }
            }
        }
    }
}

/// Moves the best path to index 0 (RFC 4271 §9.1.2).
fn select(paths: &mut [Path], sources: &[SourceInfo]) {
    if paths.len() < 2 {
        return;
    }
    let mut best = 0;
    for i in 1..paths.len() {
        if compare(&paths[i], &paths[best], sources) == Ordering::Less {
            best = i;
        }
    }
    paths.swap(0, best);
}

fn diff(before: Option<&Path>, after: Option<&Path>) -> Option<BestChange> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(BestChange::Added),
        (Some(_), None) => Some(BestChange::Withdrawn),
        (Some(a), Some(b)) if a.same_route(b) => None,
        (Some(a), Some(b))
            if a.source == b.source && a.path_id == b.path_id && a.attrs == b.attrs =>
        {
            // Only the stale flag or the Arc changed: same forwarding, no event.
            None
        }
        _ => Some(BestChange::Changed),
    }
}

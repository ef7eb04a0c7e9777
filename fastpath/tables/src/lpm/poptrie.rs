//! The immutable lookup structure: a Poptrie (Asai & Ohara, SIGCOMM 2015).
//!
//! The top `DIRECT_BITS` bits of the address index a direct-pointing array whose entries are
//! either a next-hop value or a node. A node resolves 6 more bits with two 64-bit bitmaps:
//! `vector` marks which of the 64 positions continue into a child node, `leafvec` marks where
//! a new run of equal leaf values starts. Children are stored contiguously from `base1` and
//! leaves from `base0`, so a position is turned into an array index with one popcount:
//!
//! ```text
//! v = next 6 bits of the address
//! if vector bit v: node = nodes[base1 + popcount(vector & bits 0..=v) - 1]     (descend)
//! else:            leaf = leaves[base0 + popcount(leafvec & bits 0..=v) - 1]   (done)
//! ```
//!
//! Runs of equal leaves collapse to one stored value ("leaf compression"), which keeps a
//! 100 000-route IPv4 table to a few megabytes. Chains of single-child nodes collapse too
//! ("path compression"): a node may first skip up to 10 strides that every route below it
//! shares, comparing those bits at once and answering `skip_miss` when the address leaves
//! the path. An IPv4 lookup touches the direct array and at most three nodes
//! (18 + 6 + 6 + 6 bits); IPv6 walks are cut by the skips.

use std::marker::PhantomData;

use super::prefix::Address;

/// Direct-array entry flag: the low 31 bits are a node index.
const NODE: u32 = 1 << 31;
/// Stored value meaning "no route".
pub(crate) const NO_ROUTE: u32 = NODE - 1;
/// Largest next-hop value a table can hold.
pub const MAX_VALUE: u32 = NO_ROUTE - 1;

const STRIDE: u32 = 6;

#[derive(Clone, Copy, Default, Debug)]
struct Node {
    vector: u64,
    leafvec: u64,
    /// Path compression: the `6 × skip` address bits every route below this node shares.
    skip_bits: u64,
    base0: u32,
    base1: u32,
    /// The value for addresses that leave the compressed path.
    skip_miss: u32,
    /// Strides skipped before this node's own 6 bits (0 = none, at most `MAX_SKIP`).
    skip: u8,
}

/// Most strides one node may skip (6 × 10 = 60 bits fit `skip_bits`).
const MAX_SKIP: u32 = 10;

/// A route for the builder: left-aligned prefix bits, length, value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Route {
    pub(crate) bits: u128,
    pub(crate) len: u8,
    pub(crate) value: u32,
}

/// An immutable longest-prefix-match table mapping prefixes to `u32` next-hop values.
///
/// Built by [`super::LpmBuilder::build`]; share it read-only between workers (it is `Sync`)
/// and replace it as a whole when routes change.
#[derive(Clone)]
pub struct Lpm<A: Address> {
    direct: Vec<u32>,
    nodes: Vec<Node>,
    leaves: Vec<u32>,
    routes: usize,
    _family: PhantomData<A>,
}

#[inline]
fn upto(v: u32) -> u64 {
    u64::MAX >> (63 - v)
}

#[inline]
fn decode(raw: u32) -> Option<u32> {
    (raw != NO_ROUTE).then_some(raw)
}

/// Position of a left-aligned address within the `width`-bit chunk starting at `offset`.
#[inline]
fn pos(bits: u128, offset: u32, width: u32) -> usize {
    // Shift in two steps so `offset == 128` (a chunk past the end) yields zero.
    ((bits << (offset / 2) << (offset - offset / 2)) >> (128 - width)) as usize
}

impl<A: Address> Lpm<A> {
    /// Longest-prefix match: the value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: A) -> Option<u32> {
        decode(self.lookup_raw(addr))
    }

    #[inline]
    fn lookup_raw(&self, addr: A) -> u32 {
        let entry = self.direct[addr.direct_index()];
        if entry & NODE == 0 {
            return entry;
        }
        self.walk((entry & !NODE) as usize, addr)
    }

    #[inline]
    fn walk(&self, mut idx: usize, addr: A) -> u32 {
        let mut offset = u32::from(A::DIRECT_BITS);
        loop {
            let n = &self.nodes[idx];
            if n.skip != 0 {
                let width = STRIDE * u32::from(n.skip);
                if addr.bits(offset, width) != n.skip_bits {
                    return n.skip_miss;
                }
                offset += width;
            }
            let v = addr.chunk(offset);
            let mask = upto(v);
            if (n.vector >> v) & 1 != 0 {
                idx = n.base1 as usize + (n.vector & mask).count_ones() as usize - 1;
                offset += STRIDE;
            } else {
                return self.leaves
                    [n.base0 as usize + (n.leafvec & mask).count_ones() as usize - 1];
            }
        }
    }

    /// Look up a batch: `out[i]` receives the result for `addrs[i]` (the first
    /// `min(addrs.len(), out.len())` are processed). Groups of 16 addresses walk the trie in
    /// lockstep, one node per lane per round, so the cache misses of the 16 walks overlap
    /// instead of queueing behind each other (most useful for IPv6, whose walks are long).
    pub fn lookup_batch(&self, addrs: &[A], out: &mut [Option<u32>]) {
        const GROUP: usize = 16;
        let n = addrs.len().min(out.len());
        let mut start = 0;
        while start < n {
            let end = (start + GROUP).min(n);
            let lanes = &addrs[start..end];
            let results = &mut out[start..end];
            // Per lane: the node to visit next (None once resolved) and its bit offset.
            let mut next = [None::<usize>; GROUP];
            let mut offsets = [u32::from(A::DIRECT_BITS); GROUP];
            for ((a, r), nx) in lanes.iter().zip(results.iter_mut()).zip(next.iter_mut()) {
                let e = self.direct[a.direct_index()];
                if e & NODE == 0 {
                    *r = decode(e);
                } else {
                    *nx = Some((e & !NODE) as usize);
                }
            }
            let mut active = true;
            while active {
                active = false;
                let lanes = lanes
                    .iter()
                    .zip(results.iter_mut())
                    .zip(next.iter_mut())
                    .zip(offsets.iter_mut());
                for (((a, r), nx), offset) in lanes {
                    let Some(idx) = *nx else { continue };
                    let node = &self.nodes[idx];
                    if node.skip != 0 {
                        let width = STRIDE * u32::from(node.skip);
                        if a.bits(*offset, width) != node.skip_bits {
                            *r = decode(node.skip_miss);
                            *nx = None;
                            continue;
                        }
                        *offset += width;
                    }
                    let v = a.chunk(*offset);
                    let mask = upto(v);
                    if (node.vector >> v) & 1 != 0 {
                        *nx = Some(
                            node.base1 as usize + (node.vector & mask).count_ones() as usize - 1,
                        );
                        *offset += STRIDE;
                        active = true;
                    } else {
                        let leaf =
                            node.base0 as usize + (node.leafvec & mask).count_ones() as usize - 1;
                        *r = decode(self.leaves[leaf]);
                        *nx = None;
                    }
                }
            }
            start = end;
        }
    }

    /// Number of routes the table was built from.
    pub fn route_count(&self) -> usize {
        self.routes
    }

    /// Bytes held by the lookup structure (direct array, nodes, leaves).
    pub fn memory_bytes(&self) -> usize {
        self.direct.capacity() * 4
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.leaves.capacity() * 4
    }

    /// Number of trie nodes (for memory reports).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Build from routes sorted by (bits, len) with unique (bits, len) and values <= MAX_VALUE.
    pub(crate) fn from_sorted(routes: &[Route]) -> Lpm<A> {
        let direct_bits = u32::from(A::DIRECT_BITS);
        let mut t = Lpm {
            direct: vec![NO_ROUTE; 1 << direct_bits],
            nodes: Vec::new(),
            leaves: Vec::new(),
            routes: routes.len(),
            _family: PhantomData,
        };
        // Paint the short routes, shorter first so longer ones overwrite them.
        let mut short: Vec<&Route> = routes
            .iter()
            .filter(|r| u32::from(r.len) <= direct_bits)
            .collect();
        short.sort_by_key(|r| r.len);
        for r in short {
            let start = pos(r.bits, 0, direct_bits);
            let span = 1usize << (direct_bits - u32::from(r.len));
            t.direct[start..start + span].fill(r.value);
        }
        // Group the long routes by direct index; each group becomes a node.
        let long: Vec<Route> = routes
            .iter()
            .filter(|r| u32::from(r.len) > direct_bits)
            .copied()
            .collect();
        let mut scratch = Vec::new();
        let mut i = 0;
        while i < long.len() {
            let d = pos(long[i].bits, 0, direct_bits);
            let mut j = i + 1;
            while j < long.len() && pos(long[j].bits, 0, direct_bits) == d {
                j += 1;
            }
            let inherited = t.direct[d];
            let idx = t.nodes.len();
            t.nodes.push(Node::default());
            t.fill_node(idx, &long[i..j], direct_bits, inherited, &mut scratch);
            t.direct[d] = NODE | idx as u32;
            i = j;
        }
        t.nodes.shrink_to_fit();
        t.leaves.shrink_to_fit();
        t
    }

    /// Fill node `idx`, which resolves bits `depth..depth + 6` for `routes` (all longer than
    /// `depth`, sorted, inside this node's subtree); `inherited` is the value of the longest
    /// route shorter than or equal to `depth` covering the subtree.
    fn fill_node(
        &mut self,
        idx: usize,
        routes: &[Route],
        depth: u32,
        inherited: u32,
        scratch: &mut Vec<Route>,
    ) {
        // Path compression: every route lies under one address path for `skip` whole strides
        // and none ends within them, so those strides need no node of their own. Routes are
        // sorted, so the first and last share whatever all of them share.
        let (first, last) = (routes[0].bits, routes[routes.len() - 1].bits);
        let common = (first ^ last).leading_zeros().saturating_sub(depth);
        let min_len = routes
            .iter()
            .map(|r| u32::from(r.len))
            .min()
            .unwrap_or(depth + 1);
        let skip = (common / STRIDE)
            .min((min_len - 1 - depth) / STRIDE)
            .min(MAX_SKIP);
        let (skip_bits, depth) = if skip == 0 {
            (0, depth)
        } else {
            let width = STRIDE * skip;
            (pos(first, depth, width) as u64, depth + width)
        };
        let mut vals = [inherited; 64];
        let base = scratch.len();
        scratch.extend(routes.iter().filter(|r| u32::from(r.len) <= depth + STRIDE));
        scratch[base..].sort_by_key(|r| r.len);
        for r in &scratch[base..] {
            let start = pos(r.bits, depth, STRIDE);
            let span = 1usize << (depth + STRIDE - u32::from(r.len));
            vals[start..start + span].fill(r.value);
        }
        scratch.truncate(base);

        // Children: positions holding routes longer than this stride. Routes are sorted by
        // address, so each position's long routes form one contiguous run.
        let mut groups: [(u32, u32); 64] = [(0, 0); 64];
        let mut vector = 0u64;
        for (k, r) in routes.iter().enumerate() {
            if u32::from(r.len) > depth + STRIDE {
                let p = pos(r.bits, depth, STRIDE);
                if vector & (1 << p) == 0 {
                    vector |= 1 << p;
                    groups[p].0 = k as u32;
                }
                groups[p].1 = k as u32 + 1;
            }
        }

        let base0 = self.leaves.len() as u32;
        let mut leafvec = 0u64;
        let mut last = None;
        for (p, &v) in vals.iter().enumerate() {
            if vector & (1 << p) != 0 {
                continue;
            }
            if last != Some(v) {
                leafvec |= 1 << p;
                self.leaves.push(v);
                last = Some(v);
            }
        }
        let base1 = self.nodes.len() as u32;
        let children = vector.count_ones() as usize;
        self.nodes
            .resize(self.nodes.len() + children, Node::default());
        self.nodes[idx] = Node {
            vector,
            leafvec,
            skip_bits,
            base0,
            base1,
            skip_miss: inherited,
            skip: skip as u8,
        };

        let mut child = base1 as usize;
        for (p, &(start, end)) in groups.iter().enumerate() {
            if vector & (1 << p) == 0 {
                continue;
            }
            let sub = &routes[start as usize..end as usize];
            // The group may begin with routes that end inside this stride: skip them.
            let first_long = sub
                .iter()
                .position(|r| u32::from(r.len) > depth + STRIDE)
                .unwrap_or(sub.len());
            self.fill_node(child, &sub[first_long..], depth + STRIDE, vals[p], scratch);
            child += 1;
        }
    }
}

impl<A: Address> std::fmt::Debug for Lpm<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpm")
            .field("routes", &self.routes)
            .field("nodes", &self.nodes.len())
            .field("leaves", &self.leaves.len())
            .field("bytes", &self.memory_bytes())
            .finish()
    }
}

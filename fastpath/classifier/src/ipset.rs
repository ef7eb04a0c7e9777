//! IP sets: the compiled form of Calico selectors and `GlobalNetworkSet`s.
//!
//! Rules reference sets by [`SetId`]; membership is tested only on the rare path (after a
//! candidate rule's indexed fields already matched), so set contents can change without
//! touching any classifier. Host members (/32, /128) live in hash sets; shorter prefixes are
//! flattened into sorted, disjoint address ranges searched by binary search, which answers
//! "is the address covered by any prefix" in O(log n) without allocation.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use ipnet::IpNet;

use crate::addr::Addr;
use crate::rule::SetId;

/// A small multiplicative hasher for integer keys (addresses and set ids): the std SipHash is
/// several times slower and its DoS resistance buys nothing for keys the control plane chose.
#[derive(Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        crate::addr::fold_mul(self.0, 0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
}

pub(crate) type IntBuild = BuildHasherDefault<IntHasher>;

/// Prefixes of one family, with a lookup view of merged ranges.
#[derive(Debug, Clone, Default)]
struct PrefixRanges<A: Addr> {
    /// The members as inserted (network address, length): the source of truth for updates.
    members: BTreeSet<(A, u8)>,
    /// Sorted, disjoint, non-adjacent-merged `[lo, hi]` ranges covering every member.
    ranges: Vec<(A, A)>,
}

impl<A: Addr> PrefixRanges<A> {
    fn rebuild(&mut self) {
        self.ranges.clear();
        for &(addr, len) in &self.members {
            let (lo, hi) = A::prefix_bounds(addr, len);
            match self.ranges.last_mut() {
                // Prefixes nest or are disjoint; sorted by start, a later one either lies inside
                // the last range or starts after it.
                Some(last) if lo <= last.1 => {
                    if hi > last.1 {
                        last.1 = hi;
                    }
                }
                _ => self.ranges.push((lo, hi)),
            }
        }
    }

    #[inline]
    fn contains(&self, addr: A) -> bool {
        // Index of the first range starting after `addr`; the one before it is the candidate.
        let idx = self.ranges.partition_point(|&(lo, _)| lo <= addr);
        idx > 0 && addr <= self.ranges[idx - 1].1
    }

    fn bytes(&self) -> usize {
        self.ranges.capacity() * core::mem::size_of::<(A, A)>()
            + self.members.len() * (core::mem::size_of::<(A, u8)>() + 8)
    }
}

/// One IP set: any mix of IPv4/IPv6 hosts and prefixes.
#[derive(Debug, Clone, Default)]
pub struct IpSet {
    hosts4: HashSet<u32, IntBuild>,
    hosts6: HashSet<u128, IntBuild>,
    prefixes4: PrefixRanges<u32>,
    prefixes6: PrefixRanges<u128>,
}

impl IpSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding `members`.
    pub fn from_nets(members: impl IntoIterator<Item = IpNet>) -> Self {
        let mut set = Self::new();
        for net in members {
            set.insert_no_rebuild(net);
        }
        set.prefixes4.rebuild();
        set.prefixes6.rebuild();
        set
    }

    fn insert_no_rebuild(&mut self, net: IpNet) -> bool {
        let net = net.trunc();
        match net {
            IpNet::V4(n) if n.prefix_len() == 32 => self.hosts4.insert(n.addr().into()),
            IpNet::V6(n) if n.prefix_len() == 128 => self.hosts6.insert(n.addr().into()),
            IpNet::V4(n) => self
                .prefixes4
                .members
                .insert((n.network().into(), n.prefix_len())),
            IpNet::V6(n) => self
                .prefixes6
                .members
                .insert((n.network().into(), n.prefix_len())),
        }
    }

    /// Adds a member; returns whether it was new. Adding a prefix costs O(prefixes) to refresh
    /// the range view; adding a host is O(1).
    pub fn insert(&mut self, net: IpNet) -> bool {
        let added = self.insert_no_rebuild(net);
        if added {
            self.rebuild_for(&net);
        }
        added
    }

    /// Removes a member (exactly as it was added, up to host bits); returns whether it was there.
    pub fn remove(&mut self, net: IpNet) -> bool {
        let net = net.trunc();
        let removed = match net {
            IpNet::V4(n) if n.prefix_len() == 32 => self.hosts4.remove(&n.addr().into()),
            IpNet::V6(n) if n.prefix_len() == 128 => self.hosts6.remove(&n.addr().into()),
            IpNet::V4(n) => self
                .prefixes4
                .members
                .remove(&(n.network().into(), n.prefix_len())),
            IpNet::V6(n) => self
                .prefixes6
                .members
                .remove(&(n.network().into(), n.prefix_len())),
        };
        if removed {
            self.rebuild_for(&net);
        }
        removed
    }

    fn rebuild_for(&mut self, net: &IpNet) {
        match net {
            IpNet::V4(n) if n.prefix_len() < 32 => self.prefixes4.rebuild(),
            IpNet::V6(n) if n.prefix_len() < 128 => self.prefixes6.rebuild(),
            _ => {}
        }
    }

    /// Number of members (hosts and prefixes).
    pub fn len(&self) -> usize {
        self.hosts4.len()
            + self.hosts6.len()
            + self.prefixes4.members.len()
            + self.prefixes6.members.len()
    }

    /// Whether the set has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the IPv4 address is covered by a member.
    #[inline]
    pub fn contains_v4(&self, addr: u32) -> bool {
        self.hosts4.contains(&addr) || self.prefixes4.contains(addr)
    }

    /// Whether the IPv6 address is covered by a member.
    #[inline]
    pub fn contains_v6(&self, addr: u128) -> bool {
        self.hosts6.contains(&addr) || self.prefixes6.contains(addr)
    }

    /// Approximate heap bytes held by the set.
    pub fn memory_bytes(&self) -> usize {
        // A hashbrown slot is the key plus one control byte.
        self.hosts4.capacity() * 5
            + self.hosts6.capacity() * 17
            + self.prefixes4.bytes()
            + self.prefixes6.bytes()
    }
}

/// Family-generic membership test used by the rule predicates.
pub(crate) trait SetMember: Addr {
    fn member_of(set: &IpSet, addr: Self) -> bool;
}

impl SetMember for u32 {
    #[inline]
    fn member_of(set: &IpSet, addr: Self) -> bool {
        set.contains_v4(addr)
    }
}

impl SetMember for u128 {
    #[inline]
    fn member_of(set: &IpSet, addr: Self) -> bool {
        set.contains_v6(addr)
    }
}

/// The sets rules refer to, by id. Shared by every classifier of a generation (one set, such
/// as "all pods with label app=db", is typically referenced by many endpoints' programs).
#[derive(Debug, Clone, Default)]
pub struct IpSetTable {
    sets: HashMap<SetId, IpSet, IntBuild>,
}

impl IpSetTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers or replaces the set `id`.
    pub fn upsert(&mut self, id: SetId, set: IpSet) {
        self.sets.insert(id, set);
    }

    /// Removes the set `id`; rules referring to it then see an empty set.
    pub fn remove(&mut self, id: SetId) -> Option<IpSet> {
        self.sets.remove(&id)
    }

    /// The set `id`, if registered.
    pub fn get(&self, id: SetId) -> Option<&IpSet> {
        self.sets.get(&id)
    }

    /// The set `id` for in-place member updates, if registered.
    pub fn get_mut(&mut self, id: SetId) -> Option<&mut IpSet> {
        self.sets.get_mut(&id)
    }

    /// Whether `addr` is a member of set `id` (an unknown set has no members).
    #[inline]
    pub(crate) fn contains<A: SetMember>(&self, id: SetId, addr: A) -> bool {
        self.sets.get(&id).is_some_and(|s| A::member_of(s, addr))
    }

    /// Approximate heap bytes held by all sets.
    pub fn memory_bytes(&self) -> usize {
        self.sets.capacity() * (core::mem::size_of::<(SetId, IpSet)>() + 1)
            + self.sets.values().map(IpSet::memory_bytes).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn hosts_and_prefixes_are_members() {
        let set = IpSet::from_nets([
            net("10.0.0.1/32"),
            net("192.168.0.0/16"),
            net("2001:db8::/48"),
        ]);
        assert!(set.contains_v4(0x0A00_0001));
        assert!(!set.contains_v4(0x0A00_0002));
        assert!(set.contains_v4(0xC0A8_1234));
        assert!(!set.contains_v4(0xC0A9_0000));
        assert!(set.contains_v6(0x2001_0db8_0000_0001_u128 << 64));
        assert!(!set.contains_v6(0x2001_0db8_0001_0000_u128 << 64));
    }

    #[test]
    fn nested_prefixes_merge_and_unmerge() {
        let mut set = IpSet::from_nets([net("10.0.0.0/8"), net("10.1.0.0/16")]);
        assert!(set.contains_v4(0x0A02_0000));
        assert!(set.remove(net("10.0.0.0/8")));
        assert!(!set.contains_v4(0x0A02_0000));
        assert!(set.contains_v4(0x0A01_0203));
        assert!(set.insert(net("11.0.0.0/8")));
        assert!(set.contains_v4(0x0B00_0000));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn host_bits_are_ignored_for_prefixes() {
        let mut set = IpSet::new();
        assert!(set.insert(net("10.1.2.3/8")));
        assert!(set.contains_v4(0x0AFF_FFFF));
        assert!(set.remove(net("10.9.9.9/8")));
        assert!(set.is_empty());
    }

    #[test]
    fn unknown_sets_have_no_members() {
        let mut table = IpSetTable::new();
        assert!(!table.contains(SetId(1), 0u32));
        table.upsert(SetId(1), IpSet::from_nets([net("0.0.0.0/0")]));
        assert!(table.contains(SetId(1), 0xFFFF_FFFFu32));
        assert!(!table.contains(SetId(1), 1u128));
    }
}

//! IP sets and port sets for policy matching and NAT decisions.
//!
//! An [`IpSet`] (Calico's IP sets: the addresses of the endpoints a selector matches, plus
//! CIDRs from rules or `NetworkSet`s) keeps host addresses in a hash set and shorter prefixes
//! in LPM tables, so membership costs one hash probe and, only if the set has prefixes of that
//! family, one trie walk. A [`PortSet`] is a 65 536-bit bitmap: one load and a mask.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashSet;

use crate::lpm::{
    Ipv4Lpm, Ipv4LpmBuilder, Ipv4Prefix, Ipv6Lpm, Ipv6LpmBuilder, Ipv6Prefix, LpmError,
};

/// Builder of an [`IpSet`] (control side; allocation allowed).
#[derive(Clone, Debug, Default)]
pub struct IpSetBuilder {
    v4_hosts: HashSet<Ipv4Addr>,
    v6_hosts: HashSet<Ipv6Addr>,
    v4_nets: Ipv4LpmBuilder,
    v6_nets: Ipv6LpmBuilder,
}

impl IpSetBuilder {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an address.
    pub fn add_addr(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => {
                self.v4_hosts.insert(a);
            }
            IpAddr::V6(a) => {
                self.v6_hosts.insert(a);
            }
        }
    }

    /// Remove an address added with [`IpSetBuilder::add_addr`]; returns whether it was there.
    pub fn remove_addr(&mut self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.v4_hosts.remove(&a),
            IpAddr::V6(a) => self.v6_hosts.remove(&a),
        }
    }

    /// Add an IPv4 prefix (a /32 goes to the host set).
    pub fn add_v4_prefix(&mut self, p: Ipv4Prefix) -> Result<(), LpmError> {
        if p.prefix_len() == 32 {
            self.v4_hosts.insert(p.addr());
            return Ok(());
        }
        self.v4_nets.insert(p, 0).map(|_| ())
    }

    /// Add an IPv6 prefix (a /128 goes to the host set).
    pub fn add_v6_prefix(&mut self, p: Ipv6Prefix) -> Result<(), LpmError> {
        if p.prefix_len() == 128 {
            self.v6_hosts.insert(p.addr());
            return Ok(());
        }
        self.v6_nets.insert(p, 0).map(|_| ())
    }

    /// Add `addr/len` of either family (parsed form, e.g. from a rule's `nets`).
    pub fn add_cidr(&mut self, cidr: &str) -> Result<(), LpmError> {
        if cidr.contains(':') {
            self.add_v6_prefix(cidr.parse()?)
        } else {
            self.add_v4_prefix(cidr.parse()?)
        }
    }

    /// Remove a prefix added with the `add_*_prefix` methods; returns whether it was there.
    pub fn remove_v4_prefix(&mut self, p: &Ipv4Prefix) -> bool {
        if p.prefix_len() == 32 {
            self.v4_hosts.remove(&p.addr())
        } else {
            self.v4_nets.remove(p).is_some()
        }
    }

    /// Remove an IPv6 prefix; returns whether it was there.
    pub fn remove_v6_prefix(&mut self, p: &Ipv6Prefix) -> bool {
        if p.prefix_len() == 128 {
            self.v6_hosts.remove(&p.addr())
        } else {
            self.v6_nets.remove(p).is_some()
        }
    }

    /// Build the immutable set.
    pub fn build(&self) -> IpSet {
        IpSet {
            v4_hosts: self.v4_hosts.clone(),
            v6_hosts: self.v6_hosts.clone(),
            v4_nets: (!self.v4_nets.is_empty()).then(|| self.v4_nets.build()),
            v6_nets: (!self.v6_nets.is_empty()).then(|| self.v6_nets.build()),
        }
    }
}

/// An immutable set of addresses and prefixes.
#[derive(Clone, Debug, Default)]
pub struct IpSet {
    v4_hosts: HashSet<Ipv4Addr>,
    v6_hosts: HashSet<Ipv6Addr>,
    v4_nets: Option<Ipv4Lpm>,
    v6_nets: Option<Ipv6Lpm>,
}

impl IpSet {
    /// True when `addr` is one of the addresses or inside one of the prefixes.
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.contains_v4(a),
            IpAddr::V6(a) => self.contains_v6(a),
        }
    }

    /// IPv4 membership.
    #[inline]
    pub fn contains_v4(&self, a: Ipv4Addr) -> bool {
        self.v4_nets.as_ref().is_some_and(|t| t.lookup(a).is_some()) || self.v4_hosts.contains(&a)
    }

    /// IPv6 membership.
    #[inline]
    pub fn contains_v6(&self, a: Ipv6Addr) -> bool {
        self.v6_nets.as_ref().is_some_and(|t| t.lookup(a).is_some()) || self.v6_hosts.contains(&a)
    }

    /// True when the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.v4_hosts.is_empty()
            && self.v6_hosts.is_empty()
            && self.v4_nets.is_none()
            && self.v6_nets.is_none()
    }
}

/// A set of ports as a bitmap (8 KiB).
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet {
    bits: Box<[u64; 1024]>,
}

impl Default for PortSet {
    fn default() -> Self {
        PortSet {
            bits: Box::new([0; 1024]),
        }
    }
}

impl PortSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the inclusive range `first..=last` (nothing if `first > last`).
    pub fn add_range(&mut self, first: u16, last: u16) {
        for p in first..=last {
            self.bits[usize::from(p) / 64] |= 1 << (p % 64);
        }
    }

    /// Remove the inclusive range `first..=last`.
    pub fn remove_range(&mut self, first: u16, last: u16) {
        for p in first..=last {
            self.bits[usize::from(p) / 64] &= !(1 << (p % 64));
        }
    }

    /// True when `port` is in the set.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port) / 64] & (1 << (port % 64)) != 0
    }

    /// Number of ports in the set.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortSet({} ports)", self.len())
    }
}

/// Calico `natOutgoing`: traffic from a pool with `natOutgoing: true` to a destination outside
/// every pool is masqueraded to the node address.
#[derive(Clone, Debug, Default)]
pub struct NatOutgoing {
    /// Pools with `natOutgoing: true`.
    pub nat_pools: IpSet,
    /// All pools (destinations inside them are not masqueraded).
    pub all_pools: IpSet,
}

impl NatOutgoing {
    /// True when a flow from `src` to `dst` must be source-NATed.
    #[inline]
    pub fn needs_snat(&self, src: IpAddr, dst: IpAddr) -> bool {
        self.nat_pools.contains(src) && !self.all_pools.contains(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_prefixes() {
        let mut b = IpSetBuilder::new();
        b.add_addr("198.18.0.7".parse().unwrap());
        b.add_cidr("10.65.0.0/16").unwrap();
        b.add_cidr("2001:db8::/32").unwrap();
        b.add_cidr("2001:db9::1/128").unwrap();
        let s = b.build();
        assert!(s.contains("198.18.0.7".parse().unwrap()));
        assert!(!s.contains("198.18.0.8".parse().unwrap()));
        assert!(s.contains("10.65.200.1".parse().unwrap()));
        assert!(!s.contains("10.66.0.1".parse().unwrap()));
        assert!(s.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(s.contains("2001:db9::1".parse().unwrap()));
        assert!(!s.contains("2001:db9::2".parse().unwrap()));
        assert!(b.remove_v4_prefix(&"10.65.0.0/16".parse().unwrap()));
        assert!(b.remove_addr("198.18.0.7".parse().unwrap()));
        assert!(!b.remove_addr("198.18.0.7".parse().unwrap()));
        assert!(b.remove_v6_prefix(&"2001:db9::1/128".parse().unwrap()));
        let s = b.build();
        assert!(!s.contains("10.65.200.1".parse().unwrap()));
        assert!(s.contains("2001:db8::5".parse().unwrap()));
        assert!(b.add_cidr("10.0.0.0/40").is_err());
        assert!(IpSet::default().is_empty() && !s.is_empty());
    }

    #[test]
    fn port_set_bitmap() {
        let mut p = PortSet::new();
        p.add_range(80, 80);
        p.add_range(30000, 32767);
        p.add_range(65535, 65535);
        assert!(p.contains(80) && p.contains(30000) && p.contains(32767) && p.contains(65535));
        assert!(!p.contains(81) && !p.contains(29999) && !p.contains(0));
        assert_eq!(p.len(), 1 + 2768 + 1);
        p.remove_range(0, 65535);
        assert!(p.is_empty());
        p.add_range(5, 4);
        assert!(p.is_empty());
    }

    #[test]
    fn nat_outgoing_decision() {
        let mut nat = IpSetBuilder::new();
        nat.add_cidr("10.65.0.0/16").unwrap();
        let mut all = nat.clone();
        all.add_cidr("10.66.0.0/16").unwrap();
        let n = NatOutgoing {
            nat_pools: nat.build(),
            all_pools: all.build(),
        };
        let pod = "10.65.1.1".parse().unwrap();
        assert!(n.needs_snat(pod, "198.18.5.5".parse().unwrap()));
        assert!(!n.needs_snat(pod, "10.66.0.9".parse().unwrap()));
        assert!(!n.needs_snat(pod, "10.65.3.3".parse().unwrap()));
        assert!(!n.needs_snat("10.66.0.9".parse().unwrap(), "198.18.5.5".parse().unwrap()));
    }
}

//! Numeric identifiers. Tables refer to each other by these integers only (never by name),
//! as Felix's BPF policy programs refer to IP sets by numeric id.

use std::net::IpAddr;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub u32);
    };
}

id_type!(
    /// Identifies an endpoint (a workload interface or a host endpoint).
    EndpointId
);
id_type!(
    /// Identifies a compiled policy program.
    ProgramId
);
id_type!(
    /// Identifies an IP set.
    IpSetId
);
id_type!(
    /// Identifies a remote node.
    NodeId
);
id_type!(
    /// Identifies a rule for its hit counter; unique across all programs of a snapshot.
    RuleId
);

/// A table generation. Every snapshot and delta carries the generation it produces; a delta
/// also names the generation it applies on top of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Generation(pub u64);

/// A 48-bit MAC address.
pub type MacAddr = [u8; 6];

/// An IP prefix: an address and a prefix length. Decoding rejects a length longer than the
/// family allows and a prefix with host bits set, so every decoded prefix is canonical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address (host bits zero).
    pub addr: IpAddr,
    /// The prefix length (0..=32 or 0..=128).
    pub len: u8,
}

impl Prefix {
    /// Builds a prefix, or `None` if the length is too long or host bits are set.
    pub fn new(addr: IpAddr, len: u8) -> Option<Self> {
        let p = Self { addr, len };
        p.is_canonical().then_some(p)
    }

    /// A host prefix (/32 or /128) for `addr`.
    pub fn host(addr: IpAddr) -> Self {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }

    /// Maximum length for this prefix's family.
    pub fn max_len(&self) -> u8 {
        if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// Whether the length fits the family and no host bit is set.
    pub fn is_canonical(&self) -> bool {
        if self.len > self.max_len() {
            return false;
        }
        match self.addr {
            IpAddr::V4(a) => u32::from(a) & !mask32(self.len) == 0,
            IpAddr::V6(a) => u128::from(a) & !mask128(self.len) == 0,
        }
    }

    /// Whether `ip` lies inside the prefix (always false across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask32(self.len) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask128(self.len) == u128::from(n),
            _ => false,
        }
    }
}

/// An interface address with its subnet length (host bits set), such as a node's
/// `10.0.0.5/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubnetAddr {
    /// The address itself.
    pub addr: IpAddr,
    /// Length of the subnet it sits in.
    pub subnet_len: u8,
}

impl SubnetAddr {
    /// Whether `ip` is in the same subnet (always false across families).
    pub fn same_subnet(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = mask32(self.subnet_len);
                u32::from(a) & m == u32::from(n) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = mask128(self.subnet_len);
                u128::from(a) & m == u128::from(n) & m
            }
            _ => false,
        }
    }
}

/// The netmask of an IPv4 prefix length (0 for /0).
pub fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// The netmask of an IPv6 prefix length (0 for /0).
pub fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn prefix_checks() {
        let a = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0));
        assert!(Prefix::new(a, 15).is_some());
        assert!(Prefix::new(a, 14).is_none(), "198.18/14 has host bits set");
        assert!(Prefix::new(a, 33).is_none());
        let p = Prefix::new(a, 15).unwrap();
        assert!(p.contains(IpAddr::V4(Ipv4Addr::new(198, 19, 255, 1))));
        assert!(!p.contains(IpAddr::V4(Ipv4Addr::new(198, 20, 0, 1))));
        assert!(!p.contains(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        let d = Prefix::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).unwrap();
        assert!(d.contains(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }
}

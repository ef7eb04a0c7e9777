//! The policy rule model the classifier accepts, and the packet keys it classifies.
//!
//! A [`Rule`] is the conjunction of its fields; every field is optional (empty = any). The
//! model covers Calico's rule fields after the control plane has compiled selectors into IP
//! sets:
//!
//! | Calico field | Here |
//! |---|---|
//! | `protocol` / `notProtocol` | [`Rule::protocol`] / [`Rule::not_protocol`] |
//! | `source.nets` / `source.notNets` | [`AddrMatch::nets`] / [`AddrMatch::not_nets`] |
//! | `source.selector` (compiled to an IP set) | [`AddrMatch::sets`] |
//! | `source.notSelector` | [`AddrMatch::not_sets`] |
//! | `ports` / `notPorts` | [`PortMatch::ranges`] / [`PortMatch::not_ranges`] |
//! | `icmp` / `notICMP` | the port fields: ICMP type in the source port, code in the destination port |
//! | `ipVersion` | [`Rule::ip_version`] |
//!
//! ICMP reuses the port fields as Linux conntrack and VPP's ACL plugin do: a key for an ICMP or
//! ICMPv6 packet carries the ICMP type in `src_port` and the code in `dst_port` (see
//! [`Key4::icmp`]), and a rule matches "type 8, any code" with `src_ports = [8]`.

use ipnet::IpNet;

/// Identifier of an IP set registered in an [`crate::IpSetTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId(pub u32);

/// IP family restriction of a rule (Calico `ipVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// An inclusive port range. A single port is `PortRange::single(p)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// Lowest port in the range.
    pub lo: u16,
    /// Highest port in the range (inclusive); must be `>= lo`.
    pub hi: u16,
}

impl PortRange {
    /// Every port, `0..=65535`.
    pub const ANY: Self = Self {
        lo: 0,
        hi: u16::MAX,
    };

    /// The range `lo..=hi`.
    pub const fn new(lo: u16, hi: u16) -> Self {
        Self { lo, hi }
    }

    /// The one-port range `p..=p`.
    pub const fn single(p: u16) -> Self {
        Self { lo: p, hi: p }
    }

    /// Whether `port` is inside the range.
    #[inline]
    pub const fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

/// Match on one address field (source or destination).
///
/// The field matches an address when all of these hold:
/// - `nets` is empty, or the address is in at least one of `nets`;
/// - the address is a member of every set in `sets`;
/// - the address is in none of `not_nets`;
/// - the address is a member of none of `not_sets`.
///
/// A non-empty `nets` that holds only networks of the other family matches no address of this
/// family (as in Calico, where such a rule is skipped for that family).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AddrMatch {
    /// Any-of networks (IPv4 and IPv6 may be mixed).
    pub nets: Vec<IpNet>,
    /// None-of networks.
    pub not_nets: Vec<IpNet>,
    /// All-of set memberships.
    pub sets: Vec<SetId>,
    /// None-of set memberships.
    pub not_sets: Vec<SetId>,
}

impl AddrMatch {
    /// Matches any address.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches addresses in any of `nets`.
    pub fn nets(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            nets: nets.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Matches members of `set`.
    pub fn set(set: SetId) -> Self {
        Self {
            sets: vec![set],
            ..Self::default()
        }
    }

    /// Whether the field places no constraint at all.
    pub fn is_any(&self) -> bool {
        self.nets.is_empty()
            && self.not_nets.is_empty()
            && self.sets.is_empty()
            && self.not_sets.is_empty()
    }
}

/// Match on one port field: `ranges` empty or the port in one of them, and in none of
/// `not_ranges`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PortMatch {
    /// Any-of ranges; empty means any port.
    pub ranges: Vec<PortRange>,
    /// None-of ranges.
    pub not_ranges: Vec<PortRange>,
}

impl PortMatch {
    /// Matches any port.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches ports in any of `ranges`.
    pub fn ranges(ranges: impl IntoIterator<Item = PortRange>) -> Self {
        Self {
            ranges: ranges.into_iter().collect(),
            not_ranges: Vec::new(),
        }
    }

    /// Matches exactly `port`.
    pub fn single(port: u16) -> Self {
        Self::ranges([PortRange::single(port)])
    }
}

/// One policy rule: a conjunction of field matches, a priority and an opaque action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Position in the program: lower numbers are evaluated first. Must be unique within one
    /// classifier and below `u32::MAX`.
    pub priority: u32,
    /// Opaque payload returned on a match (the pipeline's verdict or tier jump).
    pub action: u32,
    /// Restricts the rule to one family.
    pub ip_version: Option<IpVersion>,
    /// Exact IP protocol number, or any.
    pub protocol: Option<u8>,
    /// Protocol number the packet must not have.
    pub not_protocol: Option<u8>,
    /// Source address match.
    pub src: AddrMatch,
    /// Destination address match.
    pub dst: AddrMatch,
    /// Source port (ICMP type) match.
    pub src_ports: PortMatch,
    /// Destination port (ICMP code) match.
    pub dst_ports: PortMatch,
}

/// The classification result: the first matching rule's priority and action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Match {
    /// Priority of the matching rule.
    pub priority: u32,
    /// Its action payload.
    pub action: u32,
}

/// An IPv4 packet key. Addresses are host-order integers of the network-order bytes
/// (`u32::from(Ipv4Addr)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Key4 {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port, or ICMP type.
    pub src_port: u16,
    /// Destination port, or ICMP code.
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
}

impl Key4 {
    /// Key of an ICMP packet: the type travels in `src_port`, the code in `dst_port`.
    pub fn icmp(src: u32, dst: u32, icmp_type: u8, icmp_code: u8) -> Self {
        Self {
            src,
            dst,
            src_port: icmp_type.into(),
            dst_port: icmp_code.into(),
            proto: 1,
        }
    }
}

/// An IPv6 packet key (`u128::from(Ipv6Addr)` addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Key6 {
    /// Source address.
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// Source port, or ICMPv6 type.
    pub src_port: u16,
    /// Destination port, or ICMPv6 code.
    pub dst_port: u16,
    /// Next-header protocol number.
    pub proto: u8,
}

impl Key6 {
    /// Key of an ICMPv6 packet: the type travels in `src_port`, the code in `dst_port`.
    pub fn icmp(src: u128, dst: u128, icmp_type: u8, icmp_code: u8) -> Self {
        Self {
            src,
            dst,
            src_port: icmp_type.into(),
            dst_port: icmp_code.into(),
            proto: 58,
        }
    }
}

/// A key of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// IPv4.
    V4(Key4),
    /// IPv6.
    V6(Key6),
}

/// Generic view of a key for the family-generic engine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyT<A> {
    pub src: A,
    pub dst: A,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
}

impl<A> KeyT<A> {
    /// Ports and protocol packed the way tables mask them: sport | dport << 16 | proto << 32.
    #[inline(always)]
    pub fn port_word(&self) -> u64 {
        u64::from(self.src_port) | (u64::from(self.dst_port) << 16) | (u64::from(self.proto) << 32)
    }
}

impl From<&Key4> for KeyT<u32> {
    #[inline(always)]
    fn from(k: &Key4) -> Self {
        Self {
            src: k.src,
            dst: k.dst,
            src_port: k.src_port,
            dst_port: k.dst_port,
            proto: k.proto,
        }
    }
}

impl From<&Key6> for KeyT<u128> {
    #[inline(always)]
    fn from(k: &Key6) -> Self {
        Self {
            src: k.src,
            dst: k.dst,
            src_port: k.src_port,
            dst_port: k.dst_port,
            proto: k.proto,
        }
    }
}

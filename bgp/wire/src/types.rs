//! Small shared types: address families and next hops.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// AS_TRANS (RFC 6793 §9): the 2-octet stand-in for a 4-octet AS number on old sessions.
pub const AS_TRANS: u16 = 23456;

/// Address Family Identifier (IANA), kept raw so unknown values survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Afi(pub u16);

impl Afi {
    /// IPv4.
    pub const IPV4: Afi = Afi(1);
    /// IPv6.
    pub const IPV6: Afi = Afi(2);
}

/// Subsequent Address Family Identifier (IANA), kept raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Safi(pub u8);

impl Safi {
    /// Unicast forwarding.
    pub const UNICAST: Safi = Safi(1);
}

/// The two address families this speaker carries routes for.
///
/// Other AFI/SAFI pairs can still be named in capabilities (as raw [`Afi`]/[`Safi`]), but no
/// NLRI of theirs is ever decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// AFI 1 / SAFI 1.
    Ipv4Unicast,
    /// AFI 2 / SAFI 1.
    Ipv6Unicast,
}

impl Family {
    /// Both families, in a fixed order (index = [`Family::index`]).
    pub const ALL: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

    /// Maps an AFI/SAFI pair onto a supported family.
    pub fn from_afi_safi(afi: Afi, safi: Safi) -> Option<Family> {
        match (afi, safi) {
            (Afi::IPV4, Safi::UNICAST) => Some(Family::Ipv4Unicast),
            (Afi::IPV6, Safi::UNICAST) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    /// The AFI of this family.
    pub fn afi(self) -> Afi {
        match self {
            Family::Ipv4Unicast => Afi::IPV4,
            Family::Ipv6Unicast => Afi::IPV6,
        }
    }

    /// The SAFI of this family.
    pub fn safi(self) -> Safi {
        Safi::UNICAST
    }

    /// A dense index (0 or 1) for per-family arrays.
    pub fn index(self) -> usize {
        match self {
            Family::Ipv4Unicast => 0,
            Family::Ipv6Unicast => 1,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Family::Ipv4Unicast => f.write_str("ipv4-unicast"),
            Family::Ipv6Unicast => f.write_str("ipv6-unicast"),
        }
    }
}

/// The next hop of a route, as carried in NEXT_HOP (IPv4) or MP_REACH_NLRI.
///
/// RFC 2545 §3: an IPv6 next hop is 16 bytes (global) or 32 bytes (global followed by
/// link-local). BIRD and FRR send the 32-byte form on directly connected sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// An IPv4 next hop.
    V4(Ipv4Addr),
    /// An IPv6 global next hop, optionally with its link-local companion.
    V6 {
        /// Global (or site) address.
        global: Ipv6Addr,
        /// Link-local address, present in the 32-byte encoding.
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    /// The address to forward to (the global one for IPv6).
    pub fn addr(&self) -> IpAddr {
        match self {
            NextHop::V4(a) => IpAddr::V4(*a),
            NextHop::V6 { global, .. } => IpAddr::V6(*global),
        }
    }

    /// Builds a next hop from one address (no link-local part).
    pub fn from_addr(addr: IpAddr) -> NextHop {
        match addr {
            IpAddr::V4(a) => NextHop::V4(a),
            IpAddr::V6(global) => NextHop::V6 {
                global,
                link_local: None,
            },
        }
    }

    /// Encoded length inside MP_REACH_NLRI.
    pub fn wire_len(&self) -> usize {
        match self {
            NextHop::V4(_) => 4,
            NextHop::V6 {
                link_local: None, ..
            } => 16,
            NextHop::V6 {
                link_local: Some(_),
                ..
            } => 32,
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::V4(a) => write!(f, "{a}"),
            NextHop::V6 {
                global,
                link_local: None,
            } => write!(f, "{global}"),
            NextHop::V6 {
                global,
                link_local: Some(ll),
            } => write!(f, "{global} ({ll})"),
        }
    }
}

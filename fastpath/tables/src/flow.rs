//! The connection 5-tuple ([`FlowKey`]) shared by conntrack and NAT.
//!
//! A key stores both address families in one fixed 38-byte layout (IPv4 addresses occupy the
//! first four bytes of each 16-byte field, the rest is zero, and `family` tells them apart), so
//! one table holds IPv4 and IPv6 flows and a key compares with a handful of word compares.
//!
//! ICMP echo flows use the echo identifier as *both* ports: the request and the reply then
//! produce mirror-image keys, exactly like TCP and UDP, and the identifier is translated like a
//! port by SNAT. (Linux conntrack does the same with its `icmp.id` tuple field.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IANA protocol numbers that the tables treat specially.
pub mod proto {
    /// ICMP for IPv4 (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
}

pub(crate) const FAMILY_V4: u8 = 4;
pub(crate) const FAMILY_V6: u8 = 6;

/// A connection 5-tuple: addresses, ports (or the ICMP echo identifier twice), protocol.
///
/// `Copy`, 38 bytes, no heap. Build one per packet with [`FlowKey::v4`], [`FlowKey::v6`] or the
/// ICMP echo constructors; the pipeline never needs `IpAddr` on the hot path.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub(crate) src: [u8; 16],
    pub(crate) dst: [u8; 16],
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    pub(crate) proto: u8,
    pub(crate) family: u8,
}

pub(crate) fn pad_v4(a: Ipv4Addr) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&a.octets());
    out
}

fn unpad_v4(a: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(a[0], a[1], a[2], a[3])
}

impl FlowKey {
    /// The all-zero key of an unused slot (family 0 matches no real packet).
    pub(crate) const ZERO: FlowKey = FlowKey {
        src: [0; 16],
        dst: [0; 16],
        sport: 0,
        dport: 0,
        proto: 0,
        family: 0,
    };

    /// An IPv4 flow. `proto` is the IANA protocol number ([`proto`]); for protocols without
    /// ports pass 0 for both.
    #[inline]
    pub fn v4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, proto: u8) -> Self {
        FlowKey {
            src: pad_v4(src),
            dst: pad_v4(dst),
            sport,
            dport,
            proto,
            family: FAMILY_V4,
        }
    }

    /// An IPv6 flow.
    #[inline]
    pub fn v6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, proto: u8) -> Self {
        FlowKey {
            src: src.octets(),
            dst: dst.octets(),
            sport,
            dport,
            proto,
            family: FAMILY_V6,
        }
    }

    /// An ICMP echo request or reply flow (IPv4): the identifier stands in for both ports.
    #[inline]
    pub fn icmp_echo_v4(src: Ipv4Addr, dst: Ipv4Addr, identifier: u16) -> Self {
        Self::v4(src, dst, identifier, identifier, proto::ICMP)
    }

    /// An ICMPv6 echo request or reply flow: the identifier stands in for both ports.
    #[inline]
    pub fn icmp_echo_v6(src: Ipv6Addr, dst: Ipv6Addr, identifier: u16) -> Self {
        Self::v6(src, dst, identifier, identifier, proto::ICMPV6)
    }

    /// A flow from generic addresses; `None` when the two families differ.
    pub fn new(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, proto: u8) -> Option<Self> {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Some(Self::v4(s, d, sport, dport, proto)),
            (IpAddr::V6(s), IpAddr::V6(d)) => Some(Self::v6(s, d, sport, dport, proto)),
            _ => None,
        }
    }

    /// The key of a packet travelling the other way on the same flow.
    #[inline]
    #[must_use]
    pub fn reversed(&self) -> Self {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
            family: self.family,
        }
    }

    /// True for an IPv6 flow.
    #[inline]
    pub fn is_ipv6(&self) -> bool {
        self.family == FAMILY_V6
    }

    /// The source address as stored: 16 bytes, an IPv4 address in the first four (the rest
    /// zero). Lets a hot path compare and copy addresses without building an `IpAddr`.
    #[inline]
    pub fn src_octets(&self) -> &[u8; 16] {
        &self.src
    }

    /// The destination address as stored (see [`FlowKey::src_octets`]).
    #[inline]
    pub fn dst_octets(&self) -> &[u8; 16] {
        &self.dst
    }

    /// The source address.
    #[inline]
    pub fn src_ip(&self) -> IpAddr {
        self.addr(&self.src)
    }

    /// The destination address.
    #[inline]
    pub fn dst_ip(&self) -> IpAddr {
        self.addr(&self.dst)
    }

    /// The source port (ICMP echo: the identifier).
    #[inline]
    pub fn src_port(&self) -> u16 {
        self.sport
    }

    /// The destination port (ICMP echo: the identifier).
    #[inline]
    pub fn dst_port(&self) -> u16 {
        self.dport
    }

    /// The IANA protocol number.
    #[inline]
    pub fn proto(&self) -> u8 {
        self.proto
    }

    /// True when the protocol carries 16-bit ports or an echo identifier that NAT may rewrite.
    #[inline]
    pub fn has_ports(&self) -> bool {
        matches!(
            self.proto,
            proto::TCP | proto::UDP | proto::ICMP | proto::ICMPV6
        )
    }

    /// True for ICMP or ICMPv6 matching the key's family.
    #[inline]
    pub fn is_icmp(&self) -> bool {
        (self.family == FAMILY_V4 && self.proto == proto::ICMP)
            || (self.family == FAMILY_V6 && self.proto == proto::ICMPV6)
    }

    #[inline]
    fn addr(&self, raw: &[u8; 16]) -> IpAddr {
        if self.family == FAMILY_V6 {
            IpAddr::V6(Ipv6Addr::from(*raw))
        } else {
            IpAddr::V4(unpad_v4(raw))
        }
    }

    /// Same key with the source address and port replaced. `None` when `addr` is of the other
    /// family. For ICMP echo both ports carry the identifier, so both are replaced.
    pub fn with_src(&self, addr: IpAddr, port: u16) -> Option<Self> {
        let raw = self.raw_addr(addr)?;
        let mut out = FlowKey {
            src: raw,
            sport: port,
            ..*self
        };
        if self.is_icmp() {
            out.dport = port;
        }
        Some(out)
    }

    /// Same key with the destination address and port replaced (see [`FlowKey::with_src`]).
    pub fn with_dst(&self, addr: IpAddr, port: u16) -> Option<Self> {
        let raw = self.raw_addr(addr)?;
        let mut out = FlowKey {
            dst: raw,
            dport: port,
            ..*self
        };
        if self.is_icmp() {
            out.sport = port;
        }
        Some(out)
    }

    fn raw_addr(&self, addr: IpAddr) -> Option<[u8; 16]> {
        match (addr, self.family) {
            (IpAddr::V4(a), FAMILY_V4) => Some(pad_v4(a)),
            (IpAddr::V6(a), FAMILY_V6) => Some(a.octets()),
            _ => None,
        }
    }

    /// Seeded 64-bit hash for the conntrack index: a folded-multiply mix over five words
    /// (the same construction as foldhash/wyhash). The seed must be random per table so that
    /// a remote sender cannot aim many flows at one bucket chain.
    #[inline]
    pub fn hash_with(&self, seed: u64) -> u64 {
        let w = |b: &[u8; 16], half: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[half * 8..half * 8 + 8]);
            u64::from_le_bytes(x)
        };
        let tail = u64::from(self.sport)
            | (u64::from(self.dport) << 16)
            | (u64::from(self.proto) << 32)
            | (u64::from(self.family) << 40);
        let a = fold_mul(w(&self.src, 0) ^ seed, w(&self.src, 1) ^ K1);
        let b = fold_mul(w(&self.dst, 0) ^ K2, w(&self.dst, 1) ^ seed.rotate_left(23));
        let c = fold_mul(tail ^ K3, a ^ seed.rotate_left(47));
        fold_mul(b ^ c, K4)
    }
}

const K1: u64 = 0x243f_6a88_85a3_08d3;
const K2: u64 = 0x1319_8a2e_0370_7344;
const K3: u64 = 0xa409_3822_299f_31d0;
const K4: u64 = 0x082e_fa98_ec4e_6c89;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}:{} -> {}:{}",
            self.proto,
            self.src_ip(),
            self.sport,
            self.dst_ip(),
            self.dport
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_swaps_addresses_and_ports() {
        let k = FlowKey::v4(
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            1000,
            80,
            proto::TCP,
        );
        let r = k.reversed();
        assert_eq!(r.src_ip(), IpAddr::from([10, 0, 0, 2]));
        assert_eq!(r.dst_ip(), IpAddr::from([10, 0, 0, 1]));
        assert_eq!((r.src_port(), r.dst_port()), (80, 1000));
        assert_eq!(r.reversed(), k);
        assert_ne!(r, k);
    }

    #[test]
    fn families_never_compare_equal() {
        let v4 = FlowKey::v4(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            1,
            2,
            proto::UDP,
        );
        let v6 = FlowKey::v6(
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::UNSPECIFIED,
            1,
            2,
            proto::UDP,
        );
        assert_ne!(v4, v6);
        assert_ne!(v4.hash_with(7), v6.hash_with(7));
        assert!(
            FlowKey::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                1,
                1,
                6
            )
            .is_none()
        );
    }

    #[test]
    fn icmp_echo_rewrite_moves_both_ports() {
        let k = FlowKey::icmp_echo_v4([10, 0, 0, 1].into(), [1, 1, 1, 1].into(), 77);
        let s = k.with_src(IpAddr::from([192, 0, 2, 1]), 4000).unwrap();
        assert_eq!((s.src_port(), s.dst_port()), (4000, 4000));
        assert!(k.with_src(IpAddr::V6(Ipv6Addr::LOCALHOST), 1).is_none());
        let d = k.with_dst(IpAddr::from([10, 9, 9, 9]), 5).unwrap();
        assert_eq!((d.src_port(), d.dst_port()), (5, 5));
    }

    #[test]
    fn hash_depends_on_seed_and_every_field() {
        let k = FlowKey::v4(
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            1000,
            80,
            proto::TCP,
        );
        let h = k.hash_with(1);
        assert_ne!(h, k.hash_with(2));
        assert_ne!(h, k.reversed().hash_with(1));
        assert_ne!(
            h,
            FlowKey::v4(
                [10, 0, 0, 1].into(),
                [10, 0, 0, 2].into(),
                1000,
                80,
                proto::UDP
            )
            .hash_with(1)
        );
        assert_ne!(
            h,
            FlowKey::v4(
                [10, 0, 0, 1].into(),
                [10, 0, 0, 2].into(),
                1001,
                80,
                proto::TCP
            )
            .hash_with(1)
        );
    }
}

//! Header rewrites with incremental checksum updates (RFC 1624): NAT, TTL / hop limit, MACs,
//! and (re-exported from the tunnel module) IP-in-IP encapsulation and decapsulation
//! (RFC 2003).

use std::net::IpAddr;

use tortie_tables::FlowKey;
use tortie_wire::ipv4;
use tortie_wire::l4::{
    ICMP_CHECKSUM_OFFSET, TCP_CHECKSUM_OFFSET, UDP_CHECKSUM_OFFSET, icmpv4, icmpv6, proto,
};
use tortie_wire::{Fragment, Parsed, checksum};

pub use crate::tunnel::{ENCAP_LEN, EncapTemplate, decap, encap, encap_with};

fn read16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn write16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Where the transport checksum sits, and whether the pseudo-header (addresses) is covered.
fn l4_checksum(p: &Parsed) -> Option<(usize, bool)> {
    if p.fragment == Fragment::Later {
        return None;
    }
    match p.proto {
        proto::TCP => Some((TCP_CHECKSUM_OFFSET, true)),
        proto::UDP => Some((UDP_CHECKSUM_OFFSET, true)),
        proto::ICMP if !p.is_ipv6() => Some((ICMP_CHECKSUM_OFFSET, false)),
        proto::ICMPV6 if p.is_ipv6() => Some((ICMP_CHECKSUM_OFFSET, true)),
        _ => None,
    }
}

fn is_echo(p: &Parsed) -> bool {
    match p.proto {
        proto::ICMP => matches!(p.icmp_type, icmpv4::ECHO_REQUEST | icmpv4::ECHO_REPLY),
        proto::ICMPV6 => matches!(p.icmp_type, icmpv6::ECHO_REQUEST | icmpv6::ECHO_REPLY),
        _ => false,
    }
}

/// The checksum changes a rewrite has made so far: sums of `~old + new` over every changed
/// 16-bit word (RFC 1624 section 3, equation 3), applied to each checksum field once at the
/// end instead of once per changed field.
#[derive(Default)]
struct Deltas {
    /// For the IPv4 header checksum (addresses).
    ip: Option<u32>,
    /// For the transport checksum (addresses when the pseudo-header is covered, ports).
    l4: Option<u32>,
}

impl Deltas {
    #[inline]
    fn add(acc: &mut Option<u32>, old: u16, new: u16) {
        *acc = Some(acc.unwrap_or(0) + diff16(old, new));
    }

    #[inline]
    fn add32(acc: &mut Option<u32>, old: u32, new: u32) {
        Self::add(acc, (old >> 16) as u16, (new >> 16) as u16);
        Self::add(acc, old as u16, new as u16);
    }

    fn add128(acc: &mut Option<u32>, old: u128, new: u128) {
        for i in 0..8 {
            let shift = 112 - 16 * i;
            Self::add(acc, (old >> shift) as u16, (new >> shift) as u16);
        }
    }
}

/// Writes address `new` (a [`FlowKey`]'s 16 stored bytes, IPv4 in the first four) over
/// `old` at its IPv4 (`v4_at`) or IPv6 (`v6_at`) header offset and records the checksum
/// changes; `pseudo` when the transport checksum covers it. Mixed families change nothing.
#[inline]
fn nat_address(
    data: &mut [u8],
    l3: usize,
    (old, new, new_v6): (IpAddr, &[u8; 16], bool),
    (v4_at, v6_at): (usize, usize),
    pseudo: bool,
    d: &mut Deltas,
) {
    match old {
        IpAddr::V4(o) if !new_v6 => {
            let o = u32::from(o);
            let n = u32::from_be_bytes([new[0], new[1], new[2], new[3]]);
            if o != n {
                data[l3 + v4_at..l3 + v4_at + 4].copy_from_slice(&n.to_be_bytes());
                Deltas::add32(&mut d.ip, o, n);
                if pseudo {
                    Deltas::add32(&mut d.l4, o, n);
                }
            }
        }
        IpAddr::V6(o) if new_v6 => {
            let o = u128::from(o);
            let n = u128::from_be_bytes(*new);
            if o != n {
                data[l3 + v6_at..l3 + v6_at + 16].copy_from_slice(new);
                if pseudo {
                    Deltas::add128(&mut d.l4, o, n);
                }
            }
        }
        _ => {}
    }
}

/// `~old + new`: one changed 16-bit word's contribution to a checksum update.
#[inline]
fn diff16(old: u16, new: u16) -> u32 {
    u32::from(!old) + u32::from(new)
}

/// [`diff16`] over both halves of a 32-bit value (an IPv4 address).
#[inline]
fn diff32(old: u32, new: u32) -> u32 {
    diff16((old >> 16) as u16, (new >> 16) as u16) + diff16(old as u16, new as u16)
}

/// [`apply_nat`] for IPv4 TCP and UDP (not a later fragment), the SNAT and DNAT common
/// case, in straight-line code: the transport checksum covers the addresses through the
/// pseudo-header, so it takes the address differences and the port differences.
///
/// With `ttl`, the TTL is decremented too and its change joins the same header checksum
/// update (one read, fold and write of the field instead of two).
#[inline]
fn nat_v4_ports(
    data: &mut [u8],
    p: &Parsed,
    (old_src, old_dst): (u32, u32),
    to: &FlowKey,
    ttl: bool,
) {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let udp = p.proto == proto::UDP;
    let sum_at = if udp {
        UDP_CHECKSUM_OFFSET
    } else {
        TCP_CHECKSUM_OFFSET
    };
    // The decoder checked that the IPv4 header and the transport header are there: with
    // both borrowed at their fixed sizes, the field accesses below need no bounds checks.
    let Some((head, transport)) = data.split_at_mut_checked(l4) else {
        return;
    };
    let (Some(ip), Some(t)) = (
        head.get_mut(l3..)
            .and_then(<[u8]>::first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>),
        transport.get_mut(..sum_at + 2),
    ) else {
        return;
    };
    let (s, d) = (to.src_octets(), to.dst_octets());
    let new_src = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
    let new_dst = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let (mut ip_delta, mut ip_changed) = (0u32, false);
    if old_src != new_src {
        ip[12..16].copy_from_slice(&new_src.to_be_bytes());
        ip_delta += diff32(old_src, new_src);
        ip_changed = true;
    }
    if old_dst != new_dst {
        ip[16..20].copy_from_slice(&new_dst.to_be_bytes());
        ip_delta += diff32(old_dst, new_dst);
        ip_changed = true;
    }
    let (mut l4_delta, mut l4_changed) = (ip_delta, ip_changed);
    if ttl {
        let old_ttl = ip[8];
        ip[8] = old_ttl.saturating_sub(1);
        ip_delta += ttl_delta(old_ttl);
        ip_changed = true;
    }
    if p.src_port != to.src_port() {
        t[0..2].copy_from_slice(&to.src_port().to_be_bytes());
        l4_delta += diff16(p.src_port, to.src_port());
        l4_changed = true;
    }
    if p.dst_port != to.dst_port() {
        t[2..4].copy_from_slice(&to.dst_port().to_be_bytes());
        l4_delta += diff16(p.dst_port, to.dst_port());
        l4_changed = true;
    }
    if ip_changed {
        let hc = u16::from_be_bytes([ip[10], ip[11]]);
        ip[10..12].copy_from_slice(&checksum::finish(u32::from(!hc) + ip_delta).to_be_bytes());
    }
    if l4_changed {
        let old = u16::from_be_bytes([t[sum_at], t[sum_at + 1]]);
        // An IPv4 UDP checksum of zero means "none" (RFC 768) and stays zero.
        if !(udp && old == 0) {
            let mut new = checksum::finish(u32::from(!old) + l4_delta);
            if udp && new == 0 {
                new = 0xffff;
            }
            t[sum_at..sum_at + 2].copy_from_slice(&new.to_be_bytes());
        }
    }
}

/// Rewrites the packet's addresses and ports (or echo identifier) to `to`, patching the IPv4
/// header checksum and the transport checksum incrementally. `data` is the whole frame.
///
/// Every changed word's difference is summed first and each checksum field is read, folded
/// and written once (RFC 1624's equation 3 over the sum of the changes, which equals
/// applying it field by field). An IPv4 UDP checksum of zero means "none" (RFC 768) and
/// stays zero; a computed UDP checksum of zero is sent as 0xffff.
pub fn apply_nat(data: &mut [u8], p: &Parsed, to: &FlowKey) {
    if let Some(addrs) = v4_ports_case(p, to) {
        nat_v4_ports(data, p, addrs, to, false);
        return;
    }
    apply_nat_general(data, p, to);
}

/// [`apply_nat`] followed by [`decrement_ttl`], the rewrite of every forwarded NAT'd
/// packet. The same bytes result; for IPv4 TCP and UDP the TTL's change is folded into the
/// NAT's single header checksum update.
pub fn apply_nat_and_decrement_ttl(data: &mut [u8], p: &Parsed, to: &FlowKey) {
    if let Some(addrs) = v4_ports_case(p, to) {
        nat_v4_ports(data, p, addrs, to, true);
        return;
    }
    apply_nat_general(data, p, to);
    decrement_ttl(data, p);
}

/// The old addresses when the packet and the translation are IPv4 TCP or UDP (not a later
/// fragment): the case [`nat_v4_ports`] handles.
#[inline]
fn v4_ports_case(p: &Parsed, to: &FlowKey) -> Option<(u32, u32)> {
    match (p.src, p.dst, to.is_ipv6(), p.proto, p.fragment) {
        (IpAddr::V4(src), IpAddr::V4(dst), false, proto::TCP | proto::UDP, f)
            if f != Fragment::Later =>
        {
            Some((u32::from(src), u32::from(dst)))
        }
        _ => None,
    }
}

/// [`apply_nat`] for every other case: IPv6, ICMP echo, later fragments, other protocols.
fn apply_nat_general(data: &mut [u8], p: &Parsed, to: &FlowKey) {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let l4sum = l4_checksum(p);
    let pseudo = matches!(l4sum, Some((_, true)));
    let mut d = Deltas::default();
    let v6 = to.is_ipv6();
    nat_address(
        data,
        l3,
        (p.src, to.src_octets(), v6),
        (12, 8),
        pseudo,
        &mut d,
    );
    nat_address(
        data,
        l3,
        (p.dst, to.dst_octets(), v6),
        (16, 24),
        pseudo,
        &mut d,
    );
    if p.fragment != Fragment::Later {
        if is_echo(p) {
            // The echo identifier stands in for both ports.
            let new_id = if to.src_port() != p.src_port {
                to.src_port()
            } else {
                to.dst_port()
            };
            let old_id = read16(data, l4 + 4);
            if new_id != old_id {
                write16(data, l4 + 4, new_id);
                Deltas::add(&mut d.l4, old_id, new_id);
            }
        } else if matches!(p.proto, proto::TCP | proto::UDP) {
            for (old, new, at) in [
                (p.src_port, to.src_port(), 0),
                (p.dst_port, to.dst_port(), 2),
            ] {
                if old != new {
                    write16(data, l4 + at, new);
                    Deltas::add(&mut d.l4, old, new);
                }
            }
        }
    }
    if let Some(delta) = d.ip {
        let hc = read16(data, l3 + 10);
        write16(data, l3 + 10, checksum::finish(u32::from(!hc) + delta));
    }
    if let (Some(delta), Some((off, _))) = (d.l4, l4sum) {
        let old = read16(data, l4 + off);
        let udp = p.proto == proto::UDP;
        if !(udp && !p.is_ipv6() && old == 0) {
            let mut new = checksum::finish(u32::from(!old) + delta);
            if udp && new == 0 {
                new = 0xffff;
            }
            write16(data, l4 + off, new);
        }
    }
}

/// `~old + new` for the IPv4 header word holding TTL and protocol when a TTL of `ttl`
/// is decremented (saturating): the word drops by 0x100, so the sum is 0xffff - 0x100
/// whatever the word was; a TTL of zero stays and the sum is 0xffff (RFC 1624 section 3,
/// equation 3; RFC 1141's incremental TTL update). The same sum `checksum::update16`
/// forms from the old and new words.
#[inline]
fn ttl_delta(ttl: u8) -> u32 {
    if ttl > 0 { 0xfeff } else { 0xffff }
}

/// Decrements the TTL (IPv4, with its checksum) or hop limit (IPv6); zero stays zero.
#[inline]
pub fn decrement_ttl(data: &mut [u8], p: &Parsed) {
    let l3 = usize::from(p.l3_offset);
    if p.is_ipv6() {
        data[l3 + 7] = data[l3 + 7].saturating_sub(1);
    } else if let Some(h) = data.get_mut(l3..l3 + ipv4::MIN_HEADER_LEN) {
        // The same bytes as `ipv4::decrement_ttl`, without forming the old and new words.
        let t = h[8];
        h[8] = t.saturating_sub(1);
        let hc = u16::from_be_bytes([h[10], h[11]]);
        let new = checksum::finish(u32::from(!hc) + ttl_delta(t));
        h[10..12].copy_from_slice(&new.to_be_bytes());
    }
}

/// Writes the destination and source MACs.
#[inline]
pub fn set_macs(data: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    if let Some(macs) = data.get_mut(..12) {
        macs[..6].copy_from_slice(&dst);
        macs[6..].copy_from_slice(&src);
    }
}

/// Translates an ICMP error about a NAT'd flow (RFC 5508 section 4.2, RFC 3022 section
/// 4.3): the outer source and destination become `outer_src` / `outer_dst`, and the quoted
/// packet's addresses and ports (or echo identifier) become `quoted`'s. The outer IPv4
/// header checksum is patched; the ICMP checksum is recomputed over the whole message (the
/// quote is at most 576 / 1280 bytes). The quoted transport checksum is left as it was.
pub fn translate_icmp_error(
    data: &mut [u8],
    p: &Parsed,
    outer_src: IpAddr,
    outer_dst: IpAddr,
    quoted: &FlowKey,
) {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let end = l3 + usize::from(p.ip_len);
    let q = l4 + 8;
    let write_addr = |data: &mut [u8], at: usize, a: IpAddr| match a {
        IpAddr::V4(a) => data[at..at + 4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => data[at..at + 16].copy_from_slice(&a.octets()),
    };
    if p.is_ipv6() {
        write_addr(data, l3 + 8, outer_src);
        write_addr(data, l3 + 24, outer_dst);
        if end >= q + 40 {
            write_addr(data, q + 8, quoted.src_ip());
            write_addr(data, q + 24, quoted.dst_ip());
            quoted_ports(data, q + 40, end, quoted);
        }
    } else {
        write_addr(data, l3 + 12, outer_src);
        write_addr(data, l3 + 16, outer_dst);
        write16(data, l3 + 10, 0);
        let ihl = usize::from(data[l3] & 0x0f) * 4;
        let c = checksum::checksum(&data[l3..l3 + ihl]);
        write16(data, l3 + 10, c);
        if end >= q + 20 {
            let qihl = usize::from(data[q] & 0x0f) * 4;
            write_addr(data, q + 12, quoted.src_ip());
            write_addr(data, q + 16, quoted.dst_ip());
            if qihl >= 20 && end >= q + qihl {
                write16(data, q + 10, 0);
                let c = checksum::checksum(&data[q..q + qihl]);
                write16(data, q + 10, c);
                quoted_ports(data, q + qihl, end, quoted);
            }
        }
    }
    write16(data, l4 + 2, 0);
    let acc = match (outer_src, outer_dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            checksum::pseudo_v6(s.octets(), d.octets(), proto::ICMPV6, (end - l4) as u32)
        }
        _ => 0,
    };
    let c = checksum::finish(checksum::sum(acc, &data[l4..end]));
    write16(data, l4 + 2, c);
}

fn quoted_ports(data: &mut [u8], at: usize, end: usize, quoted: &FlowKey) {
    match quoted.proto() {
        proto::TCP | proto::UDP if end >= at + 4 => {
            write16(data, at, quoted.src_port());
            write16(data, at + 2, quoted.dst_port());
        }
        proto::ICMP | proto::ICMPV6 if end >= at + 6 => write16(data, at + 4, quoted.src_port()),
        _ => {}
    }
}

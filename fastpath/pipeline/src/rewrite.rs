//! Header rewrites with incremental checksum updates (RFC 1624): NAT, TTL / hop limit, MACs,
//! and IP-in-IP encapsulation and decapsulation (RFC 2003).

use std::net::{IpAddr, Ipv4Addr};

use tortie_tables::FlowKey;
use tortie_wire::ipv4::{self, Ipv4Repr};
use tortie_wire::l4::{
    ICMP_CHECKSUM_OFFSET, TCP_CHECKSUM_OFFSET, UDP_CHECKSUM_OFFSET, icmpv4, icmpv6, proto,
};
use tortie_wire::{Fragment, Parsed, checksum};

use crate::DropReason;
use crate::frame::Frame;

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
#[inline]
fn nat_v4_ports(data: &mut [u8], p: &Parsed, (old_src, old_dst): (u32, u32), to: &FlowKey) {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let (s, d) = (to.src_octets(), to.dst_octets());
    let new_src = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
    let new_dst = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let (mut ip_delta, mut ip_changed) = (0u32, false);
    if old_src != new_src {
        data[l3 + 12..l3 + 16].copy_from_slice(&new_src.to_be_bytes());
        ip_delta += diff32(old_src, new_src);
        ip_changed = true;
    }
    if old_dst != new_dst {
        data[l3 + 16..l3 + 20].copy_from_slice(&new_dst.to_be_bytes());
        ip_delta += diff32(old_dst, new_dst);
        ip_changed = true;
    }
    let (mut l4_delta, mut l4_changed) = (ip_delta, ip_changed);
    for (old, new, at) in [
        (p.src_port, to.src_port(), 0),
        (p.dst_port, to.dst_port(), 2),
    ] {
        if old != new {
            write16(data, l4 + at, new);
            l4_delta += diff16(old, new);
            l4_changed = true;
        }
    }
    if ip_changed {
        let hc = read16(data, l3 + 10);
        write16(data, l3 + 10, checksum::finish(u32::from(!hc) + ip_delta));
    }
    if l4_changed {
        let udp = p.proto == proto::UDP;
        let at = l4
            + if udp {
                UDP_CHECKSUM_OFFSET
            } else {
                TCP_CHECKSUM_OFFSET
            };
        let old = read16(data, at);
        // An IPv4 UDP checksum of zero means "none" (RFC 768) and stays zero.
        if !(udp && old == 0) {
            let mut new = checksum::finish(u32::from(!old) + l4_delta);
            if udp && new == 0 {
                new = 0xffff;
            }
            write16(data, at, new);
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
    if let (IpAddr::V4(src), IpAddr::V4(dst), false, proto::TCP | proto::UDP, false) = (
        p.src,
        p.dst,
        to.is_ipv6(),
        p.proto,
        p.fragment == Fragment::Later,
    ) {
        nat_v4_ports(data, p, (u32::from(src), u32::from(dst)), to);
        return;
    }
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

/// Decrements the TTL (IPv4, with its checksum) or hop limit (IPv6).
pub fn decrement_ttl(data: &mut [u8], p: &Parsed) {
    let l3 = usize::from(p.l3_offset);
    if p.is_ipv6() {
        data[l3 + 7] = data[l3 + 7].saturating_sub(1);
    } else {
        let _ = ipv4::decrement_ttl(&mut data[l3..]);
    }
}

/// Writes the destination and source MACs.
pub fn set_macs(data: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    data[..6].copy_from_slice(&dst);
    data[6..12].copy_from_slice(&src);
}

/// Length of an untagged Ethernet header.
const ETHERNET_LEN: usize = 14;

/// Length of the outer IPv4 header IP-in-IP adds.
pub const ENCAP_LEN: usize = ipv4::MIN_HEADER_LEN;

/// Encapsulates the IPv4 packet in IP-in-IP from `src` to `dst` (RFC 2003 section 3.1): the
/// Ethernet header moves 20 bytes into the headroom and the outer header goes between it and
/// the inner packet. The outer TTL is 64; TOS and DF are copied from the inner header.
pub fn encap(
    frame: &mut Frame<'_>,
    p: &Parsed,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<(), DropReason> {
    let l3 = usize::from(p.l3_offset);
    let ip_len = usize::from(p.ip_len);
    let payload_len = u16::try_from(ip_len).map_err(|_| DropReason::MtuExceeded)?;
    let (buf, offset, _) = frame.raw();
    let new_offset = offset
        .checked_sub(ENCAP_LEN)
        .ok_or(DropReason::NoHeadroom)?;
    let inner = offset + l3;
    let (tos, ident, df) = (
        buf[inner + 1],
        read16(buf, inner + 4),
        buf[inner + 6] & 0x40 != 0,
    );
    if l3 == ETHERNET_LEN {
        // The usual untagged header: a fixed-size copy, not a `memmove` call.
        let mut eth = [0u8; ETHERNET_LEN];
        eth.copy_from_slice(&buf[offset..offset + ETHERNET_LEN]);
        buf[new_offset..new_offset + ETHERNET_LEN].copy_from_slice(&eth);
    } else {
        buf.copy_within(offset..offset + l3, new_offset);
    }
    let repr = Ipv4Repr {
        src: src.octets(),
        dst: dst.octets(),
        protocol: ipv4::PROTO_IPIP,
        ttl: 64,
        tos,
        ident,
        dont_fragment: df,
        payload_len,
    };
    repr.emit(&mut buf[new_offset + l3..])
        .ok_or(DropReason::MtuExceeded)?;
    frame
        .set_window(new_offset, l3 + ENCAP_LEN + ip_len)
        .ok_or(DropReason::NoHeadroom)
}

/// Strips the outer IPv4 header of an IP-in-IP packet: the Ethernet header moves forward
/// over it. Trailing padding after the outer packet is cut off.
pub fn decap(frame: &mut Frame<'_>, p: &Parsed) -> Result<(), DropReason> {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let inner_len = usize::from(p.ip_len)
        .checked_sub(l4 - l3)
        .ok_or(DropReason::Ipv4BadLength)?;
    let (buf, offset, _) = frame.raw();
    let new_offset = offset + (l4 - l3);
    buf.copy_within(offset..offset + l3, new_offset);
    frame
        .set_window(new_offset, l3 + inner_len)
        .ok_or(DropReason::Ipv4BadLength)
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

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

/// Rewrites the packet's addresses and ports (or echo identifier) to `to`, patching the IPv4
/// header checksum and the transport checksum incrementally. `data` is the whole frame.
pub fn apply_nat(data: &mut [u8], p: &Parsed, to: &FlowKey) {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let l4sum = l4_checksum(p);
    // An IPv4 UDP checksum of zero means "none" (RFC 768) and stays zero.
    let udp_none = p.proto == proto::UDP
        && !p.is_ipv6()
        && l4sum.is_some()
        && read16(data, l4 + UDP_CHECKSUM_OFFSET) == 0;
    let fix_l4 = |data: &mut [u8], f: &dyn Fn(u16) -> u16, pseudo: bool| {
        if let Some((off, covers_pseudo)) = l4sum
            && (covers_pseudo || !pseudo)
            && !udp_none
        {
            let old = read16(data, l4 + off);
            let mut new = f(old);
            if p.proto == proto::UDP && new == 0 {
                new = 0xffff;
            }
            write16(data, l4 + off, new);
        }
    };
    for (old, new, v4_at, v6_at) in [(p.src, to.src_ip(), 12, 8), (p.dst, to.dst_ip(), 16, 24)] {
        if old == new {
            continue;
        }
        match (old, new) {
            (IpAddr::V4(o), IpAddr::V4(n)) => {
                let (o, n) = (u32::from(o), u32::from(n));
                data[l3 + v4_at..l3 + v4_at + 4].copy_from_slice(&n.to_be_bytes());
                let hc = read16(data, l3 + 10);
                write16(data, l3 + 10, checksum::update32(hc, o, n));
                fix_l4(data, &|c| checksum::update32(c, o, n), true);
            }
            (IpAddr::V6(o), IpAddr::V6(n)) => {
                let (o, n) = (u128::from(o), u128::from(n));
                data[l3 + v6_at..l3 + v6_at + 16].copy_from_slice(&n.to_be_bytes());
                fix_l4(data, &|c| checksum::update128(c, o, n), true);
            }
            _ => {}
        }
    }
    if p.fragment == Fragment::Later {
        return;
    }
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
            fix_l4(data, &|c| checksum::update16(c, old_id, new_id), false);
        }
    } else if matches!(p.proto, proto::TCP | proto::UDP) {
        for (old, new, at) in [
            (p.src_port, to.src_port(), 0),
            (p.dst_port, to.dst_port(), 2),
        ] {
            if old != new {
                write16(data, l4 + at, new);
                fix_l4(data, &|c| checksum::update16(c, old, new), false);
            }
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
    buf.copy_within(offset..offset + l3, new_offset);
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

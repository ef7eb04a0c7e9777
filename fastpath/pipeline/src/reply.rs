//! Answers built in place: ARP replies, neighbour advertisements and ICMP errors.
//!
//! Each function rewrites the frame it is given into the answer, which the pipeline then
//! sends back out of the receiving interface. None allocates; each fails with a drop reason
//! when the frame lacks the room (see the headroom contract in [`crate::frame`]).

use std::net::IpAddr;

use tortie_wire::ethernet::{self, MacAddr, WORKLOAD_GATEWAY_MAC};
use tortie_wire::ipv4::Ipv4Repr;
use tortie_wire::ipv6::Ipv6Repr;
use tortie_wire::l4::{icmpv4, icmpv6, proto};
use tortie_wire::{Parsed, arp, checksum};

use crate::DropReason;
use crate::frame::Frame;

/// Turns an ARP request into the reply "target is at ee:ee:ee:ee:ee:ee" (RFC 826). Any
/// target gets the same answer: the fastpath is every workload's only neighbour, as with
/// Calico's proxy ARP on the host side of a workload veth.
pub fn arp_reply(frame: &mut Frame<'_>, p: &Parsed) -> Result<(), DropReason> {
    let data = frame.data_mut();
    let requester = mac_at(data, 6);
    let l3 = usize::from(p.l3_offset);
    ethernet::write_header(
        data,
        requester,
        WORKLOAD_GATEWAY_MAC,
        ethernet::ethertype::ARP,
    )
    .ok_or(DropReason::ArpMalformed)?;
    // A tagged frame keeps its tag: write_header rewrote the outer EtherType only if untagged.
    if l3 != ethernet::HEADER_LEN {
        data[12..14].copy_from_slice(&ethernet::ethertype::VLAN.to_be_bytes());
    }
    arp::write_reply(&mut data[l3..], WORKLOAD_GATEWAY_MAC).ok_or(DropReason::ArpMalformed)
}

/// Length of the neighbour advertisement we send: header, target, target link-layer option.
const NA_LEN: usize = 32;

/// Turns a neighbour solicitation into the solicited advertisement "target is at
/// ee:ee:ee:ee:ee:ee" (RFC 4861 sections 4.4 and 7.2.4): Router, Solicited and Override set,
/// hop limit 255, the Target Link-Layer Address option, checksum over the pseudo-header.
pub fn neighbor_advert(frame: &mut Frame<'_>, p: &Parsed) -> Result<(), DropReason> {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let (IpAddr::V6(solicitor), true) = (p.src, l4 == l3 + tortie_wire::ipv6::HEADER_LEN) else {
        return Err(DropReason::NeighborIgnored);
    };
    let data = frame.data();
    let Some(target) = data.get(l4 + 8..l4 + 24) else {
        return Err(DropReason::IcmpMalformed);
    };
    let mut target_addr = [0u8; 16];
    target_addr.copy_from_slice(target);
    let requester = mac_at(data, 6);
    let offset = frame.offset();
    frame
        .set_window(offset, l4 + NA_LEN)
        .ok_or(DropReason::NoHeadroom)?;
    let data = frame.data_mut();
    data[..6].copy_from_slice(&requester);
    data[6..12].copy_from_slice(&WORKLOAD_GATEWAY_MAC);
    let ip = Ipv6Repr {
        src: target_addr,
        dst: solicitor.octets(),
        next_header: proto::ICMPV6,
        hop_limit: 255,
        payload_len: NA_LEN as u16,
    };
    ip.emit(&mut data[l3..]).ok_or(DropReason::NoHeadroom)?;
    let icmp = &mut data[l4..l4 + NA_LEN];
    icmp[0] = icmpv6::NEIGHBOR_ADVERT;
    icmp[1] = 0;
    icmp[2..4].copy_from_slice(&[0, 0]);
    // R (router), S (solicited), O (override).
    icmp[4..8].copy_from_slice(&[0xe0, 0, 0, 0]);
    icmp[8..24].copy_from_slice(&target_addr);
    // Option type 2 (Target Link-Layer Address), length 1 (8 octets).
    icmp[24] = 2;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&WORKLOAD_GATEWAY_MAC);
    let acc = checksum::pseudo_v6(
        target_addr,
        solicitor.octets(),
        proto::ICMPV6,
        NA_LEN as u32,
    );
    let c = checksum::finish(checksum::sum(acc, icmp));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Which ICMP error to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// TTL / hop limit exceeded in transit (ICMP 11/0, ICMPv6 3/0).
    TimeExceeded,
    /// Too big for the next hop, whose MTU is given (ICMP 3/4 per RFC 1191, ICMPv6 2/0 per
    /// RFC 8201).
    TooBig(u16),
}

/// The most of the offending packet an ICMPv4 error quotes: the error stays within 576
/// bytes (RFC 1812 section 4.3.2.3).
const QUOTE_V4: usize = 576 - 28;
/// The most an ICMPv6 error quotes: the error stays within the minimum MTU of 1280 bytes
/// (RFC 4443 section 2.4(c)).
const QUOTE_V6: usize = 1280 - 48;

/// Whether an ICMP error may be sent about this packet (RFC 1812 section 4.3.2.7, RFC 4443
/// section 2.4(e)): never about an ICMP error, a non-first fragment, or a packet from an
/// address that does not name one host.
pub fn may_send_error(p: &Parsed) -> bool {
    let is_error = match p.proto {
        proto::ICMP if !p.is_ipv6() => icmpv4::is_error(p.icmp_type),
        proto::ICMPV6 if p.is_ipv6() => icmpv6::is_error(p.icmp_type),
        _ => false,
    };
    let src_ok = match p.src {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    };
    !is_error && src_ok && p.fragment != tortie_wire::Fragment::Later
}

/// Rewrites the frame into an ICMP error about the packet it holds, from `src`, addressed
/// back to the packet's source and link-layer sender. The new headers go in front of the
/// quoted packet, in the headroom; the result is untagged.
pub fn icmp_error(
    frame: &mut Frame<'_>,
    p: &Parsed,
    kind: IcmpError,
    src: IpAddr,
) -> Result<(), DropReason> {
    let v6 = p.is_ipv6();
    let (ip_len, quote_max) = if v6 { (40, QUOTE_V6) } else { (20, QUOTE_V4) };
    let head = ethernet::HEADER_LEN + ip_len + 8;
    let quote = usize::from(p.ip_len).min(quote_max);
    let (sender, receiver) = {
        let d = frame.data();
        (mac_at(d, 6), mac_at(d, 0))
    };
    let l3_abs = frame.offset() + usize::from(p.l3_offset);
    let start = l3_abs.checked_sub(head).ok_or(DropReason::NoHeadroom)?;
    frame
        .set_window(start, head + quote)
        .ok_or(DropReason::NoHeadroom)?;
    let data = frame.data_mut();
    let ethertype = if v6 {
        ethernet::ethertype::IPV6
    } else {
        ethernet::ethertype::IPV4
    };
    ethernet::write_header(data, sender, receiver, ethertype).ok_or(DropReason::NoHeadroom)?;
    let l4 = ethernet::HEADER_LEN + ip_len;
    let icmp_len = 8 + quote;
    match (src, p.src) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let repr = Ipv4Repr {
                src: s.octets(),
                dst: d.octets(),
                protocol: proto::ICMP,
                ttl: 64,
                tos: 0,
                ident: 0,
                dont_fragment: false,
                payload_len: icmp_len as u16,
            };
            repr.emit(&mut data[ethernet::HEADER_LEN..])
                .ok_or(DropReason::NoHeadroom)?;
            let icmp = &mut data[l4..l4 + icmp_len];
            let (t, c, rest) = match kind {
                IcmpError::TimeExceeded => (icmpv4::TIME_EXCEEDED, 0, [0u8; 4]),
                IcmpError::TooBig(mtu) => {
                    let m = mtu.to_be_bytes();
                    (
                        icmpv4::DEST_UNREACHABLE,
                        icmpv4::CODE_FRAG_NEEDED,
                        [0, 0, m[0], m[1]],
                    )
                }
            };
            icmp[..8].copy_from_slice(&[t, c, 0, 0, rest[0], rest[1], rest[2], rest[3]]);
            let csum = checksum::checksum(icmp);
            icmp[2..4].copy_from_slice(&csum.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let repr = Ipv6Repr {
                src: s.octets(),
                dst: d.octets(),
                next_header: proto::ICMPV6,
                hop_limit: 64,
                payload_len: icmp_len as u16,
            };
            repr.emit(&mut data[ethernet::HEADER_LEN..])
                .ok_or(DropReason::NoHeadroom)?;
            let icmp = &mut data[l4..l4 + icmp_len];
            let (t, rest) = match kind {
                IcmpError::TimeExceeded => (icmpv6::TIME_EXCEEDED, 0u32),
                IcmpError::TooBig(mtu) => (icmpv6::PACKET_TOO_BIG, u32::from(mtu)),
            };
            icmp[..4].copy_from_slice(&[t, 0, 0, 0]);
            icmp[4..8].copy_from_slice(&rest.to_be_bytes());
            let acc = checksum::pseudo_v6(s.octets(), d.octets(), proto::ICMPV6, icmp_len as u32);
            let csum = checksum::finish(checksum::sum(acc, icmp));
            icmp[2..4].copy_from_slice(&csum.to_be_bytes());
        }
        _ => return Err(DropReason::NoNodeAddress),
    }
    Ok(())
}

fn mac_at(d: &[u8], at: usize) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&d[at..at + 6]);
    m
}

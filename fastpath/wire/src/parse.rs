//! The single-pass frame decoder: Ethernet, then ARP or IP, then the transport header.
//!
//! [`parse_frame`] runs every view's check once and returns a small `Copy` [`Parsed`] repr
//! holding the offsets and the fields the pipeline decides on (house rule 1). Nodes read the
//! repr and touch the frame bytes only to rewrite them. A malformed frame yields a
//! [`WireError`], never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::WireError;
use crate::arp::ArpPacket;
use crate::ethernet::{EthernetFrame, ethertype};
use crate::ipv4::{self, Ipv4Header};
use crate::ipv6::Ipv6Header;
use crate::l4::{IcmpHeader, SctpHeader, TcpHeader, UdpHeader, icmpv4, icmpv6, proto};

/// The network layer a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L3 {
    /// Ethernet/IPv4 ARP.
    Arp,
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// Anything else: the EtherType is in [`Parsed::ethertype`].
    Other,
}

/// Where a packet sits among the fragments of its datagram (IPv4 and IPv6 alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    Whole,
    /// First fragment: carries the transport header.
    First,
    /// A later fragment: no transport header; ports are zero.
    Later,
}

/// The 5-tuple of the packet quoted inside an ICMP error (RFC 792, RFC 4443 section 2.4(c)).
///
/// It is the tuple as the original sender sent it, so it is the reverse of the error's own
/// direction. Ports are zero when the quote is too short to hold them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Embedded {
    /// Source of the quoted packet.
    pub src: IpAddr,
    /// Destination of the quoted packet.
    pub dst: IpAddr,
    /// Protocol of the quoted packet.
    pub proto: u8,
    /// Source port (or ICMP echo identifier).
    pub src_port: u16,
    /// Destination port (or ICMP echo identifier).
    pub dst_port: u16,
}

/// The decoded summary of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The network layer.
    pub l3: L3,
    /// EtherType after any VLAN tag.
    pub ethertype: u16,
    /// 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// Offset of the network header in the frame.
    pub l3_offset: u16,
    /// Offset of the transport header (for later fragments: of the fragment data).
    pub l4_offset: u16,
    /// IP total length (header, extensions and payload); 0 for ARP/other.
    pub ip_len: u16,
    /// Source address (ARP: sender protocol address).
    pub src: IpAddr,
    /// Destination address (ARP: target protocol address).
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extensions).
    pub proto: u8,
    /// Source port, or the ICMP echo identifier for echo messages.
    pub src_port: u16,
    /// Destination port, or the ICMP echo identifier for echo messages.
    pub dst_port: u16,
    /// TCP flags (0 for other protocols).
    pub tcp_flags: u8,
    /// ICMP/ICMPv6 type (0 for other protocols).
    pub icmp_type: u8,
    /// ICMP/ICMPv6 code.
    pub icmp_code: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Fragment position.
    pub fragment: Fragment,
    /// Fragment identification (IPv4: 16 bits widened; IPv6: the Fragment header's 32 bits).
    pub frag_ident: u32,
    /// IPv4 Don't Fragment flag (always true for IPv6, which routers never fragment).
    pub dont_fragment: bool,
    /// For ICMP errors: the quoted packet's tuple.
    pub embedded: Option<Embedded>,
    /// ARP opcode (0 for other frames).
    pub arp_op: u16,
}

const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl Parsed {
    fn empty(ethertype: u16, vlan: Option<u16>, l3_offset: usize) -> Self {
        Self {
            l3: L3::Other,
            ethertype,
            vlan,
            l3_offset: l3_offset as u16,
            l4_offset: l3_offset as u16,
            ip_len: 0,
            src: UNSPECIFIED,
            dst: UNSPECIFIED,
            proto: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            icmp_type: 0,
            icmp_code: 0,
            ttl: 0,
            fragment: Fragment::Whole,
            frag_ident: 0,
            dont_fragment: false,
            embedded: None,
            arp_op: 0,
        }
    }

    /// Whether the packet is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.l3 == L3::Ipv6
    }
}

/// The largest frame the decoder accepts; offsets are kept in 16 bits.
pub const MAX_FRAME_LEN: usize = 65_535;

/// Decodes `frame` (starting at the Ethernet header).
pub fn parse_frame(frame: &[u8]) -> Result<Parsed, WireError> {
    let mut p = Parsed::empty(0, None, 0);
    parse_frame_into(frame, &mut p)?;
    Ok(p)
}

/// Decodes `frame` like [`parse_frame`], writing the summary into `p` in place: a caller
/// that keeps the summary in per-packet metadata saves copying it out and in again. On
/// error `p` holds unspecified (but valid) contents.
#[inline]
pub fn parse_frame_into(frame: &[u8], p: &mut Parsed) -> Result<(), WireError> {
    let frame = &frame[..frame.len().min(MAX_FRAME_LEN)];
    let eth = EthernetFrame::new_checked(frame)?;
    let l3_offset = eth.payload_offset();
    let (ethertype, vlan) = (eth.ethertype(), eth.vlan());
    if ethertype == ethertype::IPV4 {
        // The common case writes the summary once, field by field, instead of clearing it
        // first and then overwriting most of it.
        return parse_ipv4(eth.payload(), (ethertype, vlan, l3_offset), p);
    }
    *p = Parsed::empty(ethertype, vlan, l3_offset);
    match ethertype {
        ethertype::ARP => {
            let arp = ArpPacket::new_checked(eth.payload())?;
            p.l3 = L3::Arp;
            p.src = IpAddr::V4(Ipv4Addr::from(arp.sender_ip()));
            p.dst = IpAddr::V4(Ipv4Addr::from(arp.target_ip()));
            p.arp_op = arp.op();
        }
        ethertype::IPV6 => parse_ipv6(eth.payload(), l3_offset, p)?,
        _ => {}
    }
    Ok(())
}

/// Decodes an IPv4 packet and its transport header; `link` is the EtherType, VLAN id and
/// network header offset the Ethernet header gave.
#[inline]
fn parse_ipv4(
    bytes: &[u8],
    (ethertype, vlan, l3_offset): (u16, Option<u16>, usize),
    p: &mut Parsed,
) -> Result<(), WireError> {
    let ip = Ipv4Header::new_checked(bytes)?;
    let fragment = match ip.fragment() {
        ipv4::Fragment::Whole => Fragment::Whole,
        ipv4::Fragment::First => Fragment::First,
        ipv4::Fragment::Later => Fragment::Later,
    };
    *p = Parsed {
        l3: L3::Ipv4,
        ethertype,
        vlan,
        l3_offset: l3_offset as u16,
        l4_offset: (l3_offset + ip.header_len()) as u16,
        ip_len: ip.total_len() as u16,
        src: IpAddr::V4(Ipv4Addr::from(ip.src())),
        dst: IpAddr::V4(Ipv4Addr::from(ip.dst())),
        proto: ip.protocol(),
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
        ttl: ip.ttl(),
        fragment,
        frag_ident: u32::from(ip.ident()),
        dont_fragment: ip.dont_fragment(),
        embedded: None,
        arp_op: 0,
    };
    if fragment == Fragment::Later {
        return Ok(());
    }
    parse_l4(ip.payload(), false, p)
}

fn parse_ipv6(bytes: &[u8], l3_offset: usize, p: &mut Parsed) -> Result<(), WireError> {
    let ip = Ipv6Header::new_checked(bytes)?;
    p.l3 = L3::Ipv6;
    p.ip_len = ip.total_len() as u16;
    p.src = IpAddr::V6(Ipv6Addr::from(ip.src()));
    p.dst = IpAddr::V6(Ipv6Addr::from(ip.dst()));
    p.ttl = ip.hop_limit();
    p.dont_fragment = true;
    let ext = ip.walk_extensions()?;
    p.proto = ext.protocol;
    p.l4_offset = (l3_offset + ext.upper_offset) as u16;
    if let Some(frag) = ext.fragment {
        p.frag_ident = frag.ident;
        p.fragment = match (frag.offset, frag.more) {
            (0, false) => Fragment::Whole,
            (0, true) => Fragment::First,
            _ => Fragment::Later,
        };
        if p.fragment == Fragment::Later {
            return Ok(());
        }
    }
    let upper = &bytes[ext.upper_offset..ip.total_len()];
    parse_l4(upper, true, p)
}

#[inline]
fn parse_l4(upper: &[u8], v6: bool, p: &mut Parsed) -> Result<(), WireError> {
    match p.proto {
        proto::TCP => {
            let t = TcpHeader::new_checked(upper)?;
            p.src_port = t.src_port();
            p.dst_port = t.dst_port();
            p.tcp_flags = t.flags();
        }
        proto::UDP => {
            let u = UdpHeader::new_checked(upper)?;
            p.src_port = u.src_port();
            p.dst_port = u.dst_port();
        }
        proto::SCTP => {
            let s = SctpHeader::new_checked(upper)?;
            p.src_port = s.src_port();
            p.dst_port = s.dst_port();
        }
        proto::ICMP if !v6 => {
            let i = IcmpHeader::new_checked(upper)?;
            p.icmp_type = i.msg_type();
            p.icmp_code = i.code();
            if matches!(i.msg_type(), icmpv4::ECHO_REQUEST | icmpv4::ECHO_REPLY) {
                p.src_port = i.echo_ident();
                p.dst_port = i.echo_ident();
            } else if icmpv4::is_error(i.msg_type()) {
                p.embedded = embedded_v4(i.body());
            }
        }
        proto::ICMPV6 if v6 => {
            let i = IcmpHeader::new_checked(upper)?;
            p.icmp_type = i.msg_type();
            p.icmp_code = i.code();
            if matches!(i.msg_type(), icmpv6::ECHO_REQUEST | icmpv6::ECHO_REPLY) {
                p.src_port = i.echo_ident();
                p.dst_port = i.echo_ident();
            } else if icmpv6::is_error(i.msg_type()) {
                p.embedded = embedded_v6(i.body());
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads the quoted IPv4 packet leniently: the quote is usually truncated, so only the
/// header and the first four transport bytes are required (RFC 792 "Internet Header + 64 bits
/// of Original Data Datagram").
fn embedded_v4(body: &[u8]) -> Option<Embedded> {
    if body.len() < ipv4::MIN_HEADER_LEN || body[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(body[0] & 0x0f) * 4;
    if ihl < ipv4::MIN_HEADER_LEN {
        return None;
    }
    let proto = body[9];
    let src = IpAddr::V4(Ipv4Addr::new(body[12], body[13], body[14], body[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(body[16], body[17], body[18], body[19]));
    let (src_port, dst_port) = quoted_ports(body.get(ihl..), proto, false);
    Some(Embedded {
        src,
        dst,
        proto,
        src_port,
        dst_port,
    })
}

/// Reads the quoted IPv6 packet leniently. Only a quote whose upper layer follows the fixed
/// header directly yields ports; with extension headers the ports are left at zero.
fn embedded_v6(body: &[u8]) -> Option<Embedded> {
    if body.len() < crate::ipv6::HEADER_LEN || body[0] >> 4 != 6 {
        return None;
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(&body[8..24]);
    let mut d = [0u8; 16];
    d.copy_from_slice(&body[24..40]);
    let proto = body[6];
    let (src_port, dst_port) = quoted_ports(body.get(crate::ipv6::HEADER_LEN..), proto, true);
    Some(Embedded {
        src: IpAddr::V6(Ipv6Addr::from(s)),
        dst: IpAddr::V6(Ipv6Addr::from(d)),
        proto,
        src_port,
        dst_port,
    })
}

fn quoted_ports(l4: Option<&[u8]>, proto: u8, v6: bool) -> (u16, u16) {
    let Some(l4) = l4 else { return (0, 0) };
    match (proto, l4) {
        (proto::TCP | proto::UDP | proto::SCTP, [a, b, c, d, ..]) => {
            (u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]))
        }
        (proto::ICMP, [t, _, _, _, i0, i1, ..])
            if !v6 && matches!(*t, icmpv4::ECHO_REQUEST | icmpv4::ECHO_REPLY) =>
        {
            let id = u16::from_be_bytes([*i0, *i1]);
            (id, id)
        }
        (proto::ICMPV6, [t, _, _, _, i0, i1, ..])
            if v6 && matches!(*t, icmpv6::ECHO_REQUEST | icmpv6::ECHO_REPLY) =>
        {
            let id = u16::from_be_bytes([*i0, *i1]);
            (id, id)
        }
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests;

//! Hand-built frames from B (MAC_B) to A (MAC_A), and a small parser for what arrives.

use super::{MAC_A, MAC_B};

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86DD;
pub const ETH_ARP: u16 = 0x0806;

/// RFC 1071 Internet checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet II frame B -> A, with an optional 802.1Q tag.
pub fn eth(ethertype: u16, vlan: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(18 + payload.len());
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&MAC_B);
    if let Some(tci) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header (RFC 791) with `options` (a multiple of 4 bytes) and `frag` (flags and offset
/// word), then `payload`.
pub fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    frag: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let hlen = 20 + options.len();
    let mut h = vec![0u8; hlen];
    h[0] = 0x40 | (hlen / 4) as u8;
    h[2..4].copy_from_slice(&((hlen + payload.len()) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    h[20..].copy_from_slice(options);
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// IPv6 fixed header (RFC 8200) then `payload`.
pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&src);
    h[24..40].copy_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// UDP header (checksum 0: "no checksum", RFC 768, fine over IPv4) then `payload`.
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// A TCP SYN header (20 bytes, checksum left 0: only the XDP program reads it).
pub fn tcp_syn(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t
}

/// ICMP (RFC 792) or ICMPv6 echo message: `kind` is the type (8/0, or 128/129), with a valid
/// ICMPv4 checksum (ICMPv6's pseudo-header checksum is not computed).
pub fn icmp_echo(kind: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// ARP request (RFC 826) from B (`spa`) for `tpa`, broadcast.
pub fn arp_request(spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
    a.extend_from_slice(&MAC_B);
    a.extend_from_slice(&spa);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa);
    let mut f = eth(ETH_ARP, None, &a);
    f[..6].copy_from_slice(&[0xff; 6]);
    f
}

/// What a received frame is, as far as the tests care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// IPv4: protocol, source, destination, and the bytes after the IPv4 header.
    V4 {
        proto: u8,
        src: [u8; 4],
        dst: [u8; 4],
        l4: Vec<u8>,
    },
    /// IPv6: next header, destination.
    V6 {
        next: u8,
        dst: [u8; 16],
    },
    /// ARP: operation, sender protocol address.
    Arp {
        op: u16,
        spa: [u8; 4],
    },
    Other(u16),
}

pub fn parse(f: &[u8]) -> Seen {
    let mut et = u16::from_be_bytes([f[12], f[13]]);
    let mut l3 = &f[14..];
    if et == 0x8100 {
        et = u16::from_be_bytes([f[16], f[17]]);
        l3 = &f[18..];
    }
    match et {
        ETH_IPV4 => {
            let ihl = usize::from(l3[0] & 0x0f) * 4;
            Seen::V4 {
                proto: l3[9],
                src: l3[12..16].try_into().expect("4"),
                dst: l3[16..20].try_into().expect("4"),
                l4: l3[ihl..].to_vec(),
            }
        }
        ETH_IPV6 => Seen::V6 {
            next: l3[6],
            dst: l3[24..40].try_into().expect("16"),
        },
        ETH_ARP => Seen::Arp {
            op: u16::from_be_bytes([l3[6], l3[7]]),
            spa: l3[14..18].try_into().expect("4"),
        },
        other => Seen::Other(other),
    }
}

//! Internet checksum helpers: full computation (RFC 1071) and incremental update (RFC 1624)
//! for NAT rewrites of IPv4/IPv6 addresses and TCP/UDP ports or ICMP echo identifiers.
//!
//! The rewrite functions take the packet starting at its IP header plus the location of the
//! transport header ([`L4Location`], from [`locate_l4`] or the pipeline's own parser, which
//! knows about IPv6 extension headers). They patch the field and every checksum covering it:
//! the IPv4 header checksum, and the TCP, UDP or ICMPv6 checksum whose pseudo-header includes
//! the addresses (RFC 9293 section 3.1, RFC 768, RFC 8200 section 8.1). ICMPv4 has no
//! pseudo-header, so an address change leaves it alone.

use std::net::IpAddr;

use crate::flow::proto;

/// Where the transport header starts and what it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct L4Location {
    /// Byte offset of the transport header from the start of the IP header.
    pub offset: usize,
    /// IANA protocol number of the transport header.
    pub proto: u8,
}

/// Which end of the flow a rewrite touches.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Endpoint {
    /// The source address or port.
    Source,
    /// The destination address or port.
    Destination,
}

/// Why a rewrite was refused (the packet is left unchanged).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum RewriteError {
    /// The buffer ends before the field at this byte offset.
    #[error("packet truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// Byte 0 does not hold the IP version the operation needs.
    #[error("IP version nibble {found} at byte 0 does not match the address family")]
    Version {
        /// The version found.
        found: u8,
    },
    /// The transport protocol has no port or identifier to rewrite.
    #[error("protocol {0} has no port to rewrite")]
    NoPorts(u8),
}

/// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`, for a 16-bit word `m` changed to `m'`.
#[inline]
pub fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!checksum) + u32::from(!old) + u32::from(new);
    !fold(sum)
}

/// RFC 1624 update for a run of bytes at an even offset of the summed data (`old.len()`
/// must equal `new.len()` and be even; 4 for an IPv4 address, 16 for IPv6).
#[inline]
pub fn update_bytes(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut sum = u32::from(!checksum);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        sum += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([n[0], n[1]]));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !fold(sum)
}

#[inline]
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// One's-complement sum of `data` (odd length padded with a zero byte), not yet inverted.
pub fn ones_complement_sum(data: &[u8], initial: u32) -> u16 {
    let mut sum = u64::from(initial);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// RFC 1071 checksum of `data` (the value to store in a checksum field).
pub fn checksum(data: &[u8]) -> u16 {
    !ones_complement_sum(data, 0)
}

/// Full transport checksum of `packet[l4.offset..]` with its IPv4/IPv6 pseudo-header (the
/// checksum field itself must be zero). Returns `None` if the IP header is malformed.
/// Used by tests and by slow paths that build packets; the fast path uses the updates.
pub fn transport_checksum(packet: &[u8], l4: L4Location) -> Option<u16> {
    let seg = packet.get(l4.offset..)?;
    let len = seg.len() as u32;
    let mut sum: u32 = u32::from(l4.proto) + (len >> 16) + (len & 0xffff);
    let addrs = match packet.first()? >> 4 {
        4 => packet.get(12..20)?,
        6 => packet.get(8..40)?,
        _ => return None,
    };
    if packet[0] >> 4 == 4 && l4.proto == proto::ICMP {
        sum = 0; // ICMPv4 has no pseudo-header (RFC 792).
    } else {
        sum += u32::from(ones_complement_sum(addrs, 0));
    }
    Some(!ones_complement_sum(seg, sum))
}

fn need(packet: &[u8], n: usize) -> Result<(), RewriteError> {
    if packet.len() < n {
        Err(RewriteError::Truncated {
            need: n,
            have: packet.len(),
        })
    } else {
        Ok(())
    }
}

/// Find the transport header of an IP packet: IPv4 by IHL (`None` for non-first fragments,
/// which carry no transport header); IPv6 only when the fixed header's next header is the
/// transport itself (`None` when extension headers follow; the pipeline's parser knows better).
pub fn locate_l4(packet: &[u8]) -> Result<Option<L4Location>, RewriteError> {
    need(packet, 1)?;
    match packet[0] >> 4 {
        4 => {
            need(packet, 20)?;
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let frag_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
            if ihl < 20 || frag_offset != 0 {
                return Ok(None);
            }
            Ok(Some(L4Location {
                offset: ihl,
                proto: packet[9],
            }))
        }
        6 => {
            need(packet, 40)?;
            let nh = packet[6];
            Ok(
                matches!(nh, proto::TCP | proto::UDP | proto::ICMPV6).then_some(L4Location {
                    offset: 40,
                    proto: nh,
                }),
            )
        }
        found => Err(RewriteError::Version { found }),
    }
}

/// Offset of the transport checksum inside its header, and whether zero means "none" (UDP).
fn l4_checksum_field(proto: u8) -> Option<(usize, bool)> {
    match proto {
        proto::TCP => Some((16, false)),
        proto::UDP => Some((6, true)),
        proto::ICMPV6 => Some((2, false)),
        _ => None,
    }
}

fn patch_l4(
    packet: &mut [u8],
    l4: Option<L4Location>,
    old: &[u8],
    new: &[u8],
) -> Result<(), RewriteError> {
    let Some(l4) = l4 else { return Ok(()) };
    let Some((field, zero_is_none)) = l4_checksum_field(l4.proto) else {
        return Ok(());
    };
    let at = l4.offset + field;
    need(packet, at + 2)?;
    let c = u16::from_be_bytes([packet[at], packet[at + 1]]);
    if zero_is_none && c == 0 {
        return Ok(()); // UDP without checksum stays without.
    }
    let mut n = update_bytes(c, old, new);
    if zero_is_none && n == 0 {
        n = 0xffff; // RFC 768: a computed zero is sent as all ones.
    }
    packet[at..at + 2].copy_from_slice(&n.to_be_bytes());
    Ok(())
}

/// Rewrite the source or destination address and fix the IPv4 header checksum and the
/// transport checksum at `l4` (pass `None` when there is no transport header).
pub fn rewrite_addr(
    packet: &mut [u8],
    which: Endpoint,
    new: IpAddr,
    l4: Option<L4Location>,
) -> Result<(), RewriteError> {
    need(packet, 1)?;
    let version = packet[0] >> 4;
    match new {
        IpAddr::V4(a) => {
            if version != 4 {
                return Err(RewriteError::Version { found: version });
            }
            need(packet, 20)?;
            let at = if which == Endpoint::Source { 12 } else { 16 };
            let mut old = [0u8; 4];
            old.copy_from_slice(&packet[at..at + 4]);
            let new = a.octets();
            // Transport first: it checks its bounds before anything is written.
            patch_l4(packet, l4, &old, &new)?;
            let c = u16::from_be_bytes([packet[10], packet[11]]);
            packet[10..12].copy_from_slice(&update_bytes(c, &old, &new).to_be_bytes());
            packet[at..at + 4].copy_from_slice(&new);
            Ok(())
        }
        IpAddr::V6(a) => {
            if version != 6 {
                return Err(RewriteError::Version { found: version });
            }
            need(packet, 40)?;
            let at = if which == Endpoint::Source { 8 } else { 24 };
            let mut old = [0u8; 16];
            old.copy_from_slice(&packet[at..at + 16]);
            let new = a.octets();
            patch_l4(packet, l4, &old, &new)?;
            packet[at..at + 16].copy_from_slice(&new);
            Ok(())
        }
    }
}

/// Rewrite a TCP/UDP port, or the identifier of an ICMP/ICMPv6 echo (then `which` does not
/// matter: the identifier is both "ports"), fixing the transport checksum.
pub fn rewrite_port(
    packet: &mut [u8],
    which: Endpoint,
    new: u16,
    l4: L4Location,
) -> Result<(), RewriteError> {
    let (field, csum, zero_is_none) = match l4.proto {
        proto::TCP => (if which == Endpoint::Source { 0 } else { 2 }, 16, false),
        proto::UDP => (if which == Endpoint::Source { 0 } else { 2 }, 6, true),
        proto::ICMP | proto::ICMPV6 => (4, 2, false),
        p => return Err(RewriteError::NoPorts(p)),
    };
    let (at, c_at) = (l4.offset + field, l4.offset + csum);
    need(packet, at.max(c_at) + 2)?;
    let old = u16::from_be_bytes([packet[at], packet[at + 1]]);
    let c = u16::from_be_bytes([packet[c_at], packet[c_at + 1]]);
    if !(zero_is_none && c == 0) {
        let mut n = update_u16(c, old, new);
        if zero_is_none && n == 0 {
            n = 0xffff;
        }
        packet[c_at..c_at + 2].copy_from_slice(&n.to_be_bytes());
    }
    packet[at..at + 2].copy_from_slice(&new.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests;

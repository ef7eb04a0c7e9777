//! IP-in-IP encapsulation and decapsulation (RFC 2003) in place, with the outer header
//! built from a per-destination template.

use std::net::Ipv4Addr;

use tortie_wire::{Parsed, checksum, ipv4};

use crate::DropReason;
use crate::frame::Frame;

/// Length of an untagged Ethernet header.
const ETHERNET_LEN: usize = 14;

/// Length of the outer IPv4 header IP-in-IP adds.
pub const ENCAP_LEN: usize = ipv4::MIN_HEADER_LEN;

/// Outer TTL of encapsulated packets.
const OUTER_TTL: u8 = 64;

/// The outer IPv4 header from this node to one remote node with the fields every packet
/// shares filled in (version and length, TTL 64, protocol 4, addresses) and their
/// checksum sum, so that encapsulating a packet writes the header in one copy and adds
/// only its own TOS, length, identification and DF to the sum (RFC 1071's checksum over
/// the same words, summed in another order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncapTemplate {
    header: [u8; ENCAP_LEN],
    /// One's-complement sum (unfolded) of the template's 16-bit words.
    base_sum: u32,
}

impl EncapTemplate {
    /// The template of tunnels from `src` to `dst`.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        let mut header = [0u8; ENCAP_LEN];
        header[0] = 0x45;
        header[8] = OUTER_TTL;
        header[9] = ipv4::PROTO_IPIP;
        header[12..16].copy_from_slice(&src.octets());
        header[16..20].copy_from_slice(&dst.octets());
        Self {
            header,
            base_sum: checksum::sum(0, &header),
        }
    }

    /// The tunnel's destination.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            self.header[16],
            self.header[17],
            self.header[18],
            self.header[19],
        )
    }

    /// Writes the outer header of a packet with `tos`, `ident` and `dont_fragment` copied
    /// from the inner header and `total_len` into `h`.
    #[inline]
    fn write(&self, h: &mut [u8; ENCAP_LEN], tos: u8, total_len: u16, ident: u16, df: bool) {
        *h = self.header;
        h[1] = tos;
        h[2..4].copy_from_slice(&total_len.to_be_bytes());
        h[4..6].copy_from_slice(&ident.to_be_bytes());
        let flags = if df { 0x40 } else { 0 };
        h[6] = flags;
        let sum = self.base_sum
            + u32::from(tos)
            + u32::from(total_len)
            + u32::from(ident)
            + (u32::from(flags) << 8);
        h[10..12].copy_from_slice(&checksum::finish(sum).to_be_bytes());
    }
}

/// Encapsulates the IPv4 packet in IP-in-IP from `src` to `dst` (RFC 2003 section 3.1): the
/// Ethernet header moves 20 bytes into the headroom and the outer header goes between it and
/// the inner packet. The outer TTL is 64; TOS and DF are copied from the inner header.
pub fn encap(
    frame: &mut Frame<'_>,
    p: &Parsed,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<(), DropReason> {
    encap_with(frame, p, &EncapTemplate::new(src, dst))
}

/// [`encap`] with the outer header taken from `template`.
#[inline]
pub fn encap_with(
    frame: &mut Frame<'_>,
    p: &Parsed,
    template: &EncapTemplate,
) -> Result<(), DropReason> {
    let l3 = usize::from(p.l3_offset);
    let ip_len = usize::from(p.ip_len);
    let (buf, offset, _) = frame.raw();
    let new_offset = offset
        .checked_sub(ENCAP_LEN)
        .ok_or(DropReason::NoHeadroom)?;
    let total_len = u16::try_from(ip_len + ENCAP_LEN).map_err(|_| DropReason::MtuExceeded)?;
    let inner = offset + l3;
    let Some(inner_header) = buf
        .get(inner..)
        .and_then(<[u8]>::first_chunk::<{ ipv4::MIN_HEADER_LEN }>)
    else {
        return Err(DropReason::MtuExceeded);
    };
    let (tos, ident, df) = (
        inner_header[1],
        u16::from_be_bytes([inner_header[4], inner_header[5]]),
        inner_header[6] & 0x40 != 0,
    );
    if l3 == ETHERNET_LEN {
        // The usual untagged header: a fixed-size copy, not a `memmove` call.
        let mut eth = [0u8; ETHERNET_LEN];
        eth.copy_from_slice(&buf[offset..offset + ETHERNET_LEN]);
        buf[new_offset..new_offset + ETHERNET_LEN].copy_from_slice(&eth);
    } else {
        buf.copy_within(offset..offset + l3, new_offset);
    }
    // The outer header ends where the inner one starts, so it always fits.
    let Some(outer) = buf
        .get_mut(new_offset + l3..)
        .and_then(<[u8]>::first_chunk_mut::<ENCAP_LEN>)
    else {
        return Err(DropReason::MtuExceeded);
    };
    template.write(outer, tos, total_len, ident, df);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The template writes exactly the header `Ipv4Repr::emit` builds from the same
        /// fields.
        #[test]
        fn template_header_equals_emitted_header(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            tos in any::<u8>(),
            ident in any::<u16>(),
            df in any::<bool>(),
            payload_len in 0u16..=(u16::MAX - ENCAP_LEN as u16),
        ) {
            let t = EncapTemplate::new(Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut ours = [0u8; ENCAP_LEN];
            t.write(&mut ours, tos, payload_len + ENCAP_LEN as u16, ident, df);
            let mut want = [0u8; ENCAP_LEN];
            ipv4::Ipv4Repr {
                src,
                dst,
                protocol: ipv4::PROTO_IPIP,
                ttl: OUTER_TTL,
                tos,
                ident,
                dont_fragment: df,
                payload_len,
            }
            .emit(&mut want)
            .unwrap();
            prop_assert_eq!(ours, want);
            prop_assert_eq!(t.dst(), Ipv4Addr::from(dst));
        }
    }
}

//! IPv4 headers with options and fragments (RFC 791 section 3.1).
//!
//! [`Ipv4Header::new_checked`] verifies version, IHL, total length and (outside fuzzing
//! builds) the header checksum; afterwards no accessor can panic. Trailing Ethernet padding
//! beyond the total length is allowed and ignored.

use crate::{WireError, checksum};

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Protocol number of IP-in-IP (RFC 2003 section 3.1).
pub const PROTO_IPIP: u8 = 4;

/// Where an IPv4 packet sits among the fragments of its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// A whole datagram (offset 0, MF clear).
    Whole,
    /// The first fragment (offset 0, MF set): carries the transport header.
    First,
    /// A later fragment (offset > 0): no transport header.
    Later,
}

/// A checked view over an IPv4 header and its payload.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Header<'a> {
    bytes: &'a [u8],
    /// The fixed part of the header: its fields are read without further bounds checks.
    fixed: &'a [u8; MIN_HEADER_LEN],
    header_len: usize,
    total_len: usize,
}

impl<'a> Ipv4Header<'a> {
    /// Checks the header; `bytes` starts at the IPv4 header and may extend past the packet.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        let view = Self::new_unverified(bytes)?;
        if cfg!(feature = "fuzzing") {
            return Ok(view);
        }
        // The option-less header (nearly every packet) sums as five words in straight-line
        // code; headers with options take the general loop.
        let valid = if view.header_len == MIN_HEADER_LEN {
            checksum::verify20(view.fixed)
        } else {
            checksum::checksum(&bytes[..view.header_len]) == 0
        };
        if !valid {
            return Err(WireError::Ipv4BadChecksum);
        }
        Ok(view)
    }

    /// Checks everything but the header checksum: used on headers the fastpath wrote itself
    /// and on headers embedded in ICMP errors, whose checksum is not ours to judge.
    #[inline]
    pub fn new_unverified(bytes: &'a [u8]) -> Result<Self, WireError> {
        let Some(fixed) = bytes.first_chunk::<MIN_HEADER_LEN>() else {
            return Err(WireError::Ipv4Truncated);
        };
        if fixed[0] >> 4 != 4 {
            return Err(WireError::Ipv4BadHeader);
        }
        let header_len = usize::from(fixed[0] & 0x0f) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(WireError::Ipv4BadHeader);
        }
        if bytes.len() < header_len {
            return Err(WireError::Ipv4Truncated);
        }
        let total_len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        if total_len < header_len || total_len > bytes.len() {
            return Err(WireError::Ipv4BadLength);
        }
        Ok(Self {
            bytes,
            fixed,
            header_len,
            total_len,
        })
    }

    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Total length in bytes (header and payload).
    pub fn total_len(&self) -> usize {
        self.total_len
    }

    /// The DSCP/ECN byte.
    pub fn tos(&self) -> u8 {
        self.fixed[1]
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        u16::from_be_bytes([self.fixed[4], self.fixed[5]])
    }

    /// The Don't Fragment flag.
    pub fn dont_fragment(&self) -> bool {
        self.fixed[6] & 0x40 != 0
    }

    /// The More Fragments flag.
    pub fn more_fragments(&self) -> bool {
        self.fixed[6] & 0x20 != 0
    }

    /// Fragment offset in 8-byte units.
    pub fn fragment_offset(&self) -> u16 {
        u16::from_be_bytes([self.fixed[6] & 0x1f, self.fixed[7]])
    }

    /// Classifies the packet among its datagram's fragments.
    pub fn fragment(&self) -> Fragment {
        match (self.fragment_offset(), self.more_fragments()) {
            (0, false) => Fragment::Whole,
            (0, true) => Fragment::First,
            _ => Fragment::Later,
        }
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.fixed[8]
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.fixed[9]
    }

    /// The header checksum field.
    pub fn header_checksum(&self) -> u16 {
        u16::from_be_bytes([self.fixed[10], self.fixed[11]])
    }

    /// Source address.
    pub fn src(&self) -> [u8; 4] {
        [
            self.fixed[12],
            self.fixed[13],
            self.fixed[14],
            self.fixed[15],
        ]
    }

    /// Destination address.
    pub fn dst(&self) -> [u8; 4] {
        [
            self.fixed[16],
            self.fixed[17],
            self.fixed[18],
            self.fixed[19],
        ]
    }

    /// The payload up to the total length.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len..self.total_len]
    }
}

/// The fields of an option-less IPv4 header the fastpath writes (encapsulation, ICMP errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Payload protocol.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// DSCP/ECN byte.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment flag.
    pub dont_fragment: bool,
    /// Payload length (the total length is this plus 20).
    pub payload_len: u16,
}

impl Ipv4Repr {
    /// Writes the 20-byte header with its checksum into the start of `buf`.
    ///
    /// Returns `None` if `buf` is too short or the total length does not fit 16 bits.
    pub fn emit(&self, buf: &mut [u8]) -> Option<()> {
        let total = self.payload_len.checked_add(MIN_HEADER_LEN as u16)?;
        let h = buf.get_mut(..MIN_HEADER_LEN)?;
        h[0] = 0x45;
        h[1] = self.tos;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&self.ident.to_be_bytes());
        h[6] = if self.dont_fragment { 0x40 } else { 0 };
        h[7] = 0;
        h[8] = self.ttl;
        h[9] = self.protocol;
        h[10] = 0;
        h[11] = 0;
        h[12..16].copy_from_slice(&self.src);
        h[16..20].copy_from_slice(&self.dst);
        let c = checksum::checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        Some(())
    }
}

/// Decrements the TTL of the header at the start of `h` and patches its checksum
/// incrementally (RFC 1624 section 4). Returns the new TTL, or `None` if `h` is too short.
pub fn decrement_ttl(h: &mut [u8]) -> Option<u8> {
    if h.len() < MIN_HEADER_LEN {
        return None;
    }
    let old_word = u16::from_be_bytes([h[8], h[9]]);
    h[8] = h[8].saturating_sub(1);
    let new_word = u16::from_be_bytes([h[8], h[9]]);
    let old_sum = u16::from_be_bytes([h[10], h[11]]);
    let new_sum = checksum::update16(old_sum, old_word, new_word);
    h[10..12].copy_from_slice(&new_sum.to_be_bytes());
    Some(h[8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; 28] {
        let mut b = [0u8; 28];
        Ipv4Repr {
            src: [198, 18, 0, 1],
            dst: [198, 18, 0, 2],
            protocol: 17,
            ttl: 64,
            tos: 0,
            ident: 7,
            dont_fragment: true,
            payload_len: 8,
        }
        .emit(&mut b)
        .unwrap();
        b
    }

    #[test]
    fn emitted_header_parses() {
        let b = sample();
        let h = Ipv4Header::new_checked(&b).unwrap();
        assert_eq!(h.header_len(), 20);
        assert_eq!(h.total_len(), 28);
        assert_eq!(h.protocol(), 17);
        assert_eq!(h.ttl(), 64);
        assert!(h.dont_fragment());
        assert_eq!(h.fragment(), Fragment::Whole);
        assert_eq!(h.src(), [198, 18, 0, 1]);
        assert_eq!(h.payload().len(), 8);
    }

    #[test]
    fn bad_checksum_is_rejected() {
        let mut b = sample();
        b[11] ^= 1;
        assert_eq!(
            Ipv4Header::new_checked(&b).unwrap_err(),
            WireError::Ipv4BadChecksum
        );
        assert!(Ipv4Header::new_unverified(&b).is_ok());
    }

    #[test]
    fn length_checks() {
        let b = sample();
        assert_eq!(
            Ipv4Header::new_checked(&b[..27]).unwrap_err(),
            WireError::Ipv4BadLength
        );
        assert_eq!(
            Ipv4Header::new_checked(&b[..19]).unwrap_err(),
            WireError::Ipv4Truncated
        );
        let mut c = b;
        c[0] = 0x44;
        assert_eq!(
            Ipv4Header::new_checked(&c).unwrap_err(),
            WireError::Ipv4BadHeader
        );
        let mut d = b;
        d[0] = 0x65;
        assert_eq!(
            Ipv4Header::new_checked(&d).unwrap_err(),
            WireError::Ipv4BadHeader
        );
    }

    #[test]
    fn fragments_are_classified() {
        let mut b = sample();
        b[6] = 0x20; // MF
        let h = Ipv4Header::new_unverified(&b).unwrap();
        assert_eq!(h.fragment(), Fragment::First);
        b[6] = 0x00;
        b[7] = 0x10;
        let h = Ipv4Header::new_unverified(&b).unwrap();
        assert_eq!(h.fragment(), Fragment::Later);
        assert_eq!(h.fragment_offset(), 16);
    }

    #[test]
    fn ttl_decrement_keeps_checksum_valid() {
        let mut b = sample();
        assert_eq!(decrement_ttl(&mut b), Some(63));
        assert!(Ipv4Header::new_checked(&b).is_ok());
    }
}

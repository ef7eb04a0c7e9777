//! IPv6 headers and the extension-header chain (RFC 8200 sections 3 and 4).
//!
//! [`Ipv6Header::new_checked`] verifies the fixed header and that the payload length fits the
//! frame. [`Ipv6Header::walk_extensions`] follows Hop-by-Hop, Routing, Fragment, Destination
//! Options and AH headers up to [`MAX_EXTENSIONS`] deep and stops at the first upper-layer
//! header (or ESP / No Next Header, which it reports as the upper layer).

use crate::WireError;

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// The longest extension chain the fastpath walks; longer chains are dropped.
pub const MAX_EXTENSIONS: usize = 8;

/// IPv6 next-header values of the extension headers we walk (RFC 8200 section 4.1, RFC 4302).
pub mod next_header {
    /// Hop-by-Hop Options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing.
    pub const ROUTING: u8 = 43;
    /// Fragment.
    pub const FRAGMENT: u8 = 44;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// Destination Options.
    pub const DEST_OPTS: u8 = 60;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No Next Header.
    pub const NONE: u8 = 59;
}

/// A checked view over an IPv6 header.
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Header<'a> {
    bytes: &'a [u8],
    total_len: usize,
}

/// What the extension-header walk found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extensions {
    /// The upper-layer protocol number.
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub upper_offset: usize,
    /// The Fragment header, if one was present: offset in 8-byte units, M flag, identification.
    pub fragment: Option<FragmentHeader>,
}

/// The fields of an IPv6 Fragment header (RFC 8200 section 4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Fragment offset in 8-byte units.
    pub offset: u16,
    /// The M (more fragments) flag.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

impl<'a> Ipv6Header<'a> {
    /// Checks the fixed header; `bytes` starts at the IPv6 header.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < HEADER_LEN || bytes[0] >> 4 != 6 {
            return Err(WireError::Ipv6BadHeader);
        }
        let payload_len = usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
        let total_len = HEADER_LEN + payload_len;
        if total_len > bytes.len() {
            return Err(WireError::Ipv6BadLength);
        }
        Ok(Self { bytes, total_len })
    }

    /// Header plus payload length.
    pub fn total_len(&self) -> usize {
        self.total_len
    }

    /// The Next Header field of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.bytes[6]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.bytes[7]
    }

    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        (self.bytes[0] << 4) | (self.bytes[1] >> 4)
    }

    /// Source address.
    pub fn src(&self) -> [u8; 16] {
        addr_at(self.bytes, 8)
    }

    /// Destination address.
    pub fn dst(&self) -> [u8; 16] {
        addr_at(self.bytes, 24)
    }

    /// Walks the extension-header chain (RFC 8200 section 4.1 order is not enforced: any order
    /// is walked, as receivers must).
    pub fn walk_extensions(&self) -> Result<Extensions, WireError> {
        let mut protocol = self.next_header();
        let mut offset = HEADER_LEN;
        let mut fragment = None;
        for _ in 0..MAX_EXTENSIONS {
            let len = match protocol {
                next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTS => {
                    // Hdr Ext Len counts 8-octet units beyond the first 8 (section 4.3).
                    let b = self
                        .bytes
                        .get(offset..offset + 2)
                        .ok_or(WireError::Ipv6BadExtension)?;
                    8 + usize::from(b[1]) * 8
                }
                next_header::AH => {
                    // RFC 4302 section 2.2: Payload Len is in 4-octet units, minus 2.
                    let b = self
                        .bytes
                        .get(offset..offset + 2)
                        .ok_or(WireError::Ipv6BadExtension)?;
                    (usize::from(b[1]) + 2) * 4
                }
                next_header::FRAGMENT => {
                    let b = self
                        .bytes
                        .get(offset..offset + 8)
                        .ok_or(WireError::Ipv6BadExtension)?;
                    let off_m = u16::from_be_bytes([b[2], b[3]]);
                    fragment = Some(FragmentHeader {
                        offset: off_m >> 3,
                        more: off_m & 1 != 0,
                        ident: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                    });
                    8
                }
                _ => {
                    return Ok(Extensions {
                        protocol,
                        upper_offset: offset,
                        fragment,
                    });
                }
            };
            if offset + len > self.total_len {
                return Err(WireError::Ipv6BadExtension);
            }
            protocol = self.bytes[offset];
            offset += len;
        }
        match protocol {
            next_header::HOP_BY_HOP
            | next_header::ROUTING
            | next_header::DEST_OPTS
            | next_header::AH
            | next_header::FRAGMENT => Err(WireError::Ipv6BadExtension),
            _ => Ok(Extensions {
                protocol,
                upper_offset: offset,
                fragment,
            }),
        }
    }

    /// The bytes after the fixed header, up to the payload length.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..self.total_len]
    }
}

fn addr_at(bytes: &[u8], at: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&bytes[at..at + 16]);
    a
}

/// The fields of an extension-less IPv6 header the fastpath writes (ICMPv6 errors, ND).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Payload length.
    pub payload_len: u16,
}

impl Ipv6Repr {
    /// Writes the 40-byte header into the start of `buf`; `None` if `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Option<()> {
        let h = buf.get_mut(..HEADER_LEN)?;
        h[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        h[4..6].copy_from_slice(&self.payload_len.to_be_bytes());
        h[6] = self.next_header;
        h[7] = self.hop_limit;
        h[8..24].copy_from_slice(&self.src);
        h[24..40].copy_from_slice(&self.dst);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        Ipv6Repr {
            src: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            dst: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            next_header: next,
            hop_limit: 64,
            payload_len: payload.len() as u16,
        }
        .emit(&mut b)
        .unwrap();
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn no_extensions() {
        let p = packet(17, &[0; 8]);
        let h = Ipv6Header::new_checked(&p).unwrap();
        let e = h.walk_extensions().unwrap();
        assert_eq!(
            e,
            Extensions {
                protocol: 17,
                upper_offset: 40,
                fragment: None
            }
        );
        assert_eq!(h.hop_limit(), 64);
    }

    #[test]
    fn hop_by_hop_then_fragment_then_tcp() {
        let mut ext = vec![next_header::FRAGMENT, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[6, 0, 0x00, 0x11, 0, 0, 0, 9]);
        ext.extend_from_slice(&[0; 20]);
        let p = packet(next_header::HOP_BY_HOP, &ext);
        let e = Ipv6Header::new_checked(&p)
            .unwrap()
            .walk_extensions()
            .unwrap();
        assert_eq!(e.protocol, 6);
        assert_eq!(e.upper_offset, 56);
        assert_eq!(
            e.fragment,
            Some(FragmentHeader {
                offset: 2,
                more: true,
                ident: 9
            })
        );
    }

    #[test]
    fn truncated_extension_is_an_error() {
        let p = packet(next_header::ROUTING, &[17, 4, 0, 0]);
        let h = Ipv6Header::new_checked(&p).unwrap();
        assert_eq!(
            h.walk_extensions().unwrap_err(),
            WireError::Ipv6BadExtension
        );
    }

    #[test]
    fn overlong_chain_is_an_error() {
        let mut ext = Vec::new();
        for _ in 0..MAX_EXTENSIONS + 1 {
            ext.extend_from_slice(&[next_header::DEST_OPTS, 0, 0, 0, 0, 0, 0, 0]);
        }
        let p = packet(next_header::DEST_OPTS, &ext);
        let h = Ipv6Header::new_checked(&p).unwrap();
        assert_eq!(
            h.walk_extensions().unwrap_err(),
            WireError::Ipv6BadExtension
        );
    }

    #[test]
    fn payload_length_past_frame() {
        let mut p = packet(17, &[0; 8]);
        p.truncate(44);
        assert_eq!(
            Ipv6Header::new_checked(&p).unwrap_err(),
            WireError::Ipv6BadLength
        );
    }
}

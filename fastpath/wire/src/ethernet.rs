//! Ethernet II frames with at most one 802.1Q tag (IEEE 802.3 clause 3, IEEE 802.1Q
//! section 9).
//!
//! The view is checked once by [`EthernetFrame::new_checked`]; afterwards no accessor can
//! panic. A frame with an 802.1Q tag is tolerated: the view reports the inner EtherType and
//! where the payload starts, and keeps the VLAN id for the trace.

use crate::WireError;

/// A 48-bit MAC address.
pub type MacAddr = [u8; 6];

/// The MAC the fastpath answers with for every workload-side neighbour lookup, as Calico does.
pub const WORKLOAD_GATEWAY_MAC: MacAddr = [0xee; 6];

/// EtherType values the pipeline acts on.
pub mod ethertype {
    /// IPv4 (RFC 894).
    pub const IPV4: u16 = 0x0800;
    /// ARP (RFC 826).
    pub const ARP: u16 = 0x0806;
    /// IPv6 (RFC 2464).
    pub const IPV6: u16 = 0x86dd;
    /// An IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// An IEEE 802.1ad service VLAN tag (tolerated like 802.1Q).
    pub const QINQ: u16 = 0x88a8;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of one 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// A checked view over an Ethernet II frame.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<'a> {
    bytes: &'a [u8],
    ethertype: u16,
    vlan: Option<u16>,
    payload_offset: usize,
}

impl<'a> EthernetFrame<'a> {
    /// Checks that the header (and the VLAN tag, if any) is present.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::EthernetTruncated);
        }
        let outer = u16::from_be_bytes([bytes[12], bytes[13]]);
        if outer == ethertype::VLAN || outer == ethertype::QINQ {
            if bytes.len() < HEADER_LEN + VLAN_TAG_LEN {
                return Err(WireError::EthernetTruncated);
            }
            let tci = u16::from_be_bytes([bytes[14], bytes[15]]);
            let inner = u16::from_be_bytes([bytes[16], bytes[17]]);
            return Ok(Self {
                bytes,
                ethertype: inner,
                vlan: Some(tci & 0x0fff),
                payload_offset: HEADER_LEN + VLAN_TAG_LEN,
            });
        }
        Ok(Self {
            bytes,
            ethertype: outer,
            vlan: None,
            payload_offset: HEADER_LEN,
        })
    }

    /// Destination MAC.
    pub fn dst(&self) -> MacAddr {
        mac_at(self.bytes, 0)
    }

    /// Source MAC.
    pub fn src(&self) -> MacAddr {
        mac_at(self.bytes, 6)
    }

    /// The EtherType after any VLAN tag.
    pub fn ethertype(&self) -> u16 {
        self.ethertype
    }

    /// The VLAN id of the 802.1Q tag, if the frame carried one.
    pub fn vlan(&self) -> Option<u16> {
        self.vlan
    }

    /// Offset of the first payload byte (14, or 18 with a tag).
    pub fn payload_offset(&self) -> usize {
        self.payload_offset
    }

    /// The payload bytes.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.payload_offset..]
    }
}

fn mac_at(bytes: &[u8], at: usize) -> MacAddr {
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&bytes[at..at + 6]);
    mac
}

/// Writes an untagged Ethernet II header into the first 14 bytes of `buf`.
///
/// Returns `None` if `buf` is shorter than 14 bytes.
pub fn write_header(buf: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) -> Option<()> {
    let header = buf.get_mut(..HEADER_LEN)?;
    header[..6].copy_from_slice(&dst);
    header[6..12].copy_from_slice(&src);
    header[12..14].copy_from_slice(&ethertype.to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_frame() {
        let mut f = [0u8; 20];
        write_header(&mut f, [1; 6], [2; 6], ethertype::IPV4).unwrap();
        let v = EthernetFrame::new_checked(&f).unwrap();
        assert_eq!(v.dst(), [1; 6]);
        assert_eq!(v.src(), [2; 6]);
        assert_eq!(v.ethertype(), ethertype::IPV4);
        assert_eq!(v.vlan(), None);
        assert_eq!(v.payload().len(), 6);
    }

    #[test]
    fn tagged_frame_reports_inner_type() {
        let mut f = [0u8; 18];
        f[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        f[14..16].copy_from_slice(&0x2064u16.to_be_bytes());
        f[16..18].copy_from_slice(&ethertype::IPV6.to_be_bytes());
        let v = EthernetFrame::new_checked(&f).unwrap();
        assert_eq!(v.ethertype(), ethertype::IPV6);
        assert_eq!(v.vlan(), Some(0x064));
        assert_eq!(v.payload_offset(), 18);
    }

    #[test]
    fn short_frames_are_errors() {
        assert_eq!(
            EthernetFrame::new_checked(&[0; 13]).unwrap_err(),
            WireError::EthernetTruncated
        );
        let mut f = [0u8; 16];
        f[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        assert_eq!(
            EthernetFrame::new_checked(&f).unwrap_err(),
            WireError::EthernetTruncated
        );
    }
}

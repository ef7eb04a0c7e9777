//! ARP for IPv4 over Ethernet (RFC 826), the only ARP the fastpath answers.

use crate::WireError;
use crate::ethernet::MacAddr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// ARP opcode: request.
pub const OP_REQUEST: u16 = 1;
/// ARP opcode: reply.
pub const OP_REPLY: u16 = 2;

/// A checked view over an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug)]
pub struct ArpPacket<'a> {
    bytes: &'a [u8],
}

impl<'a> ArpPacket<'a> {
    /// Checks the length and that hardware type is Ethernet (1), protocol type IPv4, hardware
    /// length 6 and protocol length 4 (RFC 826, "Packet format").
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < PACKET_LEN {
            return Err(WireError::ArpMalformed);
        }
        let htype = u16::from_be_bytes([bytes[0], bytes[1]]);
        let ptype = u16::from_be_bytes([bytes[2], bytes[3]]);
        if htype != 1 || ptype != crate::ethernet::ethertype::IPV4 || bytes[4] != 6 || bytes[5] != 4
        {
            return Err(WireError::ArpMalformed);
        }
        Ok(Self { bytes })
    }

    /// The opcode (1 request, 2 reply).
    pub fn op(&self) -> u16 {
        u16::from_be_bytes([self.bytes[6], self.bytes[7]])
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.bytes[8..14]);
        m
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> [u8; 4] {
        [
            self.bytes[14],
            self.bytes[15],
            self.bytes[16],
            self.bytes[17],
        ]
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> [u8; 4] {
        [
            self.bytes[24],
            self.bytes[25],
            self.bytes[26],
            self.bytes[27],
        ]
    }
}

/// Turns the ARP request in `arp` (at least 28 bytes, already checked) into the reply that
/// says `target_ip` is at `our_mac`, in place (RFC 826, "Packet Reception": swap the sender
/// and target fields, set our hardware address as sender, opcode reply).
pub fn write_reply(arp: &mut [u8], our_mac: MacAddr) -> Option<()> {
    let arp = arp.get_mut(..PACKET_LEN)?;
    let mut requester_mac = [0u8; 6];
    requester_mac.copy_from_slice(&arp[8..14]);
    let mut requester_ip = [0u8; 4];
    requester_ip.copy_from_slice(&arp[14..18]);
    let mut target_ip = [0u8; 4];
    target_ip.copy_from_slice(&arp[24..28]);
    arp[6..8].copy_from_slice(&OP_REPLY.to_be_bytes());
    arp[8..14].copy_from_slice(&our_mac);
    arp[14..18].copy_from_slice(&target_ip);
    arp[18..24].copy_from_slice(&requester_mac);
    arp[24..28].copy_from_slice(&requester_ip);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> [u8; 28] {
        let mut p = [0u8; 28];
        p[..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        p[8..14].copy_from_slice(&[2; 6]);
        p[14..18].copy_from_slice(&[198, 18, 0, 2]);
        p[24..28].copy_from_slice(&[169, 254, 1, 1]);
        p
    }

    #[test]
    fn request_fields() {
        let p = request();
        let v = ArpPacket::new_checked(&p).unwrap();
        assert_eq!(v.op(), OP_REQUEST);
        assert_eq!(v.sender_mac(), [2; 6]);
        assert_eq!(v.sender_ip(), [198, 18, 0, 2]);
        assert_eq!(v.target_ip(), [169, 254, 1, 1]);
    }

    #[test]
    fn reply_swaps_fields() {
        let mut p = request();
        write_reply(&mut p, [0xee; 6]).unwrap();
        let v = ArpPacket::new_checked(&p).unwrap();
        assert_eq!(v.op(), OP_REPLY);
        assert_eq!(v.sender_mac(), [0xee; 6]);
        assert_eq!(v.sender_ip(), [169, 254, 1, 1]);
        assert_eq!(v.target_ip(), [198, 18, 0, 2]);
        assert_eq!(&p[18..24], &[2; 6]);
    }

    #[test]
    fn rejects_non_ethernet_ipv4() {
        let mut p = request();
        p[5] = 16;
        assert!(ArpPacket::new_checked(&p).is_err());
        assert!(ArpPacket::new_checked(&p[..27]).is_err());
    }
}

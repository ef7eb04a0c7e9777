//! Transport headers: TCP (RFC 9293 section 3.1), UDP (RFC 768), SCTP common header
//! (RFC 9260 section 3.1), ICMP (RFC 792) and ICMPv6 (RFC 4443 section 2.1).
//!
//! Each view checks its fixed length once; accessors cannot panic afterwards.

use crate::WireError;

/// IP protocol numbers the pipeline understands.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IP-in-IP.
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// TCP flag bits (RFC 9293 section 3.1).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// Offset of the checksum field in a TCP header.
pub const TCP_CHECKSUM_OFFSET: usize = 16;
/// Offset of the checksum field in a UDP header.
pub const UDP_CHECKSUM_OFFSET: usize = 6;
/// Offset of the checksum field in an ICMP/ICMPv6 header.
pub const ICMP_CHECKSUM_OFFSET: usize = 2;

/// A checked TCP header view.
#[derive(Clone, Copy, Debug)]
pub struct TcpHeader<'a> {
    bytes: &'a [u8],
}

impl<'a> TcpHeader<'a> {
    /// Checks the 20-byte fixed header and that the data offset fits the segment.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < 20 {
            return Err(WireError::TcpMalformed);
        }
        let data_offset = usize::from(bytes[12] >> 4) * 4;
        if data_offset < 20 || data_offset > bytes.len() {
            return Err(WireError::TcpMalformed);
        }
        Ok(Self { bytes })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes([self.bytes[0], self.bytes[1]])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }

    /// The flag byte (CWR ECE URG ACK PSH RST SYN FIN).
    pub fn flags(&self) -> u8 {
        self.bytes[13]
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.bytes[12] >> 4) * 4
    }
}

/// A checked UDP header view.
#[derive(Clone, Copy, Debug)]
pub struct UdpHeader<'a> {
    bytes: &'a [u8],
}

impl<'a> UdpHeader<'a> {
    /// Checks the 8-byte header and that the length field lies between 8 and the datagram.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < 8 {
            return Err(WireError::UdpMalformed);
        }
        let len = usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
        if len < 8 || len > bytes.len() {
            return Err(WireError::UdpMalformed);
        }
        Ok(Self { bytes })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes([self.bytes[0], self.bytes[1]])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }

    /// The checksum field (0 means "none" over IPv4, RFC 768).
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.bytes[6], self.bytes[7]])
    }
}

/// A checked SCTP common-header view.
#[derive(Clone, Copy, Debug)]
pub struct SctpHeader<'a> {
    bytes: &'a [u8],
}

impl<'a> SctpHeader<'a> {
    /// Checks the 12-byte common header.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < 12 {
            return Err(WireError::SctpMalformed);
        }
        Ok(Self { bytes })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes([self.bytes[0], self.bytes[1]])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }
}

/// A checked ICMP or ICMPv6 header view (both share the type/code/checksum layout).
#[derive(Clone, Copy, Debug)]
pub struct IcmpHeader<'a> {
    bytes: &'a [u8],
}

impl<'a> IcmpHeader<'a> {
    /// Checks the 8-byte header (type, code, checksum and the 4-byte rest of header).
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < 8 {
            return Err(WireError::IcmpMalformed);
        }
        Ok(Self { bytes })
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.bytes[0]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.bytes[1]
    }

    /// The echo identifier (bytes 4..6), meaningful for echo request/reply.
    pub fn echo_ident(&self) -> u16 {
        u16::from_be_bytes([self.bytes[4], self.bytes[5]])
    }

    /// The bytes after the 8-byte header (for errors: the invoking packet).
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[8..]
    }
}

/// ICMP (v4) message types the pipeline acts on (RFC 792).
pub mod icmpv4 {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Code of "fragmentation needed and DF set" (RFC 1191 section 4).
    pub const CODE_FRAG_NEEDED: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 12;

    /// Whether `t` is an error message that quotes the invoking packet.
    pub const fn is_error(t: u8) -> bool {
        matches!(t, DEST_UNREACHABLE | TIME_EXCEEDED | PARAMETER_PROBLEM)
    }
}

/// ICMPv6 message types the pipeline acts on (RFC 4443, RFC 4861).
pub mod icmpv6 {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Router solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;

    /// Whether `t` is an error message that quotes the invoking packet.
    pub const fn is_error(t: u8) -> bool {
        t < 128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_data_offset_is_checked() {
        let mut b = [0u8; 24];
        b[12] = 0x50;
        assert!(TcpHeader::new_checked(&b).is_ok());
        b[12] = 0x40;
        assert!(TcpHeader::new_checked(&b).is_err());
        b[12] = 0x70;
        assert!(TcpHeader::new_checked(&b).is_err());
        assert!(TcpHeader::new_checked(&b[..19]).is_err());
    }

    #[test]
    fn tcp_fields() {
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&[0x30, 0x39, 0x00, 0x50]);
        b[12] = 0x50;
        b[13] = tcp_flags::SYN | tcp_flags::ACK;
        let t = TcpHeader::new_checked(&b).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (12345, 80));
        assert_eq!(t.flags(), 0x12);
        assert_eq!(t.header_len(), 20);
    }

    #[test]
    fn udp_length_is_checked() {
        let mut b = [0u8; 12];
        b[4..6].copy_from_slice(&12u16.to_be_bytes());
        assert!(UdpHeader::new_checked(&b).is_ok());
        b[4..6].copy_from_slice(&13u16.to_be_bytes());
        assert!(UdpHeader::new_checked(&b).is_err());
        b[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert!(UdpHeader::new_checked(&b).is_err());
    }

    #[test]
    fn short_sctp_and_icmp() {
        assert!(SctpHeader::new_checked(&[0; 11]).is_err());
        assert!(IcmpHeader::new_checked(&[0; 7]).is_err());
        let i = IcmpHeader::new_checked(&[8, 0, 0, 0, 0, 7, 0, 1, 9]).unwrap();
        assert_eq!((i.msg_type(), i.code(), i.echo_ident()), (8, 0, 7));
        assert_eq!(i.body(), &[9]);
    }
}

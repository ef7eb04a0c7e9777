//! What the connection-rate end hosts put between smoltcp and the wire: a batch of received
//! IP packets copied out of the device, a one-packet smoltcp [`Device`] that feeds one of
//! them to one connection's socket set, and the table that finds that connection.
//!
//! smoltcp matches an incoming segment by asking every socket of a `SocketSet` in turn and
//! walks every socket again on each egress poll, so one set holding a few hundred sockets
//! costs a few hundred checks per packet. The end hosts instead give each connection its
//! own one-socket set and find it by the segment's 4-tuple here (a hash table, as a kernel
//! stack's established-socket lookup), so a packet costs one lookup and one socket.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{IpProtocol, Ipv4Address, Ipv4Packet, TcpPacket};

/// IP MTU offered to smoltcp.
pub const MTU: usize = 1500;
/// Packets moved per batch (receive and the burst size smoltcp is told).
pub const BATCH: usize = 64;

/// Somewhere smoltcp can write packets to send.
pub trait Transmit {
    /// Room for one packet.
    type Token<'a>: TxToken
    where
        Self: 'a;
    /// Room for the next packet (a token that finds no room counts and drops the packet).
    fn token(&mut self) -> Self::Token<'_>;
}

/// IP packets received in one batch, stored back to back in one reused buffer.
#[derive(Debug, Default)]
pub struct PacketBatch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl PacketBatch {
    /// Forget the packets (keeps the memory).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Append one packet.
    pub fn push(&mut self, packet: &[u8]) {
        self.bytes.extend_from_slice(packet);
        self.ends.push(self.bytes.len());
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The packets, in arrival order (TCP must see a connection's segments in order).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.bytes[s..e])
    }
}

/// A smoltcp device that yields at most one received packet and sends through a
/// [`Transmit`]: the device of one poll of one connection's socket set.
pub struct OnePacket<'p, T: Transmit> {
    /// Where replies go.
    pub wire: &'p mut T,
    /// The packet to hand over, taken by the first `receive`.
    pub packet: Option<&'p [u8]>,
}

impl<'p, T: Transmit> OnePacket<'p, T> {
    /// A device with nothing to receive (an egress poll, or creating an interface).
    pub fn egress(wire: &'p mut T) -> Self {
        OnePacket { wire, packet: None }
    }
}

/// A received IP packet.
pub struct PacketRx<'a>(&'a [u8]);

impl RxToken for PacketRx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.0)
    }
}

impl<'p, T: Transmit> Device for OnePacket<'p, T> {
    type RxToken<'a>
        = PacketRx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = T::Token<'a>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(PacketRx<'_>, T::Token<'_>)> {
        let p = self.packet.take()?;
        Some((PacketRx(p), self.wire.token()))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<T::Token<'_>> {
        Some(self.wire.token())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(BATCH);
        caps
    }
}

/// The endpoints and flags of a TCP segment in an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Source address.
    pub src: Ipv4Address,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst: Ipv4Address,
    /// Destination port.
    pub dst_port: u16,
    /// SYN without ACK or RST: a connection request (RFC 9293 §3.5), the only segment that
    /// may take a listening socket.
    pub opens: bool,
}

impl Segment {
    /// Read the TCP endpoints of an IPv4 packet; `None` for anything else (another
    /// protocol, a later fragment, a truncated header). Checksums are smoltcp's to verify.
    pub fn parse(packet: &[u8]) -> Option<Segment> {
        let ip = Ipv4Packet::new_checked(packet).ok()?;
        if ip.next_header() != IpProtocol::Tcp || ip.frag_offset() != 0 {
            return None;
        }
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        Some(Segment {
            src: ip.src_addr(),
            src_port: tcp.src_port(),
            dst: ip.dst_addr(),
            dst_port: tcp.dst_port(),
            opens: tcp.syn() && !tcp.ack() && !tcp.rst(),
        })
    }
}

/// One endpoint (address and port) as a table key.
pub fn endpoint_key(addr: Ipv4Address, port: u16) -> u64 {
    u64::from(u32::from(addr)) << 16 | u64::from(port)
}

/// A multiplicative hash for [`endpoint_key`]s: the keys are trusted (the harness made them)
/// and hashing is on the per-packet path, so no SipHash.
#[derive(Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        let x = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // Fold the high half down: the table indexes by low bits, the multiply mixes upward.
        self.0 = x ^ (x >> 29);
    }
}

/// Connection index by one endpoint of its 4-tuple.
pub type ConnTable = HashMap<u64, usize, BuildHasherDefault<KeyHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpAddress, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber};

    fn segment(control: TcpControl, ack: Option<i32>) -> Vec<u8> {
        let src = Ipv4Address::new(198, 18, 1, 10);
        let dst = Ipv4Address::new(198, 18, 100, 1);
        let tcp = TcpRepr {
            src_port: 40_000,
            dst_port: 5001,
            control,
            seq_number: TcpSeqNumber(7),
            ack_number: ack.map(TcpSeqNumber),
            window_len: 64,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
        let caps = ChecksumCapabilities::default();
        let mut p = Ipv4Packet::new_unchecked(&mut buf);
        ip.emit(&mut p, &caps);
        tcp.emit(
            &mut TcpPacket::new_unchecked(p.payload_mut()),
            &IpAddress::Ipv4(src),
            &IpAddress::Ipv4(dst),
            &caps,
        );
        buf
    }

    #[test]
    fn a_syn_opens_and_its_endpoints_are_read() {
        let s = Segment::parse(&segment(TcpControl::Syn, None)).expect("a TCP segment");
        assert_eq!(s.src, Ipv4Address::new(198, 18, 1, 10));
        assert_eq!((s.src_port, s.dst_port), (40_000, 5001));
        assert_eq!(s.dst, Ipv4Address::new(198, 18, 100, 1));
        assert!(s.opens);
    }

    #[test]
    fn only_a_bare_syn_opens() {
        assert!(
            !Segment::parse(&segment(TcpControl::Syn, Some(1)))
                .unwrap()
                .opens
        );
        assert!(
            !Segment::parse(&segment(TcpControl::None, Some(1)))
                .unwrap()
                .opens
        );
        assert!(
            !Segment::parse(&segment(TcpControl::Rst, None))
                .unwrap()
                .opens
        );
        assert!(
            !Segment::parse(&segment(TcpControl::Fin, Some(1)))
                .unwrap()
                .opens
        );
    }

    #[test]
    fn non_tcp_and_truncated_packets_are_not_segments() {
        let mut p = segment(TcpControl::Syn, None);
        assert_eq!(Segment::parse(&p[..30]), None, "truncated TCP header");
        assert_eq!(Segment::parse(&p[..10]), None, "truncated IP header");
        assert_eq!(Segment::parse(&[]), None);
        p[9] = 17; // UDP
        assert_eq!(Segment::parse(&p), None);
    }

    #[test]
    fn a_batch_gives_back_its_packets_in_order() {
        let mut b = PacketBatch::default();
        assert_eq!(b.len(), 0);
        b.push(b"first");
        b.push(b"");
        b.push(b"third one");
        let got: Vec<&[u8]> = b.iter().collect();
        assert_eq!(got, [&b"first"[..], b"", b"third one"]);
        assert_eq!(b.len(), 3);
        b.clear();
        assert_eq!(b.iter().count(), 0);
    }

    #[test]
    fn endpoint_keys_differ_by_address_and_port() {
        let a = Ipv4Address::new(198, 18, 1, 1);
        let b = Ipv4Address::new(198, 18, 1, 10);
        let mut t = ConnTable::default();
        for (i, k) in [
            endpoint_key(a, 1024),
            endpoint_key(a, 1025),
            endpoint_key(b, 1024),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(t.insert(k, i), None, "key {k:#x} collides");
        }
        assert_eq!(t.get(&endpoint_key(b, 1024)), Some(&2));
    }
}

//! Pieces shared by the smoltcp client and server: one connection's own socket set, the
//! socket settings, the interface, and the clock one loop pass works with.

use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address};

use super::wire::{OnePacket, Transmit};

/// A connection with no progress for this long is a failure.
pub const CONN_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes of each socket's receive and transmit buffers (the exchange is one byte each way).
const SOCKET_BUFFER: usize = 64;

/// The time of one pass of the end hosts' loop.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Wall clock, for latencies and the trial's deadline.
    pub now: Instant,
    /// The same instant on smoltcp's clock (from the trial's start).
    pub at: smoltcp::time::Instant,
    /// Whether new connections may still be opened.
    pub sending: bool,
}

/// A TCP socket as both end hosts use it: no Nagle, no delayed ACK (every segment answers
/// at once, as the kernel's quick-ACK mode does in a handshake), and the failure timeout.
pub fn tcp_socket() -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
    );
    s.set_timeout(Some(smoltcp::time::Duration::from_millis(
        CONN_TIMEOUT.as_millis() as u64,
    )));
    s.set_nagle_enabled(false);
    s.set_ack_delay(None);
    s
}

/// An interface holding `addrs` (on-link /15s: every test address is in 198.18.0.0/15, so
/// no route or neighbour), whose ISNs come from `seed`.
pub fn interface<T: Transmit>(
    wire: &mut T,
    addrs: &[Ipv4Address],
    seed: u64,
    at: smoltcp::time::Instant,
) -> Interface {
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = seed;
    let mut i = Interface::new(config, &mut OnePacket::egress(wire), at);
    i.update_ip_addrs(|a| {
        for &ip in addrs {
            // Room for eight (`iface-max-addr-count-8`); more are not used.
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(ip), 15));
        }
    });
    i
}

/// One connection's socket in a set of its own, so smoltcp's per-packet walk over a set's
/// sockets is one socket long.
pub struct Conn {
    set: SocketSet<'static>,
    handle: SocketHandle,
}

impl Conn {
    /// A set holding `socket`.
    pub fn new(socket: tcp::Socket<'static>) -> Conn {
        let mut set = SocketSet::new(Vec::with_capacity(1));
        let handle = set.add(socket);
        Conn { set, handle }
    }

    /// The socket.
    pub fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.set.get_mut::<tcp::Socket>(self.handle)
    }

    /// Put `socket` in the old one's place (dropped without sending anything).
    pub fn replace(&mut self, socket: tcp::Socket<'static>) {
        self.set.remove(self.handle);
        self.handle = self.set.add(socket);
    }

    /// Hand `packet` to the socket and send what it answers and has queued.
    pub fn deliver<T: Transmit>(
        &mut self,
        iface: &mut Interface,
        wire: &mut T,
        at: smoltcp::time::Instant,
        packet: &[u8],
    ) {
        deliver_to(&mut self.set, iface, wire, at, packet);
    }

    /// Whether the socket has a timer due or something queued at `at` (cheaper than an
    /// [`Conn::egress`] that finds nothing to do).
    pub fn due(&self, iface: &mut Interface, at: smoltcp::time::Instant) -> bool {
        iface.poll_at(at, &self.set).is_some_and(|t| t <= at)
    }

    /// Send what the socket has queued (and run its timers).
    pub fn egress<T: Transmit>(
        &mut self,
        iface: &mut Interface,
        wire: &mut T,
        at: smoltcp::time::Instant,
    ) {
        iface.poll(at, &mut OnePacket::egress(wire), &mut self.set);
    }
}

/// Hand `packet` to `set` (smoltcp answers a segment no socket takes with a reset, RFC 9293
/// §3.10.7.1) and send what its sockets queue.
pub fn deliver_to<T: Transmit>(
    set: &mut SocketSet<'static>,
    iface: &mut Interface,
    wire: &mut T,
    at: smoltcp::time::Instant,
    packet: &[u8],
) {
    let mut dev = OnePacket {
        wire,
        packet: Some(packet),
    };
    iface.poll(at, &mut dev, set);
}

/// An empty set: where segments of no known connection go, to be answered with resets.
pub fn stray_set() -> SocketSet<'static> {
    SocketSet::new(Vec::new())
}

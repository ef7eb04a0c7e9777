//! The smoltcp server: a pool of listening sockets, each in a set of its own, that answer
//! each one-byte request with one byte and close first.
//!
//! A connection request (a bare SYN, RFC 9293 §3.5) with no connection yet takes a free
//! listener and files it under the client's endpoint; later segments find it there. A
//! connection that reaches TIME-WAIT gets a fresh listening socket in its place (smoltcp
//! would hold it for 10 s, and the client never reuses a tuple that soon) and its listener
//! goes back to the pool, as does one that failed or was reset.

use smoltcp::iface::{Interface, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::Ipv4Address;

use super::conn::{Conn, Tick, deliver_to, interface, stray_set, tcp_socket};
use super::wire::{ConnTable, Segment, Transmit, endpoint_key};

struct Listener {
    conn: Conn,
    /// The client endpoint it is filed under while it has a connection.
    key: Option<u64>,
}

/// The server end host.
pub struct Server {
    iface: Interface,
    listeners: Vec<Listener>,
    /// Listeners without a connection.
    free: Vec<usize>,
    by_remote: ConnTable,
    stray: SocketSet<'static>,
    port: u16,
    /// Requests answered.
    pub answered: u64,
}

fn listening(port: u16) -> tcp::Socket<'static> {
    let mut s = tcp_socket();
    // Cannot fail: the port is non-zero and the socket fresh.
    let _ = s.listen(port);
    s
}

impl Server {
    /// A server on `addr`:`port` with `pool` listeners (connections it can hold at once).
    pub fn new<T: Transmit>(
        wire: &mut T,
        addr: Ipv4Address,
        port: u16,
        pool: usize,
        seed: u64,
        at: smoltcp::time::Instant,
    ) -> Server {
        Server {
            iface: interface(wire, &[addr], seed, at),
            listeners: (0..pool)
                .map(|_| Listener {
                    conn: Conn::new(listening(port)),
                    key: None,
                })
                .collect(),
            free: (0..pool).rev().collect(),
            by_remote: ConnTable::default(),
            stray: stray_set(),
            port,
            answered: 0,
        }
    }

    /// Take one received packet.
    pub fn on_packet<T: Transmit>(&mut self, wire: &mut T, tick: Tick, packet: &[u8]) {
        let listener = Segment::parse(packet).and_then(|s| {
            let key = endpoint_key(s.src, s.src_port);
            if let Some(&i) = self.by_remote.get(&key) {
                return Some(i);
            }
            if !s.opens || s.dst_port != self.port {
                return None;
            }
            // No free listener: the request draws a reset, as from a full backlog.
            let i = self.free.pop()?;
            self.listeners[i].key = Some(key);
            self.by_remote.insert(key, i);
            Some(i)
        });
        match listener {
            Some(i) => {
                self.listeners[i]
                    .conn
                    .deliver(&mut self.iface, wire, tick.at, packet);
                self.step(i, wire, tick);
            }
            None => deliver_to(&mut self.stray, &mut self.iface, wire, tick.at, packet),
        }
    }

    /// Run the timers that are due of every listener with a connection and move it on.
    pub fn sweep<T: Transmit>(&mut self, wire: &mut T, tick: Tick) {
        for i in 0..self.listeners.len() {
            if self.listeners[i].key.is_some() {
                if self.listeners[i].conn.due(&mut self.iface, tick.at) {
                    self.listeners[i]
                        .conn
                        .egress(&mut self.iface, wire, tick.at);
                }
                self.step(i, wire, tick);
            }
        }
    }

    /// Listeners holding a connection.
    #[cfg(test)]
    pub fn busy(&self) -> usize {
        self.listeners.len() - self.free.len()
    }

    /// Answer a request, or put a finished listener back in the pool.
    fn step<T: Transmit>(&mut self, i: usize, wire: &mut T, tick: Tick) {
        let l = &mut self.listeners[i];
        let s = l.conn.socket();
        let done = match s.state() {
            tcp::State::TimeWait => {
                l.conn.replace(listening(self.port));
                true
            }
            tcp::State::Closed => {
                let _ = s.listen(self.port);
                true
            }
            // Back to LISTEN: a reset in SYN-RECEIVED, or a request it did not take.
            tcp::State::Listen => true,
            _ => {
                let mut buf = [0u8; 16];
                if s.can_recv() && s.recv_slice(&mut buf).is_ok_and(|n| n > 0) {
                    let _ = s.send_slice(b"y");
                    s.close();
                    self.answered += 1;
                    l.conn.egress(&mut self.iface, wire, tick.at);
                }
                false
            }
        };
        if done && let Some(key) = l.key.take() {
            if self.by_remote.get(&key) == Some(&i) {
                self.by_remote.remove(&key);
            }
            self.free.push(i);
        }
    }
}

//! The smoltcp client: `concurrency` connection slots, each a one-socket set, that open,
//! send one byte, read the answer and close, over and over until the trial's deadline.
//!
//! A received segment finds its slot by its destination (the client's address and port) in
//! a hash table that each `connect` updates. Source tuples cycle over the client addresses
//! and 64,000 ports each, in one sequence shared by every slot, so a tuple comes back only
//! after `addresses × 64,000` connections.

use std::time::Instant;

use smoltcp::iface::{Interface, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use super::conn::{Conn, Tick, deliver_to, interface, stray_set, tcp_socket};
use super::wire::{ConnTable, Segment, Transmit, endpoint_key};
use crate::pktgen::latency::Histogram;

/// Source ports used per address (from 1024).
const PORTS_PER_ADDR: u32 = 64_000;

/// Where one client connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// SYN sent at this time.
    Connecting(Instant),
    /// Request sent; the time is still the connect's.
    Sent(Instant),
    /// Answer read at this time; closing.
    Closing(Instant),
}

struct Slot {
    conn: Conn,
    phase: Phase,
    /// The local endpoint it is filed under in the table.
    key: Option<u64>,
}

/// What the client counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Connections answered before the deadline and then closed.
    pub ok: u64,
    /// Connections that failed (reset, or no progress for the timeout).
    pub failed: u64,
    /// Connect-to-answer times, ns.
    pub latency: Histogram,
}

/// The client end host.
pub struct Client {
    iface: Interface,
    slots: Vec<Slot>,
    by_local: ConnTable,
    stray: SocketSet<'static>,
    addrs: Vec<Ipv4Address>,
    server: IpEndpoint,
    next_tuple: u32,
    /// Answers after this instant do not count.
    deadline: Instant,
    /// What happened so far.
    pub tally: Tally,
}

/// How a client is set up.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Source addresses (at most eight).
    pub addrs: Vec<Ipv4Address>,
    /// Where to connect.
    pub server: IpEndpoint,
    /// Connections in flight.
    pub concurrency: usize,
    /// Seed of the interface (initial sequence numbers).
    pub seed: u64,
    /// Number of the first source tuple in the sequence.
    pub first_tuple: u32,
    /// Answers after this instant do not count.
    pub deadline: Instant,
}

impl Client {
    /// A client with `cfg.concurrency` idle slots, created at `at`.
    pub fn new<T: Transmit>(wire: &mut T, cfg: ClientConfig, at: smoltcp::time::Instant) -> Client {
        let ClientConfig {
            addrs,
            server,
            concurrency,
            seed,
            first_tuple,
            deadline,
        } = cfg;
        Client {
            iface: interface(wire, &addrs, seed, at),
            slots: (0..concurrency)
                .map(|_| Slot {
                    conn: Conn::new(tcp_socket()),
                    phase: Phase::Idle,
                    key: None,
                })
                .collect(),
            by_local: ConnTable::default(),
            stray: stray_set(),
            addrs,
            server,
            next_tuple: first_tuple,
            deadline,
            tally: Tally::default(),
        }
    }

    /// The next tuple number a connection would take.
    pub fn next_tuple(&self) -> u32 {
        self.next_tuple
    }

    /// Take one received packet.
    pub fn on_packet<T: Transmit>(&mut self, wire: &mut T, tick: Tick, packet: &[u8]) {
        let slot = Segment::parse(packet)
            .and_then(|s| self.by_local.get(&endpoint_key(s.dst, s.dst_port)))
            .copied();
        match slot {
            Some(i) => {
                self.slots[i]
                    .conn
                    .deliver(&mut self.iface, wire, tick.at, packet);
                self.step(i, wire, tick);
            }
            None => deliver_to(&mut self.stray, &mut self.iface, wire, tick.at, packet),
        }
    }

    /// Run the timers that are due and move every slot on (opens the idle ones while
    /// sending).
    pub fn sweep<T: Transmit>(&mut self, wire: &mut T, tick: Tick) {
        for i in 0..self.slots.len() {
            if self.slots[i].conn.due(&mut self.iface, tick.at) {
                self.slots[i].conn.egress(&mut self.iface, wire, tick.at);
            }
            self.step(i, wire, tick);
        }
    }

    /// Slots with a connection open.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.phase != Phase::Idle).count()
    }

    /// Move slot `i` on as far as its socket allows, then send what that queued.
    fn step<T: Transmit>(&mut self, i: usize, wire: &mut T, tick: Tick) {
        if self.advance(i, tick) {
            self.slots[i].conn.egress(&mut self.iface, wire, tick.at);
        }
    }

    /// Move slot `i` through as many phases as its socket's state allows (at most a
    /// whole round: close, count, open again). Returns whether it queued anything.
    fn advance(&mut self, i: usize, tick: Tick) -> bool {
        let mut acted = false;
        for _ in 0..4 {
            let slot = &mut self.slots[i];
            let s = slot.conn.socket();
            slot.phase = match slot.phase {
                Phase::Idle if tick.sending => {
                    let Some((ip, port)) = tuple(&self.addrs, self.next_tuple) else {
                        break;
                    };
                    self.next_tuple = self.next_tuple.wrapping_add(1);
                    if s.connect(
                        self.iface.context(),
                        self.server,
                        (IpAddress::Ipv4(ip), port),
                    )
                    .is_err()
                    {
                        // Only an unusable tuple gets here; the next pass takes another.
                        s.abort();
                        self.tally.failed += 1;
                        break;
                    }
                    let key = endpoint_key(ip, port);
                    if let Some(old) = slot.key.replace(key)
                        && self.by_local.get(&old) == Some(&i)
                    {
                        self.by_local.remove(&old);
                    }
                    self.by_local.insert(key, i);
                    acted = true;
                    Phase::Connecting(tick.now)
                }
                Phase::Connecting(t) if s.may_send() => {
                    let _ = s.send_slice(b"x");
                    acted = true;
                    Phase::Sent(t)
                }
                Phase::Connecting(_) | Phase::Sent(_) if s.state() == tcp::State::Closed => {
                    self.tally.failed += 1;
                    Phase::Idle
                }
                Phase::Sent(t) if s.can_recv() => {
                    let mut buf = [0u8; 16];
                    let _ = s.recv_slice(&mut buf);
                    self.tally
                        .latency
                        .record(tick.now.duration_since(t).as_nanos() as u64);
                    s.close();
                    acted = true;
                    Phase::Closing(tick.now)
                }
                Phase::Closing(answered)
                    if matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait) =>
                {
                    // Closed on both sides. The server closes first, so this socket ends
                    // in CLOSED (LAST-ACK acknowledged) and the abort only clears it; after
                    // a simultaneous close (TIME-WAIT) it also sends a reset.
                    s.abort();
                    if answered < self.deadline {
                        self.tally.ok += 1;
                    }
                    Phase::Idle
                }
                _ => break,
            };
        }
        acted
    }
}

/// Source address and port of tuple number `n`: addresses change fastest, so consecutive
/// connections differ in address and a port repeats only after `addrs.len()` connections.
/// `None` without addresses (a client without any opens nothing).
fn tuple(addrs: &[Ipv4Address], n: u32) -> Option<(Ipv4Address, u16)> {
    let k = u32::try_from(addrs.len()).ok().filter(|&k| k > 0)?;
    let ip = addrs[(n % k) as usize];
    let port = 1024 + ((n / k) % PORTS_PER_ADDR) as u16;
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_repeat_only_after_every_address_and_port() {
        let addrs: Vec<Ipv4Address> = (0..8).map(|i| Ipv4Address::new(198, 18, 1, i)).collect();
        let period = 8 * PORTS_PER_ADDR;
        let mut seen = std::collections::HashSet::new();
        assert_eq!(tuple(&[], 0), None);
        for n in 0..period {
            let (ip, port) = tuple(&addrs, n).expect("a tuple");
            assert!((1024..1024 + PORTS_PER_ADDR as u16).contains(&port));
            assert!(seen.insert((ip, port)), "tuple {n} repeats early");
        }
        assert_eq!(tuple(&addrs, period), tuple(&addrs, 0));
    }
}

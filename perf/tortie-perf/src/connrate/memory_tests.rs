//! The smoltcp client and server wired to each other in memory (no AF_XDP, no namespaces),
//! on a virtual clock: whole connections, losses, a full listener pool and stray segments.

use std::time::{Duration, Instant};

use smoltcp::phy::TxToken;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address, Ipv4Packet, TcpPacket};

use super::client::{Client, ClientConfig};
use super::conn::Tick;
use super::server::Server;
use super::wire::{Segment, Transmit};

/// Packets sent, in order.
#[derive(Default)]
struct MemWire {
    out: Vec<Vec<u8>>,
}

struct MemTx<'a>(&'a mut Vec<Vec<u8>>);

impl TxToken for MemTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut b = vec![0; len];
        let r = f(&mut b);
        self.0.push(b);
        r
    }
}

impl Transmit for MemWire {
    type Token<'a> = MemTx<'a>;

    fn token(&mut self) -> MemTx<'_> {
        MemTx(&mut self.out)
    }
}

const SERVER: Ipv4Address = Ipv4Address::new(198, 18, 100, 1);
const PORT: u16 = 5001;
/// Virtual time per loop pass.
const STEP: Duration = Duration::from_micros(50);

struct Net {
    client: Client,
    server: Server,
    cw: MemWire,
    sw: MemWire,
    t0: Instant,
    now: Instant,
    deadline: Instant,
    /// Packets each way: client to server, server to client.
    carried: (u64, u64),
}

impl Net {
    fn new(concurrency: usize, pool: usize, run_for: Duration) -> Net {
        let t0 = Instant::now();
        let (mut cw, mut sw) = (MemWire::default(), MemWire::default());
        let at = smoltcp::time::Instant::from_micros(0);
        let client = Client::new(
            &mut cw,
            ClientConfig {
                addrs: (0..8)
                    .map(|i| Ipv4Address::new(198, 18, 1, 1 + i))
                    .collect(),
                server: IpEndpoint::new(IpAddress::Ipv4(SERVER), PORT),
                concurrency,
                seed: 7,
                first_tuple: 0,
                deadline: t0 + run_for,
            },
            at,
        );
        let server = Server::new(&mut sw, SERVER, PORT, pool, 11, at);
        Net {
            client,
            server,
            cw,
            sw,
            t0,
            now: t0,
            deadline: t0 + run_for,
            carried: (0, 0),
        }
    }

    /// Run `passes` loop passes; `lose` picks packets the wire drops (client to server when
    /// its first argument is true).
    fn run(&mut self, passes: usize, mut lose: impl FnMut(bool, &[u8]) -> bool) {
        for pass in 0..passes {
            self.now += STEP;
            let tick = Tick {
                now: self.now,
                at: smoltcp::time::Instant::from_micros(
                    self.now.duration_since(self.t0).as_micros() as i64,
                ),
                sending: self.now < self.deadline,
            };
            for p in std::mem::take(&mut self.cw.out) {
                if !lose(true, &p) {
                    self.carried.0 += 1;
                    self.server.on_packet(&mut self.sw, tick, &p);
                }
            }
            for p in std::mem::take(&mut self.sw.out) {
                if !lose(false, &p) {
                    self.carried.1 += 1;
                    self.client.on_packet(&mut self.cw, tick, &p);
                }
            }
            if pass % 100 == 0 {
                self.client.sweep(&mut self.cw, tick);
                self.server.sweep(&mut self.sw, tick);
            }
        }
    }
}

fn is_syn(p: &[u8]) -> bool {
    Segment::parse(p).is_some_and(|s| s.opens)
}

#[test]
fn every_connection_completes_and_releases_its_listener() {
    // 2 s of virtual time with a 0.5 s trial, then the drain.
    let mut n = Net::new(16, 48, Duration::from_millis(500));
    n.run(40_000, |_, _| false);
    let t = &n.client.tally;
    assert_eq!(t.failed, 0);
    assert!(t.ok > 1_000, "only {} connections", t.ok);
    assert_eq!(
        n.server.answered, t.ok,
        "each counted connection was answered once"
    );
    assert_eq!(t.latency.len(), t.ok);
    assert_eq!(
        n.client.in_flight(),
        0,
        "every slot idle after the deadline"
    );
    assert_eq!(n.server.busy(), 0, "every listener back in the pool");
    // Nine segments: SYN, SYN-ACK, ACK, request; ACK, answer + FIN; ACK, FIN; last ACK.
    let per_conn = (n.carried.0 + n.carried.1) as f64 / t.ok as f64;
    assert!(
        (8.95..=9.05).contains(&per_conn),
        "{per_conn} segments per connection"
    );
    let client_share = n.carried.0 as f64 / t.ok as f64;
    assert!(
        (4.95..=5.05).contains(&client_share),
        "{client_share} from the client"
    );
    assert_eq!(
        n.client.next_tuple(),
        t.ok as u32,
        "one tuple per connection"
    );
}

#[test]
fn a_lost_syn_fails_after_the_timeout_and_the_slot_goes_on() {
    // The failure timeout (1 s without progress) is no longer than smoltcp's least
    // retransmission timeout, so a lost SYN is a failure, not a 1 s connection.
    let mut n = Net::new(1, 4, Duration::from_millis(1_200));
    let mut lost = 0;
    n.run(40_000, |to_server, p| {
        let drop = to_server && is_syn(p) && lost == 0;
        lost += u32::from(drop);
        drop
    });
    assert_eq!(lost, 1);
    let t = &n.client.tally;
    assert_eq!(t.failed, 1);
    assert!(t.ok > 100, "the slot went on after the failure ({})", t.ok);
    assert!(
        t.latency.quantile(1.0).is_some_and(|ns| ns < 1_000_000),
        "no completed connection waited for a retransmission"
    );
    assert_eq!(n.server.busy(), 0);
}

#[test]
fn requests_beyond_the_listener_pool_are_reset_and_fail_fast() {
    // Eight connections in flight, two listeners: the other SYNs draw resets at once.
    let mut n = Net::new(8, 2, Duration::from_millis(200));
    n.run(10_000, |_, _| false);
    let t = &n.client.tally;
    assert!(
        t.ok > 10,
        "the pool's two listeners keep serving ({})",
        t.ok
    );
    assert!(t.failed > 10, "the rest fail by reset ({})", t.failed);
    assert_eq!(n.server.busy(), 0);
}

#[test]
fn a_silent_server_fails_connections_after_the_timeout() {
    let mut n = Net::new(4, 8, Duration::from_millis(100));
    // Everything to the server is lost: each connection times out after 1 s.
    n.run(30_000, |to_server, _| to_server);
    let t = &n.client.tally;
    assert_eq!(t.ok, 0);
    assert_eq!(
        t.failed, 4,
        "one failure per slot opened before the deadline"
    );
    assert_eq!(n.client.in_flight(), 0);
}

#[test]
fn a_segment_of_no_connection_draws_a_reset() {
    let mut n = Net::new(1, 4, Duration::from_millis(0));
    // A server-side answer to a connection the client never opened.
    let mut p = vec![0u8; 40];
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len(40);
        ip.set_hop_limit(64);
        ip.set_next_header(smoltcp::wire::IpProtocol::Tcp);
        ip.set_src_addr(SERVER);
        ip.set_dst_addr(Ipv4Address::new(198, 18, 1, 1));
        ip.fill_checksum();
        let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
        tcp.set_src_port(PORT);
        tcp.set_dst_port(40_000);
        tcp.set_header_len(20);
        tcp.set_ack(true);
        tcp.set_ack_number(smoltcp::wire::TcpSeqNumber(1));
        tcp.set_window_len(64);
        tcp.fill_checksum(
            &IpAddress::Ipv4(SERVER),
            &IpAddress::Ipv4(Ipv4Address::new(198, 18, 1, 1)),
        );
    }
    let tick = Tick {
        now: n.now,
        at: smoltcp::time::Instant::from_micros(0),
        sending: false,
    };
    n.client.on_packet(&mut n.cw, tick, &p);
    assert_eq!(n.cw.out.len(), 1, "one answer");
    let ip = Ipv4Packet::new_checked(&n.cw.out[0][..]).expect("IPv4");
    let tcp = TcpPacket::new_checked(ip.payload()).expect("TCP");
    assert!(tcp.rst(), "the answer is a reset");
    assert_eq!((tcp.src_port(), tcp.dst_port()), (40_000, PORT));
}

//! A deterministic in-process network of speakers, for tests and benchmarks.
//!
//! Speakers are wired by in-memory pipes instead of TCP, and timers run on a virtual clock,
//! so a 50-speaker mesh converges in milliseconds of real time and every run is identical.
//! Connections follow the addresses in each speaker's configuration; TCP-MD5 is modelled by
//! refusing a connection whose two ends disagree on the password (the kernel drops the SYN).

use crate::fsm::ConnId;
use crate::route::RouteEvent;
use crate::speaker::{Input, Output, Speaker, TimerKey};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tortie_bgp_wire::frame_length;

/// One simulated speaker.
#[derive(Debug)]
pub struct Node {
    /// The speaker.
    pub speaker: Speaker,
    /// Its address (what peers connect to).
    pub addr: IpAddr,
    /// Every route event it emitted, in order.
    pub events: Vec<RouteEvent>,
    /// Every session that came up (peer address), in order.
    pub peer_ups: Vec<IpAddr>,
    /// False while "killed": connections to it fail and its timers are dropped.
    pub up: bool,
    timers: HashMap<TimerKey, u64>,
}

#[derive(Debug)]
enum Pending {
    Input(usize, Input),
    Message(usize, ConnId, Vec<u8>),
}

/// The simulated network.
#[derive(Debug, Default)]
pub struct Network {
    /// The speakers, by index.
    pub nodes: Vec<Node>,
    /// (node, conn) → (node, conn) of the other end.
    pipes: HashMap<(usize, ConnId), (usize, ConnId)>,
    queue: VecDeque<Pending>,
    /// Virtual time → timers due then: (node, key, generation).
    timers: BTreeMap<(Duration, u64), (usize, TimerKey)>,
    now: Duration,
    seq: u64,
    /// Messages delivered so far (for statistics).
    pub messages: u64,
}

impl Network {
    /// An empty network.
    pub fn new() -> Self {
        Network::default()
    }

    /// Adds a speaker reachable at `addr`; returns its index. Call [`Network::start`] after.
    pub fn add(&mut self, speaker: Speaker, addr: IpAddr) -> usize {
        self.nodes.push(Node {
            speaker,
            addr,
            events: vec![],
            peer_ups: vec![],
            up: true,
            timers: HashMap::new(),
        });
        self.nodes.len() - 1
    }

    /// Virtual time elapsed.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Starts node `i`'s peers.
    pub fn start(&mut self, i: usize) {
        let out = self.nodes[i].speaker.start();
        self.apply(i, out);
    }

    /// Runs a closure against node `i`'s speaker and performs the outputs it returns.
    pub fn with(&mut self, i: usize, f: impl FnOnce(&mut Speaker) -> Vec<Output>) {
        let out = f(&mut self.nodes[i].speaker);
        self.apply(i, out);
    }

    /// Delivers raw bytes to node `i` as if its peer at `from` had sent them on the
    /// established connection. Returns false if there is no such connection.
    pub fn inject(&mut self, i: usize, from: usize, bytes: Vec<u8>) -> bool {
        let Some((&(_, conn), _)) = self
            .pipes
            .iter()
            .find(|((n, _), (m, _))| *n == i && *m == from)
        else {
            return false;
        };
        self.queue.push_back(Pending::Message(i, conn, bytes));
        true
    }

    /// Kills node `i` abruptly (like `kill -9`): its connections close under the peers.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.nodes[i].timers.clear();
        let ends: Vec<_> = self
            .pipes
            .keys()
            .filter(|(n, _)| *n == i)
            .copied()
            .collect();
        for e in ends {
            if let Some(other) = self.pipes.remove(&e) {
                self.pipes.remove(&other);
                self.queue
                    .push_back(Pending::Input(other.0, Input::Closed { conn: other.1 }));
            }
        }
    }

    /// Replaces a killed node's speaker with a fresh one and starts it.
    pub fn restart(&mut self, i: usize, speaker: Speaker) {
        self.nodes[i].speaker = speaker;
        self.nodes[i].up = true;
        self.start(i);
    }

    /// Processes queued work, advancing virtual time through timers, until `done` holds or
    /// `limit` of virtual time has passed. Returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Network) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.drain();
            if done(self) {
                return true;
            }
            let Some((&(at, generation), &(node, key))) = self.timers.iter().next() else {
                return done(self);
            };
            if at > end {
                self.now = end;
                return done(self);
            }
            self.timers.remove(&(at, generation));
            self.now = at;
            if self.nodes[node].timers.get(&key) == Some(&generation) {
                self.nodes[node].timers.remove(&key);
                self.queue
                    .push_back(Pending::Input(node, Input::Timer(key)));
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    fn drain(&mut self) {
        // Bounded: each step either consumes an entry or ends; speakers cannot loop forever
        // because every output is driven by a finite input.
        while let Some(p) = self.queue.pop_front() {
            match p {
                Pending::Input(i, input) => {
                    if !self.nodes[i].up {
                        continue;
                    }
                    let out = self.nodes[i].speaker.handle(input);
                    self.apply(i, out);
                }
                Pending::Message(i, conn, bytes) => {
                    if !self.nodes[i].up {
                        continue;
                    }
                    self.messages += 1;
                    let out = self.nodes[i].speaker.handle_message(conn, &bytes);
                    self.apply(i, out);
                }
            }
        }
    }

    fn apply(&mut self, i: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Connect {
                    conn,
                    remote,
                    password,
                    ..
                } => self.connect(i, conn, remote, password),
                Output::Send { conn, bytes } => {
                    let Some(&(j, jc)) = self.pipes.get(&(i, conn)) else {
                        continue;
                    };
                    let mut rest = &bytes[..];
                    while let Ok(Some(len)) = frame_length(rest) {
                        if len > rest.len() {
                            break;
                        }
                        self.queue
                            .push_back(Pending::Message(j, jc, rest[..len].to_vec()));
                        rest = &rest[len..];
                    }
                }
                Output::Close { conn } => {
                    if let Some(other) = self.pipes.remove(&(i, conn)) {
                        self.pipes.remove(&other);
                        self.queue
                            .push_back(Pending::Input(other.0, Input::Closed { conn: other.1 }));
                    }
                }
                Output::StartTimer { key, after } => {
                    self.seq += 1;
                    self.nodes[i].timers.insert(key, self.seq);
                    self.timers.insert((self.now + after, self.seq), (i, key));
                }
                Output::StopTimer { key } => {
                    self.nodes[i].timers.remove(&key);
                }
                Output::Route(ev) => self.nodes[i].events.push(ev),
                Output::PeerUp { address, .. } => self.nodes[i].peer_ups.push(address),
                Output::PeerDown { .. } => {}
            }
        }
    }

    fn connect(&mut self, i: usize, conn: ConnId, remote: SocketAddr, password: Option<String>) {
        let local_addr = self.nodes[i].addr;
        let target = self
            .nodes
            .iter()
            .position(|n| n.addr == remote.ip() && n.up);
        let accepted = target.and_then(|j| {
            let theirs = self.nodes[j]
                .speaker
                .peer_by_address(local_addr)
                .map(|p| self.nodes[j].speaker.config().peers[p].password.clone());
            // No peer entry: the connection is accepted and then closed by the speaker.
            (theirs.is_none() || theirs.as_ref() == Some(&password)).then_some(j)
        });
        let Some(j) = accepted else {
            self.queue
                .push_back(Pending::Input(i, Input::ConnectFailed { conn }));
            return;
        };
        let jc = self.nodes[j].speaker.alloc_conn_id();
        self.pipes.insert((i, conn), (j, jc));
        self.pipes.insert((j, jc), (i, conn));
        let port = u16::try_from(40000 + (conn % 20000)).unwrap_or(40000);
        self.queue.push_back(Pending::Input(
            i,
            Input::Connected {
                conn,
                local: SocketAddr::new(local_addr, port),
            },
        ));
        self.queue.push_back(Pending::Input(
            j,
            Input::Accepted {
                conn: jc,
                remote: SocketAddr::new(local_addr, port),
                local: SocketAddr::new(remote.ip(), 179),
            },
        ));
    }
}

/// A speaker (AS `asn`, router id `local`) whose one iBGP peer `peer` has completed the OPEN /
/// KEEPALIVE exchange with IPv4 unicast and 4-byte AS numbers, driven by hand without a
/// network: the starting point for RIB tests and benchmarks. Returns the speaker and the
/// connection id to feed further messages on.
pub fn established_ibgp_speaker(
    asn: u32,
    local: std::net::Ipv4Addr,
    peer: std::net::Ipv4Addr,
) -> (Speaker, ConnId) {
    established_ibgp_speaker_with(asn, local, peer, |_| {})
}

/// [`established_ibgp_speaker`] with the peer's configuration adjusted by `adjust` first
/// (an import policy, say).
pub fn established_ibgp_speaker_with(
    asn: u32,
    local: std::net::Ipv4Addr,
    peer: std::net::Ipv4Addr,
    adjust: impl FnOnce(&mut crate::PeerConfig),
) -> (Speaker, ConnId) {
    use tortie_bgp_wire::{Capability, Context, Family, Message, Open};
    let mut cfg = crate::SpeakerConfig::new(asn, local);
    let mut p = crate::PeerConfig::new(IpAddr::V4(peer), asn);
    adjust(&mut p);
    cfg.peers = vec![p];
    let mut speaker = Speaker::new(cfg).expect("a valid one-peer configuration");
    let conn = speaker
        .start()
        .iter()
        .find_map(|o| match o {
            Output::Connect { conn, .. } => Some(*conn),
            _ => None,
        })
        .expect("an active peer connects at start");
    speaker.handle(Input::Connected {
        conn,
        local: SocketAddr::new(IpAddr::V4(local), 40000),
    });
    let open = Open {
        my_as: u16::try_from(asn).unwrap_or(23456),
        hold_time: 90,
        bgp_id: peer,
        capabilities: vec![
            Capability::mp(Family::Ipv4Unicast),
            Capability::FourOctetAs(asn),
        ],
    };
    speaker.handle_message(conn, &Message::Open(open).to_bytes(&Context::default()));
    speaker.handle_message(conn, &Message::Keepalive.to_bytes(&Context::default()));
    (speaker, conn)
}

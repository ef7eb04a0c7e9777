//! The I/O-free speaker: peers, FSMs, RIB and export, driven by [`Input`]s.
//!
//! The caller (the tokio adapter in [`crate::runtime`], or a simulation) feeds it connection
//! events, framed message bytes and timer expiries, and performs the [`Output`]s it returns:
//! open/close connections, send bytes, arm/disarm timers. Route changes for the forwarding
//! plane come out as [`Output::Route`]. Everything is synchronous and deterministic, so the
//! same inputs always give the same outputs (a whole mesh can be simulated in-process).

mod export;
pub mod peer;
mod receive;
mod reconfig;
mod session;

use crate::config::SpeakerConfig;
use crate::error::ConfigError;
use crate::fsm::{self, ConnId, DownReason, FsmAction, FsmEvent, Received, State};
use crate::rib::best::SourceInfo;
use crate::rib::{BestChange, Path, Rib};
use crate::route::{BestRoute, LOCAL_SOURCE, RouteAttrs, RouteEvent, RouteOrigin};
use peer::{Negotiated, Peer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tortie_bgp_wire::{
    Context, Decoded, Family, Message, MessageError, NextHop, PathAttributes, Prefix,
    RefreshSubtype, RouteRefresh,
};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_policy;

/// Index of a peer in the configuration.
pub type PeerId = usize;

/// Timers the speaker asks its driver to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKey {
    /// A per-peer timer.
    Peer(PeerId, PeerTimer),
    /// End of the restarting speaker's selection deferral (RFC 4724 §4.1).
    SelectionDeferral,
}

/// Per-peer timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerTimer {
    /// One of the FSM's timers.
    Fsm(fsm::Timer),
    /// The peer's advertised restart time ran out before its session came back.
    GrRestart,
    /// The peer's session is back but its End-of-RIB did not arrive in time.
    GrStale,
}

/// Inputs from the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An outgoing connection requested by [`Output::Connect`] is up.
    Connected {
        /// Connection id from the Connect output.
        conn: ConnId,
        /// Our address on it.
        local: SocketAddr,
    },
    /// An outgoing connection attempt failed.
    ConnectFailed {
        /// Connection id from the Connect output.
        conn: ConnId,
    },
    /// An incoming connection was accepted (id from [`Speaker::alloc_conn_id`]).
    Accepted {
        /// New connection id.
        conn: ConnId,
        /// Remote address.
        remote: SocketAddr,
        /// Our address on it.
        local: SocketAddr,
    },
    /// A connection closed or failed.
    Closed {
        /// Connection id.
        conn: ConnId,
    },
    /// The byte stream could not be framed (bad marker, length or type).
    FramingError {
        /// Connection id.
        conn: ConnId,
        /// What was wrong.
        error: MessageError,
    },
    /// A timer expired.
    Timer(TimerKey),
}

/// Actions for the driver, and route events for the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection.
    Connect {
        /// Id to report back with.
        conn: ConnId,
        /// Peer it belongs to.
        peer: PeerId,
        /// Where to connect.
        remote: SocketAddr,
        /// Local address to bind.
        local: Option<IpAddr>,
        /// TCP-MD5 key.
        password: Option<String>,
        /// GTSM hop count (RFC 5082), when the peer has one.
        ttl_security: Option<u8>,
    },
    /// Write bytes (one or more whole messages).
    Send {
        /// Connection id.
        conn: ConnId,
        /// Encoded messages.
        bytes: Vec<u8>,
    },
    /// Close a connection once its queued bytes are written.
    Close {
        /// Connection id.
        conn: ConnId,
    },
    /// (Re)arm a timer.
    StartTimer {
        /// Which.
        key: TimerKey,
        /// Delay from now.
        after: Duration,
    },
    /// Disarm a timer.
    StopTimer {
        /// Which.
        key: TimerKey,
    },
    /// The best route for a prefix changed.
    Route(RouteEvent),
    /// A session reached Established.
    PeerUp {
        /// Peer.
        peer: PeerId,
        /// Its address.
        address: IpAddr,
    },
    /// An Established session ended.
    PeerDown {
        /// Peer.
        peer: PeerId,
        /// Its address.
        address: IpAddr,
        /// Why.
        reason: DownReason,
    },
}

/// A locally originated route.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalRoute {
    /// Attributes to advertise (ORIGIN, communities, LOCAL_PREF for iBGP, MED…). AS_PATH is
    /// normally empty; the speaker prepends its AS towards eBGP peers.
    pub attrs: PathAttributes,
    /// Next hop to advertise; `None` = this speaker's address on each session.
    pub next_hop: Option<NextHop>,
}

/// Connection bookkeeping.
#[derive(Debug, Clone, Copy)]
struct ConnInfo {
    peer: PeerId,
    local: Option<SocketAddr>,
}

/// The speaker.
#[derive(Debug)]
pub struct Speaker {
    cfg: SpeakerConfig,
    peers: Vec<Peer>,
    rib: Rib,
    conns: HashMap<ConnId, ConnInfo>,
    next_inbound: ConnId,
    /// Restarting speaker waiting for End-of-RIBs before selection results go out.
    deferring: bool,
    /// Prefixes whose best route changed since the last flush.
    changed: Vec<(Prefix, BestChange)>,
    out: Vec<Output>,
}

impl Speaker {
    /// Validates the configuration and builds the speaker (no peer started yet).
    pub fn new(cfg: SpeakerConfig) -> Result<Speaker, ConfigError> {
        cfg.validate()?;
        let peers: Vec<Peer> = cfg
            .peers
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, p)| Peer::new(&cfg, p, i))
            .collect();
        let mut sources = vec![SourceInfo {
            ebgp: false,
            router_id: cfg.router_id,
            address: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        }];
        sources.extend(peers.iter().map(|p| SourceInfo {
            ebgp: p.cfg.is_ebgp(cfg.local_as),
            router_id: std::net::Ipv4Addr::UNSPECIFIED,
            address: p.cfg.address,
        }));
        let deferring = cfg.graceful_restart.enabled && cfg.graceful_restart.restarting;
        Ok(Speaker {
            rib: Rib::new(sources),
            peers,
            conns: HashMap::new(),
            next_inbound: 1 << 62,
            deferring,
            changed: vec![],
            out: vec![],
            cfg,
        })
    }

    /// The configuration in use. `peers` is indexed by [`PeerId`] and grows with
    /// [`Speaker::add_peer`]; removed peers keep their slot (see [`Speaker::peer_ids`]).
    pub fn config(&self) -> &SpeakerConfig {
        &self.cfg
    }

    /// Starts every peer (ManualStart) and, for a restarting speaker, the deferral timer.
    pub fn start(&mut self) -> Vec<Output> {
        if self.deferring {
            self.out.push(Output::StartTimer {
                key: TimerKey::SelectionDeferral,
                after: self.cfg.graceful_restart.selection_deferral,
            });
        }
        for i in 0..self.peers.len() {
            self.fsm_event(i, FsmEvent::Start);
        }
        self.finish()
    }

    /// Stops one peer with Cease / Administrative Shutdown.
    pub fn stop_peer(&mut self, peer: PeerId) -> Vec<Output> {
        if self.is_active(peer) {
            self.fsm_event(peer, FsmEvent::Stop);
        }
        self.finish()
    }

    /// A fresh id for an incoming connection.
    pub fn alloc_conn_id(&mut self) -> ConnId {
        self.next_inbound += 1;
        self.next_inbound
    }

    /// The peer in service with this address.
    pub fn peer_by_address(&self, addr: IpAddr) -> Option<PeerId> {
        self.active_peer_at(addr)
    }

    /// FSM state of a peer.
    pub fn peer_state(&self, peer: PeerId) -> Option<State> {
        self.peers.get(peer).map(|p| p.fsm.state())
    }

    /// Negotiated parameters of an Established peer.
    pub fn peer_session(&self, peer: PeerId) -> Option<&Negotiated> {
        self.peers
            .get(peer)
            .and_then(|p| p.session.as_ref())
            .map(|s| &s.neg)
    }

    /// Routes currently held from a peer (its Adj-RIB-In).
    pub fn peer_route_count(&self, peer: PeerId) -> usize {
        self.peers.get(peer).map_or(0, |p| self.rib.count(p.source))
    }

    /// Routes currently advertised to a peer (its Adj-RIB-Out).
    pub fn peer_advertised(&self, peer: PeerId) -> Option<&HashMap<Prefix, Arc<RouteAttrs>>> {
        self.peers.get(peer).map(|p| &p.adj_out)
    }

    /// Number of FSM flaps of a peer (sessions dropped by errors).
    pub fn peer_flaps(&self, peer: PeerId) -> u32 {
        self.peers.get(peer).map_or(0, |p| p.fsm.flaps)
    }

    /// Last error recorded for a peer.
    pub fn peer_last_error(&self, peer: PeerId) -> Option<&str> {
        self.peers.get(peer).and_then(|p| p.last_error.as_deref())
    }

    /// The Loc-RIB.
    pub fn rib(&self) -> &Rib {
        &self.rib
    }

    /// Reserves room for `n` prefixes in the RIB (bulk loads).
    pub fn reserve_routes(&mut self, n: usize) {
        self.rib.reserve(n);
    }

    /// The best route for a prefix.
    pub fn best_route(&self, prefix: &Prefix) -> Option<BestRoute> {
        self.rib.best(prefix).map(|p| self.best_route_of(p))
    }

    /// Originates (or replaces) a local route.
    pub fn originate(&mut self, prefix: Prefix, route: LocalRoute) -> Vec<Output> {
        let attrs = Arc::new(RouteAttrs {
            path: route.attrs,
            next_hop: route.next_hop,
        });
        if let Some(c) = self.rib.update(
            prefix,
            Path {
                source: LOCAL_SOURCE,
                path_id: 0,
                attrs,
                stale: false,
            },
        ) {
            self.changed.push((prefix, c));
        }
        self.finish()
    }

    /// Withdraws a local route.
    pub fn withdraw_local(&mut self, prefix: Prefix) -> Vec<Output> {
        if let Some(c) = self.rib.withdraw(&prefix, LOCAL_SOURCE, 0) {
            self.changed.push((prefix, c));
        }
        self.finish()
    }

    /// Asks a peer to resend its routes for a family (RFC 2918). False when the session is
    /// not Established or the peer did not advertise route refresh.
    pub fn request_refresh(&mut self, peer: PeerId, family: Family) -> (bool, Vec<Output>) {
        let Some(s) = self.peers.get(peer).and_then(|p| p.session.as_ref()) else {
            return (false, vec![]);
        };
        if !s.neg.route_refresh || !s.neg.carries(family) {
            return (false, vec![]);
        }
        let conn = s.conn;
        let rr = Message::RouteRefresh(RouteRefresh {
            afi: family.afi(),
            safi: family.safi(),
            subtype: RefreshSubtype::Request,
        });
        self.out.push(Output::Send {
            conn,
            bytes: rr.to_bytes(&Context::modern()),
        });
        (true, self.finish())
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Connected { conn, local } => {
                if let Some(ci) = self.conns.get_mut(&conn) {
                    ci.local = Some(local);
                    let p = ci.peer;
                    self.fsm_event(p, FsmEvent::TcpConnected(conn));
                } else {
                    self.out.push(Output::Close { conn });
                }
            }
            Input::ConnectFailed { conn } | Input::Closed { conn } => {
                if let Some(ci) = self.conns.remove(&conn) {
                    self.fsm_event(ci.peer, FsmEvent::TcpClosed(conn));
                }
            }
            Input::Accepted {
                conn,
                remote,
                local,
            } => match self.peer_by_address(remote.ip()) {
                Some(p) => {
                    self.conns.insert(
                        conn,
                        ConnInfo {
                            peer: p,
                            local: Some(local),
                        },
                    );
                    self.fsm_event(p, FsmEvent::TcpAccepted(conn));
                }
                None => self.out.push(Output::Close { conn }),
            },
            Input::FramingError { conn, error } => {
                if let Some(ci) = self.conns.get(&conn).copied() {
                    self.peers[ci.peer].last_error = Some(error.to_string());
                    self.fsm_event(ci.peer, FsmEvent::DecodeError(conn, error.notification));
                }
            }
            Input::Timer(key) => self.on_timer(key),
        }
        self.finish()
    }

    /// Feeds one framed message (`bytes` is exactly one message, header included).
    pub fn handle_message(&mut self, conn: ConnId, bytes: &[u8]) -> Vec<Output> {
        self.message(conn, bytes);
        self.finish()
    }

    /// Like [`Speaker::handle_message`] but leaves outputs queued for [`Speaker::take_outputs`]
    /// (lets a driver process a burst of messages before flushing).
    pub fn message(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(ci) = self.conns.get(&conn).copied() else {
            return;
        };
        let p = ci.peer;
        let rx = self.peers[p]
            .session
            .as_ref()
            .filter(|s| s.conn == conn)
            .map(|s| s.neg.rx)
            .unwrap_or_default();
        match Message::decode(bytes, &rx) {
            Err(e) => {
                self.peers[p].last_error = Some(e.to_string());
                self.fsm_event(p, FsmEvent::DecodeError(conn, e.notification));
            }
            Ok(Decoded::Update(du)) => {
                if self.fsm_event(p, FsmEvent::Received(conn, Received::Update)) {
                    self.receive_update(p, du);
                }
            }
            Ok(Decoded::Other(m)) => {
                let (r, refresh) = match m {
                    Message::Open(o) => (Received::Open(o), None),
                    Message::Keepalive => (Received::Keepalive, None),
                    Message::Notification(n) => {
                        self.peers[p].last_error = Some(format!("received NOTIFICATION {n}"));
                        (Received::Notification(n), None)
                    }
                    Message::RouteRefresh(rr) => (Received::RouteRefresh, Some(rr)),
                    Message::Update(_) => return,
                };
                if self.fsm_event(p, FsmEvent::Received(conn, r))
                    && let Some(rr) = refresh
                {
                    self.receive_refresh(p, rr);
                }
            }
        }
    }

    /// Flushes pending exports and returns every queued output.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        self.finish()
    }

    fn on_timer(&mut self, key: TimerKey) {
        match key {
            TimerKey::Peer(p, PeerTimer::Fsm(t)) if self.is_active(p) => {
                self.fsm_event(p, FsmEvent::Timer(t));
            }
            TimerKey::Peer(p, PeerTimer::GrRestart | PeerTimer::GrStale) if self.is_active(p) => {
                // RFC 4724 §4.2: time is up, the stale routes go (and those of the session
                // this one replaced).
                self.sweep_replaced(p);
                let peer = &mut self.peers[p];
                peer.gr_stale = [false; 2];
                let src = peer.source;
                self.rib
                    .remove_where(src, |_, path| path.stale, &mut self.changed);
            }
            TimerKey::Peer(p, PeerTimer::GrRestart) if p < self.peers.len() => {
                // A removed peer's kept routes (and any it had taken over) expire.
                self.sweep_replaced(p);
            }
            TimerKey::SelectionDeferral => self.end_deferral(),
            TimerKey::Peer(..) => {}
        }
    }

    /// Runs one FSM event and performs its actions. Returns true if a delivered UPDATE or
    /// ROUTE-REFRESH may be processed.
    fn fsm_event(&mut self, p: PeerId, ev: FsmEvent) -> bool {
        let actions = self.peers[p].fsm.handle(ev);
        let mut deliver = false;
        for a in actions {
            match a {
                FsmAction::Connect(conn) => {
                    let cfg = &self.peers[p].cfg;
                    self.conns.insert(
                        conn,
                        ConnInfo {
                            peer: p,
                            local: None,
                        },
                    );
                    self.out.push(Output::Connect {
                        conn,
                        peer: p,
                        remote: SocketAddr::new(cfg.address, cfg.port),
                        local: cfg.local_address,
                        password: cfg.password.clone(),
                        ttl_security: cfg.ttl_security,
                    });
                }
                FsmAction::Send(conn, m) => {
                    let tx = self.peers[p]
                        .session
                        .as_ref()
                        .map(|s| s.neg.tx)
                        .unwrap_or_default();
                    self.out.push(Output::Send {
                        conn,
                        bytes: m.to_bytes(&tx),
                    });
                }
                FsmAction::Close(conn) => {
                    self.conns.remove(&conn);
                    self.out.push(Output::Close { conn });
                }
                FsmAction::StartTimer(t, after) => self.out.push(Output::StartTimer {
                    key: TimerKey::Peer(p, PeerTimer::Fsm(t)),
                    after,
                }),
                FsmAction::StopTimer(t) => self.out.push(Output::StopTimer {
                    key: TimerKey::Peer(p, PeerTimer::Fsm(t)),
                }),
                FsmAction::Established(conn, open) => self.session_up(p, conn, &open),
                FsmAction::Down(reason) => self.session_down(p, reason),
                FsmAction::Deliver => deliver = true,
            }
        }
        deliver
    }

    fn best_route_of(&self, path: &Path) -> BestRoute {
        let origin = if path.source == LOCAL_SOURCE {
            RouteOrigin::Local
        } else {
            let peer = &self.peers[path.source as usize - 1];
            RouteOrigin::Peer {
                address: peer.cfg.address,
                ebgp: peer.cfg.is_ebgp(self.cfg.local_as),
            }
        };
        BestRoute {
            origin,
            attrs: path.attrs.clone(),
        }
    }

    /// Emits route events and exports for everything that changed, then hands back outputs.
    fn finish(&mut self) -> Vec<Output> {
        if !self.changed.is_empty() && !self.deferring {
            let changed = std::mem::take(&mut self.changed);
            for (pfx, c) in &changed {
                let ev = match (c, self.rib.best(pfx)) {
                    (_, None) => RouteEvent::Withdrawn(*pfx),
                    (BestChange::Added, Some(b)) => RouteEvent::Added(*pfx, self.best_route_of(b)),
                    (_, Some(b)) => RouteEvent::Changed(*pfx, self.best_route_of(b)),
                };
                self.out.push(Output::Route(ev));
            }
            self.export_changes(&changed);
        }
        std::mem::take(&mut self.out)
    }
}

/// IPv4-mapped IPv6 addresses (from a dual-stack listener) compare as IPv4.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

//! The tokio adapter: one task owns the [`Speaker`] and performs its outputs.
//!
//! ```text
//!   listener task(s) ──Accepted──┐
//!   connect tasks ──Connected────┤            ┌──► writer task per connection (bytes out)
//!   reader task per connection ──┼─► speaker ─┤
//!     (framing, Message/Closed)  │    task    ├──► SpeakerEvent channel (routes, peers)
//!   SpeakerHandle commands ──────┘  (timers)  └──► connect tasks (spawned per attempt)
//! ```
//!
//! The speaker task is the only place state lives; every other task just moves bytes.
//! Timers are a deadline map polled by the same `select!`.

mod commands;
mod conn;
pub mod gtsm;
pub mod md5sig;
mod sockopt;

use crate::config::{PeerConfig, SpeakerConfig};
use crate::error::RuntimeError;
use crate::fsm::{ConnId, DownReason, State};
use crate::route::RouteEvent;
use crate::speaker::{Input, LocalRoute, Output, Speaker, TimerKey};
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tortie_bgp_wire::{Family, MessageError, Prefix};

/// What the speaker reports to its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpeakerEvent {
    /// A best-route change.
    Route(RouteEvent),
    /// A session came up.
    PeerUp(IpAddr),
    /// A session went down.
    PeerDown(IpAddr, DownReason),
}

/// Status of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Configured address.
    pub address: IpAddr,
    /// FSM state.
    pub state: State,
    /// Routes received and held.
    pub received: usize,
    /// Routes advertised.
    pub advertised: usize,
    /// Sessions dropped by errors.
    pub flaps: u32,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// While Established: what was negotiated.
    pub negotiated: Option<crate::Negotiated>,
}

enum Command {
    Originate(Prefix, LocalRoute),
    Withdraw(Prefix),
    Refresh(IpAddr, Family, oneshot::Sender<bool>),
    Status(oneshot::Sender<Vec<PeerStatus>>),
    BestRoute(Prefix, oneshot::Sender<Option<crate::route::BestRoute>>),
    AddPeer(Box<PeerConfig>, oneshot::Sender<Result<(), RuntimeError>>),
    RemovePeer(IpAddr, Option<Duration>, oneshot::Sender<bool>),
    UpdatePeer(Box<PeerConfig>, oneshot::Sender<Result<(), RuntimeError>>),
    Shutdown(oneshot::Sender<()>),
}

/// Events from the socket tasks to the speaker task.
#[derive(Debug)]
pub(crate) enum NetEvent {
    Connected {
        conn: ConnId,
        stream: tokio::net::TcpStream,
    },
    ConnectFailed {
        conn: ConnId,
    },
    Accepted {
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
    },
    Message {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    FramingError {
        conn: ConnId,
        error: MessageError,
    },
    Closed {
        conn: ConnId,
    },
}

/// Controls a running speaker. Cloneable; the speaker stops when [`SpeakerHandle::shutdown`]
/// is called or every handle is dropped.
#[derive(Debug, Clone)]
pub struct SpeakerHandle {
    tx: mpsc::UnboundedSender<Command>,
    /// Local addresses of the listeners (useful with port 0).
    pub listening: Vec<SocketAddr>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl SpeakerHandle {
    /// Originates (or replaces) a local route.
    pub fn originate(&self, prefix: Prefix, route: LocalRoute) -> Result<(), RuntimeError> {
        self.tx
            .send(Command::Originate(prefix, route))
            .map_err(|_| RuntimeError::Stopped)
    }

    /// Withdraws a local route.
    pub fn withdraw(&self, prefix: Prefix) -> Result<(), RuntimeError> {
        self.tx
            .send(Command::Withdraw(prefix))
            .map_err(|_| RuntimeError::Stopped)
    }

    /// Sends a ROUTE-REFRESH to the peer at `peer`; false if it cannot take one now.
    pub async fn refresh(&self, peer: IpAddr, family: Family) -> Result<bool, RuntimeError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Refresh(peer, family, tx))
            .map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)
    }

    /// Status of every peer.
    pub async fn status(&self) -> Result<Vec<PeerStatus>, RuntimeError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Status(tx))
            .map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)
    }

    /// The current best route for a prefix.
    pub async fn best_route(
        &self,
        prefix: Prefix,
    ) -> Result<Option<crate::route::BestRoute>, RuntimeError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::BestRoute(prefix, tx))
            .map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)
    }

    /// Adds a neighbour to the running speaker (its TCP-MD5 key goes on the listeners) and
    /// starts it; the other sessions are not touched.
    pub async fn add_peer(&self, cfg: PeerConfig) -> Result<(), RuntimeError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::AddPeer(Box::new(cfg), tx))
            .map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)?
    }

    /// Removes the neighbour at `address` (Cease, its routes withdrawn, its TCP-MD5 key
    /// removed from the listeners); false when there is none. Other sessions are not touched.
    pub async fn remove_peer(&self, address: IpAddr) -> Result<bool, RuntimeError> {
        self.remove(address, None).await
    }

    /// Removes the neighbour at `address` without a NOTIFICATION, keeping its routes
    /// installed (stale) for `keep` (see [`Speaker::remove_peer_gently`]).
    pub async fn remove_peer_gently(
        &self,
        address: IpAddr,
        keep: Duration,
    ) -> Result<bool, RuntimeError> {
        self.remove(address, Some(keep)).await
    }

    async fn remove(
        &self,
        address: IpAddr,
        gently: Option<Duration>,
    ) -> Result<bool, RuntimeError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::RemovePeer(address, gently, tx))
            .map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)
    }

    /// Replaces the configuration of the neighbour at `cfg.address` (adds it when there is
    /// none). Policy and next-hop changes apply without touching the session; other changes
    /// reset that session only (see [`Speaker::update_peer`]).
    pub async fn update_peer(&self, cfg: PeerConfig) -> Result<(), RuntimeError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::UpdatePeer(Box::new(cfg), tx))
            .map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)?
    }

    /// Stops every session with Cease and ends the speaker task.
    pub async fn shutdown(&self) -> Result<(), RuntimeError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Shutdown(tx))
            .map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)
    }
}

/// Starts a speaker on the current tokio runtime: binds the listeners, starts every peer,
/// and returns the handle and the event stream.
pub fn spawn(
    cfg: SpeakerConfig,
) -> Result<(SpeakerHandle, mpsc::UnboundedReceiver<SpeakerEvent>), RuntimeError> {
    let mut speaker = Speaker::new(cfg.clone())?;
    let (net_tx, net_rx) = mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let mut listening = vec![];
    let mut listeners = vec![];
    let mut sockets = vec![];
    if let Some(port) = cfg.listen_port {
        let keys: Vec<(IpAddr, String)> = cfg
            .peers
            .iter()
            .filter_map(|p| p.password.clone().map(|pw| (p.address, pw)))
            .collect();
        let addrs = if cfg.listen_addrs.is_empty() {
            vec![
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ]
        } else {
            cfg.listen_addrs.clone()
        };
        for a in addrs {
            let addr = SocketAddr::new(a, port);
            let l = conn::listen(addr, &keys).map_err(|e| match e {
                conn::ListenError::Md5(peer, source) => RuntimeError::Md5 { peer, source },
                conn::ListenError::Socket(source) => RuntimeError::Listen { addr, source },
            })?;
            listening.push(
                l.local_addr()
                    .map_err(|source| RuntimeError::Listen { addr, source })?,
            );
            let tx = net_tx.clone();
            let l = Arc::new(l);
            sockets.push(l.clone());
            listeners.push(tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((stream, remote)) => {
                            if tx.send(NetEvent::Accepted { stream, remote }).is_err() {
                                return;
                            }
                        }
                        // Transient accept errors (EMFILE…): back off briefly.
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }));
        }
    }
    let out = speaker.start();
    let mut actor = Actor {
        speaker,
        net_tx,
        conns: HashMap::new(),
        connecting: HashMap::new(),
        deadlines: BTreeSet::new(),
        timers: HashMap::new(),
        events: ev_tx,
        seq: 0,
        listeners: sockets,
    };
    actor.apply(out);
    tokio::spawn(actor.run(cmd_rx, net_rx, listeners));
    Ok((
        SpeakerHandle {
            tx: cmd_tx,
            listening,
        },
        ev_rx,
    ))
}

struct Actor {
    speaker: Speaker,
    net_tx: mpsc::UnboundedSender<NetEvent>,
    conns: HashMap<ConnId, conn::ConnTasks>,
    connecting: HashMap<ConnId, JoinHandle<()>>,
    deadlines: BTreeSet<(Instant, u64, TimerKey)>,
    timers: HashMap<TimerKey, (Instant, u64)>,
    events: mpsc::UnboundedSender<SpeakerEvent>,
    seq: u64,
    /// The listening sockets, for TCP-MD5 keys of peers added or removed at run time.
    listeners: Vec<Arc<tokio::net::TcpListener>>,
}

impl Actor {
    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Command>,
        mut net: mpsc::UnboundedReceiver<NetEvent>,
        listeners: Vec<JoinHandle<()>>,
    ) {
        loop {
            let next = self.deadlines.first().map(|d| d.0);
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None => break,
                    Some(Command::Shutdown(done)) => {
                        let ids: Vec<_> = self.speaker.peer_ids().map(|(p, _)| p).collect();
                        for p in ids {
                            let out = self.speaker.stop_peer(p);
                            self.apply(out);
                        }
                        let _ = done.send(());
                        break;
                    }
                    Some(c) => self.command(c),
                },
                Some(ev) = net.recv() => {
                    self.net_event(ev);
                    // Drain what is already queued before flushing exports (batches bursts).
                    let mut n = 0;
                    while n < 256 {
                        match net.try_recv() {
                            Ok(ev) => self.net_event(ev),
                            Err(_) => break,
                        }
                        n += 1;
                    }
                    let out = self.speaker.take_outputs();
                    self.apply(out);
                }
                () = sleep_until(next) => self.fire_timers(),
            }
        }
        for l in listeners {
            l.abort();
        }
        for (_, c) in self.connecting.drain() {
            c.abort();
        }
        for (_, c) in self.conns.drain() {
            c.close();
        }
    }

    /// Feeds a socket event to the speaker; outputs stay queued until the caller flushes.
    fn net_event(&mut self, ev: NetEvent) {
        let out = match ev {
            NetEvent::Connected { conn, stream } => {
                self.connecting.remove(&conn);
                let local = stream
                    .local_addr()
                    .unwrap_or_else(|_| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
                self.conns
                    .insert(conn, conn::spawn(conn, stream, self.net_tx.clone()));
                self.speaker.handle(Input::Connected { conn, local })
            }
            NetEvent::ConnectFailed { conn } => {
                self.connecting.remove(&conn);
                self.speaker.handle(Input::ConnectFailed { conn })
            }
            NetEvent::Accepted { stream, remote } => {
                // GTSM (RFC 5082) for a peer that asks for it: from here on, segments with a
                // lower TTL are dropped by the kernel, so a spoofed handshake never gets an
                // OPEN through.
                if let Some(hops) = self
                    .speaker
                    .peer_by_address(remote.ip())
                    .and_then(|p| self.speaker.config().peers[p].ttl_security)
                    && let Err(e) = gtsm::protect(&stream, remote.is_ipv6(), hops)
                {
                    tracing::warn!(peer = %remote, error = %e, "GTSM socket options");
                    return;
                }
                let conn = self.speaker.alloc_conn_id();
                let local = stream
                    .local_addr()
                    .unwrap_or_else(|_| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
                self.conns
                    .insert(conn, conn::spawn(conn, stream, self.net_tx.clone()));
                self.speaker.handle(Input::Accepted {
                    conn,
                    remote,
                    local,
                })
            }
            NetEvent::Message { conn, bytes } => {
                self.speaker.message(conn, &bytes);
                return;
            }
            NetEvent::FramingError { conn, error } => {
                self.speaker.handle(Input::FramingError { conn, error })
            }
            NetEvent::Closed { conn } => {
                if let Some(c) = self.conns.remove(&conn) {
                    c.close();
                }
                self.speaker.handle(Input::Closed { conn })
            }
        };
        self.apply(out);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(&(at, seq, key)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if self.timers.get(&key) == Some(&(at, seq)) {
                self.timers.remove(&key);
                let out = self.speaker.handle(Input::Timer(key));
                self.apply(out);
            }
        }
    }

    fn apply(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Connect {
                    conn,
                    remote,
                    local,
                    password,
                    ttl_security,
                    ..
                } => {
                    let tx = self.net_tx.clone();
                    let h = tokio::spawn(async move {
                        let opts = conn::ConnectOptions {
                            local,
                            password,
                            ttl_security,
                            timeout: Duration::from_secs(30),
                        };
                        let ev = match conn::connect(remote, opts).await {
                            Ok(stream) => NetEvent::Connected { conn, stream },
                            Err(e) => {
                                tracing::debug!(%remote, error = %e, "connect failed");
                                NetEvent::ConnectFailed { conn }
                            }
                        };
                        let _ = tx.send(ev);
                    });
                    self.connecting.insert(conn, h);
                }
                Output::Send { conn, bytes } => {
                    if let Some(c) = self.conns.get(&conn) {
                        let _ = c.tx.send(bytes);
                    }
                }
                Output::Close { conn } => {
                    if let Some(c) = self.conns.remove(&conn) {
                        c.close();
                    }
                    if let Some(h) = self.connecting.remove(&conn) {
                        h.abort();
                    }
                }
                Output::StartTimer { key, after } => {
                    if let Some((at, seq)) = self.timers.remove(&key) {
                        self.deadlines.remove(&(at, seq, key));
                    }
                    self.seq += 1;
                    let at = Instant::now() + after;
                    self.timers.insert(key, (at, self.seq));
                    self.deadlines.insert((at, self.seq, key));
                }
                Output::StopTimer { key } => {
                    if let Some((at, seq)) = self.timers.remove(&key) {
                        self.deadlines.remove(&(at, seq, key));
                    }
                }
                Output::Route(ev) => {
                    let _ = self.events.send(SpeakerEvent::Route(ev));
                }
                Output::PeerUp { address, .. } => {
                    tracing::info!(peer = %address, "BGP session established");
                    let _ = self.events.send(SpeakerEvent::PeerUp(address));
                }
                Output::PeerDown {
                    address, reason, ..
                } => {
                    tracing::info!(peer = %address, ?reason, "BGP session down");
                    let _ = self.events.send(SpeakerEvent::PeerDown(address, reason));
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

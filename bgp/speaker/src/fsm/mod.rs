//! The RFC 4271 §8 finite state machine of one peer, without I/O.
//!
//! Events go in ([`FsmEvent`]); actions come out ([`FsmAction`]): connections to open or
//! close, messages to send, timers to start or stop, and notices that the session came up or
//! went down. The caller owns sockets and clocks. UPDATE and ROUTE-REFRESH payloads never
//! pass through here: the FSM only says whether they may be processed ([`FsmAction::Deliver`]).
//!
//! Beyond the RFC's mandatory parts it implements:
//! * connection collision detection (§6.8) with a second, inbound connection tracked next to
//!   the primary one until one of them is closed with Cease / Connection Collision Resolution;
//! * DelayOpen (§8.1.1, optional attribute);
//! * damping of peer oscillations (§8.1.1 IdleHoldTime, DampPeerOscillations): every error
//!   that drops the session doubles the IdleHold wait before the automatic restart, up to a
//!   ceiling, and a session that stays Established long enough resets it.

use crate::config::IdleHoldConfig;
use std::net::Ipv4Addr;
use std::time::Duration;
use tortie_bgp_wire::error::subcode;
use tortie_bgp_wire::{Message, Notification, Open};

#[cfg(test)]
mod tests;

/// Identifies one TCP connection (allocated by the speaker).
pub type ConnId = u64;

/// Session states (RFC 4271 §8.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not trying; refusing connections.
    Idle,
    /// Waiting for an outgoing TCP connection.
    Connect,
    /// Waiting for an incoming TCP connection (or the ConnectRetry timer).
    Active,
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for KEEPALIVE.
    OpenConfirm,
    /// Up.
    Established,
}

/// The FSM's timers. Each peer has at most one of each running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// ConnectRetryTimer.
    ConnectRetry,
    /// HoldTimer (also the 4-minute OPEN wait).
    Hold,
    /// KeepaliveTimer.
    Keepalive,
    /// DelayOpenTimer.
    DelayOpen,
    /// IdleHoldTimer: the damped automatic restart.
    IdleHold,
    /// Hold timer of the second connection during a collision.
    CollisionHold,
    /// Fires once the session has been stable long enough to reset the damping.
    Stable,
}

impl Timer {
    /// Every timer (to stop them all when a peer is removed).
    pub const ALL: [Timer; 7] = [
        Timer::ConnectRetry,
        Timer::Hold,
        Timer::Keepalive,
        Timer::DelayOpen,
        Timer::IdleHold,
        Timer::CollisionHold,
        Timer::Stable,
    ];
}

/// Inputs to the FSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsmEvent {
    /// ManualStart (event 1) / ManualStart_with_PassiveTcpEstablishment (event 4).
    Start,
    /// ManualStop (event 2): Cease, no automatic restart.
    Stop,
    /// A timer fired.
    Timer(Timer),
    /// Our outgoing connection is up (event 16/17).
    TcpConnected(ConnId),
    /// An incoming connection from this peer was accepted (event 17).
    TcpAccepted(ConnId),
    /// A connection failed or closed (event 18).
    TcpClosed(ConnId),
    /// A message arrived on a connection. UPDATE payloads need not be included: pass
    /// [`Received::Update`].
    Received(ConnId, Received),
    /// The connection's bytes could not be decoded: send this NOTIFICATION and drop the session.
    DecodeError(ConnId, Notification),
}

/// A received message, reduced to what the FSM needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// OPEN.
    Open(Open),
    /// KEEPALIVE.
    Keepalive,
    /// NOTIFICATION.
    Notification(Notification),
    /// UPDATE (payload kept by the caller).
    Update,
    /// ROUTE-REFRESH (payload kept by the caller).
    RouteRefresh,
}

/// Why an Established session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// The peer sent this NOTIFICATION.
    NotificationReceived(Notification),
    /// We sent this NOTIFICATION.
    NotificationSent(Notification),
    /// The TCP connection closed or failed.
    ConnectionLost,
    /// Stopped by configuration.
    Stopped,
}

/// Outputs of the FSM.
// `Send` carries a whole message; actions are consumed immediately.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsmAction {
    /// Open an outgoing connection with this id.
    Connect(ConnId),
    /// Send a message on a connection.
    Send(ConnId, Message),
    /// Close a connection (after any queued sends).
    Close(ConnId),
    /// (Re)start a timer.
    StartTimer(Timer, Duration),
    /// Stop a timer.
    StopTimer(Timer),
    /// The session reached Established on this connection; the peer's OPEN is attached.
    Established(ConnId, Box<Open>),
    /// The Established session ended.
    Down(DownReason),
    /// Process the UPDATE / ROUTE-REFRESH that was just passed in.
    Deliver,
}

/// Static inputs of the FSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    /// Our BGP Identifier (collision resolution, OPEN checks).
    pub local_id: Ipv4Addr,
    /// Expected peer AS.
    pub remote_as: u32,
    /// Whether the session is iBGP (the peer's BGP Identifier must then differ from ours).
    pub internal: bool,
    /// Hold time we propose.
    pub hold_time: Duration,
    /// ConnectRetryTime.
    pub connect_retry: Duration,
    /// Do not initiate connections.
    pub passive: bool,
    /// DelayOpenTime, if DelayOpen is enabled.
    pub delay_open: Option<Duration>,
    /// IdleHold back-off.
    pub idle_hold: IdleHoldConfig,
    /// The OPEN we send.
    pub open: Open,
    /// Apply RFC 4271 §10 jitter (a factor in 0.75..=1.0) to ConnectRetry and IdleHold, so
    /// two speakers that failed together do not retry in lockstep forever.
    pub jitter: bool,
}

/// The large hold time used while waiting for an OPEN (RFC 4271 §8.2.2: "4 minutes").
const OPEN_HOLD: Duration = Duration::from_secs(240);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Conn {
    id: ConnId,
    outbound: bool,
    /// We have sent our OPEN on it.
    open_sent: bool,
}

/// One peer's FSM.
#[derive(Debug, Clone)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    /// The connection the state refers to (None in Idle, and in Connect/Active before TCP is up).
    primary: Option<Conn>,
    /// An outgoing attempt in progress (Connect state).
    connecting: Option<ConnId>,
    /// A second connection during a collision, with our OPEN sent on it.
    secondary: Option<Conn>,
    /// The next id for an outgoing connection.
    next_conn: ConnId,
    /// The peer's OPEN, between OpenSent and Established.
    peer_open: Option<Open>,
    /// Automatic restarts are allowed (false after ManualStop).
    auto_start: bool,
    /// The next IdleHold wait.
    idle_hold_next: Duration,
    /// Negotiated hold time.
    hold: Duration,
    /// Number of times the session went down because of an error (diagnostics).
    pub flaps: u32,
    /// State of the jitter generator (seeded from our BGP Identifier).
    rng: u64,
}

impl Fsm {
    /// A new FSM in Idle. Connection ids it allocates for outgoing connections count up from
    /// `first_conn_id` (give each peer its own range).
    pub fn new(cfg: FsmConfig, first_conn_id: ConnId) -> Self {
        let idle_hold_next = cfg.idle_hold.initial;
        Fsm {
            state: State::Idle,
            primary: None,
            connecting: None,
            secondary: None,
            next_conn: first_conn_id,
            peer_open: None,
            auto_start: false,
            idle_hold_next,
            hold: Duration::ZERO,
            flaps: 0,
            rng: u64::from(u32::from(cfg.local_id)) | 1,
            cfg,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The connection carrying the Established session.
    pub fn established_conn(&self) -> Option<ConnId> {
        match (self.state, self.primary) {
            (State::Established, Some(c)) => Some(c.id),
            _ => None,
        }
    }

    /// Whether `conn` is one of this FSM's connections (or outgoing attempt).
    pub fn owns(&self, conn: ConnId) -> bool {
        self.primary.is_some_and(|c| c.id == conn)
            || self.secondary.is_some_and(|c| c.id == conn)
            || self.connecting == Some(conn)
    }

    /// The negotiated hold time (zero before OpenConfirm).
    pub fn hold_time(&self) -> Duration {
        self.hold
    }

    /// The wait the next damped restart will use.
    pub fn idle_hold_next(&self) -> Duration {
        self.idle_hold_next
    }

    /// Replaces the OPEN we send (capabilities changed); applies to the next connection.
    pub fn set_open(&mut self, open: Open) {
        self.cfg.open = open;
    }

    /// Feeds one event; returns the actions to perform, in order.
    pub fn handle(&mut self, ev: FsmEvent) -> Vec<FsmAction> {
        let mut out = Vec::new();
        match ev {
            FsmEvent::Start => {
                self.auto_start = true;
                if self.state == State::Idle {
                    self.start(&mut out);
                }
            }
            FsmEvent::Stop => {
                self.auto_start = false;
                self.reset(
                    &mut out,
                    Some(Notification::cease(subcode::ADMIN_SHUTDOWN)),
                    DownReason::Stopped,
                    false,
                );
                out.push(FsmAction::StopTimer(Timer::IdleHold));
            }
            FsmEvent::Timer(t) => self.on_timer(t, &mut out),
            FsmEvent::TcpConnected(c) => self.on_connected(c, &mut out),
            FsmEvent::TcpAccepted(c) => self.on_accepted(c, &mut out),
            FsmEvent::TcpClosed(c) => self.on_closed(c, &mut out),
            FsmEvent::Received(c, m) => self.on_message(c, m, &mut out),
            FsmEvent::DecodeError(c, n) => {
                if self.secondary.is_some_and(|s| s.id == c) {
                    self.drop_secondary(&mut out, Some(n));
                } else if self.primary.is_some_and(|p| p.id == c) {
                    self.reset(
                        &mut out,
                        Some(n.clone()),
                        DownReason::NotificationSent(n),
                        true,
                    );
                }
            }
        }
        out
    }

    /// `d` scaled by a factor in 0.75..=1.0 when jitter is on (RFC 4271 §10).
    fn jittered(&mut self, d: Duration) -> Duration {
        if !self.cfg.jitter {
            return d;
        }
        // xorshift64: deterministic per speaker, different between speakers.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let frac = u32::try_from(self.rng % 1001).unwrap_or(0);
        d.mul_f64(0.75 + 0.25 * f64::from(frac) / 1000.0)
    }

    fn alloc_conn(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        id
    }

    /// Idle → Connect (or Active when passive).
    fn start(&mut self, out: &mut Vec<FsmAction>) {
        if self.cfg.passive {
            self.state = State::Active;
        } else {
            let id = self.alloc_conn();
            self.connecting = Some(id);
            out.push(FsmAction::Connect(id));
            let d = self.jittered(self.cfg.connect_retry);
            out.push(FsmAction::StartTimer(Timer::ConnectRetry, d));
            self.state = State::Connect;
        }
    }

    fn on_timer(&mut self, t: Timer, out: &mut Vec<FsmAction>) {
        match (t, self.state) {
            (Timer::IdleHold, State::Idle) if self.auto_start => self.start(out),
            (Timer::ConnectRetry, State::Connect | State::Active) => {
                if let Some(c) = self.connecting.take() {
                    out.push(FsmAction::Close(c));
                }
                if let Some(p) = self.primary.take() {
                    out.push(FsmAction::Close(p.id));
                    out.push(FsmAction::StopTimer(Timer::DelayOpen));
                }
                if self.cfg.passive {
                    self.state = State::Active;
                } else {
                    let id = self.alloc_conn();
                    self.connecting = Some(id);
                    out.push(FsmAction::Connect(id));
                    let d = self.jittered(self.cfg.connect_retry);
                    out.push(FsmAction::StartTimer(Timer::ConnectRetry, d));
                    self.state = State::Connect;
                }
            }
            (Timer::DelayOpen, State::Connect | State::Active) => {
                if let Some(mut p) = self.primary {
                    p.open_sent = true;
                    self.primary = Some(p);
                    out.push(FsmAction::Send(p.id, Message::Open(self.cfg.open.clone())));
                    out.push(FsmAction::StartTimer(Timer::Hold, OPEN_HOLD));
                    self.state = State::OpenSent;
                }
            }
            (Timer::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                let n = Notification::hold_timer_expired();
                self.reset(out, Some(n.clone()), DownReason::NotificationSent(n), true);
            }
            (Timer::Keepalive, State::OpenConfirm | State::Established) => {
                if let Some(p) = self.primary {
                    out.push(FsmAction::Send(p.id, Message::Keepalive));
                    if let Some(k) = keepalive_interval(self.hold) {
                        out.push(FsmAction::StartTimer(Timer::Keepalive, k));
                    }
                }
            }
            (Timer::CollisionHold, _) => {
                self.drop_secondary(out, Some(Notification::hold_timer_expired()))
            }
            (Timer::Stable, State::Established) => self.idle_hold_next = self.cfg.idle_hold.initial,
            // A timer that no longer matters in this state (RFC 4271 lists them as ignored
            // in Idle, and stale ones cannot hurt elsewhere).
            _ => {}
        }
    }

    fn on_connected(&mut self, c: ConnId, out: &mut Vec<FsmAction>) {
        if self.connecting != Some(c) {
            // Not our current attempt (a late success after ConnectRetry): drop it.
            out.push(FsmAction::Close(c));
            return;
        }
        self.connecting = None;
        match self.state {
            State::Connect | State::Active if self.primary.is_none() => {
                out.push(FsmAction::StopTimer(Timer::ConnectRetry));
                self.primary = Some(Conn {
                    id: c,
                    outbound: true,
                    open_sent: false,
                });
                self.begin_open(out);
            }
            State::OpenSent | State::OpenConfirm if self.secondary.is_none() => {
                // Both sides connected at once: run the OPEN exchange on this one too and
                // let collision detection (§6.8) pick the survivor.
                self.secondary = Some(Conn {
                    id: c,
                    outbound: true,
                    open_sent: true,
                });
                out.push(FsmAction::Send(c, Message::Open(self.cfg.open.clone())));
                out.push(FsmAction::StartTimer(Timer::CollisionHold, OPEN_HOLD));
            }
            _ => out.push(FsmAction::Close(c)),
        }
    }

    /// TCP is up on the primary: send OPEN now, or start DelayOpen.
    fn begin_open(&mut self, out: &mut Vec<FsmAction>) {
        let Some(mut p) = self.primary else { return };
        if let Some(d) = self.cfg.delay_open {
            out.push(FsmAction::StartTimer(Timer::DelayOpen, d));
            return;
        }
        p.open_sent = true;
        self.primary = Some(p);
        out.push(FsmAction::Send(p.id, Message::Open(self.cfg.open.clone())));
        out.push(FsmAction::StartTimer(Timer::Hold, OPEN_HOLD));
        self.state = State::OpenSent;
    }

    fn on_accepted(&mut self, c: ConnId, out: &mut Vec<FsmAction>) {
        match self.state {
            State::Idle => out.push(FsmAction::Close(c)),
            State::Connect | State::Active if self.primary.is_none() => {
                // Our own attempt (if any) stays open: if it completes too, collision
                // detection decides which one survives, instead of both sides dropping the
                // connection the other kept.
                out.push(FsmAction::StopTimer(Timer::ConnectRetry));
                self.primary = Some(Conn {
                    id: c,
                    outbound: false,
                    open_sent: false,
                });
                self.begin_open(out);
            }
            State::Established => {
                // §6.8: with an Established session the new connection loses.
                out.push(FsmAction::Send(
                    c,
                    Message::Notification(Notification::cease(subcode::COLLISION)),
                ));
                out.push(FsmAction::Close(c));
            }
            _ => {
                if let Some(s) = self.secondary.take() {
                    out.push(FsmAction::Close(s.id));
                }
                self.secondary = Some(Conn {
                    id: c,
                    outbound: false,
                    open_sent: true,
                });
                out.push(FsmAction::Send(c, Message::Open(self.cfg.open.clone())));
                out.push(FsmAction::StartTimer(Timer::CollisionHold, OPEN_HOLD));
            }
        }
    }

    fn on_closed(&mut self, c: ConnId, out: &mut Vec<FsmAction>) {
        if self.connecting == Some(c) {
            self.connecting = None;
            // Connect → Active: wait for the ConnectRetry timer (or an incoming connection).
            if self.state == State::Connect {
                self.state = State::Active;
            }
            return;
        }
        if self.secondary.is_some_and(|s| s.id == c) {
            self.drop_secondary(out, None);
            return;
        }
        if self.primary.is_some_and(|p| p.id == c) {
            // Connect/Active (DelayOpen running) and OpenSent: TcpConnectionFails → Active,
            // ConnectRetry restarted (RFC 4271 §8.2.2). Not a flap: the peer may just be
            // holding off (its IdleHold) and refusing us.
            if matches!(self.state, State::Connect | State::Active | State::OpenSent) {
                out.push(FsmAction::StopTimer(Timer::Hold));
                // TCP dropped before OPEN (DelayOpen running): back to Active, retry later.
                self.primary = None;
                out.push(FsmAction::StopTimer(Timer::DelayOpen));
                let d = self.jittered(self.cfg.connect_retry);
                out.push(FsmAction::StartTimer(Timer::ConnectRetry, d));
                self.state = State::Active;
                return;
            }
            self.reset(out, None, DownReason::ConnectionLost, true);
        }
    }

    fn on_message(&mut self, c: ConnId, m: Received, out: &mut Vec<FsmAction>) {
        if self.secondary.is_some_and(|s| s.id == c) {
            return self.on_secondary_message(c, m, out);
        }
        let Some(p) = self.primary.filter(|p| p.id == c) else {
            return;
        };
        if let Received::Notification(n) = &m {
            // Any state: the peer ended the session.
            self.reset(out, None, DownReason::NotificationReceived(n.clone()), true);
            return;
        }
        match (self.state, m) {
            (State::Connect | State::Active, Received::Open(open)) if !p.open_sent => {
                // DelayOpen running and the peer spoke first: OPEN + KEEPALIVE, OpenConfirm.
                out.push(FsmAction::StopTimer(Timer::DelayOpen));
                let mut p = p;
                p.open_sent = true;
                self.primary = Some(p);
                out.push(FsmAction::Send(p.id, Message::Open(self.cfg.open.clone())));
                self.accept_open(open, out);
            }
            (State::OpenSent, Received::Open(open)) => {
                if let Some(s) = self.secondary {
                    // §6.8: we now know the peer's Identifier; resolve the collision.
                    if self.secondary_wins(s, open.bgp_id) {
                        out.push(FsmAction::Send(
                            p.id,
                            Message::Notification(Notification::cease(subcode::COLLISION)),
                        ));
                        out.push(FsmAction::Close(p.id));
                        out.push(FsmAction::StopTimer(Timer::CollisionHold));
                        self.primary = Some(s);
                        self.secondary = None;
                        out.push(FsmAction::StartTimer(Timer::Hold, OPEN_HOLD));
                        return;
                    }
                    self.drop_secondary(out, Some(Notification::cease(subcode::COLLISION)));
                }
                self.accept_open(open, out);
            }
            (State::OpenConfirm, Received::Keepalive) => {
                self.state = State::Established;
                // §6.8: with one connection Established, a connection still being opened
                // would only collide with it (and some speakers take a new connection from
                // an Established neighbour as its graceful restart): abort it.
                if let Some(c) = self.connecting.take() {
                    out.push(FsmAction::Close(c));
                }
                if let Some(s) = self.secondary.take() {
                    out.push(FsmAction::Send(
                        s.id,
                        Message::Notification(Notification::cease(subcode::COLLISION)),
                    ));
                    out.push(FsmAction::Close(s.id));
                    out.push(FsmAction::StopTimer(Timer::CollisionHold));
                }
                self.restart_hold(out);
                out.push(FsmAction::StartTimer(
                    Timer::Stable,
                    self.cfg.idle_hold.stable,
                ));
                out.push(FsmAction::Established(
                    p.id,
                    Box::new(
                        self.peer_open
                            .take()
                            .unwrap_or_else(|| self.cfg.open.clone()),
                    ),
                ));
            }
            (State::Established, Received::Keepalive) => self.restart_hold(out),
            (State::Established, Received::Update | Received::RouteRefresh) => {
                self.restart_hold(out);
                out.push(FsmAction::Deliver);
            }
            (state, _) => {
                // RFC 6608 subcodes name the state the unexpected message arrived in.
                let sub = match state {
                    State::OpenSent => subcode::FSM_IN_OPENSENT,
                    State::OpenConfirm => subcode::FSM_IN_OPENCONFIRM,
                    State::Established => subcode::FSM_IN_ESTABLISHED,
                    _ => 0,
                };
                let n = Notification::fsm(sub);
                self.reset(out, Some(n.clone()), DownReason::NotificationSent(n), true);
            }
        }
    }

    fn on_secondary_message(&mut self, c: ConnId, m: Received, out: &mut Vec<FsmAction>) {
        let Some(s) = self.secondary.filter(|s| s.id == c) else {
            return;
        };
        match m {
            Received::Open(open) => {
                if self.secondary_wins(s, open.bgp_id) {
                    // The primary loses: close it and continue on the secondary.
                    if let Some(p) = self.primary.take() {
                        out.push(FsmAction::Send(
                            p.id,
                            Message::Notification(Notification::cease(subcode::COLLISION)),
                        ));
                        out.push(FsmAction::Close(p.id));
                    }
                    out.push(FsmAction::StopTimer(Timer::CollisionHold));
                    out.push(FsmAction::StopTimer(Timer::Keepalive));
                    self.primary = Some(s);
                    self.secondary = None;
                    self.state = State::OpenSent;
                    self.accept_open(open, out);
                } else {
                    self.drop_secondary(out, Some(Notification::cease(subcode::COLLISION)));
                }
            }
            Received::Notification(_) => self.drop_secondary(out, None),
            _ => {
                let n = Notification::fsm(subcode::FSM_IN_OPENSENT);
                self.drop_secondary(out, Some(n));
            }
        }
    }

    /// §6.8: keep the connection initiated by the speaker with the higher BGP Identifier.
    fn secondary_wins(&self, secondary: Conn, remote_id: Ipv4Addr) -> bool {
        let keep_outbound = u32::from(self.cfg.local_id) > u32::from(remote_id);
        let primary_outbound = self.primary.is_some_and(|p| p.outbound);
        secondary.outbound == keep_outbound && primary_outbound != keep_outbound
    }

    fn drop_secondary(&mut self, out: &mut Vec<FsmAction>, n: Option<Notification>) {
        if let Some(s) = self.secondary.take() {
            if let Some(n) = n {
                out.push(FsmAction::Send(s.id, Message::Notification(n)));
            }
            out.push(FsmAction::Close(s.id));
            out.push(FsmAction::StopTimer(Timer::CollisionHold));
        }
    }

    /// Checks the peer's OPEN (RFC 4271 §6.2) and moves to OpenConfirm.
    fn accept_open(&mut self, open: Open, out: &mut Vec<FsmAction>) {
        let err = |sub| Notification {
            code: tortie_bgp_wire::error::code::OPEN,
            subcode: sub,
            data: vec![],
        };
        let bad = if open.asn() != self.cfg.remote_as {
            Some(err(subcode::BAD_PEER_AS))
        } else if self.cfg.internal && open.bgp_id == self.cfg.local_id {
            Some(err(subcode::BAD_BGP_ID))
        } else {
            None
        };
        if let Some(n) = bad {
            self.reset(out, Some(n.clone()), DownReason::NotificationSent(n), true);
            return;
        }
        let ours = self.cfg.hold_time;
        let theirs = Duration::from_secs(u64::from(open.hold_time));
        self.hold = ours.min(theirs);
        let Some(p) = self.primary else { return };
        out.push(FsmAction::Send(p.id, Message::Keepalive));
        if let Some(k) = keepalive_interval(self.hold) {
            out.push(FsmAction::StartTimer(Timer::Keepalive, k));
            out.push(FsmAction::StartTimer(Timer::Hold, self.hold));
        } else {
            out.push(FsmAction::StopTimer(Timer::Hold));
        }
        self.peer_open = Some(open);
        self.state = State::OpenConfirm;
    }

    fn restart_hold(&self, out: &mut Vec<FsmAction>) {
        if !self.hold.is_zero() {
            out.push(FsmAction::StartTimer(Timer::Hold, self.hold));
        }
    }

    /// Drops every connection, goes to Idle and, when `damp`, schedules the damped restart.
    fn reset(
        &mut self,
        out: &mut Vec<FsmAction>,
        send: Option<Notification>,
        why: DownReason,
        damp: bool,
    ) {
        let was_established = self.state == State::Established;
        if let Some(p) = self.primary.take() {
            if let Some(n) = &send {
                // NOTIFICATION only once an OPEN exchange started (RFC 4271 §8.2.2).
                if p.open_sent
                    || matches!(
                        self.state,
                        State::OpenSent | State::OpenConfirm | State::Established
                    )
                {
                    out.push(FsmAction::Send(p.id, Message::Notification(n.clone())));
                }
            }
            out.push(FsmAction::Close(p.id));
        }
        if let Some(c) = self.connecting.take() {
            out.push(FsmAction::Close(c));
        }
        self.drop_secondary(
            out,
            send.as_ref()
                .map(|_| Notification::cease(subcode::ADMIN_RESET)),
        );
        for t in [
            Timer::ConnectRetry,
            Timer::Hold,
            Timer::Keepalive,
            Timer::DelayOpen,
            Timer::Stable,
        ] {
            out.push(FsmAction::StopTimer(t));
        }
        self.peer_open = None;
        self.hold = Duration::ZERO;
        if was_established {
            out.push(FsmAction::Down(why));
        }
        self.state = State::Idle;
        if damp && self.auto_start {
            self.flaps += 1;
            let d = self.jittered(self.idle_hold_next);
            out.push(FsmAction::StartTimer(Timer::IdleHold, d));
            self.idle_hold_next = (self.idle_hold_next * 2)
                .min(self.cfg.idle_hold.max)
                .max(self.cfg.idle_hold.initial);
        }
    }
}

/// A third of the hold time, at least one second (RFC 4271 §10); None when hold is zero.
fn keepalive_interval(hold: Duration) -> Option<Duration> {
    if hold.is_zero() {
        None
    } else {
        Some((hold / 3).max(Duration::from_secs(1)))
    }
}

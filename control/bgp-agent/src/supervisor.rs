//! The supervisor task: owns the speaker, applies plans, turns speaker events into the
//! learned-route table and peer status the [`crate::BgpAgent`] reads.

use crate::advertise::{Advertisement, from_wire};
use crate::agent::{Cmd, Shared, unix_now};
use crate::import::{LearnedRoute, RouteChange};
use crate::plan::AgentPlan;
use crate::status::{PeerStatus, state_name};
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tortie_bgp::RouteEvent;
use tortie_bgp::route::RouteOrigin;
use tortie_bgp::runtime::{self, SpeakerEvent, SpeakerHandle};

/// How often the supervisor polls the speaker for peer status.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait, after a speaker restart, before learned routes that were not re-learned
/// are removed. The sweep happens earlier once every planned session is Established and no
/// route arrived for [`SWEEP_QUIET`].
pub const SWEEP_MAX: Duration = Duration::from_secs(15);
/// Quiet period that ends the post-restart sweep early.
pub const SWEEP_QUIET: Duration = Duration::from_secs(1);
/// Longest selection deferral after an in-process restart (RFC 4724 §4.1): a planned peer
/// that is down cannot hold back route changes longer than this.
pub const RESTART_DEFERRAL: Duration = Duration::from_secs(5);
/// How long the routes of a peer removed from the plan stay installed (stale: any fresh
/// path wins). A topology change (mesh → route reflectors) removes peerings whose routes
/// come back over new sessions moments later; without the hold they would flap.
pub const REMOVED_PEER_HOLD: Duration = Duration::from_secs(10);
/// Attempts to bind the listener again after a restart (the old listener closes
/// asynchronously), 100 ms apart.
const BIND_ATTEMPTS: u32 = 50;

pub(crate) fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) type Events = mpsc::UnboundedReceiver<SpeakerEvent>;

/// Starts a speaker for `plan` and originates its advertisements (needs a runtime context).
///
/// `restarting` (a restart inside this process, the fastpath's routes untouched) starts the
/// speaker as an RFC 4724 restarting speaker: its OPEN sets the R bit and claims preserved
/// forwarding state, so helpers keep our routes until our End-of-RIB instead of flushing
/// them when the session returns; selection is deferred for at most [`RESTART_DEFERRAL`].
pub(crate) fn start_speaker(
    plan: &AgentPlan,
    restarting: bool,
) -> Result<(SpeakerHandle, Events), tortie_bgp::RuntimeError> {
    let mut cfg = plan.speaker.clone();
    if restarting {
        cfg.graceful_restart.restarting = true;
        cfg.graceful_restart.selection_deferral = RESTART_DEFERRAL;
    }
    let (handle, events) = runtime::spawn(cfg)?;
    for a in &plan.advertisements {
        handle.originate(a.wire_prefix(), a.local_route())?;
    }
    Ok((handle, events))
}

/// After a restart: learned prefixes not yet re-learned.
pub(crate) struct Sweep {
    stale: HashSet<IpNet>,
    started: Instant,
    last_event: Instant,
    /// A route event arrived: the new speaker's selection deferral is over.
    events_seen: bool,
}

pub(crate) struct Supervisor {
    pub plan: AgentPlan,
    pub speaker: Option<SpeakerHandle>,
    pub shared: Arc<Mutex<Shared>>,
    pub notify: Arc<Notify>,
    pub sweep: Option<Sweep>,
}

impl Supervisor {
    pub(crate) async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Cmd>,
        mut events: Option<Events>,
    ) {
        let mut tick = tokio::time::interval(STATUS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    // The agent was dropped: end without Cease (graceful-restart friendly).
                    None => break,
                    Some(Cmd::Apply(p)) => self.apply(*p, &mut events).await,
                    Some(Cmd::Status(reply)) => {
                        self.poll_status().await;
                        let _ = reply.send(lock(&self.shared).peers.clone());
                    }
                    Some(Cmd::Shutdown(done)) => {
                        if let Some(h) = self.speaker.take() {
                            let _ = h.shutdown().await;
                        }
                        let _ = done.send(());
                        break;
                    }
                },
                ev = next_event(&mut events) => match ev {
                    Some(ev) => self.on_event(ev),
                    None => events = None,
                },
                _ = tick.tick() => {
                    if self.speaker.is_none() {
                        self.restart(&mut events).await;
                    }
                    self.poll_status().await;
                    self.maybe_sweep();
                }
            }
        }
    }

    async fn apply(&mut self, new: AgentPlan, events: &mut Option<Events>) {
        // Only speaker-wide settings (AS, router id, port, listen addresses, cluster id,
        // graceful restart) need a new speaker; peers are added, changed and removed on the
        // running one, so the other sessions are not touched.
        let restart = speaker_wide(&new.speaker) != speaker_wide(&self.plan.speaker);
        let old = std::mem::replace(&mut self.plan, new);
        {
            let now = unix_now();
            let mut s = lock(&self.shared);
            let previous = std::mem::take(&mut s.peers);
            s.peers = self
                .plan
                .peers
                .iter()
                .map(|p| {
                    let mut row = PeerStatus::initial(p, now);
                    let unchanged = old
                        .peer(p.config.address)
                        .is_some_and(|o| o.config.same_session(&p.config));
                    if let Some(prev) = previous.iter().find(|q| q.address == row.address)
                        && !restart
                        && unchanged
                    {
                        row.state = prev.state.clone();
                        row.since_unix = prev.since_unix;
                        row.received = prev.received;
                        row.advertised = prev.advertised;
                        row.flaps = prev.flaps;
                        row.last_error = prev.last_error.clone();
                    }
                    row
                })
                .collect();
        }
        if restart {
            tracing::info!(
                peers = self.plan.peers.len(),
                "BGP speaker-wide configuration changed: restarting the speaker"
            );
            self.restart(events).await;
            return;
        }
        let Some(h) = self.speaker.clone() else {
            return;
        };
        if !self.reconcile_peers(&h, &old).await {
            // The running speaker no longer matches the plan: start over from the plan
            // (gracefully, as any restart), rather than leave a peer misconfigured.
            tracing::warn!("BGP peer changes failed: restarting the speaker");
            self.restart(events).await;
            return;
        }
        let new_set: HashMap<IpNet, &Advertisement> = self
            .plan
            .advertisements
            .iter()
            .map(|a| (a.prefix, a))
            .collect();
        for a in &old.advertisements {
            if !new_set.contains_key(&a.prefix) {
                let _ = h.withdraw(a.wire_prefix());
            }
        }
        for a in &self.plan.advertisements {
            if old.advertisements.iter().find(|o| o.prefix == a.prefix) != Some(a) {
                let _ = h.originate(a.wire_prefix(), a.local_route());
            }
        }
    }

    /// Applies the peer differences between `old` and the current plan to the running
    /// speaker: removed peers are removed, new ones added, changed ones updated (in place
    /// for policy and next-hop changes, a reset of that one session otherwise). False when a
    /// change failed (the failure is recorded on that peer's status row).
    async fn reconcile_peers(&mut self, h: &SpeakerHandle, old: &AgentPlan) -> bool {
        for o in &old.peers {
            if self.plan.peer(o.config.address).is_none() {
                tracing::info!(peer = %o.config.address, "BGP peer removed");
                // Another Calico node computes the same change from the same datastore (mesh
                // off, reflectors on): close quietly and keep its routes while the new
                // sessions come up. Any other peer gets Cease and its routes go now.
                let _ = if o.node.is_some() {
                    h.remove_peer_gently(o.config.address, REMOVED_PEER_HOLD)
                        .await
                } else {
                    h.remove_peer(o.config.address).await
                };
            }
        }
        let mut failed = vec![];
        for p in &self.plan.peers {
            let before = old.peer(p.config.address).map(|o| &o.config);
            if before == Some(&p.config) {
                continue;
            }
            tracing::info!(peer = %p.config.address, added = before.is_none(), "BGP peer configured");
            if let Err(e) = h.update_peer(p.config.clone()).await {
                tracing::warn!(peer = %p.config.address, error = %e, "BGP peer could not be configured");
                failed.push((p.config.address, e.to_string()));
            }
        }
        let mut s = lock(&self.shared);
        let ok = failed.is_empty();
        for (addr, e) in failed {
            if let Some(row) = s.peers.iter_mut().find(|r| r.address == addr) {
                row.last_error = Some(e);
            }
        }
        ok
    }

    /// Replaces the speaker: the old one is dropped (its sessions close without a
    /// NOTIFICATION), a new one binds (retrying while the old listener closes).
    async fn restart(&mut self, events: &mut Option<Events>) {
        self.speaker = None;
        *events = None;
        let mut attempt = 0;
        let started = loop {
            attempt += 1;
            match start_speaker(&self.plan, true) {
                Ok(s) => break Ok(s),
                Err(e) if attempt < BIND_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "speaker restart: retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => break Err(e),
            }
        };
        let mut s = lock(&self.shared);
        match started {
            Ok((h, ev)) => {
                s.listening = h.listening.clone();
                s.last_error = None;
                self.speaker = Some(h);
                *events = Some(ev);
                let now = Instant::now();
                self.sweep = Some(Sweep {
                    stale: s.routes.keys().copied().collect(),
                    started: now,
                    last_event: now,
                    events_seen: false,
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "BGP speaker could not start; retrying every second");
                s.last_error = Some(e.to_string());
            }
        }
    }

    fn on_event(&mut self, ev: SpeakerEvent) {
        let mut s = lock(&self.shared);
        match ev {
            SpeakerEvent::Route(RouteEvent::Added(p, best) | RouteEvent::Changed(p, best)) => {
                let prefix = from_wire(p);
                if let Some(sweep) = &mut self.sweep {
                    sweep.stale.remove(&prefix);
                    sweep.last_event = Instant::now();
                    sweep.events_seen = true;
                }
                match best.origin {
                    RouteOrigin::Local => remove_route(&mut s, prefix),
                    RouteOrigin::Peer { address, ebgp } => {
                        let route = LearnedRoute {
                            prefix,
                            next_hop: best.next_hop(),
                            from_peer: address,
                            ebgp,
                            local_pref: best.attrs.path.local_pref,
                            communities: best.attrs.path.communities.clone(),
                        };
                        if s.routes.get(&prefix) != Some(&route) {
                            s.routes.insert(prefix, route.clone());
                            s.changes.push(RouteChange::Add(route));
                        }
                    }
                }
            }
            SpeakerEvent::Route(RouteEvent::Withdrawn(p)) => {
                let prefix = from_wire(p);
                if let Some(sweep) = &mut self.sweep {
                    sweep.stale.remove(&prefix);
                    sweep.last_event = Instant::now();
                    sweep.events_seen = true;
                }
                remove_route(&mut s, prefix);
            }
            SpeakerEvent::PeerUp(addr) => set_state(&mut s, addr, "Established"),
            SpeakerEvent::PeerDown(addr, reason) => {
                set_state(&mut s, addr, state_name(tortie_bgp::fsm::State::Idle));
                if let Some(row) = s.peers.iter_mut().find(|r| r.address == addr) {
                    row.last_error = Some(format!("{reason:?}"));
                }
            }
        }
        if !s.changes.is_empty() {
            self.notify.notify_one();
        }
    }

    async fn poll_status(&mut self) {
        let Some(h) = &self.speaker else { return };
        let Ok(status) = h.status().await else { return };
        let mut s = lock(&self.shared);
        let now = unix_now();
        for st in status {
            if let Some(row) = s.peers.iter_mut().find(|r| r.address == st.address) {
                let state = state_name(st.state);
                if row.state != state {
                    row.state = state.to_string();
                    row.since_unix = now;
                }
                row.received = st.received;
                row.advertised = st.advertised;
                row.flaps = st.flaps;
                if st.last_error.is_some() {
                    row.last_error = st.last_error;
                }
            }
        }
    }

    /// Removes learned routes that a restarted speaker did not learn again.
    fn maybe_sweep(&mut self) {
        let Some(sweep) = &self.sweep else { return };
        let mut s = lock(&self.shared);
        let all_up = s.peers.iter().all(PeerStatus::is_established);
        let quiet = sweep.last_event.elapsed() >= SWEEP_QUIET;
        // The restarted speaker reports nothing until its selection deferral ends: wait for
        // its first route event, or for the deferral to run out.
        let deferral_over =
            sweep.events_seen || sweep.started.elapsed() >= RESTART_DEFERRAL + SWEEP_QUIET;
        if !(all_up && quiet && deferral_over) && sweep.started.elapsed() < SWEEP_MAX {
            return;
        }
        let stale: Vec<IpNet> = sweep.stale.iter().copied().collect();
        self.sweep = None;
        for p in stale {
            remove_route(&mut s, p);
        }
        if !s.changes.is_empty() {
            self.notify.notify_one();
        }
    }
}

/// The speaker configuration without its peers: what only a new speaker can change.
fn speaker_wide(cfg: &tortie_bgp::SpeakerConfig) -> tortie_bgp::SpeakerConfig {
    tortie_bgp::SpeakerConfig {
        peers: vec![],
        ..cfg.clone()
    }
}

fn remove_route(s: &mut Shared, prefix: IpNet) {
    if s.routes.remove(&prefix).is_some() {
        s.changes.push(RouteChange::Remove(prefix));
    }
}

fn set_state(s: &mut Shared, addr: IpAddr, state: &str) {
    if let Some(row) = s.peers.iter_mut().find(|r| r.address == addr)
        && row.state != state
    {
        row.state = state.to_string();
        row.since_unix = unix_now();
    }
}

async fn next_event(events: &mut Option<Events>) -> Option<SpeakerEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

//! Run-time peer changes: adding and removing one neighbour without touching the others.
//!
//! Peers live in a vector indexed by [`PeerId`] (timers, connection ids and route sources
//! are keyed by that index), so a removed peer keeps its slot, marked removed, and an added
//! peer always takes a new slot: a timer or connection event still in flight for the old
//! peer can never be mistaken for the new one. A slot left behind costs the peer's
//! configuration and an idle FSM (a few hundred bytes); its routes and Adj-RIB-Out are gone.

use super::peer::Peer;
use super::{Output, PeerId, PeerTimer, Speaker, TimerKey, canonical};
use crate::config::PeerConfig;
use crate::error::ConfigError;
use crate::fsm::{FsmEvent, Timer};
use crate::rib::best::SourceInfo;
use std::net::Ipv4Addr;

impl Speaker {
    /// Adds a neighbour and starts it (ManualStart). The other sessions are not touched.
    /// Fails, changing nothing, when the configuration is invalid or the address is taken.
    pub fn add_peer(&mut self, cfg: PeerConfig) -> Result<(PeerId, Vec<Output>), ConfigError> {
        if self.peer_by_address(cfg.address).is_some() {
            return Err(ConfigError::DuplicatePeer(cfg.address));
        }
        self.check_peer(&cfg)?;
        let id = self.push_peer(cfg, vec![]);
        self.fsm_event(id, FsmEvent::Start);
        Ok((id, self.finish()))
    }

    /// Validates one peer with the speaker-wide rules.
    fn check_peer(&self, cfg: &PeerConfig) -> Result<(), ConfigError> {
        let mut probe = self.cfg.clone();
        probe.peers = vec![cfg.clone()];
        probe.validate()
    }

    /// Appends a peer slot (not started).
    fn push_peer(&mut self, cfg: PeerConfig, replaces: Vec<crate::route::SourceId>) -> PeerId {
        let id = self.peers.len();
        let peer = Peer::new_replacing(&self.cfg, cfg.clone(), id, replaces);
        self.rib.set_source(
            peer.source,
            SourceInfo {
                ebgp: cfg.is_ebgp(self.cfg.local_as),
                router_id: Ipv4Addr::UNSPECIFIED,
                address: cfg.address,
            },
        );
        self.peers.push(peer);
        self.cfg.peers.push(cfg);
        id
    }

    /// Replaces a peer whose session must be reset by a configuration change. When graceful
    /// restart was negotiated on it, the reset is graceful both ways: the old connection
    /// closes without a NOTIFICATION (the neighbour keeps our routes, RFC 4724 §4.2), the new
    /// session claims preserved forwarding state, and the neighbour's routes stay installed
    /// as stale until the new session's End-of-RIB (or the restart time). Otherwise the
    /// peer is removed (Cease) and added again.
    fn replace_peer(
        &mut self,
        peer: PeerId,
        cfg: PeerConfig,
    ) -> Result<(PeerId, Vec<Output>), ConfigError> {
        self.check_peer(&cfg)?;
        // Graceful when GR was negotiated on the session, or when the slot is itself a
        // replacement still waiting for its session (it carries the routes kept so far).
        let gr = self.cfg.graceful_restart.enabled
            && cfg.graceful_restart
            && (self.peers[peer]
                .session
                .as_ref()
                .is_some_and(|s| s.neg.peer_gr.is_some())
                || !self.peers[peer].replaces.is_empty());
        if !gr {
            let out = self.remove_peer(peer);
            let (id, more) = self.add_peer(cfg)?;
            return Ok((id, out.into_iter().chain(more).collect()));
        }
        let src = self.peers[peer].source;
        for f in tortie_bgp_wire::Family::ALL {
            self.rib.mark_stale(src, f, &mut self.changed);
        }
        // A replacement replaced again before it finished takes over its predecessors too.
        let mut replaces = std::mem::take(&mut self.peers[peer].replaces);
        replaces.push(src);
        self.retire(peer);
        let restart = cfg
            .restart_time
            .unwrap_or(self.cfg.graceful_restart.restart_time);
        let id = self.push_peer(cfg, replaces);
        self.out.push(Output::StartTimer {
            key: TimerKey::Peer(id, PeerTimer::GrRestart),
            after: restart,
        });
        self.fsm_event(id, FsmEvent::Start);
        Ok((id, self.finish()))
    }

    /// Takes a slot out of service without a NOTIFICATION: connections closed, timers
    /// stopped, Adj-RIB-Out dropped. Its routes stay (the caller decides).
    fn retire(&mut self, peer: PeerId) {
        let p = &mut self.peers[peer];
        p.removed = true;
        p.session = None;
        p.adj_out = Default::default();
        p.gr_stale = [false; 2];
        p.refresh_stale = [false; 2];
        for t in [PeerTimer::GrRestart, PeerTimer::GrStale]
            .into_iter()
            .chain(Timer::ALL.into_iter().map(PeerTimer::Fsm))
        {
            self.out.push(Output::StopTimer {
                key: TimerKey::Peer(peer, t),
            });
        }
        let conns: Vec<_> = self
            .conns
            .iter()
            .filter(|(_, c)| c.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for conn in conns {
            self.conns.remove(&conn);
            self.out.push(Output::Close { conn });
        }
    }

    /// Drops the stale routes a replacement session took over (its End-of-RIB arrived or
    /// its restart time ran out).
    pub(super) fn sweep_replaced(&mut self, peer: PeerId) {
        if self.peers.get(peer).is_some_and(|p| p.removed) {
            // A removed slot's hold ran out: its own kept routes go too.
            let src = self.peers[peer].source;
            self.rib.remove_where(src, |_, _| true, &mut self.changed);
        }
        let olds = self
            .peers
            .get_mut(peer)
            .map(|p| std::mem::take(&mut p.replaces))
            .unwrap_or_default();
        for old in olds {
            self.rib.remove_where(old, |_, _| true, &mut self.changed);
        }
    }

    /// Removes a neighbour: its session ends with Cease / Administrative Shutdown (RFC 4486),
    /// its routes are withdrawn at once (no graceful-restart retention: it was deconfigured),
    /// its timers stop. The other sessions are not touched.
    pub fn remove_peer(&mut self, peer: PeerId) -> Vec<Output> {
        self.remove_peer_with(peer, std::time::Duration::ZERO, true)
    }

    /// Removes a neighbour gently, for topology changes where the peering is replaced by
    /// others (the mesh turned off for route reflectors): the connection closes without a
    /// NOTIFICATION, so a graceful-restart-capable neighbour keeps our routes (RFC 4724
    /// §4.2) until its own configuration drops us, and the neighbour's routes stay here,
    /// stale (any fresh path wins), for `keep`. Routes thus do not disappear while the
    /// sessions that will carry them come up.
    pub fn remove_peer_gently(&mut self, peer: PeerId, keep: std::time::Duration) -> Vec<Output> {
        self.remove_peer_with(peer, keep, false)
    }

    fn remove_peer_with(
        &mut self,
        peer: PeerId,
        keep: std::time::Duration,
        cease: bool,
    ) -> Vec<Output> {
        if self.peers.get(peer).is_none_or(|p| p.removed) {
            return self.finish();
        }
        if cease {
            self.fsm_event(peer, FsmEvent::Stop);
        }
        let src = self.peers[peer].source;
        if keep.is_zero() {
            self.rib.remove_where(src, |_, _| true, &mut self.changed);
            self.sweep_replaced(peer);
        } else {
            for f in tortie_bgp_wire::Family::ALL {
                self.rib.mark_stale(src, f, &mut self.changed);
            }
        }
        self.retire(peer);
        if !keep.is_zero() {
            // Started after `retire` stopped the slot's timers; handled for removed slots.
            self.out.push(Output::StartTimer {
                key: TimerKey::Peer(peer, PeerTimer::GrRestart),
                after: keep,
            });
        }
        self.finish()
    }

    /// Replaces a neighbour's configuration. Changes that do not touch the session itself
    /// (policies, next-hop handling, route-reflection client flag and cluster id) apply in
    /// place: the Adj-RIB-Out of every peer is brought in line (only differences are sent);
    /// a stricter import policy drops what it now rejects, a looser one asks the peer to
    /// resend its routes (RFC 2918), or resets the session when the peer cannot. Any other
    /// change replaces the peer (its session alone resets). Returns the peer's id, which is
    /// new when it was replaced.
    pub fn update_peer(
        &mut self,
        peer: PeerId,
        cfg: PeerConfig,
    ) -> Result<(PeerId, Vec<Output>), ConfigError> {
        let Some(old) = self
            .peers
            .get(peer)
            .filter(|p| !p.removed)
            .map(|p| p.cfg.clone())
        else {
            return self.add_peer(cfg);
        };
        if old == cfg {
            return Ok((peer, self.finish()));
        }
        let mut probe = self.cfg.clone();
        probe.peers = vec![cfg.clone()];
        probe.validate()?;
        if !old.same_session(&cfg) {
            return self.replace_peer(peer, cfg);
        }
        let import_changed = old.import_policy != cfg.import_policy;
        // The route-reflection role also changes what goes to the other peers; policies and
        // next-hop handling only what goes to this one.
        let role_changed = old.route_reflector_client != cfg.route_reflector_client
            || old.cluster_id != cfg.cluster_id;
        let ebgp = cfg.is_ebgp(self.cfg.local_as);
        self.peers[peer].cfg = cfg.clone();
        self.cfg.peers[peer] = cfg;
        if import_changed && self.peers[peer].session.is_some() {
            let refresh = self.peers[peer]
                .session
                .as_ref()
                .is_some_and(|s| s.neg.route_refresh);
            if !refresh {
                let cfg = self.peers[peer].cfg.clone();
                return self.replace_peer(peer, cfg);
            }
            let src = self.peers[peer].source;
            let policy = self.peers[peer].cfg.import_policy.clone();
            let kind = if ebgp {
                crate::policy::RouteSource::Ebgp
            } else {
                crate::policy::RouteSource::Ibgp
            };
            self.rib
                .remove_where(src, |pfx, _| !policy.accepts(pfx, kind), &mut self.changed);
            for f in tortie_bgp_wire::Family::ALL {
                let (_, out) = self.request_refresh(peer, f);
                self.out.extend(out);
            }
        }
        self.reexport((!role_changed).then_some(peer));
        Ok((peer, self.finish()))
    }

    /// The peers in service, with their configuration (removed slots skipped).
    pub fn peer_ids(&self) -> impl Iterator<Item = (PeerId, &PeerConfig)> {
        self.peers
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.removed)
            .map(|(i, p)| (i, &p.cfg))
    }

    /// Whether `peer` is a slot in service.
    pub fn is_active(&self, peer: PeerId) -> bool {
        self.peers.get(peer).is_some_and(|p| !p.removed)
    }

    /// The active peer at `addr`, if any (IPv4-mapped addresses compare as IPv4).
    pub(super) fn active_peer_at(&self, addr: std::net::IpAddr) -> Option<PeerId> {
        let addr = canonical(addr);
        self.peers
            .iter()
            .position(|p| !p.removed && canonical(p.cfg.address) == addr)
    }
}

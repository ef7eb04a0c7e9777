//! Per-peer state: configuration, FSM, negotiated session and Adj-RIB-Out.

use crate::config::{PeerConfig, SpeakerConfig};
use crate::fsm::{ConnId, Fsm, FsmConfig};
use crate::route::{RouteAttrs, SourceId};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tortie_bgp_wire::{
    AddPathMode, Capability, Context, Family, GrFamily, GracefulRestartCap, Open, Prefix,
};

/// What the two OPENs agreed on (RFC 5492 §3: a feature is used only if both sides sent it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's AS.
    pub peer_as: u32,
    /// The peer's BGP Identifier.
    pub peer_id: Ipv4Addr,
    /// eBGP session.
    pub ebgp: bool,
    /// Hold time in use.
    pub hold_time: Duration,
    /// Families both sides carry ([`Family::index`]).
    pub families: [bool; 2],
    /// Decoding context for what the peer sends.
    pub rx: Context,
    /// Encoding context for what we send.
    pub tx: Context,
    /// The peer accepts ROUTE-REFRESH (RFC 2918).
    pub route_refresh: bool,
    /// Both sides support enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// The peer's graceful-restart capability, when both sides do GR.
    pub peer_gr: Option<GracefulRestartCap>,
}

impl Negotiated {
    /// Computes the session parameters from our OPEN and the peer's.
    pub fn new(local_as: u32, ours: &Open, theirs: &Open, hold_time: Duration) -> Negotiated {
        let fams = |o: &Open| -> Option<[bool; 2]> {
            let mut f = [false; 2];
            let mut any = false;
            for c in &o.capabilities {
                if let Capability::Multiprotocol { afi, safi } = c {
                    any = true;
                    if let Some(fam) = Family::from_afi_safi(*afi, *safi) {
                        f[fam.index()] = true;
                    }
                }
            }
            any.then_some(f)
        };
        // RFC 4760 §8: no multiprotocol capability at all means IPv4 unicast only.
        let implied = [true, false];
        let (a, b) = (
            fams(ours).unwrap_or(implied),
            fams(theirs).unwrap_or(implied),
        );
        let families = [a[0] && b[0], a[1] && b[1]];
        let has = |o: &Open, code: u8| o.capabilities.iter().any(|c| c.code() == code);
        let four = has(ours, 65) && has(theirs, 65);
        let add_path = |o: &Open, want_send: bool| -> [bool; 2] {
            let mut v = [false; 2];
            for c in &o.capabilities {
                if let Capability::AddPath(list) = c {
                    for (afi, safi, mode) in list {
                        if let Some(f) = Family::from_afi_safi(*afi, *safi) {
                            v[f.index()] |= if want_send {
                                mode.sends()
                            } else {
                                mode.receives()
                            };
                        }
                    }
                }
            }
            v
        };
        let (we_recv, they_send) = (add_path(ours, false), add_path(theirs, true));
        let (we_send, they_recv) = (add_path(ours, true), add_path(theirs, false));
        let rx = Context {
            four_octet_as: four,
            add_path: [we_recv[0] && they_send[0], we_recv[1] && they_send[1]],
        };
        let tx = Context {
            four_octet_as: four,
            add_path: [we_send[0] && they_recv[0], we_send[1] && they_recv[1]],
        };
        let gr = |o: &Open| {
            o.capabilities.iter().find_map(|c| match c {
                Capability::GracefulRestart(g) => Some(g.clone()),
                _ => None,
            })
        };
        Negotiated {
            peer_as: theirs.asn(),
            peer_id: theirs.bgp_id,
            ebgp: theirs.asn() != local_as,
            hold_time,
            families,
            rx,
            tx,
            route_refresh: has(theirs, 2) || has(theirs, 70),
            enhanced_route_refresh: has(ours, 70) && has(theirs, 70),
            peer_gr: if gr(ours).is_some() { gr(theirs) } else { None },
        }
    }

    /// Whether `family` is carried on this session.
    pub fn carries(&self, family: Family) -> bool {
        self.families[family.index()]
    }
}

/// An Established session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The connection carrying it.
    pub conn: ConnId,
    /// Our address on that connection (source of "next hop self").
    pub local: Option<SocketAddr>,
    /// Negotiated parameters.
    pub neg: Negotiated,
    /// End-of-RIB received per family.
    pub eor_received: [bool; 2],
    /// Initial table (and End-of-RIB) sent.
    pub initial_sent: bool,
}

/// Everything the speaker keeps per peer.
#[derive(Debug)]
pub struct Peer {
    /// Configuration.
    pub cfg: PeerConfig,
    /// Source id of routes learned from this peer.
    pub source: SourceId,
    /// The session FSM.
    pub fsm: Fsm,
    /// Present while Established.
    pub session: Option<Session>,
    /// Adj-RIB-Out: what we last advertised, per prefix.
    pub adj_out: HashMap<Prefix, Arc<RouteAttrs>>,
    /// Per family: the peer's routes are stale, kept for its graceful restart (RFC 4724 §4.2).
    pub gr_stale: [bool; 2],
    /// Per family: an enhanced route refresh from the peer is in progress (RFC 7313 §4).
    pub refresh_stale: [bool; 2],
    /// Last error seen on the session, for status output.
    pub last_error: Option<String>,
    /// Removed at run time ([`crate::Speaker::remove_peer`]); the slot is kept so that
    /// peer ids stay stable.
    pub removed: bool,
    /// This slot replaced another one's session without a NOTIFICATION (a configuration
    /// change): our OPEN claims preserved forwarding state, so the neighbour, as a
    /// graceful-restart helper, keeps our routes until our End-of-RIB (RFC 4724 §4.2).
    pub graceful_reset: bool,
    /// The sources whose routes (kept as stale) this slot's session replaces (more than
    /// one when a replacement is replaced again before it finished); they are swept at
    /// this session's End-of-RIB or when its restart timer runs out.
    pub replaces: Vec<SourceId>,
}

impl Peer {
    /// Builds the peer with its FSM in Idle.
    pub fn new(speaker: &SpeakerConfig, cfg: PeerConfig, index: usize) -> Peer {
        Peer::new_replacing(speaker, cfg, index, vec![])
    }

    /// Builds a peer whose session replaces the ones of the sources `replaces` gracefully
    /// (see [`Peer::replaces`]).
    pub fn new_replacing(
        speaker: &SpeakerConfig,
        cfg: PeerConfig,
        index: usize,
        replaces: Vec<SourceId>,
    ) -> Peer {
        let graceful_reset = !replaces.is_empty();
        let open = build_open(speaker, &cfg, graceful_reset);
        let fsm_cfg = FsmConfig {
            local_id: speaker.router_id,
            remote_as: cfg.remote_as,
            internal: !cfg.is_ebgp(speaker.local_as),
            hold_time: cfg.hold_time,
            connect_retry: cfg.connect_retry,
            passive: cfg.passive,
            delay_open: cfg.delay_open,
            idle_hold: cfg.idle_hold,
            open,
            jitter: true,
        };
        // Each peer allocates outgoing connection ids from its own range.
        let first = u64::try_from(index + 1).unwrap_or(u64::MAX >> 33) << 32;
        Peer {
            source: SourceId::try_from(index + 1).unwrap_or(SourceId::MAX),
            fsm: Fsm::new(fsm_cfg, first),
            cfg,
            session: None,
            adj_out: HashMap::new(),
            gr_stale: [false; 2],
            refresh_stale: [false; 2],
            last_error: None,
            removed: false,
            graceful_reset,
            replaces,
        }
    }

    /// The address we advertise as next hop for `family` on this session, if we have one.
    pub fn self_next_hop(&self, family: Family) -> Option<IpAddr> {
        let local = self
            .session
            .as_ref()
            .and_then(|s| s.local)
            .map(|a| a.ip())
            .or(self.cfg.local_address);
        match family {
            Family::Ipv4Unicast => match local {
                Some(IpAddr::V4(a)) => Some(IpAddr::V4(a)),
                _ => self.cfg.next_hop_v4.map(IpAddr::V4),
            },
            Family::Ipv6Unicast => match local {
                Some(IpAddr::V6(a)) if a.to_ipv4_mapped().is_none() => Some(IpAddr::V6(a)),
                _ => self.cfg.next_hop_v6.map(IpAddr::V6),
            },
        }
    }
}

/// Our OPEN for a peer: multiprotocol per family, route refresh (plain and enhanced),
/// 4-octet AS (the AS presented to this peer), graceful restart (with the peer's restart
/// time when it has its own) and ADD-PATH receive as configured.
///
/// `graceful_reset` claims preserved forwarding state (F bits) even when the speaker is not
/// restarting: the session is being replaced while this speaker keeps running.
pub fn build_open(speaker: &SpeakerConfig, cfg: &PeerConfig, graceful_reset: bool) -> Open {
    let mut caps: Vec<Capability> = cfg.families.iter().map(|f| Capability::mp(*f)).collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::EnhancedRouteRefresh);
    let local_as = cfg.effective_local_as(speaker.local_as);
    caps.push(Capability::FourOctetAs(local_as));
    let gr = &speaker.graceful_restart;
    let restart_time = cfg.restart_time.unwrap_or(gr.restart_time);
    if gr.enabled && cfg.graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestartCap {
            restarting: gr.restarting,
            notification: false,
            restart_time: u16::try_from(restart_time.as_secs().min(4095)).unwrap_or(4095),
            families: cfg
                .families
                .iter()
                .map(|f| GrFamily {
                    afi: f.afi(),
                    safi: f.safi(),
                    forwarding_preserved: gr.restarting || graceful_reset,
                })
                .collect(),
        }));
    }
    if !cfg.add_path_receive.is_empty() {
        caps.push(Capability::AddPath(
            cfg.add_path_receive
                .iter()
                .map(|f| (f.afi(), f.safi(), AddPathMode::Receive))
                .collect(),
        ));
    }
    Open {
        my_as: Open::my_as_field(local_as),
        hold_time: u16::try_from(cfg.hold_time.as_secs()).unwrap_or(u16::MAX),
        bgp_id: speaker.router_id,
        capabilities: caps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(caps: Vec<Capability>) -> Open {
        Open {
            my_as: 64512,
            hold_time: 9,
            bgp_id: Ipv4Addr::new(198, 18, 0, 1),
            capabilities: caps,
        }
    }

    #[test]
    fn families_are_intersected_and_implied_ipv4() {
        let ours = open(vec![
            Capability::mp(Family::Ipv4Unicast),
            Capability::mp(Family::Ipv6Unicast),
        ]);
        let n = Negotiated::new(
            64512,
            &ours,
            &open(vec![Capability::mp(Family::Ipv6Unicast)]),
            Duration::from_secs(9),
        );
        assert_eq!(n.families, [false, true]);
        let n = Negotiated::new(64512, &ours, &open(vec![]), Duration::from_secs(9));
        assert_eq!(
            n.families,
            [true, false],
            "no MP capability = IPv4 unicast (RFC 4760 §8)"
        );
    }

    #[test]
    fn add_path_needs_both_directions() {
        let ours = open(vec![Capability::AddPath(vec![(
            Family::Ipv4Unicast.afi(),
            Family::Ipv4Unicast.safi(),
            AddPathMode::Receive,
        )])]);
        let theirs = open(vec![Capability::AddPath(vec![(
            Family::Ipv4Unicast.afi(),
            Family::Ipv4Unicast.safi(),
            AddPathMode::Both,
        )])]);
        let n = Negotiated::new(64512, &ours, &theirs, Duration::from_secs(9));
        assert_eq!(n.rx.add_path, [true, false]);
        assert_eq!(n.tx.add_path, [false, false], "we never offered to send");
        let n = Negotiated::new(64512, &ours, &open(vec![]), Duration::from_secs(9));
        assert_eq!(n.rx.add_path, [false, false]);
    }

    #[test]
    fn open_carries_per_peer_local_as_and_restart_time() {
        let mut sp = SpeakerConfig::new(64512, Ipv4Addr::new(198, 18, 0, 1));
        sp.graceful_restart.restart_time = Duration::from_secs(120);
        let mut p = crate::PeerConfig::new("198.18.0.2".parse().unwrap(), 65010);
        let restart = |o: &Open| {
            o.capabilities.iter().find_map(|c| match c {
                Capability::GracefulRestart(g) => Some(g.restart_time),
                _ => None,
            })
        };
        let o = build_open(&sp, &p, false);
        assert_eq!((o.asn(), restart(&o)), (64512, Some(120)));
        p.local_as = Some(4_200_000_009);
        p.restart_time = Some(Duration::from_secs(300));
        let o = build_open(&sp, &p, false);
        assert_eq!(o.asn(), 4_200_000_009);
        assert_eq!(o.my_as, 23456, "AS_TRANS in the 2-octet field (RFC 6793)");
        assert_eq!(restart(&o), Some(300));
        p.remote_as = 4_200_000_009;
        assert!(!p.is_ebgp(64512), "same AS as presented: iBGP");
    }

    #[test]
    fn four_octet_and_enhanced_refresh_need_both_sides() {
        let ours = open(vec![
            Capability::FourOctetAs(64512),
            Capability::EnhancedRouteRefresh,
        ]);
        let n = Negotiated::new(
            64512,
            &ours,
            &open(vec![
                Capability::FourOctetAs(4_200_000_001),
                Capability::RouteRefresh,
            ]),
            Duration::from_secs(9),
        );
        assert!(n.rx.four_octet_as && n.route_refresh && !n.enhanced_route_refresh);
        assert!(n.ebgp);
        assert_eq!(n.peer_as, 4_200_000_001);
    }
}

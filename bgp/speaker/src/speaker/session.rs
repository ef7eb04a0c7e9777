//! Session up/down: capability negotiation results, graceful restart (RFC 4724) in both
//! roles, and the restarting speaker's selection deferral.

use super::peer::{self, Negotiated, Session};
use super::{Output, PeerId, PeerTimer, Speaker, TimerKey};
use crate::fsm::{ConnId, DownReason};
use crate::rib::best::SourceInfo;
use crate::route::RouteEvent;
use std::time::Duration;
use tortie_bgp_wire::Family;

impl Speaker {
    pub(super) fn session_up(&mut self, p: PeerId, conn: ConnId, open: &tortie_bgp_wire::Open) {
        let local = self.conns.get(&conn).and_then(|c| c.local);
        let peer = &mut self.peers[p];
        let ours = peer::build_open(&self.cfg, &peer.cfg, peer.graceful_reset);
        let neg = Negotiated::new(
            peer.cfg.effective_local_as(self.cfg.local_as),
            &ours,
            open,
            peer.fsm.hold_time(),
        );
        self.rib.set_source(
            peer.source,
            SourceInfo {
                ebgp: neg.ebgp,
                router_id: neg.peer_id,
                address: peer.cfg.address,
            },
        );
        // RFC 4724 §4.2: the peer restarted. Families it no longer preserves lose their
        // stale routes now; the others wait for End-of-RIB (bounded by the stale timer).
        if peer.gr_stale.iter().any(|s| *s) {
            self.out.push(Output::StopTimer {
                key: TimerKey::Peer(p, PeerTimer::GrRestart),
            });
            let preserved = |f: Family| {
                neg.peer_gr.as_ref().is_some_and(|g| {
                    g.families.iter().any(|x| {
                        Family::from_afi_safi(x.afi, x.safi) == Some(f) && x.forwarding_preserved
                    })
                })
            };
            let src = peer.source;
            for f in Family::ALL {
                if peer.gr_stale[f.index()] && !preserved(f) {
                    peer.gr_stale[f.index()] = false;
                    self.rib.remove_where(
                        src,
                        |pfx, path| path.stale && pfx.family() == f,
                        &mut self.changed,
                    );
                }
            }
            if peer.gr_stale.iter().any(|s| *s) {
                self.out.push(Output::StartTimer {
                    key: TimerKey::Peer(p, PeerTimer::GrStale),
                    after: self.cfg.graceful_restart.stale_routes_time,
                });
            }
        }
        peer.session = Some(Session {
            conn,
            local,
            neg,
            eor_received: [false; 2],
            initial_sent: false,
        });
        peer.last_error = None;
        self.out.push(Output::PeerUp {
            peer: p,
            address: peer.cfg.address,
        });
        if !self.deferring {
            self.send_initial(p);
        }
    }

    pub(super) fn session_down(&mut self, p: PeerId, reason: DownReason) {
        let gr_enabled = self.cfg.graceful_restart.enabled;
        let peer = &mut self.peers[p];
        let Some(sess) = peer.session.take() else {
            return;
        };
        peer.adj_out.clear();
        peer.refresh_stale = [false; 2];
        let src = peer.source;
        // RFC 4724 §4.2 (helper): keep the routes of a peer that can restart gracefully,
        // unless the session was closed on purpose with a NOTIFICATION.
        // A lost connection qualifies, and so does our hold timer expiring (the peer's process
        // died without closing the socket).
        let eligible = match &reason {
            DownReason::ConnectionLost => true,
            DownReason::NotificationSent(n) => {
                n.code == tortie_bgp_wire::error::code::HOLD_TIMER_EXPIRED
            }
            _ => false,
        };
        let gr = sess.neg.peer_gr.as_ref().filter(|_| gr_enabled && eligible);
        match gr {
            Some(g) if g.restart_time > 0 => {
                let mut keep = [false; 2];
                for f in &g.families {
                    if let Some(fam) = Family::from_afi_safi(f.afi, f.safi)
                        && sess.neg.carries(fam)
                    {
                        keep[fam.index()] = true;
                    }
                }
                for f in Family::ALL {
                    if keep[f.index()] {
                        self.rib.mark_stale(src, f, &mut self.changed);
                    }
                }
                self.rib
                    .remove_where(src, |pfx, _| !keep[pfx.family().index()], &mut self.changed);
                let peer = &mut self.peers[p];
                peer.gr_stale = keep;
                self.out.push(Output::StartTimer {
                    key: TimerKey::Peer(p, PeerTimer::GrRestart),
                    after: Duration::from_secs(u64::from(g.restart_time)),
                });
            }
            _ => {
                self.peers[p].gr_stale = [false; 2];
                self.out.push(Output::StopTimer {
                    key: TimerKey::Peer(p, PeerTimer::GrStale),
                });
                self.rib.remove_where(src, |_, _| true, &mut self.changed);
            }
        }
        let address = self.peers[p].cfg.address;
        self.out.push(Output::PeerDown {
            peer: p,
            address,
            reason,
        });
    }

    /// RFC 4724 §4.1: selection is done; tell every peer and the forwarding plane.
    pub(super) fn end_deferral(&mut self) {
        if !self.deferring {
            return;
        }
        self.deferring = false;
        self.out.push(Output::StopTimer {
            key: TimerKey::SelectionDeferral,
        });
        self.changed.clear();
        let events: Vec<Output> = self
            .rib
            .iter_best()
            .map(|(pfx, path)| Output::Route(RouteEvent::Added(*pfx, self.best_route_of(path))))
            .collect();
        self.out.extend(events);
        for p in 0..self.peers.len() {
            if self.peers[p].session.is_some() {
                self.send_initial(p);
            }
        }
    }
}

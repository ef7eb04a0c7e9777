//! Incoming UPDATE and ROUTE-REFRESH processing: RFC 7606 treatments, loop checks, RIB
//! installation, End-of-RIB and enhanced route refresh.

use super::{Output, PeerId, PeerTimer, Speaker, TimerKey};
use crate::policy::{RoutePolicy, RouteSource};
use crate::rib::Path;
use crate::route::RouteAttrs;
use std::sync::Arc;
use tortie_bgp_wire::{DecodedUpdate, Family, NextHop, Nlri, RefreshSubtype, RouteRefresh};

impl Speaker {
    pub(super) fn receive_update(&mut self, p: PeerId, du: DecodedUpdate) {
        let Some(sess) = self.peers[p].session.as_ref() else {
            return;
        };
        let neg = sess.neg.clone();
        let src = self.peers[p].source;
        if let Some(i) = du.issues.first() {
            self.peers[p].last_error = Some(i.to_string());
        }
        let treat_as_withdraw = du.treat_as_withdraw();
        let mut u = du.update;
        if let Some(f) = u.end_of_rib_family() {
            self.end_of_rib(p, f);
            return;
        }
        // Withdrawals: classic IPv4 field and MP_UNREACH_NLRI.
        if neg.carries(Family::Ipv4Unicast) {
            for n in &u.withdrawn {
                self.withdraw_path(src, n);
            }
        }
        if let Some(un) = u.mp_unreach.take()
            && neg.carries(un.family)
        {
            for n in &un.withdrawn {
                self.withdraw_path(src, n);
            }
        }
        // Announcements, unless RFC 7606 turned them into withdrawals or a loop check fails.
        let reject = treat_as_withdraw || self.looped(p, &u.attrs);
        // Import policy, per prefix (cloned only when there is one: policies are short).
        let import = &self.peers[p].cfg.import_policy;
        let import = (!import.is_accept_all()).then(|| {
            let kind = if neg.ebgp {
                RouteSource::Ebgp
            } else {
                RouteSource::Ibgp
            };
            (import.clone(), kind)
        });
        let mut attrs = std::mem::take(&mut u.attrs);
        if neg.ebgp {
            // RFC 4271 §5.1.5: LOCAL_PREF from an external peer is ignored.
            attrs.local_pref = None;
        }
        // Non-transitive attributes that only make sense inside an AS must not leak in.
        if neg.ebgp {
            attrs.originator_id = None;
            attrs.cluster_list.clear();
        }
        if !u.nlri.is_empty() && neg.carries(Family::Ipv4Unicast) {
            let nh = attrs.next_hop.map(NextHop::V4);
            self.install(
                src,
                &u.nlri,
                reject || nh.is_none(),
                import.as_ref(),
                || RouteAttrs {
                    path: attrs.clone(),
                    next_hop: nh,
                },
            );
        }
        if let Some(r) = u.mp_reach.take()
            && neg.carries(r.family)
        {
            let mut path = attrs;
            path.next_hop = None;
            self.install(src, &r.nlri, reject, import.as_ref(), || RouteAttrs {
                path,
                next_hop: Some(r.next_hop),
            });
        }
    }

    fn withdraw_path(&mut self, src: crate::route::SourceId, n: &Nlri) {
        if let Some(c) = self.rib.withdraw(&n.prefix, src, n.path_id) {
            self.changed.push((n.prefix, c));
        }
    }

    /// Installs `nlri` with one shared attribute set, or withdraws them when `reject` or
    /// when the import policy rejects the prefix (a rejected announcement replaces what the
    /// peer sent before for that prefix, so it is a withdrawal).
    fn install(
        &mut self,
        src: crate::route::SourceId,
        nlri: &[Nlri],
        reject: bool,
        import: Option<&(RoutePolicy, RouteSource)>,
        attrs: impl FnOnce() -> RouteAttrs,
    ) {
        if reject {
            for n in nlri {
                self.withdraw_path(src, n);
            }
            return;
        }
        let attrs = Arc::new(attrs());
        for n in nlri {
            if let Some((policy, kind)) = import
                && !policy.accepts(&n.prefix, *kind)
            {
                self.withdraw_path(src, n);
                continue;
            }
            let path = Path {
                source: src,
                path_id: n.path_id,
                attrs: attrs.clone(),
                stale: false,
            };
            if let Some(c) = self.rib.update(n.prefix, path) {
                self.changed.push((n.prefix, c));
            }
        }
    }

    /// Loop detection: our AS in an eBGP path (RFC 4271 §9.1.2), our router id as
    /// ORIGINATOR_ID or one of our cluster ids in CLUSTER_LIST (RFC 4456 §8).
    fn looped(&self, p: PeerId, a: &tortie_bgp_wire::PathAttributes) -> bool {
        let peer = &self.peers[p];
        if peer.cfg.is_ebgp(self.cfg.local_as) {
            // With a per-peer local AS the speaker's own AS is checked too: a route that
            // went through this speaker under either number is a loop, unless the peer is
            // allowed that many occurrences (`allow_local_as`).
            let mine = [
                self.cfg.local_as,
                peer.cfg.effective_local_as(self.cfg.local_as),
            ];
            let seen = a
                .as_path
                .segments
                .iter()
                .flat_map(|s| s.asns.iter())
                .filter(|asn| mine.contains(asn))
                .count();
            return seen > usize::from(peer.cfg.allow_local_as);
        }
        if a.originator_id == Some(self.cfg.router_id) {
            return true;
        }
        let own = self.cfg.effective_cluster_id();
        a.cluster_list.iter().any(|c| {
            *c == own
                || self
                    .peers
                    .iter()
                    .any(|q| !q.removed && q.cfg.cluster_id == Some(*c))
        })
    }

    /// RFC 4724 §4.2: End-of-RIB ends the stale period of a restarting peer for a family.
    fn end_of_rib(&mut self, p: PeerId, f: Family) {
        let peer = &mut self.peers[p];
        if let Some(s) = peer.session.as_mut() {
            s.eor_received[f.index()] = true;
            // A session that replaced another (configuration change) has now resent
            // everything: what the old one held and this one did not resend goes.
            let complete = Family::ALL
                .iter()
                .all(|f| !s.neg.carries(*f) || s.eor_received[f.index()]);
            if complete && !peer.replaces.is_empty() {
                self.sweep_replaced(p);
                if !self.peers[p].gr_stale.iter().any(|s| *s) {
                    self.out.push(Output::StopTimer {
                        key: TimerKey::Peer(p, PeerTimer::GrRestart),
                    });
                }
            }
        }
        let peer = &mut self.peers[p];
        let src = peer.source;
        if peer.gr_stale[f.index()] {
            peer.gr_stale[f.index()] = false;
            self.rib.remove_where(
                src,
                |pfx, path| path.stale && pfx.family() == f,
                &mut self.changed,
            );
            if !self.peers[p].gr_stale.iter().any(|s| *s) {
                self.out.push(Output::StopTimer {
                    key: TimerKey::Peer(p, PeerTimer::GrStale),
                });
            }
        }
        // A restarting speaker ends its deferral once every GR peer has sent End-of-RIB for
        // every family it carries (RFC 4724 §4.1).
        if self.deferring {
            let done = self
                .peers
                .iter()
                .filter(|q| !q.removed)
                .all(|q| match &q.session {
                    Some(s) => {
                        s.neg.peer_gr.is_none()
                            || Family::ALL
                                .iter()
                                .all(|f| !s.neg.carries(*f) || s.eor_received[f.index()])
                    }
                    None => false,
                });
            if done {
                self.end_deferral();
            }
        }
    }

    /// ROUTE-REFRESH from the peer: a request makes us resend the family's Adj-RIB-Out
    /// (framed by BoRR/EoRR with enhanced route refresh); BoRR/EoRR from the peer bracket
    /// its own re-advertisement, after which what it did not resend is dropped (RFC 7313 §4).
    pub(super) fn receive_refresh(&mut self, p: PeerId, rr: RouteRefresh) {
        let Some(f) = Family::from_afi_safi(rr.afi, rr.safi) else {
            return;
        };
        let Some(sess) = self.peers[p].session.as_ref() else {
            return;
        };
        if !sess.neg.carries(f) {
            return;
        }
        let src = self.peers[p].source;
        match rr.subtype {
            RefreshSubtype::Request => self.resend_family(p, f),
            RefreshSubtype::Begin => {
                self.peers[p].refresh_stale[f.index()] = true;
                self.rib.mark_stale(src, f, &mut self.changed);
            }
            RefreshSubtype::End => {
                if std::mem::take(&mut self.peers[p].refresh_stale[f.index()]) {
                    self.rib.remove_where(
                        src,
                        |pfx, path| path.stale && pfx.family() == f,
                        &mut self.changed,
                    );
                }
            }
            RefreshSubtype::Other(_) => {}
        }
    }
}

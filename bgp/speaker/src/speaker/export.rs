//! Export: which best routes go to which peer, with which attributes (RFC 4271 §9.1.3,
//! RFC 4456 §8, RFC 1997), and the Adj-RIB-Out bookkeeping that turns changes into UPDATEs.
//!
//! Rules, in order:
//! * never back to the peer it came from, nor to the peer named in its ORIGINATOR_ID;
//! * NO_ADVERTISE: nobody; NO_EXPORT / NO_EXPORT_SUBCONFED: no eBGP peer;
//! * iBGP-learned routes go to iBGP peers only when reflecting: from a client to anyone,
//!   from a non-client to clients (RFC 4456 §6); eBGP peers always get them;
//! * not to an eBGP peer whose AS is already in the path (it would drop it anyway);
//! * the peer's export policy ([`crate::policy`]) accepts the prefix from that source;
//! * towards eBGP: our AS (the one presented to that peer) prepended, next hop = us unless
//!   `next_hop_keep` and the route was learned, LOCAL_PREF / ORIGINATOR_ID / CLUSTER_LIST
//!   removed, MED removed unless the route is ours (RFC 4271 §5.1.4);
//! * towards iBGP: LOCAL_PREF set (100 when absent); reflected routes get ORIGINATOR_ID (if
//!   absent) and our cluster id prepended to CLUSTER_LIST, next hop untouched; local and
//!   eBGP-learned routes get next hop = us for local routes without one or with
//!   `next_hop_self`.

use super::{Output, PeerId, Speaker};
use crate::config::SpeakerConfig;
use crate::policy::{RoutePolicy, RouteSource};
use crate::rib::BestChange;
use crate::route::{LOCAL_SOURCE, RouteAttrs, SourceId};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use tortie_bgp_wire::attrs::community;
use tortie_bgp_wire::{
    Family, Message, NextHop, Nlri, Prefix, RefreshSubtype, RouteRefresh, pack_announcements,
    pack_withdrawals,
};

/// What export needs to know about a route's source.
#[derive(Debug, Clone, Copy)]
struct SrcInfo {
    ebgp: bool,
    rr_client: bool,
    router_id: Ipv4Addr,
    cluster_id: Option<Ipv4Addr>,
}

impl SrcInfo {
    fn kind(&self, id: SourceId) -> RouteSource {
        match (id == LOCAL_SOURCE, self.ebgp) {
            (true, _) => RouteSource::Local,
            (false, true) => RouteSource::Ebgp,
            (false, false) => RouteSource::Ibgp,
        }
    }
}

/// What export needs to know about the receiving peer.
#[derive(Debug, Clone, Copy)]
struct DstInfo {
    source: SourceId,
    ebgp: bool,
    local_as: u32,
    next_hop_keep: bool,
    peer_as: u32,
    peer_id: Ipv4Addr,
    rr_client: bool,
    next_hop_self: bool,
    cluster_id: Option<Ipv4Addr>,
    self_nh: [Option<IpAddr>; 2],
}

/// Computes the attributes to send, or `None` when the route must not go to this peer.
fn export_attrs(
    cfg: &SpeakerConfig,
    dst: &DstInfo,
    src_id: SourceId,
    src: &SrcInfo,
    a: &RouteAttrs,
    family: Family,
) -> Option<RouteAttrs> {
    if src_id == dst.source {
        return None;
    }
    let p = &a.path;
    if p.has_community(community::NO_ADVERTISE) {
        return None;
    }
    if dst.ebgp
        && (p.has_community(community::NO_EXPORT)
            || p.has_community(community::NO_EXPORT_SUBCONFED))
    {
        return None;
    }
    if p.originator_id.is_some_and(|o| o == dst.peer_id) {
        return None;
    }
    let local = src_id == LOCAL_SOURCE;
    let reflecting = !local && !src.ebgp && !dst.ebgp;
    if reflecting && !(src.rr_client || dst.rr_client) {
        return None;
    }
    if dst.ebgp && p.as_path.contains(dst.peer_as) {
        return None;
    }
    let self_nh = || dst.self_nh[family.index()].map(NextHop::from_addr);
    let mut out = RouteAttrs {
        path: p.clone(),
        next_hop: a.next_hop,
    };
    if dst.ebgp {
        out.path.as_path.prepend(dst.local_as);
        out.path.local_pref = None;
        out.path.originator_id = None;
        out.path.cluster_list.clear();
        if !local {
            out.path.med = None;
        }
        out.next_hop = match a.next_hop {
            Some(nh) if dst.next_hop_keep && !local => Some(nh),
            _ => Some(self_nh()?),
        };
    } else {
        out.path.local_pref = Some(p.local_pref.unwrap_or(100));
        if reflecting {
            out.path.originator_id = Some(p.originator_id.unwrap_or(src.router_id));
            let cluster = if src.rr_client {
                src.cluster_id
            } else {
                dst.cluster_id
            }
            .unwrap_or_else(|| cfg.effective_cluster_id());
            out.path.cluster_list.insert(0, cluster);
        }
        if out.next_hop.is_none() || (!reflecting && dst.next_hop_self) {
            out.next_hop = Some(self_nh()?);
        }
    }
    // The next hop must be of the family's kind to be encodable.
    match (family, out.next_hop) {
        (Family::Ipv4Unicast, Some(NextHop::V4(_)))
        | (Family::Ipv6Unicast, Some(NextHop::V6 { .. })) => Some(out),
        _ => None,
    }
}

impl Speaker {
    fn src_infos(&self) -> Vec<SrcInfo> {
        let mut v = vec![SrcInfo {
            ebgp: false,
            rr_client: false,
            router_id: self.cfg.router_id,
            cluster_id: None,
        }];
        v.extend(self.peers.iter().map(|q| {
            SrcInfo {
                ebgp: q.cfg.is_ebgp(self.cfg.local_as),
                rr_client: q.cfg.route_reflector_client,
                router_id: q
                    .session
                    .as_ref()
                    .map_or(Ipv4Addr::UNSPECIFIED, |s| s.neg.peer_id),
                cluster_id: q.cfg.cluster_id,
            }
        }));
        v
    }

    fn dst_info(&self, p: PeerId) -> Option<DstInfo> {
        let q = &self.peers[p];
        let s = q.session.as_ref()?;
        Some(DstInfo {
            source: q.source,
            ebgp: s.neg.ebgp,
            local_as: q.cfg.effective_local_as(self.cfg.local_as),
            next_hop_keep: q.cfg.next_hop_keep,
            peer_as: s.neg.peer_as,
            peer_id: s.neg.peer_id,
            rr_client: q.cfg.route_reflector_client,
            next_hop_self: q.cfg.next_hop_self,
            cluster_id: q.cfg.cluster_id,
            self_nh: [
                q.self_next_hop(Family::Ipv4Unicast),
                q.self_next_hop(Family::Ipv6Unicast),
            ],
        })
    }

    /// Sends every peer whose initial table went out the changes to `changed`.
    pub(super) fn export_changes(&mut self, changed: &[(Prefix, BestChange)]) {
        let srcs = self.src_infos();
        for p in 0..self.peers.len() {
            if self.peers[p]
                .session
                .as_ref()
                .is_some_and(|s| s.initial_sent)
            {
                self.export_to(p, &srcs, changed.iter().map(|(pfx, _)| *pfx), false);
            }
        }
    }

    /// Re-evaluates every best route for one peer (`Some`) or every peer (`None`) whose
    /// initial table went out (after a policy or role change); only differences are sent.
    pub(super) fn reexport(&mut self, only: Option<PeerId>) {
        let srcs = self.src_infos();
        let all: Vec<Prefix> = self.rib.iter_best().map(|(pfx, _)| *pfx).collect();
        for p in 0..self.peers.len() {
            if only.is_none_or(|o| o == p)
                && self.peers[p]
                    .session
                    .as_ref()
                    .is_some_and(|s| s.initial_sent)
            {
                self.export_to(p, &srcs, all.iter().copied(), false);
            }
        }
    }

    /// The initial table for a new session, then End-of-RIB per family (RFC 4724 §2).
    pub(super) fn send_initial(&mut self, p: PeerId) {
        let Some(s) = self.peers[p].session.as_mut() else {
            return;
        };
        if s.initial_sent {
            return;
        }
        s.initial_sent = true;
        let srcs = self.src_infos();
        let all: Vec<Prefix> = self.rib.iter_best().map(|(pfx, _)| *pfx).collect();
        self.export_to(p, &srcs, all.into_iter(), false);
        let Some(s) = self.peers[p].session.as_ref() else {
            return;
        };
        let mut bytes = Vec::new();
        for f in Family::ALL {
            if s.neg.carries(f) {
                Message::Update(tortie_bgp_wire::Update::end_of_rib(f))
                    .encode(&s.neg.tx, &mut bytes);
            }
        }
        self.out.push(Output::Send {
            conn: s.conn,
            bytes,
        });
    }

    /// Answers a ROUTE-REFRESH request: the family's Adj-RIB-Out again, between BoRR and
    /// EoRR when enhanced route refresh was negotiated (RFC 7313 §4).
    pub(super) fn resend_family(&mut self, p: PeerId, f: Family) {
        let Some(s) = self.peers[p].session.as_ref() else {
            return;
        };
        if !s.initial_sent {
            return;
        }
        let (conn, enhanced, tx) = (s.conn, s.neg.enhanced_route_refresh, s.neg.tx);
        let rr = |subtype| {
            Message::RouteRefresh(RouteRefresh {
                afi: f.afi(),
                safi: f.safi(),
                subtype,
            })
            .to_bytes(&tx)
        };
        if enhanced {
            self.out.push(Output::Send {
                conn,
                bytes: rr(RefreshSubtype::Begin),
            });
        }
        let srcs = self.src_infos();
        let prefixes: Vec<Prefix> = self
            .rib
            .iter_best()
            .map(|(pfx, _)| *pfx)
            .filter(|pfx| pfx.family() == f)
            .collect();
        self.export_to(p, &srcs, prefixes.into_iter(), true);
        if enhanced {
            self.out.push(Output::Send {
                conn,
                bytes: rr(RefreshSubtype::End),
            });
        }
    }

    /// Brings the Adj-RIB-Out of peer `p` in line with the Loc-RIB for `prefixes`, sending
    /// the difference (everything when `force`).
    fn export_to(
        &mut self,
        p: PeerId,
        srcs: &[SrcInfo],
        prefixes: impl Iterator<Item = Prefix>,
        force: bool,
    ) {
        let Some(dst) = self.dst_info(p) else { return };
        let Speaker {
            peers,
            rib,
            cfg,
            out,
            ..
        } = self;
        let peer = &mut peers[p];
        let Some(sess) = peer.session.as_ref() else {
            return;
        };
        let (conn, neg) = (sess.conn, sess.neg.clone());
        let policy: &RoutePolicy = &peer.cfg.export_policy;
        // One exported attribute set per (source attributes, source): prefixes that shared
        // attributes when received share them when sent, and pack into the same UPDATEs.
        let mut cache: HashMap<(usize, SourceId), Option<Arc<RouteAttrs>>> = HashMap::new();
        let mut groups: HashMap<(usize, Family), (Arc<RouteAttrs>, Vec<Nlri>)> = HashMap::new();
        let mut withdraw: [Vec<Nlri>; 2] = [vec![], vec![]];
        for pfx in prefixes {
            let fam = pfx.family();
            if !neg.carries(fam) {
                continue;
            }
            let desired = rib.best(&pfx).and_then(|b| {
                let si = srcs.get(b.source as usize).copied().unwrap_or(srcs[0]);
                if !policy.accepts(&pfx, si.kind(b.source)) {
                    return None;
                }
                cache
                    .entry((Arc::as_ptr(&b.attrs) as usize, b.source))
                    .or_insert_with(|| {
                        export_attrs(cfg, &dst, b.source, &si, &b.attrs, fam).map(Arc::new)
                    })
                    .clone()
            });
            match (desired, peer.adj_out.get(&pfx)) {
                (Some(d), Some(c)) if !force && (Arc::ptr_eq(&d, c) || d == *c) => {}
                (Some(d), _) => {
                    peer.adj_out.insert(pfx, d.clone());
                    groups
                        .entry((Arc::as_ptr(&d) as usize, fam))
                        .or_insert_with(|| (d, vec![]))
                        .1
                        .push(Nlri::new(pfx));
                }
                (None, Some(_)) => {
                    peer.adj_out.remove(&pfx);
                    withdraw[fam.index()].push(Nlri::new(pfx));
                }
                (None, None) => {}
            }
        }
        let mut bytes = Vec::new();
        for f in Family::ALL {
            if !withdraw[f.index()].is_empty() {
                pack_withdrawals(f, &withdraw[f.index()], &neg.tx, &mut bytes);
            }
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        // Deterministic output order (simulations compare runs).
        groups.sort_by_key(|((_, f), (_, v))| (*f, v.first().copied()));
        for ((_, f), (attrs, nlri)) in groups {
            let Some(nh) = attrs.next_hop else { continue };
            if !pack_announcements(f, &attrs.path, nh, &nlri, &neg.tx, &mut bytes) {
                // Attributes too large for one message: withdraw instead of announcing.
                for n in &nlri {
                    peer.adj_out.remove(&n.prefix);
                }
                pack_withdrawals(f, &nlri, &neg.tx, &mut bytes);
            }
        }
        if !bytes.is_empty() {
            out.push(Output::Send { conn, bytes });
        }
    }
}

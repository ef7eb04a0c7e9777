//! Route policy, per-peer knobs (local AS, next hop keep, restart time) and run-time peer
//! changes, through the simulation.

use super::tests::{all_established, has_route, ip, local, peer, pfx, speaker};
use crate::fsm::State;
use crate::policy::{PolicyAction, PolicyRule, PrefixMatch, RoutePolicy, SourceMatch};
use crate::route::RouteEvent;
use crate::sim::Network;
use std::time::Duration;
use tortie_bgp_wire::AsPath;

const NODE_AS: u32 = 64512;

/// Calico's export filter as the control plane builds it: nothing learned over eBGP, every
/// prefix inside the pool, nothing else.
fn calico_export() -> RoutePolicy {
    RoutePolicy {
        rules: vec![
            PolicyRule {
                source: Some(SourceMatch::EbgpPeers),
                ..PolicyRule::any(PolicyAction::Reject)
            },
            PolicyRule::prefix(PrefixMatch::In(pfx("198.18.0.0/16")), PolicyAction::Accept),
        ],
        default: PolicyAction::Reject,
    }
}

/// ToR T1 (eBGP) sends a prefix to node A; A must not pass it to its mesh peer B nor to a
/// second ToR T2, while A's and B's blocks still reach everyone that should have them.
#[test]
fn export_policy_keeps_tor_routes_out_of_the_mesh_and_other_tors() {
    let mut net = Network::new();
    let with_policy = |mut p: crate::PeerConfig| {
        p.export_policy = calico_export();
        p
    };
    let a = net.add(
        speaker(
            1,
            NODE_AS,
            vec![
                with_policy(peer(2, NODE_AS)),
                with_policy(peer(10, 65010)),
                with_policy(peer(11, 65011)),
            ],
        ),
        ip(1),
    );
    let b = net.add(
        speaker(2, NODE_AS, vec![with_policy(peer(1, NODE_AS))]),
        ip(2),
    );
    let t1 = net.add(speaker(10, 65010, vec![peer(1, NODE_AS)]), ip(10));
    let t2 = net.add(speaker(11, 65011, vec![peer(1, NODE_AS)]), ip(11));
    net.with(t1, |s| {
        s.originate(pfx("198.19.200.0/24"), local(None, vec![]))
    });
    // A ToR route inside the pool is not re-advertised either (source rule first).
    net.with(t1, |s| {
        s.originate(pfx("198.18.250.0/24"), local(None, vec![]))
    });
    net.with(a, |s| {
        s.originate(pfx("198.18.1.0/26"), local(None, vec![]))
    });
    net.with(a, |s| {
        s.originate(pfx("198.19.99.0/24"), local(None, vec![]))
    });
    net.with(b, |s| {
        s.originate(pfx("198.18.2.0/26"), local(None, vec![]))
    });
    for n in [a, b, t1, t2] {
        net.start(n);
    }
    assert!(
        net.run_until(Duration::from_secs(20), |n| all_established(n)
            && has_route(n, a, "198.19.200.0/24")
            && has_route(n, t2, "198.18.2.0/26")
            && has_route(n, t1, "198.18.2.0/26"))
    );
    net.run_for(Duration::from_secs(2));
    for (node, p) in [
        (b, "198.19.200.0/24"),
        (b, "198.18.250.0/24"),
        (t2, "198.19.200.0/24"),
        (t2, "198.18.250.0/24"),
        (b, "198.19.99.0/24"),
        (t1, "198.19.99.0/24"),
    ] {
        assert!(!has_route(&net, node, p), "node {node} must not have {p}");
    }
    assert!(has_route(&net, b, "198.18.1.0/26"));
    assert!(has_route(&net, t1, "198.18.1.0/26"));
    // A mesh-learned pool route goes to the ToRs (as BIRD's export filter lets it), with
    // next hop self towards eBGP.
    let r = net.nodes[t2]
        .speaker
        .best_route(&pfx("198.18.2.0/26"))
        .unwrap();
    assert_eq!(r.next_hop(), Some(ip(1)));
    assert_eq!(r.attrs.path.as_path, AsPath::sequence(vec![NODE_AS]));
}

/// An import policy drops what it rejects, and a rejected re-announcement removes the
/// route learned before.
#[test]
fn import_policy_treats_rejected_prefixes_as_withdrawn() {
    let mut net = Network::new();
    let mut pb = peer(1, NODE_AS);
    pb.import_policy = RoutePolicy {
        rules: vec![PolicyRule {
            prefix: Some(PrefixMatch::In(pfx("198.18.0.0/16"))),
            length: Some((26, 26)),
            ..PolicyRule::any(PolicyAction::Accept)
        }],
        default: PolicyAction::Reject,
    };
    let a = net.add(speaker(1, NODE_AS, vec![peer(2, NODE_AS)]), ip(1));
    let b = net.add(speaker(2, NODE_AS, vec![pb]), ip(2));
    net.with(a, |s| {
        s.originate(pfx("198.18.1.0/26"), local(None, vec![]))
    });
    net.with(a, |s| {
        s.originate(pfx("198.18.0.0/24"), local(None, vec![]))
    });
    net.with(a, |s| {
        s.originate(pfx("198.19.1.0/26"), local(None, vec![]))
    });
    net.start(a);
    net.start(b);
    assert!(
        net.run_until(Duration::from_secs(10), |n| all_established(n)
            && has_route(n, b, "198.18.1.0/26"))
    );
    net.run_for(Duration::from_secs(1));
    assert!(
        !has_route(&net, b, "198.18.0.0/24"),
        "length outside 26..=26"
    );
    assert!(!has_route(&net, b, "198.19.1.0/26"), "outside the CIDR");
    assert_eq!(net.nodes[b].speaker.peer_route_count(0), 1);
}

/// With two sessions up, adding a third peer and removing it again leaves the first two
/// alone: no new OPEN exchange, no route event on them.
#[test]
fn adding_and_removing_a_peer_touches_only_that_peer() {
    let mut net = Network::new();
    let a = net.add(
        speaker(1, NODE_AS, vec![peer(2, NODE_AS), peer(3, NODE_AS)]),
        ip(1),
    );
    let b = net.add(speaker(2, NODE_AS, vec![peer(1, NODE_AS)]), ip(2));
    let c = net.add(speaker(3, NODE_AS, vec![peer(1, NODE_AS)]), ip(3));
    let d = net.add(speaker(4, NODE_AS, vec![peer(1, NODE_AS)]), ip(4));
    net.with(b, |s| {
        s.originate(pfx("198.18.2.0/26"), local(None, vec![]))
    });
    net.with(d, |s| {
        s.originate(pfx("198.18.4.0/26"), local(None, vec![]))
    });
    for n in [a, b, c] {
        net.start(n);
    }
    net.start(d);
    assert!(net.run_until(Duration::from_secs(10), |n| {
        [a, b, c].iter().all(|i| {
            n.nodes[*i]
                .speaker
                .peer_ids()
                .all(|(p, _)| n.nodes[*i].speaker.peer_state(p) == Some(State::Established))
        }) && has_route(n, a, "198.18.2.0/26")
    }));
    assert!(
        !has_route(&net, a, "198.18.4.0/26"),
        "d is not a peer of a yet"
    );
    let ups_before = net.nodes[a].peer_ups.len();
    let events_b = net.nodes[b].events.len();
    let mut add = peer(4, NODE_AS);
    add.local_address = Some(ip(1));
    net.with(a, |s| s.add_peer(add).unwrap().1);
    assert!(
        net.run_until(Duration::from_secs(20), |n| all_established(n)
            && has_route(n, a, "198.18.4.0/26")
            && !has_route(n, d, "198.18.2.0/26"))
    );
    // iBGP split horizon: d's route is not reflected to b, so b saw nothing at all.
    assert_eq!(net.nodes[a].peer_ups[ups_before..], [ip(4)]);
    assert_eq!(net.nodes[b].events.len(), events_b, "b's session untouched");
    assert_eq!(net.nodes[a].speaker.peer_flaps(0), 0);
    // A duplicate is refused and changes nothing.
    assert!(
        net.nodes[a].speaker.add_peer(peer(2, NODE_AS)).is_err(),
        "198.18.0.2 is already a peer"
    );
    let id = net.nodes[a].speaker.peer_by_address(ip(4)).unwrap();
    net.with(a, |s| s.remove_peer(id));
    assert!(net.run_until(Duration::from_secs(5), |n| !has_route(
        n,
        a,
        "198.18.4.0/26"
    )));
    net.run_for(Duration::from_secs(3));
    assert_ne!(net.nodes[d].speaker.peer_state(0), Some(State::Established));
    assert!(net.nodes[a].speaker.peer_by_address(ip(4)).is_none());
    assert_eq!(net.nodes[a].speaker.peer_ids().count(), 2);
    assert_eq!(
        net.nodes[a].peer_ups[ups_before..],
        [ip(4)],
        "no other session reset"
    );
    assert!(has_route(&net, a, "198.18.2.0/26"));
    assert!(
        !net.nodes[a]
            .events
            .iter()
            .any(|e| matches!(e, RouteEvent::Withdrawn(p) if *p == pfx("198.18.2.0/26")))
    );
    // Re-adding the address takes a fresh slot and comes up again.
    let mut again = peer(4, NODE_AS);
    again.local_address = Some(ip(1));
    net.with(a, |s| s.add_peer(again).unwrap().1);
    assert!(net.run_until(Duration::from_secs(60), |n| has_route(
        n,
        a,
        "198.18.4.0/26"
    )));
}

/// `local_as`: the session runs with the AS presented to that peer, and it is what the
/// peer sees prepended.
#[test]
fn per_peer_local_as_is_presented_and_prepended() {
    let mut net = Network::new();
    let mut to_tor = peer(10, 65010);
    to_tor.local_as = Some(64999);
    let a = net.add(speaker(1, NODE_AS, vec![to_tor]), ip(1));
    let t = net.add(speaker(10, 65010, vec![peer(1, 64999)]), ip(10));
    net.with(a, |s| {
        s.originate(pfx("198.18.1.0/26"), local(None, vec![]))
    });
    net.with(t, |s| {
        s.originate(pfx("198.19.1.0/24"), local(None, vec![]))
    });
    net.start(a);
    net.start(t);
    assert!(
        net.run_until(Duration::from_secs(10), |n| all_established(n)
            && has_route(n, t, "198.18.1.0/26")
            && has_route(n, a, "198.19.1.0/24"))
    );
    let r = net.nodes[t]
        .speaker
        .best_route(&pfx("198.18.1.0/26"))
        .unwrap();
    assert_eq!(r.attrs.path.as_path, AsPath::sequence(vec![64999]));
    assert_eq!(net.nodes[a].speaker.peer_session(0).unwrap().peer_as, 65010);
    // A wrong remote expectation keeps the session down: the peer expects 64512.
    let mut net = Network::new();
    let mut to_tor = peer(10, 65010);
    to_tor.local_as = Some(64999);
    let a = net.add(speaker(1, NODE_AS, vec![to_tor]), ip(1));
    let t = net.add(speaker(10, 65010, vec![peer(1, NODE_AS)]), ip(10));
    net.start(a);
    net.start(t);
    net.run_for(Duration::from_secs(10));
    assert_ne!(net.nodes[a].speaker.peer_state(0), Some(State::Established));
}

/// `next_hop_keep` towards eBGP keeps the next hop of learned routes; our own routes still
/// carry our address.
#[test]
fn next_hop_keep_towards_ebgp() {
    for keep in [false, true] {
        let mut net = Network::new();
        let mut to_tor = peer(10, 65010);
        to_tor.next_hop_keep = keep;
        let a = net.add(speaker(1, NODE_AS, vec![peer(2, NODE_AS), to_tor]), ip(1));
        let b = net.add(speaker(2, NODE_AS, vec![peer(1, NODE_AS)]), ip(2));
        let t = net.add(speaker(10, 65010, vec![peer(1, NODE_AS)]), ip(10));
        net.with(a, |s| {
            s.originate(pfx("198.18.1.0/26"), local(None, vec![]))
        });
        net.with(b, |s| {
            s.originate(pfx("198.18.2.0/26"), local(None, vec![]))
        });
        for n in [a, b, t] {
            net.start(n);
        }
        assert!(net.run_until(Duration::from_secs(10), |n| has_route(
            n,
            t,
            "198.18.2.0/26"
        ) && has_route(
            n,
            t,
            "198.18.1.0/26"
        )));
        let nh = |p: &str| net.nodes[t].speaker.best_route(&pfx(p)).unwrap().next_hop();
        assert_eq!(nh("198.18.2.0/26"), Some(if keep { ip(2) } else { ip(1) }));
        assert_eq!(nh("198.18.1.0/26"), Some(ip(1)));
    }
}

/// A policy change applies in place: what the new export policy rejects is withdrawn, a
/// stricter import policy drops routes, and the session is not reset; a hard change (hold
/// time) resets that session only.
#[test]
fn update_peer_applies_policy_in_place() {
    let mut net = Network::new();
    let a = net.add(
        speaker(1, NODE_AS, vec![peer(2, NODE_AS), peer(3, NODE_AS)]),
        ip(1),
    );
    let b = net.add(speaker(2, NODE_AS, vec![peer(1, NODE_AS)]), ip(2));
    let c = net.add(speaker(3, NODE_AS, vec![peer(1, NODE_AS)]), ip(3));
    net.with(a, |s| {
        s.originate(pfx("198.18.1.0/26"), local(None, vec![]))
    });
    net.with(a, |s| {
        s.originate(pfx("198.19.1.0/24"), local(None, vec![]))
    });
    net.with(b, |s| {
        s.originate(pfx("198.18.2.0/26"), local(None, vec![]))
    });
    net.with(b, |s| {
        s.originate(pfx("198.19.2.0/24"), local(None, vec![]))
    });
    for n in [a, b, c] {
        net.start(n);
    }
    assert!(
        net.run_until(Duration::from_secs(10), |n| all_established(n)
            && has_route(n, b, "198.19.1.0/24")
            && has_route(n, a, "198.19.2.0/24"))
    );
    let ups = net.nodes[a].peer_ups.len();
    let mut cfg = net.nodes[a].speaker.config().peers[0].clone();
    let only_pool = RoutePolicy {
        rules: vec![PolicyRule::prefix(
            PrefixMatch::In(pfx("198.18.0.0/16")),
            PolicyAction::Accept,
        )],
        default: PolicyAction::Reject,
    };
    cfg.export_policy = only_pool.clone();
    cfg.import_policy = only_pool;
    net.with(a, |s| s.update_peer(0, cfg.clone()).unwrap().1);
    assert!(net.run_until(Duration::from_secs(5), |n| !has_route(
        n,
        b,
        "198.19.1.0/24"
    ) && !has_route(
        n,
        a,
        "198.19.2.0/24"
    )));
    assert!(has_route(&net, b, "198.18.1.0/26"));
    assert!(has_route(&net, a, "198.18.2.0/26"));
    assert_eq!(net.nodes[a].peer_ups.len(), ups, "no session reset");
    // Loosening again brings the routes back (export diff, and a route refresh for import).
    let mut open = cfg.clone();
    open.export_policy = RoutePolicy::accept_all();
    open.import_policy = RoutePolicy::accept_all();
    net.with(a, |s| s.update_peer(0, open.clone()).unwrap().1);
    assert!(
        net.run_until(Duration::from_secs(5), |n| has_route(n, b, "198.19.1.0/24")
            && has_route(n, a, "198.19.2.0/24"))
    );
    assert_eq!(net.nodes[a].peer_ups.len(), ups, "no session reset");
    // A hold-time change is a new session with b; c's stays. Graceful restart was
    // negotiated, so the reset is graceful both ways: no route disappears on either side.
    let withdrawn = |net: &Network, i: usize| {
        net.nodes[i]
            .events
            .iter()
            .filter(|e| matches!(e, RouteEvent::Withdrawn(_)))
            .count()
    };
    let (wa, wb) = (withdrawn(&net, a), withdrawn(&net, b));
    let mut hard = open;
    hard.hold_time = Duration::from_secs(30);
    let (id, out) = net.nodes[a].speaker.update_peer(0, hard).unwrap();
    assert_ne!(id, 0, "replaced by a new slot");
    net.with(a, |_| out);
    assert!(
        net.run_until(Duration::from_secs(30), |n| all_established(n)
            && n.nodes[a].peer_ups.len() > ups)
    );
    assert_eq!(net.nodes[a].peer_ups[ups..], [ip(2)]);
    // Replaced twice in a row (the second before the first replacement got End-of-RIB):
    // the last one takes over every earlier copy, and they are all swept.
    let id = net.nodes[a].speaker.peer_by_address(ip(2)).unwrap();
    let mut cfg = net.nodes[a].speaker.config().peers[id].clone();
    cfg.hold_time = Duration::from_secs(27);
    let (id2, out) = net.nodes[a].speaker.update_peer(id, cfg.clone()).unwrap();
    net.with(a, |_| out);
    cfg.hold_time = Duration::from_secs(24);
    let (id3, out) = net.nodes[a].speaker.update_peer(id2, cfg).unwrap();
    net.with(a, |_| out);
    assert!(id3 > id2 && id2 > id);
    assert!(net.run_until(Duration::from_secs(30), all_established));
    net.run_for(Duration::from_secs(5));
    for slot in [id, id2] {
        let src = u32::try_from(slot + 1).unwrap();
        assert_eq!(
            net.nodes[a].speaker.rib().count(src),
            0,
            "slot {slot} swept"
        );
    }
    assert_eq!((withdrawn(&net, a), withdrawn(&net, b)), (wa, wb));
    assert!(has_route(&net, a, "198.19.2.0/24") && has_route(&net, b, "198.19.1.0/24"));
    // The stale copies were swept at the new session's End-of-RIB.
    assert_eq!(net.nodes[a].speaker.rib().count(1), 0, "old source empty");
}

/// `allow_local_as`: a path through our own AS is a loop (RFC 4271 §9.1.2) unless the
/// peer is allowed that many occurrences. The session presents AS 64999 (so the sender,
/// which never sends a path holding the receiver's AS, does send it), and the speaker's
/// own AS in the path still counts.
#[test]
fn allow_local_as_relaxes_the_loop_check() {
    for (allowed, expect) in [(0u8, false), (1, true)] {
        let mut net = Network::new();
        let mut to_tor = peer(10, 65010);
        to_tor.allow_local_as = allowed;
        to_tor.local_as = Some(64999);
        let a = net.add(speaker(1, NODE_AS, vec![to_tor]), ip(1));
        let t = net.add(speaker(10, 65010, vec![peer(1, 64999)]), ip(10));
        let mut r = local(None, vec![]);
        r.attrs.as_path = AsPath::sequence(vec![NODE_AS]);
        net.with(t, |s| s.originate(pfx("198.19.7.0/24"), r));
        net.start(a);
        net.start(t);
        assert!(net.run_until(Duration::from_secs(10), all_established));
        net.run_for(Duration::from_secs(1));
        assert_eq!(
            has_route(&net, a, "198.19.7.0/24"),
            expect,
            "allowed {allowed}"
        );
    }
}

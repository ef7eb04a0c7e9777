//! Whole-speaker behaviour, driven through the in-process network simulation.

use crate::config::{PeerConfig, SpeakerConfig};
use crate::fsm::State;
use crate::route::RouteEvent;
use crate::sim::Network;
use crate::speaker::{LocalRoute, Speaker};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tortie_bgp_wire::attrs::community;
use tortie_bgp_wire::{AsPath, Family, Prefix};

pub(super) fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, last))
}

pub(super) fn pfx(s: &str) -> Prefix {
    s.parse().unwrap()
}

pub(super) fn peer(addr: u8, asn: u32) -> PeerConfig {
    let mut p = PeerConfig::new(ip(addr), asn);
    p.hold_time = Duration::from_secs(9);
    p.connect_retry = Duration::from_secs(2);
    p.families = vec![Family::Ipv4Unicast, Family::Ipv6Unicast];
    p.next_hop_v6 = Some(format!("2001:db8:ffff::{addr}").parse().unwrap());
    p
}

pub(super) fn speaker(me: u8, asn: u32, peers: Vec<PeerConfig>) -> Speaker {
    let mut c = SpeakerConfig::new(asn, Ipv4Addr::new(198, 18, 0, me));
    c.peers = peers
        .into_iter()
        .map(|mut p| {
            p.local_address = Some(ip(me));
            p.next_hop_v6 = Some(format!("2001:db8:ffff::{me}").parse().unwrap());
            p
        })
        .collect();
    Speaker::new(c).unwrap()
}

pub(super) fn all_established(net: &Network) -> bool {
    net.nodes.iter().all(|n| {
        n.speaker
            .peer_ids()
            .all(|(p, _)| n.speaker.peer_state(p) == Some(State::Established))
    })
}

pub(super) fn has_route(net: &Network, node: usize, p: &str) -> bool {
    net.nodes[node].speaker.best_route(&pfx(p)).is_some()
}

pub(super) fn local(lp: Option<u32>, communities: Vec<u32>) -> LocalRoute {
    LocalRoute {
        attrs: tortie_bgp_wire::PathAttributes {
            local_pref: lp,
            communities,
            ..Default::default()
        },
        next_hop: None,
    }
}

/// Two iBGP speakers: session up, routes both ways (v4 and v6), withdrawal.
#[test]
fn ibgp_pair_exchanges_and_withdraws() {
    let mut net = Network::new();
    let a = net.add(speaker(1, 64512, vec![peer(2, 64512)]), ip(1));
    let b = net.add(speaker(2, 64512, vec![peer(1, 64512)]), ip(2));
    net.with(a, |s| {
        s.originate(pfx("198.18.10.0/26"), local(None, vec![]))
    });
    net.with(a, |s| {
        s.originate(pfx("2001:db8:10::/122"), local(None, vec![]))
    });
    net.with(b, |s| {
        s.originate(pfx("198.18.20.0/26"), local(Some(2_147_482_623), vec![]))
    });
    net.start(a);
    net.start(b);
    assert!(
        net.run_until(Duration::from_secs(10), |n| all_established(n)
            && has_route(n, b, "2001:db8:10::/122")
            && has_route(n, a, "198.18.20.0/26"))
    );
    let r = net.nodes[b]
        .speaker
        .best_route(&pfx("198.18.10.0/26"))
        .unwrap();
    assert_eq!(
        r.next_hop(),
        Some(ip(1)),
        "local routes go out with next hop self"
    );
    assert_eq!(r.attrs.path.local_pref, Some(100));
    let r6 = net.nodes[b]
        .speaker
        .best_route(&pfx("2001:db8:10::/122"))
        .unwrap();
    assert_eq!(r6.next_hop(), Some("2001:db8:ffff::1".parse().unwrap()));
    assert_eq!(
        net.nodes[a]
            .speaker
            .best_route(&pfx("198.18.20.0/26"))
            .unwrap()
            .attrs
            .path
            .local_pref,
        Some(2_147_482_623)
    );
    assert!(
        net.nodes[b]
            .events
            .iter()
            .any(|e| matches!(e, RouteEvent::Added(p, _) if *p == pfx("198.18.10.0/26")))
    );
    net.with(a, |s| s.withdraw_local(pfx("198.18.10.0/26")));
    assert!(net.run_until(Duration::from_secs(1), |n| !has_route(
        n,
        b,
        "198.18.10.0/26"
    )));
    assert!(
        matches!(net.nodes[b].events.last(), Some(RouteEvent::Withdrawn(p)) if *p == pfx("198.18.10.0/26"))
    );
}

/// iBGP split horizon: B does not pass A's route on to C without reflection.
#[test]
fn ibgp_routes_are_not_passed_on_without_reflection() {
    let mut net = Network::new();
    let a = net.add(speaker(1, 64512, vec![peer(2, 64512)]), ip(1));
    let b = net.add(
        speaker(2, 64512, vec![peer(1, 64512), peer(3, 64512)]),
        ip(2),
    );
    let c = net.add(speaker(3, 64512, vec![peer(2, 64512)]), ip(3));
    net.with(a, |s| {
        s.originate(pfx("198.18.10.0/26"), local(None, vec![]))
    });
    for i in [a, b, c] {
        net.start(i);
    }
    assert!(
        net.run_until(Duration::from_secs(10), |n| all_established(n)
            && has_route(n, b, "198.18.10.0/26"))
    );
    net.run_for(Duration::from_secs(1));
    assert!(!has_route(&net, c, "198.18.10.0/26"));
}

/// A route reflector with two clients: reflection attributes, nothing back to the originator.
#[test]
fn route_reflector_reflects_between_clients() {
    let mut net = Network::new();
    let mut c1 = peer(1, 64512);
    c1.route_reflector_client = true;
    let mut c3 = peer(3, 64512);
    c3.route_reflector_client = true;
    let a = net.add(speaker(1, 64512, vec![peer(2, 64512)]), ip(1));
    let rr = net.add(speaker(2, 64512, vec![c1, c3]), ip(2));
    let c = net.add(speaker(3, 64512, vec![peer(2, 64512)]), ip(3));
    net.with(a, |s| {
        s.originate(pfx("198.18.10.0/26"), local(None, vec![]))
    });
    for i in [a, rr, c] {
        net.start(i);
    }
    assert!(
        net.run_until(Duration::from_secs(10), |n| all_established(n)
            && has_route(n, c, "198.18.10.0/26"))
    );
    let r = net.nodes[c]
        .speaker
        .best_route(&pfx("198.18.10.0/26"))
        .unwrap();
    assert_eq!(
        r.attrs.path.originator_id,
        Some(Ipv4Addr::new(198, 18, 0, 1))
    );
    assert_eq!(
        r.attrs.path.cluster_list,
        vec![Ipv4Addr::new(198, 18, 0, 2)]
    );
    assert_eq!(r.next_hop(), Some(ip(1)), "reflection keeps the next hop");
    let to_a = net.nodes[rr].speaker.peer_advertised(0).unwrap();
    assert!(
        !to_a.contains_key(&pfx("198.18.10.0/26")),
        "not reflected back to its originator"
    );
}

/// Two reflectors sharing a cluster id: each drops the other's reflection of the same
/// client route (CLUSTER_LIST loop), the second client still gets it from both.
#[test]
fn reflectors_sharing_a_cluster_id_drop_each_others_reflections() {
    let shared = Ipv4Addr::new(198, 18, 0, 100);
    let client = |a| {
        let mut p = peer(a, 64512);
        p.route_reflector_client = true;
        p
    };
    let mut net = Network::new();
    let c1 = net.add(
        speaker(1, 64512, vec![peer(2, 64512), peer(3, 64512)]),
        ip(1),
    );
    let mut r1 = speaker(2, 64512, vec![client(1), peer(3, 64512), client(4)]);
    let mut r2 = speaker(3, 64512, vec![client(1), peer(2, 64512), client(4)]);
    for r in [&mut r1, &mut r2] {
        let mut cfg = r.config().clone();
        cfg.cluster_id = Some(shared);
        *r = Speaker::new(cfg).unwrap();
    }
    let r1 = net.add(r1, ip(2));
    let r2 = net.add(r2, ip(3));
    let c4 = net.add(
        speaker(4, 64512, vec![peer(2, 64512), peer(3, 64512)]),
        ip(4),
    );
    net.with(c1, |s| {
        s.originate(pfx("198.18.10.0/26"), local(None, vec![]))
    });
    for i in [c1, r1, r2, c4] {
        net.start(i);
    }
    assert!(
        net.run_until(Duration::from_secs(10), |n| all_established(n)
            && has_route(n, c4, "198.18.10.0/26"))
    );
    net.run_for(Duration::from_secs(1));
    // R1 holds the route only from C1 (R2's reflection was discarded as a cluster loop).
    assert_eq!(
        net.nodes[r1]
            .speaker
            .rib()
            .paths(&pfx("198.18.10.0/26"))
            .len(),
        1
    );
    assert_eq!(
        net.nodes[r2]
            .speaker
            .rib()
            .paths(&pfx("198.18.10.0/26"))
            .len(),
        1
    );
    assert_eq!(
        net.nodes[c4]
            .speaker
            .rib()
            .paths(&pfx("198.18.10.0/26"))
            .len(),
        2
    );
    let _ = (r1, r2);
}

/// eBGP with a 4-octet AS: prepend, next hop self, LOCAL_PREF stripped, NO_EXPORT kept in.
#[test]
fn ebgp_export_rules() {
    let mut net = Network::new();
    let tor_as = 4_200_000_001;
    let node = net.add(
        speaker(5, 64512, vec![peer(3, tor_as), peer(1, 64512)]),
        ip(5),
    );
    let tor = net.add(speaker(3, tor_as, vec![peer(5, 64512)]), ip(3));
    let ib = net.add(speaker(1, 64512, vec![peer(5, 64512)]), ip(1));
    net.with(node, |s| {
        s.originate(pfx("198.18.50.0/26"), local(Some(500), vec![]))
    });
    net.with(ib, |s| {
        s.originate(pfx("198.18.10.0/26"), local(None, vec![]))
    });
    net.with(ib, |s| {
        s.originate(
            pfx("198.18.11.0/26"),
            local(None, vec![community::NO_EXPORT]),
        )
    });
    net.with(tor, |s| {
        s.originate(pfx("203.0.113.0/24"), local(None, vec![]))
    });
    for i in [node, tor, ib] {
        net.start(i);
    }
    assert!(
        net.run_until(Duration::from_secs(10), |n| all_established(n)
            && has_route(n, tor, "198.18.10.0/26")
            && has_route(n, ib, "203.0.113.0/24"))
    );
    net.run_for(Duration::from_secs(1));
    let r = net.nodes[tor]
        .speaker
        .best_route(&pfx("198.18.50.0/26"))
        .unwrap();
    assert_eq!(r.attrs.path.as_path, AsPath::sequence(vec![64512]));
    assert_eq!(r.attrs.path.local_pref, None);
    assert_eq!(r.next_hop(), Some(ip(5)));
    assert!(
        net.nodes[node]
            .speaker
            .peer_session(0)
            .unwrap()
            .rx
            .four_octet_as
    );
    assert!(
        !has_route(&net, tor, "198.18.11.0/26"),
        "NO_EXPORT stays inside the AS"
    );
    let r = net.nodes[ib]
        .speaker
        .best_route(&pfx("203.0.113.0/24"))
        .unwrap();
    assert_eq!(r.attrs.path.as_path, AsPath::sequence(vec![tor_as]));
    assert_eq!(
        r.next_hop(),
        Some(ip(3)),
        "eBGP-learned routes keep their next hop into iBGP"
    );
}

/// Graceful restart, helper side: the peer dies abruptly, its routes stay (no withdraw
/// event), it comes back, re-announces and sends End-of-RIB; what it did not re-announce is
/// then removed.
#[test]
fn graceful_restart_keeps_routes_until_end_of_rib() {
    let mut net = Network::new();
    let a = net.add(speaker(1, 64512, vec![peer(2, 64512)]), ip(1));
    let b = net.add(speaker(2, 64512, vec![peer(1, 64512)]), ip(2));
    net.with(b, |s| {
        s.originate(pfx("198.18.20.0/26"), local(None, vec![]))
    });
    net.with(b, |s| {
        s.originate(pfx("198.18.21.0/26"), local(None, vec![]))
    });
    net.start(a);
    net.start(b);
    assert!(net.run_until(Duration::from_secs(10), |n| has_route(
        n,
        a,
        "198.18.21.0/26"
    )));
    let before = net.nodes[a].events.len();
    net.kill(b);
    net.run_for(Duration::from_secs(5));
    assert!(
        has_route(&net, a, "198.18.20.0/26"),
        "stale route kept during the restart"
    );
    assert!(
        net.nodes[a]
            .speaker
            .rib()
            .best(&pfx("198.18.20.0/26"))
            .unwrap()
            .stale
    );
    assert_eq!(
        net.nodes[a].events.len(),
        before,
        "no route event while the peer restarts"
    );
    // It comes back (restarting) with only one of its two prefixes.
    let mut cfg = net.nodes[b].speaker.config().clone();
    cfg.graceful_restart.restarting = true;
    let mut fresh = Speaker::new(cfg).unwrap();
    let _ = fresh.originate(pfx("198.18.20.0/26"), local(None, vec![]));
    net.restart(b, fresh);
    assert!(net.run_until(Duration::from_secs(30), |n| !has_route(
        n,
        a,
        "198.18.21.0/26"
    )));
    assert!(has_route(&net, a, "198.18.20.0/26"));
    assert!(
        !net.nodes[a]
            .speaker
            .rib()
            .best(&pfx("198.18.20.0/26"))
            .unwrap()
            .stale
    );
    let evs = &net.nodes[a].events[before..];
    assert_eq!(
        evs,
        &[RouteEvent::Withdrawn(pfx("198.18.21.0/26"))],
        "only the missing prefix changes"
    );
}

/// Graceful restart: a peer that never comes back loses its routes after the restart time.
#[test]
fn graceful_restart_times_out() {
    let mut net = Network::new();
    let a = net.add(speaker(1, 64512, vec![peer(2, 64512)]), ip(1));
    let b = net.add(speaker(2, 64512, vec![peer(1, 64512)]), ip(2));
    net.with(b, |s| {
        s.originate(pfx("198.18.20.0/26"), local(None, vec![]))
    });
    net.start(a);
    net.start(b);
    assert!(net.run_until(Duration::from_secs(10), |n| has_route(
        n,
        a,
        "198.18.20.0/26"
    )));
    net.kill(b);
    net.run_for(Duration::from_secs(100));
    assert!(has_route(&net, a, "198.18.20.0/26"));
    net.run_for(Duration::from_secs(30));
    assert!(
        !has_route(&net, a, "198.18.20.0/26"),
        "gone after the 120 s restart time"
    );
}

/// A wrong TCP-MD5 password keeps the session down.
#[test]
fn md5_mismatch_keeps_session_down() {
    let mut pa = peer(2, 64512);
    pa.password = Some("s3cret".into());
    let mut pb = peer(1, 64512);
    pb.password = Some("wrong".into());
    let mut net = Network::new();
    let a = net.add(speaker(1, 64512, vec![pa]), ip(1));
    let b = net.add(speaker(2, 64512, vec![pb]), ip(2));
    net.start(a);
    net.start(b);
    assert!(!net.run_until(Duration::from_secs(30), all_established));
    assert_ne!(net.nodes[a].speaker.peer_state(0), Some(State::Established));
}

/// Route refresh: the peer resends its Adj-RIB-Out; enhanced refresh brackets it.
#[test]
fn route_refresh_resends() {
    let mut net = Network::new();
    let a = net.add(speaker(1, 64512, vec![peer(2, 64512)]), ip(1));
    let b = net.add(speaker(2, 64512, vec![peer(1, 64512)]), ip(2));
    net.with(b, |s| {
        s.originate(pfx("198.18.20.0/26"), local(None, vec![]))
    });
    net.start(a);
    net.start(b);
    assert!(net.run_until(Duration::from_secs(10), |n| has_route(
        n,
        a,
        "198.18.20.0/26"
    )));
    let msgs = net.messages;
    net.with(a, |s| {
        let (ok, out) = s.request_refresh(0, Family::Ipv4Unicast);
        assert!(ok);
        out
    });
    net.run_for(Duration::from_millis(10));
    // ROUTE-REFRESH, BoRR, the UPDATE, EoRR.
    assert_eq!(net.messages - msgs, 4);
    assert!(has_route(&net, a, "198.18.20.0/26"));
    assert!(
        !net.nodes[a]
            .speaker
            .rib()
            .best(&pfx("198.18.20.0/26"))
            .unwrap()
            .stale
    );
}

/// A flapping peer is damped: each error doubles the IdleHold wait.
#[test]
fn flapping_peer_is_damped_by_idle_hold() {
    let mut net = Network::new();
    let a = net.add(speaker(1, 64512, vec![peer(2, 64512)]), ip(1));
    let b = net.add(speaker(2, 64512, vec![peer(1, 64512)]), ip(2));
    net.start(a);
    net.start(b);
    assert!(net.run_until(Duration::from_secs(10), all_established));
    // B sends garbage (a bad marker) three times, each after the session re-establishes.
    let mut ups = vec![];
    for _ in 0..4 {
        let mut bad = tortie_bgp_wire::Message::Keepalive.to_bytes(&Default::default());
        bad[0] = 0;
        assert!(net.inject(a, b, bad));
        let t0 = net.now();
        let ok = net.run_until(Duration::from_secs(300), all_established);
        assert!(
            ok,
            "{:?} {:?} {:?} {:?}",
            net.nodes[a].speaker.peer_state(0),
            net.nodes[b].speaker.peer_state(0),
            net.nodes[a].speaker.peer_last_error(0),
            net.nodes[b].speaker.peer_last_error(0)
        );
        ups.push((net.now() - t0).as_secs());
    }
    assert!(
        ups.windows(2).all(|w| w[1] > w[0]),
        "reconnect waits grow: {ups:?}"
    );
    assert_eq!(net.nodes[a].speaker.peer_flaps(0), 4);
}

/// Malformed UPDATEs: treat-as-withdraw keeps the session; a broken MP_REACH resets it.
#[test]
fn malformed_updates_get_rfc7606_treatment() {
    let mut net = Network::new();
    let a = net.add(speaker(1, 64512, vec![peer(2, 64512)]), ip(1));
    let b = net.add(speaker(2, 64512, vec![peer(1, 64512)]), ip(2));
    net.with(b, |s| {
        s.originate(pfx("198.18.20.0/26"), local(None, vec![]))
    });
    net.start(a);
    net.start(b);
    assert!(net.run_until(Duration::from_secs(10), |n| has_route(
        n,
        a,
        "198.18.20.0/26"
    )));
    // Same prefix, ORIGIN value 9 (invalid): treat-as-withdraw.
    let attrs = [
        0x40, 1, 1, 9, 0x40, 2, 0, 0x40, 3, 4, 198, 18, 0, 2, 0x40, 5, 4, 0, 0, 0, 100,
    ];
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&[0, 0, 2, 0, 0, 0, u8::try_from(attrs.len()).unwrap()]);
    m.extend_from_slice(&attrs);
    m.extend_from_slice(&[26, 198, 18, 20, 0]);
    let l = u16::try_from(m.len()).unwrap().to_be_bytes();
    m[16..18].copy_from_slice(&l);
    assert!(net.inject(a, b, m));
    net.run_for(Duration::from_millis(1));
    assert!(!has_route(&net, a, "198.18.20.0/26"), "treat-as-withdraw");
    assert_eq!(
        net.nodes[a].speaker.peer_state(0),
        Some(State::Established),
        "session kept"
    );
    // MP_REACH with a 5-byte IPv6 next hop: NOTIFICATION 3/9 and reset.
    let mp = [0x80, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0];
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&[0, 0, 2, 0, 0, 0, u8::try_from(mp.len()).unwrap()]);
    m.extend_from_slice(&mp);
    let l = u16::try_from(m.len()).unwrap().to_be_bytes();
    m[16..18].copy_from_slice(&l);
    assert!(net.inject(a, b, m));
    net.run_for(Duration::from_millis(1));
    assert_ne!(net.nodes[a].speaker.peer_state(0), Some(State::Established));
    assert!(
        net.nodes[a]
            .speaker
            .peer_last_error(0)
            .unwrap()
            .contains("next-hop length")
    );
}

/// A restarting speaker defers its own advertisements until its peers' End-of-RIB.
#[test]
fn restarting_speaker_defers_until_end_of_rib() {
    let mut net = Network::new();
    let mut ca = SpeakerConfig::new(64512, Ipv4Addr::new(198, 18, 0, 1));
    ca.graceful_restart.restarting = true;
    let mut pa = peer(2, 64512);
    pa.local_address = Some(ip(1));
    ca.peers = vec![pa];
    let a = net.add(Speaker::new(ca).unwrap(), ip(1));
    let b = net.add(speaker(2, 64512, vec![peer(1, 64512)]), ip(2));
    net.with(a, |s| {
        s.originate(pfx("198.18.10.0/26"), local(None, vec![]))
    });
    net.with(b, |s| {
        s.originate(pfx("198.18.20.0/26"), local(None, vec![]))
    });
    assert!(net.nodes[a].events.is_empty(), "no events while deferring");
    net.start(a);
    net.start(b);
    assert!(net.run_until(Duration::from_secs(10), |n| has_route(
        n,
        b,
        "198.18.10.0/26"
    ) && has_route(
        n,
        a,
        "198.18.20.0/26"
    )));
    assert!(
        net.nodes[a]
            .events
            .iter()
            .any(|e| e.prefix() == pfx("198.18.20.0/26"))
    );
    assert!(
        net.nodes[a]
            .events
            .iter()
            .any(|e| e.prefix() == pfx("198.18.10.0/26"))
    );
}

//! Interop tests against real daemons in network namespaces: BIRD 2 (mesh member and route
//! reflector), GoBGP 3 (iBGP, graceful restart), FRR 8 (eBGP ToR, 4-octet AS, TCP-MD5) and
//! ExaBGP (scripted peer). Run as root; see `lab/mod.rs`.

mod lab;

use lab::daemons::{self, BirdRole};
use lab::{Lab, can_run, pfx, require, v4, v6, wait};
use std::net::Ipv4Addr;
use std::time::Duration;
use tortie_bgp::runtime::SpeakerEvent;
use tortie_bgp::wire::{Family, PathAttributes};
use tortie_bgp::{LocalRoute, PeerConfig, RouteEvent, SpeakerConfig};

/// The SUT: AS 64512, router id 198.18.0.5, short timers.
fn sut_config(peers: Vec<PeerConfig>) -> SpeakerConfig {
    let mut c = SpeakerConfig::new(64512, Ipv4Addr::new(198, 18, 0, 5));
    c.listen_port = Some(179);
    c.peers = peers;
    c
}

fn peer(addr: std::net::IpAddr, asn: u32) -> PeerConfig {
    let mut p = PeerConfig::new(addr, asn);
    p.hold_time = Duration::from_secs(9);
    p.connect_retry = Duration::from_secs(2);
    p.local_address = Some(if addr.is_ipv4() { v4(5) } else { v6(5) });
    p.idle_hold.initial = Duration::from_secs(1);
    p
}

fn originate_ours(lab: &mut Lab) {
    let sut = lab.sut();
    sut.handle
        .originate(pfx("198.18.50.0/26"), LocalRoute::default())
        .unwrap();
    sut.handle
        .originate(pfx("2001:db8:50::/122"), LocalRoute::default())
        .unwrap();
}

fn bird_has(lab: &Lab, sock: &std::path::Path, prefix: &str, via: &str) -> bool {
    let (_, out) = daemons::birdc(lab, "bird", sock, &["show", "route", "for", prefix, "all"]);
    out.contains(via)
}

#[test]
fn bird2_mesh_member_ipv4_ipv6() {
    if !can_run("bird2_mesh_member_ipv4_ipv6") {
        return;
    }
    require("bird", "bird2");
    require("birdc", "bird2");
    let mut lab = Lab::new("bird", &[("sut", 5), ("bird", 1)]);
    let sock = daemons::bird(&mut lab, "bird", BirdRole::Member, &[]);
    lab.start_sut(
        "sut",
        sut_config(vec![peer(v4(1), 64512), peer(v6(1), 64512)]),
    );
    originate_ours(&mut lab);
    let sut = lab.sut();
    assert!(
        sut.wait_route(pfx("198.18.10.0/26"), true, 30),
        "no IPv4 route from BIRD: {:?}",
        sut.status()
    );
    assert!(
        sut.wait_route(pfx("2001:db8:10::/122"), true, 15),
        "no IPv6 route from BIRD: {:?}",
        sut.status()
    );
    assert_eq!(
        sut.route(pfx("198.18.10.0/26")).unwrap().next_hop(),
        Some(v4(1))
    );
    assert_eq!(
        sut.route(pfx("2001:db8:10::/122")).unwrap().next_hop(),
        Some(v6(1))
    );
    assert!(
        wait(15, || bird_has(&lab, &sock, "198.18.50.0/26", "198.18.0.5")),
        "BIRD lacks our IPv4 route"
    );
    assert!(
        wait(15, || bird_has(
            &lab,
            &sock,
            "2001:db8:50::/122",
            "2001:db8:ffff::5"
        )),
        "BIRD lacks our IPv6 route"
    );
    // Withdrawals both ways.
    lab.sut().handle.withdraw(pfx("198.18.50.0/26")).unwrap();
    assert!(
        wait(15, || !bird_has(
            &lab,
            &sock,
            "198.18.50.0/26",
            "198.18.0.5"
        )),
        "BIRD kept our withdrawn route"
    );
    assert!(daemons::birdc(&lab, "bird", &sock, &["disable", "blocks6"]).0);
    assert!(
        lab.sut().wait_route(pfx("2001:db8:10::/122"), false, 15),
        "BIRD's IPv6 withdrawal did not arrive"
    );
    // BIRD asks for a route refresh (enhanced, negotiated): our routes stay.
    assert!(daemons::birdc(&lab, "bird", &sock, &["reload", "in", "sut6"]).0);
    assert!(
        lab.sut()
            .handle
            .originate(pfx("2001:db8:51::/122"), LocalRoute::default())
            .is_ok()
    );
    assert!(wait(15, || bird_has(
        &lab,
        &sock,
        "2001:db8:51::/122",
        "2001:db8:ffff::5"
    )));
}

#[test]
fn bird2_add_path_receive() {
    if !can_run("bird2_add_path_receive") {
        return;
    }
    require("bird", "bird2");
    let mut lab = Lab::new("badd", &[("sut", 5), ("bird", 1)]);
    let sock = daemons::bird(&mut lab, "bird", BirdRole::MemberAddPath, &[]);
    let mut p = peer(v4(1), 64512);
    p.add_path_receive = vec![Family::Ipv4Unicast];
    lab.start_sut("sut", sut_config(vec![p]));
    let sut = lab.sut();
    assert!(
        sut.wait_route(pfx("198.18.10.0/26"), true, 30),
        "{:?}",
        sut.status()
    );
    let st = sut.status();
    let neg = st[0].negotiated.as_ref().expect("established");
    assert!(
        neg.rx.add_path[0],
        "BIRD should send path identifiers: {neg:?}"
    );
    assert!(daemons::birdc(&lab, "bird", &sock, &["disable", "blocks4"]).0);
    assert!(
        lab.sut().wait_route(pfx("198.18.10.0/26"), false, 15),
        "withdrawal with a path id did not match"
    );
}

#[test]
fn gobgp3_ibgp_ipv4_ipv6() {
    if !can_run("gobgp3_ibgp_ipv4_ipv6") {
        return;
    }
    require("gobgpd", "gobgpd");
    require("gobgp", "gobgpd");
    let mut lab = Lab::new("gob", &[("sut", 5), ("gobgp", 2)]);
    daemons::gobgp(
        &mut lab,
        "gobgp",
        &["198.18.0.5", "2001:db8:ffff::5"],
        false,
        "gobgpd",
    );
    lab.start_sut(
        "sut",
        sut_config(vec![peer(v4(2), 64512), peer(v6(2), 64512)]),
    );
    originate_ours(&mut lab);
    let sut = lab.sut();
    assert!(
        sut.wait_route(pfx("198.18.20.0/26"), true, 30),
        "no IPv4 route from GoBGP: {:?}",
        sut.status()
    );
    assert!(
        sut.wait_route(pfx("2001:db8:20::/122"), true, 15),
        "no IPv6 route from GoBGP: {:?}",
        sut.status()
    );
    let g4 = || daemons::gobgp_cli(&lab, "gobgp", &["global", "rib", "-a", "ipv4"]).1;
    assert!(
        wait(15, || g4().contains("198.18.50.0/26")),
        "GoBGP lacks our IPv4 route: {}",
        g4()
    );
    assert!(wait(15, || daemons::gobgp_cli(
        &lab,
        "gobgp",
        &["global", "rib", "-a", "ipv6"]
    )
    .1
    .contains("2001:db8:50::/122")));
    // We ask GoBGP for a refresh; its routes stay.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(
        rt.block_on(lab.sut().handle.refresh(v4(2), Family::Ipv4Unicast))
            .unwrap()
    );
    // Withdrawals both ways.
    assert!(
        daemons::gobgp_cli(
            &lab,
            "gobgp",
            &["global", "rib", "del", "198.18.20.0/26", "-a", "ipv4"]
        )
        .0
    );
    assert!(
        lab.sut().wait_route(pfx("198.18.20.0/26"), false, 15),
        "GoBGP's withdrawal did not arrive"
    );
    lab.sut().handle.withdraw(pfx("2001:db8:50::/122")).unwrap();
    assert!(wait(15, || !daemons::gobgp_cli(
        &lab,
        "gobgp",
        &["global", "rib", "-a", "ipv6"]
    )
    .1
    .contains("2001:db8:50::/122")));
}

#[test]
fn frr8_ebgp_tor_four_octet_as_and_md5() {
    if !can_run("frr8_ebgp_tor_four_octet_as_and_md5") {
        return;
    }
    require("bgpd", "frr");
    require("zebra", "frr");
    require("vtysh", "frr");
    let mut lab = Lab::new("frr", &[("sut", 5), ("frr", 3)]);
    let dir = daemons::frr(&mut lab, "frr", Some("s3cret"));
    let mut p4 = peer(v4(3), 4_200_000_001);
    p4.password = Some("s3cret".into());
    lab.start_sut("sut", sut_config(vec![p4, peer(v6(3), 4_200_000_001)]));
    originate_ours(&mut lab);
    let sut = lab.sut();
    assert!(
        sut.wait_route(pfx("203.0.113.0/24"), true, 40),
        "no route from FRR: {:?}",
        sut.status()
    );
    assert!(
        sut.wait_route(pfx("2001:db8:30::/48"), true, 20),
        "no IPv6 route from FRR: {:?}",
        sut.status()
    );
    let r = sut.route(pfx("203.0.113.0/24")).unwrap();
    assert_eq!(
        r.attrs.path.as_path,
        tortie_bgp::wire::AsPath::sequence(vec![4_200_000_001])
    );
    assert_eq!(r.next_hop(), Some(v4(3)));
    let handle = lab.sut().handle.clone();
    let show = |p: &str| daemons::vtysh(&lab, "frr", &dir, &[&format!("show bgp {p}")]).1;
    assert!(
        wait(15, || show("ipv4 unicast 198.18.50.0/26").contains("64512")),
        "FRR lacks our route: {}",
        show("ipv4 unicast 198.18.50.0/26")
    );
    assert!(wait(15, || show("ipv6 unicast 2001:db8:50::/122")
        .contains("64512")));
    handle.withdraw(pfx("198.18.50.0/26")).unwrap();
    assert!(
        wait(15, || !show("ipv4 unicast 198.18.50.0/26")
            .contains("64512")),
        "FRR kept our withdrawn route"
    );
}

#[test]
fn frr8_wrong_md5_password_keeps_session_down() {
    if !can_run("frr8_wrong_md5_password_keeps_session_down") {
        return;
    }
    require("bgpd", "frr");
    let mut lab = Lab::new("md5", &[("sut", 5), ("frr", 3)]);
    daemons::frr(&mut lab, "frr", Some("s3cret"));
    let mut p4 = peer(v4(3), 4_200_000_001);
    p4.password = Some("not-the-password".into());
    lab.start_sut("sut", sut_config(vec![p4]));
    std::thread::sleep(Duration::from_secs(12));
    let st = lab.sut().status();
    assert_ne!(st[0].state, tortie_bgp::fsm::State::Established, "{st:?}");
    assert!(lab.sut().route(pfx("203.0.113.0/24")).is_none());
}

#[test]
fn bird2_as_route_reflector() {
    if !can_run("bird2_as_route_reflector") {
        return;
    }
    require("bird", "bird2");
    require("gobgpd", "gobgpd");
    // BIRD reflects between its clients: our speaker and GoBGP.
    let mut lab = Lab::new("brr", &[("sut", 5), ("bird", 1), ("gobgp", 2)]);
    let sock = daemons::bird(&mut lab, "bird", BirdRole::Reflector, &[2]);
    daemons::gobgp(&mut lab, "gobgp", &["198.18.0.1"], false, "gobgpd");
    lab.start_sut("sut", sut_config(vec![peer(v4(1), 64512)]));
    originate_ours(&mut lab);
    let sut = lab.sut();
    assert!(
        sut.wait_route(pfx("198.18.20.0/26"), true, 40),
        "GoBGP's route not reflected to us: {:?}",
        sut.status()
    );
    let r = sut.route(pfx("198.18.20.0/26")).unwrap();
    assert_eq!(
        r.attrs.path.originator_id,
        Some(Ipv4Addr::new(198, 18, 0, 2))
    );
    assert_eq!(
        r.attrs.path.cluster_list,
        vec![Ipv4Addr::new(198, 18, 0, 1)]
    );
    assert!(
        wait(20, || daemons::gobgp_cli(
            &lab,
            "gobgp",
            &["global", "rib", "-a", "ipv4"]
        )
        .1
        .contains("198.18.50.0/26")),
        "our route not reflected to GoBGP"
    );
    let _ = sock;
}

#[test]
fn tortie_as_route_reflector_for_bird_and_gobgp() {
    if !can_run("tortie_as_route_reflector_for_bird_and_gobgp") {
        return;
    }
    require("bird", "bird2");
    require("gobgpd", "gobgpd");
    let mut lab = Lab::new("trr", &[("sut", 5), ("bird", 1), ("gobgp", 2)]);
    let sock = daemons::bird(&mut lab, "bird", BirdRole::Member, &[]);
    daemons::gobgp(&mut lab, "gobgp", &["198.18.0.5"], false, "gobgpd");
    let mut c1 = peer(v4(1), 64512);
    c1.route_reflector_client = true;
    let mut c2 = peer(v4(2), 64512);
    c2.route_reflector_client = true;
    lab.start_sut("sut", sut_config(vec![c1, c2]));
    let sut = lab.sut();
    assert!(
        sut.wait_route(pfx("198.18.10.0/26"), true, 30)
            && sut.wait_route(pfx("198.18.20.0/26"), true, 30),
        "{:?}",
        sut.status()
    );
    // GoBGP gets BIRD's route with ORIGINATOR_ID = BIRD and CLUSTER_LIST = [our id].
    let json = || {
        daemons::gobgp_cli(
            &lab,
            "gobgp",
            &["global", "rib", "-a", "ipv4", "198.18.10.0/26", "-j"],
        )
        .1
    };
    assert!(
        wait(20, || json().contains("198.18.0.1")),
        "GoBGP lacks BIRD's route: {}",
        json()
    );
    let j = json();
    assert!(
        j.contains("\"type\":9") && j.contains("\"value\":\"198.18.0.1\""),
        "ORIGINATOR_ID missing: {j}"
    );
    assert!(
        j.contains("\"type\":10") && j.contains("198.18.0.5"),
        "CLUSTER_LIST missing: {j}"
    );
    // BIRD gets GoBGP's route, but never its own back.
    assert!(wait(20, || bird_has(
        &lab,
        &sock,
        "198.18.20.0/26",
        "198.18.0.5"
    )));
    let (_, own) = daemons::birdc(
        &lab,
        "bird",
        &sock,
        &["show", "route", "for", "198.18.10.0/26", "all"],
    );
    assert!(
        !own.contains("sut4"),
        "our reflector sent BIRD its own route: {own}"
    );
}

#[test]
fn gobgp3_graceful_restart_keeps_routes_across_kill_9() {
    if !can_run("gobgp3_graceful_restart_keeps_routes_across_kill_9") {
        return;
    }
    require("gobgpd", "gobgpd");
    let mut lab = Lab::new("gr", &[("sut", 5), ("gobgp", 2)]);
    daemons::gobgp(&mut lab, "gobgp", &["198.18.0.5"], false, "gobgpd");
    lab.start_sut("sut", sut_config(vec![peer(v4(2), 64512)]));
    let p = pfx("198.18.20.0/26");
    assert!(
        lab.sut().wait_route(p, true, 30),
        "{:?}",
        lab.sut().status()
    );
    let mark = {
        let s = lab.sut();
        s.poll();
        s.seen.len()
    };
    lab.kill("gobgpd");
    assert!(
        wait(10, || !lab.sut().established(v4(2))),
        "session did not drop"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lab.sut().route(p).is_some(),
        "route lost during the restart"
    );
    daemons::gobgp(&mut lab, "gobgp", &["198.18.0.5"], true, "gobgpd-restarted");
    assert!(
        wait(30, || lab.sut().established(v4(2))),
        "session did not come back"
    );
    // After End-of-RIB the route is still there and was never withdrawn.
    std::thread::sleep(Duration::from_secs(3));
    let evs = lab.sut().events_for(p, mark);
    assert!(
        !evs.iter()
            .any(|e| matches!(e, SpeakerEvent::Route(RouteEvent::Withdrawn(_)))),
        "{evs:?}"
    );
    assert!(lab.sut().route(p).is_some());
    let st = lab.sut().status();
    assert_eq!(st[0].received, 1, "{st:?}");
}

#[test]
fn bird2_helper_keeps_our_routes_when_we_restart() {
    if !can_run("bird2_helper_keeps_our_routes_when_we_restart") {
        return;
    }
    require("bird", "bird2");
    let mut lab = Lab::new("grr", &[("sut", 5), ("bird", 1)]);
    let sock = daemons::bird(&mut lab, "bird", BirdRole::Member, &[]);
    let cfg = sut_config(vec![peer(v4(1), 64512)]);
    lab.start_sut("sut", cfg.clone());
    originate_ours(&mut lab);
    assert!(wait(30, || bird_has(
        &lab,
        &sock,
        "198.18.50.0/26",
        "198.18.0.5"
    )));
    lab.crash_sut();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        bird_has(&lab, &sock, "198.18.50.0/26", "198.18.0.5"),
        "BIRD dropped our route while we restarted"
    );
    let mut again = cfg;
    again.graceful_restart.restarting = true;
    lab.start_sut("sut", again);
    originate_ours(&mut lab);
    assert!(
        wait(30, || lab
            .log_contains("bird/bird.log", "graceful restart done")
            || lab.log_contains(
                "bird/bird.log",
                "Neighbor graceful restart done"
            )),
        "BIRD did not finish GR"
    );
    assert!(bird_has(&lab, &sock, "198.18.50.0/26", "198.18.0.5"));
}

#[test]
fn exabgp_scripted_peer_communities_and_local_pref() {
    if !can_run("exabgp_scripted_peer_communities_and_local_pref") {
        return;
    }
    require("exabgp", "exabgp");
    let mut lab = Lab::new("exa", &[("sut", 5), ("exa", 4)]);
    let received = daemons::exabgp(
        &mut lab,
        "exa",
        &[
            "announce route 198.18.40.0/26 next-hop self community [64512:100 65535:65281] local-preference 2147482623",
            "announce route 2001:db8:40::/122 next-hop 2001:db8:ffff::4",
            "announce route 198.18.41.0/26 next-hop self large-community [64512:1:2]",
            // A COMMUNITIES attribute of 2 bytes (not a multiple of 4): RFC 7606 §7.8
            // treat-as-withdraw. The session must stay up and the other routes stay.
            "announce route 198.18.42.0/26 next-hop self attribute [ 0x08 0xc0 0x0102 ]",
        ],
    );
    let mut p = peer(v4(4), 64512);
    p.families = vec![Family::Ipv4Unicast, Family::Ipv6Unicast];
    p.next_hop_v6 = Some("2001:db8:ffff::5".parse().unwrap());
    lab.start_sut("sut", sut_config(vec![p]));
    let attrs = PathAttributes {
        communities: vec![(64512 << 16) | 7],
        ..Default::default()
    };
    lab.sut()
        .handle
        .originate(
            pfx("198.18.50.0/26"),
            LocalRoute {
                attrs,
                next_hop: None,
            },
        )
        .unwrap();
    let sut = lab.sut();
    assert!(
        sut.wait_route(pfx("198.18.40.0/26"), true, 30),
        "{:?}",
        sut.status()
    );
    let r = sut.route(pfx("198.18.40.0/26")).unwrap();
    assert_eq!(r.attrs.path.local_pref, Some(2_147_482_623));
    assert!(
        r.attrs.path.communities.contains(&0xffff_ff01),
        "NO_EXPORT kept"
    );
    assert!(sut.wait_route(pfx("2001:db8:40::/122"), true, 10));
    assert!(sut.wait_route(pfx("198.18.41.0/26"), true, 10));
    assert_eq!(
        sut.route(pfx("198.18.41.0/26"))
            .unwrap()
            .attrs
            .path
            .large_communities
            .len(),
        1
    );
    let got = || std::fs::read_to_string(&received).unwrap_or_default();
    assert!(
        wait(20, || got().contains("198.18.50.0/26")),
        "ExaBGP did not receive our route: {}",
        got()
    );
    assert!(
        got().contains("[ 64512, 7 ]"),
        "community not carried: {}",
        got()
    );
    let sut = lab.sut();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        sut.route(pfx("198.18.42.0/26")).is_none(),
        "malformed UPDATE was not treated as withdraw"
    );
    assert!(
        sut.established(v4(4)),
        "malformed attribute must not reset the session"
    );
    let st = sut.status();
    assert!(
        st[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("attribute type 8")),
        "{st:?}"
    );
}

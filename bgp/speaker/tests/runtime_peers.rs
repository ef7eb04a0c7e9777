//! The tokio adapter's run-time peer changes and GTSM, end to end on loopback (127.0.0.1-3
//! and ::1): a peer added with TCP-MD5 while another session is up (its key goes on the
//! listener then), removed again, and GTSM (RFC 5082) on both families, including a peer
//! without it that therefore never gets a session.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tortie_bgp::runtime::{self, SpeakerEvent};
use tortie_bgp::wire::Prefix;
use tortie_bgp::{LocalRoute, PeerConfig, RouteEvent, SpeakerConfig};

fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn peer(me: IpAddr, other: IpAddr, port: u16) -> PeerConfig {
    let mut p = PeerConfig::new(other, 64512);
    p.port = port;
    p.local_address = Some(me);
    p.hold_time = Duration::from_secs(9);
    p.connect_retry = Duration::from_secs(1);
    p
}

fn speaker(id: u8, me: IpAddr, listen: u16, peers: Vec<PeerConfig>) -> SpeakerConfig {
    let mut c = SpeakerConfig::new(64512, Ipv4Addr::new(198, 18, 0, id));
    c.listen_port = Some(listen);
    c.listen_addrs = vec![me];
    c.peers = peers;
    c
}

/// Waits (bounded) for an event matching `pred`; the events seen on the way are kept.
async fn wait_for(
    rx: &mut UnboundedReceiver<SpeakerEvent>,
    seen: &mut Vec<SpeakerEvent>,
    secs: u64,
    mut pred: impl FnMut(&SpeakerEvent) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => {
                let hit = pred(&ev);
                seen.push(ev);
                if hit {
                    return true;
                }
            }
            _ => return false,
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_peer_added_and_removed_at_run_time_leaves_the_other_alone() {
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let (a, mut ea) = runtime::spawn(speaker(1, lo(1), pa, vec![peer(lo(1), lo(2), pb)])).unwrap();
    let (b, mut eb) = runtime::spawn(speaker(2, lo(2), pb, vec![peer(lo(2), lo(1), pa)])).unwrap();
    let mut to_a = peer(lo(3), lo(1), pa);
    to_a.password = Some("l8r-key".into());
    to_a.passive = true; // a connects; its SYN must be signed with the key added at run time
    let (c, mut ec) = runtime::spawn(speaker(3, lo(3), pc, vec![to_a])).unwrap();
    let pfx_c: Prefix = "198.18.30.0/26".parse().unwrap();
    c.originate(pfx_c, LocalRoute::default()).unwrap();
    let (mut seen_a, mut seen_b, mut seen_c) = (vec![], vec![], vec![]);
    assert!(
        wait_for(&mut ea, &mut seen_a, 20, |e| matches!(
            e,
            SpeakerEvent::PeerUp(_)
        ))
        .await
    );
    assert!(
        wait_for(&mut eb, &mut seen_b, 20, |e| matches!(
            e,
            SpeakerEvent::PeerUp(_)
        ))
        .await
    );
    let mut add = peer(lo(1), lo(3), pc);
    add.password = Some("l8r-key".into());
    a.add_peer(add.clone()).await.unwrap();
    assert!(
        a.add_peer(add).await.is_err(),
        "the same address twice is refused"
    );
    assert!(
        wait_for(
            &mut ea,
            &mut seen_a,
            20,
            |e| matches!(e, SpeakerEvent::Route(RouteEvent::Added(p, _)) if *p == pfx_c)
        )
        .await,
        "{seen_a:?}"
    );
    assert!(
        wait_for(&mut ec, &mut seen_c, 5, |e| matches!(
            e,
            SpeakerEvent::PeerUp(_)
        ))
        .await
    );
    // Removed: c's session ends with Cease, its route goes from a; b saw nothing of it.
    assert!(a.remove_peer(lo(3)).await.unwrap());
    assert!(!a.remove_peer(lo(3)).await.unwrap(), "already gone");
    assert!(
        wait_for(
            &mut ea,
            &mut seen_a,
            10,
            |e| matches!(e, SpeakerEvent::Route(RouteEvent::Withdrawn(p)) if *p == pfx_c)
        )
        .await
    );
    assert!(
        wait_for(&mut ec, &mut seen_c, 10, |e| matches!(
            e,
            SpeakerEvent::PeerDown(..)
        ))
        .await
    );
    let st = a.status().await.unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].address, lo(2));
    assert_eq!(st[0].state, tortie_bgp::fsm::State::Established);
    assert_eq!(st[0].flaps, 0);
    let ups = seen_a
        .iter()
        .filter(|e| matches!(e, SpeakerEvent::PeerUp(x) if *x == lo(2)))
        .count();
    assert_eq!(ups, 1, "the session with b came up once: {seen_a:?}");
    while let Ok(ev) = eb.try_recv() {
        seen_b.push(ev);
    }
    assert!(
        !seen_b
            .iter()
            .any(|e| matches!(e, SpeakerEvent::PeerDown(..))),
        "{seen_b:?}"
    );
    for h in [a, b, c] {
        h.shutdown().await.unwrap();
    }
}

/// Two speakers with GTSM at `a` and `b`; `b_gtsm` false: b sends with the default TTL, so
/// a's kernel drops its segments and the session never comes up.
async fn gtsm_pair(a_addr: IpAddr, b_addr: IpAddr, b_gtsm: bool) -> bool {
    let (pa, pb) = (free_port(), free_port());
    let mut to_b = peer(a_addr, b_addr, pb);
    to_b.ttl_security = Some(1);
    let mut to_a = peer(b_addr, a_addr, pa);
    to_a.ttl_security = b_gtsm.then_some(1);
    let (a, mut ea) = runtime::spawn(speaker(1, a_addr, pa, vec![to_b])).unwrap();
    let (b, _eb) = runtime::spawn(speaker(2, b_addr, pb, vec![to_a])).unwrap();
    let up = wait_for(&mut ea, &mut vec![], 6, |e| {
        matches!(e, SpeakerEvent::PeerUp(_))
    })
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    up
}

#[tokio::test(flavor = "current_thread")]
async fn gtsm_on_both_ends_comes_up_and_a_peer_without_it_does_not() {
    assert!(gtsm_pair(lo(1), lo(2), true).await, "GTSM on both ends");
    assert!(
        !gtsm_pair(lo(1), lo(2), false).await,
        "TTL 64 segments dropped"
    );
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6: IpAddr = "::1".parse().unwrap();
        assert!(gtsm_pair(v6, v6, true).await, "GTSM over IPv6");
        assert!(!gtsm_pair(v6, v6, false).await, "hop limit 64 dropped");
    } else {
        eprintln!("no ::1: the IPv6 half is skipped");
    }
}

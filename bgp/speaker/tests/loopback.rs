//! The tokio adapter end to end on loopback: two speakers (127.0.0.1 and 127.0.0.2) with
//! TCP-MD5, routes both ways, withdrawal, route refresh, and a wrong password.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tortie_bgp::runtime::{self, SpeakerEvent};
use tortie_bgp::wire::{Family, Prefix};
use tortie_bgp::{LocalRoute, PeerConfig, RouteEvent, SpeakerConfig};

fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

fn config(me: u8, other: u8, listen: u16, other_port: u16, password: &str) -> SpeakerConfig {
    let mut c = SpeakerConfig::new(64512, Ipv4Addr::new(127, 0, 0, me));
    c.listen_port = Some(listen);
    c.listen_addrs = vec![lo(me)];
    let mut p = PeerConfig::new(lo(other), 64512);
    p.port = other_port;
    p.local_address = Some(lo(me));
    p.hold_time = Duration::from_secs(9);
    p.connect_retry = Duration::from_secs(1);
    p.password = Some(password.to_string());
    c.peers = vec![p];
    c
}

/// Waits (bounded) for an event matching `pred`.
async fn wait_for(
    rx: &mut UnboundedReceiver<SpeakerEvent>,
    secs: u64,
    mut pred: impl FnMut(&SpeakerEvent) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) if pred(&ev) => return true,
            Ok(Some(_)) => {}
            _ => return false,
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "current_thread")]
async fn two_speakers_over_loopback_with_md5() {
    let (pa, pb) = (free_port(), free_port());
    let (a, mut ea) = runtime::spawn(config(1, 2, pa, pb, "s3cret")).unwrap();
    let (b, mut eb) = runtime::spawn(config(2, 1, pb, pa, "s3cret")).unwrap();
    let p1: Prefix = "198.18.10.0/26".parse().unwrap();
    let p2: Prefix = "198.18.20.0/26".parse().unwrap();
    a.originate(p1, LocalRoute::default()).unwrap();
    b.originate(p2, LocalRoute::default()).unwrap();
    assert!(wait_for(&mut eb, 20, |e| matches!(e, SpeakerEvent::Route(RouteEvent::Added(p, r)) if *p == p1 && r.next_hop() == Some(lo(1)))).await);
    assert!(
        wait_for(
            &mut ea,
            20,
            |e| matches!(e, SpeakerEvent::Route(RouteEvent::Added(p, _)) if *p == p2)
        )
        .await
    );
    assert!(a.refresh(lo(2), Family::Ipv4Unicast).await.unwrap());
    a.withdraw(p1).unwrap();
    assert!(
        wait_for(
            &mut eb,
            10,
            |e| matches!(e, SpeakerEvent::Route(RouteEvent::Withdrawn(p)) if *p == p1)
        )
        .await
    );
    let st = b.status().await.unwrap();
    assert_eq!(st[0].state, tortie_bgp::fsm::State::Established);
    assert_eq!(st[0].advertised, 1);
    a.shutdown().await.unwrap();
    assert!(wait_for(&mut eb, 10, |e| matches!(e, SpeakerEvent::PeerDown(..))).await);
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn wrong_md5_password_keeps_session_down() {
    let (pa, pb) = (free_port(), free_port());
    let (a, mut ea) = runtime::spawn(config(1, 2, pa, pb, "s3cret")).unwrap();
    let (b, _eb) = runtime::spawn(config(2, 1, pb, pa, "other")).unwrap();
    assert!(!wait_for(&mut ea, 5, |e| matches!(e, SpeakerEvent::PeerUp(_))).await);
    let st = a.status().await.unwrap();
    assert_ne!(st[0].state, tortie_bgp::fsm::State::Established);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

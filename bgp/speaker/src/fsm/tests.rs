//! Transition tests for the FSM.

use super::*;
use tortie_bgp_wire::Capability;

const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 5);

fn cfg() -> FsmConfig {
    FsmConfig {
        local_id: LOCAL,
        remote_as: 64512,
        internal: true,
        hold_time: Duration::from_secs(9),
        connect_retry: Duration::from_secs(2),
        passive: false,
        delay_open: None,
        idle_hold: IdleHoldConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            stable: Duration::from_secs(30),
        },
        open: Open {
            my_as: 64512,
            hold_time: 9,
            bgp_id: LOCAL,
            capabilities: vec![Capability::RouteRefresh],
        },
        jitter: false,
    }
}

fn peer_open(id: [u8; 4], hold: u16) -> Open {
    Open {
        my_as: 64512,
        hold_time: hold,
        bgp_id: Ipv4Addr::from(id),
        capabilities: vec![],
    }
}

fn sends(a: &[FsmAction]) -> Vec<(ConnId, &Message)> {
    a.iter()
        .filter_map(|x| {
            if let FsmAction::Send(c, m) = x {
                Some((*c, m))
            } else {
                None
            }
        })
        .collect()
}

fn closes(a: &[FsmAction]) -> Vec<ConnId> {
    a.iter()
        .filter_map(|x| {
            if let FsmAction::Close(c) = x {
                Some(*c)
            } else {
                None
            }
        })
        .collect()
}

fn timer(a: &[FsmAction], t: Timer) -> Option<Duration> {
    a.iter().rev().find_map(|x| match x {
        FsmAction::StartTimer(tt, d) if *tt == t => Some(*d),
        _ => None,
    })
}

/// Drives a fresh FSM to Established over outgoing connection 100.
fn established(peer_id: [u8; 4]) -> Fsm {
    let mut f = Fsm::new(cfg(), 100);
    let a = f.handle(FsmEvent::Start);
    assert_eq!(a[0], FsmAction::Connect(100));
    assert_eq!(f.state(), State::Connect);
    let a = f.handle(FsmEvent::TcpConnected(100));
    assert!(matches!(sends(&a)[..], [(100, Message::Open(_))]));
    assert_eq!(f.state(), State::OpenSent);
    let a = f.handle(FsmEvent::Received(
        100,
        Received::Open(peer_open(peer_id, 30)),
    ));
    assert!(matches!(sends(&a)[..], [(100, Message::Keepalive)]));
    assert_eq!(
        timer(&a, Timer::Hold),
        Some(Duration::from_secs(9)),
        "hold is the smaller of the two"
    );
    assert_eq!(timer(&a, Timer::Keepalive), Some(Duration::from_secs(3)));
    assert_eq!(f.state(), State::OpenConfirm);
    let a = f.handle(FsmEvent::Received(100, Received::Keepalive));
    assert!(
        a.iter()
            .any(|x| matches!(x, FsmAction::Established(100, _)))
    );
    assert_eq!(f.state(), State::Established);
    f
}

#[test]
fn happy_path_reaches_established() {
    let mut f = established([198, 18, 0, 1]);
    let a = f.handle(FsmEvent::Received(100, Received::Update));
    assert!(a.contains(&FsmAction::Deliver));
    assert_eq!(
        timer(&a, Timer::Hold),
        Some(Duration::from_secs(9)),
        "an UPDATE restarts the hold timer"
    );
    let a = f.handle(FsmEvent::Timer(Timer::Keepalive));
    assert!(matches!(sends(&a)[..], [(100, Message::Keepalive)]));
}

#[test]
fn hold_timer_expiry_sends_notification_and_damps() {
    let mut f = established([198, 18, 0, 1]);
    let a = f.handle(FsmEvent::Timer(Timer::Hold));
    assert!(matches!(sends(&a)[..], [(100, Message::Notification(n))] if n.code == 4));
    assert!(
        a.iter()
            .any(|x| matches!(x, FsmAction::Down(DownReason::NotificationSent(_))))
    );
    assert_eq!(f.state(), State::Idle);
    assert_eq!(timer(&a, Timer::IdleHold), Some(Duration::from_secs(1)));
    // Idle refuses connections until the IdleHold timer restarts it.
    let a = f.handle(FsmEvent::TcpAccepted(7));
    assert_eq!(closes(&a), vec![7]);
    let a = f.handle(FsmEvent::Timer(Timer::IdleHold));
    assert!(matches!(a[0], FsmAction::Connect(101)));
}

#[test]
fn flapping_peer_backs_off_exponentially_until_stable() {
    let mut f = established([198, 18, 0, 1]);
    let mut waits = vec![];
    for round in 0..6 {
        let a = f.handle(FsmEvent::Received(
            f.established_conn().unwrap(),
            Received::Notification(Notification::cease(2)),
        ));
        waits.push(timer(&a, Timer::IdleHold).unwrap().as_secs());
        let a = f.handle(FsmEvent::Timer(Timer::IdleHold));
        let FsmAction::Connect(c) = a[0] else {
            panic!("round {round}: {a:?}")
        };
        f.handle(FsmEvent::TcpConnected(c));
        f.handle(FsmEvent::Received(
            c,
            Received::Open(peer_open([198, 18, 0, 1], 9)),
        ));
        f.handle(FsmEvent::Received(c, Received::Keepalive));
        assert_eq!(f.state(), State::Established);
    }
    assert_eq!(waits, vec![1, 2, 4, 8, 8, 8]);
    assert_eq!(f.flaps, 6);
    f.handle(FsmEvent::Timer(Timer::Stable));
    assert_eq!(
        f.idle_hold_next(),
        Duration::from_secs(1),
        "a stable session resets the damping"
    );
}

#[test]
fn manual_stop_sends_cease_and_does_not_restart() {
    let mut f = established([198, 18, 0, 1]);
    let a = f.handle(FsmEvent::Stop);
    assert!(
        matches!(sends(&a)[..], [(100, Message::Notification(n))] if n.code == 6 && n.subcode == 2)
    );
    assert_eq!(timer(&a, Timer::IdleHold), None);
    assert!(f.handle(FsmEvent::Timer(Timer::IdleHold)).is_empty());
}

#[test]
fn connect_failure_waits_for_connect_retry() {
    let mut f = Fsm::new(cfg(), 100);
    f.handle(FsmEvent::Start);
    let a = f.handle(FsmEvent::TcpClosed(100));
    assert!(a.is_empty());
    assert_eq!(f.state(), State::Active);
    let a = f.handle(FsmEvent::Timer(Timer::ConnectRetry));
    assert_eq!(a[0], FsmAction::Connect(101));
    assert_eq!(f.state(), State::Connect);
}

#[test]
fn passive_peer_waits_for_incoming() {
    let mut c = cfg();
    c.passive = true;
    let mut f = Fsm::new(c, 100);
    assert!(f.handle(FsmEvent::Start).is_empty());
    assert_eq!(f.state(), State::Active);
    let a = f.handle(FsmEvent::TcpAccepted(9));
    assert!(matches!(sends(&a)[..], [(9, Message::Open(_))]));
    assert_eq!(f.state(), State::OpenSent);
}

#[test]
fn simultaneous_connections_are_resolved_by_collision_detection() {
    // Incoming first while our own attempt is pending; then ours completes too.
    let mut f = Fsm::new(cfg(), 100);
    f.handle(FsmEvent::Start);
    let a = f.handle(FsmEvent::TcpAccepted(9));
    assert!(closes(&a).is_empty(), "our attempt stays open");
    assert_eq!(f.state(), State::OpenSent);
    let a = f.handle(FsmEvent::TcpConnected(100));
    assert!(matches!(sends(&a)[..], [(100, Message::Open(_))]));
    // Our identifier (.5) is higher than the peer's (.1): our outgoing connection wins.
    let a = f.handle(FsmEvent::Received(
        9,
        Received::Open(peer_open([198, 18, 0, 1], 9)),
    ));
    assert_eq!(closes(&a), vec![9]);
    let a = f.handle(FsmEvent::Received(
        100,
        Received::Open(peer_open([198, 18, 0, 1], 9)),
    ));
    assert!(matches!(sends(&a)[..], [(100, Message::Keepalive)]));
    assert_eq!(f.state(), State::OpenConfirm);
}

#[test]
fn jitter_shortens_timers_by_at_most_a_quarter() {
    let mut c = cfg();
    c.jitter = true;
    let mut f = Fsm::new(c, 100);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let a = f.handle(FsmEvent::Start);
        let d = timer(&a, Timer::ConnectRetry).unwrap();
        assert!(
            d >= Duration::from_millis(1500) && d <= Duration::from_secs(2),
            "{d:?}"
        );
        seen.insert(d);
        f.handle(FsmEvent::Stop);
    }
    assert!(seen.len() > 10, "jitter varies");
}

#[test]
fn wrong_peer_as_is_rejected() {
    let mut f = Fsm::new(cfg(), 100);
    f.handle(FsmEvent::Start);
    f.handle(FsmEvent::TcpConnected(100));
    let mut o = peer_open([198, 18, 0, 1], 9);
    o.my_as = 65000;
    let a = f.handle(FsmEvent::Received(100, Received::Open(o)));
    assert!(
        matches!(sends(&a)[..], [(100, Message::Notification(n))] if (n.code, n.subcode) == (2, 2))
    );
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn ibgp_peer_with_our_identifier_is_rejected() {
    let mut f = Fsm::new(cfg(), 100);
    f.handle(FsmEvent::Start);
    f.handle(FsmEvent::TcpConnected(100));
    let a = f.handle(FsmEvent::Received(
        100,
        Received::Open(peer_open(LOCAL.octets(), 9)),
    ));
    assert!(
        matches!(sends(&a)[..], [(100, Message::Notification(n))] if (n.code, n.subcode) == (2, 3))
    );
}

#[test]
fn unexpected_message_is_fsm_error_with_state_subcode() {
    let mut f = Fsm::new(cfg(), 100);
    f.handle(FsmEvent::Start);
    f.handle(FsmEvent::TcpConnected(100));
    let a = f.handle(FsmEvent::Received(100, Received::Update));
    assert!(
        matches!(sends(&a)[..], [(100, Message::Notification(n))] if (n.code, n.subcode) == (5, 1))
    );
    assert!(!a.contains(&FsmAction::Deliver));
}

#[test]
fn collision_keeps_connection_of_higher_identifier_peer() {
    // Peer 198.18.0.9 > local 198.18.0.5: its (incoming) connection must win.
    let mut f = Fsm::new(cfg(), 100);
    f.handle(FsmEvent::Start);
    f.handle(FsmEvent::TcpConnected(100));
    let a = f.handle(FsmEvent::TcpAccepted(7));
    assert!(
        matches!(sends(&a)[..], [(7, Message::Open(_))]),
        "OPEN goes out on the second connection too"
    );
    let a = f.handle(FsmEvent::Received(
        7,
        Received::Open(peer_open([198, 18, 0, 9], 9)),
    ));
    assert!(
        matches!(sends(&a)[..], [(100, Message::Notification(n)), (7, Message::Keepalive)] if n.is_collision())
    );
    assert_eq!(closes(&a), vec![100]);
    assert_eq!(f.state(), State::OpenConfirm);
    let a = f.handle(FsmEvent::Received(7, Received::Keepalive));
    assert!(a.iter().any(|x| matches!(x, FsmAction::Established(7, _))));
}

#[test]
fn collision_keeps_our_connection_when_our_identifier_is_higher() {
    let mut f = Fsm::new(cfg(), 100);
    f.handle(FsmEvent::Start);
    f.handle(FsmEvent::TcpConnected(100));
    f.handle(FsmEvent::TcpAccepted(7));
    let a = f.handle(FsmEvent::Received(
        100,
        Received::Open(peer_open([198, 18, 0, 1], 9)),
    ));
    assert!(
        matches!(sends(&a)[..], [(7, Message::Notification(n)), (100, Message::Keepalive)] if n.is_collision())
    );
    assert_eq!(closes(&a), vec![7]);
    assert_eq!(f.state(), State::OpenConfirm);
}

#[test]
fn connection_during_established_is_refused() {
    let mut f = established([198, 18, 0, 9]);
    let a = f.handle(FsmEvent::TcpAccepted(7));
    assert!(matches!(sends(&a)[..], [(7, Message::Notification(n))] if n.is_collision()));
    assert_eq!(f.state(), State::Established);
}

#[test]
fn delay_open_waits_then_sends() {
    let mut c = cfg();
    c.delay_open = Some(Duration::from_secs(5));
    let mut f = Fsm::new(c.clone(), 100);
    f.handle(FsmEvent::Start);
    let a = f.handle(FsmEvent::TcpConnected(100));
    assert!(sends(&a).is_empty());
    assert_eq!(timer(&a, Timer::DelayOpen), Some(Duration::from_secs(5)));
    let a = f.handle(FsmEvent::Timer(Timer::DelayOpen));
    assert!(matches!(sends(&a)[..], [(100, Message::Open(_))]));
    assert_eq!(f.state(), State::OpenSent);
    // The peer speaks first: OPEN and KEEPALIVE together, straight to OpenConfirm.
    let mut f = Fsm::new(c, 100);
    f.handle(FsmEvent::Start);
    f.handle(FsmEvent::TcpConnected(100));
    let a = f.handle(FsmEvent::Received(
        100,
        Received::Open(peer_open([198, 18, 0, 1], 9)),
    ));
    assert!(matches!(
        sends(&a)[..],
        [(100, Message::Open(_)), (100, Message::Keepalive)]
    ));
    assert_eq!(f.state(), State::OpenConfirm);
}

#[test]
fn zero_hold_time_disables_keepalives() {
    let mut f = Fsm::new(cfg(), 100);
    f.handle(FsmEvent::Start);
    f.handle(FsmEvent::TcpConnected(100));
    let a = f.handle(FsmEvent::Received(
        100,
        Received::Open(peer_open([198, 18, 0, 1], 0)),
    ));
    assert_eq!(timer(&a, Timer::Keepalive), None);
    assert!(a.contains(&FsmAction::StopTimer(Timer::Hold)));
}

#[test]
fn decode_error_sends_notification() {
    let mut f = established([198, 18, 0, 1]);
    let n = Notification {
        code: 3,
        subcode: 1,
        data: vec![],
    };
    let a = f.handle(FsmEvent::DecodeError(100, n.clone()));
    assert!(matches!(sends(&a)[..], [(100, Message::Notification(x))] if *x == n));
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn connection_lost_in_opensent_goes_active_without_damping() {
    let mut f = Fsm::new(cfg(), 100);
    f.handle(FsmEvent::Start);
    f.handle(FsmEvent::TcpConnected(100));
    let a = f.handle(FsmEvent::TcpClosed(100));
    assert_eq!(f.state(), State::Active);
    assert_eq!(timer(&a, Timer::ConnectRetry), Some(Duration::from_secs(2)));
    assert_eq!(timer(&a, Timer::IdleHold), None);
    assert_eq!(f.flaps, 0);
}

#[test]
fn pending_connect_is_aborted_once_the_incoming_session_is_established() {
    // Our attempt 100 is still in progress when the peer's connection 7 comes in and goes
    // all the way to Established: 100 must be aborted, or it would reach the peer later
    // as a new connection from an Established neighbour.
    let mut f = Fsm::new(cfg(), 100);
    let a = f.handle(FsmEvent::Start);
    assert_eq!(a[0], FsmAction::Connect(100));
    f.handle(FsmEvent::TcpAccepted(7));
    f.handle(FsmEvent::Received(
        7,
        Received::Open(peer_open([198, 18, 0, 9], 9)),
    ));
    let a = f.handle(FsmEvent::Received(7, Received::Keepalive));
    assert!(a.iter().any(|x| matches!(x, FsmAction::Established(7, _))));
    assert_eq!(closes(&a), vec![100]);
    // Its late success is then refused too.
    let a = f.handle(FsmEvent::TcpConnected(100));
    assert_eq!(closes(&a), vec![100]);
    assert_eq!(f.state(), State::Established);
}

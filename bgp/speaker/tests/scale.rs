//! Scale checks that run in debug builds: a 50-speaker iBGP full mesh converges (in the
//! in-process simulation) to every speaker holding every other speaker's block, and
//! 100,000 received IPv4 prefixes fit the memory budget of 200 bytes per route.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tortie_bgp::sim::Network;
use tortie_bgp::wire::{
    AsPath, Context, Family, NextHop, Nlri, PathAttributes, Prefix, frame_length,
    pack_announcements,
};
use tortie_bgp::{LocalRoute, Output, PeerConfig, Speaker, SpeakerConfig};

#[test]
fn fifty_speaker_mesh_converges() {
    let n: u8 = 50;
    let addr = |i: u8| IpAddr::V4(Ipv4Addr::new(198, 18, 1, i + 1));
    let block = |i: u8| Prefix::new(IpAddr::V4(Ipv4Addr::new(10, 65, i, 0)), 26).unwrap();
    let mut net = Network::new();
    for i in 0..n {
        let mut cfg = SpeakerConfig::new(64512, Ipv4Addr::new(198, 18, 1, i + 1));
        cfg.peers = (0..n)
            .filter(|j| *j != i)
            .map(|j| {
                let mut p = PeerConfig::new(addr(j), 64512);
                p.local_address = Some(addr(i));
                p
            })
            .collect();
        let mut s = Speaker::new(cfg).unwrap();
        let _ = s.originate(block(i), LocalRoute::default());
        net.add(s, addr(i));
    }
    for i in 0..usize::from(n) {
        net.start(i);
    }
    assert!(net.run_until(Duration::from_secs(60), |net| {
        net.nodes
            .iter()
            .all(|x| x.speaker.rib().len() == usize::from(n))
    }));
    for (i, node) in net.nodes.iter().enumerate() {
        for j in 0..n {
            let r = node.speaker.best_route(&block(j)).unwrap();
            if usize::from(j) != i {
                assert_eq!(
                    r.next_hop(),
                    Some(addr(j)),
                    "node {i} reaches block {j} directly"
                );
            }
        }
    }
}

#[test]
fn hundred_thousand_routes_fit_two_hundred_bytes_each() {
    const ROUTES: u32 = 100_000;
    let (mut s, conn) = tortie_bgp::sim::established_ibgp_speaker(
        64512,
        Ipv4Addr::new(198, 18, 0, 5),
        Ipv4Addr::new(198, 18, 0, 1),
    );
    for group in 0..ROUTES / 1000 {
        let attrs = PathAttributes {
            as_path: AsPath::sequence(vec![65000 + group]),
            ..Default::default()
        };
        let nlri: Vec<Nlri> = (0..1000)
            .map(|i| {
                Nlri::new(
                    Prefix::new(
                        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + ((group * 1000 + i) << 8))),
                        24,
                    )
                    .unwrap(),
                )
            })
            .collect();
        let mut buf = vec![];
        assert!(pack_announcements(
            Family::Ipv4Unicast,
            &attrs,
            NextHop::V4(Ipv4Addr::new(198, 18, 0, 1)),
            &nlri,
            &Context::modern(),
            &mut buf
        ));
        let mut rest = &buf[..];
        while let Ok(Some(len)) = frame_length(rest) {
            s.message(conn, &rest[..len]);
            rest = &rest[len..];
        }
        let events = s
            .take_outputs()
            .into_iter()
            .filter(|o| matches!(o, Output::Route(tortie_bgp::RouteEvent::Added(..))))
            .count();
        assert_eq!(events, 1000, "one route event per new prefix");
    }
    assert_eq!(s.rib().len(), ROUTES as usize);
    assert_eq!(s.peer_route_count(0), ROUTES as usize);
    let per_route = s.rib().approx_heap_bytes() / ROUTES as usize;
    assert!(per_route <= 200, "{per_route} bytes per route");
}

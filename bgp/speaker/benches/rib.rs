//! Benchmarks: 100,000 IPv4 prefixes from one peer into the Loc-RIB (without and with an
//! import policy of Calico BGPFilter shape), and a 50-speaker iBGP full mesh converging in
//! the in-process simulation (without and with Calico's export filter on every session).
//!
//! Run: `cargo bench -p tortie-bgp --bench rib -- --warm-up-time 1 --measurement-time 5`
//! Besides criterion's timings, it prints the resident memory retained per route.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tortie_bgp::sim::Network;
use tortie_bgp::wire::{
    AsPath, Context, Family, NextHop, Nlri, PathAttributes, Prefix, pack_announcements,
};
use tortie_bgp::{
    LocalRoute, PeerConfig, PolicyAction, PolicyRule, PrefixMatch, RoutePolicy, SourceMatch,
    Speaker, SpeakerConfig,
};

const ROUTES: u32 = 100_000;

/// UPDATEs carrying `ROUTES` distinct /24s, 250 prefixes per attribute set (like a peer that
/// announces many aggregates from a few hundred origins).
fn updates() -> Vec<Vec<u8>> {
    let mut msgs = vec![];
    let ctx = Context::modern();
    for group in 0..ROUTES / 250 {
        let attrs = PathAttributes {
            as_path: AsPath::sequence(vec![64512 + group % 7, 65000 + group]),
            local_pref: Some(100),
            med: Some(group),
            communities: vec![(64512 << 16) | group],
            ..Default::default()
        };
        let nlri: Vec<Nlri> = (0..250)
            .map(|i| {
                let n = group * 250 + i;
                Nlri::new(
                    Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (n << 8))), 24).unwrap(),
                )
            })
            .collect();
        let mut buf = vec![];
        assert!(pack_announcements(
            Family::Ipv4Unicast,
            &attrs,
            NextHop::V4(Ipv4Addr::new(198, 18, 0, 1)),
            &nlri,
            &ctx,
            &mut buf
        ));
        let mut rest = &buf[..];
        while !rest.is_empty() {
            let len = tortie_bgp::wire::frame_length(rest).unwrap().unwrap();
            msgs.push(rest[..len].to_vec());
            rest = &rest[len..];
        }
    }
    msgs
}

fn net(a: [u8; 4], len: u8) -> Prefix {
    Prefix::new(IpAddr::V4(Ipv4Addr::from(a)), len).unwrap()
}

/// An import policy shaped like a BGPFilter: four rules, the last one matching every
/// prefix of the bench, so each prefix walks the whole list.
fn import_policy() -> RoutePolicy {
    RoutePolicy {
        rules: vec![
            PolicyRule::prefix(
                PrefixMatch::Equal(net([0, 0, 0, 0], 0)),
                PolicyAction::Reject,
            ),
            PolicyRule::prefix(
                PrefixMatch::In(net([198, 18, 0, 0], 15)),
                PolicyAction::Reject,
            ),
            PolicyRule {
                prefix: Some(PrefixMatch::In(net([8, 0, 0, 0], 6))),
                length: Some((25, 32)),
                ..PolicyRule::any(PolicyAction::Reject)
            },
            PolicyRule::prefix(PrefixMatch::In(net([8, 0, 0, 0], 6)), PolicyAction::Accept),
        ],
        default: PolicyAction::Reject,
    }
}

/// Calico's export filter as the agent builds it for a cluster with one pool.
fn export_policy() -> RoutePolicy {
    RoutePolicy {
        rules: vec![
            PolicyRule {
                source: Some(SourceMatch::EbgpPeers),
                ..PolicyRule::any(PolicyAction::Reject)
            },
            PolicyRule {
                source: Some(SourceMatch::Local),
                ..PolicyRule::any(PolicyAction::Accept)
            },
            PolicyRule::prefix(
                PrefixMatch::In(net([10, 64, 0, 0], 10)),
                PolicyAction::Accept,
            ),
        ],
        default: PolicyAction::Reject,
    }
}

/// A speaker with one Established iBGP peer; returns it and the connection id.
fn established_speaker(policy: bool) -> (Speaker, u64) {
    let (s, conn) = tortie_bgp::sim::established_ibgp_speaker_with(
        64512,
        Ipv4Addr::new(198, 18, 0, 5),
        Ipv4Addr::new(198, 18, 0, 1),
        |p| {
            if policy {
                p.import_policy = import_policy();
            }
        },
    );
    assert_eq!(s.peer_state(0), Some(tortie_bgp::fsm::State::Established));
    (s, conn)
}

fn ingest(msgs: &[Vec<u8>]) -> Speaker {
    ingest_with(msgs, false)
}

fn ingest_with(msgs: &[Vec<u8>], policy: bool) -> Speaker {
    let (mut s, conn) = established_speaker(policy);
    s.reserve_routes(ROUTES as usize);
    for m in msgs {
        s.message(conn, m);
        // Route events go to the control plane; drop them here as a consumer would.
        black_box(s.take_outputs());
    }
    assert_eq!(s.rib().len(), ROUTES as usize);
    s
}

/// Resident set size in bytes, from /proc/self/statm (pages × 4096).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<usize>().ok())
        })
        .map_or(0, |p| p * 4096)
}

fn mesh(n: u8) -> Network {
    mesh_with(n, false)
}

fn mesh_with(n: u8, policy: bool) -> Network {
    let mut net = Network::new();
    let addr = |i: u8| IpAddr::V4(Ipv4Addr::new(198, 18, 1, i + 1));
    for i in 0..n {
        let mut cfg = SpeakerConfig::new(64512, Ipv4Addr::new(198, 18, 1, i + 1));
        cfg.peers = (0..n)
            .filter(|j| *j != i)
            .map(|j| {
                let mut p = PeerConfig::new(addr(j), 64512);
                p.local_address = Some(addr(i));
                if policy {
                    p.export_policy = export_policy();
                }
                p
            })
            .collect();
        let mut s = Speaker::new(cfg).unwrap();
        let _ = s.originate(
            Prefix::new(IpAddr::V4(Ipv4Addr::new(10, 65, i, 0)), 26).unwrap(),
            LocalRoute::default(),
        );
        net.add(s, addr(i));
    }
    net
}

fn converged(net: &Network, n: usize) -> bool {
    net.nodes.iter().all(|x| x.speaker.rib().len() == n)
}

fn benches(c: &mut Criterion) {
    let msgs = updates();
    // One measured run for the figures in docs/perf/bgp.md.
    let before = rss();
    let t = Instant::now();
    let s = ingest(&msgs);
    let took = t.elapsed();
    let after = rss();
    println!(
        "loc_rib_100k: {} prefixes in {} UPDATEs installed in {:?}; RSS grew {} bytes = {} bytes/route; table estimate {} bytes/route",
        ROUTES,
        msgs.len(),
        took,
        after.saturating_sub(before),
        after.saturating_sub(before) / ROUTES as usize,
        s.rib().approx_heap_bytes() / ROUTES as usize
    );
    drop(s);
    let mut g = c.benchmark_group("bgp");
    g.sample_size(10);
    g.bench_function("loc_rib_100k_ipv4", |b| b.iter(|| black_box(ingest(&msgs))));
    g.bench_function("loc_rib_100k_ipv4_import_policy", |b| {
        b.iter(|| black_box(ingest_with(&msgs, true)))
    });
    for (name, policy) in [
        ("mesh_50_converge", false),
        ("mesh_50_converge_export_policy", true),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut net = mesh_with(50, policy);
                for i in 0..50 {
                    net.start(i);
                }
                assert!(net.run_until(Duration::from_secs(60), |n| converged(n, 50)));
                black_box(net.now())
            })
        });
    }
    g.finish();
    let mut net = mesh(50);
    let t = Instant::now();
    for i in 0..50 {
        net.start(i);
    }
    assert!(net.run_until(Duration::from_secs(60), |n| converged(n, 50)));
    println!(
        "mesh_50: converged in {:?} wall time, {:?} virtual time, {} messages",
        t.elapsed(),
        net.now(),
        net.messages
    );
}

criterion_group!(bgp, benches);
criterion_main!(bgp);

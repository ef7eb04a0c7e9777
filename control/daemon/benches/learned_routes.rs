//! 100,000 IPv4 prefixes learned over BGP, from the agent's learned-route table to a
//! generation the fastpath's workers can forward with: the agent's mapping to fastpath
//! routes, tortie-control's route computation (merging with the datastore's routes), the
//! tables message encoded for the ring and decoded by tortie-fastpath, and the pipeline's
//! generation build (LPM included). The speaker's own part (UPDATEs into the Loc-RIB) is
//! `bgp/speaker/benches/rib.rs`.
//!
//! `cargo bench -p tortie-control --bench learned_routes -- --warm-up-time 1`

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::IpNet;
use tortie_abi as abi;
use tortie_bgp_agent::{LearnedRoute, fastpath_route};
use tortie_control::cluster::NodeAddrs;
use tortie_control::routes::{self, RouteInputs, Target};

const PREFIXES: u32 = 100_000;
/// The ToR that advertises them (the default gateway: routes target `Uplink`).
const TOR: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);

/// 100,000 distinct host prefixes inside 198.18.0.0/15 from 198.18.64.0 on (data only: no
/// packet is sent).
fn learned() -> Vec<LearnedRoute> {
    let base = u32::from(Ipv4Addr::new(198, 18, 64, 0));
    (0..PREFIXES)
        .map(|i| LearnedRoute {
            prefix: IpNet::new(IpAddr::V4(Ipv4Addr::from(base + i)), 32).unwrap(),
            next_hop: Some(IpAddr::V4(TOR)),
            from_peer: IpAddr::V4(TOR),
            ebgp: true,
            local_pref: None,
            communities: Vec::new(),
        })
        .collect()
}

fn abi_route(entry: &routes::RouteEntry) -> Option<abi::Route> {
    let prefix = abi::Prefix::new(entry.prefix.network(), entry.prefix.prefix_len())?;
    let target = match &entry.target {
        Target::Uplink => abi::RouteTarget::Uplink,
        Target::Host => abi::RouteTarget::Host,
        Target::Blackhole(_) => abi::RouteTarget::Blackhole,
        _ => return None,
    };
    Some(abi::Route { prefix, target })
}

/// The whole path; returns the number of routes in the built generation's input.
fn learned_to_generation(learned: &[LearnedRoute], me: &NodeAddrs) -> usize {
    let own = [IpAddr::V4(Ipv4Addr::new(198, 18, 1, 11))];
    let nodes: HashMap<IpAddr, abi::NodeId> = HashMap::new();
    let mapped: Vec<(IpNet, Target)> = learned
        .iter()
        .filter_map(|l| fastpath_route(l, &[], &own, &nodes))
        .filter_map(|r| {
            let net = IpNet::new(r.route.prefix.addr, r.route.prefix.len).ok()?;
            Some((net, Target::Uplink))
        })
        .collect();
    let all_nodes = BTreeMap::new();
    let entries = routes::compute(&RouteInputs {
        me: "node1",
        my_addrs: me,
        locals: &[],
        affinities: &[],
        pools: &[],
        routable: &|_| false,
        nodes: &all_nodes,
        remote: &[],
        learned: &mapped,
    });
    let tables = abi::Tables {
        routes: entries.iter().filter_map(abi_route).collect(),
        ..abi::Tables::default()
    };
    let bytes = abi::Message::Snapshot {
        generation: abi::Generation(1),
        tables,
    }
    .encode();
    let (message, _) = abi::Message::decode(&bytes).expect("decodes");
    let abi::Message::Snapshot { generation, tables } = message else {
        unreachable!("a snapshot was encoded");
    };
    let built = tortie_pipeline::Generation::build(generation, &tables).expect("builds");
    black_box(&built);
    tables.routes.len()
}

fn bench(c: &mut Criterion) {
    let learned = learned();
    let me = NodeAddrs {
        v4: Some("198.18.1.11/24".parse().unwrap()),
        v6: None,
    };
    let n = learned_to_generation(&learned, &me);
    assert!(
        n >= PREFIXES as usize,
        "every learned prefix is routed ({n})"
    );
    let mut group = c.benchmark_group("bgp_to_fastpath");
    group.sample_size(10);
    group.bench_function("learned_100k_ipv4_to_generation", |b| {
        b.iter(|| learned_to_generation(black_box(&learned), &me))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The three-node lab with routes from BGP only: tortie-control runs with
//! `--routes-from-ipam=false`, so a node reaches another node's block only through the route
//! the node-to-node mesh taught it (as Calico with BIRD does). Workloads on different nodes
//! must reach each other over those learned routes, natively on one segment and IP-in-IP
//! across the router. Needs root.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{Checks, LabGuard, capture, eventually, root_or_skip};
use serde_json::Value;
use xtask::lab::plan::{NODES, ROUTER_NS};
use xtask::probe::{self, PORT, Responder};

/// How long the mesh may take to come up and teach every node the others' blocks.
const MESH: Duration = Duration::from_secs(40);
const QUICK: Duration = Duration::from_millis(300);

#[test]
fn workloads_reach_each_other_over_bgp_learned_routes() {
    if !root_or_skip("node lab with routes from BGP") {
        return;
    }
    let mut checks = Checks::default();
    let mut guard = LabGuard::up_full(true, false, true);
    let mut responders = Vec::new();
    let mut workloads: Vec<(&str, String, IpAddr)> = Vec::new();
    for (name, node) in [("g-a1", "node1"), ("g-a2", "node2"), ("g-a3", "node3")] {
        let addr: IpAddr = guard.add(name, "ns-a", node, "frontend").parse().unwrap();
        let netns = guard.lab().workload(name).unwrap().netns.clone();
        responders.push(Responder::start(&netns, name, PORT).unwrap());
        workloads.push((name, netns, addr));
    }
    let tool = guard.lab().tortiectl();
    let from = workloads[0].1.clone();

    for (to, node, what) in [
        (&workloads[1], NODES[1].name, "node1->node2 native"),
        (&workloads[2], NODES[2].name, "node1->node3 IP-in-IP"),
    ] {
        let (name, _, addr) = to;
        // node1's route to the other workload's block must be one BGP learned.
        let mut last = String::new();
        let learned = eventually(MESH, || {
            let Ok(out) = tool.run(&["node", "routes", "--node", "node1", "-o", "json"]) else {
                return false;
            };
            last = out.clone();
            covering_origins(&out, *addr)
                .iter()
                .any(|(origin, _)| origin == "bgp")
        });
        let origins = covering_origins(&last, *addr);
        checks.record(
            &format!("node1 routes {addr} ({name} on {node}) from BGP"),
            learned.is_some() && !origins.iter().any(|(o, _)| o == "ipam-block"),
            format!("after {learned:?}; routes covering it: {origins:?}"),
        );
        let tcp = eventually(Duration::from_secs(10), || {
            probe::tcp(&from, *addr, PORT, QUICK).unwrap().as_deref() == Some(*name)
        });
        checks.record(
            &format!("TCP {what} over the learned route"),
            tcp.is_some(),
            format!("{tcp:?}"),
        );
    }

    // The node3 leg really is encapsulated: an IP-in-IP packet between the node addresses
    // crosses the router while node1 pings the workload on node3.
    let ipip = format!(
        "ip proto 4 and src host {} and dst host {}",
        NODES[0].addr, NODES[2].addr
    );
    let to = workloads[2].2;
    let seen = capture(ROUTER_NS, "segA", &ipip, || {
        let _ = probe::ping(&from, to);
    });
    checks.record(
        "node1->node3 over the learned route travels IP-in-IP",
        seen.contains("IP"),
        seen,
    );

    drop(responders);
    drop(guard);
    checks.assert_all();
}

/// The origins (and prefixes) of the routes in `json` (`tortiectl node routes -o json`) that
/// cover `addr`.
fn covering_origins(json: &str, addr: IpAddr) -> Vec<(String, String)> {
    let Ok(Value::Array(routes)) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    routes
        .iter()
        .filter_map(|r| {
            let prefix = r.get("prefix")?.as_str()?;
            let origin = r.get("origin")?.as_str()?;
            covers_block(prefix, addr).then(|| (origin.into(), prefix.into()))
        })
        .collect()
}

/// Whether the IPv4 `prefix` ("a.b.c.d/len") is shorter than a host route and contains `addr`.
fn covers_block(prefix: &str, addr: IpAddr) -> bool {
    let (IpAddr::V4(addr), Some((net, len))) = (addr, prefix.split_once('/')) else {
        return false;
    };
    let (Ok(net), Ok(len)) = (net.parse::<std::net::Ipv4Addr>(), len.parse::<u32>()) else {
        return false;
    };
    if len == 0 || len >= 32 {
        return false;
    }
    let mask = u32::MAX << (32 - len);
    u32::from(net) & mask == u32::from(addr) & mask
}

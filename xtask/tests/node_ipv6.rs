//! IPv6 on the working node (`lab up --ipv6`): workloads get an address from the IPv6 pool as
//! well, and IPv6 travels natively (IP-in-IP carries IPv4 only; toward node3 the router knows
//! each workload's `/128` from a static route standing in for BGP). Needs root.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{Checks, LabGuard, eventually, root_or_skip};
use xtask::lab::plan::{NODES, OUTSIDE_ADDR6, OUTSIDE_NS};
use xtask::probe::{self, PORT, Responder};

const QUICK: Duration = Duration::from_millis(300);

/// Brings up an IPv6 lab with workloads `6-a1`, `6-b1` (node1), `6-a2` (node2), `6-b3`
/// (node3), each answering on port 8080; returns the lab, their IPv6 addresses and namespaces.
fn lab() -> (LabGuard, Vec<(String, IpAddr, String)>, Vec<Responder>) {
    let mut guard = LabGuard::up_with(true, true);
    let mut workloads = Vec::new();
    let mut responders = Vec::new();
    for (name, node) in [
        ("6-a1", "node1"),
        ("6-b1", "node1"),
        ("6-a2", "node2"),
        ("6-b3", "node3"),
    ] {
        guard.add(name, "ns-6", node, "any");
        let record = guard.lab().workload(name).unwrap().clone();
        let addr: IpAddr = record
            .address6
            .parse()
            .expect("an IPv6 address from the pool");
        responders.push(Responder::start(&record.netns, name, PORT).unwrap());
        workloads.push((name.to_string(), addr, record.netns));
    }
    (guard, workloads, responders)
}

#[test]
fn ipv6_same_node_across_nodes_and_nat_outgoing() {
    if !root_or_skip("ipv6 lab") {
        return;
    }
    let mut checks = Checks::default();
    let (guard, workloads, responders) = lab();
    let from = &workloads[0].2;
    for (what, index) in [
        ("same node", 1),
        ("node1->node2 native", 2),
        ("node1->node3 native through the router", 3),
    ] {
        let (name, addr, _) = &workloads[index];
        let tcp = eventually(Duration::from_secs(5), || {
            probe::tcp(from, *addr, PORT, QUICK).unwrap().as_deref() == Some(name.as_str())
        });
        checks.record(
            &format!("IPv6 TCP {what}"),
            tcp.is_some(),
            format!("{tcp:?}"),
        );
        let udp = probe::udp(from, *addr, PORT, None, QUICK).unwrap();
        checks.record(
            &format!("IPv6 UDP {what}"),
            udp.as_deref() == Some(name.as_str()),
            format!("{udp:?}"),
        );
        let icmp = probe::ping(from, *addr).unwrap();
        checks.record(&format!("IPv6 ICMP {what}"), icmp, format!("{icmp}"));
    }
    // Health probes over IPv6: node1 reaches its workload through the fastpath (the kernel's
    // route to it goes via fe80::1 on tortie-hostk).
    let (name, addr, _) = &workloads[1];
    let node = NODES[0].namespace;
    let route = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            node,
            "ip",
            "-6",
            "route",
            "get",
            &addr.to_string(),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    checks.record(
        "node1 routes its workload's IPv6 address through tortie-hostk",
        route.contains("dev tortie-hostk"),
        route.trim().to_string(),
    );
    let tcp = eventually(Duration::from_secs(3), || {
        probe::tcp(node, *addr, PORT, QUICK).unwrap().as_deref() == Some(name.as_str())
    });
    checks.record(
        "node1 -> local workload IPv6 TCP",
        tcp.is_some(),
        format!("{tcp:?}"),
    );
    let udp = probe::udp(node, *addr, PORT, None, QUICK).unwrap();
    checks.record(
        "node1 -> local workload IPv6 UDP",
        udp.as_deref() == Some(name.as_str()),
        format!("{udp:?}"),
    );
    let outside = Responder::start(OUTSIDE_NS, "outside", PORT).unwrap();
    let reply = eventually(Duration::from_secs(3), || {
        probe::tcp(from, OUTSIDE_ADDR6.parse().unwrap(), PORT, QUICK)
            .unwrap()
            .is_some()
    });
    let seen: Vec<String> = outside.seen().iter().map(|a| a.ip().to_string()).collect();
    checks.record(
        "IPv6 natOutgoing: outside sees node1's IPv6 address",
        reply.is_some() && !seen.is_empty() && seen.iter().all(|ip| ip == NODES[0].addr6),
        format!("reply {reply:?}, sources {seen:?}"),
    );
    drop((outside, responders, guard));
    checks.assert_all();
}

//! Forwarded traffic through host endpoints (`applyOnForward`), through `explain` and the
//! compiler: normal host endpoint policy never polices forwarded traffic, forward policy
//! does (allowing when there is none), and the host's own connections to its workloads skip
//! their ingress policy.

mod common;
use common::*;
use tortie_calc::compile::{FastpathCompiler, ProgramKind};
use tortie_calc::{CalcGraph, EndpointId, ExplainRequest, Peer, explain::explain};

fn pod_on(node: &str, name: &str, ip: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: {node}-k8s-{name}-eth0\n  namespace: ns1\n  labels: {{app: {name}}}\nspec:\n  orchestrator: k8s\n  node: {node}\n  workload: {name}\n  pod: {name}\n  endpoint: eth0\n  interfaceName: cali{name}\n  ipNetworks: [\"{ip}\"]\n  profiles: [kns.ns1]\n"
    )
}

fn hep(node: &str, ip: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: {node}-eth0\n  labels: {{role: uplink, host: {node}}}\nspec:\n  node: {node}\n  interfaceName: eth0\n  expectedIPs: [\"{ip}\"]\n"
    )
}

/// ns1 with `a`, `b` on node1 and `c` on node2; each node's uplink host endpoint; a normal
/// (not applyOnForward) policy on both host endpoints that denies everything.
fn cluster(extra: &[String]) -> CalcGraph {
    let mut docs = vec![
        namespace("ns1", &[]),
        pod_on("node1", "a", "10.0.1.1/32"),
        pod_on("node1", "b", "10.0.1.2/32"),
        pod_on("node2", "c", "10.0.2.1/32"),
        hep("node1", "198.18.1.11"),
        hep("node2", "198.18.1.12"),
        gnp(
            "host-lockdown",
            "  selector: role == 'uplink'\n  ingress:\n  - action: Deny\n  egress:\n  - action: Deny\n",
        ),
    ];
    docs.extend_from_slice(extra);
    graph(&docs)
}

fn peer(text: &str) -> Peer {
    match text.parse() {
        Ok(ip) => Peer::Ip(ip),
        Err(_) => Peer::parse_endpoint(text).unwrap(),
    }
}

fn json(g: &CalcGraph, from: &str, to: &str, port: u16) -> serde_json::Value {
    let req = ExplainRequest::new(peer(from), peer(to), 6, Some(port));
    serde_json::to_value(explain(g, &req).unwrap()).unwrap()
}

const OUT: &str = "192.0.2.7";

#[test]
fn normal_host_endpoint_policy_does_not_police_forwarded_traffic() {
    let g = cluster(&[]);
    let j = json(&g, "ns1/a", OUT, 80);
    assert_eq!(j["verdict"], "Allow", "{j}");
    assert_eq!(j["forwardEgress"]["hostEndpoint"], "node1-eth0");
    assert_eq!(j["forwardEgress"]["node"], "node1");
    assert_eq!(j["forwardEgress"]["steps"][0]["stage"], "noForwardPolicy");
    assert!(j.get("forwardIngress").is_none(), "{j}");
    let j = json(&g, OUT, "ns1/c", 80);
    assert_eq!(j["verdict"], "Allow", "{j}");
    assert_eq!(j["forwardIngress"]["hostEndpoint"], "node2-eth0");
    // The host endpoint as a peer is the host itself: normal policy.
    let j = json(&g, OUT, "node1-eth0", 80);
    assert_eq!(j["verdict"], "Deny", "{j}");
}

#[test]
fn apply_on_forward_egress_polices_traffic_leaving_the_workloads_node() {
    let g = cluster(&[gnp(
        "fwd-out",
        "  selector: host == 'node1'\n  applyOnForward: true\n  types: [Egress]\n  egress:\n  - action: Deny\n    protocol: TCP\n    destination:\n      ports: [80]\n  - action: Allow\n",
    )]);
    let j = json(&g, "ns1/a", OUT, 80);
    assert_eq!(j["verdict"], "Deny", "{j}");
    assert_eq!(j["egress"]["verdict"], "Allow");
    assert_eq!(j["forwardEgress"]["verdict"], "Deny");
    assert_eq!(j["forwardEgress"]["steps"][0]["class"], "applyOnForward");
    assert_eq!(j["forwardEgress"]["steps"][0]["policy"], "fwd-out");
    assert_eq!(json(&g, "ns1/a", OUT, 443)["verdict"], "Allow");
    // To a workload on another node: out through node1's uplink, in through node2's.
    let j = json(&g, "ns1/a", "ns1/c", 80);
    assert_eq!(j["verdict"], "Deny", "{j}");
    assert_eq!(j["forwardIngress"]["steps"][0]["stage"], "noForwardPolicy");
    // The other way the policy (egress only, node1 only) is not involved.
    assert_eq!(json(&g, "ns1/c", "ns1/a", 80)["verdict"], "Allow");
    // Between workloads of one node nothing is forwarded through a host endpoint.
    let j = json(&g, "ns1/a", "ns1/b", 80);
    assert_eq!(j["verdict"], "Allow", "{j}");
    assert!(j.get("forwardEgress").is_none() && j.get("forwardIngress").is_none());
}

#[test]
fn apply_on_forward_ingress_polices_traffic_reaching_the_workloads_node() {
    let g = cluster(&[gnp(
        "fwd-in",
        "  selector: host == 'node2'\n  applyOnForward: true\n  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [443]\n",
    )]);
    // Selected, no rule matched: the tier's end-of-tier Deny.
    let j = json(&g, OUT, "ns1/c", 80);
    assert_eq!(j["verdict"], "Deny", "{j}");
    assert_eq!(j["forwardIngress"]["steps"][0]["stage"], "tierDefault");
    assert_eq!(json(&g, OUT, "ns1/c", 443)["verdict"], "Allow");
    assert_eq!(json(&g, "ns1/a", "ns1/c", 80)["verdict"], "Deny");
    // node1's workloads are behind another host endpoint.
    assert_eq!(json(&g, OUT, "ns1/a", 80)["verdict"], "Allow");
}

#[test]
fn forward_traffic_every_tier_passed_is_allowed() {
    let g = cluster(&[
        tier("edge", 10.0, "Pass"),
        gnp(
            "edge.maybe",
            "  tier: edge\n  selector: role == 'uplink'\n  applyOnForward: true\n  types: [Egress]\n  egress:\n  - action: Pass\n    protocol: TCP\n",
        ),
    ]);
    let j = json(&g, "ns1/a", OUT, 80);
    assert_eq!(j["verdict"], "Allow", "{j}");
    let steps = j["forwardEgress"]["steps"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["stage"], "forwardPassed");
}

#[test]
fn the_hosts_own_connection_to_its_workload_skips_the_workloads_ingress() {
    let g = cluster(&[np(
        "ns1",
        "isolate",
        "  selector: all()\n  types: [Ingress]\n",
    )]);
    // From node1 (its host endpoint stands for the host) to b on node1: not policed.
    let j = json(&g, "node1-eth0", "ns1/b", 8080);
    assert_eq!(j["ingress"]["steps"][0]["stage"], "hostOriginated", "{j}");
    assert_eq!(j["ingress"]["verdict"], "Allow");
    // node1's own egress policy (host-lockdown) still applies to the host's traffic.
    assert_eq!(j["egress"]["verdict"], "Deny");
    // From node2's host to a's on node1: forwarded in through node1's uplink and a's
    // ingress (isolated) denies.
    let j = json(&g, "node2-eth0", "ns1/a", 8080);
    assert_eq!(j["ingress"]["verdict"], "Deny", "{j}");
    assert_eq!(j["forwardIngress"]["hostEndpoint"], "node1-eth0");
}

#[test]
fn text_names_the_forwarding_host_endpoint() {
    let g = cluster(&[]);
    let req = ExplainRequest::new(peer("ns1/a"), peer(OUT), 6, Some(80));
    let text = explain(&g, &req).unwrap().to_text();
    assert!(
        text.contains("Forwarded out through host endpoint node1-eth0 (node node1, applyOnForward) is allowed: no applyOnForward policy selects the host endpoint"),
        "{text}"
    );
}

#[test]
fn forward_programs_are_compiled_only_when_some_policy_applies() {
    let mut g = cluster(&[gnp(
        "fwd-out",
        "  selector: host == 'node1'\n  applyOnForward: true\n  types: [Egress]\n  egress:\n  - action: Allow\n",
    )]);
    let events = g.flush();
    let mut compiler = FastpathCompiler::new();
    let ops = compiler.delta(&g, &events);
    let upserted: Vec<u32> = ops
        .iter()
        .filter_map(|op| match op {
            tortie_abi::Op::UpsertProgram(p) => Some(p.id.0),
            _ => None,
        })
        .collect();
    let node1 = EndpointId::Host {
        name: "node1-eth0".into(),
    };
    let node2 = EndpointId::Host {
        name: "node2-eth0".into(),
    };
    let plan1 = g.plan(&node1).unwrap();
    let plan2 = g.plan(&node2).unwrap();
    assert!(ProgramKind::ForwardEgress.needed(&plan1));
    assert!(!ProgramKind::ForwardIngress.needed(&plan1));
    assert!(!ProgramKind::ForwardEgress.needed(&plan2));
    let fwd = compiler.program_id(&node1, ProgramKind::ForwardEgress).0;
    assert!(upserted.contains(&fwd));
    // The forward program: the policy's tier, then the allow-everything end.
    let program = ops
        .iter()
        .find_map(|op| match op {
            tortie_abi::Op::UpsertProgram(p) if p.id.0 == fwd => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(program.tiers.len(), 1);
    assert_eq!(program.profiles.len(), 1);
    assert_eq!(
        program.profiles[0].rules[0].action,
        tortie_abi::Action::Allow
    );
    // Host endpoints' normal programs do not include applyOnForward-only concerns: the
    // normal egress program of node1 still ends in the lockdown policy's Deny.
    let normal = compiler.program_id(&node1, ProgramKind::Egress).0;
    assert!(upserted.contains(&normal));
}

fn felix(name: &str, action: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: {name}\nspec:\n  defaultEndpointToHostAction: {action}\n"
    )
}

#[test]
fn a_workloads_connection_to_its_own_host_meets_default_endpoint_to_host_action() {
    // Unset: Calico's default, Drop (the host endpoint's own policy is not on the path).
    let g = cluster(&[]);
    let j = json(&g, "ns1/a", "node1-eth0", 8080);
    assert_eq!(j["verdict"], "Deny", "{j}");
    assert_eq!(j["ingress"]["steps"][0]["stage"], "endpointToHost");
    assert!(j.get("forwardEgress").is_none(), "{j}");
    // Accept (and Return) allow although host-lockdown would deny.
    let g = cluster(&[felix("default", "Accept")]);
    assert_eq!(json(&g, "ns1/a", "node1-eth0", 8080)["verdict"], "Allow");
    let g = cluster(&[felix("default", "Return")]);
    assert_eq!(json(&g, "ns1/a", "node1-eth0", 8080)["verdict"], "Allow");
    // A node's own FelixConfiguration wins over the default.
    let g = cluster(&[felix("default", "Accept"), felix("node.node1", "Drop")]);
    assert_eq!(json(&g, "ns1/a", "node1-eth0", 8080)["verdict"], "Deny");
    assert_eq!(json(&g, "ns1/c", "node2-eth0", 8080)["verdict"], "Allow");
    // Another node's host: forwarded out of node1, then that host's normal policy.
    let g = cluster(&[felix("default", "Accept")]);
    let j = json(&g, "ns1/a", "node2-eth0", 8080);
    assert_eq!(j["verdict"], "Deny", "{j}");
    assert_eq!(j["forwardEgress"]["hostEndpoint"], "node1-eth0");
    assert_eq!(j["ingress"]["steps"][0]["policy"], "host-lockdown");
}

/// A connection that travels IP-in-IP (CrossSubnet pool, nodes on different subnets) meets
/// neither node's uplink host endpoint programs, as in the dataplane (and in Calico, where it
/// leaves and arrives through `tunl0`); the same connection between nodes on one subnet is
/// native and meets the forward egress and ingress policies.
#[test]
fn ip_in_ip_connections_skip_the_uplink_forward_programs() {
    let node = |name: &str, cidr: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: {name}\nspec:\n  bgp:\n    ipv4Address: {cidr}\n"
        )
    };
    let docs = vec![
        namespace("ns1", &[]),
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool\nspec:\n  cidr: 10.0.0.0/16\n  ipipMode: CrossSubnet\n  natOutgoing: true\n".to_string(),
        node("node1", "198.18.1.11/24"),
        node("node2", "198.18.1.12/24"),
        node("node3", "198.18.2.13/24"),
        pod_on("node1", "a", "10.0.1.1/32"),
        pod_on("node2", "c", "10.0.2.1/32"),
        pod_on("node3", "d", "10.0.3.1/32"),
        hep("node1", "198.18.1.11"),
        hep("node2", "198.18.1.12"),
        hep("node3", "198.18.2.13"),
        gnp(
            "fwd-in-deny",
            "  selector: role == 'uplink' && host != 'node1'\n  applyOnForward: true\n  types: [Ingress]\n  ingress:\n  - action: Deny\n",
        ),
        gnp(
            "fwd-out-deny-81",
            "  selector: host == 'node1'\n  applyOnForward: true\n  types: [Egress]\n  egress:\n  - action: Deny\n    protocol: TCP\n    destination:\n      ports: [81]\n  - action: Allow\n",
        ),
    ];
    let resources = resources(&docs);
    let ask_port = |to: &str, port: u16| {
        let req = ExplainRequest::new(peer("ns1/a"), peer(to), 6, Some(port));
        serde_json::to_value(tortie_calc::explain_on_resources(&resources, &req).unwrap()).unwrap()
    };
    let ask = |to: &str| ask_port(to, 80);
    let native = ask("ns1/c");
    assert_eq!(native["verdict"], "Deny", "{native}");
    assert_eq!(native["forwardIngress"]["hostEndpoint"], "node2-eth0");
    let tunnelled = ask("ns1/d");
    assert_eq!(tunnelled["verdict"], "Allow", "{tunnelled}");
    assert!(tunnelled.get("forwardIngress").is_none(), "{tunnelled}");
    // Leaving node1: the forward egress policy polices the native path only.
    let native = ask_port("ns1/c", 81);
    assert_eq!(native["forwardEgress"]["verdict"], "Deny", "{native}");
    let tunnelled = ask_port("ns1/d", 81);
    assert_eq!(tunnelled["verdict"], "Allow", "{tunnelled}");
    assert!(tunnelled.get("forwardEgress").is_none(), "{tunnelled}");
}

//! What explain says is what the dataplane does: for random endpoints, policies and packets,
//! the compiled tables evaluated by the fastpath's program evaluator (over the classifier)
//! agree with the explain engine, direction by direction: workloads' normal programs (with a
//! user profile whose rules may Pass) and a host endpoint's `applyOnForward` programs.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use tortie_calc::compile::{FastpathCompiler, ProgramKind};
use tortie_calc::eval::{Packet, Verdict, evaluate, evaluate_forward};
use tortie_calc::{CalcGraph, Direction, EndpointId};
use tortie_classifier as cls;
use tortie_model::types::*;
use tortie_model::{ObjectMeta, Resource};
use tortie_pipeline::compile::CompiledProgram;

const SELECTORS: [&str; 5] = [
    "all()",
    "app == 'x'",
    "app == 'y'",
    "has(tier)",
    "!has(app)",
];

fn endpoint(slot: u8, app: u8, tier: bool, profiles: bool) -> Resource {
    let ns = if slot.is_multiple_of(2) { "n0" } else { "n1" };
    let mut meta = ObjectMeta::namespaced(ns, &format!("node1-k8s-p{slot}-eth0"));
    match app % 3 {
        1 => {
            meta.labels.insert("app".into(), "x".into());
        }
        2 => {
            meta.labels.insert("app".into(), "y".into());
        }
        _ => {}
    }
    if tier {
        meta.labels.insert("tier".into(), "fe".into());
    }
    let spec = WorkloadEndpointSpec {
        orchestrator: "k8s".into(),
        node: "node1".into(),
        workload: format!("p{slot}"),
        endpoint: "eth0".into(),
        ip_networks: vec![Cidr(format!("10.0.0.{}/32", slot + 1).parse().unwrap())],
        profiles: match (profiles, slot % 2) {
            (false, _) => vec![],
            (true, 0) => vec!["pp".into(), format!("kns.{ns}")],
            (true, _) => vec![format!("kns.{ns}")],
        },
        ports: vec![WorkloadEndpointPort {
            name: "http".into(),
            protocol: if slot.is_multiple_of(3) {
                Protocol::Udp
            } else {
                Protocol::Tcp
            },
            port: 8000 + u16::from(slot % 2),
            host_port: None,
            host_ip: None,
        }],
        ..Default::default()
    };
    Resource::WorkloadEndpoint(tortie_model::WorkloadEndpoint::new(meta, spec))
}

fn rule(bits: u32) -> Rule {
    let mut r = Rule::new(match bits % 4 {
        0 => Action::Allow,
        1 => Action::Deny,
        2 => Action::Pass,
        _ => Action::Log,
    });
    let b = bits >> 2;
    match b % 10 {
        0 => r.source.selector = SELECTORS[(b >> 3) as usize % 5].into(),
        1 => r.source.not_selector = SELECTORS[(b >> 3) as usize % 5].into(),
        2 => {
            r.protocol = Some(Protocol::Tcp);
            r.destination.ports = vec![Port::Number(80), Port::range(8000, 8001)];
        }
        3 => r.destination.ports = vec![Port::Named("http".into())],
        4 => {
            r.protocol = Some(Protocol::Icmp);
            r.icmp = Some(IcmpFields {
                icmp_type: Some(8),
                code: if b & 8 == 0 { None } else { Some(0) },
            });
        }
        5 => r.not_protocol = Some(Protocol::Udp),
        6 => r.source.not_nets = vec![Cidr("10.0.0.0/30".parse().unwrap())],
        8 => {
            r.protocol = Some(if b & 8 == 0 {
                Protocol::Tcp
            } else {
                Protocol::Udp
            });
            r.destination.not_ports = vec![Port::Named("http".into()), Port::Number(8001)];
        }
        9 => {
            r.protocol = Some(Protocol::Tcp);
            r.source.not_ports = vec![Port::Named("http".into())];
            if b & 8 != 0 {
                r.source.ports = vec![Port::range(1, 8000)];
            }
        }
        _ => {
            r.protocol = Some(Protocol::Udp);
            r.destination.not_ports = vec![Port::Number(53)];
            r.ip_version = Some(if b & 8 == 0 {
                IpVersion::V4
            } else {
                IpVersion::V6
            });
        }
    }
    r
}

/// The host endpoint of node1's uplink, labelled like a workload would be.
fn host_endpoint(app: u8) -> Resource {
    let mut meta = ObjectMeta::named("node1-eth0");
    if app % 3 == 1 {
        meta.labels.insert("app".into(), "x".into());
    }
    if app.is_multiple_of(2) {
        meta.labels.insert("tier".into(), "fe".into());
    }
    Resource::HostEndpoint(tortie_model::HostEndpoint::new(
        meta,
        HostEndpointSpec {
            node: "node1".into(),
            interface_name: "eth0".into(),
            expected_ips: vec![Ipv4Addr::new(10, 0, 0, 100).into()],
            ..Default::default()
        },
    ))
}

/// A user profile whose rules may Pass (which ends the profile).
fn profile(rules: Vec<u32>) -> Resource {
    let rules: Vec<Rule> = rules.into_iter().map(rule).collect();
    Resource::Profile(tortie_model::Profile::new(
        ObjectMeta::named("pp"),
        ProfileSpec {
            ingress: rules.clone(),
            egress: rules,
            ..Default::default()
        },
    ))
}

fn policy(slot: u8, sel: u8, order: u8, tiered: bool, forward: bool, rules: Vec<u32>) -> Resource {
    let rules: Vec<Rule> = rules.into_iter().map(rule).collect();
    let spec = GlobalNetworkPolicySpec {
        tier: if tiered { "t1".into() } else { String::new() },
        order: Some(f64::from(order % 3)),
        selector: SELECTORS[usize::from(sel) % 5].into(),
        types: vec![PolicyType::Ingress, PolicyType::Egress],
        ingress: rules.clone(),
        egress: rules,
        apply_on_forward: forward,
        ..Default::default()
    };
    Resource::GlobalNetworkPolicy(tortie_model::GlobalNetworkPolicy::new(
        ObjectMeta::named(&format!("g{slot}")),
        spec,
    ))
}

fn cluster() -> impl Strategy<Value = Vec<Resource>> {
    let eps = prop::collection::vec((any::<u8>(), any::<bool>(), prop::bool::weighted(0.8)), 6);
    let pols = prop::collection::vec(
        (
            any::<u8>(),
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(any::<u32>(), 0..4),
        ),
        0..5,
    );
    let extras = (any::<u8>(), prop::collection::vec(any::<u32>(), 0..4));
    (eps, pols, any::<bool>(), extras).prop_map(|(eps, pols, pass, (hep, pp))| {
        let mut out = vec![Resource::Tier(tortie_model::Tier::new(
            ObjectMeta::named("t1"),
            TierSpec {
                order: Some(5.0),
                default_action: Some(if pass {
                    TierAction::Pass
                } else {
                    TierAction::Deny
                }),
            },
        ))];
        for ns in ["n0", "n1"] {
            out.push(Resource::KubernetesNamespace(
                tortie_model::KubernetesNamespace::new(ObjectMeta::named(ns), Default::default()),
            ));
        }
        for (slot, (app, tier, profiles)) in eps.into_iter().enumerate() {
            out.push(endpoint(slot as u8, app, tier, profiles));
        }
        for (slot, (sel, order, tiered, forward, rules)) in pols.into_iter().enumerate() {
            out.push(policy(slot as u8, sel, order, tiered, forward, rules));
        }
        out.push(host_endpoint(hep));
        out.push(profile(pp));
        out
    })
}

fn packet_strategy() -> impl Strategy<Value = (u8, u8, u8, u16, u16, u8)> {
    (
        0u8..7,
        0u8..6,
        prop::sample::select(vec![6u8, 17, 1, 47]),
        prop::sample::select(vec![80u16, 8000, 8001, 53, 443]),
        prop::sample::select(vec![1000u16, 80, 8000, 8001]),
        0u8..10,
    )
}

fn key(p: &Packet) -> cls::Key {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (p.src, p.dst) else {
        unreachable!()
    };
    let (sp, dp) = if matches!(p.protocol, 1 | 58) {
        (
            u16::from(p.icmp_type.unwrap_or(0)),
            u16::from(p.icmp_code.unwrap_or(0)),
        )
    } else {
        (p.src_port.unwrap_or(0), p.dst_port.unwrap_or(0))
    };
    cls::Key::V4(cls::Key4 {
        src: u32::from(s),
        dst: u32::from(d),
        src_port: sp,
        dst_port: dp,
        proto: p.protocol,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn compiled_tables_agree_with_explain(resources in cluster(), packets in prop::collection::vec(packet_strategy(), 1..24)) {
        let mut graph = CalcGraph::from_resources(&resources);
        let events = graph.flush();
        let mut compiler = FastpathCompiler::new();
        // Tables from the delta stream the graph emitted (a first flush is a full delta).
        let ops = compiler.delta(&graph, &events);
        let mut sets = cls::IpSetTable::new();
        let mut programs: BTreeMap<u32, CompiledProgram> = BTreeMap::new();
        for op in ops {
            match op {
                tortie_abi::Op::UpsertIpSet(set) => {
                    let nets = set.members.iter().map(|p| ipnet::IpNet::new(p.addr, p.len).unwrap());
                    sets.upsert(cls::SetId(set.id.0), cls::IpSet::from_nets(nets));
                }
                tortie_abi::Op::UpsertProgram(p) => {
                    programs.insert(p.id.0, CompiledProgram::compile(&p, |r| r.0).unwrap());
                }
                other => panic!("unexpected op {other:?}"),
            }
        }
        for (src_slot, dst_slot, protocol, port, sport, icmp) in packets {
            let src_ip: IpAddr = if src_slot == 6 { Ipv4Addr::new(192, 0, 2, 1).into() } else { Ipv4Addr::new(10, 0, 0, src_slot + 1).into() };
            let dst_ep = graph
                .endpoints()
                .filter(|e| matches!(e.id, EndpointId::Workload { .. }))
                .nth(usize::from(dst_slot))
                .unwrap()
                .clone();
            let packet = Packet {
                src: src_ip,
                dst: dst_ep.addrs[0].addr(),
                protocol,
                src_port: matches!(protocol, 6 | 17).then_some(sport),
                dst_port: matches!(protocol, 6 | 17).then_some(port),
                icmp_type: (protocol == 1).then_some(if icmp < 5 { 8 } else { 0 }),
                icmp_code: (protocol == 1).then_some(icmp % 2),
            };
            let mut checks = vec![(dst_ep.id.clone(), Direction::Ingress, ProgramKind::Ingress)];
            if let Some(src_ep) = graph.endpoints().find(|e| e.addrs[0].addr() == src_ip) {
                checks.push((src_ep.id.clone(), Direction::Egress, ProgramKind::Egress));
            }
            for (ep, direction, kind) in checks {
                let plan = graph.plan(&ep).unwrap();
                let expected = evaluate(&graph, &plan, direction, &packet).verdict;
                let pid = compiler.program_id(&ep, kind).0;
                let decision = programs[&pid].evaluate(&key(&packet), &sets, |_| {});
                let got = if decision.allow { Verdict::Allow } else { Verdict::Deny };
                prop_assert_eq!(got, expected, "{:?} {:?} {:?}", ep, direction, packet);
            }
            // The same packet forwarded through the host endpoint, both ways: its forward
            // program (absent when no applyOnForward policy applies, which allows).
            let hep = EndpointId::Host { name: "node1-eth0".into() };
            let plan = graph.plan(&hep).unwrap();
            for (direction, kind) in [
                (Direction::Ingress, ProgramKind::ForwardIngress),
                (Direction::Egress, ProgramKind::ForwardEgress),
            ] {
                let expected = evaluate_forward(&graph, &plan, direction, &packet).verdict;
                let got = if kind.needed(&plan) {
                    let pid = compiler.program_id(&hep, kind).0;
                    let decision = programs[&pid].evaluate(&key(&packet), &sets, |_| {});
                    if decision.allow { Verdict::Allow } else { Verdict::Deny }
                } else {
                    Verdict::Allow
                };
                prop_assert_eq!(got, expected, "forward {:?} {:?}", direction, packet);
            }
        }
    }
}

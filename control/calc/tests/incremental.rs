//! The calc-graph contract, checked with random update sequences: whatever order, splitting
//! or squashing of updates leads to a final state, the dataplane view built by applying the
//! emitted events equals the view a fresh graph emits for that final state; and every flush
//! respects dependency order (nothing referenced before it exists or after it is removed).

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use tortie_calc::{CalcEvent, CalcGraph, EndpointPlan, IpSetId, IpSetMember, PolicyId};
use tortie_model::types::*;
use tortie_model::{ObjectMeta, Resource, ResourceKey};

const SELECTORS: [&str; 6] = [
    "all()",
    "app == 'x'",
    "app == 'y'",
    "has(tier)",
    "tier == 'fe' && app != 'x'",
    "!has(app)",
];
const NAMESPACES: [&str; 2] = ["n0", "n1"];

fn labels(app: u8, tier: u8) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    match app % 3 {
        0 => {}
        1 => {
            map.insert("app".to_string(), "x".to_string());
        }
        _ => {
            map.insert("app".to_string(), "y".to_string());
        }
    }
    if tier % 2 == 1 {
        map.insert("tier".to_string(), "fe".to_string());
    }
    map
}

fn endpoint(slot: u8, app: u8, tier: u8, ip: u8, port: bool) -> Resource {
    let ns = NAMESPACES[usize::from(slot % 2)];
    let name = format!("node1-k8s-p{slot}-eth0");
    let mut meta = ObjectMeta::namespaced(ns, &name);
    meta.labels = labels(app, tier);
    let spec = WorkloadEndpointSpec {
        orchestrator: "k8s".into(),
        node: "node1".into(),
        workload: format!("p{slot}"),
        pod: format!("p{slot}"),
        endpoint: "eth0".into(),
        ip_networks: vec![Cidr(format!("10.0.0.{}/32", ip % 8).parse().unwrap())],
        profiles: vec![format!("kns.{ns}")],
        ports: if port {
            vec![WorkloadEndpointPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 8080,
                host_port: None,
                host_ip: None,
            }]
        } else {
            vec![]
        },
        ..Default::default()
    };
    Resource::WorkloadEndpoint(tortie_model::WorkloadEndpoint::new(meta, spec))
}

fn rule(kind: u8, sel: u8) -> Rule {
    let mut rule = Rule::new(match kind % 4 {
        0 => Action::Allow,
        1 => Action::Deny,
        2 => Action::Pass,
        _ => Action::Log,
    });
    let selector = SELECTORS[usize::from(sel) % SELECTORS.len()].to_string();
    match (kind / 4) % 4 {
        0 => rule.source.selector = selector,
        1 => rule.source.not_selector = selector,
        2 => rule.destination.ports = vec![Port::Named("http".into())],
        _ => {
            rule.source.namespace_selector = "team == 'a'".into();
            rule.source.selector = selector;
        }
    }
    rule
}

fn policy(slot: u8, sel: u8, order: u8, tier: u8, rules: Vec<(u8, u8)>) -> Resource {
    let rules: Vec<Rule> = rules.into_iter().map(|(k, s)| rule(k, s)).collect();
    let tier = if tier.is_multiple_of(2) {
        "default".to_string()
    } else {
        "t1".to_string()
    };
    if slot.is_multiple_of(2) {
        let spec = NetworkPolicySpec {
            tier,
            order: Some(f64::from(order % 3)),
            selector: SELECTORS[usize::from(sel) % SELECTORS.len()].into(),
            types: vec![PolicyType::Ingress],
            ingress: rules,
            ..Default::default()
        };
        Resource::NetworkPolicy(tortie_model::NetworkPolicy::new(
            ObjectMeta::namespaced(NAMESPACES[usize::from(slot / 2 % 2)], &format!("pol{slot}")),
            spec,
        ))
    } else {
        let spec = GlobalNetworkPolicySpec {
            tier,
            order: Some(f64::from(order % 3)),
            selector: SELECTORS[usize::from(sel) % SELECTORS.len()].into(),
            types: vec![PolicyType::Ingress, PolicyType::Egress],
            egress: rules.clone(),
            ingress: rules,
            ..Default::default()
        };
        Resource::GlobalNetworkPolicy(tortie_model::GlobalNetworkPolicy::new(
            ObjectMeta::named(&format!("gpol{slot}")),
            spec,
        ))
    }
}

fn namespace(slot: u8, team: u8) -> Resource {
    let mut meta = ObjectMeta::named(NAMESPACES[usize::from(slot % 2)]);
    if team.is_multiple_of(2) {
        meta.labels.insert("team".into(), "a".into());
    }
    Resource::KubernetesNamespace(tortie_model::KubernetesNamespace::new(
        meta,
        Default::default(),
    ))
}

fn tier(order: u8, pass: bool) -> Resource {
    Resource::Tier(tortie_model::Tier::new(
        ObjectMeta::named("t1"),
        TierSpec {
            order: Some(f64::from(order)),
            default_action: Some(if pass {
                TierAction::Pass
            } else {
                TierAction::Deny
            }),
        },
    ))
}

fn netset(slot: u8, app: u8, net: u8) -> Resource {
    let mut meta = ObjectMeta::named(&format!("gns{}", slot % 2));
    meta.labels = labels(app, 0);
    Resource::GlobalNetworkSet(tortie_model::NetworkSet::new(
        meta,
        NetworkSetSpec {
            nets: vec![Cidr(format!("192.168.{}.0/24", net % 4).parse().unwrap())],
        },
    ))
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(Box<Resource>),
    Delete(ResourceKey),
}

fn resource_strategy() -> impl Strategy<Value = Resource> {
    prop_oneof![
        4 => (0u8..6, any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(s, a, t, i, p)| endpoint(s, a, t, i, p)),
        4 => (0u8..4, any::<u8>(), any::<u8>(), any::<u8>(), prop::collection::vec((any::<u8>(), any::<u8>()), 0..4))
            .prop_map(|(s, sel, o, t, r)| policy(s, sel, o, t, r)),
        1 => (0u8..2, any::<u8>()).prop_map(|(s, t)| namespace(s, t)),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(o, p)| tier(o, p)),
        1 => (0u8..2, any::<u8>(), any::<u8>()).prop_map(|(s, a, n)| netset(s, a, n)),
    ]
}

fn op_strategy() -> impl Strategy<Value = (Op, bool)> {
    (
        prop_oneof![
            5 => resource_strategy().prop_map(|r| Op::Upsert(Box::new(r))),
            1 => resource_strategy().prop_map(|r| Op::Delete(r.key())),
        ],
        any::<bool>(),
    )
}

/// The dataplane as the events build it.
#[derive(Debug, Default, PartialEq)]
struct Mirror {
    sets: BTreeMap<IpSetId, BTreeSet<IpSetMember>>,
    policies: BTreeMap<PolicyId, String>,
    profiles: BTreeMap<String, String>,
    endpoints: BTreeMap<String, EndpointPlan>,
}

fn policy_sets(json: &serde_json::Value, out: &mut Vec<String>) {
    match json {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("set" | "not_set", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("named_ports" | "not_named_ports", serde_json::Value::Array(a)) => {
                        out.extend(a.iter().filter_map(|s| s.as_str().map(String::from)))
                    }
                    _ => policy_sets(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| policy_sets(v, out)),
        _ => {}
    }
}

impl Mirror {
    fn apply(&mut self, events: Vec<CalcEvent>) {
        for event in events {
            match event {
                CalcEvent::IpSetAdded { id, members } => {
                    assert!(
                        self.sets
                            .insert(id, members.into_iter().collect())
                            .is_none(),
                        "set added twice"
                    );
                }
                CalcEvent::IpSetDelta { id, added, removed } => {
                    let set = self.sets.get_mut(&id).expect("delta for unknown set");
                    for m in removed {
                        assert!(set.remove(&m), "removed a member that was not there");
                    }
                    for m in added {
                        assert!(set.insert(m), "added a member twice");
                    }
                }
                CalcEvent::IpSetRemoved(id) => {
                    assert!(self.sets.remove(&id).is_some());
                    for (owner, body) in self
                        .policies
                        .iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .chain(self.profiles.iter().map(|(k, v)| (k.clone(), v)))
                    {
                        let mut used = Vec::new();
                        policy_sets(&serde_json::from_str(body).unwrap(), &mut used);
                        assert!(
                            !used.iter().any(|u| *u == *id.0),
                            "set {id} removed while {owner} uses it"
                        );
                    }
                }
                CalcEvent::PolicyUpdated(p) => {
                    let json = serde_json::to_value(&*p).unwrap();
                    let mut used = Vec::new();
                    policy_sets(&json, &mut used);
                    for s in used {
                        assert!(
                            self.sets.contains_key(&IpSetId(s.as_str().into())),
                            "policy before its set {s}"
                        );
                    }
                    self.policies.insert(p.id.clone(), json.to_string());
                }
                CalcEvent::ProfileUpdated(p) => {
                    let json = serde_json::to_value(&*p).unwrap();
                    self.profiles.insert(p.name.clone(), json.to_string());
                }
                CalcEvent::EndpointUpdated(plan) => {
                    for tier in plan.ingress.normal.iter().chain(plan.egress.normal.iter()) {
                        for p in &tier.policies {
                            assert!(
                                self.policies.contains_key(p),
                                "endpoint before its policy {p}"
                            );
                        }
                    }
                    self.endpoints.insert(plan.id.to_string(), (*plan).clone());
                }
                CalcEvent::EndpointRemoved(id) => {
                    assert!(self.endpoints.remove(&id.to_string()).is_some());
                }
                CalcEvent::ProfileRemoved(name) => {
                    assert!(self.profiles.remove(&name).is_some());
                }
                CalcEvent::PolicyRemoved(id) => {
                    for plan in self.endpoints.values() {
                        for tier in plan.ingress.normal.iter().chain(plan.egress.normal.iter()) {
                            assert!(
                                !tier.policies.contains(&id),
                                "policy {id} removed while used"
                            );
                        }
                    }
                    assert!(self.policies.remove(&id).is_some());
                }
            }
        }
    }
}

fn from_scratch(resources: &[Resource]) -> Mirror {
    let mut graph = CalcGraph::from_resources(resources);
    let mut mirror = Mirror::default();
    mirror.apply(graph.flush());
    mirror
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_from_scratch(ops in prop::collection::vec(op_strategy(), 1..40)) {
        let mut graph = CalcGraph::new();
        let mut mirror = Mirror::default();
        let mut state: BTreeMap<ResourceKey, Resource> = BTreeMap::new();
        for (op, flush) in &ops {
            match op {
                Op::Upsert(r) => {
                    graph.upsert(r);
                    state.insert(r.key(), (**r).clone());
                }
                Op::Delete(k) => {
                    graph.delete(k);
                    state.remove(k);
                }
            }
            if *flush {
                mirror.apply(graph.flush());
            }
        }
        mirror.apply(graph.flush());
        let finals: Vec<Resource> = state.values().cloned().collect();
        let scratch = from_scratch(&finals);
        prop_assert_eq!(&mirror, &scratch);
        // Expander: the same final resources in reverse order.
        let mut reversed = finals.clone();
        reversed.reverse();
        prop_assert_eq!(&from_scratch(&reversed), &scratch);
        // A second flush with nothing changed emits nothing.
        prop_assert!(graph.flush().is_empty());
    }
}

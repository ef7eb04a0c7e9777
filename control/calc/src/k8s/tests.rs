use super::*;
use tortie_model::{Resource, parse_documents};

fn convert(yaml: &str) -> NetworkPolicy {
    let text = format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: web\n  namespace: shop\nspec:\n{yaml}"
    );
    let resources = parse_documents(&text, "knp.yaml").unwrap_or_else(|e| panic!("{e}"));
    let Resource::KubernetesNetworkPolicy(knp) = &resources[0] else {
        panic!("not a Kubernetes policy")
    };
    convert_network_policy(knp)
}

fn to_json(policy: &NetworkPolicy) -> serde_json::Value {
    serde_json::to_value(Resource::NetworkPolicy(policy.clone())).unwrap()
}

#[test]
fn name_order_tier_and_pod_selector() {
    let p = convert(
        "  podSelector:\n    matchLabels: {role: db, app: shop}\n    matchExpressions:\n    - {key: env, operator: In, values: [prod, stage]}\n    - {key: canary, operator: DoesNotExist}\n",
    );
    assert_eq!(p.metadata.name, "knp.default.web");
    assert_eq!(p.metadata.namespace, "shop");
    assert_eq!(p.spec.order, Some(1000.0));
    assert_eq!(p.spec.tier, "default");
    assert_eq!(
        p.spec.selector,
        "projectcalico.org/orchestrator == 'k8s' && app == 'shop' && role == 'db' && env in { 'prod', 'stage' } && ! has(canary)"
    );
    assert_eq!(p.spec.types, vec![PolicyType::Ingress]);
}

#[test]
fn empty_pod_selector_selects_all_pods_and_types_are_kept() {
    let p = convert("  podSelector: {}\n  policyTypes: [Ingress, Egress]\n");
    assert_eq!(p.spec.selector, "projectcalico.org/orchestrator == 'k8s'");
    assert_eq!(p.spec.types, vec![PolicyType::Ingress, PolicyType::Egress]);
    assert!(p.spec.ingress.is_empty() && p.spec.egress.is_empty());
}

#[test]
fn ports_grouped_by_protocol_merged_with_end_port_and_default_tcp() {
    let p = convert(
        "  podSelector: {}\n  ingress:\n  - ports:\n    - {port: 80}\n    - {protocol: TCP, port: 81}\n    - {protocol: UDP, port: 53}\n    - {protocol: TCP, port: 8000, endPort: 8080}\n    - {protocol: TCP, port: 8081}\n    - {protocol: TCP, port: metrics}\n",
    );
    let json = to_json(&p);
    assert_eq!(
        json["spec"]["ingress"],
        serde_json::json!([
            {"action": "Allow", "protocol": "TCP", "destination": {"ports": ["80:81", "8000:8081", "metrics"]}},
            {"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}
        ])
    );
}

#[test]
fn ip_block_with_except_and_peer_per_rule() {
    let p = convert(
        "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}\n    - podSelector: {matchLabels: {app: fe}}\n    ports:\n    - {protocol: TCP, port: 443}\n",
    );
    let json = to_json(&p);
    assert_eq!(
        json["spec"]["ingress"],
        serde_json::json!([
            {"action": "Allow", "protocol": "TCP", "source": {"nets": ["172.17.0.0/16"], "notNets": ["172.17.1.0/24"]}, "destination": {"ports": [443]}},
            {"action": "Allow", "protocol": "TCP", "source": {"selector": "projectcalico.org/orchestrator == 'k8s' && app == 'fe'"}, "destination": {"ports": [443]}}
        ])
    );
}

#[test]
fn namespace_selectors_empty_means_all() {
    let p = convert(
        "  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector: {}\n    - namespaceSelector: {matchLabels: {team: a}}\n      podSelector: {matchLabels: {app: x}}\n",
    );
    let rules = &p.spec.ingress;
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].source.namespace_selector, "all()");
    assert_eq!(
        rules[0].source.selector,
        "projectcalico.org/orchestrator == 'k8s'"
    );
    assert_eq!(rules[1].source.namespace_selector, "team == 'a'");
    assert_eq!(
        rules[1].source.selector,
        "projectcalico.org/orchestrator == 'k8s' && app == 'x'"
    );
    assert_eq!(rules[0].protocol, None);
}

#[test]
fn egress_puts_peer_and_ports_in_destination() {
    let p = convert(
        "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/8}\n    ports:\n    - {protocol: UDP, port: 53}\n  - {}\n",
    );
    let json = to_json(&p);
    assert_eq!(
        json["spec"]["egress"],
        serde_json::json!([
            {"action": "Allow", "protocol": "UDP", "destination": {"nets": ["10.0.0.0/8"], "ports": [53]}},
            {"action": "Allow"}
        ])
    );
    assert!(p.spec.ingress.is_empty());
}

#[test]
fn port_entry_without_port_opens_the_protocol() {
    let p = convert(
        "  podSelector: {}\n  ingress:\n  - ports:\n    - {protocol: UDP}\n    - {protocol: UDP, port: 53}\n",
    );
    assert_eq!(p.spec.ingress.len(), 1);
    assert_eq!(p.spec.ingress[0].protocol, Some(Protocol::Udp));
    assert!(p.spec.ingress[0].destination.ports.is_empty());
}

#[test]
fn namespace_profile_has_pcns_labels_and_allows_all() {
    let ns = KubernetesNamespace::new(
        ObjectMeta {
            labels: [("team".to_string(), "a".to_string())].into(),
            ..ObjectMeta::named("shop")
        },
        Default::default(),
    );
    let (name, spec) = namespace_profile(&ns);
    assert_eq!(name, "kns.shop");
    assert_eq!(
        spec.labels_to_apply,
        BTreeMap::from([
            (
                "pcns.projectcalico.org/name".to_string(),
                "shop".to_string()
            ),
            ("pcns.team".to_string(), "a".to_string()),
        ])
    );
    assert_eq!(spec.ingress, vec![Rule::new(Action::Allow)]);
    assert_eq!(spec.egress, vec![Rule::new(Action::Allow)]);
}

#[test]
fn merge_ranges_joins_adjacent_and_overlapping() {
    assert_eq!(
        merge_ranges(vec![(5, 5), (1, 3), (4, 4), (10, 20), (15, 30)]),
        vec![(1, 5), (10, 30)]
    );
    assert_eq!(
        merge_ranges(vec![(65535, 65535), (65534, 65535)]),
        vec![(65534, 65535)]
    );
}

//! Kubernetes inputs as Calico sees them: a NetworkPolicy becomes the Calico NetworkPolicy
//! `knp.default.<name>`, a Namespace becomes the profile `kns.<namespace>`.

use crate::rules::{NAME_LABEL, NAMESPACE_LABEL_PREFIX};
use std::collections::BTreeMap;
use tortie_model::types::{
    Action, EntityRule, IntOrString, KubernetesProtocol, LabelSelector, LabelSelectorOperator,
    NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec, PolicyType, Port, ProfileSpec,
    Protocol, Rule,
};
use tortie_model::{KubernetesNamespace, KubernetesNetworkPolicy, NetworkPolicy, ObjectMeta};

/// Order Calico gives every converted Kubernetes policy.
pub const KNP_ORDER: f64 = 1000.0;
/// Name prefix of converted Kubernetes policy.
pub const KNP_PREFIX: &str = "knp.default.";
/// Name prefix of the per-namespace profile.
pub const KNS_PREFIX: &str = "kns.";
/// Selector term every converted pod selector starts with.
const K8S_PODS: &str = "projectcalico.org/orchestrator == 'k8s'";

/// Converts a Kubernetes label selector to Calico's selector syntax: `matchLabels` sorted by key
/// as `k == 'v'`, then `matchExpressions` in order (`in`, `not in`, `has`, `! has`), joined
/// with `&&`. Empty gives the empty string (which means `all()`).
pub fn label_selector_to_calico(selector: &LabelSelector) -> String {
    let mut terms: Vec<String> = selector
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k} == '{v}'"))
        .collect();
    for expr in &selector.match_expressions {
        let values = || {
            let quoted: Vec<String> = expr.values.iter().map(|v| format!("'{v}'")).collect();
            quoted.join(", ")
        };
        terms.push(match expr.operator {
            LabelSelectorOperator::In => format!("{} in {{ {} }}", expr.key, values()),
            LabelSelectorOperator::NotIn => format!("{} not in {{ {} }}", expr.key, values()),
            LabelSelectorOperator::Exists => format!("has({})", expr.key),
            LabelSelectorOperator::DoesNotExist => format!("! has({})", expr.key),
        });
    }
    terms.join(" && ")
}

/// A pod selector with the orchestrator term in front.
fn pod_selector(selector: &LabelSelector) -> String {
    let inner = label_selector_to_calico(selector);
    if inner.is_empty() {
        K8S_PODS.to_string()
    } else {
        format!("{K8S_PODS} && {inner}")
    }
}

/// The peer part of a converted rule: selector, namespaceSelector, nets, notNets.
fn convert_peer(peer: &NetworkPolicyPeer) -> EntityRule {
    let mut entity = EntityRule::default();
    if let Some(block) = &peer.ip_block {
        entity.nets = vec![block.cidr];
        entity.not_nets = block.except.clone();
    }
    match (&peer.pod_selector, &peer.namespace_selector) {
        (Some(pods), Some(namespaces)) => {
            entity.selector = pod_selector(pods);
            entity.namespace_selector = namespace_selector_text(namespaces);
        }
        (Some(pods), None) => entity.selector = pod_selector(pods),
        (None, Some(namespaces)) => {
            entity.selector = K8S_PODS.to_string();
            entity.namespace_selector = namespace_selector_text(namespaces);
        }
        (None, None) => {}
    }
    entity
}

fn namespace_selector_text(selector: &LabelSelector) -> String {
    let text = label_selector_to_calico(selector);
    if text.is_empty() {
        "all()".to_string()
    } else {
        text
    }
}

fn protocol_of(port: &NetworkPolicyPort) -> Protocol {
    match port.protocol {
        Some(KubernetesProtocol::Udp) => Protocol::Udp,
        Some(KubernetesProtocol::Sctp) => Protocol::Sctp,
        Some(KubernetesProtocol::Tcp) | None => Protocol::Tcp,
    }
}

/// Sorts and merges numeric ranges into the fewest covering ranges (overlapping or adjacent
/// ranges join), as Calico's port simplification does.
pub(crate) fn merge_ranges(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

/// Numeric ranges and named ports of one protocol.
type PortGroup = (Vec<(u16, u16)>, Vec<Port>);

/// Groups a rule's ports by protocol (first appearance order). `None` inside means "this
/// protocol, any port"; an empty result means no protocol or port restriction.
fn group_ports(ports: &[NetworkPolicyPort]) -> Vec<(Protocol, Option<Vec<Port>>)> {
    let mut groups: Vec<(Protocol, Option<PortGroup>)> = Vec::new();
    for port in ports {
        let protocol = protocol_of(port);
        let index = match groups.iter().position(|(p, _)| *p == protocol) {
            Some(i) => i,
            None => {
                groups.push((protocol, Some((Vec::new(), Vec::new()))));
                groups.len() - 1
            }
        };
        let slot = &mut groups[index].1;
        let Some(spec) = &port.port else {
            // A port entry without a port opens the whole protocol.
            *slot = None;
            continue;
        };
        let Some((ranges, named)) = slot else {
            continue;
        };
        match spec {
            IntOrString::Int(n) => {
                let Ok(first) = u16::try_from(*n) else {
                    continue;
                };
                let last = port
                    .end_port
                    .and_then(|e| u16::try_from(e).ok())
                    .filter(|e| *e >= first)
                    .unwrap_or(first);
                ranges.push((first, last));
            }
            IntOrString::String(name) => match name.parse::<u16>() {
                Ok(n) => ranges.push((n, n)),
                Err(_) => named.push(Port::Named(name.clone())),
            },
        }
    }
    groups
        .into_iter()
        .map(|(protocol, slot)| {
            let ports = slot.map(|(ranges, named)| {
                let mut ports: Vec<Port> = merge_ranges(ranges)
                    .into_iter()
                    .map(|(a, b)| Port::range(a, b))
                    .collect();
                ports.extend(named);
                ports
            });
            (protocol, ports)
        })
        .collect()
}

/// One Calico Allow rule per (protocol group x peer); the peer goes to `source` for ingress
/// and to `destination` for egress, ports always to `destination`.
fn convert_rule(
    ports: &[NetworkPolicyPort],
    peers: &[NetworkPolicyPeer],
    ingress: bool,
) -> Vec<Rule> {
    let groups = group_ports(ports);
    let protocol_variants: Vec<(Option<Protocol>, Vec<Port>)> = if groups.is_empty() {
        vec![(None, Vec::new())]
    } else {
        groups
            .into_iter()
            .map(|(p, ports)| (Some(p), ports.unwrap_or_default()))
            .collect()
    };
    let peer_variants: Vec<EntityRule> = if peers.is_empty() {
        vec![EntityRule::default()]
    } else {
        peers.iter().map(convert_peer).collect()
    };
    let mut rules = Vec::new();
    for peer in &peer_variants {
        for (protocol, ports) in &protocol_variants {
            let mut rule = Rule::new(Action::Allow);
            rule.protocol = *protocol;
            if ingress {
                rule.source = peer.clone();
            } else {
                rule.destination = peer.clone();
            }
            rule.destination.ports = ports.clone();
            rules.push(rule);
        }
    }
    rules
}

/// The Calico NetworkPolicy a Kubernetes NetworkPolicy becomes: `knp.default.<name>` in the
/// same namespace, tier `default`, order 1000.
pub fn convert_network_policy(knp: &KubernetesNetworkPolicy) -> NetworkPolicy {
    let spec = &knp.spec;
    let types = if spec.policy_types.is_empty() {
        vec![PolicyType::Ingress]
    } else {
        spec.policy_types.clone()
    };
    let namespace = if knp.metadata.namespace.is_empty() {
        "default"
    } else {
        &knp.metadata.namespace
    };
    let ingress = spec
        .ingress
        .iter()
        .flat_map(|r| convert_rule(&r.ports, &r.from, true))
        .collect();
    let egress = spec
        .egress
        .iter()
        .flat_map(|r| convert_rule(&r.ports, &r.to, false))
        .collect();
    NetworkPolicy::new(
        ObjectMeta::namespaced(namespace, &format!("{KNP_PREFIX}{}", knp.metadata.name)),
        NetworkPolicySpec {
            tier: "default".to_string(),
            order: Some(KNP_ORDER),
            selector: pod_selector(&spec.pod_selector),
            types,
            ingress,
            egress,
            ..NetworkPolicySpec::default()
        },
    )
}

/// The `pcns.`-prefixed labels a namespace gives its endpoints, including
/// `pcns.projectcalico.org/name=<namespace>`.
pub fn namespace_profile_labels(
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (format!("{NAMESPACE_LABEL_PREFIX}{k}"), v.clone()))
        .collect();
    out.insert(
        format!("{NAMESPACE_LABEL_PREFIX}{NAME_LABEL}"),
        namespace.to_string(),
    );
    out
}

/// The profile `kns.<namespace>`: allow everything both ways, and apply the namespace's labels.
pub fn namespace_profile(namespace: &KubernetesNamespace) -> (String, ProfileSpec) {
    let name = &namespace.metadata.name;
    (
        format!("{KNS_PREFIX}{name}"),
        ProfileSpec {
            ingress: vec![Rule::new(Action::Allow)],
            egress: vec![Rule::new(Action::Allow)],
            labels_to_apply: namespace_profile_labels(name, &namespace.metadata.labels),
        },
    )
}

#[cfg(test)]
mod tests;

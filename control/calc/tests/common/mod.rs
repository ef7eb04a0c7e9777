//! Shared fixtures: manifests as YAML text, parsed with the model crate as users would write them.

#![allow(dead_code)]

use tortie_calc::{CalcGraph, ExplainRequest, Explanation, Peer, explain::explain, parse_protocol};
use tortie_model::{Resource, parse_documents};

/// A namespace with labels.
pub fn namespace(name: &str, labels: &[(&str, &str)]) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{{}}}\n",
        pairs(labels)
    )
}

fn pairs(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("\"{k}\": \"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Kubernetes pod's WorkloadEndpoint with profile `kns.<ns>` and a named port `http`
/// (TCP 8080).
pub fn pod(ns: &str, name: &str, ip: &str, labels: &[(&str, &str)]) -> String {
    pod_with_profiles(ns, name, ip, labels, &[&format!("kns.{ns}")])
}

/// A WorkloadEndpoint with the given profiles.
pub fn pod_with_profiles(
    ns: &str,
    name: &str,
    ip: &str,
    labels: &[(&str, &str)],
    profiles: &[&str],
) -> String {
    let profiles = profiles
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: node1-k8s-{name}-eth0\n  namespace: {ns}\n  labels: {{{}}}\nspec:\n  orchestrator: k8s\n  node: node1\n  workload: {name}\n  pod: {name}\n  endpoint: eth0\n  interfaceName: cali{name}\n  ipNetworks: [\"{ip}\"]\n  profiles: [{profiles}]\n  ports:\n  - {{name: http, protocol: TCP, port: 8080}}\n",
        pairs(labels)
    )
}

/// Parses a multi-document manifest.
pub fn resources(yaml_docs: &[String]) -> Vec<Resource> {
    let text = yaml_docs.join("---\n");
    parse_documents(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A graph holding the manifests.
pub fn graph(yaml_docs: &[String]) -> CalcGraph {
    CalcGraph::from_resources(&resources(yaml_docs))
}

/// Explains `proto`/`port` from `from` to `to` (`ns/pod`).
pub fn explain_conn(
    graph: &CalcGraph,
    from: &str,
    to: &str,
    proto: &str,
    port: Option<u16>,
) -> Explanation {
    let request = ExplainRequest::new(
        Peer::parse_endpoint(from).expect("from"),
        Peer::parse_endpoint(to).expect("to"),
        parse_protocol(proto).expect("protocol"),
        port,
    );
    explain(graph, &request).unwrap_or_else(|e| panic!("{e}"))
}

/// Shorthand: the overall verdict as text.
pub fn verdict(graph: &CalcGraph, from: &str, to: &str, proto: &str, port: Option<u16>) -> String {
    format!("{:?}", explain_conn(graph, from, to, proto, port).verdict)
}

/// Two namespaces, `a` and `b` in ns1 (app=a, app=b), `c` in ns2 (app=c).
pub fn base() -> Vec<String> {
    vec![
        namespace("ns1", &[("team", "one")]),
        namespace("ns2", &[("team", "two")]),
        pod("ns1", "a", "10.0.1.1/32", &[("app", "a")]),
        pod("ns1", "b", "10.0.1.2/32", &[("app", "b")]),
        pod("ns2", "c", "10.0.2.1/32", &[("app", "c")]),
    ]
}

/// A namespaced policy from its spec (YAML, indented by two spaces).
pub fn np(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}"
    )
}

/// A global policy from its spec.
pub fn gnp(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

/// A tier.
pub fn tier(name: &str, order: f64, default_action: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: {name}\nspec:\n  order: {order}\n  defaultAction: {default_action}\n"
    )
}

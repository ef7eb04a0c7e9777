//! `tortiectl policy explain`: what happens to one connection, and why.
//!
//! The source's egress is evaluated, then the destination's ingress, each with
//! [`crate::eval::evaluate`] on the endpoint programs the graph computes: the same state the
//! dataplane is programmed from.
//!
//! Forwarded traffic through host endpoints: a connection that leaves a workload's node
//! (to an address outside the cluster, or to an endpoint on another node) passes that
//! node's uplink host endpoint's `applyOnForward` egress policy; one that arrives at a
//! workload from outside its node passes the `applyOnForward` ingress policy of the uplink
//! host endpoint of the workload's node ([`crate::eval::evaluate_forwarded`]). The uplink
//! host endpoint of a node is [`CalcGraph::uplink_host_endpoint`]; a node without one has
//! no such hop. A host endpoint as the source or destination stands for the host itself
//! (its normal policy applies), a connection the host opens to a workload on the same node
//! skips the workload's ingress policy, as Felix does, and a workload's connection to its own
//! host meets FelixConfiguration `defaultEndpointToHostAction` instead of host endpoint
//! policy (the host endpoint's interface is not on its path).

use crate::error::CalcError;
use crate::eval::{DirectionResult, Packet, Stage, Step, Verdict, evaluate, evaluate_forwarded};
use crate::flush::Direction;
use crate::graph::{CalcGraph, EndpointInfo};
use crate::ids::EndpointId;
use crate::tunnel::Tunnels;
use serde::Serialize;
use std::fmt::Write as _;
use std::net::IpAddr;
use tortie_model::Resource;
use tortie_model::types::Protocol;

/// One end of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A WorkloadEndpoint by namespace and `metadata.name` or `spec.workload` (or `spec.pod`).
    Workload {
        /// Namespace.
        namespace: String,
        /// Endpoint name, workload name or pod name.
        name: String,
    },
    /// A HostEndpoint by name.
    Host(String),
    /// An address outside the cluster (`--from-ip` / `--to-ip`).
    Ip(IpAddr),
}

impl Peer {
    /// Reads `NS/NAME` as a workload endpoint; a bare `NAME` names a host endpoint.
    pub fn parse_endpoint(text: &str) -> Result<Peer, CalcError> {
        match text.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Peer::Workload {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                })
            }
            None if !text.is_empty() => Ok(Peer::Host(text.to_string())),
            _ => Err(CalcError::BadRequest {
                field: "endpoint",
                message: format!("{text:?} is not NAMESPACE/NAME"),
            }),
        }
    }
}

/// One connection to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainRequest {
    /// Source.
    pub from: Peer,
    /// Destination.
    pub to: Peer,
    /// IP protocol number (see [`parse_protocol`]).
    pub protocol: u8,
    /// Destination port (TCP, UDP, SCTP).
    pub port: Option<u16>,
    /// Source port; when absent, rules that constrain the source port do not match.
    pub src_port: Option<u16>,
    /// ICMP type.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
}

impl ExplainRequest {
    /// A request for `protocol` (and `port`) between two peers.
    pub fn new(from: Peer, to: Peer, protocol: u8, port: Option<u16>) -> Self {
        ExplainRequest {
            from,
            to,
            protocol,
            port,
            src_port: None,
            icmp_type: None,
            icmp_code: None,
        }
    }
}

/// Reads `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6`, `UDPLite` (any case) or a number 1-255.
pub fn parse_protocol(text: &str) -> Result<u8, CalcError> {
    Protocol::parse(text)
        .map(Protocol::number)
        .map_err(|message| CalcError::BadRequest {
            field: "protocol",
            message,
        })
}

/// One hop of forwarded traffic through a host endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardHop {
    /// The host endpoint's name.
    pub host_endpoint: String,
    /// The node it belongs to.
    pub node: String,
    /// Its verdict and steps.
    #[serde(flatten)]
    pub result: DirectionResult,
}

/// The answer: serializes to
/// `{"verdict":"Allow|Deny","egress":{"verdict":...,"steps":[...]},"ingress":{...}}`, with
/// `"forwardEgress"` / `"forwardIngress"` (`{"hostEndpoint":...,"node":...,"verdict":...,
/// "steps":[...]}`) when the connection is forwarded through host endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// Allow only if every part allows.
    pub verdict: Verdict,
    /// The source's egress.
    pub egress: DirectionResult,
    /// The source node's uplink host endpoint, `applyOnForward` egress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_egress: Option<ForwardHop>,
    /// The destination node's uplink host endpoint, `applyOnForward` ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_ingress: Option<ForwardHop>,
    /// The destination's ingress.
    pub ingress: DirectionResult,
    /// The packet evaluated.
    #[serde(skip)]
    pub packet: Packet,
    /// Who sends, in words.
    #[serde(skip)]
    pub from: String,
    /// Who receives, in words.
    #[serde(skip)]
    pub to: String,
}

enum Resolved<'a> {
    Endpoint(&'a EndpointInfo),
    Ip(IpAddr),
}

fn resolve<'a>(graph: &'a CalcGraph, peer: &Peer) -> Result<Resolved<'a>, CalcError> {
    match peer {
        Peer::Ip(ip) => Ok(Resolved::Ip(*ip)),
        Peer::Host(name) => graph
            .endpoint(&EndpointId::Host { name: name.clone() })
            .map(Resolved::Endpoint)
            .ok_or_else(|| CalcError::UnknownEndpoint(name.clone())),
        Peer::Workload { namespace, name } => {
            let exact = EndpointId::Workload {
                namespace: namespace.clone(),
                name: name.clone(),
            };
            if let Some(info) = graph.endpoint(&exact) {
                return Ok(Resolved::Endpoint(info));
            }
            let found: Vec<&EndpointInfo> = graph
                .endpoints()
                .filter(|e| {
                    matches!(&e.id, EndpointId::Workload { namespace: ns, .. } if ns == namespace)
                        && (e.workload == *name || e.pod == *name)
                })
                .collect();
            match found.as_slice() {
                [one] => Ok(Resolved::Endpoint(one)),
                [] => Err(CalcError::UnknownEndpoint(format!("{namespace}/{name}"))),
                many => Err(CalcError::AmbiguousEndpoint {
                    name: format!("{namespace}/{name}"),
                    candidates: many
                        .iter()
                        .map(|e| e.id.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            }
        }
    }
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn addr_of(info: &EndpointInfo, v4: bool) -> Option<IpAddr> {
    info.addrs
        .iter()
        .map(|n| n.addr())
        .find(|a| a.is_ipv4() == v4)
}

fn pick_addresses(from: &Resolved<'_>, to: &Resolved<'_>) -> Result<(IpAddr, IpAddr), CalcError> {
    let no_address = |info: &EndpointInfo, v4: bool| CalcError::NoAddress {
        endpoint: info.id.to_string(),
        family: if v4 { "IPv4" } else { "IPv6" },
    };
    match (from, to) {
        (Resolved::Ip(a), Resolved::Ip(b)) => {
            if a.is_ipv4() != b.is_ipv4() {
                return Err(CalcError::MixedFamilies { src: *a, dst: *b });
            }
            Ok((*a, *b))
        }
        (Resolved::Ip(a), Resolved::Endpoint(e)) => addr_of(e, a.is_ipv4())
            .map(|b| (*a, b))
            .ok_or_else(|| no_address(e, a.is_ipv4())),
        (Resolved::Endpoint(e), Resolved::Ip(b)) => addr_of(e, b.is_ipv4())
            .map(|a| (a, *b))
            .ok_or_else(|| no_address(e, b.is_ipv4())),
        (Resolved::Endpoint(x), Resolved::Endpoint(y)) => {
            for v4 in [true, false] {
                if let (Some(a), Some(b)) = (addr_of(x, v4), addr_of(y, v4)) {
                    return Ok((a, b));
                }
            }
            let v4 = addr_of(x, true).is_none();
            Err(no_address(if v4 { x } else { y }, true))
        }
    }
}

fn outside(addr: IpAddr, role: &str) -> DirectionResult {
    let _ = (addr, role);
    DirectionResult {
        verdict: Verdict::Allow,
        steps: vec![Step {
            stage: Stage::External,
            tier: None,
            policy: None,
            profile: None,
            rule: None,
            action: None,
            class: None,
        }],
    }
}

fn describe(resolved: &Resolved<'_>) -> String {
    match resolved {
        Resolved::Endpoint(e) => e.id.to_string(),
        Resolved::Ip(ip) => format!("{ip} (outside the cluster)"),
    }
}

/// The node a resolved peer is on: workloads and host endpoints have one, addresses none.
fn node_of<'a>(r: &Resolved<'a>) -> Option<&'a str> {
    match r {
        Resolved::Endpoint(e) if !e.node.is_empty() => Some(e.node.as_str()),
        _ => None,
    }
}

fn is_workload(r: &Resolved<'_>) -> bool {
    matches!(r, Resolved::Endpoint(e) if matches!(e.id, EndpointId::Workload { .. }))
}

/// The forwarding hop through `node`'s uplink host endpoint in `direction`, if it has one.
fn forward_hop(
    graph: &CalcGraph,
    node: &str,
    direction: Direction,
    packet: &Packet,
) -> Result<Option<ForwardHop>, CalcError> {
    let Some(hep) = graph.uplink_host_endpoint(node) else {
        return Ok(None);
    };
    let plan = graph
        .plan(&hep.id)
        .ok_or_else(|| CalcError::UnknownEndpoint(hep.id.to_string()))?;
    let name = match &hep.id {
        EndpointId::Host { name } => name.clone(),
        other => other.to_string(),
    };
    Ok(Some(ForwardHop {
        host_endpoint: name,
        node: node.to_string(),
        result: evaluate_forwarded(graph, &plan, direction, packet),
    }))
}

/// A workload's connection to its own host: `defaultEndpointToHostAction` (Return hands the
/// packet to the host's own rules; the host endpoint's interface is not on its path, so for
/// Tortie's dataplane, which delivers it to the host, it is the same as Accept).
fn endpoint_to_host(graph: &CalcGraph, node: &str) -> DirectionResult {
    use tortie_model::types::{Action, EndpointToHostAction};
    let allow = graph.endpoint_to_host_action(node) != EndpointToHostAction::Drop;
    DirectionResult {
        verdict: if allow { Verdict::Allow } else { Verdict::Deny },
        steps: vec![Step {
            stage: Stage::EndpointToHost,
            tier: None,
            policy: None,
            profile: None,
            rule: None,
            action: Some(if allow { Action::Allow } else { Action::Deny }),
            class: None,
        }],
    }
}

fn host_originated() -> DirectionResult {
    DirectionResult {
        verdict: Verdict::Allow,
        steps: vec![Step {
            stage: Stage::HostOriginated,
            tier: None,
            policy: None,
            profile: None,
            rule: None,
            action: Some(tortie_model::types::Action::Allow),
            class: None,
        }],
    }
}

/// Explains `request` on the graph's current state.
pub fn explain(graph: &CalcGraph, request: &ExplainRequest) -> Result<Explanation, CalcError> {
    explain_with_tunnels(graph, request, &Tunnels::default())
}

/// Explains `request`, knowing which cross-node connections travel IP-in-IP: such a
/// connection leaves and arrives through the tunnel (Calico's `tunl0`) and meets neither
/// node's uplink host endpoint programs, so no `forwardEgress` or `forwardIngress` hop is
/// evaluated for it; with `Tunnels::default()` nothing is encapsulated.
pub fn explain_with_tunnels(
    graph: &CalcGraph,
    request: &ExplainRequest,
    tunnels: &Tunnels,
) -> Result<Explanation, CalcError> {
    let from = resolve(graph, &request.from)?;
    let to = resolve(graph, &request.to)?;
    let (src, dst) = pick_addresses(&from, &to)?;
    let _ = family(&src);
    let packet = Packet {
        src,
        dst,
        protocol: request.protocol,
        src_port: request.src_port,
        dst_port: request.port,
        icmp_type: request.icmp_type,
        icmp_code: request.icmp_code,
    };
    let egress = match &from {
        Resolved::Endpoint(info) => {
            let plan = graph
                .plan(&info.id)
                .ok_or_else(|| CalcError::UnknownEndpoint(info.id.to_string()))?;
            evaluate(graph, &plan, Direction::Egress, &packet)
        }
        Resolved::Ip(ip) => outside(*ip, "source"),
    };
    let (from_node, to_node) = (node_of(&from), node_of(&to));
    let same_node = from_node.is_some() && from_node == to_node;
    // The host (a host endpoint stands for it) opening a connection to its own workload.
    let from_own_host = same_node && !is_workload(&from) && is_workload(&to);
    let to_own_host = same_node && is_workload(&from) && !is_workload(&to);
    let ingress = match &to {
        Resolved::Endpoint(_) if from_own_host => host_originated(),
        Resolved::Endpoint(info) if to_own_host => endpoint_to_host(graph, &info.node),
        Resolved::Endpoint(info) => {
            let plan = graph
                .plan(&info.id)
                .ok_or_else(|| CalcError::UnknownEndpoint(info.id.to_string()))?;
            evaluate(graph, &plan, Direction::Ingress, &packet)
        }
        Resolved::Ip(ip) => outside(*ip, "destination"),
    };
    // A workload's traffic leaving its node, and traffic reaching a workload from outside
    // its node, is forwarded through the node's uplink host endpoint, unless it travels
    // IP-in-IP: then it leaves and arrives through the tunnel (Calico's `tunl0`), which the
    // uplink's host endpoint does not cover.
    let via_tunnel = match (from_node, to_node) {
        (Some(a), Some(b)) if is_workload(&from) => tunnels.encapsulated(a, b, dst),
        _ => false,
    };
    let forward_egress = match from_node {
        Some(node) if is_workload(&from) && !same_node && !via_tunnel => {
            forward_hop(graph, node, Direction::Egress, &packet)?
        }
        _ => None,
    };
    let forward_ingress = match to_node {
        Some(node) if is_workload(&to) && !same_node && !via_tunnel => {
            forward_hop(graph, node, Direction::Ingress, &packet)?
        }
        _ => None,
    };
    let allowed = [Some(&egress), Some(&ingress)]
        .into_iter()
        .chain([
            forward_egress.as_ref().map(|h| &h.result),
            forward_ingress.as_ref().map(|h| &h.result),
        ])
        .flatten()
        .all(|d| d.verdict == Verdict::Allow);
    let verdict = if allowed {
        Verdict::Allow
    } else {
        Verdict::Deny
    };
    Ok(Explanation {
        verdict,
        egress,
        forward_egress,
        forward_ingress,
        ingress,
        packet,
        from: describe(&from),
        to: describe(&to),
    })
}

/// Explains `request` on a list of resources (the datastore's contents): the function
/// `tortiectl policy explain` calls.
pub fn explain_on_resources(
    resources: &[Resource],
    request: &ExplainRequest,
) -> Result<Explanation, CalcError> {
    let graph = CalcGraph::from_resources(resources);
    explain_with_tunnels(&graph, request, &Tunnels::from_resources(resources))
}

fn protocol_name(n: u8) -> String {
    match n {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "ICMPv6".into(),
        132 => "SCTP".into(),
        136 => "UDPLite".into(),
        other => format!("protocol {other}"),
    }
}

fn action_word(action: Option<tortie_model::types::Action>) -> &'static str {
    use tortie_model::types::Action;
    match action {
        Some(Action::Allow) => "Allow",
        Some(Action::Deny) => "Deny",
        Some(Action::Log) => "Log",
        Some(Action::Pass) => "Pass",
        None => "-",
    }
}

fn step_sentence(step: &Step) -> String {
    let class = step.class.map(|c| format!(" ({c})")).unwrap_or_default();
    let tier = step.tier.as_deref().unwrap_or("");
    let rule = step.rule.unwrap_or(0);
    let action = action_word(step.action);
    match step.stage {
        Stage::Rule => format!(
            "tier {tier}, policy {}{class}, rule {rule} matched: {action}",
            step.policy.as_deref().unwrap_or("")
        ),
        Stage::TierDefault => format!(
            "tier {tier}{class} selected the endpoint but no rule decided: tier default action {action}"
        ),
        Stage::Profile => format!(
            "profile {}, rule {rule} matched: {action}",
            step.profile.as_deref().unwrap_or("")
        ),
        Stage::MissingProfile => format!(
            "profile {} does not exist (skipped)",
            step.profile.as_deref().unwrap_or("")
        ),
        Stage::NoProfile => "no profile allowed or denied it: Deny".to_string(),
        Stage::Failsafe => "failsafe port: Allow".to_string(),
        Stage::NoPolicy => "no policy selects the endpoint: profiles decide".to_string(),
        Stage::External => "outside the cluster: no policy applies".to_string(),
        Stage::NoForwardPolicy => {
            "no applyOnForward policy selects the host endpoint: forwarded traffic is allowed"
                .to_string()
        }
        Stage::ForwardPassed => {
            "every applyOnForward tier passed: forwarded traffic is allowed".to_string()
        }
        Stage::HostOriginated => {
            "the host itself opens the connection: the workload's ingress policy is not applied"
                .to_string()
        }
        Stage::EndpointToHost => format!(
            "a workload's connection to its own host: defaultEndpointToHostAction gives {action}"
        ),
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allowed",
        Verdict::Deny => "denied",
    }
}

impl Explanation {
    /// The explanation as sentences, e.g. `TCP 10.0.0.1 -> 10.0.0.2 port 80 from workload
    /// endpoint a/x to workload endpoint b/y is denied. Egress ... allowed: ... Ingress ...
    /// denied: ...`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let p = &self.packet;
        let port = p.dst_port.map(|n| format!(" port {n}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {} -> {}{port} from {} to {} is {}.",
            protocol_name(p.protocol),
            p.src,
            p.dst,
            self.from,
            self.to,
            verdict_word(self.verdict)
        );
        let hop = |h: &ForwardHop, way: &str| {
            (
                format!("Forwarded {way}"),
                format!(
                    "host endpoint {} (node {}, applyOnForward)",
                    h.host_endpoint, h.node
                ),
                h.result.clone(),
            )
        };
        let mut parts = vec![("Egress".to_string(), self.from.clone(), self.egress.clone())];
        if let Some(h) = &self.forward_egress {
            parts.push(hop(h, "out through"));
        }
        if let Some(h) = &self.forward_ingress {
            parts.push(hop(h, "in through"));
        }
        parts.push(("Ingress".to_string(), self.to.clone(), self.ingress.clone()));
        for (label, who, dir) in parts {
            let steps: Vec<String> = dir.steps.iter().map(step_sentence).collect();
            let of = if label.starts_with("Forwarded") {
                ""
            } else {
                " of"
            };
            let _ = writeln!(
                out,
                "{label}{of} {who} is {}: {}.",
                verdict_word(dir.verdict),
                steps.join("; then ")
            );
        }
        out
    }
}

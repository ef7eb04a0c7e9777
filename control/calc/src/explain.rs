//! `tortiectl policy explain`: what happens to one connection, and why.
//!
//! The source's egress is evaluated, then the destination's ingress, each with
//! [`crate::eval::evaluate`] on the endpoint programs the graph computes: the same state the
//! dataplane is programmed from.

use crate::error::CalcError;
use crate::eval::{DirectionResult, Packet, Stage, Step, Verdict, evaluate};
use crate::flush::Direction;
use crate::graph::{CalcGraph, EndpointInfo};
use crate::ids::EndpointId;
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

/// The answer: serializes to exactly
/// `{"verdict":"Allow|Deny","egress":{"verdict":...,"steps":[...]},"ingress":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Allow only if both directions allow.
    pub verdict: Verdict,
    /// The source's egress.
    pub egress: DirectionResult,
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

/// Explains `request` on the graph's current state.
pub fn explain(graph: &CalcGraph, request: &ExplainRequest) -> Result<Explanation, CalcError> {
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
    let ingress = match &to {
        Resolved::Endpoint(info) => {
            let plan = graph
                .plan(&info.id)
                .ok_or_else(|| CalcError::UnknownEndpoint(info.id.to_string()))?;
            evaluate(graph, &plan, Direction::Ingress, &packet)
        }
        Resolved::Ip(ip) => outside(*ip, "destination"),
    };
    let verdict = if egress.verdict == Verdict::Allow && ingress.verdict == Verdict::Allow {
        Verdict::Allow
    } else {
        Verdict::Deny
    };
    Ok(Explanation {
        verdict,
        egress,
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
    explain(&graph, request)
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
        for (label, who, dir) in [
            ("Egress", &self.from, &self.egress),
            ("Ingress", &self.to, &self.ingress),
        ] {
            let steps: Vec<String> = dir.steps.iter().map(step_sentence).collect();
            let _ = writeln!(
                out,
                "{label} of {who} is {}: {}.",
                verdict_word(dir.verdict),
                steps.join("; then ")
            );
        }
        out
    }
}

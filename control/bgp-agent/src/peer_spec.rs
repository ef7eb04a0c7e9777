//! One `BGPPeer` read and checked: which nodes it applies to, what it points at, and the
//! remote ends it yields; plus the small value parsers Calico's fields need.

use crate::error::AgentError;
use crate::input::{ClusterView, NodeInfo};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tortie_model::types::BgpPeerSpec;
use tortie_selector::Selector;

/// A remote end before the per-`BGPPeer` settings are applied.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    pub address: IpAddr,
    pub port: u16,
    pub asn: u32,
    /// The Calico node at that address, if any.
    pub node: Option<String>,
    /// That node's cluster ID.
    pub cluster_id: Option<Ipv4Addr>,
}

/// What a `BGPPeer` points at.
pub(crate) enum Target {
    Selector(Selector),
    /// Address and port (0 = the peer's listen port or 179).
    Address(IpAddr, u16),
}

/// Which nodes a `BGPPeer` applies to.
enum LocalSide {
    All,
    Node(String),
    Selector(Selector),
}

pub(crate) struct ParsedPeer {
    local: LocalSide,
    pub target: Target,
    asn: Option<u32>,
}

impl ParsedPeer {
    pub(crate) fn new(
        name: &str,
        spec: &BgpPeerSpec,
        view: &ClusterView<'_>,
    ) -> Result<ParsedPeer, AgentError> {
        let resource = format!("BGPPeer {name:?}");
        let selector = |field: &str, text: &str| {
            Selector::parse(text).map_err(|e| AgentError::invalid(&resource, field, e.to_string()))
        };
        let local = match (spec.node.as_str(), spec.node_selector.as_str()) {
            ("", "") => LocalSide::All,
            (node, "") => LocalSide::Node(node.to_string()),
            ("", sel) => LocalSide::Selector(selector("spec.nodeSelector", sel)?),
            _ => {
                return Err(AgentError::invalid(
                    resource,
                    "spec.nodeSelector",
                    "cannot be combined with spec.node",
                ));
            }
        };
        let target = match (spec.peer_ip.as_str(), spec.peer_selector.as_str()) {
            ("", "") => {
                return Err(AgentError::invalid(
                    resource,
                    "spec.peerIP",
                    "one of spec.peerIP and spec.peerSelector is required",
                ));
            }
            ("", sel) => {
                if spec.as_number.is_some() {
                    return Err(AgentError::invalid(
                        resource,
                        "spec.asNumber",
                        "must be empty with spec.peerSelector (the remote AS comes from the selected nodes)",
                    ));
                }
                Target::Selector(selector("spec.peerSelector", sel)?)
            }
            (ip, "") => {
                let (addr, port) = parse_peer_ip(ip).ok_or_else(|| {
                    AgentError::invalid(
                        &resource,
                        "spec.peerIP",
                        format!("{ip:?} is not IP, IPv4:port or [IPv6]:port"),
                    )
                })?;
                Target::Address(addr, port)
            }
            _ => {
                return Err(AgentError::invalid(
                    resource,
                    "spec.peerSelector",
                    "cannot be combined with spec.peerIP",
                ));
            }
        };
        let asn = spec.as_number.map(|a| a.0);
        if let Target::Address(addr, _) = &target
            && asn.is_none()
            && !view.nodes.values().any(|n| n.has_addr(*addr))
        {
            return Err(AgentError::invalid(
                resource,
                "spec.asNumber",
                format!("is required: {addr} is not a node's address"),
            ));
        }
        Ok(ParsedPeer { local, target, asn })
    }

    pub(crate) fn is_global(&self) -> bool {
        matches!(self.local, LocalSide::All)
    }

    /// Whether `node` is on the local side (`node` / `nodeSelector`, or every node).
    pub(crate) fn local_side_matches(&self, node: &NodeInfo) -> bool {
        match &self.local {
            LocalSide::All => true,
            LocalSide::Node(n) => *n == node.name,
            LocalSide::Selector(s) => s.matches(&node.labels),
        }
    }

    pub(crate) fn applies_to(&self, me: &NodeInfo) -> bool {
        self.local_side_matches(me)
    }

    /// Whether `me` is on the remote side (selected by `peerSelector`, or owning `peerIP`
    /// with the peering's AS and port): then it gets the reverse peering.
    pub(crate) fn reverse_applies_to(&self, me: &NodeInfo, view: &ClusterView<'_>) -> bool {
        match &self.target {
            Target::Selector(s) => s.matches(&me.labels),
            Target::Address(addr, port) => {
                me.has_addr(*addr)
                    && self.asn.unwrap_or_else(|| view.global_as()) == view.node_as(me)
                    && (*port == 0 || *port == view.listen_port(&me.name))
            }
        }
    }

    /// The remote ends on the forward side.
    pub(crate) fn remotes(&self, view: &ClusterView<'_>, v4: bool, v6: bool) -> Vec<Remote> {
        match &self.target {
            Target::Selector(s) => view
                .nodes
                .values()
                .filter(|n| s.matches(&n.labels))
                .flat_map(|n| node_remotes(view, n, v4, v6))
                .collect(),
            Target::Address(addr, port) => {
                let asn = self.asn.unwrap_or_else(|| view.global_as());
                let node = view
                    .nodes
                    .values()
                    .find(|n| n.has_addr(*addr) && view.node_as(n) == asn);
                let port = match (port, node) {
                    (0, Some(n)) => view.listen_port(&n.name),
                    (0, None) => crate::input::DEFAULT_PORT,
                    (p, _) => *p,
                };
                vec![Remote {
                    address: *addr,
                    port,
                    asn,
                    node: node.map(|n| n.name.clone()),
                    cluster_id: node.and_then(|n| n.cluster_id),
                }]
            }
        }
    }
}

/// A Calico node as a remote end, per family it has an address in.
pub(crate) fn node_remotes(
    view: &ClusterView<'_>,
    node: &NodeInfo,
    v4: bool,
    v6: bool,
) -> Vec<Remote> {
    [(v4, true), (v6, false)]
        .into_iter()
        .filter(|(want, _)| *want)
        .filter_map(|(_, fam)| node.addr(fam))
        .map(|address| Remote {
            address,
            port: view.listen_port(&node.name),
            asn: view.node_as(node),
            node: Some(node.name.clone()),
            cluster_id: node.cluster_id,
        })
        .collect()
}

/// `IP`, `IPv4:port` or `[IPv6]:port` (port 0 when absent).
pub(crate) fn parse_peer_ip(text: &str) -> Option<(IpAddr, u16)> {
    if let Ok(a) = text.parse::<IpAddr>() {
        return Some((a, 0));
    }
    let sa: SocketAddr = text.parse().ok()?;
    (sa.port() != 0).then_some((sa.ip(), sa.port()))
}

/// A Go-style duration (`120s`, `1m30s`, `500ms`, `2h`) as Calico's resources write them.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration such as \"120s\" or \"1m30s\"");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(value * scale).map_err(|_| bad())?;
    }
    Ok(total)
}

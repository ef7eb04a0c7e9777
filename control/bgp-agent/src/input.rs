//! What the agent is given, and the indexed view of it that planning reads.

use crate::error::AgentError;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tortie_model::types::{BgpConfigurationSpec, BgpPeerSpec, IpPoolSpec};
use tortie_model::{Object, Resource};

/// Calico's default AS number when neither the node nor `BGPConfiguration default` sets one.
pub const DEFAULT_AS: u32 = 64512;
/// Calico's default BGP port.
pub const DEFAULT_PORT: u16 = 179;

/// Everything the agent needs to know about the cluster, as plain resources.
///
/// `resources` may hold any kinds; the agent reads `Node`, `BGPConfiguration` (`default` and
/// `node.<name>`), `BGPPeer` and `IPPool`, and ignores the rest. `local_blocks` are the IPAM
/// blocks affine to this node (confirmed affinities only): they are what the node advertises.
/// Addresses a local workload borrowed from another node's block (IPAM without strict
/// affinity) go in as host prefixes (/32, /128), as Calico advertises them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentInput {
    /// This node's name (its `Node` resource must be in `resources`).
    pub node: String,
    /// Nodes, BGPConfigurations, BGPPeers and IPPools (other kinds are ignored).
    pub resources: Vec<Resource>,
    /// This node's affine blocks.
    pub local_blocks: Vec<IpNet>,
}

impl AgentInput {
    /// Builds an input.
    pub fn new(
        node: impl Into<String>,
        resources: Vec<Resource>,
        local_blocks: Vec<IpNet>,
    ) -> Self {
        AgentInput {
            node: node.into(),
            resources,
            local_blocks,
        }
    }
}

/// One node's BGP identity, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// IPv4 address and its subnet length (`spec.bgp.ipv4Address`).
    pub v4: Option<(Ipv4Addr, u8)>,
    /// IPv6 address and its subnet length (`spec.bgp.ipv6Address`).
    pub v6: Option<(Ipv6Addr, u8)>,
    /// `spec.bgp.asNumber`.
    pub asn: Option<u32>,
    /// `spec.bgp.routeReflectorClusterID`.
    pub cluster_id: Option<Ipv4Addr>,
}

impl NodeInfo {
    /// The node's address in `v4` or IPv6 family.
    pub fn addr(&self, v4: bool) -> Option<IpAddr> {
        if v4 {
            self.v4.map(|(a, _)| IpAddr::V4(a))
        } else {
            self.v6.map(|(a, _)| IpAddr::V6(a))
        }
    }

    /// Whether `addr` is one of the node's BGP addresses.
    pub fn has_addr(&self, addr: IpAddr) -> bool {
        self.addr(true) == Some(addr) || self.addr(false) == Some(addr)
    }
}

/// The resources planning reads, indexed and checked once.
pub(crate) struct ClusterView<'a> {
    /// Nodes that run BGP (have `spec.bgp`), by name.
    pub nodes: BTreeMap<&'a str, NodeInfo>,
    /// `BGPConfiguration default`.
    pub global: Option<&'a BgpConfigurationSpec>,
    /// `BGPConfiguration node.<name>`, by node name.
    pub per_node: BTreeMap<&'a str, &'a BgpConfigurationSpec>,
    /// BGPPeers, by name.
    pub peers: BTreeMap<&'a str, &'a BgpPeerSpec>,
    /// IPPools, by name.
    pub pools: BTreeMap<&'a str, &'a IpPoolSpec>,
    /// BGPFilters, by name.
    pub filters: BTreeMap<&'a str, &'a tortie_model::types::BgpFilterSpec>,
    /// Nodes present without `spec.bgp` (they run no BGP; named in errors).
    pub non_bgp_nodes: Vec<&'a str>,
}

impl<'a> ClusterView<'a> {
    /// Indexes the resources, checking every Node's BGP fields.
    pub fn new(resources: &'a [Resource]) -> Result<ClusterView<'a>, AgentError> {
        let mut view = ClusterView {
            nodes: BTreeMap::new(),
            global: None,
            per_node: BTreeMap::new(),
            peers: BTreeMap::new(),
            pools: BTreeMap::new(),
            filters: BTreeMap::new(),
            non_bgp_nodes: vec![],
        };
        for r in resources {
            match r {
                Resource::Node(n) => match node_info(n)? {
                    Some(info) => {
                        view.nodes.insert(n.metadata.name.as_str(), info);
                    }
                    None => view.non_bgp_nodes.push(n.metadata.name.as_str()),
                },
                Resource::BgpConfiguration(c) => {
                    let name = c.metadata.name.as_str();
                    if name == "default" {
                        view.global = Some(&c.spec);
                    } else if let Some(node) = name.strip_prefix("node.") {
                        view.per_node.insert(node, &c.spec);
                    }
                }
                Resource::BgpPeer(p) => {
                    view.peers.insert(p.metadata.name.as_str(), &p.spec);
                }
                Resource::IpPool(p) => {
                    view.pools.insert(p.metadata.name.as_str(), &p.spec);
                }
                Resource::BgpFilter(f) => {
                    view.filters.insert(f.metadata.name.as_str(), &f.spec);
                }
                _ => {}
            }
        }
        Ok(view)
    }

    /// The cluster-wide AS (`BGPConfiguration default` `spec.asNumber`, else 64512).
    pub fn global_as(&self) -> u32 {
        self.global
            .and_then(|g| g.as_number)
            .map_or(DEFAULT_AS, |a| a.0)
    }

    /// A node's AS: its own `spec.bgp.asNumber`, else the cluster's.
    pub fn node_as(&self, node: &NodeInfo) -> u32 {
        node.asn.unwrap_or_else(|| self.global_as())
    }

    /// The port a node listens on: `BGPConfiguration node.<name>`, else `default`, else 179.
    pub fn listen_port(&self, node: &str) -> u16 {
        self.per_node
            .get(node)
            .and_then(|c| c.listen_port)
            .or_else(|| self.global.and_then(|g| g.listen_port))
            .unwrap_or(DEFAULT_PORT)
    }

    /// Whether the node-to-node mesh is on (true unless `default` turns it off).
    pub fn mesh_enabled(&self) -> bool {
        self.global
            .and_then(|g| g.node_to_node_mesh_enabled)
            .unwrap_or(true)
    }
}

fn node_info(n: &Object<tortie_model::types::NodeSpec>) -> Result<Option<NodeInfo>, AgentError> {
    let Some(bgp) = &n.spec.bgp else {
        return Ok(None);
    };
    let resource = format!("Node {:?}", n.metadata.name);
    let v4 = match bgp.ipv4_address.as_ref().map(|c| c.0) {
        None => None,
        Some(IpNet::V4(a)) => Some((a.addr(), a.prefix_len())),
        Some(IpNet::V6(_)) => {
            return Err(AgentError::invalid(
                resource,
                "spec.bgp.ipv4Address",
                "is an IPv6 address",
            ));
        }
    };
    let v6 = match bgp.ipv6_address.as_ref().map(|c| c.0) {
        None => None,
        Some(IpNet::V6(a)) => Some((a.addr(), a.prefix_len())),
        Some(IpNet::V4(_)) => {
            return Err(AgentError::invalid(
                resource,
                "spec.bgp.ipv6Address",
                "is an IPv4 address",
            ));
        }
    };
    let cluster_id = match bgp.route_reflector_cluster_id.trim() {
        "" => None,
        text => Some(text.parse::<Ipv4Addr>().map_err(|_| {
            AgentError::invalid(
                &resource,
                "spec.bgp.routeReflectorClusterID",
                format!("{text:?} is not an IPv4-formatted cluster ID"),
            )
        })?),
    };
    if let Some(id) = cluster_id
        && id.is_unspecified()
    {
        return Err(AgentError::invalid(
            resource,
            "spec.bgp.routeReflectorClusterID",
            "0.0.0.0 is not a usable cluster ID",
        ));
    }
    Ok(Some(NodeInfo {
        name: n.metadata.name.clone(),
        labels: n.metadata.labels.clone(),
        v4,
        v6,
        asn: bgp.as_number.map(|a| a.0),
        cluster_id,
    }))
}

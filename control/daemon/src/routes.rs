//! The routes a node programs, with where each came from.
//!
//! Calico's model, computed from the datastore ([`compute`]):
//! - each local workload address -> the workload (`Local`);
//! - each other node's confirmed affine IPAM block -> that node, encapsulated as the pool
//!   containing the block says (`ipipMode` Always / CrossSubnet / Never);
//! - this node's own affine blocks -> `Blackhole`, so an address of the block that no local
//!   workload holds is dropped rather than sent to the default route;
//! - another node's workload address outside that node's blocks (borrowed) -> that node, as
//!   a host route;
//! - the node's own addresses -> `Host`;
//! - `0.0.0.0/0` and `::/0` -> `Uplink`;
//! - routes the BGP speaker learned (origin `bgp`), only for prefixes none of the above
//!   gives: the datastore is authoritative for the cluster's own blocks and workloads, BGP
//!   fills in the rest (a ToR's or another cluster's prefixes). A learned route whose next
//!   hop is a router (not a node) goes to that router when it is on the uplink's subnet,
//!   through the default gateway otherwise ([`fabric_target`]).
//!
//! A block whose node has no usable address, or whose MAC is not resolved yet, is routed to
//! `Blackhole` too (with that reason): sending its traffic unencapsulated to the default
//! gateway would leak it. Where two sources give the same prefix the more specific kind wins
//! (`Local` over `Host` over `Node` over `Blackhole` over `Uplink`; ties by node name).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Serialize;
use tortie_abi as abi;
use tortie_model::types::EncapMode;

use crate::cluster::{NodeAddrs, PoolInfo};

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// A local workload's address.
    LocalWorkload,
    /// An IPAM block affinity (another node's block, or this node's own).
    IpamBlock,
    /// Another node's workload address outside that node's blocks (a borrowed address).
    RemoteWorkload,
    /// The node's own address.
    NodeAddress,
    /// The default route.
    Default,
    /// Learned over BGP.
    Bgp,
}

/// Where a route sends traffic (names, not table ids, so status can show them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local workload endpoint.
    Local {
        /// Table id of the endpoint.
        endpoint: abi::EndpointId,
        /// Its host-side interface.
        interface: String,
    },
    /// Another node.
    Node {
        /// Its name.
        node: String,
        /// Encapsulation from the pool (`None`: no pool contains the prefix).
        encap: Option<abi::IpipMode>,
    },
    /// A router on the uplink's subnet that a BGP route names as next hop (a ToR, an edge
    /// router, a route reflector's client router): forwarded natively to its MAC through a
    /// `nodes` table entry of its own that accepts no IP-in-IP.
    Router {
        /// Its address.
        addr: IpAddr,
    },
    /// The uplink's default gateway.
    Uplink,
    /// The node itself.
    Host,
    /// Dropped, with why.
    Blackhole(&'static str),
}

impl Target {
    fn rank(&self) -> u8 {
        match self {
            Target::Local { .. } => 0,
            Target::Host => 1,
            Target::Node { .. } | Target::Router { .. } => 2,
            Target::Blackhole(_) => 3,
            Target::Uplink => 4,
        }
    }

    /// Orders targets for one prefix: kind first, then the endpoint or node name.
    fn order(&self) -> (u8, String) {
        let tie = match self {
            Target::Local { endpoint, .. } => format!("{:010}", endpoint.0),
            Target::Node { node, .. } => node.clone(),
            Target::Router { addr } => addr.to_string(),
            Target::Blackhole(why) => (*why).to_string(),
            Target::Host | Target::Uplink => String::new(),
        };
        (self.rank(), tie)
    }
}

/// One computed route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// Destination.
    pub prefix: IpNet,
    /// Target.
    pub target: Target,
    /// Origin.
    pub origin: Origin,
}

/// A local workload as routing sees it.
#[derive(Debug, Clone)]
pub struct LocalRoute {
    /// Table id.
    pub endpoint: abi::EndpointId,
    /// Host-side interface.
    pub interface: String,
    /// Addresses.
    pub addrs: Vec<IpNet>,
}

/// Everything [`compute`] reads.
pub struct RouteInputs<'a> {
    /// This node's name.
    pub me: &'a str,
    /// This node's addresses.
    pub my_addrs: &'a NodeAddrs,
    /// Local workloads whose interface is known.
    pub locals: &'a [LocalRoute],
    /// Confirmed affinities (node, block).
    pub affinities: &'a [(String, IpNet)],
    /// Pools.
    pub pools: &'a [PoolInfo],
    /// Other nodes that can be routed to (address known and MAC resolved).
    pub routable: &'a dyn Fn(&str) -> bool,
    /// Every node's addresses (for "has no address" reasons).
    pub nodes: &'a BTreeMap<String, NodeAddrs>,
    /// Other nodes' workloads: (node, addresses).
    pub remote: &'a [(String, Vec<IpNet>)],
    /// Routes learned over BGP, already mapped to targets.
    pub learned: &'a [(IpNet, Target)],
}

/// The table encapsulation for a pool mode.
pub fn encap_of(mode: EncapMode) -> abi::IpipMode {
    match mode {
        EncapMode::Always => abi::IpipMode::Always,
        EncapMode::CrossSubnet => abi::IpipMode::CrossSubnet,
        EncapMode::Never => abi::IpipMode::Never,
    }
}

/// The pool containing `net` (the longest such pool).
pub fn pool_of<'a>(pools: &'a [PoolInfo], net: &IpNet) -> Option<&'a PoolInfo> {
    pools
        .iter()
        .filter(|p| p.cidr.contains(net))
        .max_by_key(|p| p.cidr.prefix_len())
}

/// Where a BGP route learned through the router `next_hop` (no node's address) goes.
///
/// - `next_hop` outside the uplink's subnet of its family (multi-hop eBGP), or the default
///   gateway itself → `Uplink`: the gateway is the way there;
/// - on the subnet with its MAC resolved (`mac_known`) → `Router`, forwarded to it directly;
/// - on the subnet, MAC not resolved yet (the caller asks the kernel to resolve it and
///   retries every second, as for nodes): a prefix inside an IP pool → `Blackhole`, as an
///   unresolved node's blocks (pool traffic sent unencapsulated to a gateway that may not
///   route it would leak); any other prefix → `Uplink`, what the route did before the
///   router was known, so a router that never answers ARP/ND costs a detour through the
///   gateway rather than an outage.
pub fn fabric_target(
    prefix: &IpNet,
    next_hop: IpAddr,
    my_addrs: &NodeAddrs,
    gateway: Option<IpAddr>,
    mac_known: bool,
    pools: &[PoolInfo],
) -> Target {
    let mine = if next_hop.is_ipv4() {
        my_addrs.v4
    } else {
        my_addrs.v6
    };
    let on_link = mine.is_some_and(|m| m.contains(&next_hop));
    if !on_link || gateway == Some(next_hop) {
        Target::Uplink
    } else if mac_known {
        Target::Router { addr: next_hop }
    } else if pool_of(pools, prefix).is_some() {
        Target::Blackhole("next hop MAC unresolved")
    } else {
        Target::Uplink
    }
}

/// Computes the routes, one per prefix, sorted by prefix.
pub fn compute(input: &RouteInputs<'_>) -> Vec<RouteEntry> {
    let mut out: BTreeMap<IpNet, RouteEntry> = BTreeMap::new();
    let mut add = |prefix: IpNet, target: Target, origin: Origin| {
        let prefix = prefix.trunc();
        let entry = RouteEntry {
            prefix,
            target,
            origin,
        };
        match out.get(&prefix) {
            Some(old) if old.target.order() <= entry.target.order() => {}
            _ => {
                out.insert(prefix, entry);
            }
        }
    };
    add(
        IpNet::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).unwrap_or_default(),
        Target::Uplink,
        Origin::Default,
    );
    if let Ok(net) = IpNet::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0) {
        add(net, Target::Uplink, Origin::Default);
    }
    for addr in [input.my_addrs.v4, input.my_addrs.v6].into_iter().flatten() {
        add(IpNet::from(addr.addr()), Target::Host, Origin::NodeAddress);
    }
    for (node, block) in input.affinities {
        let target = if node == input.me {
            Target::Blackhole("own block")
        } else if !input
            .nodes
            .get(node)
            .is_some_and(|a| a.v4.is_some() || a.v6.is_some())
        {
            Target::Blackhole("node has no address")
        } else if !(input.routable)(node) {
            Target::Blackhole("node MAC unresolved")
        } else {
            Target::Node {
                node: node.clone(),
                encap: pool_of(input.pools, block).map(|p| encap_of(p.ipip)),
            }
        };
        add(*block, target, Origin::IpamBlock);
    }
    // Borrowed addresses: a workload of another node whose address lies outside every block
    // affine to that node is routed to it as a host route (Calico advertises these as /32s).
    for (node, addrs) in input.remote {
        if node == input.me || !(input.routable)(node) {
            continue;
        }
        for addr in addrs {
            let in_own_block = input
                .affinities
                .iter()
                .any(|(n, b)| n == node && b.contains(&addr.addr()));
            if !in_own_block {
                add(
                    *addr,
                    Target::Node {
                        node: node.clone(),
                        encap: pool_of(input.pools, addr).map(|p| encap_of(p.ipip)),
                    },
                    Origin::RemoteWorkload,
                );
            }
        }
    }
    for local in input.locals {
        for addr in &local.addrs {
            add(
                *addr,
                Target::Local {
                    endpoint: local.endpoint,
                    interface: local.interface.clone(),
                },
                Origin::LocalWorkload,
            );
        }
    }
    // BGP fills only prefixes nothing else gives.
    for (prefix, target) in input.learned {
        out.entry(prefix.trunc()).or_insert_with(|| RouteEntry {
            prefix: prefix.trunc(),
            target: target.clone(),
            origin: Origin::Bgp,
        });
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn routes_follow_calico() {
        let me = NodeAddrs {
            v4: Some(net("198.18.1.11/24")),
            v6: None,
        };
        let mut nodes = BTreeMap::new();
        nodes.insert("n1".to_string(), me.clone());
        nodes.insert(
            "n2".to_string(),
            NodeAddrs {
                v4: Some(net("198.18.1.12/24")),
                v6: None,
            },
        );
        nodes.insert(
            "n3".to_string(),
            NodeAddrs {
                v4: Some(net("198.18.2.13/24")),
                v6: None,
            },
        );
        nodes.insert("n4".to_string(), NodeAddrs::default());
        let pools = vec![PoolInfo {
            cidr: net("198.19.0.0/20"),
            ipip: EncapMode::CrossSubnet,
            nat_outgoing: true,
        }];
        let affinities = vec![
            ("n1".to_string(), net("198.19.0.0/26")),
            ("n2".to_string(), net("198.19.0.64/26")),
            ("n3".to_string(), net("198.19.0.128/26")),
            ("n4".to_string(), net("198.19.0.192/26")),
            ("n2".to_string(), net("198.20.0.0/26")),
        ];
        let locals = vec![LocalRoute {
            endpoint: abi::EndpointId(7),
            interface: "tor0123456789a".into(),
            addrs: vec![net("198.19.0.4/32")],
        }];
        let routable = |n: &str| n != "n3";
        let remote = vec![
            // Inside n2's own block: covered by the block route.
            ("n2".to_string(), vec![net("198.19.0.70/32")]),
            // Borrowed from n1's block: a host route to n2.
            ("n2".to_string(), vec![net("198.19.0.9/32")]),
        ];
        let learned = vec![
            // Also an IPAM block: the datastore's route wins.
            (
                net("198.19.0.64/26"),
                Target::Node {
                    node: "n3".into(),
                    encap: None,
                },
            ),
            // Known only to BGP.
            (net("198.18.200.0/24"), Target::Uplink),
        ];
        let routes = compute(&RouteInputs {
            learned: &learned,
            remote: &remote,
            me: "n1",
            my_addrs: &me,
            locals: &locals,
            affinities: &affinities,
            pools: &pools,
            routable: &routable,
            nodes: &nodes,
        });
        let find = |p: &str| routes.iter().find(|r| r.prefix == net(p)).unwrap().clone();
        assert_eq!(find("0.0.0.0/0").target, Target::Uplink);
        assert_eq!(find("::/0").target, Target::Uplink);
        assert_eq!(find("198.18.1.11/32").target, Target::Host);
        assert_eq!(find("198.19.0.0/26").target, Target::Blackhole("own block"));
        assert_eq!(
            find("198.19.0.4/32"),
            RouteEntry {
                prefix: net("198.19.0.4/32"),
                target: Target::Local {
                    endpoint: abi::EndpointId(7),
                    interface: "tor0123456789a".into()
                },
                origin: Origin::LocalWorkload
            }
        );
        assert_eq!(
            find("198.19.0.64/26").target,
            Target::Node {
                node: "n2".into(),
                encap: Some(abi::IpipMode::CrossSubnet)
            }
        );
        assert_eq!(find("198.19.0.64/26").origin, Origin::IpamBlock);
        // Outside every pool: the node-wide mode applies.
        assert_eq!(
            find("198.20.0.0/26").target,
            Target::Node {
                node: "n2".into(),
                encap: None
            }
        );
        assert_eq!(
            find("198.19.0.128/26").target,
            Target::Blackhole("node MAC unresolved")
        );
        assert_eq!(
            find("198.19.0.192/26").target,
            Target::Blackhole("node has no address")
        );
        assert!(routes.iter().all(|r| r.prefix != net("198.19.0.70/32")));
        assert_eq!(find("198.19.0.9/32").origin, Origin::RemoteWorkload);
        assert_eq!(
            find("198.19.0.9/32").target,
            Target::Node {
                node: "n2".into(),
                encap: Some(abi::IpipMode::CrossSubnet)
            }
        );
        assert_eq!(find("198.18.200.0/24").origin, Origin::Bgp);
        assert_eq!(find("198.18.200.0/24").target, Target::Uplink);
        assert_eq!(routes.len(), 11);
    }

    #[test]
    fn fabric_routes_go_to_their_router_on_the_uplink_subnet() {
        let me = NodeAddrs {
            v4: Some(net("198.18.1.11/24")),
            v6: Some(net("2001:db8:1::11/64")),
        };
        let pools = vec![PoolInfo {
            cidr: net("198.19.0.0/20"),
            ipip: EncapMode::Never,
            nat_outgoing: false,
        }];
        let gw_addr: IpAddr = "198.18.1.1".parse().unwrap();
        let gw = Some(gw_addr);
        let tor: IpAddr = "198.18.1.2".parse().unwrap();
        let ext = net("203.0.113.0/24");
        assert_eq!(
            fabric_target(&ext, tor, &me, gw, true, &pools),
            Target::Router { addr: tor }
        );
        // The gateway itself, and a router off the subnet (multi-hop eBGP): the gateway.
        assert_eq!(
            fabric_target(&ext, gw_addr, &me, gw, true, &pools),
            Target::Uplink
        );
        let far: IpAddr = "198.18.9.2".parse().unwrap();
        assert_eq!(
            fabric_target(&ext, far, &me, gw, true, &pools),
            Target::Uplink
        );
        // Unresolved: outside the pools through the gateway, inside dropped like blocks.
        assert_eq!(
            fabric_target(&ext, tor, &me, gw, false, &pools),
            Target::Uplink
        );
        assert_eq!(
            fabric_target(&net("198.19.1.0/26"), tor, &me, gw, false, &pools),
            Target::Blackhole("next hop MAC unresolved")
        );
        // IPv6 is matched against the node's IPv6 subnet.
        let tor6: IpAddr = "2001:db8:1::2".parse().unwrap();
        assert_eq!(
            fabric_target(&net("2001:db8:99::/48"), tor6, &me, gw, true, &pools),
            Target::Router { addr: tor6 }
        );
        let v4_only = NodeAddrs {
            v4: me.v4,
            v6: None,
        };
        assert_eq!(
            fabric_target(&net("2001:db8:99::/48"), tor6, &v4_only, gw, true, &pools),
            Target::Uplink
        );
    }

    #[test]
    fn pool_modes_map_to_encapsulation() {
        assert_eq!(encap_of(EncapMode::Always), abi::IpipMode::Always);
        assert_eq!(encap_of(EncapMode::Never), abi::IpipMode::Never);
        let pools = vec![
            PoolInfo {
                cidr: net("198.19.0.0/16"),
                ipip: EncapMode::Always,
                nat_outgoing: false,
            },
            PoolInfo {
                cidr: net("198.19.4.0/22"),
                ipip: EncapMode::Never,
                nat_outgoing: false,
            },
        ];
        assert_eq!(
            pool_of(&pools, &net("198.19.4.64/26")).unwrap().ipip,
            EncapMode::Never
        );
        assert_eq!(
            pool_of(&pools, &net("198.19.0.64/26")).unwrap().ipip,
            EncapMode::Always
        );
        assert!(pool_of(&pools, &net("198.18.0.0/26")).is_none());
    }
}

//! Learned routes, and how they become fastpath routes.

use crate::plan::{AgentPlan, PoolRule};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use tortie_abi::{IpipMode, NodeId, Route, RouteTarget};

/// The origin tag of routes this crate produces for the fastpath's route table (shown by
/// `tortiectl node routes`).
pub const ROUTE_ORIGIN: &str = "bgp";

/// A best route the speaker learned from a peer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LearnedRoute {
    /// Destination.
    pub prefix: IpNet,
    /// Where to forward (the originating node for mesh and reflected routes).
    pub next_hop: Option<IpAddr>,
    /// The peer it was learned from.
    pub from_peer: IpAddr,
    /// Learned over eBGP.
    pub ebgp: bool,
    /// LOCAL_PREF as received.
    pub local_pref: Option<u32>,
    /// Standard communities as received.
    pub communities: Vec<u32>,
}

/// A change of the learned-route table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum RouteChange {
    /// A new best route for the prefix, or a changed one.
    Add(LearnedRoute),
    /// No learned route is left for the prefix.
    Remove(IpNet),
}

/// A learned route in the fastpath's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastpathRoute {
    /// The route for `Tables::routes`.
    pub route: Route,
    /// Always [`ROUTE_ORIGIN`].
    pub origin: &'static str,
    /// For a fabric route (`RouteTarget::Uplink`: the next hop is a router, not a node), that
    /// router's address. The caller, which knows the uplink's subnet and the neighbour table,
    /// forwards straight to it when it is on the uplink's segment (a node table entry of its
    /// own), and through the default gateway otherwise (multi-hop eBGP). `None` for every
    /// other target.
    pub via_router: Option<IpAddr>,
}

impl AgentPlan {
    /// Maps a learned route to a fastpath route; see [`fastpath_route`].
    pub fn fastpath_route(
        &self,
        learned: &LearnedRoute,
        nodes: &HashMap<IpAddr, NodeId>,
    ) -> Option<FastpathRoute> {
        fastpath_route(learned, &self.pools, &self.node_addrs, nodes)
    }

    /// A `Blackhole` route per advertised block, as Calico's BIRD installs one for each
    /// affine block that is not a single address: addresses of the block without a workload
    /// are dropped here instead of following a covering route (the workloads' own /32 or
    /// /128 routes are more specific). Host prefixes in `local_blocks` (borrowed addresses)
    /// get none: the workload's own route is that prefix.
    pub fn blackhole_routes(&self) -> Vec<Route> {
        self.advertisements
            .iter()
            .filter(|a| a.kind == crate::AdvertisementKind::Block)
            .filter(|a| a.prefix.prefix_len() < a.prefix.max_prefix_len())
            .filter_map(|a| tortie_abi::Prefix::new(a.prefix.network(), a.prefix.prefix_len()))
            .map(|prefix| Route {
                prefix,
                target: RouteTarget::Blackhole,
            })
            .collect()
    }
}

/// Maps a learned route to a fastpath route.
///
/// - next hop is a known node's address (`nodes`: every node address, IPv4 and IPv6, to the
///   id the tables give that node) → `RouteTarget::Node`; inside an IP pool the pool's
///   `ipipMode` is the encapsulation (`Never` for VXLAN pools: the fastpath has no VXLAN),
///   outside every pool (another node's service CIDR, say) `Never`;
/// - any other next hop (a ToR or router) → `RouteTarget::Uplink` with the router in
///   [`FastpathRoute::via_router`]: the caller turns it into a route to that router when it
///   shares the uplink's subnet (the tables have no router target of their own), else keeps
///   the default gateway;
/// - no route when the next hop is this node itself, or the prefix cannot be represented.
pub fn fastpath_route(
    learned: &LearnedRoute,
    pools: &[PoolRule],
    own_addrs: &[IpAddr],
    nodes: &HashMap<IpAddr, NodeId>,
) -> Option<FastpathRoute> {
    let prefix = tortie_abi::Prefix::new(learned.prefix.network(), learned.prefix.prefix_len())?;
    let next_hop = learned.next_hop?;
    if own_addrs.contains(&next_hop) {
        return None;
    }
    let mut via_router = None;
    let target = match nodes.get(&next_hop) {
        Some(node) => {
            let encap = pools
                .iter()
                .find(|p| p.cidr.contains(&learned.prefix))
                .map_or(IpipMode::Never, |p| p.ipip);
            // IP-in-IP carries IPv4 only.
            let encap = if learned.prefix.addr().is_ipv4() {
                encap
            } else {
                IpipMode::Never
            };
            RouteTarget::Node {
                node: *node,
                encap: Some(encap),
            }
        }
        None => {
            via_router = Some(next_hop);
            RouteTarget::Uplink
        }
    };
    Some(FastpathRoute {
        route: Route { prefix, target },
        origin: ROUTE_ORIGIN,
        via_router,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(prefix: &str, nh: &str) -> LearnedRoute {
        LearnedRoute {
            prefix: prefix.parse().unwrap(),
            next_hop: Some(nh.parse().unwrap()),
            from_peer: nh.parse().unwrap(),
            ebgp: false,
            local_pref: Some(100),
            communities: vec![],
        }
    }

    fn pools() -> Vec<PoolRule> {
        vec![
            PoolRule {
                cidr: "198.19.0.0/20".parse().unwrap(),
                ipip: IpipMode::CrossSubnet,
                export_disabled: false,
            },
            PoolRule {
                cidr: "2001:db8:1::/112".parse().unwrap(),
                ipip: IpipMode::Never,
                export_disabled: false,
            },
        ]
    }

    fn nodes() -> HashMap<IpAddr, NodeId> {
        [
            ("198.18.1.12".parse().unwrap(), NodeId(2)),
            ("2001:db8::12".parse().unwrap(), NodeId(2)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn pool_block_from_a_node_goes_to_that_node_with_the_pool_encap() {
        let own = ["198.18.1.11".parse().unwrap()];
        let r = fastpath_route(
            &learned("198.19.0.64/26", "198.18.1.12"),
            &pools(),
            &own,
            &nodes(),
        )
        .unwrap();
        assert_eq!(r.origin, "bgp");
        assert_eq!(r.via_router, None);
        assert_eq!(r.route.prefix.to_string_lossy(), "198.19.0.64/26");
        assert_eq!(
            r.route.target,
            RouteTarget::Node {
                node: NodeId(2),
                encap: Some(IpipMode::CrossSubnet)
            }
        );
        let v6 = fastpath_route(
            &learned("2001:db8:1::40/122", "2001:db8::12"),
            &pools(),
            &own,
            &nodes(),
        )
        .unwrap();
        assert_eq!(
            v6.route.target,
            RouteTarget::Node {
                node: NodeId(2),
                encap: Some(IpipMode::Never)
            }
        );
    }

    #[test]
    fn non_pool_route_from_a_node_is_native_and_fabric_routes_name_their_router() {
        let own = ["198.18.1.11".parse().unwrap()];
        let svc = fastpath_route(
            &learned("10.96.0.0/12", "198.18.1.12"),
            &pools(),
            &own,
            &nodes(),
        )
        .unwrap();
        assert_eq!(
            svc.route.target,
            RouteTarget::Node {
                node: NodeId(2),
                encap: Some(IpipMode::Never)
            }
        );
        let tor = fastpath_route(
            &learned("203.0.113.0/24", "198.18.1.1"),
            &pools(),
            &own,
            &nodes(),
        )
        .unwrap();
        assert_eq!(tor.route.target, RouteTarget::Uplink);
        assert_eq!(tor.via_router, Some("198.18.1.1".parse().unwrap()));
        assert_eq!(svc.via_router, None);
        // A router's IPv6 next hop is carried the same way.
        let tor6 = fastpath_route(
            &learned("2001:db8:99::/48", "2001:db8::1"),
            &pools(),
            &own,
            &nodes(),
        )
        .unwrap();
        assert_eq!(tor6.route.target, RouteTarget::Uplink);
        assert_eq!(tor6.via_router, Some("2001:db8::1".parse().unwrap()));
        assert!(
            fastpath_route(
                &learned("203.0.113.0/24", "198.18.1.11"),
                &pools(),
                &own,
                &nodes()
            )
            .is_none()
        );
        let mut no_nh = learned("203.0.113.0/24", "198.18.1.1");
        no_nh.next_hop = None;
        assert!(fastpath_route(&no_nh, &pools(), &own, &nodes()).is_none());
    }

    trait Lossy {
        fn to_string_lossy(&self) -> String;
    }
    impl Lossy for tortie_abi::Prefix {
        fn to_string_lossy(&self) -> String {
            format!("{}/{}", self.addr, self.len)
        }
    }
}

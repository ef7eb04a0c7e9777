//! Which cross-node connections travel IP-in-IP, so that explain can tell, as the dataplane
//! does, that a decapsulated packet arrives on the tunnel (Calico's `tunl0`) and meets none of
//! the receiving node's uplink host endpoint programs.
//!
//! The decision is the one tortie-control programs into the fastpath's routes: the pool
//! holding the destination address says `ipipMode` Always, Never, or CrossSubnet (encapsulate
//! when the destination node's address is outside the source node's subnet, both taken from
//! the Node resources' `bgp.ipv4Address`). IP-in-IP carries IPv4 only.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use tortie_model::Resource;
use tortie_model::types::EncapMode;

/// The pools' encapsulation modes and the nodes' IPv4 addresses, from the datastore.
#[derive(Debug, Default, Clone)]
pub struct Tunnels {
    pools: Vec<(IpNet, EncapMode)>,
    nodes: HashMap<String, IpNet>,
}

impl Tunnels {
    /// Collects IPPools (enabled or not: a disabled pool's existing blocks keep their mode)
    /// and Nodes with an IPv4 BGP address.
    pub fn from_resources(resources: &[Resource]) -> Tunnels {
        let mut tunnels = Tunnels::default();
        for resource in resources {
            match resource {
                Resource::IpPool(pool) => tunnels.pools.push((
                    pool.spec.cidr.0,
                    pool.spec.ipip_mode.unwrap_or(EncapMode::Never),
                )),
                Resource::Node(node) => {
                    if let Some(addr) = node.spec.bgp.as_ref().and_then(|b| b.ipv4_address) {
                        tunnels.nodes.insert(node.metadata.name.clone(), addr.0);
                    }
                }
                _ => {}
            }
        }
        tunnels
    }

    /// Whether a packet from a workload on `from_node` to `dst` on `to_node` is sent
    /// IP-in-IP. Unknown pools or nodes: not encapsulated.
    pub fn encapsulated(&self, from_node: &str, to_node: &str, dst: IpAddr) -> bool {
        if !dst.is_ipv4() || from_node == to_node {
            return false;
        }
        let mode = self
            .pools
            .iter()
            .filter(|(cidr, _)| cidr.contains(&dst))
            .max_by_key(|(cidr, _)| cidr.prefix_len())
            .map(|(_, mode)| *mode);
        match mode {
            Some(EncapMode::Always) => true,
            Some(EncapMode::CrossSubnet) => {
                match (self.nodes.get(from_node), self.nodes.get(to_node)) {
                    (Some(me), Some(peer)) => !me.contains(&peer.addr()),
                    _ => false,
                }
            }
            Some(EncapMode::Never) | None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnels(mode: EncapMode) -> Tunnels {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        Tunnels {
            pools: vec![(net("198.19.0.0/20"), mode)],
            nodes: [
                ("n1".to_string(), net("198.18.1.11/24")),
                ("n2".to_string(), net("198.18.1.12/24")),
                ("n3".to_string(), net("198.18.2.13/24")),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn pool_mode_and_subnets_decide() {
        let dst: IpAddr = "198.19.0.70".parse().unwrap();
        let outside: IpAddr = "198.18.3.2".parse().unwrap();
        let cross = tunnels(EncapMode::CrossSubnet);
        assert!(!cross.encapsulated("n1", "n2", dst), "same subnet: native");
        assert!(
            cross.encapsulated("n1", "n3", dst),
            "across the router: IP-in-IP"
        );
        assert!(!cross.encapsulated("n1", "n1", dst), "same node");
        assert!(!cross.encapsulated("n1", "n3", outside), "not in a pool");
        assert!(!cross.encapsulated("n1", "nx", dst), "unknown node");
        assert!(tunnels(EncapMode::Always).encapsulated("n1", "n2", dst));
        assert!(!tunnels(EncapMode::Never).encapsulated("n1", "n3", dst));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(!tunnels(EncapMode::Always).encapsulated("n1", "n2", v6));
    }
}

//! The traffic the fastpath owns on the uplink, computed from the tables (node contract):
//! destinations inside a route to a local workload or a DNAT external address; IP-in-IP
//! from a node's tunnel addresses; TCP/UDP (and ICMP echo replies) to the node's SNAT
//! address with a port (id) in the SNAT range. Everything else on the uplink belongs to the
//! kernel (ARP for the node, BGP, SSH, ...).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tortie_abi::{RouteTarget, Tables};

/// What the uplink's steering program redirects to the AF_XDP sockets. Same fields as
/// tortie-xsk's `OwnedTraffic`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owned {
    /// IPv4 destinations owned (local workloads, DNAT external addresses).
    pub v4_prefixes: Vec<(Ipv4Addr, u8)>,
    /// IPv6 destinations owned.
    pub v6_prefixes: Vec<(Ipv6Addr, u8)>,
    /// Outer IPv4 sources accepted for IP-in-IP.
    pub tunnel_sources: Vec<Ipv4Addr>,
    /// The node's IPv4 SNAT address (return traffic to it in `snat_ports` is owned).
    pub node_v4: Option<Ipv4Addr>,
    /// The node's IPv6 SNAT address.
    pub node_v6: Option<Ipv6Addr>,
    /// SNAT port range, inclusive.
    pub snat_ports: (u16, u16),
}

/// Computes the owned set of `tables`, sorted and without duplicates (so equal tables give
/// equal sets, and the maps are rewritten only when the set changed).
pub fn owned_traffic(tables: &Tables) -> Owned {
    let mut o = Owned::default();
    let add = |addr: IpAddr, len: u8, o: &mut Owned| match addr {
        IpAddr::V4(a) => o.v4_prefixes.push((a, len)),
        IpAddr::V6(a) => o.v6_prefixes.push((a, len)),
    };
    for r in &tables.routes {
        if matches!(r.target, RouteTarget::Local(_)) {
            add(r.prefix.addr, r.prefix.len, &mut o);
        }
    }
    for d in &tables.nat.dnat {
        let len = if d.external.is_ipv4() { 32 } else { 128 };
        add(d.external, len, &mut o);
    }
    for n in &tables.nodes {
        // Only the listed sources: a router's entry (a BGP next hop) lists none.
        for a in &n.tunnel_allowed {
            if let IpAddr::V4(v4) = a {
                o.tunnel_sources.push(*v4);
            }
        }
    }
    o.node_v4 = match tables.nat.snat_v4 {
        Some(IpAddr::V4(a)) => Some(a),
        _ => None,
    };
    o.node_v6 = match tables.nat.snat_v6 {
        Some(IpAddr::V6(a)) => Some(a),
        _ => None,
    };
    o.snat_ports = (tables.nat.port_lo, tables.nat.port_hi);
    o.v4_prefixes.sort_unstable();
    o.v4_prefixes.dedup();
    o.v6_prefixes.sort_unstable();
    o.v6_prefixes.dedup();
    o.tunnel_sources.sort_unstable();
    o.tunnel_sources.dedup();
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use tortie_abi::{DnatEntry, EndpointId, Node, NodeId, Prefix, Route};

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn owned_set_follows_the_contract() {
        let mut t = Tables {
            routes: vec![
                Route {
                    prefix: Prefix::new(v4("198.19.0.4"), 32).unwrap(),
                    target: RouteTarget::Local(EndpointId(1)),
                },
                Route {
                    prefix: Prefix::new(v4("198.19.0.64"), 26).unwrap(),
                    target: RouteTarget::Node {
                        node: NodeId(1),
                        encap: None,
                    },
                },
                Route {
                    prefix: Prefix::new(v4("0.0.0.0"), 0).unwrap(),
                    target: RouteTarget::Uplink,
                },
                Route {
                    prefix: Prefix::new(v4("2001:db8:1::5"), 128).unwrap(),
                    target: RouteTarget::Local(EndpointId(1)),
                },
            ],
            ..Tables::default()
        };
        t.nat.dnat = vec![DnatEntry {
            external: v4("198.18.3.9"),
            internal: v4("198.19.0.4"),
        }];
        t.nodes = vec![Node {
            id: NodeId(1),
            addr: v4("198.18.1.12"),
            mac: [0; 6],
            tunnel_allowed: vec![v4("198.18.1.12"), v4("198.18.2.13")],
        }];
        // A router that is a BGP next hop: forwarded to, never a tunnel source.
        t.nodes.push(Node {
            id: NodeId(2),
            addr: v4("198.18.1.2"),
            mac: [0; 6],
            tunnel_allowed: vec![],
        });
        t.nat.snat_v4 = Some(v4("198.18.1.11"));
        t.nat.port_lo = 61000;
        t.nat.port_hi = 65535;
        let o = owned_traffic(&t);
        assert_eq!(
            o.v4_prefixes,
            vec![
                ("198.18.3.9".parse().unwrap(), 32),
                ("198.19.0.4".parse().unwrap(), 32)
            ],
            "local routes and DNAT externals only, not node or uplink routes"
        );
        assert_eq!(o.v6_prefixes, vec![("2001:db8:1::5".parse().unwrap(), 128)]);
        assert_eq!(
            o.tunnel_sources,
            vec![
                "198.18.1.12".parse::<Ipv4Addr>().unwrap(),
                "198.18.2.13".parse().unwrap()
            ]
        );
        assert_eq!(o.node_v4, Some("198.18.1.11".parse().unwrap()));
        assert_eq!(o.node_v6, None);
        assert_eq!(o.snat_ports, (61000, 65535));
    }
}

//! Building the non-policy tables (settings, NAT, nodes, endpoints, routes) from the
//! current state, one cycle at a time.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use tortie_abi as abi;
use tortie_model::types::{EncapMode, EndpointToHostAction};

use crate::cluster::PoolInfo;
use crate::engine::Engine;
use crate::host::{SNAT_PORT_HI, SNAT_PORT_LO};
use crate::netlink::Mac;
use crate::routes::{self, LocalRoute, RouteInputs, Target};
use crate::tables::{Plain, route_key};

fn subnet(n: Option<IpNet>) -> Option<abi::SubnetAddr> {
    n.map(|n| abi::SubnetAddr {
        addr: n.addr(),
        subnet_len: n.prefix_len(),
    })
}

pub(crate) fn prefix(n: &IpNet) -> abi::Prefix {
    let t = n.trunc();
    abi::Prefix::new(t.addr(), t.prefix_len()).unwrap_or_else(|| abi::Prefix::host(n.addr()))
}

fn host_action(a: EndpointToHostAction) -> abi::HostAction {
    match a {
        EndpointToHostAction::Drop => abi::HostAction::Drop,
        EndpointToHostAction::Accept => abi::HostAction::Accept,
        EndpointToHostAction::Return => abi::HostAction::Return,
    }
}

impl Engine {
    /// The MAC to send to for another node's address: its own when it shares the uplink's
    /// subnet, else the gateway's.
    fn node_mac(&self, addr: &IpNet) -> Option<Mac> {
        if self.on_uplink_subnet(addr.addr()) {
            self.neigh.macs.get(&addr.addr()).copied()
        } else {
            self.neigh.gateway_mac
        }
    }

    /// The BGP speaker's learned routes as route targets: a next hop that is another node
    /// goes to that node (dropped while its MAC is unresolved, like its blocks), a router
    /// next hop as [`routes::fabric_target`] says. Records the routers on the uplink's
    /// subnet in `fabric_next_hops` (their MACs are refreshed with the nodes') and the
    /// unresolved ones in `unresolved_nodes` as `next-hop ADDR` (so the neighbour table is
    /// read every second until they resolve).
    fn learned_routes(
        &mut self,
        routable: &BTreeSet<String>,
        pools: &[PoolInfo],
    ) -> Vec<(IpNet, Target)> {
        let Some(bgp) = &self.bgp else {
            self.fabric_next_hops.clear();
            return Vec::new();
        };
        let mut ids = HashMap::new();
        let mut names = HashMap::new();
        for (name, addrs) in &self.cluster.nodes {
            if *name == self.node {
                continue;
            }
            let id = abi::NodeId(self.node_ids.get(name));
            names.insert(id, name.clone());
            for a in [addrs.v4, addrs.v6].into_iter().flatten() {
                ids.insert(a.addr(), id);
            }
        }
        let mut routers = BTreeSet::new();
        let mut unresolved = BTreeSet::new();
        let learned = bgp
            .learned(&ids)
            .into_iter()
            .filter_map(|r| {
                let prefix = IpNet::new(r.route.prefix.addr, r.route.prefix.len).ok()?;
                let target = match r.route.target {
                    abi::RouteTarget::Node { node, encap } => {
                        let name = names.get(&node)?;
                        if routable.contains(name) {
                            Target::Node {
                                node: name.clone(),
                                encap,
                            }
                        } else {
                            Target::Blackhole("node MAC unresolved")
                        }
                    }
                    abi::RouteTarget::Uplink => match r.via_router {
                        Some(router) => {
                            let gateway = self
                                .neigh
                                .gateway
                                .map(|g| g.addr)
                                .filter(|g| g.is_ipv4() == router.is_ipv4());
                            let mac_known = self.neigh.macs.contains_key(&router);
                            let target = routes::fabric_target(
                                &prefix,
                                router,
                                &self.host.my,
                                gateway,
                                mac_known,
                                pools,
                            );
                            if self.on_uplink_subnet(router) && gateway != Some(router) {
                                routers.insert(router);
                                if !mac_known {
                                    unresolved.insert(router);
                                }
                            }
                            target
                        }
                        None => Target::Uplink,
                    },
                    abi::RouteTarget::Host => Target::Host,
                    abi::RouteTarget::Blackhole => Target::Blackhole("bgp"),
                    abi::RouteTarget::Local(_) => return None,
                };
                Some((prefix, target))
            })
            .collect();
        self.fabric_next_hops = routers.into_iter().collect();
        self.unresolved_nodes
            .extend(unresolved.into_iter().map(|a| format!("next-hop {a}")));
        learned
    }

    /// Whether `addr` is on the uplink's subnet of its family.
    fn on_uplink_subnet(&self, addr: IpAddr) -> bool {
        let mine = if addr.is_ipv4() {
            self.host.my.v4
        } else {
            self.host.my.v6
        };
        mine.is_some_and(|m| m.contains(&addr))
    }

    /// Brings every local endpoint's program ids in the sent tables up to date and returns
    /// an upsert for each entry that changed: all that a change of plans alone needs
    /// (endpoints moved between program groups). Routes, nodes and settings are neither
    /// recomputed nor copied nor compared (with 1,000 routes, recomputing them cost about a
    /// millisecond on every such policy change, and copying and comparing them a tenth of
    /// that); the operations are those [`crate::tables::diff_plain`] would give, in the same
    /// (table id) order.
    pub(crate) fn regroup_endpoints(&mut self) -> Vec<abi::Op> {
        let mut upserts = Vec::new();
        for (table_id, id) in &self.in_tables {
            let Some(old) = self.sent.plain.endpoints.get(table_id) else {
                continue;
            };
            let addrs = match (self.cluster.workloads.get(id), self.cluster.hosts.get(id)) {
                (Some(w), _) => &w.addrs,
                (None, Some(h)) => &h.addrs,
                (None, None) => continue,
            };
            let entry = endpoint_entry(
                *table_id,
                old.if_index,
                old.kind,
                old.mac,
                addrs,
                self.shared.ids(id),
            );
            if *old != entry {
                upserts.push(abi::Op::UpsertEndpoint(entry.clone()));
                self.sent.plain.endpoints.insert(*table_id, entry);
            }
        }
        upserts
    }

    /// The non-policy tables from the current state.
    pub(crate) fn build_plain(&mut self) -> Plain {
        let mut plain = Plain::default();
        let pools: Vec<_> = self.cluster.pools.values().cloned().collect();
        let uplink = self.host.uplink.clone();
        plain.settings = abi::Settings {
            mtu: uplink
                .as_ref()
                .map_or(1500, |l| u16::try_from(l.mtu).unwrap_or(u16::MAX)),
            default_endpoint_to_host: host_action(self.cluster.endpoint_to_host()),
            ipip_mode: if pools.iter().any(|p| p.ipip == EncapMode::Always) {
                abi::IpipMode::Always
            } else if pools.iter().any(|p| p.ipip == EncapMode::CrossSubnet) {
                abi::IpipMode::CrossSubnet
            } else {
                abi::IpipMode::Never
            },
            node_v4: subnet(self.host.my.v4),
            node_v6: subnet(self.host.my.v6),
            uplink_if: uplink.as_ref().map_or(0, |l| l.index),
            uplink_mac: uplink.as_ref().map_or([0; 6], |l| l.mac),
            gateway_mac: self.neigh.gateway_mac.unwrap_or([0; 6]),
            host_if: self.host.host_link.index,
            ..abi::Settings::default()
        };
        plain.nat = abi::Nat {
            dnat: self
                .cluster
                .workloads
                .values()
                .flat_map(|w| w.nats.iter())
                .map(|(external, internal)| abi::DnatEntry {
                    external: *external,
                    internal: *internal,
                })
                .collect(),
            snat_pools: pools
                .iter()
                .filter(|p| p.nat_outgoing)
                .map(|p| prefix(&p.cidr))
                .collect(),
            all_pools: pools.iter().map(|p| prefix(&p.cidr)).collect(),
            snat_v4: self.host.my.v4.map(|n| n.addr()),
            snat_v6: self.host.my.v6.map(|n| n.addr()),
            port_lo: SNAT_PORT_LO,
            port_hi: SNAT_PORT_HI,
        };

        // Other nodes: those with an address and a resolved MAC.
        self.unresolved_nodes.clear();
        let mut routable = BTreeSet::new();
        let nodes: Vec<(String, IpNet)> = self
            .cluster
            .nodes
            .iter()
            .filter(|(name, _)| **name != self.node)
            .filter_map(|(name, a)| a.v4.or(a.v6).map(|addr| (name.clone(), addr)))
            .collect();
        for (name, addr) in nodes {
            let Some(mac) = self.node_mac(&addr) else {
                self.unresolved_nodes.push(name);
                continue;
            };
            let id = self.node_ids.get(&name);
            plain.nodes.insert(
                id,
                abi::Node {
                    id: abi::NodeId(id),
                    addr: addr.addr(),
                    mac,
                    tunnel_allowed: vec![addr.addr()],
                },
            );
            routable.insert(name);
        }

        // Local endpoints whose interface exists.
        self.pending_endpoints.clear();
        self.in_tables.clear();
        let mut locals = Vec::new();
        let workloads: Vec<_> = self
            .cluster
            .workloads
            .iter()
            .map(|(id, w)| (id.clone(), w.clone()))
            .collect();
        for (id, w) in workloads {
            let Some(link) = self.links.get(&self.nl, &w.interface) else {
                self.pending_endpoints.push(id.to_string());
                continue;
            };
            let table_id = self.endpoint_ids.get(&id);
            plain.endpoints.insert(
                table_id,
                endpoint_entry(
                    table_id,
                    link.index,
                    abi::EndpointKind::Workload,
                    w.mac,
                    &w.addrs,
                    self.shared.ids(&id),
                ),
            );
            self.in_tables.insert(table_id, id);
            locals.push(LocalRoute {
                endpoint: abi::EndpointId(table_id),
                interface: w.interface.clone(),
                addrs: w.addrs.clone(),
            });
        }
        let hosts: Vec<_> = self
            .cluster
            .hosts
            .iter()
            .map(|(id, h)| (id.clone(), h.clone()))
            .collect();
        for (id, h) in hosts {
            let Some(link) = self.links.get(&self.nl, &h.interface) else {
                continue;
            };
            let table_id = self.endpoint_ids.get(&id);
            plain.endpoints.insert(
                table_id,
                endpoint_entry(
                    table_id,
                    link.index,
                    abi::EndpointKind::Host,
                    link.mac,
                    &h.addrs,
                    self.shared.ids(&id),
                ),
            );
            self.in_tables.insert(table_id, id);
        }

        // `--routes-from-ipam=false`: other nodes' blocks and addresses come from BGP only.
        let from_ipam = self.bgp.as_ref().is_none_or(|b| b.routes_from_ipam());
        let affinities: Vec<(String, IpNet)> = (self.cluster.affinities.keys())
            .filter(|(node, _)| from_ipam || *node == self.node)
            .cloned()
            .collect();
        let remote: Vec<(String, Vec<IpNet>)> = if from_ipam {
            self.cluster.remote_workloads.values().cloned().collect()
        } else {
            Vec::new()
        };
        let learned = self.learned_routes(&routable, &pools);
        let is_routable = |n: &str| routable.contains(n);
        self.routes = routes::compute(&RouteInputs {
            learned: &learned,
            me: &self.node,
            my_addrs: &self.host.my,
            locals: &locals,
            affinities: &affinities,
            pools: &pools,
            routable: &is_routable,
            nodes: &self.cluster.nodes,
            remote: &remote,
        });
        // Routers that routes go through: a node entry each, native only.
        let routers: BTreeSet<IpAddr> = (self.routes.iter())
            .filter_map(|r| match r.target {
                Target::Router { addr } => Some(addr),
                _ => None,
            })
            .collect();
        let mut router_ids = HashMap::new();
        for addr in routers {
            let Some(mac) = self.neigh.macs.get(&addr).copied() else {
                continue;
            };
            let id = self.node_ids.get(&router_key(addr));
            router_ids.insert(addr, abi::NodeId(id));
            plain
                .nodes
                .insert(id, router_entry(abi::NodeId(id), addr, mac));
        }
        let routes: Vec<abi::Route> = self
            .routes
            .iter()
            .map(|r| abi::Route {
                prefix: prefix(&r.prefix),
                target: match &r.target {
                    Target::Local { endpoint, .. } => abi::RouteTarget::Local(*endpoint),
                    Target::Node { node, encap } => abi::RouteTarget::Node {
                        node: abi::NodeId(self.node_ids.get(node)),
                        encap: *encap,
                    },
                    Target::Router { addr } => match router_ids.get(addr) {
                        Some(node) => abi::RouteTarget::Node {
                            node: *node,
                            encap: Some(abi::IpipMode::Never),
                        },
                        None => abi::RouteTarget::Uplink,
                    },
                    Target::Uplink => abi::RouteTarget::Uplink,
                    Target::Host => abi::RouteTarget::Host,
                    Target::Blackhole(_) => abi::RouteTarget::Blackhole,
                },
            })
            .collect();
        for r in routes {
            plain.routes.insert(route_key(&r.prefix), r);
        }
        plain
    }
}

/// The key of a BGP next-hop router in the node id space. Kubernetes node names cannot
/// hold a space, so no node's id is ever shared with a router's.
fn router_key(addr: IpAddr) -> String {
    format!("next-hop {addr}")
}

/// A router's `nodes` entry: its address and MAC for native forwarding, and no tunnel
/// source, so no IP-in-IP is accepted from it on the router's account.
fn router_entry(id: abi::NodeId, addr: IpAddr, mac: Mac) -> abi::Node {
    abi::Node {
        id,
        addr,
        mac,
        tunnel_allowed: Vec::new(),
    }
}

/// One endpoint's table entry; `programs` in the order `SharedPrograms::ids` gives them
/// (ingress, egress, untracked ingress, untracked egress, preDNAT, forward ingress,
/// forward egress). Workloads never carry forward programs (only host endpoints forward).
fn endpoint_entry(
    table_id: u32,
    if_index: u32,
    kind: abi::EndpointKind,
    mac: abi::MacAddr,
    addrs: &[IpNet],
    programs: [Option<abi::ProgramId>; 7],
) -> abi::Endpoint {
    let [
        ingress,
        egress,
        untracked_ingress,
        untracked_egress,
        pre_dnat,
        forward_ingress,
        forward_egress,
    ] = programs;
    let host = kind == abi::EndpointKind::Host;
    abi::Endpoint {
        id: abi::EndpointId(table_id),
        if_index,
        kind,
        mac,
        addrs: addrs.iter().map(prefix).collect(),
        ingress,
        egress,
        untracked_ingress,
        untracked_egress,
        pre_dnat,
        forward_ingress: forward_ingress.filter(|_| host),
        forward_egress: forward_egress.filter(|_| host),
    }
}

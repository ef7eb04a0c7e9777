//! Building an immutable table generation from the tables control wrote.
//!
//! [`Generation::build`] runs on the config thread (it allocates freely); workers only read
//! the result. Dangling references are handled explicitly and fail closed: an endpoint that
//! names a missing program gets a deny-all program, a route to a missing endpoint or node
//! drops with `DropReason::DanglingRoute`, a rule that names a missing IP set sees it empty.

mod endpoint;
mod flow;
mod policy;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tortie_abi as abi;
use tortie_classifier as cls;
use tortie_tables::{DnatMap, Ipv4Lpm, Ipv4LpmBuilder, Ipv6Lpm, Ipv6LpmBuilder, LpmError};

pub use endpoint::EndpointInfo;
use endpoint::owned_v4;
pub use flow::{Arrival, FlowPrograms};
pub use policy::{CompiledProgram, Decision};

/// Why a generation could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The classifier rejected a program's rules.
    #[error("program {program}: {source}")]
    Classifier {
        /// Program id.
        program: u32,
        /// The classifier's error.
        source: cls::ClassifierError,
    },
    /// A route prefix was rejected by the LPM builder.
    #[error("route {prefix:?}: {source}")]
    Route {
        /// The prefix.
        prefix: abi::Prefix,
        /// The LPM error.
        source: LpmError,
    },
    /// More rules than 32-bit priorities can number.
    #[error("too many rules in one program")]
    TooManyRules,
    /// More routes than the LPM can hold values for.
    #[error("too many routes")]
    TooManyRoutes,
}

/// A route target with references resolved and the encapsulation decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// To a local endpoint (index into the endpoint table).
    Local(u32),
    /// To a remote node (index into the node table); `encap` for IPv4 IP-in-IP.
    Node {
        /// Node index.
        node: u32,
        /// Encapsulate IPv4 traffic.
        encap: bool,
    },
    /// Out of the uplink to the default gateway.
    Uplink,
    /// To the host itself.
    Host,
    /// Drop.
    Blackhole,
    /// The route names something the tables lack.
    Dangling,
}

/// A remote node as workers see it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// Tunnel endpoint / next hop.
    pub addr: IpAddr,
    /// MAC to send to on the uplink.
    pub mac: abi::MacAddr,
}

/// One immutable generation of every table. Shared by workers behind an `Arc`.
#[derive(Debug)]
pub struct Generation {
    /// The generation number control assigned.
    pub id: abi::Generation,
    /// Node-wide settings.
    pub settings: abi::Settings,
    endpoints: Vec<EndpointInfo>,
    /// Endpoint index by interface index, for `if_index < DENSE_IF_LIMIT`.
    ep_by_if: Vec<u32>,
    /// Endpoints on larger interface indices, sorted by interface index.
    ep_by_if_sparse: Vec<(u32, u32)>,
    programs: Vec<CompiledProgram>,
    /// IP sets, shared by every program.
    pub sets: cls::IpSetTable,
    routes_v4: Ipv4Lpm,
    routes_v6: Ipv6Lpm,
    targets: Vec<Target>,
    dnat: DnatMap,
    /// natOutgoing pools.
    pub snat_pools: Vec<abi::Prefix>,
    /// Every pool.
    pub all_pools: Vec<abi::Prefix>,
    /// SNAT source for IPv4.
    pub snat_v4: Option<IpAddr>,
    /// SNAT source for IPv6.
    pub snat_v6: Option<IpAddr>,
    /// SNAT port range (0, 0 = the conntrack default).
    pub snat_ports: (u16, u16),
    nodes: Vec<NodeInfo>,
    tunnel_sources: Vec<Ipv4Addr>,
    rule_ids: Vec<abi::RuleId>,
    /// The programs of the host endpoint on the uplink, resolved once here so that a new
    /// flow leaving through the uplink does not look the endpoint up again.
    uplink_hep: UplinkPrograms,
}

/// The uplink host endpoint's programs for flows leaving through it (all `None` when the
/// uplink has no host endpoint of the tables).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct UplinkPrograms {
    /// Its normal egress program: flows the host itself sends out of the uplink.
    pub egress: Option<u32>,
    /// Its `applyOnForward` egress program: forwarded flows leaving through the uplink.
    pub forward_egress: Option<u32>,
}

const NONE: u32 = u32::MAX;
/// The endpoint id the host interface's entry carries (no table endpoint has it: control
/// numbers endpoints from 1 upwards).
pub const HOST_INTERFACE_ID: abi::EndpointId = abi::EndpointId(u32::MAX);
/// Interface indices below this are looked up in a dense array.
pub const DENSE_IF_LIMIT: u32 = 1 << 16;

impl Generation {
    /// Compiles `tables` as generation `id`.
    pub fn build(id: abi::Generation, tables: &abi::Tables) -> Result<Self, CompileError> {
        let mut rule_ids = Vec::new();
        let mut slot_by_rule: HashMap<abi::RuleId, u32> = HashMap::new();
        let mut programs = Vec::with_capacity(tables.programs.len() + 1);
        let mut program_index = HashMap::new();
        for p in &tables.programs {
            let compiled = CompiledProgram::compile(p, |rid| {
                *slot_by_rule.entry(rid).or_insert_with(|| {
                    rule_ids.push(rid);
                    (rule_ids.len() - 1) as u32
                })
            })?;
            program_index.insert(p.id, programs.len() as u32);
            programs.push(compiled);
        }
        let deny_all = programs.len() as u32;
        programs.push(CompiledProgram::deny_all());
        let resolve = |id: Option<abi::ProgramId>| {
            id.map(|id| program_index.get(&id).copied().unwrap_or(deny_all))
        };

        let mut endpoints = Vec::with_capacity(tables.endpoints.len());
        let mut ep_index = HashMap::new();
        let mut ep_by_if = Vec::new();
        let mut ep_by_if_sparse = Vec::new();
        for e in &tables.endpoints {
            let idx = endpoints.len() as u32;
            ep_index.insert(e.id, idx);
            if e.if_index < DENSE_IF_LIMIT {
                let i = e.if_index as usize;
                if ep_by_if.len() <= i {
                    ep_by_if.resize(i + 1, NONE);
                }
                ep_by_if[i] = idx;
            } else {
                ep_by_if_sparse.push((e.if_index, idx));
            }
            endpoints.push(EndpointInfo {
                id: e.id,
                if_index: e.if_index,
                kind: e.kind,
                mac: e.mac,
                addrs: e.addrs.clone(),
                ingress: resolve(e.ingress),
                egress: resolve(e.egress),
                untracked_ingress: resolve(e.untracked_ingress),
                untracked_egress: resolve(e.untracked_egress),
                pre_dnat: resolve(e.pre_dnat),
                forward_ingress: resolve(e.forward_ingress),
                forward_egress: resolve(e.forward_egress),
                host_interface: false,
                owned_v4: owned_v4(&e.addrs),
            });
        }
        // The host interface gets an entry of its own (unless the tables already put an
        // endpoint on it), so the parse node resolves frames from the host to it and the
        // policy node can tell host-originated flows from forwarded ones.
        let host_if = tables.settings.host_if;
        let host_taken = tables.endpoints.iter().any(|e| e.if_index == host_if);
        if host_if != 0 && host_if != tables.settings.uplink_if && !host_taken {
            let idx = endpoints.len() as u32;
            if host_if < DENSE_IF_LIMIT {
                let i = host_if as usize;
                if ep_by_if.len() <= i {
                    ep_by_if.resize(i + 1, NONE);
                }
                ep_by_if[i] = idx;
            } else {
                ep_by_if_sparse.push((host_if, idx));
            }
            endpoints.push(EndpointInfo {
                id: HOST_INTERFACE_ID,
                if_index: host_if,
                kind: abi::EndpointKind::Host,
                mac: [0; 6],
                addrs: Vec::new(),
                ingress: None,
                egress: None,
                untracked_ingress: None,
                untracked_egress: None,
                pre_dnat: None,
                forward_ingress: None,
                forward_egress: None,
                owned_v4: Vec::new(),
                host_interface: true,
            });
        }
        ep_by_if_sparse.sort_unstable();

        let mut sets = cls::IpSetTable::new();
        for s in &tables.ip_sets {
            let nets = s
                .members
                .iter()
                .filter_map(|p| ipnet::IpNet::new(p.addr, p.len).ok());
            sets.upsert(cls::SetId(s.id.0), cls::IpSet::from_nets(nets));
        }

        let mut node_index = HashMap::new();
        let mut nodes = Vec::with_capacity(tables.nodes.len());
        let mut tunnel_sources = Vec::new();
        for n in &tables.nodes {
            node_index.insert(n.id, nodes.len() as u32);
            nodes.push(NodeInfo {
                addr: n.addr,
                mac: n.mac,
            });
            tunnel_sources.extend(
                // Only the listed sources: a router's entry (a BGP next hop) lists none, so
                // no IP-in-IP is accepted from it.
                n.tunnel_allowed.iter().filter_map(|a| match a {
                    IpAddr::V4(v4) => Some(*v4),
                    IpAddr::V6(_) => None,
                }),
            );
        }
        tunnel_sources.sort_unstable();
        tunnel_sources.dedup();

        let settings = tables.settings.clone();
        let mut targets = Vec::with_capacity(tables.routes.len());
        let mut b4 = Ipv4LpmBuilder::new();
        let mut b6 = Ipv6LpmBuilder::new();
        for r in &tables.routes {
            let target = match r.target {
                abi::RouteTarget::Local(e) => ep_index
                    .get(&e)
                    .map_or(Target::Dangling, |i| Target::Local(*i)),
                abi::RouteTarget::Node { node, encap } => match node_index.get(&node) {
                    None => Target::Dangling,
                    Some(&i) => {
                        let mode = encap.unwrap_or(settings.ipip_mode);
                        let addr = nodes[i as usize].addr;
                        let encap = match mode {
                            abi::IpipMode::Never => false,
                            abi::IpipMode::Always => true,
                            abi::IpipMode::CrossSubnet => {
                                !settings.node_v4.is_some_and(|n| n.same_subnet(addr))
                            }
                        };
                        Target::Node {
                            node: i,
                            encap: encap && addr.is_ipv4(),
                        }
                    }
                },
                abi::RouteTarget::Uplink => Target::Uplink,
                abi::RouteTarget::Host => Target::Host,
                abi::RouteTarget::Blackhole => Target::Blackhole,
            };
            let value = u32::try_from(targets.len()).map_err(|_| CompileError::TooManyRoutes)?;
            targets.push(target);
            let err = |source| CompileError::Route {
                prefix: r.prefix,
                source,
            };
            match r.prefix.addr {
                IpAddr::V4(a) => {
                    let p = tortie_tables::Ipv4Prefix::new(a, r.prefix.len).map_err(err)?;
                    b4.insert(p, value).map_err(err)?;
                }
                IpAddr::V6(a) => {
                    let p = tortie_tables::Ipv6Prefix::new(a, r.prefix.len).map_err(err)?;
                    b6.insert(p, value).map_err(err)?;
                }
            }
        }

        let mut dnat = DnatMap::new();
        for d in &tables.nat.dnat {
            // A duplicate external address keeps its first mapping; control validates these.
            let _ = dnat.insert(d.external, d.internal);
        }

        let mut generation = Self {
            id,
            settings,
            endpoints,
            ep_by_if,
            ep_by_if_sparse,
            programs,
            sets,
            routes_v4: b4.build(),
            routes_v6: b6.build(),
            targets,
            dnat,
            snat_pools: tables.nat.snat_pools.clone(),
            all_pools: tables.nat.all_pools.clone(),
            snat_v4: tables.nat.snat_v4,
            snat_v6: tables.nat.snat_v6,
            snat_ports: (tables.nat.port_lo, tables.nat.port_hi),
            nodes,
            tunnel_sources,
            rule_ids,
            uplink_hep: UplinkPrograms::default(),
        };
        generation.uplink_hep = generation
            .endpoint_on(generation.settings.uplink_if)
            .map(|i| generation.endpoint(i))
            .filter(|e| e.is_host_endpoint())
            .map_or_else(UplinkPrograms::default, |e| UplinkPrograms {
                egress: e.egress,
                forward_egress: e.forward_out(),
            });
        Ok(generation)
    }

    /// The endpoint index on `if_index`.
    #[inline]
    pub fn endpoint_on(&self, if_index: u32) -> Option<u32> {
        if if_index < DENSE_IF_LIMIT {
            self.ep_by_if
                .get(if_index as usize)
                .copied()
                .filter(|i| *i != NONE)
        } else {
            self.ep_by_if_sparse
                .binary_search_by_key(&if_index, |(i, _)| *i)
                .ok()
                .map(|k| self.ep_by_if_sparse[k].1)
        }
    }

    /// Endpoint by index.
    #[inline]
    pub fn endpoint(&self, idx: u32) -> &EndpointInfo {
        &self.endpoints[idx as usize]
    }

    /// Program by index.
    #[inline]
    pub fn program(&self, idx: u32) -> &CompiledProgram {
        &self.programs[idx as usize]
    }

    /// Node by index.
    #[inline]
    pub fn node(&self, idx: u32) -> &NodeInfo {
        &self.nodes[idx as usize]
    }

    /// Route lookup.
    #[inline]
    pub fn route(&self, dst: IpAddr) -> Option<Target> {
        let v = match dst {
            IpAddr::V4(a) => self.routes_v4.lookup(a),
            IpAddr::V6(a) => self.routes_v6.lookup(a),
        }?;
        self.targets.get(v as usize).copied()
    }

    /// Route lookup for an IPv4 address.
    #[inline]
    pub fn route_v4(&self, dst: Ipv4Addr) -> Option<Target> {
        self.routes_v4
            .lookup(dst)
            .and_then(|v| self.targets.get(v as usize).copied())
    }

    /// Route lookup for an IPv6 address.
    #[inline]
    pub fn route_v6(&self, dst: Ipv6Addr) -> Option<Target> {
        self.routes_v6
            .lookup(dst)
            .and_then(|v| self.targets.get(v as usize).copied())
    }

    /// The internal address of a floating IP.
    #[inline]
    pub fn dnat(&self, external: IpAddr) -> Option<IpAddr> {
        if self.dnat.is_empty() {
            return None;
        }
        self.dnat.internal_for(external)
    }

    /// Whether an IP-in-IP packet from `src` comes from a known node.
    #[inline]
    pub fn tunnel_source_allowed(&self, src: Ipv4Addr) -> bool {
        self.tunnel_sources.binary_search(&src).is_ok()
    }

    /// Whether a flow from `src` to `dst` is masqueraded (natOutgoing: from a natOutgoing
    /// pool to outside every pool), and to which address.
    #[inline]
    pub fn snat_for(&self, src: IpAddr, dst: IpAddr) -> Option<IpAddr> {
        if self.snat_pools.is_empty() || !self.snat_pools.iter().any(|p| p.contains(src)) {
            return None;
        }
        if self.all_pools.iter().any(|p| p.contains(dst)) {
            return None;
        }
        if src.is_ipv4() {
            self.snat_v4
        } else {
            self.snat_v6
        }
    }

    /// Number of rule hit-counter slots.
    pub fn rule_slots(&self) -> usize {
        self.rule_ids.len()
    }

    /// The rule id counted in `slot`.
    pub fn rule_id(&self, slot: u32) -> Option<abi::RuleId> {
        self.rule_ids.get(slot as usize).copied()
    }

    /// The policy epoch: flows whose cached verdict was computed under another epoch are
    /// re-classified on their next packet.
    #[inline]
    pub fn policy_epoch(&self) -> u32 {
        self.id.0 as u32
    }

    /// The node's own address of `ip`'s family, for ICMP errors.
    pub fn node_addr(&self, v6: bool) -> Option<IpAddr> {
        if v6 {
            self.settings.node_v6.map(|a| a.addr)
        } else {
            self.settings.node_v4.map(|a| a.addr)
        }
    }
}

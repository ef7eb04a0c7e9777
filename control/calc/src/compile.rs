//! The compiler to the fastpath's tables (`tortie-abi`): IP sets and per-endpoint policy
//! programs, as a snapshot or as deltas driven by the graph's events.
//!
//! Names become numbers here: every IP set and program gets a stable numeric id the first
//! time it is compiled. Named ports, which the table format has no member type for, are
//! expanded: a named-port set over a selector becomes one address set per `(protocol, port)`
//! that the matching endpoints declare, and a rule using it becomes one rule per such pair
//! (same action, consecutive), so the classifier only ever sees addresses and port ranges.
//!
//! A named port in `notPorts` is a negated conjunction ("not (address declares port P and the
//! port is P)"); it is compiled as disjoint pieces split on the port (see
//! `exclude_named_ports`). Should a rule still be inexpressible ([`CalcError::Unsupported`]),
//! [`FastpathCompiler::delta`] fails closed: the endpoint gets normal ingress and egress
//! programs (and the `applyOnForward` programs its plan needs) with no tiers and no
//! profiles (deny everything), and
//! [`FastpathCompiler::failed_closed`] names it with the reason, for the daemon to report.

use crate::error::CalcError;
use crate::flush::Direction;
use crate::graph::CalcGraph;
use crate::ids::{EndpointId, IpSetId};
use crate::plan::{CalcEvent, EndpointPlan, IpSetMember, TierPlan};
use crate::rules::{CompiledRule, PeerMatch};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tortie_abi as abi;
use tortie_model::types::{Action, TierAction};

/// Which program of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProgramKind {
    /// Normal ingress.
    Ingress,
    /// Normal egress.
    Egress,
    /// doNotTrack ingress (host endpoints).
    UntrackedIngress,
    /// doNotTrack egress (host endpoints).
    UntrackedEgress,
    /// preDNAT (host endpoints, ingress).
    PreDnat,
    /// `applyOnForward` policy for forwarded traffic arriving through a host endpoint.
    ForwardIngress,
    /// `applyOnForward` policy for forwarded traffic leaving through a host endpoint.
    ForwardEgress,
}

impl ProgramKind {
    /// Every kind, in the order endpoint entries list their programs (ingress, egress,
    /// untracked ingress, untracked egress, preDNAT, forward ingress, forward egress).
    pub const ALL: [ProgramKind; 7] = [
        ProgramKind::Ingress,
        ProgramKind::Egress,
        ProgramKind::UntrackedIngress,
        ProgramKind::UntrackedEgress,
        ProgramKind::PreDnat,
        ProgramKind::ForwardIngress,
        ProgramKind::ForwardEgress,
    ];

    /// Whether `plan` needs a program of this kind: normal programs always; the others
    /// only when some policy of that stage applies (an absent preDNAT or doNotTrack program
    /// decides nothing, an absent forward program allows, as Calico does with no such
    /// policy).
    pub fn needed(self, plan: &EndpointPlan) -> bool {
        match self {
            ProgramKind::Ingress | ProgramKind::Egress => true,
            ProgramKind::UntrackedIngress => !plan.ingress.untracked.is_empty(),
            ProgramKind::UntrackedEgress => !plan.egress.untracked.is_empty(),
            ProgramKind::PreDnat => !plan.ingress.pre_dnat.is_empty(),
            ProgramKind::ForwardIngress => !plan.ingress.forward.is_empty(),
            ProgramKind::ForwardEgress => !plan.egress.forward.is_empty(),
        }
    }

    /// Whether a plan that cannot be compiled gets a deny-everything program of this kind
    /// (failing closed): the normal programs, and the forward programs the plan needs
    /// (their absence would allow forwarded traffic).
    pub fn denies_when_failed(self, plan: &EndpointPlan) -> bool {
        match self {
            ProgramKind::Ingress | ProgramKind::Egress => true,
            ProgramKind::ForwardIngress | ProgramKind::ForwardEgress => self.needed(plan),
            _ => false,
        }
    }
}

impl ProgramKind {
    fn direction(self) -> Direction {
        match self {
            ProgramKind::Ingress
            | ProgramKind::UntrackedIngress
            | ProgramKind::PreDnat
            | ProgramKind::ForwardIngress => Direction::Ingress,
            ProgramKind::Egress | ProgramKind::UntrackedEgress | ProgramKind::ForwardEgress => {
                Direction::Egress
            }
        }
    }
}

/// Compiles graph state into table entries, remembering the numeric ids it handed out.
#[derive(Debug, Default)]
pub struct FastpathCompiler {
    set_ids: HashMap<String, u32>,
    next_set: u32,
    program_ids: HashMap<(EndpointId, ProgramKind), u32>,
    next_program: u32,
    next_rule: u32,
    /// Named-port sets and the `(protocol, port)` groups last compiled for each.
    named_groups: HashMap<IpSetId, BTreeSet<(u8, u16)>>,
    /// Endpoints whose policy could not be compiled, with why: they get deny-all programs.
    failed_closed: BTreeMap<EndpointId, String>,
}

fn prefix(net: &IpNet) -> abi::Prefix {
    abi::Prefix::new(net.addr(), net.prefix_len()).unwrap_or_else(|| abi::Prefix::host(net.addr()))
}

fn ranges(list: &[(u16, u16)]) -> Vec<abi::PortRange> {
    list.iter()
        .map(|&(lo, hi)| abi::PortRange { lo, hi })
        .collect()
}

fn action(a: Action) -> abi::Action {
    match a {
        Action::Allow => abi::Action::Allow,
        Action::Deny => abi::Action::Deny,
        Action::Log => abi::Action::Log,
        Action::Pass => abi::Action::Pass,
    }
}

/// One alternative of a side's port match: ranges, or one named-port group.
#[derive(Clone)]
enum PortAlt {
    Any,
    Ranges(Vec<(u16, u16)>),
    Named { set: u32, protocol: u8, port: u16 },
}

/// Which side of a rule a port match belongs to.
#[derive(Clone, Copy)]
enum Side {
    Src,
    Dst,
}

/// Rewrites one match so that it also requires "the side's port is none of the named ports
/// in `groups`" (a named port in `notPorts`), as a set of disjoint matches the table format
/// can express.
///
/// A named port `(protocol, port)` excludes a packet only when the side's address is one of
/// the endpoints declaring it (its derived address set). So, for a match of protocol `p`:
/// - for each group `(p, port)` the match could see: the same match restricted to that one
///   port, with the group's address sets added to the side's `not_sets` (the packet is
///   excluded exactly when its address declares the port);
/// - for every other port: the match with all those ports added to `not_ranges`.
///
/// The pieces are disjoint in the side's port, so their order does not matter and together
/// they match exactly what the Calico rule matches. Calico requires a protocol wherever
/// `notPorts` is used; a match without one is refused as unsupported.
fn exclude_named_ports(
    m: abi::RuleMatch,
    side: Side,
    groups: &BTreeMap<(u8, u16), Vec<abi::IpSetId>>,
) -> Result<Vec<abi::RuleMatch>, CalcError> {
    let Some(protocol) = m.protocol else {
        if groups.is_empty() {
            return Ok(vec![m]);
        }
        return Err(CalcError::Unsupported(
            "a named port in notPorts without a protocol",
        ));
    };
    let ports_of = |m: &abi::RuleMatch| match side {
        Side::Src => m.src_ports.clone(),
        Side::Dst => m.dst_ports.clone(),
    };
    let current = ports_of(&m);
    let in_any =
        |list: &[abi::PortRange], port: u16| list.iter().any(|r| r.lo <= port && port <= r.hi);
    let mut out = Vec::new();
    let mut excluded = Vec::new();
    for (&(p, port), sets) in groups {
        if p != protocol
            || (!current.ranges.is_empty() && !in_any(&current.ranges, port))
            || in_any(&current.not_ranges, port)
        {
            continue;
        }
        let mut piece = m.clone();
        let (ports, addrs) = match side {
            Side::Src => (&mut piece.src_ports, &mut piece.src),
            Side::Dst => (&mut piece.dst_ports, &mut piece.dst),
        };
        ports.ranges = vec![abi::PortRange { lo: port, hi: port }];
        addrs.not_sets.extend(sets.iter().copied());
        out.push(piece);
        excluded.push(abi::PortRange { lo: port, hi: port });
    }
    let mut rest = m;
    match side {
        Side::Src => rest.src_ports.not_ranges.extend(excluded),
        Side::Dst => rest.dst_ports.not_ranges.extend(excluded),
    }
    out.push(rest);
    Ok(out)
}

impl FastpathCompiler {
    /// A compiler with no ids handed out.
    pub fn new() -> Self {
        Self::default()
    }

    fn set_id(&mut self, key: String) -> abi::IpSetId {
        let next = &mut self.next_set;
        abi::IpSetId(*self.set_ids.entry(key).or_insert_with(|| {
            *next += 1;
            *next
        }))
    }

    /// The numeric id of a graph IP set.
    pub fn ip_set_id(&mut self, id: &IpSetId) -> abi::IpSetId {
        self.set_id(id.0.to_string())
    }

    fn derived_id(&mut self, id: &IpSetId, protocol: u8, port: u16) -> abi::IpSetId {
        self.set_id(format!("{id}#{protocol}/{port}"))
    }

    /// The program id of an endpoint's program.
    pub fn program_id(&mut self, endpoint: &EndpointId, kind: ProgramKind) -> abi::ProgramId {
        let next = &mut self.next_program;
        abi::ProgramId(
            *self
                .program_ids
                .entry((endpoint.clone(), kind))
                .or_insert_with(|| {
                    *next += 1;
                    *next
                }),
        )
    }

    /// The table entries of one graph IP set: the set itself, or for a named-port set one
    /// address set per `(protocol, port)` group.
    pub fn ip_sets(&mut self, graph: &CalcGraph, id: &IpSetId) -> Vec<abi::IpSet> {
        let Some(members) = graph.ip_set_members(id) else {
            return Vec::new();
        };
        let mut plain = Vec::new();
        let mut groups: BTreeMap<(u8, u16), Vec<abi::Prefix>> = BTreeMap::new();
        let mut named = false;
        for member in members {
            match member {
                IpSetMember::Net(net) => plain.push(prefix(&net)),
                IpSetMember::Port {
                    addr,
                    protocol,
                    port,
                } => {
                    named = true;
                    groups
                        .entry((protocol, port))
                        .or_default()
                        .push(abi::Prefix::host(addr));
                }
            }
        }
        if !named && id.0.starts_with("n:") {
            named = true;
        }
        if !named {
            return vec![abi::IpSet {
                id: self.ip_set_id(id),
                members: plain,
            }];
        }
        self.named_groups
            .insert(id.clone(), groups.keys().copied().collect());
        groups
            .into_iter()
            .map(|((protocol, port), members)| abi::IpSet {
                id: self.derived_id(id, protocol, port),
                members,
            })
            .collect()
    }

    fn port_alts(&mut self, graph: &CalcGraph, peer: &PeerMatch) -> Vec<PortAlt> {
        if peer.ports.is_empty() && peer.named_ports.is_empty() {
            return vec![PortAlt::Any];
        }
        let mut alts = Vec::new();
        if !peer.ports.is_empty() {
            alts.push(PortAlt::Ranges(peer.ports.clone()));
        }
        for named in &peer.named_ports {
            let groups: BTreeSet<(u8, u16)> = graph
                .ip_set_members(named)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| match m {
                    IpSetMember::Port { protocol, port, .. } => Some((protocol, port)),
                    IpSetMember::Net(_) => None,
                })
                .collect();
            self.named_groups.insert(named.clone(), groups.clone());
            for (protocol, port) in groups {
                let set = self.derived_id(named, protocol, port).0;
                alts.push(PortAlt::Named {
                    set,
                    protocol,
                    port,
                });
            }
        }
        alts
    }

    fn addr_match(&mut self, peer: &PeerMatch) -> abi::AddrMatch {
        abi::AddrMatch {
            nets: peer.nets.iter().map(prefix).collect(),
            not_nets: peer.not_nets.iter().map(prefix).collect(),
            sets: peer.set.iter().map(|s| self.ip_set_id(s)).collect(),
            not_sets: peer.not_set.iter().map(|s| self.ip_set_id(s)).collect(),
        }
    }

    fn rules(
        &mut self,
        graph: &CalcGraph,
        rule: &CompiledRule,
    ) -> Result<Vec<abi::Rule>, CalcError> {
        if rule.never_matches {
            return Ok(Vec::new());
        }
        let base = abi::RuleMatch {
            ip_version: rule.ip_version.map(|v| {
                if v == 4 {
                    abi::IpVersion::V4
                } else {
                    abi::IpVersion::V6
                }
            }),
            protocol: rule.protocol,
            not_protocol: rule.not_protocol,
            src: self.addr_match(&rule.src),
            dst: self.addr_match(&rule.dst),
            src_ports: abi::PortMatch {
                ranges: Vec::new(),
                not_ranges: ranges(&rule.src.not_ports),
            },
            dst_ports: abi::PortMatch {
                ranges: Vec::new(),
                not_ranges: ranges(&rule.dst.not_ports),
            },
            icmp: rule.icmp.map(|m| abi::IcmpMatch {
                icmp_type: m.icmp_type,
                code: m.code,
            }),
            not_icmp: rule.not_icmp.map(|m| abi::IcmpMatch {
                icmp_type: m.icmp_type,
                code: m.code,
            }),
        };
        let src_alts = self.port_alts(graph, &rule.src);
        let dst_alts = self.port_alts(graph, &rule.dst);
        let mut out: Vec<abi::RuleMatch> = Vec::new();
        for src in &src_alts {
            for dst in &dst_alts {
                let mut m = base.clone();
                let mut ok = true;
                for (alt, ports, addrs) in [
                    (src, &mut m.src_ports, &mut m.src),
                    (dst, &mut m.dst_ports, &mut m.dst),
                ] {
                    match alt {
                        PortAlt::Any => {}
                        PortAlt::Ranges(list) => ports.ranges = ranges(list),
                        PortAlt::Named {
                            set,
                            protocol,
                            port,
                        } => {
                            ports.ranges = vec![abi::PortRange {
                                lo: *port,
                                hi: *port,
                            }];
                            addrs.sets.push(abi::IpSetId(*set));
                            match m.protocol {
                                Some(p) if p != *protocol => ok = false,
                                _ => m.protocol = Some(*protocol),
                            }
                        }
                    }
                }
                if ok {
                    out.push(m);
                }
            }
        }
        for side in [Side::Src, Side::Dst] {
            let peer = match side {
                Side::Src => &rule.src,
                Side::Dst => &rule.dst,
            };
            if peer.not_named_ports.is_empty() {
                continue;
            }
            let groups = self.not_named_groups(graph, &peer.not_named_ports);
            let mut split = Vec::with_capacity(out.len());
            for m in out {
                split.extend(exclude_named_ports(m, side, &groups)?);
            }
            out = split;
        }
        Ok(out
            .into_iter()
            .map(|matches| {
                self.next_rule += 1;
                abi::Rule {
                    id: abi::RuleId(self.next_rule),
                    action: action(rule.action),
                    matches,
                }
            })
            .collect())
    }

    /// The `(protocol, port)` groups of a side's `notPorts` named ports, each with the
    /// derived address sets of every named-port set that declares it. Remembered in
    /// `named_groups` so a membership change recompiles the users, as for `ports`.
    fn not_named_groups(
        &mut self,
        graph: &CalcGraph,
        sets: &[IpSetId],
    ) -> BTreeMap<(u8, u16), Vec<abi::IpSetId>> {
        let mut groups: BTreeMap<(u8, u16), Vec<abi::IpSetId>> = BTreeMap::new();
        for named in sets {
            let pairs: BTreeSet<(u8, u16)> = graph
                .ip_set_members(named)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| match m {
                    IpSetMember::Port { protocol, port, .. } => Some((protocol, port)),
                    IpSetMember::Net(_) => None,
                })
                .collect();
            self.named_groups.insert(named.clone(), pairs.clone());
            for (protocol, port) in pairs {
                let set = self.derived_id(named, protocol, port);
                groups.entry((protocol, port)).or_default().push(set);
            }
        }
        groups
    }

    fn policy_rules(
        &mut self,
        graph: &CalcGraph,
        rules: &[CompiledRule],
    ) -> Result<abi::Policy, CalcError> {
        let mut out = Vec::new();
        for rule in rules {
            out.extend(self.rules(graph, rule)?);
        }
        Ok(abi::Policy { rules: out })
    }

    fn tiers(
        &mut self,
        graph: &CalcGraph,
        tiers: &[TierPlan],
        direction: Direction,
        stage_default: bool,
    ) -> Result<Vec<abi::Tier>, CalcError> {
        let mut out = Vec::new();
        for tier in tiers {
            let mut policies = Vec::new();
            for id in &tier.policies {
                let Some(policy) = graph.policy(id) else {
                    continue;
                };
                let rules = match direction {
                    Direction::Ingress => &policy.ingress,
                    Direction::Egress => &policy.egress,
                };
                policies.push(self.policy_rules(graph, rules)?);
            }
            let default_action = match (stage_default, tier.default_action) {
                (true, TierAction::Deny) => abi::TierDefault::Deny,
                _ => abi::TierDefault::Pass,
            };
            out.push(abi::Tier {
                default_action,
                policies,
            });
        }
        Ok(out)
    }

    /// Compiles one program of an endpoint. Normal programs end in the endpoint's profiles
    /// (and so deny when none decides); doNotTrack and preDNAT programs have no end-of-tier
    /// drop (their tiers default to Pass) and no profiles, so "no decision" reaches the end
    /// of the program, which the fastpath reads as "continue" for those stages.
    ///
    /// Forward (`applyOnForward`) programs keep each tier's end-of-tier action, as Felix's
    /// forward chains do, and have no profiles (Felix renders none into them); traffic that
    /// every tier passed is not dropped by Felix's forward chain, so the program ends in
    /// one allow-everything rule standing for that.
    pub fn program(
        &mut self,
        graph: &CalcGraph,
        plan: &EndpointPlan,
        kind: ProgramKind,
    ) -> Result<abi::PolicyProgram, CalcError> {
        let direction = kind.direction();
        let dir = match direction {
            Direction::Ingress => &plan.ingress,
            Direction::Egress => &plan.egress,
        };
        let (tiers, normal, end_of_tier) = match kind {
            ProgramKind::Ingress | ProgramKind::Egress => (&dir.normal, true, true),
            ProgramKind::UntrackedIngress | ProgramKind::UntrackedEgress => {
                (&dir.untracked, false, false)
            }
            ProgramKind::PreDnat => (&dir.pre_dnat, false, false),
            ProgramKind::ForwardIngress | ProgramKind::ForwardEgress => (&dir.forward, false, true),
        };
        let tiers = self.tiers(graph, tiers, direction, end_of_tier)?;
        let mut profiles = Vec::new();
        if matches!(
            kind,
            ProgramKind::ForwardIngress | ProgramKind::ForwardEgress
        ) {
            self.next_rule += 1;
            profiles.push(abi::Policy {
                rules: vec![abi::Rule {
                    id: abi::RuleId(self.next_rule),
                    action: abi::Action::Allow,
                    matches: abi::RuleMatch::default(),
                }],
            });
        }
        if normal {
            for name in &plan.profiles {
                if let Some(profile) = graph.profile(name) {
                    let rules = match direction {
                        Direction::Ingress => &profile.ingress,
                        Direction::Egress => &profile.egress,
                    };
                    profiles.push(self.policy_rules(graph, rules)?);
                }
            }
        }
        Ok(abi::PolicyProgram {
            id: self.program_id(&plan.id, kind),
            tiers,
            profiles,
        })
    }

    /// The programs an endpoint needs: normal ingress and egress always; the others when
    /// some policy of that stage applies ([`ProgramKind::needed`]).
    pub fn endpoint_programs(
        &mut self,
        graph: &CalcGraph,
        plan: &EndpointPlan,
    ) -> Result<Vec<(ProgramKind, abi::PolicyProgram)>, CalcError> {
        ProgramKind::ALL
            .into_iter()
            .filter(|k| k.needed(plan))
            .map(|k| Ok((k, self.program(graph, plan, k)?)))
            .collect()
    }

    /// Table operations for a batch of graph events: changed IP sets are re-sent (only
    /// those), programs of endpoints whose plan, policies, profiles or named-port groups
    /// changed are replaced, removed things are removed. Endpoint entries themselves
    /// (interfaces, MACs) belong to the dataplane driver, not to this compiler.
    pub fn delta(&mut self, graph: &CalcGraph, events: &[CalcEvent]) -> Vec<abi::Op> {
        let mut ops = Vec::new();
        let mut endpoints: BTreeSet<EndpointId> = BTreeSet::new();
        for event in events {
            match event {
                CalcEvent::IpSetAdded { id, .. } | CalcEvent::IpSetDelta { id, .. } => {
                    let before = self.named_groups.get(id).cloned();
                    for set in self.ip_sets(graph, id) {
                        ops.push(abi::Op::UpsertIpSet(set));
                    }
                    let after = self.named_groups.get(id).cloned();
                    if before != after {
                        // The rule expansion over this named port changes: recompile users.
                        for gone in before
                            .unwrap_or_default()
                            .difference(&after.clone().unwrap_or_default())
                        {
                            let set = self.derived_id(id, gone.0, gone.1);
                            ops.push(abi::Op::RemoveIpSet(set));
                        }
                        endpoints.extend(graph.endpoints_using_set(id));
                    }
                }
                CalcEvent::IpSetRemoved(id) => match self.named_groups.remove(id) {
                    Some(groups) => {
                        for (protocol, port) in groups {
                            ops.push(abi::Op::RemoveIpSet(self.derived_id(id, protocol, port)));
                        }
                    }
                    None => ops.push(abi::Op::RemoveIpSet(self.ip_set_id(id))),
                },
                CalcEvent::PolicyUpdated(p) => {
                    endpoints.extend(graph.endpoints_using_policy(&p.id))
                }
                CalcEvent::ProfileUpdated(p) => {
                    endpoints.extend(graph.endpoints_using_profile(&p.name))
                }
                CalcEvent::EndpointUpdated(plan) => {
                    endpoints.insert(plan.id.clone());
                }
                CalcEvent::EndpointRemoved(id) => {
                    for kind in ProgramKind::ALL {
                        if let Some(pid) = self.program_ids.remove(&(id.clone(), kind)) {
                            ops.push(abi::Op::RemoveProgram(abi::ProgramId(pid)));
                        }
                    }
                }
                CalcEvent::PolicyRemoved(_) | CalcEvent::ProfileRemoved(_) => {}
            }
        }
        for id in endpoints {
            let Some(plan) = graph.plan(&id) else {
                continue;
            };
            match self.endpoint_programs(graph, &plan) {
                Ok(programs) => {
                    self.failed_closed.remove(&id);
                    ops.extend(programs.into_iter().map(|(_, p)| abi::Op::UpsertProgram(p)));
                }
                Err(err) => {
                    // Fail closed: what cannot be enforced exactly is denied, not skipped.
                    let kinds = ProgramKind::ALL
                        .into_iter()
                        .filter(|k| k.denies_when_failed(&plan));
                    for kind in kinds {
                        ops.push(abi::Op::UpsertProgram(abi::PolicyProgram {
                            id: self.program_id(&plan.id, kind),
                            tiers: Vec::new(),
                            profiles: Vec::new(),
                        }));
                    }
                    self.failed_closed.insert(id, err.to_string());
                }
            }
        }
        ops
    }

    /// Endpoints currently denied everything because their policy could not be compiled,
    /// with the reason.
    pub fn failed_closed(&self) -> &BTreeMap<EndpointId, String> {
        &self.failed_closed
    }
}

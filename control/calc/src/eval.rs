//! Evaluating one packet against the compiled state, with Calico's semantics, recording each
//! step that decided or continued evaluation.
//!
//! This is the reference the dataplane must agree with: it reads the same compiled rules, IP
//! sets and endpoint programs the graph emits.

use crate::flush::Direction;
use crate::graph::{CalcGraph, Failsafe};
use crate::ids::IpSetId;
use crate::plan::{EndpointPlan, IpSetMember, TierPlan};
use crate::rules::{CompiledRule, IcmpMatch, PeerMatch};
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;
use tortie_model::types::{Action, TierAction};

/// The first packet of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    /// Source port (TCP/UDP/SCTP), if known.
    pub src_port: Option<u16>,
    /// Destination port (TCP/UDP/SCTP).
    pub dst_port: Option<u16>,
    /// ICMP type (ICMP/ICMPv6).
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
}

/// A direction's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The packet may pass.
    Allow,
    /// The packet is dropped.
    Deny,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// A policy rule matched.
    Rule,
    /// No rule of a tier decided: the tier's default action.
    TierDefault,
    /// A profile rule matched.
    Profile,
    /// An endpoint profile that does not exist (skipped).
    MissingProfile,
    /// No profile decided: drop.
    NoProfile,
    /// A host endpoint failsafe port.
    Failsafe,
    /// No policy applies in this direction: profiles decide.
    NoPolicy,
    /// The peer is outside the cluster: no policy of ours runs for it.
    External,
    /// Forwarded traffic through a host endpoint that no `applyOnForward` policy selects in
    /// this direction: allowed.
    NoForwardPolicy,
    /// Every `applyOnForward` tier passed the forwarded traffic: allowed (Felix's forward
    /// chains have no profiles and no final drop).
    ForwardPassed,
    /// The host itself opened the connection to a workload on the same node: the
    /// workload's ingress policy is not applied (as in Felix).
    HostOriginated,
    /// A workload's connection to its own node's host: FelixConfiguration
    /// `defaultEndpointToHostAction` decides (Drop denies; Accept and Return allow).
    EndpointToHost,
}

/// One step of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What kind of step.
    pub stage: Stage,
    /// Tier, for policy rules and tier defaults.
    pub tier: Option<String>,
    /// Policy (`namespace/name` or global name), for policy rules.
    pub policy: Option<String>,
    /// Profile, for profile steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Rule index within the policy's (or profile's) rules of this direction.
    pub rule: Option<usize>,
    /// `Allow`, `Deny`, `Log` or `Pass` (`Pass` for a tier default of Pass).
    pub action: Option<Action>,
    /// Which class of policy (`preDNAT`, `doNotTrack`) for host endpoints; absent for normal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<&'static str>,
}

impl Step {
    fn new(stage: Stage) -> Step {
        Step {
            stage,
            tier: None,
            policy: None,
            profile: None,
            rule: None,
            action: None,
            class: None,
        }
    }
}

/// The outcome of one direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectionResult {
    /// Allow or Deny.
    pub verdict: Verdict,
    /// Every step, in order.
    pub steps: Vec<Step>,
}

fn in_nets(nets: &[IpNet], addr: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&addr))
}

fn port_in(
    graph: &CalcGraph,
    ranges: &[(u16, u16)],
    named: &[IpSetId],
    addr: IpAddr,
    protocol: u8,
    port: u16,
) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
        || named.iter().any(|set| {
            graph.ip_set_contains(
                set,
                &IpSetMember::Port {
                    addr,
                    protocol,
                    port,
                },
            )
        })
}

fn peer_matches(
    graph: &CalcGraph,
    peer: &PeerMatch,
    addr: IpAddr,
    port: Option<u16>,
    protocol: u8,
) -> bool {
    if !peer.nets.is_empty() && !in_nets(&peer.nets, addr) {
        return false;
    }
    if in_nets(&peer.not_nets, addr) {
        return false;
    }
    if let Some(set) = &peer.set
        && !graph.ip_set_contains_addr(set, addr)
    {
        return false;
    }
    if let Some(set) = &peer.not_set
        && graph.ip_set_contains_addr(set, addr)
    {
        return false;
    }
    if !peer.ports.is_empty() || !peer.named_ports.is_empty() {
        match port {
            Some(p) if port_in(graph, &peer.ports, &peer.named_ports, addr, protocol, p) => {}
            _ => return false,
        }
    }
    if let Some(p) = port
        && port_in(
            graph,
            &peer.not_ports,
            &peer.not_named_ports,
            addr,
            protocol,
            p,
        )
    {
        return false;
    }
    true
}

fn icmp_matches(m: &IcmpMatch, packet: &Packet) -> bool {
    matches!(packet.protocol, 1 | 58)
        && packet.icmp_type == Some(m.icmp_type)
        && m.code.is_none_or(|c| packet.icmp_code == Some(c))
}

/// Whether `rule` matches `packet` (all criteria ANDed; negations as Calico defines them).
pub fn rule_matches(graph: &CalcGraph, rule: &CompiledRule, packet: &Packet) -> bool {
    if rule.never_matches {
        return false;
    }
    let version = if packet.src.is_ipv4() { 4 } else { 6 };
    if rule.ip_version.is_some_and(|v| v != version) {
        return false;
    }
    if rule.protocol.is_some_and(|p| p != packet.protocol) {
        return false;
    }
    if rule.not_protocol == Some(packet.protocol) {
        return false;
    }
    if rule.icmp.as_ref().is_some_and(|m| !icmp_matches(m, packet)) {
        return false;
    }
    if rule
        .not_icmp
        .as_ref()
        .is_some_and(|m| icmp_matches(m, packet))
    {
        return false;
    }
    peer_matches(
        graph,
        &rule.src,
        packet.src,
        packet.src_port,
        packet.protocol,
    ) && peer_matches(
        graph,
        &rule.dst,
        packet.dst,
        packet.dst_port,
        packet.protocol,
    )
}

enum TierOutcome {
    Decided(Verdict),
    Undecided,
}

fn rules_of<'a>(
    graph: &'a CalcGraph,
    policy: &crate::ids::PolicyId,
    direction: Direction,
) -> Option<&'a [CompiledRule]> {
    let policy = graph.policy(policy)?;
    Some(match direction {
        Direction::Ingress => &policy.ingress,
        Direction::Egress => &policy.egress,
    })
}

/// Runs tiers in order. `default_applies` is false for preDNAT and untracked stages, which
/// have no end-of-tier drop.
fn run_tiers(
    graph: &CalcGraph,
    tiers: &[TierPlan],
    direction: Direction,
    packet: &Packet,
    default_applies: bool,
    class: Option<&'static str>,
    steps: &mut Vec<Step>,
) -> TierOutcome {
    'tiers: for tier in tiers {
        for policy_id in &tier.policies {
            let Some(rules) = rules_of(graph, policy_id, direction) else {
                continue;
            };
            for (index, rule) in rules.iter().enumerate() {
                if !rule_matches(graph, rule, packet) {
                    continue;
                }
                steps.push(Step {
                    tier: Some(tier.name.clone()),
                    policy: Some(policy_id.to_string()),
                    rule: Some(index),
                    action: Some(rule.action),
                    class,
                    ..Step::new(Stage::Rule)
                });
                match rule.action {
                    Action::Log => continue,
                    Action::Allow => return TierOutcome::Decided(Verdict::Allow),
                    Action::Deny => return TierOutcome::Decided(Verdict::Deny),
                    Action::Pass => continue 'tiers,
                }
            }
        }
        if !default_applies {
            continue;
        }
        let action = match tier.default_action {
            TierAction::Deny => Action::Deny,
            TierAction::Pass => Action::Pass,
        };
        steps.push(Step {
            tier: Some(tier.name.clone()),
            action: Some(action),
            class,
            ..Step::new(Stage::TierDefault)
        });
        if tier.default_action == TierAction::Deny {
            return TierOutcome::Decided(Verdict::Deny);
        }
    }
    TierOutcome::Undecided
}

fn run_profiles(
    graph: &CalcGraph,
    plan: &EndpointPlan,
    direction: Direction,
    packet: &Packet,
    steps: &mut Vec<Step>,
) -> Verdict {
    for name in &plan.profiles {
        let Some(profile) = graph.profile(name) else {
            steps.push(Step {
                profile: Some(name.clone()),
                ..Step::new(Stage::MissingProfile)
            });
            continue;
        };
        let rules = match direction {
            Direction::Ingress => &profile.ingress,
            Direction::Egress => &profile.egress,
        };
        for (index, rule) in rules.iter().enumerate() {
            if !rule_matches(graph, rule, packet) {
                continue;
            }
            steps.push(Step {
                profile: Some(name.clone()),
                rule: Some(index),
                action: Some(rule.action),
                ..Step::new(Stage::Profile)
            });
            match rule.action {
                Action::Allow => return Verdict::Allow,
                Action::Deny => return Verdict::Deny,
                Action::Log => {}
                // Pass in a profile ends that profile; the next one is consulted.
                Action::Pass => break,
            }
        }
    }
    steps.push(Step {
        action: Some(Action::Deny),
        ..Step::new(Stage::NoProfile)
    });
    Verdict::Deny
}

fn failsafe_open(list: &[Failsafe], packet: &Packet, peer: IpAddr) -> bool {
    list.iter().any(|f| {
        f.protocol == packet.protocol
            && packet.dst_port == Some(f.port)
            && f.net.is_none_or(|n| n.contains(&peer))
    })
}

/// Evaluates forwarded `packet` on the `applyOnForward` policy of host endpoint `plan` in
/// `direction` (ingress: arriving through it; egress: leaving through it): what the
/// dataplane's forward program decides. No policy: allowed; otherwise tiers with their
/// end-of-tier action, and traffic every tier passed is allowed. No failsafe ports and no
/// profiles apply to forwarded traffic (Felix renders neither into forward chains).
pub fn evaluate_forward(
    graph: &CalcGraph,
    plan: &EndpointPlan,
    direction: Direction,
    packet: &Packet,
) -> DirectionResult {
    let dir = match direction {
        Direction::Ingress => &plan.ingress,
        Direction::Egress => &plan.egress,
    };
    let mut steps = Vec::new();
    if dir.forward.is_empty() {
        steps.push(Step {
            action: Some(Action::Allow),
            class: Some(FORWARD_CLASS),
            ..Step::new(Stage::NoForwardPolicy)
        });
        return DirectionResult {
            verdict: Verdict::Allow,
            steps,
        };
    }
    let verdict = match run_tiers(
        graph,
        &dir.forward,
        direction,
        packet,
        true,
        Some(FORWARD_CLASS),
        &mut steps,
    ) {
        TierOutcome::Decided(verdict) => verdict,
        TierOutcome::Undecided => {
            steps.push(Step {
                action: Some(Action::Allow),
                class: Some(FORWARD_CLASS),
                ..Step::new(Stage::ForwardPassed)
            });
            Verdict::Allow
        }
    };
    DirectionResult { verdict, steps }
}

/// The step class of `applyOnForward` policy.
pub const FORWARD_CLASS: &str = "applyOnForward";

/// Evaluates forwarded `packet` through host endpoint `plan` as the dataplane does: on
/// ingress, its doNotTrack policy (a decision ends the evaluation), then preDNAT policy
/// (a Deny ends it); on egress, its doNotTrack policy; then [`evaluate_forward`].
pub fn evaluate_forwarded(
    graph: &CalcGraph,
    plan: &EndpointPlan,
    direction: Direction,
    packet: &Packet,
) -> DirectionResult {
    let mut steps = Vec::new();
    if let Some(verdict) = untracked_and_pre_dnat(graph, plan, direction, packet, &mut steps) {
        return DirectionResult { verdict, steps };
    }
    let mut forward = evaluate_forward(graph, plan, direction, packet);
    steps.append(&mut forward.steps);
    DirectionResult {
        verdict: forward.verdict,
        steps,
    }
}

/// The doNotTrack and (ingress) preDNAT stages of a host endpoint, which have no default
/// drop: `Some` when one of them decided.
fn untracked_and_pre_dnat(
    graph: &CalcGraph,
    plan: &EndpointPlan,
    direction: Direction,
    packet: &Packet,
    steps: &mut Vec<Step>,
) -> Option<Verdict> {
    let dir = match direction {
        Direction::Ingress => &plan.ingress,
        Direction::Egress => &plan.egress,
    };
    let mut stages: Vec<(&[TierPlan], &'static str)> = vec![(&dir.untracked, "doNotTrack")];
    if direction == Direction::Ingress {
        stages.push((&dir.pre_dnat, "preDNAT"));
    }
    for (tiers, class) in stages {
        if let TierOutcome::Decided(verdict) =
            run_tiers(graph, tiers, direction, packet, false, Some(class), steps)
        {
            return Some(verdict);
        }
    }
    None
}

/// Evaluates `packet` on `plan` in `direction`: for host endpoints failsafe ports, then
/// untracked and (ingress) preDNAT policy without default drop; then tiers; then profiles.
pub fn evaluate(
    graph: &CalcGraph,
    plan: &EndpointPlan,
    direction: Direction,
    packet: &Packet,
) -> DirectionResult {
    let mut steps = Vec::new();
    let dir = match direction {
        Direction::Ingress => &plan.ingress,
        Direction::Egress => &plan.egress,
    };
    let host = matches!(plan.id, crate::ids::EndpointId::Host { .. });
    if host {
        let (list, peer) = match direction {
            Direction::Ingress => (graph.failsafe_inbound(), packet.src),
            Direction::Egress => (graph.failsafe_outbound(), packet.dst),
        };
        if failsafe_open(list, packet, peer) {
            steps.push(Step {
                action: Some(Action::Allow),
                ..Step::new(Stage::Failsafe)
            });
            return DirectionResult {
                verdict: Verdict::Allow,
                steps,
            };
        }
        if let Some(verdict) = untracked_and_pre_dnat(graph, plan, direction, packet, &mut steps) {
            return DirectionResult { verdict, steps };
        }
    }
    if dir.normal.is_empty() {
        steps.push(Step::new(Stage::NoPolicy));
    }
    let verdict = match run_tiers(
        graph,
        &dir.normal,
        direction,
        packet,
        true,
        None,
        &mut steps,
    ) {
        TierOutcome::Decided(verdict) => verdict,
        TierOutcome::Undecided => run_profiles(graph, plan, direction, packet, &mut steps),
    };
    DirectionResult { verdict, steps }
}

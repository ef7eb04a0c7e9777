//! Compiled policy programs: what control produces from tiers, policies and profiles.
//!
//! One program is the whole ordered evaluation for one endpoint in one direction (as Felix's
//! BPF `polprog` builds one program per endpoint and direction); endpoints with the same
//! policy set share a program id. Evaluation order (Calico semantics):
//!
//! 1. Tiers in order. Within a tier, policies in order, rules in order. The first matching
//!    rule decides: `Allow`/`Deny` end evaluation, `Pass` skips to the next tier, `Log`
//!    counts a hit and continues with the next rule.
//! 2. If no rule of a tier matched, the tier's default action applies (`Deny`, or `Pass` to
//!    the next tier).
//! 3. After the last tier (or straight away when the program has no tiers), the profiles in
//!    order: the first `Allow`/`Deny` wins; a `Pass` ends its profile and evaluation goes on
//!    with the next profile (Felix renders a profile as a chain whose Pass only sets the pass
//!    mark, which the endpoint chain ignores after a profile); if none decides, the packet
//!    is denied.
//!
//! A host endpoint's `applyOnForward` program (`Endpoint::forward_ingress` /
//! `forward_egress`) is compiled by control with one allow-everything profile at its end:
//! forwarded traffic that every tier passed is allowed, as Felix's forward chains, which
//! have no profiles and no final drop, leave it accepted.

use crate::ids::{IpSetId, Prefix, ProgramId, RuleId};

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Accept; ends evaluation.
    Allow,
    /// Drop; ends evaluation.
    Deny,
    /// Skip the rest of this tier (in a profile: the rest of this profile).
    Pass,
    /// Count a hit and continue with the next rule.
    Log,
}

/// What a tier does when none of its rules matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TierDefault {
    /// Drop (Calico's default).
    Deny,
    /// Continue with the next tier.
    Pass,
}

/// IP family restriction (Calico `ipVersion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// An inclusive port range `lo..=hi` (`lo <= hi` is checked on decode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port (inclusive).
    pub hi: u16,
}

/// An ICMP type, optionally with a code (Calico `icmp` / `notICMP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IcmpMatch {
    /// ICMP or ICMPv6 type.
    pub icmp_type: u8,
    /// Code; `None` matches any code.
    pub code: Option<u8>,
}

/// Match on source or destination addresses: in any of `nets` (if not empty), member of all
/// `sets`, in none of `not_nets`, member of none of `not_sets`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddrMatch {
    /// Any-of networks.
    pub nets: Vec<Prefix>,
    /// None-of networks.
    pub not_nets: Vec<Prefix>,
    /// All-of IP sets (compiled selectors).
    pub sets: Vec<IpSetId>,
    /// None-of IP sets.
    pub not_sets: Vec<IpSetId>,
}

/// Match on ports: in any of `ranges` (if not empty) and none of `not_ranges`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortMatch {
    /// Any-of ranges.
    pub ranges: Vec<PortRange>,
    /// None-of ranges.
    pub not_ranges: Vec<PortRange>,
}

/// The match part of a rule; every field is optional and the rule matches when all hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RuleMatch {
    /// Family restriction.
    pub ip_version: Option<IpVersion>,
    /// Protocol number that must match.
    pub protocol: Option<u8>,
    /// Protocol number that must not match.
    pub not_protocol: Option<u8>,
    /// Source addresses.
    pub src: AddrMatch,
    /// Destination addresses.
    pub dst: AddrMatch,
    /// Source ports (TCP, UDP, SCTP only).
    pub src_ports: PortMatch,
    /// Destination ports (TCP, UDP, SCTP only).
    pub dst_ports: PortMatch,
    /// ICMP type/code that must match.
    pub icmp: Option<IcmpMatch>,
    /// ICMP type/code that must not match.
    pub not_icmp: Option<IcmpMatch>,
}

/// One rule: an id for its hit counter, an action and a match.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Hit-counter id.
    pub id: RuleId,
    /// What a match does.
    pub action: Action,
    /// The match.
    pub matches: RuleMatch,
}

/// One policy (or profile): its ordered rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Rules in evaluation order.
    pub rules: Vec<Rule>,
}

/// One tier as it applies to the program's endpoint: its applicable policies in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tier {
    /// Action when no rule of the tier matched.
    pub default_action: TierDefault,
    /// Policies in evaluation order.
    pub policies: Vec<Policy>,
}

/// A compiled program: tiers, then profiles (see the module docs for the order).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicyProgram {
    /// Its id.
    pub id: ProgramId,
    /// Tiers in order; empty means "straight to profiles".
    pub tiers: Vec<Tier>,
    /// Profiles in the endpoint's order.
    pub profiles: Vec<Policy>,
}

impl PolicyProgram {
    /// Every rule of the program in evaluation order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.tiers
            .iter()
            .flat_map(|t| t.policies.iter())
            .chain(self.profiles.iter())
            .flat_map(|p| p.rules.iter())
    }
}

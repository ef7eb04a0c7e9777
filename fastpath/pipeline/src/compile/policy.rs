//! Policy programs compiled for the classifier, and their tiered evaluation.
//!
//! A program's rules are flattened into one classifier in evaluation order (tiers, then
//! profiles), each with a unique priority; the classifier answers "first matching rule at or
//! after priority p". Evaluation walks the regions (one per tier, then one per profile) as
//! Calico does: `Allow`/`Deny` decide, `Log` counts and continues after the rule, `Pass` jumps
//! to the next tier's first priority (in a profile: to the next profile, as Felix ignores the
//! pass mark a profile chain sets), a tier with no match applies its default, and profiles
//! with no decision deny. One classifier call usually decides; each `Log`/`Pass` costs one
//! more.
//!
//! Calico rule fields map onto the classifier's model; where they do not map one to one a
//! rule expands into several classifier rules with consecutive priorities and the same
//! action: ports without a protocol become TCP, UDP and SCTP rules; `icmp` without a protocol
//! becomes ICMP and ICMPv6 rules; `notICMP` with a code becomes "other type" or "this type,
//! other code".

use ipnet::IpNet;
use tortie_abi as abi;
use tortie_classifier as cls;

use super::CompileError;

/// What a program decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Allowed or denied.
    pub allow: bool,
    /// Slot of the deciding rule (see `Generation::rule_id`); `None` for a default.
    pub rule_slot: Option<u32>,
}

#[derive(Clone, Copy, Debug)]
struct RuleAction {
    action: abi::Action,
    slot: u32,
}

/// One compiled program.
#[derive(Debug)]
pub struct CompiledProgram {
    classifier: cls::Classifier,
    /// First priority of each region: one per tier, one per profile (at least one), then an
    /// end sentinel.
    region_start: Vec<u32>,
    /// Per tier: whether its default is Pass.
    tier_pass: Vec<bool>,
    actions: Vec<RuleAction>,
    /// The decision of a program whose first rule (first in its first region) matches every
    /// packet and allows or denies: found at build time so that evaluating it skips the
    /// classifier. Calico's allow-all profiles (a workload without policy of its own) and
    /// catch-all policies take this path.
    decided: Option<Decision>,
}

fn net(p: &abi::Prefix) -> IpNet {
    // A decoded abi prefix is canonical, so this cannot fail; fall back to a host route.
    IpNet::new(p.addr, p.len).unwrap_or_else(|_| IpNet::from(p.addr))
}

fn addrs(m: &abi::AddrMatch) -> cls::AddrMatch {
    cls::AddrMatch {
        nets: m.nets.iter().map(net).collect(),
        not_nets: m.not_nets.iter().map(net).collect(),
        sets: m.sets.iter().map(|s| cls::SetId(s.0)).collect(),
        not_sets: m.not_sets.iter().map(|s| cls::SetId(s.0)).collect(),
    }
}

fn ranges(r: &[abi::PortRange]) -> Vec<cls::PortRange> {
    r.iter().map(|r| cls::PortRange::new(r.lo, r.hi)).collect()
}

fn ports(p: &abi::PortMatch) -> cls::PortMatch {
    cls::PortMatch {
        ranges: ranges(&p.ranges),
        not_ranges: ranges(&p.not_ranges),
    }
}

const PORT_PROTOCOLS: [u8; 3] = [6, 17, 132];

/// Expands one abi rule into classifier rules (without priorities).
fn expand(m: &abi::RuleMatch, action: u32) -> Vec<cls::Rule> {
    let base = cls::Rule {
        priority: 0,
        action,
        ip_version: m.ip_version.map(|v| match v {
            abi::IpVersion::V4 => cls::IpVersion::V4,
            abi::IpVersion::V6 => cls::IpVersion::V6,
        }),
        protocol: m.protocol,
        not_protocol: m.not_protocol,
        src: addrs(&m.src),
        dst: addrs(&m.dst),
        src_ports: ports(&m.src_ports),
        dst_ports: ports(&m.dst_ports),
    };
    let has_ports = !(m.src_ports.ranges.is_empty()
        && m.src_ports.not_ranges.is_empty()
        && m.dst_ports.ranges.is_empty()
        && m.dst_ports.not_ranges.is_empty());
    let mut out = vec![base];
    if has_ports && m.protocol.is_none() {
        out = out
            .into_iter()
            .flat_map(|r| {
                PORT_PROTOCOLS.map(|p| cls::Rule {
                    protocol: Some(p),
                    ..r.clone()
                })
            })
            .collect();
    }
    if m.icmp.is_some() || m.not_icmp.is_some() {
        if m.protocol.is_none() {
            out = out
                .into_iter()
                .flat_map(|r| {
                    [(1, cls::IpVersion::V4), (58, cls::IpVersion::V6)].map(|(p, v)| cls::Rule {
                        protocol: Some(p),
                        ip_version: Some(v),
                        ..r.clone()
                    })
                })
                .filter(|r| m.ip_version.is_none() || r.ip_version == base_version(m))
                .collect();
        }
        // The classifier carries the ICMP type in the source port and the code in the
        // destination port.
        if let Some(i) = m.icmp {
            for r in &mut out {
                r.src_ports.ranges = vec![cls::PortRange::single(i.icmp_type.into())];
                if let Some(c) = i.code {
                    r.dst_ports.ranges = vec![cls::PortRange::single(c.into())];
                }
            }
        }
        if let Some(n) = m.not_icmp {
            let t = cls::PortRange::single(n.icmp_type.into());
            out = match n.code {
                None => out
                    .into_iter()
                    .map(|mut r| {
                        r.src_ports.not_ranges.push(t);
                        r
                    })
                    .collect(),
                // With a positive type of its own the rule already excludes other types.
                Some(c) if m.icmp.is_some() => {
                    if m.icmp.is_some_and(|i| i.icmp_type == n.icmp_type) {
                        for r in &mut out {
                            r.dst_ports
                                .not_ranges
                                .push(cls::PortRange::single(c.into()));
                        }
                    }
                    out
                }
                Some(c) => out
                    .into_iter()
                    .flat_map(|r| {
                        let mut other_type = r.clone();
                        other_type.src_ports.not_ranges.push(t);
                        let mut other_code = r;
                        other_code.src_ports.ranges.push(t);
                        other_code
                            .dst_ports
                            .not_ranges
                            .push(cls::PortRange::single(c.into()));
                        [other_type, other_code]
                    })
                    .collect(),
            };
        }
    }
    out
}

fn base_version(m: &abi::RuleMatch) -> Option<cls::IpVersion> {
    m.ip_version.map(|v| match v {
        abi::IpVersion::V4 => cls::IpVersion::V4,
        abi::IpVersion::V6 => cls::IpVersion::V6,
    })
}

impl CompiledProgram {
    /// Compiles `program`; `slot_of` assigns each rule id its hit-counter slot.
    pub fn compile(
        program: &abi::PolicyProgram,
        mut slot_of: impl FnMut(abi::RuleId) -> u32,
    ) -> Result<Self, CompileError> {
        let mut rules = Vec::new();
        let mut actions = Vec::new();
        let mut region_start = Vec::with_capacity(program.tiers.len() + program.profiles.len() + 2);
        let mut priority: u32 = 0;
        // One region per tier, then one per profile (a Pass ends its profile, so each needs
        // its own bounds); a program without profiles keeps one empty profile region.
        let profiles: Vec<&[abi::Policy]> = if program.profiles.is_empty() {
            vec![&[]]
        } else {
            program.profiles.iter().map(std::slice::from_ref).collect()
        };
        let regions = program
            .tiers
            .iter()
            .map(|t| t.policies.as_slice())
            .chain(profiles);
        for policies in regions {
            region_start.push(priority);
            for rule in policies.iter().flat_map(|p| p.rules.iter()) {
                let action =
                    u32::try_from(actions.len()).map_err(|_| CompileError::TooManyRules)?;
                actions.push(RuleAction {
                    action: rule.action,
                    slot: slot_of(rule.id),
                });
                for mut r in expand(&rule.matches, action) {
                    r.priority = priority;
                    priority = priority
                        .checked_add(1)
                        .filter(|p| *p < u32::MAX)
                        .ok_or(CompileError::TooManyRules)?;
                    rules.push(r);
                }
            }
        }
        region_start.push(priority);
        // The first rule decides for every packet when it matches everything (an empty
        // match expands into one all-wildcard classifier rule), allows or denies, and opens
        // the first region (a leading empty tier would apply its default first).
        let first = program
            .tiers
            .iter()
            .map(|t| t.policies.as_slice())
            .chain(program.profiles.iter().map(std::slice::from_ref))
            .flat_map(|policies| policies.iter().flat_map(|p| p.rules.iter()))
            .next();
        let decided = first
            .zip(actions.first())
            .filter(|(rule, _)| rule.matches == abi::RuleMatch::default())
            .filter(|_| region_start.get(1).is_some_and(|end| *end > 0))
            .and_then(|(_, a)| match a.action {
                abi::Action::Allow | abi::Action::Deny => Some(Decision {
                    allow: a.action == abi::Action::Allow,
                    rule_slot: Some(a.slot),
                }),
                abi::Action::Log | abi::Action::Pass => None,
            });
        let classifier =
            cls::Classifier::build(rules.iter()).map_err(|e| CompileError::Classifier {
                program: program.id.0,
                source: e,
            })?;
        let tier_pass = program
            .tiers
            .iter()
            .map(|t| t.default_action == abi::TierDefault::Pass)
            .collect();
        Ok(Self {
            classifier,
            region_start,
            tier_pass,
            actions,
            decided,
        })
    }

    /// A program that denies everything: stands in for a program id the tables lack, so a
    /// dangling reference fails closed.
    pub fn deny_all() -> Self {
        Self {
            classifier: cls::Classifier::new(),
            region_start: vec![0, 0],
            tier_pass: Vec::new(),
            actions: Vec::new(),
            decided: None,
        }
    }

    /// Number of classifier rules.
    pub fn len(&self) -> usize {
        self.classifier.len()
    }

    /// Whether the program has no rules.
    pub fn is_empty(&self) -> bool {
        self.classifier.is_empty()
    }

    /// Evaluates the program for `key`; `hit` is called with the slot of every rule that
    /// matched on the way (Log and Pass rules included).
    #[inline]
    pub fn evaluate(
        &self,
        key: &cls::Key,
        sets: &cls::IpSetTable,
        mut hit: impl FnMut(u32),
    ) -> Decision {
        if let Some(d) = self.decided {
            if let Some(slot) = d.rule_slot {
                hit(slot);
            }
            return d;
        }
        let profiles = self.tier_pass.len();
        let last = self.region_start.len() - 2;
        let mut region = 0usize;
        let mut m = self.classifier.classify_from(key, sets, 0);
        // Each iteration either decides or advances a region or a rule, so it terminates;
        // the bound is a guard, not a limit a real program reaches.
        for _ in 0..=(self.actions.len() + self.region_start.len()) {
            let end = self.region_start[region + 1];
            match m {
                Some(found) if found.priority < end => {
                    let a = self.actions[found.action as usize];
                    hit(a.slot);
                    match a.action {
                        abi::Action::Allow => {
                            return Decision {
                                allow: true,
                                rule_slot: Some(a.slot),
                            };
                        }
                        abi::Action::Deny => {
                            return Decision {
                                allow: false,
                                rule_slot: Some(a.slot),
                            };
                        }
                        // Pass: the next tier (or the first profile); inside a profile, the
                        // next profile; after the last profile nothing is left to allow.
                        abi::Action::Pass if region < last => {
                            region += 1;
                            m = self
                                .classifier
                                .classify_from(key, sets, self.region_start[region]);
                        }
                        abi::Action::Pass => {
                            return Decision {
                                allow: false,
                                rule_slot: None,
                            };
                        }
                        abi::Action::Log => {
                            m = self.classifier.classify_from(key, sets, found.priority + 1);
                        }
                    }
                }
                // No rule of this region matched: `m` (if any) is the first match of a
                // later region, so it stays valid when we move on.
                _ => {
                    let tier_denies = region < profiles && !self.tier_pass[region];
                    if tier_denies || region >= last {
                        return Decision {
                            allow: false,
                            rule_slot: None,
                        };
                    }
                    region += 1;
                }
            }
        }
        Decision {
            allow: false,
            rule_slot: None,
        }
    }
}

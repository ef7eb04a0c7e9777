//! Differential test of compiled policy programs against a literal evaluation of the abi
//! program (Calico's tier semantics written out directly), on random programs and packets.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use tortie_abi::*;
use tortie_classifier as cls;
use tortie_pipeline::compile::CompiledProgram;

#[derive(Clone, Copy, Debug)]
struct Pkt {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    sp: u16,
    dp: u16,
}

fn addr_ok(m: &AddrMatch, a: Ipv4Addr, sets: &[IpSet]) -> bool {
    let ip = IpAddr::V4(a);
    let in_set = |id: &IpSetId| {
        sets.iter()
            .find(|s| s.id == *id)
            .is_some_and(|s| s.members.iter().any(|p| p.contains(ip)))
    };
    (m.nets.is_empty() || m.nets.iter().any(|p| p.contains(ip)))
        && m.sets.iter().all(in_set)
        && !m.not_nets.iter().any(|p| p.contains(ip))
        && !m.not_sets.iter().any(in_set)
}

fn ports_ok(m: &PortMatch, port: u16) -> bool {
    (m.ranges.is_empty() || m.ranges.iter().any(|r| (r.lo..=r.hi).contains(&port)))
        && !m.not_ranges.iter().any(|r| (r.lo..=r.hi).contains(&port))
}

fn rule_matches(r: &RuleMatch, p: &Pkt, sets: &[IpSet]) -> bool {
    if r.ip_version == Some(IpVersion::V6) {
        return false;
    }
    if r.protocol.is_some_and(|x| x != p.proto) || r.not_protocol == Some(p.proto) {
        return false;
    }
    if !addr_ok(&r.src, p.src, sets) || !addr_ok(&r.dst, p.dst, sets) {
        return false;
    }
    let has_ports = !(r.src_ports.ranges.is_empty()
        && r.src_ports.not_ranges.is_empty()
        && r.dst_ports.ranges.is_empty()
        && r.dst_ports.not_ranges.is_empty());
    if has_ports
        && !(matches!(p.proto, 6 | 17 | 132)
            && ports_ok(&r.src_ports, p.sp)
            && ports_ok(&r.dst_ports, p.dp))
    {
        return false;
    }
    if r.icmp.is_some() || r.not_icmp.is_some() {
        // ICMP type and code travel in sp / dp for ICMP packets.
        if p.proto != 1 {
            return false;
        }
        let hit = |i: &IcmpMatch| {
            u16::from(i.icmp_type) == p.sp && i.code.is_none_or(|c| u16::from(c) == p.dp)
        };
        if r.icmp.as_ref().is_some_and(|i| !hit(i)) || r.not_icmp.as_ref().is_some_and(hit) {
            return false;
        }
    }
    true
}

/// Returns (allow, deciding rule) and the ids of every matching rule on the way.
fn reference(prog: &PolicyProgram, p: &Pkt, sets: &[IpSet]) -> (bool, Option<RuleId>, Vec<RuleId>) {
    let mut hits = Vec::new();
    'tiers: for tier in &prog.tiers {
        for policy in &tier.policies {
            for rule in &policy.rules {
                if !rule_matches(&rule.matches, p, sets) {
                    continue;
                }
                hits.push(rule.id);
                match rule.action {
                    Action::Allow => return (true, Some(rule.id), hits),
                    Action::Deny => return (false, Some(rule.id), hits),
                    Action::Pass => continue 'tiers,
                    Action::Log => {}
                }
            }
        }
        if tier.default_action == TierDefault::Deny {
            return (false, None, hits);
        }
    }
    for profile in &prog.profiles {
        for rule in &profile.rules {
            if !rule_matches(&rule.matches, p, sets) {
                continue;
            }
            hits.push(rule.id);
            match rule.action {
                Action::Allow => return (true, Some(rule.id), hits),
                Action::Deny => return (false, Some(rule.id), hits),
                // A Pass ends this profile: the next one is consulted.
                Action::Pass => break,
                Action::Log => {}
            }
        }
    }
    (false, None, hits)
}

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    (0u8..8).prop_map(|i| Ipv4Addr::new(198, 18, 0, i))
}

fn prefix() -> impl Strategy<Value = Prefix> {
    (0u8..8, 29u8..=32).prop_map(|(i, len)| {
        let a = u32::from(Ipv4Addr::new(198, 18, 0, i)) & mask32(len);
        Prefix::new(IpAddr::V4(a.into()), len).unwrap()
    })
}

fn addr_match() -> impl Strategy<Value = AddrMatch> {
    (
        prop::collection::vec(prefix(), 0..2),
        prop::collection::vec(prefix(), 0..2),
        prop::collection::vec((0u32..3).prop_map(IpSetId), 0..2),
        prop::collection::vec((0u32..3).prop_map(IpSetId), 0..2),
    )
        .prop_map(|(nets, not_nets, sets, not_sets)| AddrMatch {
            nets,
            not_nets,
            sets,
            not_sets,
        })
}

fn port_match() -> impl Strategy<Value = PortMatch> {
    let r = (0u16..8, 0u16..3).prop_map(|(lo, w)| PortRange { lo, hi: lo + w });
    (
        prop::collection::vec(r.clone(), 0..2),
        prop::collection::vec(r, 0..2),
    )
        .prop_map(|(ranges, not_ranges)| PortMatch { ranges, not_ranges })
}

fn icmp() -> impl Strategy<Value = Option<IcmpMatch>> {
    proptest::option::weighted(
        0.2,
        (0u8..4, proptest::option::of(0u8..3)).prop_map(|(t, c)| IcmpMatch {
            icmp_type: t,
            code: c,
        }),
    )
}

fn rule_match() -> impl Strategy<Value = RuleMatch> {
    (
        prop_oneof![
            Just(None),
            Just(Some(6u8)),
            Just(Some(17u8)),
            Just(Some(1u8))
        ],
        proptest::option::weighted(0.15, prop_oneof![Just(6u8), Just(17u8)]),
        addr_match(),
        addr_match(),
        proptest::bool::weighted(0.4),
        port_match(),
        port_match(),
        icmp(),
        icmp(),
        proptest::option::weighted(0.1, Just(IpVersion::V4)),
    )
        .prop_map(
            |(protocol, not_protocol, src, dst, with_ports, sp, dp, icmp, not_icmp, ip_version)| {
                let mut m = RuleMatch {
                    protocol,
                    not_protocol,
                    src,
                    dst,
                    ip_version,
                    ..RuleMatch::default()
                };
                // Calico's validation: ports only with TCP/UDP (or no protocol), ICMP fields
                // only with ICMP (or no protocol).
                if protocol == Some(1)
                    || (protocol.is_none() && (icmp.is_some() || not_icmp.is_some()))
                {
                    m.icmp = icmp;
                    m.not_icmp = not_icmp;
                } else if with_ports {
                    m.src_ports = sp;
                    m.dst_ports = dp;
                }
                m
            },
        )
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Allow),
        Just(Action::Deny),
        Just(Action::Pass),
        Just(Action::Log)
    ]
}

/// A rule match, empty (a catch-all, which the compiler may decide without the classifier
/// when it comes first) one time in five.
fn any_rule_match() -> impl Strategy<Value = RuleMatch> {
    prop_oneof![
        1 => Just(RuleMatch::default()),
        4 => rule_match(),
    ]
}

fn policy() -> impl Strategy<Value = Vec<(Action, RuleMatch)>> {
    prop::collection::vec((action(), any_rule_match()), 0..4)
}

fn program() -> impl Strategy<Value = PolicyProgram> {
    let tier = (any::<bool>(), prop::collection::vec(policy(), 0..3));
    (
        prop::collection::vec(tier, 0..3),
        prop::collection::vec(policy(), 0..4),
    )
        .prop_map(|(tiers, profiles)| {
            let mut next = 0u32;
            let mut mk = |rules: Vec<(Action, RuleMatch)>| Policy {
                rules: rules
                    .into_iter()
                    .map(|(action, matches)| {
                        next += 1;
                        Rule {
                            id: RuleId(next),
                            action,
                            matches,
                        }
                    })
                    .collect(),
            };
            PolicyProgram {
                id: ProgramId(1),
                tiers: tiers
                    .into_iter()
                    .map(|(pass, pols)| Tier {
                        default_action: if pass {
                            TierDefault::Pass
                        } else {
                            TierDefault::Deny
                        },
                        policies: pols.into_iter().map(&mut mk).collect(),
                    })
                    .collect(),
                profiles: profiles.into_iter().map(&mut mk).collect(),
            }
        })
}

fn packet() -> impl Strategy<Value = Pkt> {
    (
        addr(),
        addr(),
        prop_oneof![Just(6u8), Just(17u8), Just(1u8), Just(132u8)],
        0u16..10,
        0u16..10,
    )
        .prop_map(|(src, dst, proto, sp, dp)| Pkt {
            src,
            dst,
            proto,
            sp,
            dp,
        })
}

fn sets() -> impl Strategy<Value = Vec<IpSet>> {
    prop::collection::vec(prop::collection::vec(prefix(), 0..3), 3).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, members)| IpSet {
                id: IpSetId(i as u32),
                members,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn compiled_program_matches_reference(prog in program(), sets in sets(), pkts in prop::collection::vec(packet(), 1..16)) {
        let mut ids = Vec::new();
        let compiled = CompiledProgram::compile(&prog, |id| {
            ids.push(id);
            (ids.len() - 1) as u32
        }).unwrap();
        let mut table = cls::IpSetTable::new();
        for s in &sets {
            let nets = s.members.iter().map(|p| ipnet::IpNet::new(p.addr, p.len).unwrap());
            table.upsert(cls::SetId(s.id.0), cls::IpSet::from_nets(nets));
        }
        for p in pkts {
            let key = cls::Key::V4(cls::Key4 { src: p.src.into(), dst: p.dst.into(), src_port: p.sp, dst_port: p.dp, proto: p.proto });
            let mut hits = Vec::new();
            let d = compiled.evaluate(&key, &table, |slot| hits.push(ids[slot as usize]));
            let (allow, rule, want_hits) = reference(&prog, &p, &sets);
            prop_assert_eq!(d.allow, allow, "packet {:?}", p);
            prop_assert_eq!(d.rule_slot.map(|s| ids[s as usize]), rule, "packet {:?}", p);
            prop_assert_eq!(hits, want_hits, "packet {:?}", p);
        }
    }
}

/// Programs whose first rule is a catch-all, in the shapes that may and may not be decided
/// without the classifier, agree with the reference evaluation.
#[test]
fn leading_catch_all_rules_agree_with_reference() {
    let rule = |id: u32, action: Action| Rule {
        id: RuleId(id),
        action,
        matches: RuleMatch::default(),
    };
    let deny_23 = Rule {
        id: RuleId(9),
        action: Action::Deny,
        matches: RuleMatch {
            protocol: Some(6),
            dst_ports: PortMatch {
                ranges: vec![PortRange { lo: 23, hi: 23 }],
                not_ranges: vec![],
            },
            ..RuleMatch::default()
        },
    };
    let tier = |default_action, rules: Vec<Rule>| Tier {
        default_action,
        policies: vec![Policy { rules }],
    };
    let program = |tiers, profiles: Vec<Vec<Rule>>| PolicyProgram {
        id: ProgramId(1),
        tiers,
        profiles: profiles.into_iter().map(|rules| Policy { rules }).collect(),
    };
    let programs = [
        // Decided by its first rule: allow-all, deny-all.
        program(
            vec![tier(
                TierDefault::Deny,
                vec![rule(1, Action::Allow), deny_23.clone()],
            )],
            vec![],
        ),
        program(
            vec![],
            vec![vec![rule(1, Action::Deny)], vec![rule(2, Action::Allow)]],
        ),
        program(vec![], vec![vec![rule(1, Action::Allow)]]),
        // Not decided by it: an empty first tier applies its default (deny, or pass on to
        // the profile's allow-all); a leading Log or Pass continues.
        program(
            vec![tier(TierDefault::Deny, vec![])],
            vec![vec![rule(1, Action::Allow)]],
        ),
        program(
            vec![tier(TierDefault::Pass, vec![])],
            vec![vec![rule(1, Action::Allow)]],
        ),
        program(
            vec![tier(
                TierDefault::Deny,
                vec![rule(1, Action::Log), deny_23.clone()],
            )],
            vec![],
        ),
        program(
            vec![
                tier(TierDefault::Deny, vec![rule(1, Action::Pass)]),
                tier(TierDefault::Deny, vec![deny_23]),
            ],
            vec![vec![rule(2, Action::Allow)]],
        ),
    ];
    let pkts = [
        Pkt {
            src: Ipv4Addr::new(198, 18, 0, 1),
            dst: Ipv4Addr::new(198, 18, 0, 2),
            proto: 6,
            sp: 1000,
            dp: 23,
        },
        Pkt {
            src: Ipv4Addr::new(198, 18, 0, 1),
            dst: Ipv4Addr::new(198, 18, 0, 2),
            proto: 17,
            sp: 1000,
            dp: 53,
        },
    ];
    let table = cls::IpSetTable::new();
    for prog in &programs {
        let mut ids = Vec::new();
        let compiled = CompiledProgram::compile(prog, |id| {
            ids.push(id);
            (ids.len() - 1) as u32
        })
        .unwrap();
        for p in pkts {
            let key = cls::Key::V4(cls::Key4 {
                src: p.src.into(),
                dst: p.dst.into(),
                src_port: p.sp,
                dst_port: p.dp,
                proto: p.proto,
            });
            let mut hits = Vec::new();
            let d = compiled.evaluate(&key, &table, |slot| hits.push(ids[slot as usize]));
            let (allow, rule, want_hits) = reference(prog, &p, &[]);
            assert_eq!(d.allow, allow, "{prog:?} {p:?}");
            assert_eq!(d.rule_slot.map(|s| ids[s as usize]), rule, "{prog:?} {p:?}");
            assert_eq!(hits, want_hits, "{prog:?} {p:?}");
        }
    }
}

use super::*;
use crate::ipset::IpSet;
use crate::rule::{AddrMatch, PortMatch, SetId};

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

#[test]
fn pass_continues_at_the_next_tier() {
    // Tier 1 (priorities 0..100): pass for 10/8. Tier 2 (100..): deny TCP, allow the rest.
    let rules = [
        Rule {
            priority: 0,
            action: 1,
            src: AddrMatch::nets([net("10.0.0.0/8")]),
            ..Rule::default()
        },
        Rule {
            priority: 100,
            action: 2,
            protocol: Some(6),
            ..Rule::default()
        },
        Rule {
            priority: 101,
            action: 3,
            ..Rule::default()
        },
    ];
    let c = Classifier::build(&rules).unwrap();
    let sets = IpSetTable::new();
    let k = Key4 {
        src: 0x0A01_0101,
        dst: 1,
        src_port: 1,
        dst_port: 2,
        proto: 6,
    };
    assert_eq!(
        c.classify4(&k, &sets),
        Some(Match {
            priority: 0,
            action: 1
        })
    );
    assert_eq!(
        c.classify4_from(&k, &sets, 100),
        Some(Match {
            priority: 100,
            action: 2
        })
    );
    assert_eq!(
        c.classify4_from(&Key4 { proto: 17, ..k }, &sets, 100)
            .map(|m| m.action),
        Some(3)
    );
}

#[test]
fn set_membership_changes_without_rebuild() {
    let rule = Rule {
        priority: 5,
        action: 9,
        src: AddrMatch::set(SetId(1)),
        ..Rule::default()
    };
    let c = Classifier::build([&rule]).unwrap();
    let mut sets = IpSetTable::new();
    let k = Key::V6(Key6 {
        src: 0x2001_0db8_u128 << 96 | 7,
        dst: 1,
        src_port: 0,
        dst_port: 0,
        proto: 17,
    });
    assert_eq!(c.classify(&k, &sets), None);
    sets.upsert(SetId(1), IpSet::from_nets([net("2001:db8::/32")]));
    assert_eq!(c.classify(&k, &sets).map(|m| m.action), Some(9));
    sets.get_mut(SetId(1)).unwrap().remove(net("2001:db8::/32"));
    assert_eq!(c.classify(&k, &sets), None);
}

#[test]
fn icmp_type_and_code_ride_in_the_port_fields() {
    // Allow echo request (type 8, any code); deny everything else ICMP.
    let rules = [
        Rule {
            priority: 1,
            action: 1,
            protocol: Some(1),
            src_ports: PortMatch::single(8),
            ..Rule::default()
        },
        Rule {
            priority: 2,
            action: 0,
            protocol: Some(1),
            ..Rule::default()
        },
    ];
    let c = Classifier::build(&rules).unwrap();
    let sets = IpSetTable::new();
    assert_eq!(
        c.classify4(&Key4::icmp(1, 2, 8, 0), &sets)
            .map(|m| m.action),
        Some(1)
    );
    assert_eq!(
        c.classify4(&Key4::icmp(1, 2, 0, 0), &sets)
            .map(|m| m.action),
        Some(0)
    );
}

#[test]
fn removal_frees_predicates_and_rejects_unknown_rules() {
    let rule = Rule {
        priority: 3,
        action: 4,
        not_protocol: Some(6),
        ..Rule::default()
    };
    let mut c = Classifier::new();
    c.insert(&rule).unwrap();
    assert_eq!(c.stats().predicates, 1);
    assert_eq!(
        c.remove(&Rule {
            priority: 4,
            ..rule.clone()
        }),
        Err(ClassifierError::NotFound { priority: 4 })
    );
    c.remove(&rule).unwrap();
    assert_eq!(c.stats().predicates, 0);
    assert!(c.is_empty());
    assert_eq!(c.classify4(&Key4::default(), &IpSetTable::new()), None);
    assert_eq!(
        c.remove(&rule),
        Err(ClassifierError::NotFound { priority: 3 })
    );
}

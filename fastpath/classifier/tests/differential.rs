//! Differential tests: the indexed classifier must answer exactly like the literal linear scan,
//! for random programs mixing IPv4/IPv6 prefixes, several values per field, IP sets, negations
//! and protocol wildcards, for random packets, minimum priorities, and after incremental
//! removals and re-insertions.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use tortie_classifier::{
    AddrMatch, Classifier, IpSet, IpSetTable, IpVersion, Key, Key4, Key6, LinearClassifier,
    PortMatch, PortRange, Rule, SetId,
};

/// A few IPv4 bases so that random prefixes overlap often.
const V4_BASES: [u32; 4] = [0x0A00_0000, 0x0A01_0200, 0xC0A8_0100, 0xC612_0000];
const V6_BASES: [u128; 3] = [
    0x2001_0db8_u128 << 96,
    (0x2001_0db8_0001_u128) << 80,
    (0x2001_0db8_0000_0002_u128) << 64,
];
const PROTOS: [u8; 4] = [1, 6, 17, 58];
const SETS: u32 = 4;

fn v4_addr() -> impl Strategy<Value = u32> {
    (0..V4_BASES.len(), 0u32..0x1_0000).prop_map(|(b, low)| V4_BASES[b] ^ low)
}

fn v6_addr() -> impl Strategy<Value = u128> {
    (0..V6_BASES.len(), any::<u32>()).prop_map(|(b, low)| V6_BASES[b] ^ u128::from(low))
}

fn v4_net() -> impl Strategy<Value = IpNet> {
    (
        v4_addr(),
        prop::sample::select(vec![0u8, 8, 16, 20, 23, 24, 28, 31, 32]),
    )
        .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(a), l).trunc()))
}

fn v6_net() -> impl Strategy<Value = IpNet> {
    (
        v6_addr(),
        prop::sample::select(vec![0u8, 32, 48, 64, 96, 120, 128]),
    )
        .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(a), l).trunc()))
}

fn net() -> impl Strategy<Value = IpNet> {
    prop_oneof![3 => v4_net(), 1 => v6_net()]
}

fn port_range() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        (0u16..100).prop_map(PortRange::single),
        (0u16..100, 0u16..200).prop_map(|(lo, w)| PortRange::new(lo, lo.saturating_add(w))),
        Just(PortRange::new(1024, u16::MAX)),
    ]
}

fn addr_match() -> impl Strategy<Value = AddrMatch> {
    (
        prop::collection::vec(net(), 0..3),
        prop::collection::vec(net(), 0..2),
        prop::collection::vec((0..SETS + 1).prop_map(SetId), 0..2),
        prop::collection::vec((0..SETS + 1).prop_map(SetId), 0..2),
        0u8..4,
    )
        .prop_map(|(nets, not_nets, sets, not_sets, shape)| match shape {
            // Mostly plain fields, sometimes the full mix.
            0 => AddrMatch::any(),
            1 | 2 => AddrMatch {
                nets,
                ..AddrMatch::default()
            },
            _ => AddrMatch {
                nets,
                not_nets,
                sets,
                not_sets,
            },
        })
}

fn port_match() -> impl Strategy<Value = PortMatch> {
    (
        prop::collection::vec(port_range(), 0..3),
        prop::collection::vec(port_range(), 0..2),
        0u8..4,
    )
        .prop_map(|(ranges, not_ranges, shape)| match shape {
            0 => PortMatch::any(),
            1 | 2 => PortMatch {
                ranges,
                not_ranges: Vec::new(),
            },
            _ => PortMatch { ranges, not_ranges },
        })
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        addr_match(),
        addr_match(),
        port_match(),
        port_match(),
        prop::option::weighted(0.6, prop::sample::select(PROTOS.to_vec())),
        prop::option::weighted(0.1, prop::sample::select(PROTOS.to_vec())),
        prop::option::weighted(0.15, prop_oneof![Just(IpVersion::V4), Just(IpVersion::V6)]),
        any::<u32>(),
    )
        .prop_map(
            |(src, dst, src_ports, dst_ports, protocol, not_protocol, ip_version, action)| Rule {
                priority: 0,
                action,
                ip_version,
                protocol,
                not_protocol,
                src,
                dst,
                src_ports,
                dst_ports,
            },
        )
}

/// Rules with unique random priorities.
fn program(max: usize) -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec(rule(), 0..max).prop_flat_map(|rules| {
        let n = rules.len();
        (Just(rules), prop::collection::btree_set(0u32..10_000, n)).prop_map(
            |(mut rules, prios)| {
                for (r, p) in rules.iter_mut().zip(prios) {
                    r.priority = p;
                }
                rules
            },
        )
    })
}

fn sets() -> impl Strategy<Value = IpSetTable> {
    prop::collection::vec(prop::collection::vec(net(), 0..6), SETS as usize).prop_map(|sets| {
        let mut table = IpSetTable::new();
        for (i, members) in sets.into_iter().enumerate() {
            table.upsert(SetId(i as u32), IpSet::from_nets(members));
        }
        table
    })
}

fn key() -> impl Strategy<Value = Key> {
    let port = prop_oneof![0u16..300, any::<u16>()];
    prop_oneof![
        3 => (v4_addr(), v4_addr(), port.clone(), port.clone(), prop::sample::select(PROTOS.to_vec()))
            .prop_map(|(src, dst, src_port, dst_port, proto)| Key::V4(Key4 { src, dst, src_port, dst_port, proto })),
        1 => (v6_addr(), v6_addr(), port.clone(), port, prop::sample::select(PROTOS.to_vec()))
            .prop_map(|(src, dst, src_port, dst_port, proto)| Key::V6(Key6 { src, dst, src_port, dst_port, proto })),
    ]
}

fn check_all(
    fast: &Classifier,
    slow: &LinearClassifier,
    sets: &IpSetTable,
    keys: &[Key],
    min: u32,
) -> Result<(), TestCaseError> {
    for k in keys {
        prop_assert_eq!(
            fast.classify_from(k, sets, min),
            slow.classify_from(k, sets, min),
            "key {:?} min {}",
            k,
            min
        );
    }
    // The batch path must agree with the single-key path.
    let v4: Vec<Key4> = keys
        .iter()
        .filter_map(|k| if let Key::V4(k) = k { Some(*k) } else { None })
        .collect();
    let mut out = vec![None; v4.len()];
    fast.classify4_batch(&v4, sets, min, &mut out);
    for (k, o) in v4.iter().zip(&out) {
        prop_assert_eq!(*o, fast.classify4_from(k, sets, min), "batch key {:?}", k);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn indexed_equals_linear(rules in program(40), sets in sets(), keys in prop::collection::vec(key(), 1..48), min in prop_oneof![Just(0u32), 0u32..10_000]) {
        let fast = Classifier::build(&rules).unwrap();
        let slow = LinearClassifier::new(rules.clone());
        prop_assert_eq!(fast.len(), rules.len());
        check_all(&fast, &slow, &sets, &keys, 0)?;
        check_all(&fast, &slow, &sets, &keys, min)?;
    }

    #[test]
    fn incremental_updates_equal_linear(rules in program(40), sets in sets(), keys in prop::collection::vec(key(), 1..32), removals in prop::collection::vec(any::<prop::sample::Index>(), 0..20)) {
        // Insert one by one in random (generation) order, not priority order.
        let mut fast = Classifier::new();
        for r in &rules {
            fast.insert(r).unwrap();
        }
        let mut slow = LinearClassifier::new(rules.clone());
        check_all(&fast, &slow, &sets, &keys, 0)?;
        let mut live = rules.clone();
        let mut removed = Vec::new();
        for ix in removals {
            if live.is_empty() {
                break;
            }
            let r = live.swap_remove(ix.index(live.len()));
            fast.remove(&r).unwrap();
            prop_assert!(slow.remove(&r));
            removed.push(r);
            check_all(&fast, &slow, &sets, &keys, 0)?;
        }
        prop_assert_eq!(fast.len(), live.len());
        for r in removed {
            fast.insert(&r).unwrap();
            slow.insert(r);
        }
        check_all(&fast, &slow, &sets, &keys, 0)?;
        fast.compact();
        check_all(&fast, &slow, &sets, &keys, 0)?;
    }

    #[test]
    fn keys_inside_rules_equal_linear(rules in program(60), sets in sets(), picks in prop::collection::vec((any::<prop::sample::Index>(), any::<u32>(), any::<u16>(), any::<u16>()), 1..32)) {
        // Keys built from the rules' own networks and ranges, so most of them match something.
        let fast = Classifier::build(&rules).unwrap();
        let slow = LinearClassifier::new(rules.clone());
        let mut keys = Vec::new();
        for (ix, noise, sp, dp) in picks {
            let Some(r) = (!rules.is_empty()).then(|| &rules[ix.index(rules.len())]) else { break };
            let pick = |nets: &[IpNet]| nets.get(noise as usize % nets.len().max(1)).copied();
            let port = |m: &PortMatch, x: u16| m.ranges.first().map_or(x, |r| r.lo.saturating_add(x % (r.hi - r.lo).saturating_add(1)));
            let proto = r.protocol.unwrap_or(6);
            let (src_port, dst_port) = (port(&r.src_ports, sp), port(&r.dst_ports, dp));
            match (pick(&r.src.nets), pick(&r.dst.nets)) {
                (Some(IpNet::V6(s)), d) => {
                    let dst = match d { Some(IpNet::V6(d)) => u128::from(d.network()), _ => V6_BASES[0] };
                    keys.push(Key::V6(Key6 { src: u128::from(s.network()) | u128::from(noise & 0xFF), dst, src_port, dst_port, proto }));
                }
                (s, d) => {
                    let src = match s { Some(IpNet::V4(s)) => u32::from(s.network()) | (noise & 0x7), _ => V4_BASES[0] };
                    let dst = match d { Some(IpNet::V4(d)) => u32::from(d.network()), _ => V4_BASES[1] | noise >> 28 };
                    keys.push(Key::V4(Key4 { src, dst, src_port, dst_port, proto }));
                }
            }
        }
        check_all(&fast, &slow, &sets, &keys, 0)?;
    }
}

/// Many rules sharing one masked key force chain splits; answers must not change.
#[test]
fn chain_splits_keep_answers() {
    let mut rules = Vec::new();
    for i in 0..400u32 {
        let src: IpNet = IpNet::V4(
            Ipv4Net::new_assert(Ipv4Addr::from(0x0A00_0000 | (i << 4)), 28 + (i % 5) as u8).trunc(),
        );
        rules.push(Rule {
            priority: i,
            action: i,
            protocol: Some(6),
            src: AddrMatch::nets([src]),
            dst_ports: PortMatch::single(80 + (i % 3) as u16),
            ..Rule::default()
        });
    }
    let fast = Classifier::build(&rules).unwrap();
    let slow = LinearClassifier::new(rules.clone());
    let sets = IpSetTable::new();
    for i in 0..2000u32 {
        let k = Key::V4(Key4 {
            src: 0x0A00_0000 | (i * 7 % 6400),
            dst: 1,
            src_port: 9,
            dst_port: 80 + (i % 4) as u16,
            proto: 6,
        });
        assert_eq!(fast.classify(&k, &sets), slow.classify(&k, &sets), "{k:?}");
    }
    assert!(fast.stats().v4.longest_chain <= 16, "{:?}", fast.stats());
}

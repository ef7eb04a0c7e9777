//! LPM tests: fixed cases plus differential property tests against a linear scan.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

/// The reference: scan every route, keep the longest that contains the address.
fn naive<A: Address>(routes: &[(Prefix<A>, u32)], addr: A) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for &(p, v) in routes {
        if p.contains(addr) && best.is_none_or(|(l, _)| p.prefix_len() > l) {
            best = Some((p.prefix_len(), v));
        }
    }
    best.map(|(_, v)| v)
}

fn v4(s: &str) -> Ipv4Prefix {
    s.parse().unwrap()
}

#[test]
fn empty_table_has_no_route() {
    let t = Ipv4LpmBuilder::new().build();
    assert_eq!(t.lookup(Ipv4Addr::new(1, 2, 3, 4)), None);
    assert_eq!(t.route_count(), 0);
    let t6 = Ipv6LpmBuilder::new().build();
    assert_eq!(t6.lookup(Ipv6Addr::LOCALHOST), None);
}

#[test]
fn longest_prefix_wins_at_every_depth() {
    let mut b = Ipv4LpmBuilder::new();
    for (p, v) in [
        ("0.0.0.0/0", 1),
        ("10.0.0.0/8", 2),
        ("10.1.0.0/16", 3),
        ("10.1.2.0/24", 4),
        ("10.1.2.128/25", 5),
        ("10.1.2.129/32", 6),
        ("10.1.2.0/31", 7),
        ("10.1.192.0/18", 8),
        ("10.1.255.0/22", 9),
    ] {
        b.insert(v4(p), v).unwrap();
    }
    let t = b.build();
    let q = |a: &str| t.lookup(a.parse().unwrap());
    assert_eq!(q("11.0.0.1"), Some(1));
    assert_eq!(q("10.200.0.1"), Some(2));
    assert_eq!(q("10.1.3.1"), Some(3));
    assert_eq!(q("10.1.2.2"), Some(4));
    assert_eq!(q("10.1.2.130"), Some(5));
    assert_eq!(q("10.1.2.129"), Some(6));
    assert_eq!(q("10.1.2.1"), Some(7));
    assert_eq!(q("10.1.2.0"), Some(7));
    assert_eq!(q("10.1.192.1"), Some(8));
    assert_eq!(q("10.1.252.1"), Some(9));
    assert_eq!(q("255.255.255.255"), Some(1));
}

#[test]
fn remove_and_rebuild() {
    let mut b =
        Ipv4LpmBuilder::from_routes([(v4("10.0.0.0/8"), 1), (v4("10.1.0.0/16"), 2)]).unwrap();
    assert_eq!(b.remove(&v4("10.1.0.0/16")), Some(2));
    assert_eq!(b.remove(&v4("10.1.0.0/16")), None);
    let t = b.build();
    assert_eq!(t.lookup("10.1.0.1".parse().unwrap()), Some(1));
    assert_eq!(b.insert(v4("10.0.0.0/8"), 9).unwrap(), Some(1));
    assert_eq!(b.get(&v4("10.0.0.0/8")), Some(9));
    assert_eq!(b.build().lookup("10.1.0.1".parse().unwrap()), Some(9));
}

#[test]
fn values_above_max_are_refused() {
    let mut b = Ipv4LpmBuilder::new();
    assert_eq!(
        b.insert(v4("10.0.0.0/8"), MAX_VALUE + 1),
        Err(LpmError::Value(MAX_VALUE + 1))
    );
    b.insert(v4("10.0.0.0/8"), MAX_VALUE).unwrap();
    assert_eq!(
        b.build().lookup("10.0.0.1".parse().unwrap()),
        Some(MAX_VALUE)
    );
}

#[test]
fn ipv6_deep_prefixes() {
    let mut b = Ipv6LpmBuilder::new();
    for (p, v) in [
        ("::/0", 1),
        ("2001:db8::/32", 2),
        ("2001:db8:0:1::/64", 3),
        ("2001:db8:0:1::1/128", 4),
        ("2001:db8:0:1::/127", 5),
    ] {
        b.insert(p.parse().unwrap(), v).unwrap();
    }
    let t = b.build();
    let q = |a: &str| t.lookup(a.parse().unwrap());
    assert_eq!(q("2001:db9::1"), Some(1));
    assert_eq!(q("2001:db8:ffff::1"), Some(2));
    assert_eq!(q("2001:db8:0:1::2"), Some(3));
    assert_eq!(q("2001:db8:0:1::1"), Some(4));
    assert_eq!(q("2001:db8:0:1::0"), Some(5));
}

#[test]
fn batch_matches_single() {
    let mut b = Ipv4LpmBuilder::new();
    for i in 0..300u32 {
        b.insert(
            Prefix::new(
                Ipv4Addr::from(i.wrapping_mul(0x9e37_79b9)),
                (8 + i % 25) as u8,
            )
            .unwrap(),
            i,
        )
        .unwrap();
    }
    let t = b.build();
    let addrs: Vec<Ipv4Addr> = (0..100u32)
        .map(|i| Ipv4Addr::from(i.wrapping_mul(0x85eb_ca6b)))
        .collect();
    let mut out = vec![None; addrs.len()];
    t.lookup_batch(&addrs, &mut out);
    for (a, o) in addrs.iter().zip(&out) {
        assert_eq!(*o, t.lookup(*a));
    }
}

/// Prefixes clustered under a few roots so that nesting and deep nodes are common.
fn v4_routes() -> impl Strategy<Value = Vec<(Ipv4Prefix, u32)>> {
    let root = prop_oneof![Just(0x0a00_0000u32), Just(0xc612_0000u32), any::<u32>()];
    prop::collection::vec((root, any::<u32>(), 0u8..=32, 0u32..1000), 0..120).prop_map(|v| {
        v.into_iter()
            .map(|(root, noise, len, val)| {
                // Keep the root's top 12 bits half of the time so prefixes overlap.
                let addr = if noise % 2 == 0 {
                    (root & 0xfff0_0000) | (noise >> 12)
                } else {
                    noise
                };
                (Prefix::new(Ipv4Addr::from(addr), len).unwrap(), val)
            })
            .collect()
    })
}

fn dedup<A: Address>(routes: Vec<(Prefix<A>, u32)>) -> Vec<(Prefix<A>, u32)> {
    // Later duplicates replace earlier ones, as in the builder.
    let mut out: Vec<(Prefix<A>, u32)> = Vec::new();
    for (p, v) in routes {
        if let Some(e) = out.iter_mut().find(|(q, _)| *q == p) {
            e.1 = v;
        } else {
            out.push((p, v));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn v4_matches_naive(routes in v4_routes(), probes in prop::collection::vec(any::<u32>(), 64)) {
        let routes = dedup(routes);
        let t = Ipv4LpmBuilder::from_routes(routes.iter().copied()).unwrap().build();
        // Probe random addresses plus each prefix's first and last address and neighbours.
        let mut addrs: Vec<u32> = probes;
        for (p, _) in &routes {
            let a = u32::from(p.addr());
            let last = a | (u32::MAX.checked_shr(u32::from(p.prefix_len())).unwrap_or(0));
            addrs.extend([a, last, a.wrapping_sub(1), last.wrapping_add(1)]);
        }
        let addrs: Vec<Ipv4Addr> = addrs.into_iter().map(Ipv4Addr::from).collect();
        let mut batch = vec![None; addrs.len()];
        t.lookup_batch(&addrs, &mut batch);
        for (a, b) in addrs.into_iter().zip(batch) {
            let want = naive(&routes, a);
            prop_assert_eq!(t.lookup(a), want, "addr {}", a);
            prop_assert_eq!(b, want, "batch addr {}", a);
        }
    }

    #[test]
    fn v4_incremental_edits_match_naive(
        initial in v4_routes(),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        additions in v4_routes(),
        probes in prop::collection::vec(any::<u32>(), 64),
    ) {
        let mut b = Ipv4LpmBuilder::from_routes(initial.iter().copied()).unwrap();
        let mut model = dedup(initial);
        for ix in removals {
            if model.is_empty() { break; }
            let (p, _) = model.remove(ix.index(model.len()));
            prop_assert!(b.remove(&p).is_some());
        }
        for (p, v) in additions {
            b.insert(p, v).unwrap();
            if let Some(e) = model.iter_mut().find(|(q, _)| *q == p) { e.1 = v } else { model.push((p, v)) }
        }
        prop_assert_eq!(b.len(), model.len());
        let t = b.build();
        for a in probes.into_iter().chain(model.iter().map(|(p, _)| u32::from(p.addr()))) {
            let a = Ipv4Addr::from(a);
            prop_assert_eq!(t.lookup(a), naive(&model, a));
        }
    }

    #[test]
    fn v6_matches_naive(
        routes in prop::collection::vec((prop_oneof![Just(0x2001_0db8u128 << 96), any::<u128>()], any::<u128>(), 0u8..=128, 0u32..1000), 0..80),
        probes in prop::collection::vec(any::<u128>(), 32),
    ) {
        let routes: Vec<(Ipv6Prefix, u32)> = dedup(routes.into_iter().map(|(root, noise, len, v)| {
            let addr = if noise % 2 == 0 { (root & (u128::MAX << 80)) | (noise >> 48) } else { noise };
            (Prefix::new(Ipv6Addr::from(addr), len).unwrap(), v)
        }).collect());
        let t = Ipv6LpmBuilder::from_routes(routes.iter().copied()).unwrap().build();
        let mut addrs = probes;
        for (p, _) in &routes {
            let a = u128::from(p.addr());
            let last = a | u128::MAX.checked_shr(u32::from(p.prefix_len())).unwrap_or(0);
            addrs.extend([a, last, a.wrapping_sub(1), last.wrapping_add(1)]);
        }
        let addrs: Vec<Ipv6Addr> = addrs.into_iter().map(Ipv6Addr::from).collect();
        let mut batch = vec![None; addrs.len()];
        t.lookup_batch(&addrs, &mut batch);
        for (a, b) in addrs.into_iter().zip(batch) {
            let want = naive(&routes, a);
            prop_assert_eq!(t.lookup(a), want, "addr {}", a);
            prop_assert_eq!(b, want, "batch addr {}", a);
        }
    }
}

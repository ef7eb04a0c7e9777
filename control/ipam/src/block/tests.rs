use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn owner(handle: &str) -> AllocationAttribute {
    AllocationAttribute {
        handle_id: Some(handle.to_string()),
        secondary: BTreeMap::from([("node".to_string(), "node-a".to_string())]),
    }
}

fn block26() -> AllocationBlock {
    AllocationBlock::new("198.18.0.64/26".parse().unwrap(), Some("node-a"), false)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn new_block_is_all_free_and_affine() {
    let block = block26();
    assert_eq!(block.len(), 64);
    assert_eq!(block.free_count(), 64);
    assert!(block.is_unused());
    assert_eq!(block.affine_node(), Some("node-a"));
    assert!(block.consistency_problems().is_empty());
}

#[test]
fn auto_assign_takes_lowest_free_first_and_skips_reserved() {
    let mut block = block26();
    let reserved = |a: IpAddr| a == ip("198.18.0.65");
    let got = block.auto_assign(2, &owner("h1"), &reserved);
    assert_eq!(got, vec![ip("198.18.0.64"), ip("198.18.0.66")]);
    assert_eq!(
        block
            .allocation(ip("198.18.0.64"))
            .unwrap()
            .handle_id
            .as_deref(),
        Some("h1")
    );
    assert!(block.allocation(ip("198.18.0.65")).is_none());
    assert_eq!(block.free_count(), 62);
    assert!(block.consistency_problems().is_empty());
}

#[test]
fn released_addresses_are_reused_last() {
    let mut block = block26();
    let first = block.auto_assign(1, &owner("h1"), &|_| false);
    block.release(&first);
    let next = block.auto_assign(1, &owner("h2"), &|_| false);
    assert_ne!(next, first, "the longest-idle address is reused first");
    assert_eq!(next, vec![ip("198.18.0.65")]);
}

#[test]
fn assign_specific_address_refuses_one_in_use() {
    let mut block = block26();
    block.assign(ip("198.18.0.70"), &owner("h1")).unwrap();
    let err = block.assign(ip("198.18.0.70"), &owner("h2")).unwrap_err();
    assert!(matches!(err, IpamError::AddressInUse { handle: Some(ref h), .. } if h == "h1"));
    let err = block.assign(ip("198.18.1.1"), &owner("h2")).unwrap_err();
    assert!(matches!(err, IpamError::NotInBlock { .. }));
}

#[test]
fn release_is_idempotent_and_counts_per_handle() {
    let mut block = block26();
    let a = block.auto_assign(3, &owner("h1"), &|_| false);
    let b = block.auto_assign(1, &owner("h2"), &|_| false);
    let released = block.release(&[a[0], a[1], b[0]]);
    assert_eq!(
        released,
        BTreeMap::from([("h1".into(), 2), ("h2".into(), 1)])
    );
    assert!(
        block.release(&[a[0]]).is_empty(),
        "a second release changes nothing"
    );
    assert_eq!(block.in_use_count(), 1);
    assert_eq!(
        block.attributes.len(),
        1,
        "unused owners are compacted away"
    );
    assert_eq!(
        block.allocation(a[2]).unwrap().handle_id.as_deref(),
        Some("h1")
    );
    assert!(block.consistency_problems().is_empty());
}

#[test]
fn release_by_handle_frees_only_that_handle() {
    let mut block = block26();
    block.auto_assign(2, &owner("h1"), &|_| false);
    let kept = block.auto_assign(2, &owner("h2"), &|_| false);
    let freed = block.release_by_handle("h1");
    assert_eq!(freed.len(), 2);
    assert_eq!(block.ips_of_handle("h2"), kept);
    assert!(block.ips_of_handle("h1").is_empty());
}

#[test]
fn ipv6_block_ordinals() {
    let mut block = AllocationBlock::new("2001:db8::40/122".parse().unwrap(), Some("n"), false);
    assert_eq!(block.len(), 64);
    let got = block.auto_assign(1, &owner("h"), &|_| false);
    assert_eq!(got, vec![ip("2001:db8::40")]);
    assert_eq!(block.ordinal_of(ip("2001:db8::7f")), Some(63));
    assert_eq!(block.ordinal_of(ip("2001:db8::80")), None);
    assert_eq!(block.ordinal_of(ip("198.18.0.1")), None);
}

#[test]
fn json_shape_matches_calico() {
    let mut block = block26();
    block.auto_assign(1, &owner("k8s-pod-network.abc"), &|_| false);
    let json = serde_json::to_value(&block).unwrap();
    assert_eq!(json["cidr"], "198.18.0.64/26");
    assert_eq!(json["affinity"], "host:node-a");
    assert_eq!(json["allocations"][0], 0);
    assert!(json["allocations"][1].is_null());
    assert_eq!(json["attributes"][0]["handle_id"], "k8s-pod-network.abc");
    assert_eq!(json["strictAffinity"], false);
    assert_eq!(json["sequenceNumber"], 1);
    let back: AllocationBlock = serde_json::from_value(json).unwrap();
    assert_eq!(back, block);
}

#[test]
fn reads_a_block_written_by_calico() {
    let text = r#"{"cidr":"198.18.2.0/30","affinity":"host:node-b","strictAffinity":false,
        "allocations":[0,null,1,null],"unallocated":[3,1],
        "attributes":[{"handle_id":"k8s-pod-network.c1","secondary":{"namespace":"default","node":"node-b","pod":"web","timestamp":"2024-01-01 00:00:00"}},
                      {"handle_id":"ipip-tunnel-addr-node-b","secondary":{"node":"node-b","type":"ipipTunnelAddress"}}],
        "deleted":false}"#;
    let block: AllocationBlock = serde_json::from_str(text).unwrap();
    assert!(block.consistency_problems().is_empty());
    assert_eq!(block.affine_node(), Some("node-b"));
    assert_eq!(
        block.ips_of_handle("ipip-tunnel-addr-node-b"),
        vec![ip("198.18.2.2")]
    );
}

#[test]
fn consistency_finds_double_listing() {
    let mut block = block26();
    block.auto_assign(1, &owner("h"), &|_| false);
    block.unallocated.push(0);
    let problems = block.consistency_problems();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("double allocation"), "{problems:?}");
}

#[derive(Debug, Clone)]
enum Op {
    Auto(u8, u8),
    Assign(u8, u8),
    Release(Vec<u8>),
    ReleaseHandle(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..5, 0u8..4).prop_map(|(n, h)| Op::Auto(n, h)),
        (0u8..16, 0u8..4).prop_map(|(o, h)| Op::Assign(o, h)),
        proptest::collection::vec(0u8..16, 0..4).prop_map(Op::Release),
        (0u8..4).prop_map(Op::ReleaseHandle),
    ]
}

proptest! {
    /// Random operations keep the block consistent and agree with a map of address -> handle.
    #[test]
    fn block_agrees_with_a_map(ops in proptest::collection::vec(op(), 1..60)) {
        let mut block = AllocationBlock::new("198.18.3.0/28".parse().unwrap(), Some("n"), false);
        let mut model: BTreeMap<u8, u8> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Auto(n, h) => {
                    let got = block.auto_assign(n as usize, &owner(&h.to_string()), &|_| false);
                    prop_assert_eq!(got.len(), (n as usize).min(16 - model.len()));
                    for ip in got {
                        let o = block.ordinal_of(ip).unwrap() as u8;
                        prop_assert!(model.insert(o, h).is_none(), "allocated twice");
                    }
                }
                Op::Assign(o, h) => {
                    let r = block.assign(block.ip_of(o.into()), &owner(&h.to_string()));
                    prop_assert_eq!(r.is_ok(), !model.contains_key(&o));
                    model.entry(o).or_insert(h);
                }
                Op::Release(os) => {
                    let ips: Vec<_> = os.iter().map(|&o| block.ip_of(o.into())).collect();
                    block.release(&ips);
                    for o in os { model.remove(&o); }
                }
                Op::ReleaseHandle(h) => {
                    block.release_by_handle(&h.to_string());
                    model.retain(|_, v| *v != h);
                }
            }
            prop_assert!(block.consistency_problems().is_empty());
            let actual: BTreeSet<(u8, String)> = block
                .allocated()
                .map(|(ip, a)| (block.ordinal_of(ip).unwrap() as u8, a.handle_id.clone().unwrap()))
                .collect();
            let expected: BTreeSet<(u8, String)> = model.iter().map(|(o, h)| (*o, h.to_string())).collect();
            prop_assert_eq!(actual, expected);
        }
    }
}

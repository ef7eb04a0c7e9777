//! IPAM against the real SQLite backend: allocation order, all-or-nothing requests, specific
//! addresses, releases, and concurrent allocation from many writers with no duplicate.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use tortie_datastore::{Datastore, SqliteStore};
use tortie_ipam::{AssignIpArgs, AutoAssignArgs, Ipam, IpamConfig, IpamError, Pool, PoolUse};

fn pool(name: &str, cidr: &str, block_size: u8) -> Pool {
    Pool {
        name: name.into(),
        cidr: cidr.parse().unwrap(),
        block_size,
        allowed_uses: vec![PoolUse::Workload, PoolUse::Tunnel],
    }
}

fn store(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir.join("tortie.db")).unwrap()
}

fn args<'r>(node: &'r str, handle: &'r str, v4: &'r [Pool], v6: &'r [Pool]) -> AutoAssignArgs<'r> {
    AutoAssignArgs {
        node,
        handle,
        attributes: BTreeMap::from([("node".to_string(), node.to_string())]),
        num_v4: usize::from(!v4.is_empty()),
        num_v6: usize::from(!v6.is_empty()),
        v4_pools: v4,
        v6_pools: v6,
        reservations: &[],
        use_: PoolUse::Workload,
    }
}

#[test]
fn dual_stack_assignment_claims_affine_blocks_and_records_handles() {
    let dir = tempfile::tempdir().unwrap();
    let ds = store(dir.path());
    let ipam = Ipam::new(&ds);
    let v4 = [pool("v4", "198.18.0.0/24", 26)];
    let v6 = [pool("v6", "2001:db8:1::/120", 122)];
    let got = ipam
        .auto_assign(&args("node-a", "net.c1", &v4, &v6))
        .unwrap();
    assert_eq!(got.v4.len(), 1);
    assert_eq!(got.v6.len(), 1);
    assert!(v4[0].cidr.contains(&got.v4[0]));
    assert!(v6[0].cidr.contains(&got.v6[0]));
    assert_eq!(ipam.affine_blocks("node-a", false).unwrap().len(), 1);
    assert_eq!(ipam.affine_blocks("node-a", true).unwrap().len(), 1);

    // A second container on the node uses the same block.
    let more = ipam
        .auto_assign(&args("node-a", "net.c2", &v4, &[]))
        .unwrap();
    let block = ipam.affine_blocks("node-a", false).unwrap()[0];
    assert!(block.contains(&more.v4[0]));
    assert_eq!(ipam.affine_blocks("node-a", false).unwrap().len(), 1);

    let (_, owner) = ipam.ip_info(got.v4[0]).unwrap().unwrap();
    assert_eq!(owner.handle_id.as_deref(), Some("net.c1"));
    assert!(ipam.check(None).unwrap().is_clean());

    let released = ipam.release_by_handle("net.c1").unwrap();
    assert_eq!(released.len(), 2);
    assert!(ipam.ip_info(got.v4[0]).unwrap().is_none());
    assert!(
        ipam.release_by_handle("net.c1").unwrap().is_empty(),
        "idempotent"
    );
    assert!(ipam.check(None).unwrap().is_clean());
}

#[test]
fn exhausted_pool_fails_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let ds = store(dir.path());
    let ipam = Ipam::new(&ds);
    let v4 = [pool("tiny", "198.18.1.0/30", 30)];
    let v6 = [pool("tiny6", "2001:db8:2::/127", 127)];
    let mut request = args("node-a", "net.big", &v4, &v6);
    request.num_v4 = 4;
    request.num_v6 = 3;
    let err = ipam.auto_assign(&request).unwrap_err();
    assert!(
        matches!(
            err,
            IpamError::Exhausted {
                family: 6,
                wanted: 3,
                got: 2,
                ..
            }
        ),
        "{err}"
    );
    // The IPv4 part that succeeded was released again.
    let report = ipam.check(None).unwrap();
    assert_eq!(report.allocations, 0, "{report}");
    assert!(report.is_clean(), "{report}");
}

#[test]
fn reservations_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let ds = store(dir.path());
    let ipam = Ipam::new(&ds);
    let v4 = [pool("p", "198.18.2.0/30", 30)];
    let reserved: Vec<IpNet> = vec!["198.18.2.0/31".parse().unwrap()];
    let mut request = args("node-a", "net.r", &v4, &[]);
    request.num_v4 = 2;
    request.reservations = &reserved;
    let got = ipam.auto_assign(&request).unwrap();
    let expected: Vec<IpAddr> = vec!["198.18.2.2".parse().unwrap(), "198.18.2.3".parse().unwrap()];
    assert_eq!(got.v4, expected);
    request.num_v4 = 1;
    request.handle = "net.r2";
    assert!(matches!(
        ipam.auto_assign(&request),
        Err(IpamError::Exhausted { .. })
    ));
}

#[test]
fn strict_affinity_forbids_borrowing_and_default_borrows() {
    let dir = tempfile::tempdir().unwrap();
    let ds = store(dir.path());
    let ipam = Ipam::new(&ds);
    let v4 = [pool("one-block", "198.18.3.0/30", 30)];
    let mut request = args("node-a", "net.a", &v4, &[]);
    request.num_v4 = 2;
    ipam.auto_assign(&request).unwrap();
    // node-b finds no block to claim and borrows from node-a's block.
    let borrowed = ipam
        .auto_assign(&args("node-b", "net.b", &v4, &[]))
        .unwrap();
    assert!(v4[0].cidr.contains(&borrowed.v4[0]));
    assert!(ipam.affine_blocks("node-b", false).unwrap().is_empty());

    ipam.set_config(IpamConfig {
        strict_affinity: true,
        ..IpamConfig::default()
    })
    .unwrap();
    let err = ipam
        .auto_assign(&args("node-c", "net.c", &v4, &[]))
        .unwrap_err();
    assert!(matches!(err, IpamError::Exhausted { .. }), "{err}");
    let specific = AssignIpArgs {
        ip: "198.18.3.3".parse().unwrap(),
        node: "node-c",
        handle: "net.c",
        attributes: BTreeMap::new(),
        pools: &v4,
        reservations: &[],
    };
    assert!(matches!(
        ipam.assign_ip(&specific),
        Err(IpamError::StrictAffinity { .. })
    ));
    assert!(
        ipam.set_config(IpamConfig {
            strict_affinity: false,
            auto_allocate_blocks: false,
            max_blocks_per_host: 0
        })
        .is_err()
    );
}

#[test]
fn max_blocks_per_host_caps_claims() {
    let dir = tempfile::tempdir().unwrap();
    let ds = store(dir.path());
    let ipam = Ipam::new(&ds);
    ipam.set_config(IpamConfig {
        strict_affinity: true,
        auto_allocate_blocks: true,
        max_blocks_per_host: 1,
    })
    .unwrap();
    let v4 = [pool("p", "198.18.4.0/28", 30)];
    let mut request = args("node-a", "net.a", &v4, &[]);
    request.num_v4 = 4;
    ipam.auto_assign(&request).unwrap();
    request.handle = "net.b";
    request.num_v4 = 1;
    let err = ipam.auto_assign(&request).unwrap_err();
    assert!(matches!(err, IpamError::BlockCap { cap: 1, .. }), "{err}");
}

#[test]
fn specific_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let ds = store(dir.path());
    let ipam = Ipam::new(&ds);
    let pools = [pool("p", "198.18.5.0/24", 26)];
    let mut request = AssignIpArgs {
        ip: "198.18.5.77".parse().unwrap(),
        node: "node-a",
        handle: "net.s1",
        attributes: BTreeMap::new(),
        pools: &pools,
        reservations: &[],
    };
    ipam.assign_ip(&request).unwrap();
    assert_eq!(
        ipam.affine_blocks("node-a", false).unwrap(),
        vec!["198.18.5.64/26".parse::<IpNet>().unwrap()]
    );
    request.handle = "net.s2";
    assert!(matches!(
        ipam.assign_ip(&request),
        Err(IpamError::AddressInUse { .. })
    ));
    request.ip = "198.18.9.1".parse().unwrap();
    assert!(matches!(
        ipam.assign_ip(&request),
        Err(IpamError::NotInPool { .. })
    ));
    let reserved: Vec<IpNet> = vec!["198.18.5.128/25".parse().unwrap()];
    request.ip = "198.18.5.200".parse().unwrap();
    request.reservations = &reserved;
    assert!(matches!(
        ipam.assign_ip(&request),
        Err(IpamError::Reserved { .. })
    ));
    assert_eq!(
        ipam.release_ips(&["198.18.5.77".parse().unwrap()])
            .unwrap()
            .len(),
        1
    );
    assert!(ipam.check(None).unwrap().is_clean());
}

#[test]
fn leaks_are_found_and_released() {
    let dir = tempfile::tempdir().unwrap();
    let ds = store(dir.path());
    let ipam = Ipam::new(&ds);
    let v4 = [pool("p", "198.18.6.0/24", 26)];
    ipam.auto_assign(&args("node-a", "net.live", &v4, &[]))
        .unwrap();
    let leaked = ipam
        .auto_assign(&args("node-a", "net.crashed", &v4, &[]))
        .unwrap();
    let live = HashSet::from(["net.live".to_string()]);
    let report = ipam.check(Some(&live)).unwrap();
    assert_eq!(
        report.leaks,
        vec![(leaked.v4[0], "net.crashed".to_string())]
    );
    assert_eq!(ipam.release_leaks(&report).unwrap(), leaked.v4);
    let after = ipam.check(Some(&live)).unwrap();
    assert!(after.is_clean(), "{after}");
    assert_eq!(after.allocations, 1);
}

#[test]
fn release_empty_affinities_removes_unused_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let ds = store(dir.path());
    let ipam = Ipam::new(&ds);
    let v4 = [pool("p", "198.18.7.0/24", 26)];
    ipam.auto_assign(&args("node-a", "net.x", &v4, &[]))
        .unwrap();
    assert!(
        ipam.release_empty_affinities("node-a").unwrap().is_empty(),
        "block in use stays"
    );
    ipam.release_by_handle("net.x").unwrap();
    assert_eq!(ipam.release_empty_affinities("node-a").unwrap().len(), 1);
    assert!(ipam.affine_blocks("node-a", false).unwrap().is_empty());
    assert_eq!(ipam.check(None).unwrap().blocks, 0);
}

/// 100 concurrent requests, each writer with its own connection to the same file (as separate
/// CNI processes would have), on one node and then across four nodes: every address is handed
/// out exactly once, and after releasing everything the check is clean.
#[test]
fn concurrent_assignments_never_duplicate() {
    for nodes in [1usize, 4] {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().to_path_buf());
        let v4 = Arc::new([pool("p", "198.18.8.0/23", 26)]);
        let threads: Vec<_> = (0..10)
            .map(|t| {
                let path = Arc::clone(&path);
                let v4 = Arc::clone(&v4);
                std::thread::spawn(move || {
                    let ds = store(&path);
                    let ipam = Ipam::new(&ds);
                    let mut got = Vec::new();
                    for i in 0..10 {
                        let node = format!("node-{}", (t * 10 + i) % nodes);
                        let handle = format!("net.t{t}-{i}");
                        let assignment =
                            ipam.auto_assign(&args(&node, &handle, &*v4, &[])).unwrap();
                        got.push((handle, assignment.v4[0]));
                    }
                    got
                })
            })
            .collect();
        let all: Vec<(String, IpAddr)> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(all.len(), 100);
        let unique: HashSet<IpAddr> = all.iter().map(|(_, ip)| *ip).collect();
        assert_eq!(
            unique.len(),
            100,
            "an address was handed out twice ({nodes} nodes)"
        );

        let ds = store(&path);
        let ipam = Ipam::new(&ds);
        let report = ipam.check(None).unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.allocations, 100);
        for (handle, ip) in &all {
            assert_eq!(ipam.release_by_handle(handle).unwrap(), vec![*ip]);
        }
        let report = ipam.check(None).unwrap();
        assert!(report.is_clean() && report.allocations == 0, "{report}");
        drop(ds);
    }
}

#[test]
fn reads_blocks_written_by_calico() {
    let dir = tempfile::tempdir().unwrap();
    let ds = store(dir.path());
    let block = br#"{"cidr":"198.18.10.0/30","affinity":"host:node-b","strictAffinity":false,
        "allocations":[0,null,null,null],"unallocated":[1,2,3],
        "attributes":[{"handle_id":"k8s-pod-network.abc","secondary":{"node":"node-b"}}],"deleted":false}"#;
    ds.create(
        "/calico/ipam/v2/assignment/ipv4/block/198.18.10.0-30",
        block,
    )
    .unwrap();
    ds.create(
        "/calico/ipam/v2/host/node-b/ipv4/block/198.18.10.0-30",
        br#"{"state":"confirmed","deleted":false}"#,
    )
    .unwrap();
    ds.create(
        "/calico/ipam/v2/handle/k8s-pod-network.abc",
        br#"{"block":{"198.18.10.0/30":1},"deleted":false}"#,
    )
    .unwrap();
    let ipam = Ipam::new(&ds);
    let report = ipam.check(None).unwrap();
    assert!(report.is_clean(), "{report}");
    let v4 = [pool("p", "198.18.10.0/24", 30)];
    let got = ipam
        .auto_assign(&args("node-b", "net.new", &v4, &[]))
        .unwrap();
    assert_eq!(got.v4, vec!["198.18.10.1".parse::<IpAddr>().unwrap()]);
    let _: &dyn Datastore = &ds;
}

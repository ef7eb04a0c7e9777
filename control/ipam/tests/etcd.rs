//! IPAM against a real etcd (started for the test): the same compare-and-swap allocator,
//! concurrent writers with their own connections, no address handed out twice.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use tortie_datastore::{Datastore, DatastoreConfig};
use tortie_ipam::{AutoAssignArgs, Ipam, Pool, PoolUse};
use tortie_testkit::etcd::EtcdServer;

fn connect(endpoint: &str) -> Arc<dyn Datastore> {
    tortie_datastore::open(&DatastoreConfig::etcd([endpoint.to_string()])).expect("connect to etcd")
}

fn pools() -> [Pool; 1] {
    [Pool {
        name: "p".into(),
        cidr: "198.18.90.0/23".parse().unwrap(),
        block_size: 26,
        allowed_uses: vec![PoolUse::Workload],
    }]
}

#[test]
fn concurrent_assignments_on_etcd_never_duplicate() {
    let etcd = EtcdServer::start();
    let endpoint = Arc::new(etcd.endpoint.clone());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let endpoint = Arc::clone(&endpoint);
            std::thread::spawn(move || {
                let ds = connect(&endpoint);
                let ipam = Ipam::new(ds.as_ref());
                let pools = pools();
                (0..8)
                    .map(|i| {
                        let node = format!("node-{}", (t + i) % 4);
                        let handle = format!("net.t{t}-{i}");
                        let got = ipam
                            .auto_assign(&AutoAssignArgs {
                                node: &node,
                                handle: &handle,
                                attributes: BTreeMap::new(),
                                num_v4: 1,
                                num_v6: 0,
                                v4_pools: &pools,
                                v6_pools: &[],
                                reservations: &[],
                                use_: PoolUse::Workload,
                            })
                            .unwrap();
                        (handle, got.v4[0])
                    })
                    .collect::<Vec<(String, IpAddr)>>()
            })
        })
        .collect();
    let all: Vec<(String, IpAddr)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let unique: HashSet<IpAddr> = all.iter().map(|(_, ip)| *ip).collect();
    assert_eq!(unique.len(), 64, "an address was handed out twice");

    let ds = connect(&endpoint);
    let ipam = Ipam::new(ds.as_ref());
    let report = ipam.check(None).unwrap();
    assert!(report.is_clean() && report.allocations == 64, "{report}");
    for (handle, ip) in &all {
        assert_eq!(ipam.release_by_handle(handle).unwrap(), vec![*ip]);
    }
    let report = ipam.check(None).unwrap();
    assert!(report.is_clean() && report.allocations == 0, "{report}");
}

//! 100 concurrent ADDs from separate plugin processes on one datastore, on one node and across
//! four node names: no address is handed out twice, and after the DELs `ipam check` is clean.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Child, Command, Stdio};

use common::{TestStore, ipam_conf, stdout_json};
use tortie_ipam::Ipam;

const TORTIE_IPAM: &str = env!("CARGO_BIN_EXE_tortie-ipam");
const CONTAINERS: usize = 100;

fn spawn(command: &str, container: &str, conf: &str) -> Child {
    let mut child = Command::new(TORTIE_IPAM)
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_NETNS", "/nonexistent")
        .env("CNI_IFNAME", "eth0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tortie-ipam");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.as_bytes())
        .unwrap();
    child
}

fn run_concurrently(store: &TestStore, nodes: usize) {
    let confs: Vec<String> = (0..nodes)
        .map(|n| ipam_conf(store, &format!("node-{n}")))
        .collect();
    run_with_confs(&confs, &store.open());
}

/// Runs the ADDs, each container on node `i % confs.len()`, then the DELs, checking IPAM on `ds`.
fn run_with_confs(confs: &[String], ds: &dyn tortie_datastore::Datastore) {
    let nodes = confs.len();
    let children: Vec<(String, Child)> = (0..CONTAINERS)
        .map(|i| {
            let id = format!("c{i}");
            let child = spawn("ADD", &id, &confs[i % nodes]);
            (id, child)
        })
        .collect();
    let mut addresses = HashSet::new();
    for (id, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ADD {id}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let address = stdout_json(&out)["ips"][0]["address"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            addresses.insert(address.clone()),
            "{address} handed out twice ({nodes} nodes)"
        );
    }
    assert_eq!(addresses.len(), CONTAINERS);
    let report = Ipam::new(ds).check(None).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.allocations, CONTAINERS);

    let dels: Vec<Child> = (0..CONTAINERS)
        .map(|i| spawn("DEL", &format!("c{i}"), &confs[i % nodes]))
        .collect();
    for child in dels {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "DEL: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let report = Ipam::new(ds).check(None).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.allocations, 0, "{report}");
}

#[test]
fn concurrent_adds_on_one_node() {
    let store = TestStore::new();
    store.add_pool("p", "198.18.60.0/22", 26);
    run_concurrently(&store, 1);
}

#[test]
fn concurrent_adds_across_four_nodes() {
    let store = TestStore::new();
    store.add_pool("p", "198.18.64.0/22", 26);
    run_concurrently(&store, 4);
}

#[test]
fn concurrent_adds_across_four_nodes_on_etcd() {
    let etcd = tortie_testkit::etcd::EtcdServer::start();
    let ds = tortie_datastore::open(&tortie_datastore::DatastoreConfig::etcd([etcd
        .endpoint
        .clone()]))
    .unwrap();
    let pool = r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"198.18.68.0/22","blockSize":26}}"#;
    let key = tortie_datastore::keys::resource_key("ippools", None, "p").unwrap();
    ds.put(&key, pool.as_bytes()).unwrap();
    let confs: Vec<String> = (0..4)
        .map(|n| {
            format!(
                r#"{{"cniVersion":"1.0.0","name":"testnet","type":"tortie-ipam","nodename":"node-{n}",
                    "datastore_type":"etcdv3","etcd_endpoints":"{}","ipam":{{"type":"tortie-ipam"}}}}"#,
                etcd.endpoint
            )
        })
        .collect();
    run_with_confs(&confs, ds.as_ref());
}

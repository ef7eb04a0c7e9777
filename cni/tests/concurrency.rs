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
    let ds = store.open();
    let report = Ipam::new(&ds).check(None).unwrap();
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
    let report = Ipam::new(&ds).check(None).unwrap();
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

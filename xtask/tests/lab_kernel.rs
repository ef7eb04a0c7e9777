//! The lab on kernel forwarding (no daemons): topology, CNI workloads on three nodes, TCP, UDP
//! and ICMP between them, the status description, idempotent up/down. Needs root.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use common::{Checks, LabGuard, root_or_skip};
use xtask::lab::plan::{NODES, OUTSIDE_ADDR, OUTSIDE_NS};
use xtask::lab::state::RUN_DIR;
use xtask::lab::{Lab, UpOptions, status};
use xtask::probe::{self, PORT, Responder};

const WAIT: Duration = Duration::from_millis(500);

#[test]
fn kernel_lab_carries_tcp_udp_icmp_and_comes_down_clean() {
    if !root_or_skip("kernel lab") {
        return;
    }
    let mut checks = Checks::default();
    let mut guard = LabGuard::up(false);

    let a1: IpAddr = guard
        .add("k-a1", "ns-a", "node1", "frontend")
        .parse()
        .unwrap();
    let b1: IpAddr = guard
        .add("k-b1", "ns-b", "node1", "backend")
        .parse()
        .unwrap();
    let a2: IpAddr = guard
        .add("k-a2", "ns-a", "node2", "frontend")
        .parse()
        .unwrap();
    let b3: IpAddr = guard
        .add("k-b3", "ns-b", "node3", "backend")
        .parse()
        .unwrap();
    let netns = |name: &str| {
        guard
            .0
            .as_ref()
            .unwrap()
            .workload(name)
            .unwrap()
            .netns
            .clone()
    };
    let (ns_a1, ns_b1, ns_a2, ns_b3) = (netns("k-a1"), netns("k-b1"), netns("k-a2"), netns("k-b3"));
    let _responders = [
        Responder::start(&ns_b1, "k-b1", PORT).unwrap(),
        Responder::start(&ns_a2, "k-a2", PORT).unwrap(),
        Responder::start(&ns_b3, "k-b3", PORT).unwrap(),
    ];

    for (what, to, name) in [
        ("same node", b1, "k-b1"),
        ("same segment", a2, "k-a2"),
        ("across the router", b3, "k-b3"),
    ] {
        let tcp = probe::tcp(&ns_a1, to, PORT, WAIT).unwrap();
        checks.record(
            &format!("TCP {what}"),
            tcp.as_deref() == Some(name),
            format!("{tcp:?}"),
        );
        let udp = probe::udp(&ns_a1, to, PORT, None, WAIT).unwrap();
        checks.record(
            &format!("UDP {what}"),
            udp.as_deref() == Some(name),
            format!("{udp:?}"),
        );
        let icmp = probe::ping(&ns_a1, to).unwrap();
        checks.record(&format!("ICMP {what}"), icmp, format!("{icmp}"));
    }
    let outside = Responder::start(OUTSIDE_NS, "outside", PORT).unwrap();
    let reply = probe::tcp(&ns_a1, OUTSIDE_ADDR.parse().unwrap(), PORT, WAIT).unwrap();
    checks.record(
        "TCP to the outside host",
        reply.as_deref() == Some("outside"),
        format!("{reply:?}"),
    );
    drop(outside);

    // The status tells another host how to join and a client where the datastore is.
    let lab = guard.0.as_ref().unwrap();
    let json = status::to_json(&lab.state);
    checks.record(
        "status lists nodes with uplink addresses",
        json["nodes"].as_array().map(Vec::len) == Some(3)
            && json["nodes"][2]["address"] == "198.18.2.13/24",
        json["nodes"][2]["address"].to_string(),
    );
    checks.record(
        "status lists workloads and the datastore",
        json["workloads"].as_array().map(Vec::len) == Some(4)
            && json["workloads"][0]["address"] == a1.to_string()
            && json["datastore"]["env"]["SQLITE_PATH"].as_str()
                == Some(&*lab.state.datastore.display().to_string()),
        json["datastore"].to_string(),
    );
    let options = UpOptions {
        run_dir: RUN_DIR.into(),
        bin_dir: lab.state.bin_dir.clone(),
        daemons: false,
        ready_timeout: Duration::from_secs(5),
        keep_on_failure: false,
        ipv6: false,
        routes_from_bgp: false,
    };
    let again = Lab::up(&options);
    checks.record(
        "a second up refuses and leaves the lab alone",
        again.is_err() && Path::new(&format!("/run/netns/{}", NODES[0].namespace)).exists(),
        format!("{:?}", again.err().map(|e| e.to_string())),
    );

    // Detaching one workload releases its namespace.
    guard.lab().remove_workload("k-a2").unwrap();
    checks.record(
        "workload removal deletes its namespace",
        !Path::new(&format!("/run/netns/{ns_a2}")).exists(),
        ns_a2.clone(),
    );

    let report = guard.0.take().unwrap().down().unwrap();
    let leftovers: Vec<String> = xtask::exec::namespaces()
        .into_iter()
        .filter(|n| n.starts_with("tortie-lab-"))
        .collect();
    checks.record(
        "down removes every lab namespace and the run directory",
        leftovers.is_empty() && !Path::new(RUN_DIR).exists() && report.workloads.len() == 3,
        format!("left {leftovers:?}; report {report:?}"),
    );
    checks.record(
        "down on no lab is fine",
        matches!(xtask::lab::down(Path::new(RUN_DIR)), Ok(None)),
        "",
    );
    checks.assert_all();
}

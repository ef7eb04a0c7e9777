//! `--bypass` (a measurement aid): the daemon cross-connects the uplink and the first
//! workload at layer 2 without the pipeline. Needs root; as non-root it checks `--help` only.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn bypass_cross_connects_uplink_and_first_workload() {
    // tortie-perf offers the `tortie-bypass` system only if `--help` lists the flag.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_tortie-fastpath"))
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--bypass"));
    if !is_root() {
        eprintln!("skipping the traffic part: needs root for network namespaces and AF_XDP");
        return;
    }
    let topo = Topo::new("bypass", true);
    let mut control = Control::new(&topo.ring_path(), topo.tables());
    control.snapshot();
    let daemon = Daemon::start(&topo, 19094, &["--bypass"]);
    assert!(
        wait_for(WAIT, || daemon
            .get("/readyz")
            .is_some_and(|(c, _)| c == 200)
            && topo
                .workloads
                .iter()
                .all(|w| topo.xdp_attached(&w.host_dev))),
        "not ready; log:\n{}",
        daemon.log()
    );
    // The first workload in attach order (lowest interface index).
    let first = topo
        .workloads
        .iter()
        .min_by_key(|w| w.if_index)
        .expect("two workloads");
    let got = udp_probe(
        &topo.router,
        ROUTER_ADDR,
        &first.ns,
        first.addr,
        5200,
        10,
        WAIT,
    );
    assert_eq!(got, 10, "router -> workload; log:\n{}", daemon.log());
    // The pipeline answers the workload's ARP for its gateway; the bypass does not, so the
    // neighbour is made static (the bypass rewrites the destination MAC anyway).
    ip(&[
        "-n",
        &first.ns,
        "neigh",
        "replace",
        GATEWAY,
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        "eth0",
    ])
    .expect("static gateway neighbour");
    let got = udp_probe(
        &first.ns,
        first.addr,
        &topo.router,
        ROUTER_ADDR,
        5201,
        10,
        WAIT,
    );
    assert_eq!(got, 10, "workload -> router; log:\n{}", daemon.log());
    assert!(
        daemon.log().contains("forwarding without the pipeline"),
        "the daemon warns that it runs bypassed"
    );
}

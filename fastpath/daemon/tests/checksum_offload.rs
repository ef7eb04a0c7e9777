//! What happens to frames a workload's kernel sends with TX checksum offload on (veth's
//! default): they reach the AF_XDP socket with only the pseudo-header sum in the UDP/TCP
//! checksum field (CHECKSUM_PARTIAL is never resolved on the XDP path), are forwarded
//! unchanged and are dropped by the receiving kernel as checksum errors. The CNI plugin turns
//! TX checksum offload off on the workload side; this test pins the reason. Needs root.

mod common;

use std::time::Duration;

use common::*;

fn udp_in_csum_errors(ns: &str) -> u64 {
    let ns = ns.to_owned();
    in_ns(&ns, || {
        let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap();
        let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
        let names: Vec<&str> = udp[0].split_whitespace().collect();
        let values: Vec<&str> = udp[1].split_whitespace().collect();
        let i = names.iter().position(|n| *n == "InCsumErrors").unwrap();
        values[i].parse().unwrap()
    })
}

#[test]
fn partial_checksums_from_offloading_workloads_are_dropped_by_the_receiver() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return;
    }
    let topo = Topo::new("csum", false);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let mut control = Control::new(&topo.ring_path(), topo.tables());
    control.snapshot();
    let daemon = Daemon::start(&topo, 19097, &[]);
    assert!(wait_for(Duration::from_secs(5), || {
        daemon.get("/readyz").is_some_and(|(c, _)| c == 200)
    }));
    let before = udp_in_csum_errors(&b.ns);
    let got = udp_probe(
        &a.ns,
        a.addr,
        &b.ns,
        b.addr,
        5000,
        10,
        Duration::from_millis(800),
    );
    let errors = udp_in_csum_errors(&b.ns) - before;
    assert_eq!(
        got, 0,
        "with offload on, no datagram survives (if the fastpath now completes partial \
         checksums, update this test and docs/design/fastpath-daemon.md)"
    );
    assert_eq!(errors, 10, "every one was a checksum error at the receiver");
    assert!(
        daemon.metric(
            "tortie_fastpath_tx_packets_total",
            &[&format!("interface=\"{}\"", b.host_dev)]
        ) >= 10,
        "the fastpath forwarded them"
    );
    // Offload off on the sender: the same datagrams arrive.
    run(
        "ip",
        &["netns", "exec", &a.ns, "ethtool", "-K", "eth0", "tx", "off"],
    )
    .unwrap();
    let got = udp_probe(
        &a.ns,
        a.addr,
        &b.ns,
        b.addr,
        5001,
        10,
        Duration::from_secs(3),
    );
    assert_eq!(got, 10);
}

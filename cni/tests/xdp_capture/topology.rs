//! Namespaces shaped like a node and its workloads, built with `ip` or by the plugin.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::{PEER_V4, PEER_V6, WORKLOAD_V4, WORKLOAD_V6};
use crate::common::Netns;

/// One workload: its host-side interface name and addresses (container side `eth0`).
pub struct Workload {
    pub host: &'static str,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
}

/// The sending workload of the tests.
pub const SENDER: Workload = Workload {
    host: "torw1",
    v4: WORKLOAD_V4,
    v6: WORKLOAD_V6,
};

/// The peer the sender addresses, when a test gives it a namespace of its own.
pub const PEER: Workload = Workload {
    host: "torw2",
    v4: PEER_V4,
    v6: PEER_V6,
};

/// Runs each line of `script` as an `ip` command inside `ns` (arguments split on blanks),
/// failing the test on the first error.
pub fn ip_in(ns: &Netns, script: &str) {
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut args = vec!["ip"];
        args.extend(line.split_whitespace());
        let out = ns.exec(&args);
        assert!(
            out.status.success(),
            "ip {line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The workload side as the plugin shapes it (addresses, on-link gateway, default routes) on
/// `eth0`, which must already be in `workload`.
pub fn workload_addressing(workload: &Netns, spec: &Workload) {
    ip_in(
        workload,
        &format!(
            "link set eth0 up
             addr add {}/32 dev eth0
             addr add {}/128 dev eth0 nodad
             route add 169.254.1.1 dev eth0 scope link
             route add default via 169.254.1.1 dev eth0
             -6 route add default via fe80::ecee:eeff:feee:eeee dev eth0",
            spec.v4, spec.v6
        ),
    );
}

/// A veth pair shaped like the plugin's, built with `ip` and left with the kernel's default
/// offloads: host side `spec.host` in `node`, `eth0` in `workload`.
pub fn plain_veth(node: &Netns, workload: &Netns, spec: &Workload) -> &'static str {
    ip_in(
        node,
        &format!(
            "link add {host} address ee:ee:ee:ee:ee:ee type veth peer name eth0 netns {w}
             link set {host} up",
            host = spec.host,
            w = workload.name
        ),
    );
    workload_addressing(workload, spec);
    spec.host
}

/// The plugin's own veth setup (as ADD runs it), from inside `node`.
pub fn plugin_veth(node: &Netns, workload: &Netns, spec: &Workload) -> &'static str {
    let host = spec.host;
    let netns = workload.path();
    let addresses: Vec<IpNet> = vec![
        IpNet::from(IpAddr::V4(spec.v4)),
        IpNet::from(IpAddr::V6(spec.v6)),
    ];
    tortie_cni::netlink::in_netns(&node.path(), move || {
        tortie_cni::netlink::setup(host, &netns, "eth0", 1500, &addresses)
    })
    .expect("plugin veth setup");
    host
}

/// The MAC address of `eth0` in `workload`.
pub fn eth0_mac(workload: &Netns) -> [u8; 6] {
    let text = workload.exec_stdout(&["cat", "/sys/class/net/eth0/address"]);
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("MAC byte"))
        .collect();
    bytes.try_into().expect("6-byte MAC")
}

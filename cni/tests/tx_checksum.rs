//! L4 checksums of what a workload's kernel sends, as an AF_XDP socket on the host-side veth
//! receives it.
//!
//! A veth advertises TX checksum offload, so the workload's kernel leaves TCP and UDP checksums
//! to "the device": the skb crosses the pair as CHECKSUM_PARTIAL with only the pseudo-header sum
//! in the checksum field. An AF_XDP socket copies the bytes without that metadata, so the
//! fastpath would forward a frame whose checksum the receiver rejects. One test pins that
//! kernel behaviour on a veth set up by hand, one requires the plugin's veth to deliver
//! complete checksums, and two show that forwarded traffic (through a bridge, through a
//! router) keeps the partial checksum until the forwarding namespace's interface facing the
//! AF_XDP socket has TX checksum offload off.
//!
//! Needs root (namespaces, XDP). As non-root the tests print why and return. Addresses are from
//! 198.18.0.0/15 and 2001:db8::/32; namespaces (and with them the veths) go away on drop.

mod common;

mod xdp_capture;

use std::collections::BTreeSet;

use common::{Netns, is_root};
use tortie_cni::offload::{self, TX_CHECKSUM_FEATURES};
use tortie_xsk::BindMode;
use xdp_capture::topology::*;
use xdp_capture::*;

/// The features of `ifname` in `ns` that are in effect.
fn active(ns: &Netns, ifname: &str) -> BTreeSet<String> {
    offload::features(Some(&ns.path()), ifname)
        .unwrap_or_else(|e| panic!("features of {ifname}: {e}"))
        .active
}

/// TSO, TSO6 and UDP segmentation: offloads that would hand the AF_XDP socket frames larger
/// than the MTU.
const SEGMENTATION: [&str; 3] = [
    "tx-tcp-segmentation",
    "tx-tcp6-segmentation",
    "tx-udp-segmentation",
];

/// Without the plugin's offload settings, the kernel hands the AF_XDP socket segments whose
/// checksum field holds only the pseudo-header sum, in native and in generic XDP mode. This
/// pins the kernel behaviour the plugin works around; should a kernel ever fill the checksum
/// in, this test says so.
#[test]
fn default_veth_offload_leaves_partial_checksums_for_af_xdp() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces and attach XDP");
        return;
    }
    for mode in [BindMode::DriverCopy, BindMode::Skb] {
        let (node, workload) = (Netns::new("csn"), Netns::new("csw"));
        let host = plain_veth(&node, &workload, &SENDER);
        workload_neighbours(&workload);
        let before = active(&workload, "eth0");
        let seen = run_flows(&node, host, &workload, mode, || {
            let during = active(&workload, "eth0");
            eprintln!("{mode:?}: workload eth0 active before XDP {before:?}, with XDP {during:?}");
            assert!(during.contains("tx-checksum-ip-generic"), "{during:?}");
            // Native XDP on a veth makes its peer drop software segmentation offloads (the
            // kernel's veth_fix_features); generic XDP does not, so TSO stays on there.
            let segmenting: Vec<&str> = SEGMENTATION
                .into_iter()
                .filter(|f| during.contains(*f))
                .collect();
            let expected: &[&str] = match mode {
                BindMode::Skb => &SEGMENTATION,
                _ => &[],
            };
            assert_eq!(
                segmenting,
                expected,
                "kernel {}: {mode:?}: segmentation offloads in effect with XDP attached",
                kernel_release()
            );
        });
        for s in &seen {
            assert_eq!(
                s.checksum,
                Checksum::Partial,
                "kernel {}: {mode:?} {s:?}: expected the pseudo-header sum only",
                kernel_release()
            );
        }
    }
}

/// With the veth the plugin sets up, every segment the workload's kernel sends reaches the
/// AF_XDP socket with its complete checksum, in native and in generic XDP mode, and the
/// workload side has neither TX checksum nor segmentation offload in effect.
#[test]
fn plugin_veth_delivers_complete_checksums_to_af_xdp() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces and attach XDP");
        return;
    }
    for mode in [BindMode::DriverCopy, BindMode::Skb] {
        let (node, workload) = (Netns::new("cpn"), Netns::new("cpw"));
        let host = plugin_veth(&node, &workload, &SENDER);
        workload_neighbours(&workload);
        let seen = run_flows(&node, host, &workload, mode, || {
            let during = active(&workload, "eth0");
            for feature in TX_CHECKSUM_FEATURES.iter().chain(&SEGMENTATION) {
                assert!(
                    !during.contains(*feature),
                    "{mode:?}: {feature} on: {during:?}"
                );
            }
        });
        for s in &seen {
            assert_eq!(s.checksum, Checksum::Complete, "{mode:?} {s:?}");
        }
    }
}

/// Builds the namespace between workload and node; returns the name of its interface that
/// transmits into the node's `uplink0`.
type Middle = fn(middle: &Netns, workload: &Netns, node: &Netns) -> &'static str;

/// The workload sends through `middle` into the node's AF_XDP-attached `uplink0`: partial
/// checksums as they are, complete ones once the middle's interface facing the node has TX
/// checksum offload off.
fn forwarded_case(tag: &str, build: Middle) {
    for fixed in [false, true] {
        let (node, middle, workload) = (
            Netns::new(&format!("{tag}n")),
            Netns::new(&format!("{tag}m")),
            Netns::new(&format!("{tag}w")),
        );
        let facing_node = build(&middle, &workload, &node);
        ip_in(&node, "link set uplink0 up");
        workload_addressing(&workload, &SENDER);
        workload_neighbours(&workload);
        if fixed {
            offload::disable_tx_checksum(Some(&middle.path()), facing_node)
                .expect("offload off on the interface facing the node");
        }
        let seen = run_flows(&node, "uplink0", &workload, BindMode::DriverCopy, || {});
        let want = if fixed {
            Checksum::Complete
        } else {
            Checksum::Partial
        };
        for s in &seen {
            assert_eq!(
                s.checksum,
                want,
                "kernel {}: TX checksum off on {facing_node}: {fixed}: {s:?}",
                kernel_release()
            );
        }
    }
}

/// Traffic a kernel forwards keeps its partial checksum: a workload behind a Linux bridge in
/// another namespace sends through the bridge into the AF_XDP-attached veth (as a lab switch
/// in front of a node's uplink would). Turning TX checksum offload off on the bridge port that
/// transmits into that veth makes the bridge's kernel complete the checksums.
#[test]
fn bridged_traffic_needs_tx_checksum_off_on_the_port_facing_af_xdp() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces and attach XDP");
        return;
    }
    forwarded_case("cb", |bridge, workload, node| {
        ip_in(
            bridge,
            &format!(
                "link add br0 type bridge
                 link add brw type veth peer name eth0 netns {w}
                 link add brn type veth peer name uplink0 netns {n}
                 link set brw master br0
                 link set brn master br0
                 link set br0 up
                 link set brw up
                 link set brn up",
                w = workload.name,
                n = node.name
            ),
        );
        "brn"
    });
}

/// The same through a router: IPv4 and IPv6 forwarding in the middle namespace, which answers
/// as the workload's gateways (MAC `ee:ee:ee:ee:ee:ee`) and routes the peers out of the veth
/// into the node.
#[test]
fn routed_traffic_needs_tx_checksum_off_on_the_interface_facing_af_xdp() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces and attach XDP");
        return;
    }
    forwarded_case("cr", |router, workload, node| {
        ip_in(
            router,
            &format!(
                "link add rw address ee:ee:ee:ee:ee:ee type veth peer name eth0 netns {w}
                 link add rn type veth peer name uplink0 netns {n}
                 link set rw up
                 link set rn up
                 route add 198.18.9.1/32 dev rw
                 -6 route add 2001:db8:9::1/128 dev rw
                 route add 198.18.9.2/32 dev rn
                 -6 route add 2001:db8:9::2/128 dev rn
                 neigh replace 198.18.9.2 lladdr 02:00:00:00:00:02 dev rn
                 -6 neigh replace 2001:db8:9::2 lladdr 02:00:00:00:00:02 dev rn",
                w = workload.name,
                n = node.name
            ),
        );
        for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            let out = router.exec(&["sysctl", "-w", key]);
            assert!(out.status.success(), "sysctl {key}");
        }
        "rn"
    });
}

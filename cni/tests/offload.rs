//! `tortie_cni::offload` against the kernel: ethtool netlink reads and changes of veth
//! features inside namespaces the tests create, and the errors for bad requests.
//!
//! Needs root (namespaces). As non-root the tests print why and return.

mod common;

use std::net::IpAddr;

use common::{Netns, is_root};
use ipnet::IpNet;
use tortie_cni::offload::{self, OffloadError, TX_CHECKSUM_FEATURES};

/// A namespace holding a veth pair `va` / `vb`.
fn veth_namespace(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    let out = ns.exec(&[
        "ip", "link", "add", "va", "type", "veth", "peer", "name", "vb",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ns
}

#[test]
fn features_turn_off_and_on_again_and_disable_is_idempotent() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces");
        return;
    }
    let ns = veth_namespace("ofa");
    let path = ns.path();
    let initial = offload::features(Some(&path), "va").expect("read features");
    assert!(
        initial.changeable.contains("tx-checksum-ip-generic"),
        "{initial:?}"
    );
    assert!(
        initial.active.contains("tx-checksum-ip-generic"),
        "{initial:?}"
    );
    assert!(
        initial.never_change.is_disjoint(&initial.changeable),
        "{initial:?}"
    );

    let off = offload::set_features(Some(&path), "va", &[("tx-checksum-ip-generic", false)])
        .expect("turn off");
    assert!(!off.active.contains("tx-checksum-ip-generic"), "{off:?}");
    assert!(!off.wanted.contains("tx-checksum-ip-generic"), "{off:?}");
    // TSO needs checksum offload: the kernel drops it along with it.
    assert!(!off.active.contains("tx-tcp-segmentation"), "{off:?}");
    let on = offload::set_features(Some(&path), "va", &[("tx-checksum-ip-generic", true)])
        .expect("turn on");
    assert!(on.active.contains("tx-checksum-ip-generic"), "{on:?}");
    assert!(on.active.contains("tx-tcp-segmentation"), "{on:?}");
    // The peer was never touched.
    let peer = offload::features(Some(&path), "vb").expect("peer features");
    assert!(peer.active.contains("tx-checksum-ip-generic"), "{peer:?}");

    for _ in 0..2 {
        offload::disable_tx_checksum(Some(&path), "va").expect("disable");
        let after = offload::features(Some(&path), "va").expect("read back");
        for feature in TX_CHECKSUM_FEATURES {
            assert!(!after.active.contains(feature), "{feature}: {after:?}");
        }
    }
}

#[test]
fn bad_requests_come_back_as_kernel_errors() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces");
        return;
    }
    let ns = veth_namespace("ofb");
    let path = ns.path();
    match offload::disable_tx_checksum(Some(&path), "missing0") {
        Err(OffloadError::Kernel { errno, what, .. }) => {
            assert_eq!(errno, 19, "ENODEV");
            assert!(what.contains("missing0"), "{what}");
        }
        other => panic!("expected ENODEV, got {other:?}"),
    }
    match offload::set_features(Some(&path), "va", &[("no-such-feature", false)]) {
        Err(err @ OffloadError::Kernel { .. }) => {
            let text = err.to_string();
            assert!(text.contains("no-such-feature"), "{text}");
            eprintln!("{text}");
        }
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

#[test]
fn check_reports_tx_checksum_offload_turned_back_on() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces");
        return;
    }
    let (node, workload) = (Netns::new("ofn"), Netns::new("ofw"));
    let netns = workload.path();
    let addresses = vec![IpNet::from(IpAddr::from([198, 18, 10, 1]))];
    let in_node =
        |work: fn(String, Vec<IpNet>) -> Result<(), tortie_cni::netlink::NetlinkError>| {
            let (netns, addresses) = (netns.clone(), addresses.clone());
            tortie_cni::netlink::in_netns(&node.path(), move || work(netns, addresses))
        };
    in_node(|netns, addresses| {
        tortie_cni::netlink::setup("torcheck0", &netns, "eth0", 1500, &addresses).map(|_| ())
    })
    .expect("setup");
    let check = |netns: String, addresses: Vec<IpNet>| {
        tortie_cni::netlink::check("torcheck0", &netns, "eth0", &addresses)
    };
    in_node(check).expect("CHECK right after setup");
    offload::set_features(Some(&netns), "eth0", &[("tx-checksum-ip-generic", true)])
        .expect("turn back on");
    let err = in_node(check).expect_err("CHECK with TX checksum offload on");
    assert!(
        err.to_string().contains("tx-checksum-ip-generic is on"),
        "{err}"
    );
}

#[test]
fn the_tortie_binary_turns_tx_checksum_off_from_the_command_line() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces");
        return;
    }
    let ns = veth_namespace("ofc");
    let path = ns.path();
    let tortie = env!("CARGO_BIN_EXE_tortie");
    let run = |args: &[&str]| {
        std::process::Command::new(tortie)
            .args(args)
            .output()
            .expect("run tortie")
    };
    let out = run(&["disable-tx-checksum", "--netns", &path, "va", "vb"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["va", "vb"] {
        let active = offload::features(Some(&path), name)
            .expect("features")
            .active;
        assert!(
            !active.contains("tx-checksum-ip-generic"),
            "{name}: {active:?}"
        );
        let shown = run(&["show-offloads", "--netns", &path, name]);
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(text.contains("tx-checksum-ip-generic: off\n"), "{text}");
        assert!(text.contains("rx-checksum: on\n"), "{text}");
    }
    let missing = run(&["disable-tx-checksum", "--netns", &path, "missing0"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("missing0"));
    assert_eq!(run(&["show-offloads"]).status.code(), Some(2));
}

#[test]
fn a_feature_the_device_cannot_change_stays_as_it_is() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces");
        return;
    }
    let ns = Netns::new("ofd");
    let after = offload::set_features(Some(&ns.path()), "lo", &[("loopback", false)])
        .expect("the kernel skips features outside hw");
    assert!(!after.changeable.contains("loopback"), "{after:?}");
    assert!(after.active.contains("loopback"), "{after:?}");
}

//! Building and removing the lab's namespaces, bridges and veths (see [`super::plan`]).

use std::path::Path;
use std::process::Command;

use crate::error::Result;
use crate::exec::{ip, ip_in, namespaces, netns_path, run, sysctl_in};

use super::plan::{
    BRIDGE, NODES, Node, OUTSIDE_ADDR, OUTSIDE_ADDR6, OUTSIDE_NS, OUTSIDE_ROUTER_ADDR,
    OUTSIDE_ROUTER_ADDR6, PREFIX, ROUTER_NS, SEGMENTS, Segment, UPLINK, fixed_namespaces,
};

/// Creates the whole fixed topology. On failure the caller removes what exists with
/// [`remove`].
pub fn create() -> Result<()> {
    for namespace in fixed_namespaces() {
        ip(&["netns", "add", namespace])?;
        ip_in(namespace, &["link", "set", "lo", "up"])?;
    }
    for segment in SEGMENTS {
        create_segment(&segment)?;
    }
    create_outside()?;
    sysctl_in(ROUTER_NS, "net.ipv4.ip_forward=1")?;
    for node in NODES {
        create_node(&node)?;
    }
    Ok(())
}

/// A bridge in the segment's namespace and the router's leg on it.
fn create_segment(segment: &Segment) -> Result<()> {
    let ns = segment.namespace;
    ip_in(ns, &["link", "add", BRIDGE, "type", "bridge"])?;
    ip_in(ns, &["link", "set", BRIDGE, "up"])?;
    plug(ROUTER_NS, segment.name, ns, "router")?;
    ip_in(ns, &["link", "set", "router", "master", BRIDGE, "up"])?;
    let router_cidr = format!("{}/{}", segment.router_addr, segment.prefix_len);
    ip_in(
        ROUTER_NS,
        &["addr", "add", &router_cidr, "dev", segment.name],
    )?;
    ip_in(ROUTER_NS, &["link", "set", segment.name, "up"])
}

/// The outside host: one veth to the router, a default route back through it.
fn create_outside() -> Result<()> {
    plug(ROUTER_NS, "outside", OUTSIDE_NS, UPLINK)?;
    ip_in(
        ROUTER_NS,
        &[
            "addr",
            "add",
            &format!("{OUTSIDE_ROUTER_ADDR}/24"),
            "dev",
            "outside",
        ],
    )?;
    ip_in(ROUTER_NS, &["link", "set", "outside", "up"])?;
    ip_in(
        OUTSIDE_NS,
        &["addr", "add", &format!("{OUTSIDE_ADDR}/24"), "dev", UPLINK],
    )?;
    ip_in(OUTSIDE_NS, &["link", "set", UPLINK, "up"])?;
    ip_in(
        OUTSIDE_NS,
        &["route", "add", "default", "via", OUTSIDE_ROUTER_ADDR],
    )
}

/// A node: uplink `eth0` whose peer is a port of its segment's bridge, its address, a default
/// route through the router, and forwarding on (the CNI plugin's proxy ARP and host routes need
/// it, and kernel forwarding carries workload traffic when no fastpath runs).
fn create_node(node: &Node) -> Result<()> {
    let segment = node.segment.namespace;
    plug(segment, node.name, node.namespace, UPLINK)?;
    ip_in(segment, &["link", "set", node.name, "master", BRIDGE, "up"])?;
    ip_in(
        node.namespace,
        &["addr", "add", &node.addr_cidr(), "dev", UPLINK],
    )?;
    ip_in(node.namespace, &["link", "set", UPLINK, "up"])?;
    ip_in(
        node.namespace,
        &["route", "add", "default", "via", node.segment.router_addr],
    )?;
    sysctl_in(node.namespace, "net.ipv4.ip_forward=1")
}

/// A veth pair: `left` in `left_ns`, `right` in `right_ns`.
fn plug(left_ns: &str, left: &str, right_ns: &str, right: &str) -> Result<()> {
    ip_in(
        left_ns,
        &[
            "link", "add", left, "type", "veth", "peer", "name", right, "netns", right_ns,
        ],
    )
}

/// Adds the IPv6 plan (`lab up --ipv6`): addresses (no duplicate address detection, so they
/// are usable at once), default routes through the router, forwarding on.
pub fn add_ipv6() -> Result<()> {
    for segment in SEGMENTS {
        let cidr = format!("{}/64", segment.router_addr6);
        ip_in(
            ROUTER_NS,
            &["addr", "add", &cidr, "dev", segment.name, "nodad"],
        )?;
    }
    let outside_router = format!("{OUTSIDE_ROUTER_ADDR6}/64");
    ip_in(
        ROUTER_NS,
        &["addr", "add", &outside_router, "dev", "outside", "nodad"],
    )?;
    sysctl_in(ROUTER_NS, "net.ipv6.conf.all.forwarding=1")?;
    let outside = format!("{OUTSIDE_ADDR6}/64");
    ip_in(
        OUTSIDE_NS,
        &["addr", "add", &outside, "dev", UPLINK, "nodad"],
    )?;
    ip_in(
        OUTSIDE_NS,
        &["-6", "route", "add", "default", "via", OUTSIDE_ROUTER_ADDR6],
    )?;
    for node in NODES {
        ip_in(
            node.namespace,
            &["addr", "add", &node.addr6_cidr(), "dev", UPLINK, "nodad"],
        )?;
        ip_in(
            node.namespace,
            &[
                "-6",
                "route",
                "add",
                "default",
                "via",
                node.segment.router_addr6,
            ],
        )?;
        sysctl_in(node.namespace, "net.ipv6.conf.all.forwarding=1")?;
    }
    Ok(())
}

/// Turns TX checksum offload off on every veth end of the topology that sends toward a node
/// (with the `tortie` binary's `disable-tx-checksum`, which speaks ethtool netlink).
///
/// A veth with the offload on hands its peer CHECKSUM_PARTIAL packets whose TCP/UDP checksum
/// holds only the pseudo-header sum; the kernel copes, but tortie-fastpath reads the frame's
/// bytes through AF_XDP without that metadata and would forward a packet every receiver
/// rejects (a physical NIC delivers complete checksums, so this is a lab matter).
pub fn disable_tx_checksum(tortie: &Path) -> Result<()> {
    let mut ends: Vec<(&str, Vec<&str>)> = vec![
        (ROUTER_NS, vec!["segA", "segB", "outside"]),
        (OUTSIDE_NS, vec![UPLINK]),
    ];
    for node in NODES.iter() {
        ends.push((node.namespace, vec![UPLINK]));
    }
    for (namespace, devices) in ends {
        let netns = netns_path(namespace);
        run(Command::new(tortie)
            .args(["disable-tx-checksum", "--netns", &netns])
            .args(devices))?;
    }
    Ok(())
}

/// Whether any namespace of the fixed topology exists.
pub fn exists() -> bool {
    let present = namespaces();
    fixed_namespaces()
        .iter()
        .any(|wanted| present.iter().any(|name| name == wanted))
}

/// Deletes every namespace whose name starts with the lab's prefix (the kernel removes their
/// veths and bridges with them). Returns the names it deleted.
pub fn remove() -> Vec<String> {
    let mut removed = Vec::new();
    for name in namespaces() {
        if name.starts_with(PREFIX) && ip(&["netns", "delete", &name]).is_ok() {
            removed.push(name);
        }
    }
    removed.sort();
    removed
}

//! The XDP steering program on a veth pair between two network namespaces this test creates.
//!
//! Namespace A runs the `Steering` under test with an AF_XDP socket and kernel sockets; B sends
//! hand-built frames through its own AF_XDP socket and receives A's kernel answers (see
//! `common/rig.rs`). IPv6 is off in both namespaces so every frame on the link is the test's,
//! and A's counters are compared exactly with what was sent.
//!
//! Needs root; as non-root the tests print why and return. Addresses are from 198.18.0.0/15
//! and 2001:db8::/32; the namespaces are deleted by a Drop guard, even on failure.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use common::frames::*;
use common::rig::{End, KernelUdp, Rig, delta};
use common::{MARKER, PACKETS, Topo, enter, ip, is_root, test_port_config, test_umem_spec};
use tortie_xsk::{
    BindMode, OwnedTraffic, Port, SteerMode, SteerStats, SteerVerdict, Steering, Umem, XskError,
    xdp_program_id,
};

const SNAT: (u16, u16) = (61000, 65535);

fn skip() -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipped: needs root to create network namespaces and attach XDP");
    true
}

fn a(net: u8) -> [u8; 4] {
    [198, 18, net, 1]
}

fn b(net: u8) -> [u8; 4] {
    [198, 18, net, 2]
}

/// A workload address inside 198.19.`net`.0/26.
fn wl(net: u8, host: u8) -> [u8; 4] {
    [198, 19, net, host]
}

fn dotted(x: [u8; 4]) -> String {
    Ipv4Addr::from(x).to_string()
}

/// `PACKETS` marked UDP datagrams B -> `dst`:`dport`.
fn udp_burst(net: u8, dst: [u8; 4], dport: u16) -> Vec<Vec<u8>> {
    (0..PACKETS)
        .map(|i| {
            let mut msg = MARKER.to_vec();
            msg.extend_from_slice(format!("-{i}").as_bytes());
            eth(
                ETH_IPV4,
                None,
                &ipv4(b(net), dst, 17, 0, &[], &udp(40000, dport, &msg)),
            )
        })
        .collect()
}

/// Marked UDP datagrams to `dst`:`dport` among `frames`.
fn marked_udp(frames: &[Vec<u8>], dst: [u8; 4], dport: u16) -> usize {
    frames
        .iter()
        .filter(|f| match parse(f) {
            Seen::V4 {
                proto: 17,
                dst: d,
                l4,
                ..
            } => d == dst && l4[2..4] == dport.to_be_bytes() && l4[8..].starts_with(MARKER),
            _ => false,
        })
        .count()
}

fn stats(redirected: u64, passed: u64, redirect_failed: u64) -> SteerStats {
    SteerStats {
        redirected,
        passed,
        redirect_failed,
    }
}

fn workload_set(net: u8, prefix: [u8; 4], len: u8) -> OwnedTraffic {
    OwnedTraffic {
        v4_prefixes: vec![(Ipv4Addr::from(prefix), len)],
        node_v4: Some(Ipv4Addr::from(a(net))),
        snat_ports: SNAT,
        ..OwnedTraffic::default()
    }
}

/// Owned mode: UDP to a workload prefix goes to the socket and not to the kernel; UDP, ping
/// and ARP for the node's own address go to the kernel, which answers them.
#[test]
fn owned_mode_redirects_workload_traffic_and_passes_the_nodes_own() {
    if skip() {
        return;
    }
    let net = 41;
    let mut rig = Rig::new(
        "o",
        net,
        SteerMode::Owned,
        &workload_set(net, wl(net, 0), 26),
    );
    ip(&[
        "-n",
        &rig.topo.ns_a,
        "addr",
        "add",
        &format!("{}/32", dotted(wl(net, 5))),
        "dev",
        "lo",
    ])
    .expect("workload address on A's lo");
    let kernel_wl = KernelUdp::bind(&format!("{}:9999", dotted(wl(net, 5))));
    let kernel_node = KernelUdp::bind(&format!("{}:9999", dotted(a(net))));

    let seen = rig.exchange(&udp_burst(net, wl(net, 5), 9999));
    assert_eq!(seen.stats, stats(PACKETS as u64, 0, 0));
    assert_eq!(marked_udp(&seen.xsk, wl(net, 5), 9999), PACKETS);
    assert!(
        kernel_wl.recv(1, Duration::from_millis(100)).is_empty(),
        "the kernel must not see redirected traffic"
    );

    let seen = rig.exchange(&udp_burst(net, a(net), 9999));
    assert_eq!(seen.stats, stats(0, PACKETS as u64, 0));
    assert!(seen.xsk.is_empty(), "node traffic reached the socket");
    assert_eq!(
        kernel_node.recv(PACKETS, Duration::from_secs(2)).len(),
        PACKETS
    );

    // Ping and ARP for the node address: passed, and the kernel answers them.
    let pings: Vec<_> = (0..4)
        .map(|seq| {
            eth(
                ETH_IPV4,
                None,
                &ipv4(
                    b(net),
                    a(net),
                    1,
                    0,
                    &[],
                    &icmp_echo(8, 61000, seq, b"ping"),
                ),
            )
        })
        .collect();
    let seen = rig.exchange(&pings);
    assert_eq!(
        seen.stats,
        stats(0, 4, 0),
        "echo requests (even with an id in the SNAT range)"
    );
    let seen = rig.exchange(&[arp_request(b(net), a(net))]);
    assert_eq!(seen.stats, stats(0, 1, 0), "ARP");
    let answers = rig.b.recv(5, Duration::from_secs(2));
    let replies = answers
        .iter()
        .filter(|f| {
            matches!(parse(f), Seen::V4 { proto: 1, src, ref l4, .. }
                if src == a(net) && l4[0] == 0)
        })
        .count();
    let arp = answers
        .iter()
        .filter(|f| matches!(parse(f), Seen::Arp { op: 2, spa } if spa == a(net)))
        .count();
    assert_eq!(
        (replies, arp),
        (4, 1),
        "kernel answers seen by B: {answers:?}"
    );
    rig.a.assert_no_leak();
}

/// `set_owned` replaces the whole set; an unregistered socket's traffic falls back to the
/// kernel (counted as `redirect_failed`).
#[test]
fn set_owned_replaces_the_set_and_a_missing_socket_falls_back_to_the_kernel() {
    if skip() {
        return;
    }
    let net = 42;
    let mut rig = Rig::new(
        "r",
        net,
        SteerMode::Owned,
        &workload_set(net, wl(net, 0), 26),
    );
    for host in [5, 70] {
        ip(&[
            "-n",
            &rig.topo.ns_a,
            "addr",
            "add",
            &format!("{}/32", dotted(wl(net, host))),
            "dev",
            "lo",
        ])
        .expect("workload address on A's lo");
    }
    let kernel_5 = KernelUdp::bind(&format!("{}:9999", dotted(wl(net, 5))));
    let kernel_70 = KernelUdp::bind(&format!("{}:9999", dotted(wl(net, 70))));

    let seen = rig.exchange(&udp_burst(net, wl(net, 5), 9999));
    assert_eq!(seen.stats, stats(PACKETS as u64, 0, 0), "first set owns .5");
    let seen = rig.exchange(&udp_burst(net, wl(net, 70), 9999));
    assert_eq!(
        seen.stats,
        stats(0, PACKETS as u64, 0),
        "first set does not own .70"
    );
    assert_eq!(
        kernel_70.recv(PACKETS, Duration::from_secs(2)).len(),
        PACKETS
    );

    rig.a
        .steering
        .set_owned(&workload_set(net, wl(net, 64), 26))
        .expect("replace");
    let seen = rig.exchange(&udp_burst(net, wl(net, 5), 9999));
    assert_eq!(
        seen.stats,
        stats(0, PACKETS as u64, 0),
        "stale prefix removed"
    );
    assert_eq!(
        kernel_5.recv(PACKETS, Duration::from_secs(2)).len(),
        PACKETS
    );
    let seen = rig.exchange(&udp_burst(net, wl(net, 70), 9999));
    assert_eq!(seen.stats, stats(PACKETS as u64, 0, 0), "new prefix owned");
    assert_eq!(marked_udp(&seen.xsk, wl(net, 70), 9999), PACKETS);

    let if_a = rig.a.if_index;
    rig.a.steering.unregister(if_a, 0).expect("unregister");
    rig.a
        .steering
        .unregister(if_a, 0)
        .expect("unregister twice");
    let seen = rig.exchange(&udp_burst(net, wl(net, 70), 9999));
    assert_eq!(
        seen.stats,
        stats(0, 0, PACKETS as u64),
        "no socket: redirect fails"
    );
    assert!(seen.xsk.is_empty());
    assert_eq!(
        kernel_70.recv(PACKETS, Duration::from_secs(2)).len(),
        PACKETS,
        "a failed redirect leaves the frame to the kernel"
    );
    rig.a
        .steering
        .register(if_a, 0, &rig.a.port)
        .expect("register again");
    let seen = rig.exchange(&udp_burst(net, wl(net, 70), 9999));
    assert_eq!(seen.stats, stats(PACKETS as u64, 0, 0));
    rig.a.assert_no_leak();
}

/// IP-in-IP is owned from a tunnel source only.
#[test]
fn ipip_is_redirected_only_from_tunnel_sources() {
    if skip() {
        return;
    }
    let net = 43;
    let owned = OwnedTraffic {
        tunnel_sources: vec![Ipv4Addr::from(b(net))],
        node_v4: Some(Ipv4Addr::from(a(net))),
        snat_ports: SNAT,
        ..OwnedTraffic::default()
    };
    let mut rig = Rig::new("i", net, SteerMode::Owned, &owned);
    let ipip = |outer_src: [u8; 4]| -> Vec<Vec<u8>> {
        (0..PACKETS)
            .map(|_| {
                let inner = ipv4(
                    [198, 19, 99, 1],
                    wl(net, 9),
                    17,
                    0,
                    &[],
                    &udp(40000, 7, MARKER),
                );
                eth(ETH_IPV4, None, &ipv4(outer_src, a(net), 4, 0, &[], &inner))
            })
            .collect()
    };
    let seen = rig.exchange(&ipip(b(net)));
    assert_eq!(
        seen.stats,
        stats(PACKETS as u64, 0, 0),
        "from the tunnel source"
    );
    let ok = seen
        .xsk
        .iter()
        .filter(|f| matches!(parse(f), Seen::V4 { proto: 4, src, .. } if src == b(net)))
        .count();
    assert_eq!(ok, PACKETS);
    let seen = rig.exchange(&ipip([198, 18, net, 3]));
    assert_eq!(
        seen.stats,
        stats(0, PACKETS as u64, 0),
        "from another source"
    );
    assert!(seen.xsk.is_empty());
}

/// SNAT return traffic by port and echo id; header variants (IHL options, fragments, one
/// VLAN tag, truncation) classified as documented.
#[test]
fn snat_range_and_header_variants_are_classified_as_documented() {
    if skip() {
        return;
    }
    let net = 44;
    let mut rig = Rig::new(
        "p",
        net,
        SteerMode::Owned,
        &workload_set(net, wl(net, 0), 26),
    );
    let (node, src) = (a(net), b(net));
    let v4 = |dst, proto, frag, opts: &[u8], l4: &[u8]| {
        eth(ETH_IPV4, None, &ipv4(src, dst, proto, frag, opts, l4))
    };
    let nop4 = [1u8, 1, 1, 1]; // four NOP options: IHL 6
    let redirect = vec![
        v4(node, 17, 0, &[], &udp(53, 61000, b"lo")),
        v4(node, 17, 0, &[], &udp(53, 65535, b"hi")),
        v4(node, 6, 0, &[], &tcp_syn(443, 61001)),
        v4(node, 1, 0, &[], &icmp_echo(0, 61000, 1, b"reply")),
        v4(node, 17, 0x2000, &[], &udp(53, 61002, b"first fragment")),
        v4(node, 17, 0, &nop4, &udp(53, 61003, b"ihl 6")),
        v4(
            wl(net, 7),
            17,
            0x0004,
            &[],
            b"non-first fragment of an owned destination",
        ),
        eth(
            ETH_IPV4,
            Some(100),
            &ipv4(src, wl(net, 8), 17, 0, &[], &udp(1, 2, b"vlan")),
        ),
    ];
    let pass = vec![
        v4(node, 17, 0, &[], &udp(53, 60999, b"below the range")),
        v4(node, 6, 0, &[], &tcp_syn(40000, 22)),
        v4(node, 1, 0, &[], &icmp_echo(0, 60999, 1, b"reply, id below")),
        v4(node, 1, 0, &[], &icmp_echo(8, 61000, 1, b"request")),
        // Offset 4 (32 bytes): no L4 header, even if the bytes look like port 61000.
        v4(
            node,
            17,
            0x0004,
            &[],
            &udp(53, 61000, b"non-first fragment"),
        ),
        v4(node, 17, 0, &nop4, &udp(53, 60999, b"ihl 6 below")),
        v4(wl(net, 200), 17, 0, &[], &udp(1, 2, b"outside the prefix")),
        eth(
            ETH_IPV4,
            Some(100),
            &ipv4(src, node, 17, 0, &[], &udp(1, 9999, b"vlan node")),
        ),
        eth(ETH_IPV4, None, &[0x45, 0, 0, 20, 0, 0]), // truncated IPv4 header
        eth(0x88B5, None, b"local experimental ethertype"),
    ];
    let mut all = redirect.clone();
    all.extend(pass.iter().cloned());
    let seen = rig.exchange(&all);
    assert_eq!(
        seen.stats,
        stats(redirect.len() as u64, pass.len() as u64, 0)
    );
    let mut got = seen.xsk.clone();
    got.sort();
    let mut want = redirect.clone();
    want.sort();
    // veth pads short frames to the 60-byte Ethernet minimum; compare the sent prefix.
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(&g[..w.len()], &w[..], "redirected frame differs");
    }

    // A dry run (BPF_PROG_TEST_RUN) decides the same as the wire did.
    let if_a = rig.a.if_index;
    for (frames, want) in [
        (&redirect, SteerVerdict::Redirect),
        (&pass, SteerVerdict::Pass),
    ] {
        for f in frames.iter() {
            let run = rig.a.steering.dry_run(f, if_a, 0, 100).expect("dry run");
            assert_eq!(run.verdict, want, "dry run of {:?}", parse(f));
        }
    }
    let err = rig
        .a
        .steering
        .dry_run(&redirect[0], 999_999, 0, 1)
        .expect_err("no such interface");
    assert!(
        matches!(
            err,
            XskError::DryRun {
                if_index: 999_999,
                ..
            }
        ),
        "{err}"
    );
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().expect("v6").octets()
}

/// IPv6: destination prefixes, SNAT return traffic to the node's IPv6 address.
#[test]
fn ipv6_owned_prefixes_and_snat_return_traffic() {
    if skip() {
        return;
    }
    let net = 45;
    let prefix = format!("2001:db8:{net:x}::");
    let owned = OwnedTraffic {
        v6_prefixes: vec![(prefix.parse().expect("v6"), 64)],
        node_v6: Some("2001:db8:ffff::1".parse().expect("v6")),
        snat_ports: SNAT,
        ..OwnedTraffic::default()
    };
    let mut rig = Rig::new("v", net, SteerMode::Owned, &owned);
    let (src, node, wl6) = (
        v6("2001:db8:ffff::2"),
        v6("2001:db8:ffff::1"),
        v6(&format!("{prefix}5")),
    );
    let f = |dst, next, l4: &[u8], vlan| eth(ETH_IPV6, vlan, &ipv6(src, dst, next, l4));
    let redirect = vec![
        f(wl6, 17, &udp(1, 2, b"owned"), None),
        f(wl6, 17, &udp(1, 2, b"owned, vlan"), Some(7)),
        f(node, 17, &udp(53, 61000, b"snat"), None),
        f(node, 6, &tcp_syn(443, 65535), None),
        f(node, 58, &icmp_echo(129, 62000, 1, b"echo reply"), None),
    ];
    let pass = [
        f(node, 17, &udp(53, 80, b"below"), None),
        f(node, 58, &icmp_echo(128, 62000, 1, b"echo request"), None),
        f(node, 44, &[17, 0, 0, 0, 0, 0, 0, 1], None), // fragment header: not walked
        f(v6("2001:db8:1::1"), 17, &udp(1, 2, b"not owned"), None),
    ];
    let mut all = redirect.clone();
    all.extend(pass.iter().cloned());
    let seen = rig.exchange(&all);
    assert_eq!(
        seen.stats,
        stats(redirect.len() as u64, pass.len() as u64, 0)
    );
    let mut got: Vec<_> = seen.xsk.iter().map(|g| parse(g)).collect();
    got.sort_by_key(|s| format!("{s:?}"));
    let mut want: Vec<_> = redirect.iter().map(|w| parse(w)).collect();
    want.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(got, want);
}

/// All mode takes everything (ARP included); switching to Owned and detaching hand the
/// traffic back to the kernel; dropping a `Steering` detaches its programs.
#[test]
fn all_mode_takes_everything_and_detach_leaves_no_program() {
    if skip() {
        return;
    }
    let net = 46;
    let mut rig = Rig::new("a", net, SteerMode::All, &OwnedTraffic::default());
    let if_a = rig.a.if_index;
    assert_eq!(
        xdp_program_id(if_a).expect("query"),
        Some(rig.a.steering.program_id())
    );
    let kernel_node = KernelUdp::bind(&format!("{}:9999", dotted(a(net))));
    let mut frames = udp_burst(net, a(net), 9999);
    frames.push(arp_request(b(net), a(net)));
    let seen = rig.exchange(&frames);
    assert_eq!(seen.stats, stats(frames.len() as u64, 0, 0));
    assert_eq!(marked_udp(&seen.xsk, a(net), 9999), PACKETS);
    assert!(
        seen.xsk
            .iter()
            .any(|f| matches!(parse(f), Seen::Arp { op: 1, .. }))
    );
    assert!(kernel_node.recv(1, Duration::from_millis(100)).is_empty());

    // Attaching again changes the mode in place and keeps the XDP mode.
    let again = rig
        .a
        .steering
        .attach(if_a, SteerMode::Owned, BindMode::Auto)
        .expect("mode change");
    assert_eq!(again, rig.a.bind);
    let seen = rig.exchange(&udp_burst(net, a(net), 9999));
    assert_eq!(
        seen.stats,
        stats(0, PACKETS as u64, 0),
        "Owned now, nothing owned"
    );
    assert_eq!(
        kernel_node.recv(PACKETS, Duration::from_secs(2)).len(),
        PACKETS
    );

    rig.a.steering.detach(if_a).expect("detach");
    assert_eq!(
        xdp_program_id(if_a).expect("query"),
        None,
        "program left behind"
    );
    let before = rig.a.steering.stats();
    rig.b.send(&udp_burst(net, a(net), 9999));
    assert_eq!(
        kernel_node.recv(PACKETS, Duration::from_secs(2)).len(),
        PACKETS
    );
    assert_eq!(delta(rig.a.steering.stats(), before), stats(0, 0, 0));
    rig.a.steering.detach(if_a).expect("detach is idempotent");
    assert!(matches!(
        rig.a.steering.register(if_a, 0, &rig.a.port),
        Err(XskError::NotAttached { .. })
    ));

    // Drop detaches.
    let other = Steering::load().expect("load");
    let mode = other
        .attach(if_a, SteerMode::All, BindMode::Skb)
        .expect("attach");
    assert_eq!(mode, BindMode::Skb);
    assert_eq!(
        xdp_program_id(if_a).expect("query"),
        Some(other.program_id())
    );
    drop(other);
    assert_eq!(
        xdp_program_id(if_a).expect("query"),
        None,
        "Drop left a program"
    );
}

/// A program someone else attached (here libxdp's, through a default `Port`) is never
/// replaced; once it is gone, attaching works.
#[test]
fn attach_never_replaces_a_foreign_program() {
    if skip() {
        return;
    }
    let topo = Topo::new("n", &[47]);
    let (ns_a, dev) = (topo.ns_a.clone(), topo.links[0].dev_a.clone());
    std::thread::spawn(move || {
        enter(&ns_a).expect("enter A");
        let if_index = nix::net::if_::if_nametoindex(dev.as_str()).expect("if_index");
        let (umem, mut pool) = Umem::new(test_umem_spec()).expect("umem");
        let port = Port::open(&umem, &dev, 0, &test_port_config(BindMode::Auto), &mut pool)
            .expect("port with libxdp's program");
        let foreign = xdp_program_id(if_index)
            .expect("query")
            .expect("libxdp program");
        let steering = Steering::load().expect("load");
        let err = steering
            .attach(if_index, SteerMode::All, BindMode::Auto)
            .expect_err("must not replace libxdp's program");
        let text = err.to_string();
        assert!(
            matches!(err, XskError::XdpAttach { .. }) && text.contains(&foreign.to_string()),
            "{text}"
        );
        assert_eq!(xdp_program_id(if_index).expect("query"), Some(foreign));
        drop(port);
        assert_eq!(
            xdp_program_id(if_index).expect("query"),
            None,
            "libxdp unloads its own"
        );
        steering
            .attach(if_index, SteerMode::All, BindMode::Auto)
            .expect("free interface");
        assert_eq!(
            xdp_program_id(if_index).expect("query"),
            Some(steering.program_id())
        );
        // The interface disappears (a workload is deleted): detaching still succeeds.
        ip(&["link", "del", &dev]).expect("delete the veth");
        steering
            .detach(if_index)
            .expect("detach after the interface is gone");
    })
    .join()
    .expect("test thread");
    drop(topo);
}

/// One program serves several interfaces: each gets its own mode and its own socket slot.
#[test]
fn one_program_steers_several_interfaces_to_their_own_sockets() {
    if skip() {
        return;
    }
    let (n1, n2) = (48, 49);
    let topo = Topo::new_quiet("m", &[n1, n2]);
    let (ns_b, devs_b) = (
        topo.ns_b.clone(),
        [topo.links[0].dev_b.clone(), topo.links[1].dev_b.clone()],
    );
    let (mut b1, mut b2) = std::thread::spawn(move || {
        enter(&ns_b).expect("enter B");
        let s = Arc::new(Steering::load().expect("load"));
        let b1 = End::open_with(s.clone(), &devs_b[0], SteerMode::All).expect("B1");
        let b2 = End::open_with(s, &devs_b[1], SteerMode::All).expect("B2");
        (b1, b2)
    })
    .join()
    .expect("B setup");
    enter(&topo.ns_a).expect("enter A");
    let steering = Arc::new(Steering::load().expect("load"));
    let mut a1 =
        End::open_with(steering.clone(), &topo.links[0].dev_a, SteerMode::Owned).expect("A1");
    let mut a2 =
        End::open_with(steering.clone(), &topo.links[1].dev_a, SteerMode::All).expect("A2");
    steering
        .set_owned(&workload_set(n1, wl(n1, 0), 26))
        .expect("set_owned");
    let kernel_node1 = KernelUdp::bind(&format!("{}:9999", dotted(a(n1))));

    let before = steering.stats();
    b1.send(&udp_burst(n1, wl(n1, 5), 9999)); // owned, via link 1
    b1.send(&udp_burst(n1, a(n1), 9999)); // the node's, via link 1
    b2.send(&udp_burst(n2, a(n2), 9999)); // everything on link 2 is the fastpath's
    let got1 = a1.recv(PACKETS, Duration::from_secs(5));
    let got2 = a2.recv(PACKETS, Duration::from_secs(5));
    assert_eq!(
        kernel_node1.recv(PACKETS, Duration::from_secs(2)).len(),
        PACKETS
    );
    assert_eq!(
        (got1.len(), marked_udp(&got1, wl(n1, 5), 9999)),
        (PACKETS, PACKETS)
    );
    assert_eq!(
        (got2.len(), marked_udp(&got2, a(n2), 9999)),
        (PACKETS, PACKETS)
    );
    assert_eq!(
        delta(steering.stats(), before),
        stats(2 * PACKETS as u64, PACKETS as u64, 0),
        "counters are shared by the interfaces"
    );

    // Detaching one interface leaves the other steered.
    steering.detach(a2.if_index).expect("detach link 2");
    assert_eq!(xdp_program_id(a2.if_index).expect("query"), None);
    assert_eq!(
        xdp_program_id(a1.if_index).expect("query"),
        Some(steering.program_id())
    );
    b1.send(&udp_burst(n1, wl(n1, 6), 9999));
    let got1 = a1.recv(PACKETS, Duration::from_secs(5));
    assert_eq!(marked_udp(&got1, wl(n1, 6), 9999), PACKETS);
    a1.assert_no_leak();
    a2.assert_no_leak();
    drop((a1, a2, b1, b2));
    drop(topo);
}

/// Environment variable naming the namespace and device for [`crash_child`].
const CRASH_CHILD: &str = "TORTIE_XSK_CRASH_CHILD";

/// A process that attaches the program and dies without cleaning up (abort: no destructors)
/// leaves no program behind: the kernel releases the link with the process.
#[test]
fn a_crashed_process_leaves_no_program_behind() {
    if skip() {
        return;
    }
    let topo = Topo::new("c", &[50]);
    let (ns_a, dev) = (topo.ns_a.clone(), topo.links[0].dev_a.clone());
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args(["--ignored", "--exact", "crash_child", "--nocapture"])
        .env(CRASH_CHILD, format!("{ns_a} {dev}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out)
        .expect("read child stdout");
    assert!(!status.success(), "the child must die by abort: {status}");
    let attached: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("attached program "))
        .and_then(|id| id.trim().parse().ok())
        .unwrap_or_else(|| panic!("child did not attach: {out:?}"));
    assert!(attached > 0);
    std::thread::spawn(move || {
        enter(&ns_a).expect("enter A");
        let if_index = nix::net::if_::if_nametoindex(dev.as_str()).expect("if_index");
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let mut left = xdp_program_id(if_index).expect("query");
        while left.is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            left = xdp_program_id(if_index).expect("query");
        }
        assert_eq!(left, None, "program {attached} outlived its process");
    })
    .join()
    .expect("check thread");
    drop(topo);
}

/// Not a test on its own: the child process of `a_crashed_process_leaves_no_program_behind`
/// (run with `--ignored` and the environment variable set). Attaches, reports, aborts.
#[test]
#[ignore = "child process of a_crashed_process_leaves_no_program_behind"]
fn crash_child() {
    let spec = std::env::var(CRASH_CHILD).expect("run by the parent test only");
    let (ns, dev) = spec.split_once(' ').expect("\"NS DEV\"");
    enter(ns).expect("enter namespace");
    let if_index = nix::net::if_::if_nametoindex(dev).expect("if_index");
    let steering = Steering::load().expect("load");
    steering
        .attach(if_index, SteerMode::All, BindMode::Auto)
        .expect("attach");
    assert_eq!(
        xdp_program_id(if_index).expect("query"),
        Some(steering.program_id())
    );
    println!("attached program {}", steering.program_id());
    std::process::abort();
}

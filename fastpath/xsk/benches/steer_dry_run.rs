//! Per-frame cost of the XDP steering program, measured by the kernel (`BPF_PROG_TEST_RUN`
//! through `Steering::dry_run`) on frames of each kind, with a node-sized owned set
//! (110 workload /32s, 10 DNAT externals, a /26 block, 2 tunnel sources, an IPv6 /112).
//!
//! `iter_custom` reports the kernel's own mean run time per frame (integer nanoseconds), so the
//! syscall cost is not in the figures. A second group times `set_owned` (control path).
//!
//! Needs root (creates a network namespace with a veth pair, attaches the program there,
//! deletes the namespace at the end); as non-root it prints why and exits.

#[path = "../tests/common/frames.rs"]
#[allow(dead_code)]
mod frames;

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use frames::{ETH_IPV4, ETH_IPV6, arp_request, eth, icmp_echo, ipv4, ipv6, udp};
use tortie_xsk::{
    BindMode, OwnedTraffic, Port, PortConfig, SteerMode, SteerVerdict, Steering, Umem, UmemSpec,
};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn ip(args: &[&str]) {
    let ok = Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip {} failed", args.join(" "));
}

/// The namespace, deleted on drop (also when the bench panics).
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn owned_set() -> OwnedTraffic {
    let mut v4: Vec<(Ipv4Addr, u8)> = (0..110u8)
        .map(|i| (Ipv4Addr::new(198, 19, 1, i), 32))
        .collect();
    v4.extend((0..10u8).map(|i| (Ipv4Addr::new(198, 18, 200, i), 32)));
    v4.push((Ipv4Addr::new(198, 19, 2, 0), 26));
    OwnedTraffic {
        v4_prefixes: v4,
        v6_prefixes: vec![("2001:db8:1::".parse().expect("v6"), 112)],
        tunnel_sources: vec![Ipv4Addr::new(198, 18, 1, 12), Ipv4Addr::new(198, 18, 2, 13)],
        node_v4: Some(Ipv4Addr::new(198, 18, 1, 11)),
        node_v6: Some("2001:db8:ffff::11".parse().expect("v6")),
        snat_ports: (61000, 65535),
    }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the steering bench needs root (network namespace, BPF)");
        return;
    }
    let ns = Netns(format!("txsk-bench-{}", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    ip(&[
        "-n", &ns.0, "link", "add", "bv0", "type", "veth", "peer", "name", "bv1",
    ]);
    ip(&["-n", &ns.0, "link", "set", "bv0", "up"]);
    ip(&["-n", &ns.0, "link", "set", "bv1", "up"]);
    let f = File::open(format!("/var/run/netns/{}", ns.0)).expect("netns file");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");

    let steering = Steering::load().expect("load");
    let owned_if = nix::net::if_::if_nametoindex("bv0").expect("bv0");
    let all_if = nix::net::if_::if_nametoindex("bv1").expect("bv1");
    let bind = steering
        .attach(owned_if, SteerMode::Owned, BindMode::Auto)
        .expect("attach bv0");
    steering
        .attach(all_if, SteerMode::All, BindMode::Auto)
        .expect("attach bv1");
    let (umem, mut pool) = Umem::new(UmemSpec {
        frames: 256,
        frame_size: 4096,
        ring_size: 128,
    })
    .expect("umem");
    let cfg = PortConfig {
        mode: bind,
        external_program: true,
        fill_target: 64,
        ring_size: 128,
        ..PortConfig::default()
    };
    let port = Port::open(&umem, "bv0", 0, &cfg, &mut pool).expect("port");
    steering.register(owned_if, 0, &port).expect("register");
    steering.set_owned(&owned_set()).expect("set_owned");

    let (peer, node) = ([198, 18, 1, 12], [198, 18, 1, 11]);
    let v6 = |s: &str| s.parse::<Ipv6Addr>().expect("v6").octets();
    let cases: Vec<(&str, u32, Vec<u8>, SteerVerdict)> = vec![
        (
            "arp_pass",
            owned_if,
            arp_request(peer, node),
            SteerVerdict::Pass,
        ),
        (
            "v4_node_ssh_pass",
            owned_if,
            eth(
                ETH_IPV4,
                None,
                &ipv4(peer, node, 6, 0, &[], &udp(50000, 22, &[0; 32])),
            ),
            SteerVerdict::Pass,
        ),
        (
            "v4_workload_redirect",
            owned_if,
            eth(
                ETH_IPV4,
                None,
                &ipv4(peer, [198, 19, 1, 77], 17, 0, &[], &udp(1, 2, &[0; 32])),
            ),
            SteerVerdict::Redirect,
        ),
        (
            "v4_ipip_redirect",
            owned_if,
            eth(
                ETH_IPV4,
                None,
                &ipv4(
                    peer,
                    node,
                    4,
                    0,
                    &[],
                    &ipv4(
                        [198, 19, 3, 1],
                        [198, 19, 1, 5],
                        17,
                        0,
                        &[],
                        &udp(1, 2, &[0; 32]),
                    ),
                ),
            ),
            SteerVerdict::Redirect,
        ),
        (
            "v4_snat_return_redirect",
            owned_if,
            eth(
                ETH_IPV4,
                None,
                &ipv4([198, 18, 3, 2], node, 17, 0, &[], &udp(53, 61234, &[0; 32])),
            ),
            SteerVerdict::Redirect,
        ),
        (
            "v4_echo_reply_redirect",
            owned_if,
            eth(
                ETH_IPV4,
                None,
                &ipv4(
                    [198, 18, 3, 2],
                    node,
                    1,
                    0,
                    &[],
                    &icmp_echo(0, 61234, 1, &[0; 32]),
                ),
            ),
            SteerVerdict::Redirect,
        ),
        (
            "v6_workload_redirect",
            owned_if,
            eth(
                ETH_IPV6,
                None,
                &ipv6(
                    v6("2001:db8:ffff::12"),
                    v6("2001:db8:1::5"),
                    17,
                    &udp(1, 2, &[0; 32]),
                ),
            ),
            SteerVerdict::Redirect,
        ),
        (
            "all_mode_no_socket_pass",
            all_if,
            eth(
                ETH_IPV4,
                None,
                &ipv4(peer, node, 17, 0, &[], &udp(1, 2, &[0; 32])),
            ),
            SteerVerdict::Pass,
        ),
    ];

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    let mut group = c.benchmark_group("steer_dry_run");
    for (name, if_index, frame, want) in &cases {
        let first = steering.dry_run(frame, *if_index, 0, 1).expect("dry run");
        assert_eq!(first.verdict, *want, "{name}: wrong verdict");
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut left = iters;
                let mut ns = 0u64;
                while left > 0 {
                    let n = left.min(1 << 20) as u32;
                    let run = steering.dry_run(frame, *if_index, 0, n).expect("dry run");
                    ns += u64::from(run.ns_per_run) * u64::from(n);
                    left -= u64::from(n);
                }
                Duration::from_nanos(ns)
            });
        });
    }
    group.finish();

    // Control path: replacing 1000 workload /32s by 1000 others (1000 inserts, then 1000
    // deletes), and re-applying an unchanged set (a no-op diff).
    let set = |base: u8| OwnedTraffic {
        v4_prefixes: (0..1000u16)
            .map(|i| {
                (
                    Ipv4Addr::new(198, 19, base + (i / 250) as u8, (i % 250) as u8),
                    32,
                )
            })
            .collect(),
        ..owned_set()
    };
    let (even, odd) = (set(16), set(32));
    let mut group = c.benchmark_group("steer_set_owned");
    group.sample_size(10);
    let mut flip = false;
    group.bench_function("replace_1000_v4_prefixes", |b| {
        b.iter(|| {
            flip = !flip;
            steering
                .set_owned(if flip { &odd } else { &even })
                .expect("set_owned");
        });
    });
    group.bench_function("unchanged_1000_v4_prefixes", |b| {
        b.iter(|| steering.set_owned(&even).expect("set_owned"));
    });
    group.finish();
    c.final_summary();
    drop(port);
    drop(steering);
}

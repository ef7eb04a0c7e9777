//! Bad input at the node (issue "Bad input"): a flood of malformed packets from a workload, a
//! workload whose interface vanishes mid-stream, and a full conntrack table. Each is counted,
//! the log stays short (drops are counted, not logged per packet), and the node keeps
//! forwarding everything else. (Corrupt and undecodable ring records: `node_netns.rs`;
//! truncated records: the ring's own tests.) Needs root; as non-root it says so and passes.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, sendto, socket,
};

const WAIT: Duration = Duration::from_secs(5);
const FLOOD: usize = 20_000;
/// Drop reasons a malformed IPv4 packet can meet.
const MALFORMED: &[&str] = &[
    "ipv4-truncated",
    "ipv4-bad-header",
    "ipv4-bad-length",
    "ipv4-bad-checksum",
    "tcp-malformed",
    "udp-malformed",
    "icmp-malformed",
];

/// Sends `count` malformed IPv4 packets from `src` to `dst` through a raw socket (the kernel
/// fills in the length and checksum; everything else is as built here): TCP, UDP and ICMP
/// headers cut short, and a version field that is not 4. Returns how many the kernel sent.
fn send_garbage(src: Ipv4Addr, dst: Ipv4Addr, count: usize) -> usize {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::empty(),
        SockProtocol::Raw,
    )
    .expect("raw socket");
    let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
    let mut seed = 0x9e37_79b9_u32;
    let mut sent = 0;
    for i in 0..count {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let (version, proto, len) = match i % 4 {
            0 => (4, 6u8, (seed % 20) as usize),
            1 => (4, 17, (seed % 8) as usize),
            2 => (4, 1, (seed % 4) as usize),
            _ => (6, 17, 8 + (seed % 32) as usize),
        };
        let mut p = vec![0u8; 20 + len];
        p[0] = (version << 4) | 5;
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&src.octets());
        p[16..20].copy_from_slice(&dst.octets());
        for (k, b) in p[20..].iter_mut().enumerate() {
            *b = (seed >> (k % 4 * 8)) as u8;
        }
        if sendto(fd.as_raw_fd(), &p, &to, MsgFlags::empty()).is_ok() {
            sent += 1;
        }
    }
    sent
}

fn drops(daemon: &Daemon, reasons: &[&str]) -> u64 {
    reasons
        .iter()
        .map(|r| daemon.metric("tortie_fastpath_drops_total", &[&format!("reason=\"{r}\"")]))
        .sum()
}

#[test]
fn bad_input_is_counted_and_the_node_keeps_forwarding() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return;
    }
    let topo = Topo::new("bad", true);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let mut control = Control::new(&topo.ring_path(), topo.tables());
    control.snapshot();
    let daemon = Daemon::start(
        &topo,
        19089,
        &["--workers", "1", "--conntrack-capacity", "64"],
    );
    assert!(
        wait_for(WAIT, || daemon
            .get("/readyz")
            .is_some_and(|(code, _)| code == 200)
            && topo.xdp_attached(&b.host_dev)),
        "not ready; log:\n{}",
        daemon.log()
    );
    assert_eq!(udp_probe(&a.ns, a.addr, &b.ns, b.addr, 5000, 10, WAIT), 10);

    // 1. A flood of malformed packets from a workload: counted by reason, not logged one by
    // one, and traffic between the workloads still flows.
    let before = drops(&daemon, MALFORMED);
    let (src, dst) = (a.addr, b.addr);
    let sent = in_ns(&a.ns, move || send_garbage(src, dst, FLOOD));
    assert!(sent >= FLOOD / 2, "the kernel sent only {sent} packets");
    assert!(
        wait_for(WAIT, || drops(&daemon, MALFORMED) - before
            >= sent as u64 / 2),
        "malformed drops {} of {sent} sent; metrics:\n{}",
        drops(&daemon, MALFORMED) - before,
        daemon.get("/metrics").map(|m| m.1).unwrap_or_default()
    );
    assert_eq!(
        udp_probe(&a.ns, a.addr, &b.ns, b.addr, 5001, 10, WAIT),
        10,
        "forwarding after the flood"
    );
    let lines = daemon.log().lines().count();
    assert!(lines < 100, "{lines} log lines after the flood");

    // 2. A workload whose interface vanishes while a stream runs to it: the node survives,
    // counts what it could not deliver, and serves the other workload.
    let stream = spawn_in_ns(&a.ns, move || {
        let s = UdpSocket::bind((src, 0)).unwrap();
        let started = Instant::now();
        let mut n = 0;
        while started.elapsed() < Duration::from_millis(800) {
            let _ = s.send_to(b"mid-stream", (dst, 5002));
            n += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        n
    });
    std::thread::sleep(Duration::from_millis(300));
    ip(&["-n", &topo.node, "link", "del", &b.host_dev]).unwrap();
    assert!(stream.join().unwrap() > 100);
    assert!(
        daemon.get("/livez").is_some_and(|(code, _)| code == 200),
        "alive after the workload vanished; log:\n{}",
        daemon.log()
    );
    assert!(
        wait_for(WAIT, || daemon.log().contains("interface vanished")
            && !topo.xdp_attached(&b.host_dev)),
        "the vanished interface is detached and logged; log:\n{}",
        daemon.log()
    );
    let vanished = daemon.log().matches("vanished").count();
    let got = udp_probe(&a.ns, a.addr, &topo.node, NODE_ADDR, 7000, 5, WAIT);
    assert_eq!(got, 5, "workload -> node after the other workload vanished");
    // Frames still routed to it (the tables name it) are dropped and counted.
    let before = drops(&daemon, &["tx-no-port"]);
    in_ns(&a.ns, move || {
        let s = UdpSocket::bind((src, 0)).unwrap();
        for _ in 0..5 {
            let _ = s.send_to(b"to a vanished workload", (dst, 5003));
        }
    });
    assert!(
        wait_for(WAIT, || drops(&daemon, &["tx-no-port"]) >= before + 5),
        "frames to the vanished interface counted"
    );
    assert_eq!(
        daemon.log().matches("vanished").count(),
        vanished,
        "logged once"
    );
    let got = udp_probe(&a.ns, a.addr, &topo.router, ROUTER_ADDR, 5100, 5, WAIT);
    assert_eq!(
        got, 5,
        "workload -> router after the other workload vanished"
    );

    // 3. A full conntrack table (64 flows): new flows are dropped and counted, an
    // established one keeps flowing.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = spawn_in_ns(&topo.router, move || {
        let s = UdpSocket::bind((ROUTER_ADDR, 5300)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 64];
        while Instant::now() < deadline {
            if let Ok(n) = s.recv(&mut buf) {
                if &buf[..n] == b"established" {
                    got += 1;
                }
                if &buf[..n] == b"done" {
                    break;
                }
            }
        }
        got
    });
    ready_rx.recv_timeout(WAIT).unwrap();
    let sent = in_ns(&a.ns, move || {
        let established = UdpSocket::bind((src, 45000)).unwrap();
        let _ = established.send_to(b"established", (ROUTER_ADDR, 5300));
        std::thread::sleep(Duration::from_millis(50));
        for port in 40000..40200u16 {
            if let Ok(s) = UdpSocket::bind((src, port)) {
                let _ = s.send_to(b"new flow", (ROUTER_ADDR, 5300));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..10 {
            let _ = established.send_to(b"established", (ROUTER_ADDR, 5300));
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        let _ = established.send_to(b"done", (ROUTER_ADDR, 5300));
        11
    });
    let got = server.join().unwrap();
    assert_eq!(
        got, sent,
        "the established flow kept flowing through a full table"
    );
    assert!(
        wait_for(WAIT, || drops(&daemon, &["conntrack-full"]) >= 100),
        "conntrack-full drops {}; metrics:\n{}",
        drops(&daemon, &["conntrack-full"]),
        daemon.get("/metrics").map(|m| m.1).unwrap_or_default()
    );
    let lines = daemon.log().lines().count();
    assert!(lines < 150, "{lines} log lines; log:\n{}", daemon.log());
    eprintln!("log:\n{}", daemon.log());
}

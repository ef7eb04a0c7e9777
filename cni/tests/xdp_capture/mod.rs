//! Capturing what a namespace's kernel sends, through an AF_XDP socket, and classifying the
//! L4 checksum of each TCP/UDP segment of the test flows.
#![allow(dead_code)]

pub mod topology;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::common::Netns;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use tortie_xsk::{BindMode, DescBatch, Port, PortConfig, Umem, UmemSpec};

pub const WORKLOAD_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 1);
pub const PEER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 2);
pub const WORKLOAD_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);
pub const PEER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 2);
pub const UDP_PORT: u16 = 7777;
pub const TCP_PORT: u16 = 7778;
/// Every flow the workload sends: (transport, network).
pub const FLOWS: [(&str, &str); 4] = [
    ("udp", "ipv4"),
    ("tcp", "ipv4"),
    ("udp", "ipv6"),
    ("tcp", "ipv6"),
];

/// What the checksum field of a received segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// The full RFC 793 / RFC 768 checksum.
    Complete,
    /// Only the folded pseudo-header sum: the kernel left the rest to checksum offload.
    Partial,
    /// Anything else.
    Wrong { found: u16, expected: u16 },
}

/// One received TCP or UDP segment of the test's flows.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub transport: &'static str,
    pub network: &'static str,
    pub checksum: Checksum,
}

/// RFC 1071 sum of 16-bit words, folded (not complemented).
fn fold(words: impl Iterator<Item = u16>) -> u16 {
    let mut sum: u32 = words.map(u32::from).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn words(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
}

/// The folded pseudo-header sum (RFC 793 section 3.1, RFC 8200 section 8.1): what a
/// CHECKSUM_PARTIAL skb carries in the checksum field.
fn pseudo_sum(src: &[u8], dst: &[u8], protocol: u8, len: usize) -> u16 {
    let len = u32::try_from(len).expect("segment length");
    let tail = [
        u16::from(protocol),
        (len >> 16) as u16,
        (len & 0xffff) as u16,
    ];
    fold(words(src).chain(words(dst)).chain(tail))
}

fn classify_sum(found: u16, expected: u16, pseudo: u16) -> Checksum {
    if found == expected {
        Checksum::Complete
    } else if found == pseudo {
        Checksum::Partial
    } else {
        Checksum::Wrong { found, expected }
    }
}

/// The test flow a frame belongs to and what its checksum holds; `None` for other frames
/// (neighbour discovery, MLD, ...).
fn classify(frame: &[u8]) -> Option<Seen> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let (src, dst, network): (Vec<u8>, Vec<u8>, &'static str) = match packet.net? {
        NetSlice::Ipv4(ip) => (
            ip.header().source().to_vec(),
            ip.header().destination().to_vec(),
            "ipv4",
        ),
        NetSlice::Ipv6(ip) => (
            ip.header().source().to_vec(),
            ip.header().destination().to_vec(),
            "ipv6",
        ),
        _ => return None,
    };
    match packet.transport? {
        TransportSlice::Udp(udp) if udp.destination_port() == UDP_PORT => {
            let header = udp.to_header();
            let expected = match network {
                "ipv4" => header.calc_checksum_ipv4_raw(
                    src.clone().try_into().ok()?,
                    dst.clone().try_into().ok()?,
                    udp.payload(),
                ),
                _ => header.calc_checksum_ipv6_raw(
                    src.clone().try_into().ok()?,
                    dst.clone().try_into().ok()?,
                    udp.payload(),
                ),
            }
            .ok()?;
            let pseudo = pseudo_sum(&src, &dst, 17, usize::from(header.length));
            Some(Seen {
                transport: "udp",
                network,
                checksum: classify_sum(udp.checksum(), expected, pseudo),
            })
        }
        TransportSlice::Tcp(tcp) if tcp.destination_port() == TCP_PORT => {
            let expected = match network {
                "ipv4" => tcp
                    .calc_checksum_ipv4(src.clone().try_into().ok()?, dst.clone().try_into().ok()?),
                _ => tcp
                    .calc_checksum_ipv6(src.clone().try_into().ok()?, dst.clone().try_into().ok()?),
            }
            .ok()?;
            let pseudo = pseudo_sum(&src, &dst, 6, tcp.slice().len());
            Some(Seen {
                transport: "tcp",
                network,
                checksum: classify_sum(tcp.checksum(), expected, pseudo),
            })
        }
        _ => None,
    }
}

/// Enters the namespace at `path` on the calling thread.
pub fn enter(path: &str) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns {path}: {e}"))
}

/// Opens an AF_XDP socket in `mode` on `dev` inside the namespace at `ns`, on a thread of its
/// own, and classifies what arrives until `stop` is set (or 20 s pass). Returns once the socket
/// is bound (its XDP program attached); the handle yields the bound mode and what was seen.
pub fn capture(
    ns: String,
    dev: String,
    mode: BindMode,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Result<(BindMode, Vec<Seen>), String>> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let handle = thread::spawn(move || {
        let setup = (|| {
            enter(&ns)?;
            let spec = UmemSpec {
                frames: 512,
                frame_size: 4096,
                ring_size: 256,
            };
            let config = PortConfig {
                mode,
                ring_size: 256,
                batch: 64,
                fill_target: 128,
                ..PortConfig::default()
            };
            let (umem, mut pool) = Umem::new(spec).map_err(|e| format!("UMEM: {e}"))?;
            let port = Port::open(&umem, &dev, 0, &config, &mut pool)
                .map_err(|e| format!("AF_XDP socket on {dev}: {e}"))?;
            Ok::<_, String>((umem, pool, port))
        })();
        let (umem, mut pool, mut port) = match setup {
            Ok(parts) => parts,
            Err(e) => {
                let _ = ready_tx.send(Err(e.clone()));
                return Err(e);
            }
        };
        let _ = ready_tx.send(Ok(()));
        let mut batch = DescBatch::with_capacity(64);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            let n = port
                .rx_batch(&mut batch, &mut pool)
                .map_err(|e| e.to_string())?;
            seen.extend(batch.iter().filter_map(|d| classify(umem.bytes(d))));
            batch.free_all(&mut pool);
            if n == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        Ok((port.mode(), seen))
    });
    match ready_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => handle,
        Ok(Err(e)) => panic!("capture setup failed: {e}"),
        Err(e) => panic!("capture not ready within 30 s: {e}"),
    }
}

/// From inside the workload: one UDP datagram and one TCP connection attempt (its SYN) per
/// family, towards peers that do not exist (the AF_XDP socket takes every frame).
pub fn send_from_workload(ns: &str) {
    let ns = ns.to_string();
    thread::spawn(move || -> Result<(), String> {
        enter(&ns)?;
        let payload = vec![0x5a; 1000];
        for peer in [IpAddr::V4(PEER_V4), IpAddr::V6(PEER_V6)] {
            let local: SocketAddr = match peer {
                IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let udp = UdpSocket::bind(local).map_err(|e| format!("bind: {e}"))?;
            udp.send_to(&payload, (peer, UDP_PORT))
                .map_err(|e| format!("send_to {peer}: {e}"))?;
            // Nobody answers: the attempt times out after its SYN went out.
            let _ =
                TcpStream::connect_timeout(&(peer, TCP_PORT).into(), Duration::from_millis(300));
        }
        Ok(())
    })
    .join()
    .expect("sender panicked")
    .expect("sender failed");
}

/// Static neighbours for both gateways inside the workload: the AF_XDP socket takes ARP and
/// neighbour solicitations, so nothing would answer them.
pub fn workload_neighbours(workload: &Netns) {
    for args in [
        &[
            "ip",
            "neigh",
            "replace",
            "169.254.1.1",
            "lladdr",
            "ee:ee:ee:ee:ee:ee",
            "dev",
            "eth0",
        ][..],
        &[
            "ip",
            "-6",
            "neigh",
            "replace",
            "fe80::ecee:eeff:feee:eeee",
            "lladdr",
            "ee:ee:ee:ee:ee:ee",
            "dev",
            "eth0",
        ],
    ] {
        let out = workload.exec(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Captures on `dev` in namespace `node` in `mode` while the `sender` namespace sends every
/// flow; `while_attached` runs once the XDP program is attached, before anything is sent.
/// Requires a segment of every flow to arrive and returns what was seen.
pub fn run_flows(
    node: &Netns,
    dev: &str,
    sender: &Netns,
    mode: BindMode,
    while_attached: impl FnOnce(),
) -> Vec<Seen> {
    let stop = Arc::new(AtomicBool::new(false));
    let capturing = capture(node.path(), dev.to_string(), mode, stop.clone());
    while_attached();
    send_from_workload(&sender.path());
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let (bound, seen) = capturing
        .join()
        .expect("capture panicked")
        .unwrap_or_else(|e| panic!("capture failed: {e}"));
    eprintln!("AF_XDP socket bound in {bound:?} (asked {mode:?}); seen: {seen:?}");
    assert!(
        mode == BindMode::Auto || bound == mode,
        "asked for {mode:?}, bound {bound:?}"
    );
    for (transport, network) in FLOWS {
        assert!(
            seen.iter()
                .any(|s| s.transport == transport && s.network == network),
            "no {transport}/{network} segment reached the AF_XDP socket: {seen:?}"
        );
    }
    seen
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

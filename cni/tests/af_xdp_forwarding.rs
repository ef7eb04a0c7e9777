//! What a receiving workload makes of traffic a userspace forwarder moves unchanged (but for
//! the destination MAC) between two AF_XDP sockets, as the fastpath does between two local
//! workloads. With veths left at the kernel's default offloads, the partial checksums are
//! dropped by the receiving kernel (its UDP checksum error counters rise, TCP never connects);
//! with the plugin's veths, UDP datagrams are delivered and a TCP bulk transfer completes, in
//! frames no larger than the MTU.
//!
//! Needs root (namespaces, XDP). As non-root the tests print why and return. Addresses are from
//! 198.18.0.0/15 and 2001:db8::/32; namespaces (and with them the veths) go away on drop.

mod common;
mod xdp_capture;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Netns, is_root};
use tortie_xsk::{BindMode, DescBatch, Port, PortConfig, Umem, UmemSpec};
use xdp_capture::topology::*;
use xdp_capture::*;

/// Datagrams sent per address family.
const DATAGRAMS: usize = 8;
/// Bytes of the TCP bulk transfer per address family.
const BULK: usize = 1 << 20;
const MTU: usize = 1500;

/// What the forwarder did.
#[derive(Debug, Default)]
struct Forwarded {
    frames: usize,
    largest: usize,
}

/// Two AF_XDP sockets on one UMEM inside `node`, on the host sides `a` and `b`; every frame
/// received on one is sent on the other with its destination MAC set to the workload behind
/// it (`mac_b` towards `b`, `mac_a` towards `a`), nothing else touched, until `stop` is set
/// (or 30 s pass). Returns once both sockets are bound.
fn forwarder(
    node: &Netns,
    (a, mac_a): (&str, [u8; 6]),
    (b, mac_b): (&str, [u8; 6]),
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Result<Forwarded, String>> {
    let (ns, a, b) = (node.path(), a.to_string(), b.to_string());
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let handle = thread::spawn(move || {
        let setup = (|| {
            enter(&ns)?;
            let spec = UmemSpec {
                frames: 2048,
                frame_size: 4096,
                ring_size: 512,
            };
            let config = PortConfig {
                mode: BindMode::DriverCopy,
                ring_size: 512,
                batch: 64,
                fill_target: 512,
                ..PortConfig::default()
            };
            let (umem, mut pool) = Umem::new(spec).map_err(|e| format!("UMEM: {e}"))?;
            let mut ports = Vec::new();
            for dev in [&a, &b] {
                ports.push(
                    Port::open(&umem, dev, 0, &config, &mut pool)
                        .map_err(|e| format!("AF_XDP socket on {dev}: {e}"))?,
                );
            }
            Ok::<_, String>((umem, pool, ports))
        })();
        let (umem, mut pool, mut ports) = match setup {
            Ok(parts) => parts,
            Err(e) => {
                let _ = ready_tx.send(Err(e.clone()));
                return Err(e);
            }
        };
        let _ = ready_tx.send(Ok(()));
        let mut received = DescBatch::with_capacity(64);
        let mut outgoing = DescBatch::with_capacity(64);
        let mut done = Forwarded::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            let mut idle = true;
            for (from, to, mac) in [(0, 1, mac_b), (1, 0, mac_a)] {
                let n = ports[from]
                    .rx_batch(&mut received, &mut pool)
                    .map_err(|e| e.to_string())?;
                idle &= n == 0;
                while let Some(mut desc) = received.pop() {
                    done.largest = done.largest.max(desc.len());
                    umem.bytes_mut(&mut desc)[..6].copy_from_slice(&mac);
                    if let Err(desc) = outgoing.push(desc) {
                        pool.free(desc);
                    }
                }
                done.frames += outgoing.len();
                while !outgoing.is_empty() && Instant::now() < deadline {
                    ports[to]
                        .tx_batch(&mut outgoing)
                        .map_err(|e| e.to_string())?;
                    ports[to].reap_completions(&mut pool);
                }
                ports[to].reap_completions(&mut pool);
            }
            if idle {
                for port in &mut ports {
                    port.kick_tx().map_err(|e| e.to_string())?;
                }
                thread::sleep(Duration::from_micros(200));
            }
        }
        Ok(done)
    });
    match ready_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => handle,
        Ok(Err(e)) => panic!("forwarder setup failed: {e}"),
        Err(e) => panic!("forwarder not ready within 30 s: {e}"),
    }
}

/// Runs `work` on a thread inside the namespace at `path`.
fn in_ns<T: Send + 'static>(
    path: String,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> thread::JoinHandle<Result<T, String>> {
    thread::spawn(move || {
        enter(&path)?;
        work()
    })
}

/// UDP sockets on the peer's addresses inside `peer`, counting datagrams until `stop`.
fn udp_listener(peer: &Netns, stop: Arc<AtomicBool>) -> thread::JoinHandle<Result<usize, String>> {
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let handle = in_ns(peer.path(), move || {
        let sockets = [IpAddr::V4(PEER_V4), IpAddr::V6(PEER_V6)]
            .into_iter()
            .map(|ip| {
                let s = UdpSocket::bind(SocketAddr::new(ip, UDP_PORT))
                    .map_err(|e| format!("bind {ip}: {e}"))?;
                s.set_read_timeout(Some(Duration::from_millis(20)))
                    .map_err(|e| e.to_string())?;
                Ok(s)
            })
            .collect::<Result<Vec<_>, String>>()?;
        let _ = ready_tx.send(());
        let (mut got, mut buf) = (0, [0u8; 2048]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            for s in &sockets {
                got += usize::from(s.recv(&mut buf).is_ok());
            }
        }
        Ok(got)
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(10));
    handle
}

/// [`DATAGRAMS`] UDP datagrams per family from inside `sender` to the peer addresses.
fn send_datagrams(sender: &Netns) {
    in_ns(sender.path(), || {
        let v4 = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        let v6 = UdpSocket::bind("[::]:0").map_err(|e| e.to_string())?;
        for i in 0..DATAGRAMS {
            let payload = vec![i as u8; 600];
            v4.send_to(&payload, (PEER_V4, UDP_PORT))
                .map_err(|e| e.to_string())?;
            v6.send_to(&payload, (PEER_V6, UDP_PORT))
                .map_err(|e| e.to_string())?;
            thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    })
    .join()
    .expect("sender panicked")
    .expect("sender failed");
}

/// One TCP connection per family from `sender` to `peer`, each carrying [`BULK`] bytes;
/// returns the bytes the peer received per family, or the connect error.
fn tcp_bulk(sender: &Netns, peer: &Netns) -> Vec<Result<usize, String>> {
    [IpAddr::V4(PEER_V4), IpAddr::V6(PEER_V6)]
        .into_iter()
        .map(|ip| {
            let addr = SocketAddr::new(ip, TCP_PORT);
            let (ready_tx, ready_rx) = mpsc::channel::<()>();
            let server = in_ns(peer.path(), move || {
                let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
                listener.set_nonblocking(true).map_err(|e| e.to_string())?;
                let _ = ready_tx.send(());
                // A little longer than the client's connect timeout.
                let deadline = Instant::now() + Duration::from_millis(1500);
                let mut stream = loop {
                    match listener.accept() {
                        Ok((s, _)) => break s,
                        Err(_) if Instant::now() < deadline => {
                            thread::sleep(Duration::from_millis(5));
                        }
                        Err(e) => return Err(format!("accept: {e}")),
                    }
                };
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .map_err(|e| e.to_string())?;
                let mut data = Vec::new();
                stream.read_to_end(&mut data).map_err(|e| e.to_string())?;
                let intact = data.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8);
                intact
                    .then_some(data.len())
                    .ok_or_else(|| "data corrupted".to_string())
            });
            let _ = ready_rx.recv_timeout(Duration::from_secs(10));
            let client = in_ns(sender.path(), move || {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                s.set_write_timeout(Some(Duration::from_secs(10)))
                    .map_err(|e| e.to_string())?;
                let data: Vec<u8> = (0..BULK).map(|i| (i % 251) as u8).collect();
                s.write_all(&data).map_err(|e| format!("write: {e}"))?;
                Ok(())
            });
            let sent = client.join().expect("client panicked");
            let received = server.join().expect("server panicked");
            sent.and(received)
        })
        .collect()
}

/// The UDP checksum error counters (`/proc/net/snmp` `Udp: InCsumErrors`, `/proc/net/snmp6`
/// `Udp6InCsumErrors`) inside `ns`.
fn udp_checksum_errors(ns: &Netns) -> (u64, u64) {
    let snmp = ns.exec_stdout(&["cat", "/proc/net/snmp"]);
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp: ")).collect();
    let v4 = match udp.as_slice() {
        [names, values] => names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == "InCsumErrors")
            .and_then(|(_, v)| v.parse().ok())
            .expect("Udp InCsumErrors"),
        _ => panic!("no Udp lines in /proc/net/snmp"),
    };
    let snmp6 = ns.exec_stdout(&["cat", "/proc/net/snmp6"]);
    let v6 = snmp6
        .lines()
        .find_map(|l| l.strip_prefix("Udp6InCsumErrors"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Udp6InCsumErrors");
    (v4, v6)
}

type Veth = fn(&Netns, &Netns, &Workload) -> &'static str;

/// What came through: UDP datagrams delivered, the TCP transfers, the peer's UDP checksum
/// errors (IPv4, IPv6), and the forwarder's work.
struct Outcome {
    delivered: usize,
    tcp: Vec<Result<usize, String>>,
    errors: (u64, u64),
    forwarded: Forwarded,
}

/// Both workloads' veths made by `veth`, joined by the forwarder; UDP then TCP from the
/// sender to the peer.
fn forward_case(veth: Veth) -> Outcome {
    let (node, sender, peer) = (Netns::new("fwn"), Netns::new("fws"), Netns::new("fwp"));
    let a = veth(&node, &sender, &SENDER);
    let b = veth(&node, &peer, &PEER);
    workload_neighbours(&sender);
    workload_neighbours(&peer);
    let stop = Arc::new(AtomicBool::new(false));
    let forwarding = forwarder(
        &node,
        (a, eth0_mac(&sender)),
        (b, eth0_mac(&peer)),
        stop.clone(),
    );
    let udp_stop = Arc::new(AtomicBool::new(false));
    let listening = udp_listener(&peer, udp_stop.clone());
    send_datagrams(&sender);
    thread::sleep(Duration::from_millis(200));
    udp_stop.store(true, Ordering::SeqCst);
    let delivered = listening
        .join()
        .expect("listener panicked")
        .expect("listener");
    let tcp = tcp_bulk(&sender, &peer);
    stop.store(true, Ordering::SeqCst);
    let forwarded = forwarding
        .join()
        .expect("forwarder panicked")
        .expect("forwarder");
    let outcome = Outcome {
        delivered,
        tcp,
        errors: udp_checksum_errors(&peer),
        forwarded,
    };
    eprintln!(
        "UDP delivered {} of {}, checksum errors {:?}; TCP {:?}; forwarded {:?}",
        outcome.delivered,
        2 * DATAGRAMS,
        outcome.errors,
        outcome.tcp,
        outcome.forwarded
    );
    outcome
}

#[test]
fn partial_checksums_forwarded_through_af_xdp_are_dropped_by_the_receiver() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces and attach XDP");
        return;
    }
    let out = forward_case(plain_veth);
    assert!(out.forwarded.frames >= 2 * DATAGRAMS, "{:?}", out.forwarded);
    assert_eq!(out.delivered, 0, "kernel {}", kernel_release());
    assert_eq!(out.errors, (DATAGRAMS as u64, DATAGRAMS as u64));
    for transfer in &out.tcp {
        assert!(
            matches!(transfer, Err(e) if e.starts_with("connect")),
            "{transfer:?}"
        );
    }
}

#[test]
fn plugin_veth_traffic_forwarded_through_af_xdp_is_delivered() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces and attach XDP");
        return;
    }
    let out = forward_case(plugin_veth);
    assert_eq!(out.delivered, 2 * DATAGRAMS);
    assert_eq!(out.errors, (0, 0));
    for transfer in &out.tcp {
        assert_eq!(transfer, &Ok(BULK));
    }
    assert!(
        out.forwarded.largest <= 14 + MTU,
        "a {}-byte frame reached AF_XDP (segmentation offload?)",
        out.forwarded.largest
    );
}

//! One UMEM shared by two ports (as a worker shares it between the uplink and workload veths):
//! frames received on one port are rewritten in place and transmitted on the other without a
//! copy, and the completion ring recycles them into the shared pool. Also checks frame byte
//! access (write, prepend) on a real UMEM. Needs root; as non-root the tests print why and
//! return.

mod common;

use std::net::UdpSocket;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tortie_xsk::{BindMode, DescBatch, Port, Umem, UmemSpec, XskError};

/// RFC 791 header checksum over `hdr` (checksum field already zeroed).
fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = hdr
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Rewrite a received B->A datagram into an A->B datagram on subnet `net`, port `dport`:
/// swap MACs, new addresses, fresh IPv4 checksum, UDP checksum 0 (RFC 768, IPv4).
fn rewrite(frame: &mut [u8], net: u8, dport: u16) {
    frame[6..12].copy_from_slice(&MAC_A);
    frame[0..6].copy_from_slice(&MAC_B);
    frame[26..30].copy_from_slice(&[198, 18, net, 1]);
    frame[30..34].copy_from_slice(&[198, 18, net, 2]);
    frame[24..26].copy_from_slice(&[0, 0]);
    let csum = ipv4_checksum(&frame[14..34]);
    frame[24..26].copy_from_slice(&csum.to_be_bytes());
    frame[36..38].copy_from_slice(&dport.to_be_bytes());
    frame[40..42].copy_from_slice(&[0, 0]);
}

#[test]
fn frames_forwarded_between_two_ports_on_one_umem() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces and attach XDP");
        return;
    }
    let topo = Topo::new("f", &[5, 6]);
    let (in_link, out_link) = (&topo.links[0], &topo.links[1]);

    // Listener in B on the second link.
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (ns_b, bind_addr) = (topo.ns_b.clone(), format!("{}:9996", out_link.addr_b()));
    let listener = thread::spawn(move || -> Result<usize, String> {
        let setup = (|| {
            enter(&ns_b)?;
            let s = UdpSocket::bind(&bind_addr).map_err(|e| format!("bind {bind_addr}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(s)
        })();
        let sock = match setup {
            Ok(s) => s,
            Err(e) => {
                let _ = ready_tx.send(Err(e.clone()));
                return Err(e);
            }
        };
        let _ = ready_tx.send(Ok(()));
        let (mut got, mut buf) = (0, [0u8; 2048]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < PACKETS && Instant::now() < deadline {
            if let Ok(n) = sock.recv(&mut buf) {
                got += usize::from(buf[..n].starts_with(MARKER));
            }
        }
        Ok(got)
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("listener ready")
        .expect("listener");

    // Forwarder in A: two ports, one UMEM, one pool.
    let (fwd_tx, fwd_rx) = mpsc::channel::<Result<(), String>>();
    let (ns_a, dev_in, dev_out) = (
        topo.ns_a.clone(),
        in_link.dev_a.clone(),
        out_link.dev_a.clone(),
    );
    let out_net = out_link.net;
    let forwarder = thread::spawn(move || -> Result<(usize, usize), String> {
        let setup = (|| {
            enter(&ns_a)?;
            let (umem, mut pool) = Umem::new(test_umem_spec()).map_err(|e| e.to_string())?;
            let cfg = test_port_config(BindMode::Auto);
            let p_in = Port::open(&umem, &dev_in, 0, &cfg, &mut pool).map_err(|e| e.to_string())?;
            let p_out =
                Port::open(&umem, &dev_out, 0, &cfg, &mut pool).map_err(|e| e.to_string())?;
            match Port::open(&umem, &dev_in, 0, &cfg, &mut pool) {
                Err(XskError::AlreadyBound { .. }) => {}
                other => return Err(format!("second bind of {dev_in} q0 gave {other:?}")),
            }
            Ok::<_, String>((umem, pool, p_in, p_out))
        })();
        let (umem, mut pool, mut p_in, mut p_out) = match setup {
            Ok(v) => v,
            Err(e) => {
                let _ = fwd_tx.send(Err(e.clone()));
                return Err(e);
            }
        };
        let _ = fwd_tx.send(Ok(()));
        let (mut rx, mut tx) = (DescBatch::with_capacity(64), DescBatch::with_capacity(64));
        let mut forwarded = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while (forwarded < PACKETS || p_out.stats().completed < PACKETS as u64)
            && Instant::now() < deadline
        {
            let n = p_in
                .rx_batch(&mut rx, &mut pool)
                .map_err(|e| e.to_string())?;
            while let Some(mut d) = rx.pop() {
                let ours =
                    matches!(udp_payload(umem.bytes(&d)), Some((9999, p)) if p.starts_with(MARKER));
                if ours {
                    rewrite(umem.bytes_mut(&mut d), out_net, 9996);
                    forwarded += 1;
                    if let Err(d) = tx.push(d) {
                        pool.free(d);
                    }
                } else {
                    pool.free(d);
                }
            }
            p_out.tx_batch(&mut tx).map_err(|e| e.to_string())?;
            if p_out.reap_completions(&mut pool) == 0 && n == 0 {
                if forwarded >= PACKETS {
                    p_out.kick_tx().map_err(|e| e.to_string())?;
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
        tx.free_all(&mut pool);
        for port in [&p_in, &p_out] {
            let k = port.kernel_stats().map_err(|e| e.to_string())?;
            if k.rx_invalid_descs != 0 || k.tx_invalid_descs != 0 {
                return Err(format!("kernel saw invalid descriptors: {k:?}"));
            }
        }
        let posted = (p_in.posted() + p_out.posted()) as usize;
        if pool.len() + posted != FRAMES as usize {
            return Err(format!(
                "frames leaked: free {} posted {posted}",
                pool.len()
            ));
        }
        Ok((forwarded, p_out.stats().completed as usize))
    });
    match fwd_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("AF_XDP ports could not be created: {e}"),
        Err(e) => panic!("forwarder not ready within 30 s: {e}"),
    }

    let (ns_b, dst) = (topo.ns_b.clone(), format!("{}:9999", in_link.addr_a()));
    send_marked_datagrams(ns_b, dst);
    let (forwarded, completed) = forwarder
        .join()
        .expect("forwarder panicked")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(forwarded, PACKETS, "forwarded {forwarded} of {PACKETS}");
    assert_eq!(
        completed, PACKETS,
        "completion ring returned {completed} of {PACKETS}"
    );
    let got = listener
        .join()
        .expect("listener panicked")
        .expect("listener failed");
    assert_eq!(
        got, PACKETS,
        "peer received {got} of {PACKETS} forwarded datagrams"
    );
}

#[test]
fn frame_bytes_write_prepend_and_limits() {
    if !is_root() {
        eprintln!("skipped: needs root (CAP_NET_RAW) to register a UMEM");
        return;
    }
    let spec = UmemSpec {
        frames: 8,
        frame_size: 2048,
        ring_size: 8,
    };
    let (umem, mut pool) = Umem::new(spec).unwrap_or_else(|e| panic!("UMEM: {e}"));
    assert_eq!(pool.len(), 8);
    let mut d = pool.alloc().expect("free frame");
    assert!(d.is_empty());
    assert_eq!(pool.len(), 7);
    let packet: Vec<u8> = (1..=60).collect();
    umem.write(&mut d, &packet).expect("fits");
    assert_eq!(umem.bytes(&d), &packet[..]);
    let grown = umem
        .prepend(&mut d, 20)
        .expect("room for an outer IPv4 header");
    assert_eq!(grown.len(), 80);
    grown[..20].fill(0x45);
    assert_eq!(&umem.bytes(&d)[20..], &packet[..]);
    assert_eq!(&umem.bytes(&d)[..20], &[0x45; 20]);
    let cap = spec.data_capacity();
    assert!(matches!(
        umem.set_len(&mut d, cap + 1),
        Err(XskError::FrameTooLong { .. })
    ));
    umem.set_len(&mut d, cap)
        .expect("exactly the capacity fits");
    assert_eq!(umem.bytes_mut(&mut d).len(), cap);
    pool.free(d);
    assert_eq!(pool.len(), 8);
    let all: Vec<_> = std::iter::from_fn(|| pool.alloc()).collect();
    assert_eq!(all.len(), 8);
    let mut addrs: Vec<usize> = all.iter().map(|d| d.addr()).collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), 8, "each frame handed out once");
    assert!(
        addrs.iter().all(|a| a % 2048 == tortie_xsk::HEADROOM),
        "data after the headroom"
    );
}

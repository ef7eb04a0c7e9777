//! AF_XDP over a veth pair between two network namespaces this test creates.
//!
//! Needs root (creates namespaces, attaches XDP). As non-root the tests print why and return.
//! Addresses are from 198.18.0.0/15; everything is removed by a Drop guard, even on failure.

mod common;

use std::net::UdpSocket;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tortie_xsk::{BindMode, DescBatch, Port, Umem};

#[test]
fn udp_from_peer_is_received_through_af_xdp_auto_mode() {
    rx_case("r", 1, BindMode::Auto);
}

#[test]
fn udp_from_peer_is_received_through_af_xdp_skb_mode() {
    rx_case("s", 2, BindMode::Skb);
}

#[test]
fn af_xdp_tx_reaches_udp_socket_on_peer_auto_mode() {
    tx_case("t", 3, BindMode::Auto);
}

#[test]
fn af_xdp_tx_reaches_udp_socket_on_peer_skb_mode() {
    tx_case("u", 4, BindMode::Skb);
}

/// Bind a port in `mode` on A's veth, send `PACKETS` UDP datagrams from B with a std socket,
/// and require every one to arrive through AF_XDP with no frame leaked.
fn rx_case(tag: &str, net: u8, mode: BindMode) {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces and attach XDP");
        return;
    }
    let topo = Topo::new(tag, &[net]);
    let link = &topo.links[0];
    let (ready_tx, ready_rx) = mpsc::channel::<Result<BindMode, String>>();
    let (ns_a, dev_a) = (topo.ns_a.clone(), link.dev_a.clone());
    let receiver = thread::spawn(move || -> Result<usize, String> {
        let setup = (|| {
            enter(&ns_a)?;
            let (umem, mut pool) = Umem::new(test_umem_spec()).map_err(|e| e.to_string())?;
            let port = Port::open(&umem, &dev_a, 0, &test_port_config(mode), &mut pool)
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((umem, pool, port))
        })();
        let (umem, mut pool, mut port) = match setup {
            Ok(v) => v,
            Err(e) => {
                let _ = ready_tx.send(Err(e.clone()));
                return Err(e);
            }
        };
        let _ = ready_tx.send(Ok(port.mode()));
        let mut batch = DescBatch::with_capacity(64);
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < PACKETS && Instant::now() < deadline {
            let n = port
                .rx_batch(&mut batch, &mut pool)
                .map_err(|e| e.to_string())?;
            for d in batch.iter() {
                if matches!(udp_payload(umem.bytes(d)), Some((9999, p)) if p.starts_with(MARKER)) {
                    got += 1;
                }
            }
            batch.free_all(&mut pool);
            if n == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        // Recycling: every frame is either free or posted on the fill ring.
        assert_eq!(
            pool.len() + port.posted() as usize,
            FRAMES as usize,
            "frames leaked"
        );
        assert!(
            port.stats().rx as usize >= got,
            "stats.rx below frames seen"
        );
        Ok(got)
    });
    let bound = match ready_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(mode)) => mode,
        Ok(Err(e)) => panic!("AF_XDP socket could not be created on this kernel: {e}"),
        Err(e) => panic!("receiver did not report readiness within 30 s: {e}"),
    };
    eprintln!("AF_XDP port bound in mode {bound:?}");
    assert!(
        mode == BindMode::Auto || bound == mode,
        "asked for {mode:?}, bound {bound:?}"
    );
    let (ns_b, dst) = (topo.ns_b.clone(), format!("{}:9999", link.addr_a()));
    send_marked_datagrams(ns_b, dst);
    let got = receiver
        .join()
        .expect("receiver panicked")
        .expect("receiver failed");
    assert_eq!(
        got, PACKETS,
        "AF_XDP received {got} of {PACKETS} UDP datagrams"
    );
}

/// Bind a port in `mode` on A's veth, transmit `PACKETS` hand-built UDP frames through it, and
/// require a std UdpSocket in B to get them all and the completion ring to return every frame.
fn tx_case(tag: &str, net: u8, mode: BindMode) {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces and attach XDP");
        return;
    }
    let topo = Topo::new(tag, &[net]);
    let link = &topo.links[0];
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let ns_b = topo.ns_b.clone();
    let bind_addr = format!("{}:9998", link.addr_b());
    let listener = thread::spawn(move || -> Result<usize, String> {
        let sock = (|| {
            enter(&ns_b)?;
            let s = UdpSocket::bind(&bind_addr).map_err(|e| format!("bind {bind_addr}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(s)
        })();
        let sock = match sock {
            Ok(s) => s,
            Err(e) => {
                let _ = ready_tx.send(Err(e.clone()));
                return Err(e);
            }
        };
        let _ = ready_tx.send(Ok(()));
        let mut got = 0;
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < PACKETS && Instant::now() < deadline {
            if let Ok(n) = sock.recv(&mut buf) {
                got += usize::from(buf[..n].starts_with(MARKER));
            }
        }
        Ok(got)
    });
    match ready_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("listener setup failed: {e}"),
        Err(e) => panic!("listener not ready within 30 s: {e}"),
    }
    let (ns_a, dev_a) = (topo.ns_a.clone(), link.dev_a.clone());
    let sender = thread::spawn(move || -> Result<(usize, BindMode), String> {
        enter(&ns_a)?;
        let (umem, mut pool) = Umem::new(test_umem_spec())
            .map_err(|e| format!("AF_XDP UMEM could not be created: {e}"))?;
        let mut port = Port::open(&umem, &dev_a, 0, &test_port_config(mode), &mut pool)
            .map_err(|e| format!("AF_XDP socket could not be created: {e}"))?;
        let mut batch = DescBatch::with_capacity(64);
        for i in 0..PACKETS {
            let mut msg = MARKER.to_vec();
            msg.extend_from_slice(format!("-{i}").as_bytes());
            let frame = build_frame([198, 18, net, 1], [198, 18, net, 2], 9998, &msg);
            let mut d = pool.alloc().ok_or("pool empty")?;
            umem.write(&mut d, &frame).map_err(|e| e.to_string())?;
            assert_eq!(umem.bytes(&d), &frame[..]);
            batch.push(d).map_err(|_| "batch full")?;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !batch.is_empty() && Instant::now() < deadline {
            port.tx_batch(&mut batch).map_err(|e| e.to_string())?;
            port.reap_completions(&mut pool);
        }
        if !batch.is_empty() {
            return Err(format!("{} frames never fit the TX ring", batch.len()));
        }
        // Completion ring: every frame comes back to the free list.
        while pool.len() + (port.posted() as usize) < FRAMES as usize && Instant::now() < deadline {
            if port.reap_completions(&mut pool) == 0 {
                port.kick_tx().map_err(|e| e.to_string())?;
                thread::sleep(Duration::from_millis(1));
            }
        }
        let stats = port.stats();
        if pool.len() + port.posted() as usize != FRAMES as usize {
            return Err(format!(
                "frames not recycled: stats {stats:?}, free {}",
                pool.len()
            ));
        }
        Ok((stats.completed as usize, port.mode()))
    });
    let (completed, bound) = sender
        .join()
        .expect("sender panicked")
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("AF_XDP port bound in mode {bound:?}");
    assert!(
        mode == BindMode::Auto || bound == mode,
        "asked for {mode:?}, bound {bound:?}"
    );
    assert_eq!(
        completed, PACKETS,
        "completion ring returned {completed} of {PACKETS} frames"
    );
    let got = listener
        .join()
        .expect("listener panicked")
        .expect("listener failed");
    assert_eq!(
        got, PACKETS,
        "peer UdpSocket received {got} of {PACKETS} frames sent via AF_XDP"
    );
}

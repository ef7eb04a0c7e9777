//! `Port::close` gives back every frame a port held (fill, RX, TX and completion rings), so a
//! worker that opens and closes sockets as workloads come and go keeps its whole pool.
//!
//! Needs root (creates namespaces, attaches XDP). As non-root the test prints why and returns.
//! Addresses are from 198.18.0.0/15; everything is removed by a Drop guard, even on failure.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tortie_xsk::{BindMode, DescBatch, Port, Umem};

const CYCLES: usize = 20;

#[test]
fn closing_a_port_returns_every_frame_to_the_pool() {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces and attach XDP");
        return;
    }
    let topo = Topo::new("c", &[5, 6]);
    let link = &topo.links[0];
    let (ns_a, dev_a) = (topo.ns_a.clone(), link.dev_a.clone());
    let keeper_dev = topo.links[1].dev_a.clone();
    let (ns_b, dst) = (topo.ns_b.clone(), format!("{}:9999", link.addr_a()));
    let net = 5u8;
    let worker = thread::spawn(move || -> Result<(), String> {
        enter(&ns_a)?;
        let (umem, mut pool) = Umem::new(test_umem_spec()).map_err(|e| e.to_string())?;
        let cfg = test_port_config(BindMode::Auto);
        // The UMEM's first socket keeps the UMEM's own fd, which libxdp closes only with the
        // UMEM: a worker keeps one such socket open (the uplink), as this one.
        let keeper =
            Port::open(&umem, &keeper_dev, 0, &cfg, &mut pool).map_err(|e| e.to_string())?;
        assert!(keeper.is_registration_socket());
        let start = pool.len();
        assert_eq!(start, FRAMES as usize - cfg.fill_target as usize);
        for cycle in 0..CYCLES {
            let mut port = open_retrying(&umem, &dev_a, &cfg, &mut pool)
                .map_err(|e| format!("cycle {cycle}: {e}"))?;
            assert!(!port.is_registration_socket());
            assert_eq!(port.outstanding(), cfg.fill_target as usize);
            // Leave frames on the TX (or completion) ring: submit without reaping.
            let mut batch = DescBatch::with_capacity(64);
            for i in 0..16 {
                let frame = build_frame([198, 18, net, 1], [198, 18, net, 2], 9998, &[i]);
                let mut d = pool.alloc().ok_or("pool empty")?;
                umem.write(&mut d, &frame).map_err(|e| e.to_string())?;
                batch.push(d).map_err(|_| "batch full")?;
            }
            port.tx_batch(&mut batch).map_err(|e| e.to_string())?;
            batch.free_all(&mut pool);
            // In one cycle, also leave received frames waiting on the RX ring.
            if cycle == 1 {
                send_marked_datagrams(ns_b.clone(), dst.clone());
                let deadline = Instant::now() + Duration::from_secs(5);
                while port.outstanding() == cfg.fill_target as usize + 16
                    && Instant::now() < deadline
                {
                    thread::sleep(Duration::from_millis(5));
                    // Nothing consumed: frames sit on the RX ring, still the port's.
                    if port.posted() < cfg.fill_target {
                        break;
                    }
                }
            }
            let held = start - pool.len();
            assert!(held >= cfg.fill_target as usize, "cycle {cycle}: {held}");
            let returned = port.close(&mut pool);
            assert_eq!(
                pool.len(),
                start,
                "cycle {cycle}: {returned} frames returned of {held} held"
            );
            assert_eq!(returned, held, "cycle {cycle}");
        }
        // The check can fail: dropping a port (the old detach path) loses its frames.
        let port = open_retrying(&umem, &dev_a, &cfg, &mut pool)?;
        drop(port);
        assert_eq!(pool.len(), start - cfg.fill_target as usize);
        // The registration socket's fill ring stays with the kernel.
        let before = pool.len();
        let returned = keeper.close(&mut pool);
        assert_eq!(pool.len(), before + returned);
        assert!(returned < cfg.fill_target as usize, "{returned}");
        Ok(())
    });
    worker
        .join()
        .expect("worker panicked")
        .expect("worker failed");
}

/// The kernel releases a closed socket asynchronously: the queue may refuse a new bind for a
/// moment. Retries for at most 2 s.
fn open_retrying(
    umem: &Umem,
    dev: &str,
    cfg: &tortie_xsk::PortConfig,
    pool: &mut tortie_xsk::FramePool,
) -> Result<Port, String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match Port::open(umem, dev, 0, cfg, pool) {
            Ok(p) => return Ok(p),
            Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

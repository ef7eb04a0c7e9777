//! Connection-rate end hosts on kernel sockets: a server in the sink namespace listens on
//! 198.18.100.1:5001; client threads in the generator namespace each loop connect → send one
//! byte → read one byte → close. The server closes first, so TIME_WAIT stays on its side and
//! the clients never run out of ports. Needs full checksums from the end hosts' kernels
//! (`Topology::end_hosts_full_checksums`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{ConnTrial, PORT};
use crate::dut::HarnessError;
use crate::dut::topology::{DEST_ADDR, Topology};
use crate::pktgen::latency::Histogram;

fn enter(ns: &Path) -> Result<(), HarnessError> {
    let f = std::fs::File::open(ns).map_err(|e| HarnessError::Io {
        path: ns.to_path_buf(),
        reason: e.to_string(),
    })?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| HarnessError::Io {
        path: ns.to_path_buf(),
        reason: format!("setns: {e}"),
    })
}

fn serve(listener: &TcpListener, stop: &AtomicBool) {
    let mut byte = [0u8; 1];
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut s, _)) => {
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                if s.read_exact(&mut byte).is_ok() {
                    let _ = s.write_all(&byte);
                }
                // Dropping closes first: TIME_WAIT stays here.
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn one_connection(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.set_nodelay(true)?;
    s.write_all(b"x")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    Ok(())
}

/// One trial through `topo`.
pub fn trial(
    topo: &Topology,
    duration: Duration,
    concurrency: usize,
) -> Result<ConnTrial, HarnessError> {
    let addr: SocketAddr = format!("{DEST_ADDR}:{PORT}")
        .parse()
        .map_err(|_| HarnessError::Trial("server address".into()))?;
    let (sink, gen_ns) = (
        Topology::ns_path(&topo.sink_ns),
        Topology::ns_path(&topo.gen_ns),
    );
    let stop_server = AtomicBool::new(false);
    let ok = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::scope(|s| -> Result<ConnTrial, HarnessError> {
        let stop = &stop_server;
        s.spawn(move || {
            let listener = enter(&sink)
                .map_err(|e| e.to_string())
                .and_then(|()| TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}")))
                .and_then(|l| {
                    l.set_nonblocking(true)
                        .map(|()| l)
                        .map_err(|e| e.to_string())
                });
            match listener {
                Ok(l) => {
                    let _ = ready_tx.send(Ok(()));
                    // As many acceptors as clients, sharing the listening socket, so one
                    // slow connection does not hold the others.
                    std::thread::scope(|inner| {
                        for _ in 1..concurrency.max(1) {
                            if let Ok(l2) = l.try_clone() {
                                inner.spawn(move || serve(&l2, stop));
                            }
                        }
                        serve(&l, stop);
                    });
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        });
        let ready = ready_rx.recv_timeout(Duration::from_secs(5));
        if !matches!(ready, Ok(Ok(()))) {
            stop.store(true, Ordering::Relaxed);
            return Err(HarnessError::Trial(format!(
                "server did not start: {ready:?}"
            )));
        }
        let start = Instant::now();
        let deadline = start + duration;
        let clients: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                let (ok, failed, gen_ns) = (&ok, &failed, gen_ns.clone());
                s.spawn(move || -> Histogram {
                    let mut h = Histogram::default();
                    if enter(&gen_ns).is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return h;
                    }
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        match one_connection(addr) {
                            Ok(()) => {
                                h.record(t.elapsed().as_nanos() as u64);
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    h
                })
            })
            .collect();
        let mut lat = Histogram::default();
        for c in clients {
            if let Ok(h) = c.join() {
                lat.merge(&h);
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let n = ok.load(Ordering::Relaxed);
        let us = |q: f64| lat.quantile(q).map(|ns| (ns as f64 / 10.0).round() / 100.0);
        Ok(ConnTrial {
            connections: n,
            failures: failed.load(Ordering::Relaxed),
            per_s: n as f64 / elapsed.max(1e-9),
            p50_us: us(0.5),
            p99_us: us(0.99),
            end_hosts: None,
        })
    })
}

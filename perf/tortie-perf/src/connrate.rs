//! `tortie-perf connrate`: new TCP connections per second through a device under test.
//!
//! Kernel sockets at both ends, each thread in its own namespace (`setns` is per thread): a
//! server in the sink namespace listens on 198.18.100.1:5001; `--concurrency` client threads
//! in the generator namespace each loop connect → send one byte → read one byte → close, so
//! every connection is a full handshake, one request/response and a teardown through the
//! DUT's conntrack and policy in both directions. The server closes first, so TIME_WAIT stays
//! on its side and the clients never run out of ports. Systems are interleaved per round as
//! in `compare`; the figure is successful connections per second (median over rounds) with
//! setup-to-response latency percentiles.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::classify::Output;
use crate::compare::Unavailable;
use crate::compare::stats::{Ratio, median};
use crate::dut::topology::{DEST_ADDR, Topology};
use crate::dut::{Dut, DutOptions, HarnessError, Scenario, System};
use crate::pktgen::latency::Histogram;

/// Server port.
const PORT: u16 = 5001;

/// Arguments of `connrate`.
#[derive(Debug, Args)]
pub struct ConnrateArgs {
    /// Systems to compare (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tortie,kernel,kernel-ct-iptables"
    )]
    systems: Vec<System>,
    /// Rules (tortie policy, linear iptables rules, ipset entries).
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// Interleaved rounds.
    #[arg(long, default_value_t = 3)]
    trials: usize,
    /// Seconds per trial.
    #[arg(long, default_value_t = 2.0)]
    trial_s: f64,
    /// Client threads, each with one connection at a time.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// tortie-fastpath binary (default: next to this executable, else on PATH).
    #[arg(long)]
    fastpath_bin: Option<PathBuf>,
    /// tortie-fastpath `--mode`.
    #[arg(long, default_value = "adaptive")]
    fastpath_mode: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
}

/// One trial's result.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConnTrial {
    /// Connections that completed (handshake, one byte each way, close).
    pub connections: u64,
    /// Connections that failed or timed out.
    pub failures: u64,
    /// Completed connections per second.
    pub per_s: f64,
    /// Median connect-to-response time, µs.
    pub p50_us: Option<f64>,
    /// 99th percentile, µs.
    pub p99_us: Option<f64>,
}

/// Medians of one scenario.
#[derive(Debug, Serialize)]
pub struct ConnSummary {
    /// System name.
    pub system: &'static str,
    /// Rules.
    pub rules: usize,
    /// Median connections per second.
    pub conns_per_s: f64,
    /// Failures over all trials.
    pub failures: u64,
    /// Median of the trials' medians, µs.
    pub p50_us: Option<f64>,
    /// Median of the trials' 99th percentiles, µs.
    pub p99_us: Option<f64>,
    /// Every trial.
    pub trials: Vec<ConnTrial>,
}

/// The JSON report.
#[derive(Debug, Serialize)]
pub struct ConnReport {
    /// Medians per scenario.
    pub runs: Vec<ConnSummary>,
    /// Each system's median over kernel forwarding's, then tortie over kernel + conntrack +
    /// linear rules (target 2).
    pub ratios: Vec<Ratio>,
    /// Scenarios that could not run.
    pub unavailable: Vec<Unavailable>,
    /// Client threads.
    pub concurrency: usize,
    /// Seconds per trial.
    pub trial_s: f64,
}

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
        })
    })
}

/// Run `connrate`.
pub fn run(a: &ConnrateArgs) -> anyhow::Result<()> {
    if a.trials == 0 || !(a.trial_s > 0.0 && a.trial_s <= 600.0) || a.concurrency == 0 {
        anyhow::bail!("--trials and --concurrency must be >= 1 and --trial-s in (0, 600]");
    }
    let opts = DutOptions {
        fastpath_bin: a.fastpath_bin.clone(),
        fastpath_mode: a.fastpath_mode.clone(),
    };
    let mut duts = Vec::new();
    let mut unavailable = Vec::new();
    for (i, &system) in a.systems.iter().enumerate() {
        let sc = Scenario {
            system,
            rules: if system.uses_rules() { a.rules } else { 0 },
        };
        match Dut::build(sc, &format!("t{i}"), &opts) {
            Ok(d) => duts.push(d),
            Err(HarnessError::Unavailable(why)) => {
                eprintln!("connrate: {} unavailable: {why}", sc.label());
                unavailable.push(Unavailable {
                    system: sc.system.name(),
                    rules: sc.rules,
                    reason: why,
                });
            }
            Err(e) => return Err(e).with_context(|| format!("building {}", sc.label())),
        }
    }
    duts.iter().for_each(Dut::pause);
    let mut results: HashMap<Scenario, Vec<ConnTrial>> = HashMap::new();
    for round in 0..a.trials {
        for d in &duts {
            d.resume();
            let t = trial(&d.topo, Duration::from_secs_f64(a.trial_s), a.concurrency);
            d.pause();
            let t = t.with_context(|| format!("round {} of {}", round + 1, d.scenario.label()))?;
            eprintln!(
                "[round {}/{}] {:<24} {:9.0} conn/s  failures {}  p50 {} µs",
                round + 1,
                a.trials,
                d.scenario.label(),
                t.per_s,
                t.failures,
                t.p50_us.map_or("-".into(), |v| format!("{v:.0}"))
            );
            results.entry(d.scenario).or_default().push(t);
        }
    }
    let scenarios: Vec<Scenario> = duts.iter().map(|d| d.scenario).collect();
    drop(duts);
    let runs: Vec<ConnSummary> = scenarios
        .iter()
        .map(|sc| {
            let trials = results.remove(sc).unwrap_or_default();
            let col = |f: fn(&ConnTrial) -> Option<f64>| {
                median(&trials.iter().filter_map(f).collect::<Vec<_>>())
            };
            ConnSummary {
                system: sc.system.name(),
                rules: sc.rules,
                conns_per_s: col(|t| Some(t.per_s)).unwrap_or(0.0),
                failures: trials.iter().map(|t| t.failures).sum(),
                p50_us: col(|t| t.p50_us),
                p99_us: col(|t| t.p99_us),
                trials,
            }
        })
        .collect();
    let rate = |s: System| {
        runs.iter()
            .find(|r| r.system == s.name())
            .map(|r| r.conns_per_s)
    };
    let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let ratio = |name: String, value: Option<f64>, target: Option<f64>| Ratio {
        name,
        value,
        target,
        met: value.zip(target).map(|(v, t)| v >= t),
    };
    let mut ratios: Vec<Ratio> = runs
        .iter()
        .filter(|r| r.system != "kernel")
        .map(|r| {
            ratio(
                format!("{}@{} / kernel", r.system, r.rules),
                div(Some(r.conns_per_s), rate(System::Kernel)),
                None,
            )
        })
        .collect();
    ratios.push(ratio(
        format!("tortie@{0} / kernel-ct-iptables@{0}", a.rules),
        div(rate(System::Tortie), rate(System::KernelCtIptables)),
        Some(2.0),
    ));
    let report = ConnReport {
        ratios,
        runs,
        unavailable,
        concurrency: a.concurrency,
        trial_s: a.trial_s,
    };
    match a.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Table => {
            println!("| system | rules | conn/s median | failures | p50 µs | p99 µs |");
            println!("|---|---|---|---|---|---|");
            for r in &report.runs {
                let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
                println!(
                    "| {} | {} | {:.0} | {} | {} | {} |",
                    r.system,
                    r.rules,
                    r.conns_per_s,
                    r.failures,
                    f(r.p50_us),
                    f(r.p99_us)
                );
            }
            for x in &report.ratios {
                let v = x.value.map_or("-".into(), |v| format!("{v:.3}"));
                let t = x
                    .target
                    .map_or(String::new(), |t| format!(" (target >= {t})"));
                println!("{:<40} {v}{t}", x.name);
            }
            for u in &report.unavailable {
                println!("unavailable: {}: {}", u.label(), u.reason);
            }
        }
    }
    Ok(())
}

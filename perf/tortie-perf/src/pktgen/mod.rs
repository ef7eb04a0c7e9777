//! `tortie-perf pktgen`: an AF_XDP traffic generator and receiver.
//!
//! One transmit and/or one receive worker per queue, each on its own pinned thread with its own
//! UMEM and AF_XDP port (`tortie-xsk`). Frames are built once per flow and size with `etherparse`
//! ([`template`]); the transmit loop copies a template into a frame and patches only the stamp
//! (flow, sequence number, CLOCK_MONOTONIC timestamp) and the L4 checksum. The receiver counts
//! stamped packets, detects loss from per-flow sequence gaps and records one-way latency (sender
//! and receiver must share a host, as they do on a veth pair).
//!
//! Modes: `--tx-dev` and `--rx-dev` together (one process, loss = sent − received), or either
//! alone (two processes, e.g. one per network namespace; a receiver given `--count` stops once it
//! has that many and reports loss against it). Only interface names are needed: no `ip`, no
//! sysfs. The receiver prints `pktgen: ready` on stderr once its ports are bound.

pub(crate) mod latency;
mod report;
mod template;
mod workers;

pub(crate) use report::Report;

use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;

use crate::classify::Output;
use report::{build_report, print_table};
use template::{FlowSpec, Proto, Range, Template, parse_frame_size};
use workers::{Counters, PortSite, RxResult, TxJob};

/// Arguments of `pktgen`.
#[derive(Debug, Args)]
pub struct PktgenArgs {
    /// Interface to transmit on (AF_XDP).
    #[arg(long)]
    tx_dev: Option<String>,
    /// Interface to receive on (AF_XDP).
    #[arg(long)]
    rx_dev: Option<String>,
    /// Queues used on each interface (one pinned thread per queue and direction).
    #[arg(long, default_value_t = 1)]
    queues: u32,
    /// Frame size in bytes including the 4-byte FCS (64..=1518), or `imix` (7:4:1 of
    /// 64/594/1518). Frames too small for the headers and the 16-byte stamp grow to fit.
    #[arg(long, default_value = "64")]
    frame_size: String,
    /// Number of flows (at most 65536); flow i takes the i-th value of every range, wrapping.
    #[arg(long, default_value_t = 1)]
    flows: usize,
    /// Source addresses: `A`, `A-B` or `A/LEN` [default: 198.18.0.1/16, or 2001:db8::1/64].
    #[arg(long)]
    src_range: Option<String>,
    /// Destination addresses [default: 198.19.0.1/16, or 2001:db8:1::1/64].
    #[arg(long)]
    dst_range: Option<String>,
    /// Source ports `P` or `P-Q` (ICMP: echo identifiers).
    #[arg(long, default_value = "1024-65535")]
    src_port: String,
    /// Destination ports `P` or `P-Q`.
    #[arg(long, default_value = "9")]
    dst_port: String,
    /// Source MAC.
    #[arg(long, default_value = "02:00:00:00:00:01", value_parser = parse_mac)]
    src_mac: [u8; 6],
    /// Destination MAC.
    #[arg(long, default_value = "02:00:00:00:00:02", value_parser = parse_mac)]
    dst_mac: [u8; 6],
    /// Transport protocol.
    #[arg(long, value_enum, default_value = "udp")]
    proto: Proto,
    /// Generate IPv6 instead of IPv4.
    #[arg(long)]
    ipv6: bool,
    /// Total packets per second over all queues (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Longest run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Packets to send (receiver alone: packets expected); unlimited when absent.
    #[arg(long)]
    count: Option<u64>,
    /// After the sender stops, how long the receiver keeps waiting for stragglers (ms).
    #[arg(long, default_value_t = 500)]
    linger_ms: u64,
    /// Do not pin worker threads to cores.
    #[arg(long)]
    no_pin: bool,
    /// First core to pin to: transmit worker q goes to core `first_core + q`, then the receive
    /// workers follow (wrapping over the cores available). Lets a sender and a receiver in two
    /// processes use different cores.
    #[arg(long, default_value_t = 0)]
    first_core: usize,
    /// Network namespace (a path such as `/run/netns/NAME`) the transmit threads enter before
    /// opening their ports, so one process can send in one namespace and receive in another.
    #[arg(long)]
    tx_netns: Option<std::path::PathBuf>,
    /// Network namespace the receive threads enter before opening their ports.
    #[arg(long)]
    rx_netns: Option<std::path::PathBuf>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
}

/// `pktgen`'s options parsed from an argument list (without the program and subcommand
/// names), for the harnesses that drive it in-process.
pub(crate) fn parse_args<S: AsRef<str>>(args: &[S]) -> anyhow::Result<PktgenArgs> {
    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        a: PktgenArgs,
    }
    use clap::Parser as _;
    let argv = std::iter::once("pktgen").chain(args.iter().map(AsRef::as_ref));
    Ok(Wrap::try_parse_from(argv)
        .map_err(|e| anyhow::anyhow!("pktgen options: {e}"))?
        .a)
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("{s:?}: a MAC is six hex bytes separated by ':'"));
    }
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).map_err(|e| format!("{s:?}: {e}"))?;
    }
    Ok(mac)
}

fn flow_spec(a: &PktgenArgs) -> anyhow::Result<FlowSpec> {
    let (src_default, dst_default) = if a.ipv6 {
        ("2001:db8::1/64", "2001:db8:1::1/64")
    } else {
        ("198.18.0.1/16", "198.19.0.1/16")
    };
    Ok(FlowSpec {
        proto: a.proto,
        ipv6: a.ipv6,
        src_mac: a.src_mac,
        dst_mac: a.dst_mac,
        src: Range::parse_ip(
            "src-range",
            a.src_range.as_deref().unwrap_or(src_default),
            a.ipv6,
        )?,
        dst: Range::parse_ip(
            "dst-range",
            a.dst_range.as_deref().unwrap_or(dst_default),
            a.ipv6,
        )?,
        sport: Range::parse_port("src-port", &a.src_port)?,
        dport: Range::parse_port("dst-port", &a.dst_port)?,
    })
}

/// Run `pktgen` and print its report.
pub fn run(a: &PktgenArgs) -> anyhow::Result<()> {
    let report = measure(a)?;
    match a.output {
        Output::Json => println!("{}", serde_json::to_string(&report)?),
        Output::Table => print_table(&report),
    }
    Ok(())
}

/// Send and/or receive as `a` says and return the report.
pub(crate) fn measure(a: &PktgenArgs) -> anyhow::Result<Report> {
    if a.tx_dev.is_none() && a.rx_dev.is_none() {
        bail!("pktgen needs --tx-dev, --rx-dev or both");
    }
    if a.queues == 0 || a.queues > 64 {
        bail!("--queues: {} is not 1..=64", a.queues);
    }
    if a.flows == 0 || a.flows > 65536 {
        bail!("--flows: {} is not 1..=65536", a.flows);
    }
    if a.tx_dev.is_some() && a.flows < a.queues as usize {
        bail!(
            "--flows: {} is fewer than --queues {} (each queue sends its own flows)",
            a.flows,
            a.queues
        );
    }
    if !(a.duration > 0.0 && a.duration <= 86_400.0) {
        bail!("--duration: {} is not in (0, 86400] seconds", a.duration);
    }
    let sizes = parse_frame_size(&a.frame_size)?;
    let spec = flow_spec(a)?;
    let mut templates = Vec::with_capacity(a.flows * sizes.len());
    for flow in 0..a.flows {
        for &size in &sizes {
            templates.push(Template::build(&spec, flow, size)?);
        }
    }
    let templates = Arc::new(templates);
    let queues = a.queues as usize;
    let cores = if a.no_pin {
        Vec::new()
    } else {
        core_affinity::get_core_ids().unwrap_or_default()
    };
    let core = |i: usize| (!cores.is_empty()).then(|| cores[(a.first_core + i) % cores.len()]);

    let go = AtomicBool::new(false);
    let stop_tx = AtomicBool::new(false);
    let stop_rx = AtomicBool::new(false);
    let tx_running = AtomicUsize::new(0);
    let tx_counters: Vec<Counters> = (0..queues).map(|_| Counters::default()).collect();
    let rx_counters: Vec<Counters> = (0..queues).map(|_| Counters::default()).collect();
    let (ready_tx, ready_rx) = mpsc::channel();
    let expected_ready =
        queues * (usize::from(a.tx_dev.is_some()) + usize::from(a.rx_dev.is_some()));

    let (tx_sent, rx_results, elapsed) = std::thread::scope(|s| -> anyhow::Result<_> {
        let mut rx_handles = Vec::new();
        if let Some(dev) = &a.rx_dev {
            for (q, c) in rx_counters.iter().enumerate() {
                let site = PortSite {
                    ifname: dev.clone(),
                    queue: q as u32,
                    core: core(if a.tx_dev.is_some() { queues + q } else { q }),
                    netns: a.rx_netns.clone(),
                };
                let (stop, ready) = (&stop_rx, ready_tx.clone());
                rx_handles.push(s.spawn(move || workers::rx_loop(site, c, stop, ready)));
            }
        }
        let mut tx_handles = Vec::new();
        if let Some(dev) = &a.tx_dev {
            for (q, c) in tx_counters.iter().enumerate() {
                let count = a.count.map_or(u64::MAX, |c| {
                    c / queues as u64 + u64::from((q as u64) < c % queues as u64)
                });
                let rate = a.rate / queues as u64 + u64::from((q as u64) < a.rate % queues as u64);
                let job = TxJob {
                    site: PortSite {
                        ifname: dev.clone(),
                        queue: q as u32,
                        core: core(q),
                        netns: a.tx_netns.clone(),
                    },
                    templates: templates.clone(),
                    sizes: sizes.len(),
                    first_flow: q,
                    stride: queues,
                    flows: a.flows,
                    count,
                    rate: if a.rate > 0 { rate.max(1) } else { 0 },
                };
                let (go, stop, ready, running) = (&go, &stop_tx, ready_tx.clone(), &tx_running);
                running.fetch_add(1, Ordering::SeqCst);
                tx_handles.push(s.spawn(move || {
                    let n = workers::tx_loop(job, c, go, stop, ready);
                    running.fetch_sub(1, Ordering::SeqCst);
                    n
                }));
            }
        }
        drop(ready_tx);
        let outcome = wait_ready(&ready_rx, expected_ready);
        if outcome.is_err() {
            stop_tx.store(true, Ordering::SeqCst);
            stop_rx.store(true, Ordering::SeqCst);
        } else {
            if !a.quiet {
                eprintln!("pktgen: ready");
            }
            go.store(true, Ordering::Release);
        }
        let elapsed = if outcome.is_ok() {
            drive(
                a,
                &stop_tx,
                &stop_rx,
                &tx_running,
                &tx_counters,
                &rx_counters,
            )
        } else {
            Duration::ZERO
        };
        stop_tx.store(true, Ordering::SeqCst);
        stop_rx.store(true, Ordering::SeqCst);
        let tx_sent = tx_handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .fold(workers::TxResult::default(), |a, b| workers::TxResult {
                sent: a.sent + b.sent,
                cpu_ns: a.cpu_ns + b.cpu_ns,
                send_ns: a.send_ns.max(b.send_ns),
            });
        let rx: Vec<RxResult> = rx_handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        outcome?;
        Ok((tx_sent, rx, elapsed))
    })?;

    Ok(build_report(a, tx_sent, &tx_counters, &rx_results, elapsed))
}

fn wait_ready(rx: &mpsc::Receiver<Result<(), String>>, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left)
            .context("a worker did not open its AF_XDP port within 15 s")?
            .map_err(|e| anyhow::anyhow!("opening AF_XDP port: {e}"))?;
    }
    Ok(())
}

fn total(c: &[Counters]) -> (u64, u64) {
    c.iter().fold((0, 0), |(p, b), c| {
        (
            p + c.packets.load(Ordering::Relaxed),
            b + c.bytes.load(Ordering::Relaxed),
        )
    })
}

/// Run until done, printing a progress line once a second; returns the measured time (the send
/// phase when sending, else the receive window).
fn drive(
    a: &PktgenArgs,
    stop_tx: &AtomicBool,
    stop_rx: &AtomicBool,
    tx_running: &AtomicUsize,
    txc: &[Counters],
    rxc: &[Counters],
) -> Duration {
    let start = Instant::now();
    let limit = Duration::from_secs_f64(a.duration);
    let tty = std::io::stderr().is_terminal() && !a.quiet;
    let (sending, receiving) = (a.tx_dev.is_some(), a.rx_dev.is_some());
    let mut next_print = Duration::from_secs(1);
    let (mut last_tx, mut last_rx) = (0u64, 0u64);
    let mut tx_done_at: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = start.elapsed();
        let (tx, _) = total(txc);
        let (rx, _) = total(rxc);
        if now >= next_print && !a.quiet {
            let line = format!(
                "[{:5.1}s] tx {:8.3} Mpps {:>12}   rx {:8.3} Mpps {:>12}",
                now.as_secs_f64(),
                (tx - last_tx) as f64 / 1e6,
                tx,
                (rx - last_rx) as f64 / 1e6,
                rx
            );
            let mut err = std::io::stderr().lock();
            let _ = if tty {
                write!(err, "\r{line}")
            } else {
                writeln!(err, "{line}")
            };
            (last_tx, last_rx) = (tx, rx);
            next_print += Duration::from_secs(1);
        }
        if sending {
            if tx_done_at.is_none() && (tx_running.load(Ordering::SeqCst) == 0 || now >= limit) {
                stop_tx.store(true, Ordering::SeqCst);
                // Wait for the senders to drain before taking the time.
                while tx_running.load(Ordering::SeqCst) > 0
                    && start.elapsed() < limit + Duration::from_secs(3)
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                tx_done_at = Some(Instant::now());
            }
            if let Some(t) = tx_done_at {
                let (tx, _) = total(txc);
                let (rx, _) = total(rxc);
                if !receiving || rx >= tx || t.elapsed() >= Duration::from_millis(a.linger_ms) {
                    stop_rx.store(true, Ordering::SeqCst);
                    if tty {
                        eprintln!();
                    }
                    return t - start;
                }
            }
        } else {
            let got_all = a.count.is_some_and(|c| rx >= c);
            if got_all || now >= limit {
                stop_rx.store(true, Ordering::SeqCst);
                if tty {
                    eprintln!();
                }
                return now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_or_explain() {
        assert_eq!(parse_mac("02:00:00:00:00:0a").unwrap(), [2, 0, 0, 0, 0, 10]);
        assert!(
            parse_mac("02:00:00:00:00")
                .unwrap_err()
                .contains("six hex bytes")
        );
        assert!(parse_mac("02:00:00:00:00:zz").is_err());
    }
}

//! The `pktgen` report: totals, rates, loss and latency percentiles, as JSON or a table.

use std::time::Duration;

use serde::Serialize;

use super::latency::Histogram;
use super::workers::{Counters, RxResult};
use super::{PktgenArgs, total};

/// The report (JSON keys are these field names).
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) tx_packets: u64,
    pub(crate) rx_packets: u64,
    /// Sent − received; a receiver alone: expected (`--count`) − received, or sequence gaps.
    pub(crate) loss: Option<u64>,
    /// Received rate when receiving, else sent rate.
    pub(crate) mpps: f64,
    /// Frame bits (FCS included, preamble and gap not) per second, same side as `mpps`.
    pub(crate) gbps: f64,
    pub(crate) tx_mpps: f64,
    /// Sent rate over the sending window only (start to last submission, without the drain
    /// and the receiver's linger): the rate the generator actually offered.
    pub(crate) tx_send_mpps: f64,
    pub(crate) rx_mpps: f64,
    /// Smallest one-way latency seen.
    pub(crate) min_us: Option<f64>,
    /// Latency distribution: `(fraction, µs)` at every percent, then 99.9 % (not printed).
    #[serde(skip)]
    pub(crate) cdf_us: Vec<(f64, f64)>,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) p999_us: Option<f64>,
    pub(crate) out_of_order: u64,
    /// Frames the kernel dropped before the receiving socket (`XDP_STATISTICS`).
    pub(crate) rx_kernel_dropped: u64,
    /// CPU time the transmit threads got (user + system, including the kernel's copy-mode
    /// transmit path run in their syscalls).
    pub(crate) tx_cpu_s: f64,
    /// `tx_packets / tx_cpu_s`: the sender's rate per fully used core.
    pub(crate) tx_mpps_per_core: f64,
    /// CPU time of the receive threads (they busy-poll, so this includes idle polling).
    pub(crate) rx_cpu_s: f64,
    pub(crate) duration_s: f64,
}

pub(super) fn build_report(
    a: &PktgenArgs,
    tx: super::workers::TxResult,
    txc: &[Counters],
    rx: &[RxResult],
    elapsed: Duration,
) -> Report {
    let (tx_sent, tx_cpu_ns) = (tx.sent, tx.cpu_ns);
    let (_, tx_bytes) = total(txc);
    let mut lat = Histogram::default();
    let (mut rx_packets, mut rx_bytes, mut gaps, mut ooo, mut kdrop, mut rx_cpu) =
        (0, 0, 0, 0, 0, 0);
    let (mut first, mut last) = (u64::MAX, 0);
    for r in rx {
        lat.merge(&r.latency);
        rx_packets += r.packets;
        rx_bytes += r.bytes;
        gaps += r.seq_gaps;
        ooo += r.out_of_order;
        kdrop += r.kernel_dropped;
        rx_cpu += r.cpu_ns;
        if r.packets > 0 {
            first = first.min(r.first_ns);
            last = last.max(r.last_ns);
        }
    }
    let sending = a.tx_dev.is_some();
    let receiving = a.rx_dev.is_some();
    let duration = if sending {
        elapsed.as_secs_f64()
    } else if last > first {
        (last - first) as f64 / 1e9
    } else {
        elapsed.as_secs_f64()
    };
    let per_s = |x: u64| {
        if duration > 0.0 {
            x as f64 / duration
        } else {
            0.0
        }
    };
    let loss = match (sending, receiving) {
        (true, true) => Some(tx_sent.saturating_sub(rx_packets)),
        (false, true) => Some(a.count.map_or(gaps, |c| c.saturating_sub(rx_packets))),
        _ => None,
    };
    let (pk, by) = if receiving {
        (rx_packets, rx_bytes)
    } else {
        (tx_sent, tx_bytes)
    };
    let us = |q: f64| {
        lat.quantile(q)
            .map(|ns| (ns as f64 / 1e3 * 100.0).round() / 100.0)
    };
    Report {
        tx_packets: tx_sent,
        rx_packets,
        loss,
        mpps: per_s(pk) / 1e6,
        gbps: per_s((by + 4 * pk) * 8) / 1e9,
        tx_mpps: per_s(tx_sent) / 1e6,
        tx_send_mpps: if tx.send_ns > 0 {
            tx_sent as f64 / (tx.send_ns as f64 / 1e9) / 1e6
        } else {
            0.0
        },
        rx_mpps: per_s(rx_packets) / 1e6,
        min_us: lat
            .min()
            .map(|ns| (ns as f64 / 1e3 * 100.0).round() / 100.0),
        cdf_us: (1..=99)
            .map(|p| f64::from(p) / 100.0)
            .chain([0.999])
            .filter_map(|q| lat.quantile(q).map(|ns| (q, ns as f64 / 1e3)))
            .collect(),
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        out_of_order: ooo,
        rx_kernel_dropped: kdrop,
        tx_cpu_s: tx_cpu_ns as f64 / 1e9,
        tx_mpps_per_core: if tx_cpu_ns > 0 {
            tx_sent as f64 / (tx_cpu_ns as f64 / 1e9) / 1e6
        } else {
            0.0
        },
        rx_cpu_s: rx_cpu as f64 / 1e9,
        duration_s: duration,
    }
}

pub(super) fn print_table(r: &Report) {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    println!("tx_packets    {}", r.tx_packets);
    println!("rx_packets    {}", r.rx_packets);
    println!(
        "loss          {}",
        r.loss.map_or("-".into(), |l| l.to_string())
    );
    println!("duration_s    {:.3}", r.duration_s);
    println!("tx_mpps       {:.3}", r.tx_mpps);
    println!("rx_mpps       {:.3}", r.rx_mpps);
    println!("gbps          {:.3}", r.gbps);
    println!(
        "latency_us    p50 {}  p99 {}  p99.9 {}",
        opt(r.p50_us),
        opt(r.p99_us),
        opt(r.p999_us)
    );
    println!("out_of_order  {}", r.out_of_order);
    println!("rx_kernel_dropped {}", r.rx_kernel_dropped);
    println!(
        "tx_cpu_s      {:.3}  ({:.3} Mpps per core)",
        r.tx_cpu_s, r.tx_mpps_per_core
    );
    println!("rx_cpu_s      {:.3}", r.rx_cpu_s);
}

//! One trial: the AF_XDP generator sends stamped UDP frames from the generator namespace
//! toward the DUT while an AF_XDP receiver in the sink namespace counts the stamped frames
//! that come out (one process: each worker thread enters its own namespace). Loss is sent −
//! received after a short linger for stragglers.

use serde::Serialize;

use super::HarnessError;
use super::topology::{
    DEST_ADDR, DUT_IN_MAC, GEN_ADDR, GEN_IF, GEN_MAC, SINK_IF, Topology, mac_text,
};
use crate::pktgen;

/// What a trial offers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialSpec {
    /// Offered packets per second (0: as fast as the generator goes).
    pub rate_pps: u64,
    /// Send time, seconds.
    pub duration_s: f64,
    /// Frame size with FCS.
    pub frame_bytes: usize,
    /// Flows (source ports 10000, 10001, ...).
    pub flows: usize,
    /// Do not pin the generator's threads.
    pub no_pin: bool,
    /// Generator queues (one sending thread each) and sink queues (one receiving thread
    /// each); the topology's veths need at least as many.
    pub queues: usize,
}

/// What a trial measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialResult {
    /// Offered rate asked for (0: unlimited).
    pub offered_pps: u64,
    /// Frames the generator sent.
    pub tx_packets: u64,
    /// Stamped frames the sink received.
    pub rx_packets: u64,
    /// Rate actually offered, Mpps: packets sent over the sending window.
    pub tx_mpps: f64,
    /// Rate received at the sink (the DUT's forwarding rate), Mpps.
    pub mpps: f64,
    /// `(tx − rx) / tx` (0 when nothing was sent).
    pub loss: f64,
    /// Frames the sink's kernel could not hand to its AF_XDP socket (receiver overrun): loss
    /// that is the measuring end's, not the DUT's.
    pub sink_dropped: u64,
    /// One-way latency, µs (`None` when nothing arrived).
    pub min_us: Option<f64>,
    /// Median one-way latency, µs.
    pub p50_us: Option<f64>,
    /// 99th percentile one-way latency, µs.
    pub p99_us: Option<f64>,
    /// Latency distribution `(fraction, µs)` for the CDF plot (not in the JSON).
    #[serde(skip)]
    pub cdf_us: Vec<(f64, f64)>,
}

/// Loss ratio of `tx` sent and `rx` received (duplicates never make it negative).
pub fn loss_ratio(tx: u64, rx: u64) -> f64 {
    if tx == 0 {
        0.0
    } else {
        tx.saturating_sub(rx) as f64 / tx as f64
    }
}

/// The pktgen options of a trial from namespace `gen_ns` to namespace `sink_ns`.
pub fn pktgen_args(gen_ns: &str, sink_ns: &str, spec: &TrialSpec) -> Vec<String> {
    let flows = spec.flows.clamp(1, 50_000);
    let mut a: Vec<String> = [
        "--tx-dev",
        GEN_IF,
        "--rx-dev",
        SINK_IF,
        "--proto",
        "udp",
        "--src-range",
        GEN_ADDR,
        "--dst-range",
        DEST_ADDR,
        "--dst-port",
        "9",
        "--linger-ms",
        "300",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend([
        "--tx-netns".into(),
        Topology::ns_path(gen_ns).display().to_string(),
        "--rx-netns".into(),
        Topology::ns_path(sink_ns).display().to_string(),
        "--src-port".into(),
        format!("10000-{}", 10_000 + flows - 1),
        "--flows".into(),
        flows.to_string(),
        "--src-mac".into(),
        mac_text(GEN_MAC),
        "--dst-mac".into(),
        mac_text(DUT_IN_MAC),
        "--frame-size".into(),
        spec.frame_bytes.to_string(),
        "--rate".into(),
        spec.rate_pps.to_string(),
        "--duration".into(),
        format!("{}", spec.duration_s),
    ]);
    if spec.no_pin {
        a.push("--no-pin".into());
    }
    a.extend(["--queues".into(), spec.queues.max(1).to_string()]);
    a
}

/// Run one trial through `topo`.
pub fn run(topo: &Topology, spec: &TrialSpec) -> Result<TrialResult, HarnessError> {
    let args = pktgen::parse_args(&pktgen_args(&topo.gen_ns, &topo.sink_ns, spec))
        .map_err(|e| HarnessError::Trial(format!("{e:#}")))?;
    let r = pktgen::measure(&args).map_err(|e| HarnessError::Trial(format!("{e:#}")))?;
    Ok(TrialResult {
        offered_pps: spec.rate_pps,
        tx_packets: r.tx_packets,
        rx_packets: r.rx_packets,
        tx_mpps: r.tx_send_mpps,
        mpps: r.rx_mpps,
        loss: loss_ratio(r.tx_packets, r.rx_packets),
        sink_dropped: r.rx_kernel_dropped,
        min_us: r.min_us,
        p50_us: r.p50_us,
        p99_us: r.p99_us,
        cdf_us: r.cdf_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_ratio_is_bounded() {
        assert_eq!(loss_ratio(0, 0), 0.0);
        assert_eq!(loss_ratio(100, 90), 0.1);
        assert_eq!(loss_ratio(100, 120), 0.0);
    }

    #[test]
    fn trial_options_are_valid_pktgen_options() {
        let spec = TrialSpec {
            rate_pps: 250_000,
            duration_s: 1.5,
            frame_bytes: 64,
            flows: 256,
            no_pin: true,
            queues: 2,
        };
        let args = pktgen_args("g", "s", &spec);
        pktgen::parse_args(&args).expect("pktgen accepts the trial's options");
        let joined = args.join(" ");
        assert!(joined.contains("--src-port 10000-10255"), "{joined}");
        assert!(joined.contains("--tx-netns /run/netns/g --rx-netns /run/netns/s"));
        assert!(joined.contains("--dst-mac 02:00:00:00:01:02"), "{joined}");
        assert!(joined.ends_with("--queues 2"), "{joined}");
    }
}

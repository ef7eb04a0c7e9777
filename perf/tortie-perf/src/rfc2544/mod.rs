//! `tortie-perf rfc2544`: RFC 2544 throughput (section 26.1) and latency (section 26.2)
//! through a device under test the harness builds itself (generator → DUT → sink namespaces).
//!
//! Throughput: a binary search on the offered rate for the highest rate whose trial loses at
//! most `--loss-tolerance` of the frames and was really offered (the generator reached 97% of
//! it) ([`search`]); the first trial runs at the generator's full rate to find the ceiling,
//! and if the ceiling passes as a paced rate the result is flagged `at_generator_ceiling` (a
//! lower bound). Latency: one trial at `--latency-fraction` of the
//! found rate; every frame carries a CLOCK_MONOTONIC transmit stamp, so each one is a probe,
//! and min/median/p99 one-way latency come from all of them. Deviations from the RFC: trials
//! default to 2 s rather than 60 s (`--trial-s`), and latency is one-way over all frames of
//! one trial rather than 20 tagged frames in 20 trials.

pub mod search;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::classify::Output;
use crate::dut::trial::{self, TrialResult, TrialSpec};
use crate::dut::{Dut, DutOptions, HarnessError, Scenario, System};
use search::{Outcome, Probe, SearchConfig, Step};

/// Arguments of `rfc2544`.
#[derive(Debug, Args)]
pub struct Rfc2544Args {
    /// The device under test.
    #[arg(long, value_enum, default_value = "kernel")]
    system: System,
    /// Policy rules (tortie), linear rules (kernel-iptables/-nftables) or ipset entries
    /// (kernel-ct-ipset).
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// Frame sizes with FCS, comma-separated; each gets its own search.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    frame_size: Vec<usize>,
    /// Seconds per trial.
    #[arg(long, default_value_t = 2.0)]
    trial_s: f64,
    /// Highest loss fraction a passing trial may have (0: zero loss).
    #[arg(long, default_value_t = 0.0)]
    loss_tolerance: f64,
    /// Search resolution, as a fraction of the rate.
    #[arg(long, default_value_t = 0.02)]
    resolution: f64,
    /// Most trials per search.
    #[arg(long, default_value_t = 14)]
    max_trials: usize,
    /// Lowest rate searched, packets/s.
    #[arg(long, default_value_t = 1000)]
    min_rate: u64,
    /// Latency trial rate as a fraction of the throughput found.
    #[arg(long, default_value_t = 0.9)]
    latency_fraction: f64,
    /// Flows (distinct source ports).
    #[arg(long, default_value_t = 256)]
    flows: usize,
    /// tortie-fastpath binary (default: next to this executable, else on PATH).
    #[arg(long)]
    fastpath_bin: Option<std::path::PathBuf>,
    /// tortie-fastpath `--mode`.
    #[arg(long, default_value = "adaptive")]
    fastpath_mode: String,
    /// Do not pin the generator's threads.
    #[arg(long)]
    no_pin: bool,
    /// A smoke run: trials of 0.5 s, at most 6 per search, 10 % resolution (overrides
    /// `--trial-s`, `--max-trials` and `--resolution`); reported as quick.
    #[arg(long)]
    quick: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
}

/// Result for one frame size.
#[derive(Debug, Serialize)]
pub struct SizeResult {
    /// Frame size with FCS.
    pub frame_bytes: usize,
    /// The search.
    #[serde(flatten)]
    pub throughput: Outcome,
    /// Throughput in Mpps (offered rate of the best passing trial).
    pub throughput_mpps: Option<f64>,
    /// The latency trial (absent when no rate passed).
    pub latency: Option<TrialResult>,
}

/// The JSON report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// System name.
    pub system: &'static str,
    /// Rules.
    pub rules: usize,
    /// Loss tolerance.
    pub loss_tolerance: f64,
    /// Seconds per trial.
    pub trial_s: f64,
    /// Whether this was a `--quick` run.
    pub quick: bool,
    /// One entry per frame size.
    pub results: Vec<SizeResult>,
}

fn print_step(size: usize, s: &Step) {
    let offered = if s.offered_pps == 0 {
        "   max".to_string()
    } else {
        format!("{:6.4}", s.offered_pps as f64 / 1e6)
    };
    eprintln!(
        "rfc2544 {size}B: offered {offered} Mpps  sent {:6.4}  received {:6.4}  loss {:7.3}%  {}",
        s.probe.tx_pps / 1e6,
        s.probe.rx_pps / 1e6,
        s.probe.loss * 100.0,
        if s.pass { "pass" } else { "fail" }
    );
}

/// Run `rfc2544`.
pub fn run(a: &Rfc2544Args) -> anyhow::Result<()> {
    let (trial_s, max_trials, resolution) = if a.quick {
        (0.5, 6, 0.1)
    } else {
        (a.trial_s, a.max_trials, a.resolution)
    };
    if a.quick {
        eprintln!("rfc2544: quick run: trials of {trial_s} s, at most {max_trials} per search");
    }
    if !(trial_s > 0.0 && trial_s <= 600.0) {
        anyhow::bail!("--trial-s: {trial_s} is not in (0, 600]");
    }
    if !(0.0..1.0).contains(&a.loss_tolerance) {
        anyhow::bail!("--loss-tolerance: {} is not in [0, 1)", a.loss_tolerance);
    }
    if !(a.latency_fraction > 0.0 && a.latency_fraction <= 1.0) {
        anyhow::bail!(
            "--latency-fraction: {} is not in (0, 1]",
            a.latency_fraction
        );
    }
    let scenario = Scenario {
        system: a.system,
        rules: if a.system.uses_rules() { a.rules } else { 0 },
    };
    let opts = DutOptions {
        fastpath_bin: a.fastpath_bin.clone(),
        fastpath_mode: a.fastpath_mode.clone(),
        workers: 1,
        fastpath_extra: Vec::new(),
    };
    let dut = match Dut::build(scenario, "r", &opts) {
        Ok(d) => d,
        Err(HarnessError::Unavailable(why)) => {
            anyhow::bail!("{} is unavailable: {why}", scenario.label())
        }
        Err(e) => return Err(e).context("building the device under test"),
    };
    let cfg = SearchConfig {
        loss_tolerance: a.loss_tolerance,
        resolution: resolution.clamp(1e-4, 0.5),
        max_trials: max_trials.max(2),
        min_pps: a.min_rate.max(1),
        min_offered_share: 0.97,
    };
    let mut results = Vec::new();
    for &size in &a.frame_size {
        let spec = |rate: u64, duration_s: f64| TrialSpec {
            rate_pps: rate,
            duration_s,
            frame_bytes: size,
            flows: a.flows,
            no_pin: a.no_pin,
            queues: 1,
        };
        let outcome = search::search(
            &cfg,
            |rate| {
                trial::run(&dut.topo, &spec(rate, trial_s)).map(|r| Probe {
                    loss: r.loss,
                    tx_pps: r.tx_mpps * 1e6,
                    rx_pps: r.mpps * 1e6,
                })
            },
            |s| print_step(size, s),
        )
        .with_context(|| format!("searching at {size} bytes"))?;
        let latency = match outcome.throughput_pps {
            Some(t) if t > 0 => {
                let rate = ((t as f64 * a.latency_fraction) as u64).max(1);
                let r = trial::run(&dut.topo, &spec(rate, trial_s))
                    .with_context(|| format!("latency trial at {size} bytes"))?;
                eprintln!(
                    "rfc2544 {size}B: latency at {:.4} Mpps: min {} p50 {} p99 {} µs, loss {:.3}%",
                    rate as f64 / 1e6,
                    r.min_us.unwrap_or(f64::NAN),
                    r.p50_us.unwrap_or(f64::NAN),
                    r.p99_us.unwrap_or(f64::NAN),
                    r.loss * 100.0
                );
                Some(r)
            }
            _ => None,
        };
        results.push(SizeResult {
            frame_bytes: size,
            throughput_mpps: outcome.throughput_pps.map(|p| p as f64 / 1e6),
            throughput: outcome,
            latency,
        });
    }
    drop(dut);
    let report = Report {
        system: a.system.name(),
        rules: scenario.rules,
        loss_tolerance: a.loss_tolerance,
        trial_s,
        quick: a.quick,
        results,
    };
    match a.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Table => {
            if report.quick {
                println!("QUICK RUN (trials of {} s; a smoke figure)", report.trial_s);
            }
            println!(
                "system {} rules {} loss tolerance {}",
                report.system, report.rules, report.loss_tolerance
            );
            for r in &report.results {
                let lat = r.latency.as_ref();
                println!(
                    "{} B: throughput {} Mpps{}  latency min/p50/p99 {} / {} / {} µs",
                    r.frame_bytes,
                    r.throughput_mpps.map_or("-".into(), |m| format!("{m:.4}")),
                    if r.throughput.at_generator_ceiling {
                        " (at the generator's ceiling: at least)"
                    } else {
                        ""
                    },
                    lat.and_then(|l| l.min_us)
                        .map_or("-".into(), |v| format!("{v:.1}")),
                    lat.and_then(|l| l.p50_us)
                        .map_or("-".into(), |v| format!("{v:.1}")),
                    lat.and_then(|l| l.p99_us)
                        .map_or("-".into(), |v| format!("{v:.1}")),
                );
            }
        }
    }
    Ok(())
}

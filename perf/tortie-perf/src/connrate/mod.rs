//! `tortie-perf connrate`: new TCP connections per second through a device under test.
//!
//! Every connection is a full handshake, one request byte and one response byte, and a
//! teardown (the server closes first) through the DUT's conntrack and policy in both
//! directions. The end hosts are, by default, smoltcp on AF_XDP sockets in the generator and
//! sink namespaces, one thread for both ([`smol`]): light enough that the device under test,
//! not the end hosts' kernels, is what limits the rate. `--endpoints kernel` uses kernel
//! sockets instead ([`kernel`]: client threads and acceptor threads). Systems are interleaved
//! per round as in `compare`; the figure is completed connections per second (median over
//! rounds) with connect-to-response latency percentiles.

mod client;
mod conn;
mod kernel;
mod load;
#[cfg(test)]
mod memory_tests;
mod server;
mod smol;
mod wire;
mod xskdev;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::classify::Output;
use crate::compare::stats::{Ratio, median};
use crate::compare::{FastpathCounters, Unavailable};
use crate::dut::{Dut, DutOptions, HarnessError, Scenario, System};
pub use load::EndHostLoad;

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
    /// Connections in flight: smoltcp sockets (default 64), or client threads with one
    /// connection each for `--endpoints kernel` (default 8).
    #[arg(long)]
    concurrency: Option<usize>,
    /// End hosts: smoltcp on AF_XDP, or the namespaces' kernel sockets.
    #[arg(long, value_enum, default_value = "smoltcp")]
    endpoints: Endpoints,
    /// Conntrack capacity per tortie-fastpath worker (every connection of a run leaves an
    /// entry until it expires).
    #[arg(long, default_value_t = 262_144)]
    conntrack_capacity: usize,
    /// tortie-fastpath binary (default: next to this executable, else on PATH).
    #[arg(long)]
    fastpath_bin: Option<PathBuf>,
    /// tortie-fastpath `--mode`.
    #[arg(long, default_value = "adaptive")]
    fastpath_mode: String,
    /// tortie-fastpath `--worker-rt-priority`: run its worker under SCHED_FIFO at this
    /// priority, so that, like the kernel's softirq, it pre-empts other work on its core
    /// (docs/perf/node.md, "connrate"). Default: an ordinary task, as the daemon defaults.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=99))]
    fastpath_rt_priority: Option<u8>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
}

/// Which end hosts open the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoints {
    /// smoltcp client and server on AF_XDP sockets, one thread for both.
    Smoltcp,
    /// Kernel sockets: client threads in the generator namespace, acceptors in the sink's.
    Kernel,
}

impl Endpoints {
    /// Default connections in flight.
    pub fn default_concurrency(self) -> usize {
        match self {
            Endpoints::Smoltcp => 64,
            Endpoints::Kernel => 8,
        }
    }
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
    /// How the smoltcp end hosts' thread spent the trial (null for kernel end hosts).
    pub end_hosts: Option<EndHostLoad>,
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
    /// Median share of each trial the smoltcp end hosts were busy ([`EndHostLoad`]); null
    /// for kernel end hosts.
    pub end_hosts_busy_share: Option<f64>,
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
    /// tortie-fastpath's own counters at the end of the run (workers, drops by reason).
    pub fastpath_counters: Vec<FastpathCounters>,
    /// Connections in flight (smoltcp sockets or client threads).
    pub concurrency: usize,
    /// Which end hosts opened them.
    pub endpoints: Endpoints,
    /// Seconds per trial.
    pub trial_s: f64,
    /// tortie-fastpath's `--worker-rt-priority`, if it was given one.
    pub fastpath_rt_priority: Option<u8>,
}

/// tortie-fastpath arguments beyond the harness's own: the conntrack capacity and, if asked,
/// the worker's real-time priority.
fn fastpath_extra(conntrack_capacity: usize, rt_priority: Option<u8>) -> Vec<String> {
    let mut v = vec![
        "--conntrack-capacity".to_string(),
        conntrack_capacity.to_string(),
    ];
    if let Some(p) = rt_priority {
        v.extend(["--worker-rt-priority".to_string(), p.to_string()]);
    }
    v
}

/// Run `connrate`.
pub fn run(a: &ConnrateArgs) -> anyhow::Result<()> {
    let concurrency = a
        .concurrency
        .unwrap_or_else(|| a.endpoints.default_concurrency());
    if a.trials == 0 || !(a.trial_s > 0.0 && a.trial_s <= 600.0) || concurrency == 0 {
        anyhow::bail!("--trials and --concurrency must be >= 1 and --trial-s in (0, 600]");
    }
    let opts = DutOptions {
        fastpath_bin: a.fastpath_bin.clone(),
        fastpath_mode: a.fastpath_mode.clone(),
        workers: 1,
        fastpath_extra: fastpath_extra(a.conntrack_capacity, a.fastpath_rt_priority),
    };
    let mut duts = Vec::new();
    let mut unavailable = Vec::new();
    for (i, &system) in a.systems.iter().enumerate() {
        let sc = Scenario {
            system,
            rules: if system.uses_rules() { a.rules } else { 0 },
        };
        match Dut::build(sc, &format!("t{i}"), &opts) {
            Ok(d) => {
                let smol = match a.endpoints {
                    Endpoints::Kernel => {
                        d.topo
                            .end_hosts_full_checksums()
                            .with_context(|| format!("end hosts of {}", sc.label()))?;
                        None
                    }
                    Endpoints::Smoltcp => match smol::SmolEndpoints::start(&d.topo) {
                        Ok(ends) => Some(ends),
                        // No AF_XDP here: say so, as for a system that cannot run.
                        Err(HarnessError::Unavailable(why)) => {
                            eprintln!("connrate: {} end hosts unavailable: {why}", sc.label());
                            unavailable.push(Unavailable {
                                system: sc.system.name(),
                                rules: sc.rules,
                                reason: format!("smoltcp end hosts: {why}"),
                            });
                            continue;
                        }
                        Err(e) => {
                            return Err(e).with_context(|| format!("end hosts of {}", sc.label()));
                        }
                    },
                };
                // Dropped before the DUT (its sockets are on the DUT's veths).
                duts.push((smol, d));
            }
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
    duts.iter().for_each(|(_, d)| d.pause());
    let mut results: HashMap<Scenario, Vec<ConnTrial>> = HashMap::new();
    for round in 0..a.trials {
        for (smol, d) in &duts {
            d.resume();
            let duration = Duration::from_secs_f64(a.trial_s);
            let t = match smol {
                Some(ends) => ends.trial(duration, concurrency),
                None => kernel::trial(&d.topo, duration, concurrency),
            };
            d.pause();
            let t = t.with_context(|| format!("round {} of {}", round + 1, d.scenario.label()))?;
            eprintln!(
                "[round {}/{}] {:<24} {:9.0} conn/s  failures {}  p50 {} µs{}",
                round + 1,
                a.trials,
                d.scenario.label(),
                t.per_s,
                t.failures,
                t.p50_us.map_or("-".into(), |v| format!("{v:.0}")),
                t.end_hosts.map_or(String::new(), |e| format!(
                    "  end hosts busy {:.0}% ({:.1} µs stack + {:.1} µs sendto per conn)",
                    e.busy_share * 100.0,
                    e.stack_us_per_conn,
                    e.send_us_per_conn
                ))
            );
            results.entry(d.scenario).or_default().push(t);
        }
    }
    let fastpath_counters: Vec<FastpathCounters> = duts
        .iter()
        .filter_map(|(_, d)| {
            d.resume();
            Some(FastpathCounters {
                system: d.scenario.system.name(),
                rules: d.scenario.rules,
                counters: d.fastpath_counters()?,
            })
        })
        .collect();
    for c in &fastpath_counters {
        eprintln!(
            "connrate: {}@{} fastpath drops by reason: {}",
            c.system, c.rules, c.counters["drops_by_reason"]
        );
    }
    let scenarios: Vec<Scenario> = duts.iter().map(|(_, d)| d.scenario).collect();
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
                end_hosts_busy_share: col(|t| t.end_hosts.map(|e| e.busy_share)),
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
        fastpath_counters,
        concurrency,
        endpoints: a.endpoints,
        trial_s: a.trial_s,
        fastpath_rt_priority: a.fastpath_rt_priority,
    };
    match a.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Table => {
            println!(
                "| system | rules | conn/s median | failures | p50 µs | p99 µs | end hosts busy |"
            );
            println!("|---|---|---|---|---|---|---|");
            for r in &report.runs {
                let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
                println!(
                    "| {} | {} | {:.0} | {} | {} | {} | {} |",
                    r.system,
                    r.rules,
                    r.conns_per_s,
                    r.failures,
                    f(r.p50_us),
                    f(r.p99_us),
                    r.end_hosts_busy_share
                        .map_or("-".into(), |b| format!("{:.0}%", b * 100.0))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastpath_gets_the_rt_priority_only_when_asked() {
        assert_eq!(fastpath_extra(1024, None), ["--conntrack-capacity", "1024"]);
        assert_eq!(
            fastpath_extra(1024, Some(1)),
            ["--conntrack-capacity", "1024", "--worker-rt-priority", "1"]
        );
    }
}

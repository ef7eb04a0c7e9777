//! `tortie-perf compare`: several systems measured side by side in one run, trials
//! interleaved (A B C D E A B C D E ...) so drifting load on a shared machine hits every
//! system alike. Each system gets its own generator → DUT → sink topology, built once; each
//! trial sends 64-byte UDP (by default) at the generator's full rate for a fixed time and
//! counts what reaches the sink (the forwarding rate under overload, as in the project's
//! reference method). Medians over trials, ratios against kernel forwarding and the node
//! issue's targets, JSON and SVG plots.

pub mod png;
pub mod stats;
pub mod svg;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::classify::Output;
use crate::dut::trial::{self, TrialResult, TrialSpec};
use crate::dut::{Dut, DutOptions, HarnessError, Scenario, System};
use stats::{Ratio, Summary, ratios, summarise};

/// Arguments of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Systems to compare (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tortie,tortie-bypass,kernel,kernel-ct-ipset,kernel-iptables"
    )]
    systems: Vec<System>,
    /// Policy rules for tortie, linear rules for kernel-iptables/-nftables, ipset entries for
    /// kernel-ct-ipset.
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// Extra rule counts measured in the same interleaving for every system that has rules
    /// (tortie policy rules, linear iptables/nftables rules, ipset entries), comma-separated
    /// (`""` or `none`: no sweep). Default `10,1000,10000`; `10` with `--quick`.
    #[arg(long, value_parser = parse_counts)]
    sweep: Option<Counts>,
    /// Interleaved rounds (each runs every scenario once).
    #[arg(long, default_value_t = 3)]
    trials: usize,
    /// Seconds of traffic per trial.
    #[arg(long, default_value_t = 3.0)]
    trial_s: f64,
    /// Offered rate, packets/s (0: the generator's maximum).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Frame size with FCS.
    #[arg(long, default_value_t = 64)]
    frame_size: usize,
    /// Flows (distinct source ports).
    #[arg(long, default_value_t = 256)]
    flows: usize,
    /// The whole comparison in well under two minutes: two rounds of one second each and a
    /// sweep of `10` only (unless `--sweep` is given); reported as a quick run.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON report; the plots go beside it (`NAME-modes.svg`,
    /// `NAME-rules.svg`, `NAME-latency.svg`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// tortie-fastpath binary (default: next to this executable, else on PATH).
    #[arg(long)]
    fastpath_bin: Option<PathBuf>,
    /// tortie-fastpath `--mode`.
    #[arg(long, default_value = "adaptive")]
    fastpath_mode: String,
    /// Do not pin the generator's threads.
    #[arg(long)]
    no_pin: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
}

/// A comma-separated list of counts (`--sweep`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts(pub Vec<usize>);

/// Parse `10,1000,10000`; empty or `none` is no counts.
pub fn parse_counts(s: &str) -> Result<Counts, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(Counts(Vec::new()));
    }
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|e| format!("{p:?} is not a rule count: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Counts)
}

/// A scenario that could not run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Unavailable {
    /// System name.
    pub system: &'static str,
    /// Rules.
    pub rules: usize,
    /// Why.
    pub reason: String,
}

/// A tortie scenario's daemon counters.
#[derive(Debug, Clone, Serialize)]
pub struct FastpathCounters {
    /// System name.
    pub system: &'static str,
    /// Rules.
    pub rules: usize,
    /// `workers` and `drops_by_reason` from the status file.
    pub counters: serde_json::Value,
}

impl Unavailable {
    /// `system` or `system@rules`.
    pub fn label(&self) -> String {
        if self.rules > 0 {
            format!("{}@{}", self.system, self.rules)
        } else {
            self.system.to_string()
        }
    }
}

/// One trial in the order it ran.
#[derive(Debug, Clone, Serialize)]
pub struct TrialRecord {
    /// Round (0-based).
    pub round: usize,
    /// System name.
    pub system: &'static str,
    /// Rules.
    pub rules: usize,
    /// What it measured.
    #[serde(flatten)]
    pub result: TrialResult,
}

/// The JSON report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Medians per scenario.
    pub runs: Vec<Summary>,
    /// Ratios of medians with their targets.
    pub ratios: Vec<Ratio>,
    /// Scenarios that could not run.
    pub unavailable: Vec<Unavailable>,
    /// Every trial.
    pub trials: Vec<TrialRecord>,
    /// tortie-fastpath's own counters at the end of the run (workers, drops by reason), per
    /// tortie scenario: where its losses went.
    pub fastpath_counters: Vec<FastpathCounters>,
    /// The run's parameters and the machine's load.
    pub setup: Setup,
}

/// Parameters and load, so a figure can be judged.
#[derive(Debug, Serialize)]
pub struct Setup {
    /// Whether this was a `--quick` run (fewer, shorter trials: a smoke figure).
    pub quick: bool,
    /// Wall-clock seconds of the whole run, building and tearing down included.
    pub elapsed_s: f64,
    /// Rounds.
    pub rounds: usize,
    /// Seconds per trial.
    pub trial_s: f64,
    /// Offered rate (0: generator maximum).
    pub rate_pps: u64,
    /// Frame size.
    pub frame_bytes: usize,
    /// Flows.
    pub flows: usize,
    /// Online CPUs.
    pub cpus: usize,
    /// `/proc/loadavg` at the start.
    pub loadavg_start: String,
    /// `/proc/loadavg` at the end.
    pub loadavg_end: String,
}

/// Rounds of a `--quick` run.
pub const QUICK_ROUNDS: usize = 2;
/// Seconds per trial of a `--quick` run.
pub const QUICK_TRIAL_S: f64 = 1.0;

/// The rule-count sweep when `--sweep` is not given.
pub fn default_sweep(quick: bool) -> Counts {
    Counts(if quick {
        vec![10]
    } else {
        vec![10, 1000, 10_000]
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The scenarios of a run: each system at `rules`, then every system that has rules at each
/// sweep size (so the rules plot has a line per system), without duplicates.
pub fn scenarios(systems: &[System], rules: usize, sweep: &[usize]) -> Vec<Scenario> {
    let mut out: Vec<Scenario> = Vec::new();
    let mut push = |sc: Scenario| {
        if !out.contains(&sc) {
            out.push(sc);
        }
    };
    for &system in systems {
        push(Scenario {
            system,
            rules: if system.uses_rules() { rules } else { 0 },
        });
    }
    for &r in sweep {
        for &system in systems.iter().filter(|s| s.uses_rules()) {
            push(Scenario { system, rules: r });
        }
    }
    out
}

/// Run `compare`.
pub fn run(a: &CompareArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (rounds, trial_s) = if a.quick {
        (QUICK_ROUNDS, QUICK_TRIAL_S)
    } else {
        (a.trials, a.trial_s)
    };
    let sweep = a.sweep.clone().unwrap_or_else(|| default_sweep(a.quick));
    if a.quick {
        eprintln!(
            "compare: quick run: {rounds} rounds of {trial_s} s, sweep {:?}",
            sweep.0
        );
    }
    if rounds == 0 || !(trial_s > 0.0 && trial_s <= 600.0) {
        anyhow::bail!("--trials must be >= 1 and --trial-s in (0, 600]");
    }
    let opts = DutOptions {
        fastpath_bin: a.fastpath_bin.clone(),
        fastpath_mode: a.fastpath_mode.clone(),
        workers: 1,
        fastpath_extra: Vec::new(),
    };
    let loadavg_start = loadavg();
    let mut duts: Vec<Dut> = Vec::new();
    let mut unavailable = Vec::new();
    for (i, sc) in scenarios(&a.systems, a.rules, &sweep.0)
        .into_iter()
        .enumerate()
    {
        eprintln!("compare: building {}", sc.label());
        match Dut::build(sc, &format!("c{i}"), &opts) {
            Ok(d) => duts.push(d),
            Err(HarnessError::Unavailable(reason)) => {
                eprintln!("compare: {} unavailable: {reason}", sc.label());
                unavailable.push(Unavailable {
                    system: sc.system.name(),
                    rules: sc.rules,
                    reason,
                });
            }
            Err(e) => return Err(e).with_context(|| format!("building {}", sc.label())),
        }
    }
    let spec = TrialSpec {
        rate_pps: a.rate,
        duration_s: trial_s,
        frame_bytes: a.frame_size,
        flows: a.flows,
        no_pin: a.no_pin,
        queues: 1,
    };
    duts.iter().for_each(Dut::pause);
    let mut records = Vec::new();
    let mut by_scenario: HashMap<Scenario, Vec<TrialResult>> = HashMap::new();
    for round in 0..rounds {
        for d in &duts {
            d.resume();
            let r = trial::run(&d.topo, &spec);
            d.pause();
            let r = r.with_context(|| format!("round {} of {}", round + 1, d.scenario.label()))?;
            eprintln!(
                "[round {}/{rounds}] {:<22} tx {:7.4} Mpps  fwd {:7.4} Mpps  loss {:6.2}%  p50 {} µs",
                round + 1,
                d.scenario.label(),
                r.tx_mpps,
                r.mpps,
                r.loss * 100.0,
                r.p50_us.map_or("-".into(), |v| format!("{v:.1}"))
            );
            by_scenario.entry(d.scenario).or_default().push(r.clone());
            records.push(TrialRecord {
                round,
                system: d.scenario.system.name(),
                rules: d.scenario.rules,
                result: r,
            });
        }
    }
    duts.iter().for_each(Dut::resume);
    let fastpath_counters: Vec<FastpathCounters> = duts
        .iter()
        .filter_map(|d| {
            Some(FastpathCounters {
                system: d.scenario.system.name(),
                rules: d.scenario.rules,
                counters: d.fastpath_counters()?,
            })
        })
        .collect();
    // Tear down before writing: the namespaces and daemons go now.
    drop(duts);
    let runs: Vec<Summary> = scenarios(&a.systems, a.rules, &sweep.0)
        .into_iter()
        .filter_map(|sc| {
            summarise(
                sc,
                a.frame_size,
                by_scenario.get(&sc).map_or(&[][..], Vec::as_slice),
            )
        })
        .collect();
    let mut report = Report {
        ratios: ratios(&runs, a.rules, &sweep.0),
        runs,
        unavailable,
        trials: records,
        fastpath_counters,
        setup: Setup {
            quick: a.quick,
            elapsed_s: 0.0,
            rounds,
            trial_s,
            rate_pps: a.rate,
            frame_bytes: a.frame_size,
            flows: a.flows,
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            loadavg_start,
            loadavg_end: loadavg(),
        },
    };
    report.setup.elapsed_s = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &a.out {
        write_outputs(path, &json, &report)?;
    }
    match a.output {
        Output::Json => println!("{json}"),
        Output::Table => print_table(&report),
    }
    Ok(())
}

/// Write the JSON to `path` and the two plots beside it.
fn write_outputs(path: &std::path::Path, json: &str, report: &Report) -> anyhow::Result<()> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("compare");
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    let title = format!(
        "{}-byte UDP forwarding, median of {} interleaved trials",
        report.setup.frame_bytes, report.setup.rounds
    );
    let modes = dir.join(format!("{stem}-modes.svg"));
    std::fs::write(&modes, svg::bar_chart(&title, &report.runs))
        .with_context(|| format!("writing {}", modes.display()))?;
    let rules = dir.join(format!("{stem}-rules.svg"));
    std::fs::write(
        &rules,
        svg::rules_chart("Throughput against policy rule count", &report.runs),
    )
    .with_context(|| format!("writing {}", rules.display()))?;
    let latency = dir.join(format!("{stem}-latency.svg"));
    std::fs::write(
        &latency,
        svg::latency_cdf(
            "One-way latency CDF (median-rate trial, under full load)",
            &report.runs,
        ),
    )
    .with_context(|| format!("writing {}", latency.display()))?;
    let rules_png = dir.join(format!("{stem}-rules.png"));
    let bytes = png::rules_chart("Forwarding rate against rule count", &report.runs)?;
    std::fs::write(&rules_png, bytes)
        .with_context(|| format!("writing {}", rules_png.display()))?;
    let latency_png = dir.join(format!("{stem}-latency.png"));
    let bytes = png::latency_cdf(
        "One-way latency CDF (median-rate trial, under full load)",
        &report.runs,
    )?;
    std::fs::write(&latency_png, bytes)
        .with_context(|| format!("writing {}", latency_png.display()))?;
    eprintln!(
        "compare: wrote {}, {}, {}, {}, {}, {}",
        path.display(),
        modes.display(),
        rules.display(),
        latency.display(),
        rules_png.display(),
        latency_png.display()
    );
    Ok(())
}

fn print_table(r: &Report) {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    if r.setup.quick {
        println!(
            "QUICK RUN ({} rounds of {} s; a smoke figure, not a measurement)\n",
            r.setup.rounds, r.setup.trial_s
        );
    }
    println!(
        "| system | rules | trials | fwd Mpps median [min–max] | offered Mpps | loss | p50 µs | p99 µs |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for s in &r.runs {
        println!(
            "| {} | {} | {} | {:.4} [{:.4}–{:.4}] | {:.4} | {:.1}% | {} | {} |",
            s.system,
            s.rules,
            s.trials,
            s.mpps,
            s.mpps_min,
            s.mpps_max,
            s.tx_mpps,
            s.loss * 100.0,
            opt(s.p50_us),
            opt(s.p99_us)
        );
    }
    println!();
    for x in &r.ratios {
        let v = x.value.map_or("-".into(), |v| format!("{v:.3}"));
        let t = x.target.map_or(String::new(), |t| {
            format!(
                " (target >= {t}: {})",
                match x.met {
                    Some(true) => "met",
                    Some(false) => "not met",
                    None => "not measured",
                }
            )
        });
        println!("{:<36} {v}{t}", x.name);
    }
    for u in &r.unavailable {
        println!("unavailable: {}: {}", u.label(), u.reason);
    }
    println!(
        "load average {} -> {} on {} CPUs; {:.1} s in all{}",
        r.setup.loadavg_start,
        r.setup.loadavg_end,
        r.setup.cpus,
        r.setup.elapsed_s,
        if r.setup.quick { " (quick)" } else { "" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_add_the_sweep_without_duplicates() {
        let s = scenarios(
            &[System::Tortie, System::Kernel, System::KernelIptables],
            1000,
            &[10, 1000, 10000],
        );
        let labels: Vec<String> = s.iter().map(Scenario::label).collect();
        assert_eq!(
            labels,
            [
                "tortie@1000",
                "kernel",
                "kernel-iptables@1000",
                "tortie@10",
                "kernel-iptables@10",
                "tortie@10000",
                "kernel-iptables@10000"
            ]
        );
        assert_eq!(parse_counts(" ").unwrap(), Counts(vec![]));
        assert_eq!(parse_counts("none").unwrap(), Counts(vec![]));
        assert_eq!(parse_counts("10, 20").unwrap(), Counts(vec![10, 20]));
        assert!(parse_counts("10,x").unwrap_err().contains("\"x\""));
        assert_eq!(default_sweep(true), Counts(vec![10]));
        assert_eq!(default_sweep(false), Counts(vec![10, 1000, 10_000]));
        // No system with rules, no sweep.
        assert_eq!(scenarios(&[System::Kernel], 5, &[10]).len(), 1);
    }
}

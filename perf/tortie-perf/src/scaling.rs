//! `tortie-perf scaling`: forwarding rate against the number of workers.
//!
//! For each system and each worker count W, a generator → DUT → sink topology whose veths all
//! have W queues: tortie-fastpath runs `--workers W` (worker k serves queue k of every
//! interface), the kernel systems get RPS on each queue, and the generator sends from W
//! threads, one per queue (a veth delivers a frame sent on queue k to its peer's queue k, so
//! each worker gets its own share). Trials are interleaved across every (system, W) as in
//! `compare`; the report gives medians and each system's speed-up over its smallest W.
//!
//! The figures are bounded by the machine: with C cores, the generator's W threads, the
//! sink's W threads and the DUT's W workers share them, so W beyond C/3 measures contention,
//! not scaling. The report states the core count and flags counts that oversubscribe it.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::classify::Output;
use crate::compare::Unavailable;
use crate::compare::stats::{Summary, summarise};
use crate::dut::trial::{self, TrialResult, TrialSpec};
use crate::dut::{Dut, DutOptions, HarnessError, Scenario, System};

/// Arguments of `scaling`.
#[derive(Debug, Args)]
pub struct ScalingArgs {
    /// Worker counts (comma-separated), e.g. `1,2,4,8` on a machine with many cores.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    workers: Vec<usize>,
    /// Systems (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "tortie,kernel")]
    systems: Vec<System>,
    /// Policy rules (tortie), linear rules or ipset entries (kernel systems with rules).
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// Interleaved rounds.
    #[arg(long, default_value_t = 3)]
    trials: usize,
    /// Seconds of traffic per trial.
    #[arg(long, default_value_t = 2.0)]
    trial_s: f64,
    /// Two rounds of one second each.
    #[arg(long)]
    quick: bool,
    /// Frame size with FCS.
    #[arg(long, default_value_t = 64)]
    frame_size: usize,
    /// Flows (distinct source ports).
    #[arg(long, default_value_t = 256)]
    flows: usize,
    /// Where to write the JSON report; the plot goes beside it (`NAME.png`).
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

/// One (system, workers) result.
#[derive(Debug, Serialize)]
pub struct ScalingRun {
    /// Workers (and queues per veth, and generator threads).
    pub workers: usize,
    /// Median forwarded Mpps over the system's smallest worker count's.
    pub speedup: Option<f64>,
    /// Whether generator, sink and DUT threads outnumber the cores (3 × workers > cores).
    pub oversubscribed: bool,
    /// The medians.
    #[serde(flatten)]
    pub summary: Summary,
}

/// The JSON report.
#[derive(Debug, Serialize)]
pub struct ScalingReport {
    /// Results per system and worker count.
    pub runs: Vec<ScalingRun>,
    /// Scenarios that could not run.
    pub unavailable: Vec<Unavailable>,
    /// Online CPUs (what bounds the figures).
    pub cpus: usize,
    /// Rounds.
    pub rounds: usize,
    /// Seconds per trial.
    pub trial_s: f64,
    /// Whether this was a `--quick` run.
    pub quick: bool,
}

/// Speed-ups of each run over the same system's run with the fewest workers.
pub fn speedups(runs: &mut [ScalingRun]) {
    let base: HashMap<&'static str, f64> = {
        let mut b: HashMap<&'static str, (usize, f64)> = HashMap::new();
        for r in runs.iter() {
            let e = b
                .entry(r.summary.system)
                .or_insert((r.workers, r.summary.mpps));
            if r.workers < e.0 {
                *e = (r.workers, r.summary.mpps);
            }
        }
        b.into_iter().map(|(k, v)| (k, v.1)).collect()
    };
    for r in runs {
        r.speedup = base
            .get(r.summary.system)
            .filter(|b| **b > 0.0)
            .map(|b| r.summary.mpps / b);
    }
}

/// One line per system: `(workers, median Mpps)` in worker order.
pub fn worker_lines(runs: &[ScalingRun]) -> Vec<crate::compare::png::Line> {
    let mut lines: Vec<crate::compare::png::Line> = Vec::new();
    for r in runs {
        let p = (r.workers as f64, r.summary.mpps);
        match lines.iter_mut().find(|(s, _)| *s == r.summary.system) {
            Some((_, v)) => v.push(p),
            None => lines.push((r.summary.system, vec![p])),
        }
    }
    for (_, v) in &mut lines {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    lines
}

/// Run `scaling`.
pub fn run(a: &ScalingArgs) -> anyhow::Result<()> {
    let (rounds, trial_s) = if a.quick {
        (2, 1.0)
    } else {
        (a.trials, a.trial_s)
    };
    if rounds == 0 || !(trial_s > 0.0 && trial_s <= 600.0) {
        anyhow::bail!("--trials must be >= 1 and --trial-s in (0, 600]");
    }
    if a.workers.iter().any(|w| !(1..=64).contains(w)) {
        anyhow::bail!("--workers: each count must be 1 to 64");
    }
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut duts: Vec<(usize, Dut)> = Vec::new();
    let mut unavailable = Vec::new();
    for &system in &a.systems {
        for &workers in &a.workers {
            let sc = Scenario {
                system,
                rules: if system.uses_rules() { a.rules } else { 0 },
            };
            let opts = DutOptions {
                fastpath_bin: a.fastpath_bin.clone(),
                fastpath_mode: a.fastpath_mode.clone(),
                workers,
                fastpath_extra: Vec::new(),
            };
            eprintln!("scaling: building {} with {workers} worker(s)", sc.label());
            match Dut::build(sc, &format!("s{}w{workers}", duts.len()), &opts) {
                Ok(d) => duts.push((workers, d)),
                Err(HarnessError::Unavailable(reason)) => {
                    eprintln!("scaling: {} unavailable: {reason}", sc.label());
                    unavailable.push(Unavailable {
                        system: system.name(),
                        rules: sc.rules,
                        reason,
                    });
                }
                Err(e) => return Err(e).with_context(|| format!("building {}", sc.label())),
            }
        }
    }
    duts.iter().for_each(|(_, d)| d.pause());
    let mut results: HashMap<(Scenario, usize), Vec<TrialResult>> = HashMap::new();
    for round in 0..rounds {
        for (workers, d) in &duts {
            let spec = TrialSpec {
                rate_pps: 0,
                duration_s: trial_s,
                frame_bytes: a.frame_size,
                flows: a.flows,
                no_pin: a.no_pin,
                queues: *workers,
            };
            d.resume();
            let r = trial::run(&d.topo, &spec);
            d.pause();
            let r = r.with_context(|| format!("round {} of {}", round + 1, d.scenario.label()))?;
            eprintln!(
                "[round {}/{rounds}] {:<20} workers {workers}  fwd {:7.4} Mpps  loss {:5.1}%",
                round + 1,
                d.scenario.label(),
                r.mpps,
                r.loss * 100.0
            );
            results.entry((d.scenario, *workers)).or_default().push(r);
        }
    }
    let keys: Vec<(Scenario, usize)> = duts.iter().map(|(w, d)| (d.scenario, *w)).collect();
    drop(duts);
    let mut runs: Vec<ScalingRun> = keys
        .iter()
        .filter_map(|(sc, w)| {
            let trials = results.get(&(*sc, *w))?;
            Some(ScalingRun {
                workers: *w,
                speedup: None,
                oversubscribed: 3 * w > cpus,
                summary: summarise(*sc, a.frame_size, trials)?,
            })
        })
        .collect();
    speedups(&mut runs);
    let report = ScalingReport {
        runs,
        unavailable,
        cpus,
        rounds,
        trial_s,
        quick: a.quick,
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &a.out {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
        let plot = path.with_extension("png");
        let bytes = crate::compare::png::workers_chart(
            "Forwarding rate against workers",
            &worker_lines(&report.runs),
        )?;
        std::fs::write(&plot, bytes).with_context(|| format!("writing {}", plot.display()))?;
        eprintln!("scaling: wrote {} and {}", path.display(), plot.display());
    }
    match a.output {
        Output::Json => println!("{json}"),
        Output::Table => print_table(&report),
    }
    Ok(())
}

fn print_table(r: &ScalingReport) {
    if r.quick {
        println!("QUICK RUN ({} rounds of {} s)\n", r.rounds, r.trial_s);
    }
    println!("| system | rules | workers | fwd Mpps median [min–max] | speed-up | loss |");
    println!("|---|---|---|---|---|---|");
    for x in &r.runs {
        let s = &x.summary;
        println!(
            "| {} | {} | {}{} | {:.4} [{:.4}–{:.4}] | {} | {:.1}% |",
            s.system,
            s.rules,
            x.workers,
            if x.oversubscribed { " *" } else { "" },
            s.mpps,
            s.mpps_min,
            s.mpps_max,
            x.speedup.map_or("-".into(), |v| format!("{v:.2}x")),
            s.loss * 100.0
        );
    }
    if r.runs.iter().any(|x| x.oversubscribed) {
        println!(
            "\n* generator, sink and DUT threads (3 per worker) outnumber the {} CPUs: \
             these figures measure contention, not scaling",
            r.cpus
        );
    }
    for u in &r.unavailable {
        println!("unavailable: {}: {}", u.label(), u.reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(system: &'static str, workers: usize, mpps: f64) -> ScalingRun {
        ScalingRun {
            workers,
            speedup: None,
            oversubscribed: false,
            summary: Summary {
                system,
                rules: 0,
                frame_bytes: 64,
                trials: 1,
                mpps,
                mpps_min: mpps,
                mpps_max: mpps,
                tx_mpps: mpps,
                loss: 0.0,
                p50_us: None,
                p99_us: None,
                cdf_us: Vec::new(),
            },
        }
    }

    #[test]
    fn speedups_are_against_each_systems_fewest_workers() {
        let mut runs = vec![
            run("tortie", 2, 3.0),
            run("tortie", 1, 2.0),
            run("kernel", 1, 0.0),
            run("kernel", 4, 1.0),
        ];
        speedups(&mut runs);
        let lines = worker_lines(&runs);
        assert_eq!(lines[0], ("tortie", vec![(1.0, 2.0), (2.0, 3.0)]));
        assert_eq!(lines[1], ("kernel", vec![(1.0, 0.0), (4.0, 1.0)]));
        assert_eq!(runs[0].speedup, Some(1.5));
        assert_eq!(runs[1].speedup, Some(1.0));
        // No base rate, no ratio.
        assert_eq!(runs[3].speedup, None);
    }
}

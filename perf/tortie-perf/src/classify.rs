//! `tortie-perf classify`: the classifier on ClassBench files.
//!
//! Method: build the classifier from the rule file (median on-CPU time of three builds),
//! classify every trace header once, one at a time and as a vector, and compare with a linear
//! scan of the rules (mismatches must be 0), then replay the trace in a loop, single thread,
//! one key per call, for fifteen rounds of at least `--round-ms` each. The rate divides by the
//! thread's on-CPU time (from `/proc/thread-self/schedstat`, falling back to wall time) and the
//! best round is reported, which keeps figures meaningful on a shared machine; the table output
//! also shows the median and the wall-clock median. Update cost is the median over `--updates`
//! sampled rules of removing the rule and inserting it back.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Serialize;
use tortie_classifier::classbench::{self, ClassBenchRule};
use tortie_classifier::{Classifier, IpSetTable, Key4};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A human-readable table.
    Table,
    /// One JSON object.
    Json,
}

/// Arguments of `classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// ClassBench rule file.
    #[arg(long)]
    rules: PathBuf,
    /// ClassBench header trace.
    #[arg(long)]
    trace: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
    /// Minimum duration of one throughput round, in milliseconds.
    #[arg(long, default_value_t = 40)]
    round_ms: u64,
    /// Rules sampled for the insert/delete timing (0 disables it).
    #[arg(long, default_value_t = 1000)]
    updates: usize,
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct Report {
    rules: usize,
    packets: usize,
    mpps: f64,
    memory_bytes: usize,
    build_ms: f64,
    mismatches: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn build(rules: &[tortie_classifier::Rule]) -> anyhow::Result<(Classifier, f64)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let (t, cpu) = (Instant::now(), thread_cpu_ns());
        let c = Classifier::build(rules).context("building the classifier")?;
        let wall_ms = t.elapsed().as_secs_f64() * 1e3;
        times.push(match (cpu, thread_cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e6,
            _ => wall_ms,
        });
        last = Some(c);
    }
    Ok((last.context("no build ran")?, median(times)))
}

/// Packets for which the single-key or the vector lookup disagrees with the linear scan.
fn mismatches(c: &Classifier, cb: &[ClassBenchRule], trace: &[Key4], sets: &IpSetTable) -> usize {
    let mut batch = vec![None; trace.len()];
    c.classify4_batch(trace, sets, 0, &mut batch);
    trace
        .iter()
        .zip(&batch)
        .filter(|(k, b)| {
            let want = classbench::linear_first(cb, k);
            c.classify4(k, sets).map(|m| m.priority as usize) != want
                || b.map(|m| m.priority as usize) != want
        })
        .count()
}

/// Nanoseconds this thread has spent on a CPU (`/proc/thread-self/schedstat`, first field), so
/// that rates on a shared machine exclude the time other processes held the core.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Rates in Mpps over `ROUNDS` rounds: (best on-CPU, median on-CPU, median wall-clock). On a
/// shared machine the best round is the one least disturbed by other processes (the usual
/// minimum-time estimator); the medians show the spread.
fn throughput(
    c: &Classifier,
    trace: &[Key4],
    sets: &IpSetTable,
    round: Duration,
) -> (f64, f64, f64) {
    let mut cpu_rates = Vec::new();
    let mut wall_rates = Vec::new();
    for _ in 0..ROUNDS {
        let cpu0 = thread_cpu_ns();
        let start = Instant::now();
        let mut done = 0usize;
        let mut acc = 0u32;
        while start.elapsed() < round {
            for k in trace {
                acc = acc.wrapping_add(
                    c.classify4(black_box(k), sets)
                        .map_or(u32::MAX, |m| m.action),
                );
            }
            done += trace.len();
        }
        let wall = start.elapsed().as_secs_f64();
        black_box(acc);
        wall_rates.push(done as f64 / wall / 1e6);
        let cpu = match (cpu0, thread_cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
            _ => wall,
        };
        cpu_rates.push(done as f64 / cpu / 1e6);
    }
    let best = cpu_rates.iter().copied().fold(0.0, f64::max);
    (best, median(cpu_rates), median(wall_rates))
}

/// Throughput rounds per measurement.
const ROUNDS: usize = 15;

/// Median microseconds of (delete, insert) over a deterministic sample of rules.
fn update_times(
    c: &mut Classifier,
    rules: &[tortie_classifier::Rule],
    samples: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut del = Vec::with_capacity(samples);
    let mut ins = Vec::with_capacity(samples);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..samples.min(rules.len()) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = &rules[(x % rules.len() as u64) as usize];
        let t = Instant::now();
        c.remove(r)
            .with_context(|| format!("removing rule {}", r.priority))?;
        del.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        c.insert(r)
            .with_context(|| format!("inserting rule {}", r.priority))?;
        ins.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok((median(del), median(ins)))
}

/// Runs the subcommand.
pub fn run(args: &ClassifyArgs) -> anyhow::Result<()> {
    let cb = classbench::read_rules(&args.rules)?;
    let trace = classbench::read_trace(&args.trace)?;
    anyhow::ensure!(
        !trace.is_empty(),
        "{}: the trace holds no packet",
        args.trace.display()
    );
    let rules = classbench::to_rules(&cb);
    let sets = IpSetTable::new();
    let (mut classifier, build_ms) = build(&rules)?;
    let round = Duration::from_millis(args.round_ms);
    let (mpps, mpps_median, mpps_wall) = throughput(&classifier, &trace, &sets, round);
    let report = Report {
        rules: rules.len(),
        packets: trace.len(),
        mismatches: mismatches(&classifier, &cb, &trace, &sets),
        mpps,
        memory_bytes: classifier.memory_bytes(),
        build_ms,
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&report)?),
        Output::Table => {
            let (del_us, ins_us) = if args.updates > 0 {
                update_times(&mut classifier, &rules, args.updates)?
            } else {
                (f64::NAN, f64::NAN)
            };
            let stats = classifier.stats();
            println!("rules         {}", report.rules);
            println!("packets       {}", report.packets);
            println!(
                "mpps          {:.2} (best of {ROUNDS} rounds, on-CPU time; median {mpps_median:.2}, wall-clock median {mpps_wall:.2})",
                report.mpps
            );
            println!(
                "memory_bytes  {} ({:.3} MB)",
                report.memory_bytes,
                report.memory_bytes as f64 / 1e6
            );
            println!("build_ms      {:.1}", report.build_ms);
            println!("mismatches    {}", report.mismatches);
            println!(
                "insert_us     {ins_us:.2} (median of {})",
                args.updates.min(rules.len())
            );
            println!(
                "delete_us     {del_us:.2} (median of {})",
                args.updates.min(rules.len())
            );
            let probes = trace.iter().map(|k| classifier.v4_probes(k)).sum::<usize>() as f64
                / trace.len() as f64;
            println!(
                "tables        {} (probed per packet: {probes:.2})",
                stats.v4.tables
            );
            println!("keys          {}", stats.v4.keys);
            println!("longest_chain {}", stats.v4.longest_chain);
        }
    }
    anyhow::ensure!(
        report.mismatches == 0,
        "{} packets classified differently from the linear scan",
        report.mismatches
    );
    Ok(())
}

//! `cargo xtask bench policy-latency`: how long a policy change takes from its commit in the
//! datastore to the first packet that meets the new verdict, on a lab node with 1,000
//! endpoints in the datastore.
//!
//! The set-up: the three-node lab (release build by default); two real workloads on node1
//! attached by the CNI plugin (`pl-src`, role frontend, and `pl-dst`, role backend); and
//! synthetic WorkloadEndpoints on node2 (no veths: written straight to the datastore, each
//! with its own address, role frontend) up to `--endpoints` in all. node1's tortie-control
//! computes and ships all of them: the frontend IP set the policy uses holds every one, and
//! each synthetic address is a route to node2 in node1's tables.
//!
//! The change: a GlobalNetworkPolicy denying frontends to `pl-dst` is written once with
//! `tortiectl apply` (so its stored form is exactly tortiectl's), read back, then deleted and
//! put again in this process, alternately, `--changes` times; the commit time is taken as the
//! datastore call returns. A prober thread in `pl-src`'s namespace sends a UDP datagram, each
//! a new flow, every 0.2 ms; sinks in `pl-dst`'s namespace timestamp arrivals (see
//! [`probes`]). A sample is the time from the commit to the sending of the first probe that
//! met the new verdict.
//!
//! Stages, reported beside the end-to-end figure: commit -> watch event (a watcher of this
//! process on its own connection, the same mechanism tortie-control's watcher uses across
//! processes), tortie-control's event -> ring written (`apply_latency` of its `/status`), and
//! tortie-fastpath's wake-up -> generation handed to the workers (`apply_latency` of its
//! status file). Both daemon windows also hold the few cycles of the set-up. The idle CPU of
//! node1's daemons and of one idle SQLite watcher is measured before the changes.

pub mod probes;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tortie_datastore::{Condition, Datastore, SqliteStore, TxnOp, keys};

use crate::error::{Result, XtaskError};
use crate::lab::health::{self, CONTROL_METRICS};
use crate::lab::plan::NODES;
use crate::lab::state::RUN_DIR;
use crate::lab::workload::WorkloadSpec;
use crate::lab::{Lab, UpOptions};
use probes::{Probes, Verdict, first_new_verdict};

/// Usage of `cargo xtask bench policy-latency`.
pub const USAGE: &str =
    "usage: cargo xtask bench policy-latency [--endpoints N] [--changes N] [--debug] [--no-build]

  endpoints  WorkloadEndpoints in the datastore, the two real ones included (default 1000)
  changes    policy changes measured, alternately deny and allow (default 60, at least 50 for a p99)
  --debug    run the debug build of the daemons (default: release)";

/// The policy toggled.
const BLOCK: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: bench-block
spec:
  order: 10
  selector: name == 'pl-dst'
  types: [Ingress]
  ingress:
  - action: Deny
    source:
      selector: role == 'frontend'
";

/// How long after its sending a missing probe counts as dropped.
const SETTLE: Duration = Duration::from_millis(3);
/// Missing, settled probes that show a deny in force.
const QUIET: usize = 25;
/// The longest a change may take to show.
const CHANGE_BOUND: Duration = Duration::from_secs(3);

/// Options of the bench.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Endpoints in all.
    pub endpoints: usize,
    /// Changes measured.
    pub changes: usize,
    /// Release daemons.
    pub release: bool,
    /// Build first.
    pub build: bool,
}

impl Options {
    /// Parses the bench's arguments.
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            endpoints: 1000,
            changes: 60,
            release: true,
            build: true,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut number = |what: &str| -> Result<usize> {
                it.next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| XtaskError::Usage(format!("{what} needs a number\n{USAGE}")))
            };
            match arg.as_str() {
                "--endpoints" => o.endpoints = number("--endpoints")?.clamp(2, 1022),
                "--changes" => o.changes = number("--changes")?.max(2),
                "--debug" => o.release = false,
                "--no-build" => o.build = false,
                "-h" | "--help" => return Err(XtaskError::Usage(USAGE.into())),
                other => {
                    return Err(XtaskError::Usage(format!(
                        "unknown option {other:?}\n{USAGE}"
                    )));
                }
            }
        }
        Ok(o)
    }
}

/// Nearest-rank percentile of `v` (sorted in place), `None` when empty.
pub fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// A synthetic WorkloadEndpoint of node2 (the shape the CNI plugin writes): key and value.
pub fn synthetic_endpoint(i: usize) -> Result<(String, Vec<u8>)> {
    let name = format!("node2-cni-plbench{i}-eth0");
    let key = keys::resource_key("workloadendpoints", Some("ns-a"), &name)
        .map_err(|e| XtaskError::Lab(e.to_string()))?;
    // 198.19.12.1 onwards: inside the lab pool, outside the blocks the nodes claim first.
    let addr =
        std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 19, 12, 1)) + i as u32);
    let value = json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "WorkloadEndpoint",
        "metadata": {
            "name": name,
            "namespace": "ns-a",
            "labels": {
                "role": "frontend",
                "bench": "synthetic",
                "projectcalico.org/namespace": "ns-a",
                "projectcalico.org/orchestrator": "cni",
            },
        },
        "spec": {
            "orchestrator": "cni",
            "node": "node2",
            "containerID": format!("plbench{i}"),
            "workload": format!("plbench{i}"),
            "endpoint": "eth0",
            "interfaceName": format!("torbench{i:07}"),
            "mac": format!("02:00:00:00:{:02x}:{:02x}", i >> 8, i & 0xff),
            "ipNetworks": [format!("{addr}/32")],
            "profiles": ["kns.ns-a"],
        },
    });
    Ok((key, serde_json::to_vec(&value).unwrap_or_default()))
}

/// Runs `bench policy-latency ARGS`.
pub fn run(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    crate::packages::ensure(crate::packages::DEMO).map_err(XtaskError::Lab)?;
    let bin_dir = if options.build {
        crate::packages::ensure(crate::packages::BUILD).map_err(XtaskError::Lab)?;
        crate::build_lab_binaries(true, options.release)?
    } else {
        crate::bin_dir(if options.release { "release" } else { "debug" })
    };
    let run_dir = PathBuf::from(RUN_DIR);
    crate::interrupt::tear_down_on_signal(run_dir.clone()).map_err(XtaskError::Lab)?;
    let lab = Lab::up(&UpOptions {
        run_dir,
        bin_dir,
        daemons: true,
        ready_timeout: Duration::from_secs(30),
        ipv6: false,
        routes_from_bgp: false,
        keep_on_failure: false,
    })?;
    let mut guard = Guard(Some(lab));
    let outcome = measure(guard.lab(), &options);
    drop(guard);
    let report = outcome?;
    println!("{report}");
    Ok(())
}

/// Takes the lab down however the bench ends.
struct Guard(Option<Lab>);

impl Guard {
    fn lab(&mut self) -> &mut Lab {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("the lab is taken only on drop"))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(lab) = self.0.take()
            && let Err(err) = lab.down()
        {
            eprintln!("lab down failed: {err}");
        }
    }
}

fn lab_error(what: &str) -> impl Fn(tortie_datastore::DatastoreError) -> XtaskError + '_ {
    move |e| XtaskError::Lab(format!("{what}: {e}"))
}

fn measure(lab: &mut Lab, options: &Options) -> Result<String> {
    let src = lab.add_workload(&WorkloadSpec::new(
        "pl-src",
        "ns-a",
        "node1",
        &[("role", "frontend"), ("name", "pl-src")],
    ))?;
    let dst = lab.add_workload(&WorkloadSpec::new(
        "pl-dst",
        "ns-b",
        "node1",
        &[("role", "backend"), ("name", "pl-dst")],
    ))?;
    let store = SqliteStore::open(&lab.state.datastore).map_err(lab_error("open the datastore"))?;
    let synthetic = options.endpoints.saturating_sub(2);
    let ops = (0..synthetic)
        .map(|i| {
            synthetic_endpoint(i).map(|(key, value)| TxnOp::Put {
                key,
                value,
                condition: Condition::Any,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if !ops.is_empty() {
        store
            .txn(&ops)
            .map_err(lab_error("write the synthetic endpoints"))?;
    }
    eprintln!(
        "{} endpoints: pl-src {} and pl-dst {} (real, node1), {synthetic} synthetic on node2",
        synthetic + 2,
        src.address,
        dst.address
    );

    let target: std::net::IpAddr = dst
        .address
        .parse()
        .map_err(|_| XtaskError::Lab(format!("pl-dst address {:?}", dst.address)))?;
    let probes = Probes::start(&src.netns, &dst.netns, target)?;

    // The policy's stored form, from tortiectl itself.
    let tool = lab.tortiectl();
    tool.apply(BLOCK)?;
    let key = keys::resource_key("globalnetworkpolicies", None, "bench-block")
        .map_err(|e| XtaskError::Lab(e.to_string()))?;
    let stored = store
        .get(&key)
        .map_err(lab_error("read the policy back"))?
        .ok_or_else(|| XtaskError::Lab(format!("tortiectl apply wrote no {key}")))?
        .value;
    store
        .delete(&key, None)
        .map_err(lab_error("delete the policy"))?;
    // Settled: new flows pass again.
    if change(&probes, Verdict::Allow, || Ok(()))?.is_none() {
        return Err(XtaskError::Lab(
            "pl-src cannot reach pl-dst before the changes".into(),
        ));
    }

    let idle = idle_cpu(lab, &store)?;

    let control_log = crate::lab::daemons::log_path(&lab.state.run_dir, &NODES[0], "control");
    let log_from = std::fs::metadata(&control_log).map_or(0, |m| m.len());
    let fastpath_log = crate::lab::daemons::log_path(&lab.state.run_dir, &NODES[0], "fastpath");
    let fastpath_from = std::fs::metadata(&fastpath_log).map_or(0, |m| m.len());
    let (mut e2e, mut watch_ms, mut write_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut missed = 0;
    for i in 0..options.changes {
        let verdict = if i % 2 == 0 {
            Verdict::Deny
        } else {
            Verdict::Allow
        };
        let mut committed = None;
        let sample = change(&probes, verdict, || {
            let started = Instant::now();
            match verdict {
                Verdict::Deny => store.put(&key, &stored).map(|_| ()),
                Verdict::Allow => store.delete(&key, None).map(|_| ()),
            }
            .map_err(lab_error("policy change"))?;
            committed = Some((started, Instant::now()));
            Ok(())
        })?;
        let Some((started, commit)) = committed else {
            continue;
        };
        write_ms.push((commit - started).as_secs_f64() * 1e3);
        match sample {
            Some((latency, _)) => e2e.push(latency.as_secs_f64() * 1e3),
            None => missed += 1,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut stages = control_stages(&control_log, log_from);
    stages.extend(control_stages(&fastpath_log, fastpath_from));
    // commit -> watch event, measured on its own (the probes would delay a receiving thread
    // here): a waiting watcher on another connection, then a commit.
    let watch_store = SqliteStore::open(&lab.state.datastore).map_err(lab_error("open"))?;
    let mut watcher = watch_store
        .watch(
            &key,
            watch_store
                .current_revision()
                .map_err(lab_error("revision"))?
                + 1,
        )
        .map_err(lab_error("watch"))?;
    for i in 0..options.changes {
        std::thread::sleep(Duration::from_millis(7));
        let commit = if i % 2 == 0 {
            store.put(&key, &stored).map(|_| Instant::now())
        } else {
            store.delete(&key, None).map(|_| Instant::now())
        }
        .map_err(lab_error("policy change"))?;
        if let Ok(Some(_)) = watcher.recv_timeout(Duration::from_secs(1)) {
            watch_ms.push(commit.elapsed().as_secs_f64() * 1e3);
        }
    }
    let _ = store.delete(&key, None);

    let control = health::get(NODES[0].namespace, CONTROL_METRICS, "/status")
        .ok()
        .and_then(|a| serde_json::from_str::<Value>(&a.body).ok())
        .map(|v| v["control"]["apply_latency"].clone())
        .unwrap_or(Value::Null);
    let status_file = crate::lab::daemons::status_path(&lab.state.run_dir, &NODES[0]);
    let fastpath = read_json(&status_file)
        .map(|v| v["apply_latency"].clone())
        .unwrap_or(Value::Null);

    let mut text = report(
        options,
        synthetic,
        &mut e2e,
        missed,
        &mut watch_ms,
        &mut write_ms,
        &control,
        &fastpath,
        &idle,
    );
    text.push_str(
        "\nthe measured changes only (tortie-control's debug lines; tortie-fastpath's \
         `generation applied` lines: `fastpath.apply` = wake -> generation at the workers, \
         `fastpath-snapshot.apply` = the same for generations that applied a snapshot):",
    );
    for (name, mut values) in stages {
        let q = |v: &mut Vec<f64>, p| percentile(v, p).map_or("-".into(), |x| format!("{x:.2}"));
        text.push_str(&format!(
            "\n  {name}: p50 {} ms, p99 {} ms ({} samples)",
            q(&mut values, 50.0),
            q(&mut values, 99.0),
            values.len()
        ));
    }
    Ok(text)
}

/// `key=value` microsecond fields of tortie-control's `change` and `cycle` debug lines and of
/// tortie-fastpath's `generation applied` lines (`fastpath`, or `fastpath-snapshot` when the
/// generation applied a snapshot) written after byte `from` of a log, in milliseconds, by
/// field.
pub fn control_stages(log: &Path, from: u64) -> Vec<(String, Vec<f64>)> {
    let text = std::fs::read(log).unwrap_or_default();
    let tail = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    parse_stages(&tail)
}

/// See [`control_stages`].
pub fn parse_stages(text: &str) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for line in text.lines() {
        let kind = if line.contains(" change ") {
            "change"
        } else if line.contains(" cycle ") {
            "cycle"
        } else if line.contains(" generation applied ") {
            if line.contains("snapshot=true") {
                "fastpath-snapshot"
            } else {
                "fastpath"
            }
        } else {
            continue;
        };
        for token in line.split_whitespace() {
            let Some((key, value)) = token.split_once('=') else {
                continue;
            };
            let (Some(field), Ok(us)) = (key.strip_suffix("_us"), value.parse::<f64>()) else {
                continue;
            };
            let name = format!("{kind}.{field}");
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(us / 1e3),
                None => out.push((name, vec![us / 1e3])),
            }
        }
    }
    out
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Probes around one change made by `apply`; returns the latency from the commit (the
/// moment `apply` returned) to the first probe with `verdict`, and the probes sent.
fn change(
    probes: &Probes,
    verdict: Verdict,
    apply: impl FnOnce() -> Result<()>,
) -> Result<Option<(Duration, usize)>> {
    let record = &probes.record;
    let first = usize::try_from(record.count.load(Ordering::Acquire)).unwrap_or(0);
    probes.active.store(true, Ordering::Release);
    std::thread::sleep(Duration::from_millis(3));
    apply()?;
    let commit = Instant::now();
    let commit_ns = record.at(commit);
    let mut found = None;
    while commit.elapsed() < CHANGE_BOUND {
        std::thread::sleep(Duration::from_millis(1));
        let seen = record.since(first);
        let now = record.at(Instant::now());
        let settle = u64::try_from(SETTLE.as_nanos()).unwrap_or(u64::MAX);
        if let Some(ns) = first_new_verdict(&seen, commit_ns, now, settle, QUIET, verdict) {
            found = Some((Duration::from_nanos(ns), seen.len()));
            break;
        }
    }
    probes.active.store(false, Ordering::Release);
    Ok(found)
}

/// CPU time of node1's daemons and of one idle SQLite watcher over a few idle seconds.
struct IdleCpu {
    control_pct: f64,
    fastpath_pct: f64,
    watcher_pct: Option<f64>,
    seconds: f64,
}

fn ticks(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Nanoseconds on a CPU of one thread (`schedstat`'s first field).
fn cpu_ns(path: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `schedstat` file of this process's SQLite watcher thread (named `tortie-sqlite-watch`,
/// shown truncated to 15 characters).
fn watcher_task() -> Option<String> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .find_map(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            comm.trim()
                .starts_with("tortie-sqlite")
                .then(|| e.path().join("schedstat").display().to_string())
        })
}

fn idle_cpu(lab: &Lab, store: &SqliteStore) -> Result<IdleCpu> {
    let pid = |role: &str| lab.process("node1", role).map(|p| p.pid).unwrap_or(0);
    let (control, fastpath) = (
        format!("/proc/{}/stat", pid("control")),
        format!("/proc/{}/stat", pid("fastpath")),
    );
    let watcher = store
        .watch(
            "/bench-idle/",
            store.current_revision().map_err(lab_error("revision"))? + 1,
        )
        .map_err(lab_error("watch"))?;
    std::thread::sleep(Duration::from_millis(100));
    let task = watcher_task();
    let before = (
        ticks(&control),
        ticks(&fastpath),
        task.as_deref().and_then(cpu_ns),
    );
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let after = (
        ticks(&control),
        ticks(&fastpath),
        task.as_deref().and_then(cpu_ns),
    );
    let seconds = started.elapsed().as_secs_f64();
    drop(watcher);
    // Clock ticks are 1/100 s on Linux (sysconf(_SC_CLK_TCK), fixed by the kernel ABI).
    let pct = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 100.0 / seconds * 100.0,
        _ => f64::NAN,
    };
    Ok(IdleCpu {
        control_pct: pct(before.0, after.0),
        fastpath_pct: pct(before.1, after.1),
        watcher_pct: match (before.2, after.2) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e9 / seconds * 100.0),
            _ => None,
        },
        seconds,
    })
}

#[allow(clippy::too_many_arguments)]
fn report(
    options: &Options,
    synthetic: usize,
    e2e: &mut [f64],
    missed: usize,
    watch_ms: &mut [f64],
    write_ms: &mut [f64],
    control: &Value,
    fastpath: &Value,
    idle: &IdleCpu,
) -> String {
    let q = |v: &mut [f64], p: f64| percentile(v, p).map_or("-".into(), |x| format!("{x:.2}"));
    let window = |v: &Value| {
        format!(
            "p50 {} ms, p99 {} ms, max {} ms over {} cycles",
            v["p50_ms"], v["p99_ms"], v["max_ms"], v["count"]
        )
    };
    format!(
        "policy-update latency, {} build, {} endpoints in the datastore (2 real on node1, {synthetic} synthetic on node2)\n\
         changes measured: {} of {} (alternately deny and allow; probes every {} us, each a new UDP flow)\n\
         commit -> first packet with the new verdict: p50 {} ms, p99 {} ms, max {} ms\n\
         stages:\n\
         \x20 datastore write (BEGIN IMMEDIATE .. COMMIT, fsync): p50 {} ms, p99 {} ms\n\
         \x20 commit -> watch event (another connection): p50 {} ms, p99 {} ms\n\
         \x20 tortie-control event -> ring written: {}\n\
         \x20 tortie-fastpath wake -> generation at the workers: {}\n\
         idle CPU over {:.1} s: tortie-control {:.1}%, tortie-fastpath {:.1}%, one idle SQLite watcher {}",
        if options.release { "release" } else { "debug" },
        options.endpoints,
        e2e.len(),
        e2e.len() + missed,
        probes::PROBE_INTERVAL.as_micros(),
        q(e2e, 50.0),
        q(e2e, 99.0),
        q(e2e, 100.0),
        q(write_ms, 50.0),
        q(write_ms, 99.0),
        q(watch_ms, 50.0),
        q(watch_ms, 99.0),
        window(control),
        window(fastpath),
        idle.seconds,
        idle.control_pct,
        idle.fastpath_pct,
        idle.watcher_pct
            .map_or("(thread not found)".into(), |p| format!(
                "{p:.2}% (schedstat)"
            )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_and_parse() {
        let o = Options::parse(&[]).unwrap();
        assert_eq!(
            (o.endpoints, o.changes, o.release, o.build),
            (1000, 60, true, true)
        );
        let args: Vec<String> = [
            "--endpoints",
            "300",
            "--changes",
            "80",
            "--debug",
            "--no-build",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let o = Options::parse(&args).unwrap();
        assert_eq!(
            (o.endpoints, o.changes, o.release, o.build),
            (300, 80, false, false)
        );
        assert!(Options::parse(&["--endpoints".to_string()]).is_err());
        assert!(Options::parse(&["--bogus".to_string()]).is_err());
    }

    #[test]
    fn stage_fields_are_read_from_the_debug_lines() {
        let log = "2026-11-22T22:00:00Z DEBUG tortie_control::engine: cycle flush_us=1500 compile_us=20 tables_us=0 diff_us=3 send_us=7\n\
                   2026-11-22T22:00:00Z DEBUG tortie_control::daemon: change apply_us=40 cycle_us=1600 sent=true\n\
                   2026-11-22T22:00:01Z  INFO tortie_control::daemon: something else x_us=9\n\
                   2026-11-22T22:00:02Z  INFO tortie_fastpath::config: generation applied generation=4 routes=1003 endpoints=2 snapshot=false apply_us=310\n\
                   2026-11-22T22:00:02Z  INFO tortie_fastpath::config: generation applied generation=1 routes=1003 endpoints=2 snapshot=true apply_us=5400\n";
        let stages = parse_stages(log);
        let get = |n: &str| stages.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("cycle.flush"), Some(vec![1.5]));
        assert_eq!(get("change.cycle"), Some(vec![1.6]));
        assert_eq!(get("change.apply"), Some(vec![0.04]));
        assert_eq!(get("fastpath.apply"), Some(vec![0.31]));
        assert_eq!(get("fastpath-snapshot.apply"), Some(vec![5.4]));
        assert!(get("x").is_none() && stages.len() == 9);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), Some(50.0));
        assert_eq!(percentile(&mut v, 99.0), Some(99.0));
        assert_eq!(percentile(&mut v, 100.0), Some(100.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn synthetic_endpoints_are_distinct_and_well_formed() {
        let (k0, v0) = synthetic_endpoint(0).unwrap();
        let (k1, _) = synthetic_endpoint(1000).unwrap();
        assert_ne!(k0, k1);
        let v: Value = serde_json::from_slice(&v0).unwrap();
        assert_eq!(v["spec"]["ipNetworks"][0], "198.19.12.1/32");
        assert_eq!(v["metadata"]["labels"]["role"], "frontend");
        let (_, v) = synthetic_endpoint(1000).unwrap();
        let v: Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(v["spec"]["ipNetworks"][0], "198.19.15.233/32");
    }
}

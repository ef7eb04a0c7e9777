//! `tortie-perf compare` and `tortie-perf rfc2544` end to end on the kernel systems, each in
//! the generator → DUT → sink namespaces the harness builds itself.
//!
//! Needs root (namespaces, AF_XDP, iptables-legacy, ipset); as non-root each test prints why
//! and returns. The harness deletes its namespaces itself (checked below); the child is
//! killed if it overruns its time limit. Every run gets a `PATH` without `ip` and `nsenter`
//! (a directory of links to everything else on `PATH`): the harness must need neither.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tortie-perf");

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

fn tools_present() -> Result<(), String> {
    for tool in ["iptables-legacy-restore", "ipset"] {
        if !on_path(tool) {
            return Err(format!("{tool} is not installed"));
        }
    }
    Ok(())
}

/// Kills the child (by its own handle) if the test ends before it does.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A directory of links to every program on `PATH` except `ip` and `nsenter`, and the
/// `PATH` that names only it.
fn path_without_ip() -> (tempfile::TempDir, std::ffi::OsString) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if name == "ip" || name == "nsenter" {
                continue;
            }
            let link = dir.path().join(&name);
            if !link.exists() {
                let _ = std::os::unix::fs::symlink(e.path(), link);
            }
        }
    }
    assert!(!dir.path().join("ip").exists());
    let only = dir.path().as_os_str().to_owned();
    (dir, only)
}

fn run_bounded(args: &[&str], limit: Duration) -> (Output, u32) {
    let (_links, path) = path_without_ip();
    let child = Command::new(BIN)
        .env("PATH", path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tortie-perf");
    let pid = child.id();
    let mut reaper = Reaper(Some(child));
    let deadline = Instant::now() + limit;
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let c = reaper.0.as_mut().expect("child");
    let mut out_pipe = c.stdout.take().expect("stdout");
    let mut err_pipe = c.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out_pipe, &mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err_pipe, &mut v);
        v
    });
    let status = loop {
        if let Some(st) = c.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "tortie-perf {args:?} ran past {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    reaper.0 = None;
    let out = Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    };
    (out, pid)
}

fn leftover_namespaces(pid: u32) -> Vec<String> {
    tortie_perf::netns::list()
        .into_iter()
        .filter(|l| l.starts_with(&format!("tperf-{pid}-")))
        .collect()
}

fn parse(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// tortie-fastpath from the same target directory, when the machine can run it (root, the
/// tools) and a workspace build has built it; otherwise says why the test is skipped.
fn fastpath_or_skip() -> Option<std::path::PathBuf> {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return None;
    }
    if let Err(why) = tools_present() {
        eprintln!("skipping: {why}");
        return None;
    }
    let bin = std::path::Path::new(BIN).with_file_name("tortie-fastpath");
    if !bin.is_file() {
        eprintln!("skipping: {} is not built", bin.display());
        return None;
    }
    Some(bin)
}

/// The run's JSON, after checking that it left no namespace behind.
fn parse_after_cleanup(out: &Output, pid: u32) -> serde_json::Value {
    let v = parse(out);
    assert!(
        leftover_namespaces(pid).is_empty(),
        "namespaces left behind"
    );
    v
}

/// Every system asked for ran (tortie-fastpath included).
fn assert_nothing_unavailable(v: &serde_json::Value) {
    assert!(
        v["unavailable"].as_array().is_some_and(Vec::is_empty),
        "tortie did not run: {}",
        v["unavailable"]
    );
}

#[test]
fn compare_kernel_modes_forward_and_report() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return;
    }
    if let Err(why) = tools_present() {
        eprintln!("skipping: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let json_path = dir.path().join("cmp.json");
    // nftables too where `nft` is installed.
    let with_nft = on_path("nft");
    let systems = if with_nft {
        "kernel,kernel-ct-ipset,kernel-iptables,kernel-nftables,tortie-bypass"
    } else {
        "kernel,kernel-ct-ipset,kernel-iptables,tortie-bypass"
    };
    let (out, pid) = run_bounded(
        &[
            "compare",
            "--systems",
            systems,
            "--rules",
            "100",
            "--sweep",
            "",
            "--trials",
            "2",
            "--trial-s",
            "0.4",
            "--flows",
            "16",
            "--out",
            json_path.to_str().expect("utf-8 path"),
            "-o",
            "json",
        ],
        Duration::from_secs(90),
    );
    let v = parse_after_cleanup(&out, pid);
    let runs = v["runs"].as_array().expect("runs[]");
    let names: Vec<&str> = runs
        .iter()
        .map(|r| r["system"].as_str().expect("system"))
        .collect();
    for name in ["kernel", "kernel-ct-ipset", "kernel-iptables"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(names.contains(&"kernel-nftables"), with_nft, "{names:?}");
    for r in runs {
        for key in [
            "system",
            "rules",
            "frame_bytes",
            "mpps",
            "loss",
            "p50_us",
            "p99_us",
            "trials",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert_eq!(r["frame_bytes"], 64);
        assert_eq!(r["trials"], 2, "{r}");
        assert!(
            r["mpps"].as_f64().is_some_and(|m| m > 0.0),
            "nothing forwarded: {r}"
        );
        let loss = r["loss"].as_f64().expect("loss");
        assert!((0.0..=1.0).contains(&loss), "{r}");
    }
    let rules_of = |n: &str| {
        runs.iter()
            .find(|r| r["system"] == n)
            .map(|r| r["rules"].clone())
    };
    assert_eq!(rules_of("kernel-iptables"), Some(100.into()));
    assert_eq!(rules_of("kernel"), Some(0.into()));
    // Every trial forwarded stamped frames, interleaved round by round.
    let trials = v["trials"].as_array().expect("trials[]");
    assert_eq!(trials.len(), 2 * runs.len());
    assert!(
        trials
            .iter()
            .all(|t| t["rx_packets"].as_u64().is_some_and(|n| n > 0))
    );
    let order: Vec<&str> = trials
        .iter()
        .map(|t| t["system"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        order[..runs.len()],
        order[runs.len()..],
        "rounds interleave in one order"
    );
    // Ratios against kernel forwarding for each other system; tortie's targets present.
    let ratios = v["ratios"].as_array().expect("ratios[]");
    let ratio = |n: &str| {
        ratios
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert!(
        ratio("kernel-iptables@100 / kernel")["value"]
            .as_f64()
            .is_some_and(|x| x > 0.0)
    );
    assert_eq!(ratio("tortie@100 / kernel-ct-ipset")["target"], 1.0);
    // tortie-bypass runs, or says why it cannot.
    let unavailable = v["unavailable"].as_array().expect("unavailable[]");
    assert!(
        names.contains(&"tortie-bypass")
            || unavailable.iter().any(|u| u["system"] == "tortie-bypass"
                && u["reason"].as_str().is_some_and(|s| !s.is_empty())),
        "{v}"
    );
    assert!(v["setup"]["loadavg_start"].is_string());
    // The file and the plots beside it.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("json written")).expect("json");
    assert_eq!(written["runs"], v["runs"]);
    for svg in ["cmp-modes.svg", "cmp-rules.svg", "cmp-latency.svg"] {
        let text = std::fs::read_to_string(dir.path().join(svg)).expect(svg);
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{svg}"
        );
    }
    for png in ["cmp-rules.png", "cmp-latency.png"] {
        let bytes = std::fs::read(dir.path().join(png)).expect(png);
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 2000,
            "{png}"
        );
    }
    let bars = std::fs::read_to_string(dir.path().join("cmp-modes.svg")).expect("svg");
    assert_eq!(bars.matches("<rect x=").count(), runs.len());
}

#[test]
fn rfc2544_kernel_search_reports_throughput_and_latency() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return;
    }
    if let Err(why) = tools_present() {
        eprintln!("skipping: {why}");
        return;
    }
    let (out, pid) = run_bounded(
        &[
            "rfc2544",
            "--system",
            "kernel-iptables",
            "--rules",
            "200",
            "--trial-s",
            "0.4",
            "--max-trials",
            "4",
            "--loss-tolerance",
            "0.01",
            "--flows",
            "16",
            "-o",
            "json",
        ],
        Duration::from_secs(90),
    );
    let v = parse_after_cleanup(&out, pid);
    assert_eq!(v["system"], "kernel-iptables");
    let r = &v["results"][0];
    assert_eq!(r["frame_bytes"], 64);
    let steps = r["steps"].as_array().expect("steps[]");
    assert!((2..=4).contains(&steps.len()), "{r}");
    assert_eq!(
        steps[0]["offered_pps"], 0,
        "the first trial finds the ceiling"
    );
    let t = r["throughput_pps"].as_u64().expect("a rate passed");
    assert!(t > 0);
    // The reported rate is one that passed.
    assert!(
        steps
            .iter()
            .any(|s| s["offered_pps"] == t && s["pass"] == true),
        "{r}"
    );
    let lat = &r["latency"];
    let (min, p50, p99) = (
        lat["min_us"].as_f64().expect("min"),
        lat["p50_us"].as_f64().expect("p50"),
        lat["p99_us"].as_f64().expect("p99"),
    );
    assert!(0.0 < min && min <= p50 && p50 <= p99, "{lat}");
    // The latency trial runs at 90% of the throughput.
    let offered = lat["offered_pps"].as_u64().expect("offered");
    assert!(offered <= t && offered as f64 >= t as f64 * 0.85, "{lat}");
    // Progress lines went to stderr as it searched.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.matches("rfc2544 64B: offered").count() == steps.len(),
        "{err}"
    );
}

#[test]
fn connrate_smoltcp_opens_connections_through_the_kernel() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return;
    }
    if let Err(why) = tools_present() {
        eprintln!("skipping: {why}");
        return;
    }
    connrate_through_the_kernel(&[]);
}

#[test]
fn connrate_kernel_sockets_open_connections_through_the_kernel() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces");
        return;
    }
    if let Err(why) = tools_present() {
        eprintln!("skipping: {why}");
        return;
    }
    if !on_path("ethtool") {
        eprintln!("skipping: ethtool is not installed (the kernel-socket end hosts need it)");
        return;
    }
    connrate_through_the_kernel(&["--endpoints", "kernel", "--concurrency", "2"]);
}

/// `connrate` on kernel forwarding with and without conntrack and 50 rules, two rounds (the
/// second on end hosts that stayed open): connections complete and none fail.
fn connrate_through_the_kernel(extra: &[&str]) {
    let mut args = vec![
        "connrate",
        "--systems",
        "kernel,kernel-ct-iptables",
        "--rules",
        "50",
        "--trials",
        "2",
        "--trial-s",
        "0.3",
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    let (out, pid) = run_bounded(&args, Duration::from_secs(60));
    let v = parse_after_cleanup(&out, pid);
    let runs = v["runs"].as_array().expect("runs[]");
    assert_eq!(runs.len(), 2, "{v}");
    for r in runs {
        assert!(r["conns_per_s"].as_f64().is_some_and(|c| c > 0.0), "{r}");
        assert_eq!(r["failures"], 0, "{r}");
        for t in r["trials"].as_array().expect("trials[]") {
            assert!(t["connections"].as_u64().is_some_and(|n| n > 0), "{r}");
            let load = &t["end_hosts"];
            if !extra.is_empty() {
                assert!(load.is_null(), "kernel end hosts report no load: {t}");
                continue;
            }
            // Nine segments per connection, give or take those still in flight at the end.
            let segments = load["segments_per_conn"].as_f64().expect("segments");
            assert!((8.5..=11.0).contains(&segments), "{t}");
            let share = load["busy_share"].as_f64().expect("busy share");
            assert!(share > 0.0 && share <= 1.0, "{t}");
            for k in ["stack_us_per_conn", "send_us_per_conn", "segments_per_kick"] {
                assert!(load[k].as_f64().is_some_and(|v| v > 0.0), "{k}: {t}");
            }
        }
    }
    let expected = if extra.is_empty() {
        "smoltcp"
    } else {
        "kernel"
    };
    assert_eq!(v["endpoints"], expected);
    let ratios = v["ratios"].as_array().expect("ratios[]");
    assert!(
        ratios
            .iter()
            .any(|x| x["name"] == "kernel-ct-iptables@50 / kernel"
                && x["value"].as_f64().is_some_and(|f| f > 0.0))
    );
    let target = ratios
        .iter()
        .find(|x| x["target"] == 2.0)
        .expect("the tortie target ratio");
    assert!(
        target["value"].is_null(),
        "tortie was not asked for: {target}"
    );
}

/// `connrate` through tortie-fastpath from the same target directory (skipped when it has
/// not been built): the smoltcp end hosts' connections pass its conntrack and a 100-rule
/// policy, none fails, and each is the nine-segment exchange.
#[test]
fn connrate_smoltcp_opens_connections_through_tortie_fastpath() {
    let Some(bin) = fastpath_or_skip() else {
        return;
    };
    let (out, pid) = run_bounded(
        &[
            "connrate",
            "--systems",
            "tortie",
            "--rules",
            "100",
            "--trials",
            "1",
            "--trial-s",
            "0.5",
            "--concurrency",
            "16",
            "--fastpath-bin",
            bin.to_str().expect("utf-8 path"),
            "-o",
            "json",
        ],
        Duration::from_secs(90),
    );
    let v = parse_after_cleanup(&out, pid);
    assert_nothing_unavailable(&v);
    let run = &v["runs"][0];
    assert_eq!(
        (run["system"].as_str(), run["rules"].as_u64()),
        (Some("tortie"), Some(100))
    );
    assert_eq!(run["failures"], 0, "{run}");
    let trial = &run["trials"][0];
    assert!(
        trial["connections"].as_u64().is_some_and(|n| n > 0),
        "{run}"
    );
    let segments = trial["end_hosts"]["segments_per_conn"]
        .as_f64()
        .expect("segments");
    assert!((8.5..=11.0).contains(&segments), "{trial}");
    // The daemon's own counters came back, with its worker's packets.
    let counters = &v["fastpath_counters"][0]["counters"]["workers"][0];
    assert!(
        counters["rx_packets"].as_u64().is_some_and(|n| n > 0),
        "{}",
        v["fastpath_counters"]
    );
}

/// tortie-fastpath from the same target directory (built by a workspace build), fed its
/// tables by the harness: it forwards generator traffic to the sink under a 100-rule policy.
/// Skipped when the binary has not been built.
#[test]
fn tortie_fastpath_forwards_through_the_namespaces() {
    let Some(bin) = fastpath_or_skip() else {
        return;
    };
    let (out, pid) = run_bounded(
        &[
            "compare",
            "--systems",
            "tortie",
            "--rules",
            "100",
            "--sweep",
            "none",
            "--trials",
            "1",
            "--trial-s",
            "0.5",
            "--rate",
            "5000",
            "--flows",
            "16",
            "--fastpath-bin",
            bin.to_str().expect("utf-8 path"),
            "-o",
            "json",
        ],
        Duration::from_secs(90),
    );
    let v = parse_after_cleanup(&out, pid);
    assert_nothing_unavailable(&v);
    let run = &v["runs"][0];
    assert_eq!(run["system"], "tortie");
    assert_eq!(run["rules"], 100);
    assert!(
        run["mpps"].as_f64().is_some_and(|m| m > 0.0),
        "nothing forwarded: {run}"
    );
    let trial = &v["trials"][0];
    let (tx, rx) = (
        trial["tx_packets"].as_u64().expect("tx"),
        trial["rx_packets"].as_u64().expect("rx"),
    );
    // 5 kpps is far below what even a debug build forwards; tests running beside it on a
    // small machine still cost it frames, so only most of them are required.
    assert!(rx > 0 && rx * 2 >= tx, "{trial}");
    let counters = &v["fastpath_counters"][0]["counters"];
    let worker_rx = counters["workers"][0]["rx_packets"]
        .as_u64()
        .expect("worker rx");
    assert!(
        worker_rx >= rx,
        "the fastpath's own counters saw the traffic: {counters}"
    );
}

#[test]
fn scaling_runs_each_worker_count_on_multi_queue_veths() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return;
    }
    if let Err(why) = tools_present() {
        eprintln!("skipping: {why}");
        return;
    }
    let (out, pid) = run_bounded(
        &[
            "scaling",
            "--systems",
            "kernel",
            "--workers",
            "1,2",
            "--trials",
            "1",
            "--trial-s",
            "0.4",
            "--flows",
            "16",
            "-o",
            "json",
        ],
        Duration::from_secs(60),
    );
    let v = parse_after_cleanup(&out, pid);
    let runs = v["runs"].as_array().expect("runs[]");
    let workers: Vec<u64> = runs.iter().filter_map(|r| r["workers"].as_u64()).collect();
    assert_eq!(workers, [1, 2], "{v}");
    for r in runs {
        assert_eq!(r["system"], "kernel");
        assert!(r["mpps"].as_f64().is_some_and(|m| m > 0.0), "{r}");
    }
    assert_eq!(runs[0]["speedup"], 1.0);
    assert!(runs[1]["speedup"].as_f64().is_some_and(|s| s > 0.0));
    assert!(v["cpus"].as_u64().is_some_and(|c| c >= 1));
}

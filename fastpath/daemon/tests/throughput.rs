//! UDP throughput between two workload namespaces through the daemon, side by side with the
//! node's kernel forwarding the same traffic. A measurement, not a check: `#[ignore]`d, run
//! by hand with a release build and `tortie-perf` (its AF_XDP pktgen sends on the first
//! workload's eth0 and receives on the second's):
//!
//! ```text
//! cargo build --release -p tortie-perf   # or use an existing target/release/tortie-perf
//! TORTIE_PERF=target/release/tortie-perf \
//!   cargo test --release -p tortie-fastpath --test throughput -- --ignored --nocapture
//! ```

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const SECONDS: u32 = 5;

/// Runs pktgen: receiver in `rx_ns`, then sender in `tx_ns`; returns (sent, received, mpps).
fn pktgen(perf: &str, tx_ns: &str, rx_ns: &str, size: &str) -> (u64, u64, f64) {
    let mut rx = Command::new("ip")
        .args(["netns", "exec", rx_ns, perf, "pktgen", "--rx-dev", "eth0"])
        .args([
            "--duration",
            &(SECONDS + 3).to_string(),
            "--first-core",
            "0",
        ])
        .args(["-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pktgen receiver");
    let stderr = rx.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let ready = lines.any(|l| l.is_ok_and(|l| l.contains("ready")));
    assert!(ready, "receiver did not get ready");
    let tx = Command::new("ip")
        .args(["netns", "exec", tx_ns, perf, "pktgen", "--tx-dev", "eth0"])
        .args(["--src-range", "198.19.0.4", "--dst-range", "198.19.0.5"])
        .args([
            "--src-mac",
            "02:aa:00:00:00:04",
            "--dst-mac",
            "ee:ee:ee:ee:ee:ee",
        ])
        .args(["--flows", "16", "--frame-size", size])
        .args(["--duration", &SECONDS.to_string(), "--first-core", "0"])
        .args(["-o", "json"])
        .output()
        .expect("run pktgen sender");
    let rx = rx.wait_with_output().unwrap();
    let tx: serde_json::Value = serde_json::from_slice(&tx.stdout).expect("sender json");
    let rxj: serde_json::Value = serde_json::from_slice(&rx.stdout).expect("receiver json");
    (
        tx["tx_packets"].as_u64().unwrap_or(0),
        rxj["rx_packets"].as_u64().unwrap_or(0),
        rxj["mpps"].as_f64().unwrap_or(0.0),
    )
}

/// CPU time (user, system) of the daemon's `fp-worker-0` thread, in seconds.
fn worker_cpu_seconds(pid: u32) -> (f64, f64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0.0, 0.0);
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != "fp-worker-0" {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        return (field(11) / 100.0, field(12) / 100.0);
    }
    (0.0, 0.0)
}

fn kernel_forwarding(topo: &Topo) -> Result<(), String> {
    let n = topo.node.as_str();
    for w in &topo.workloads {
        ip(&[
            "-n",
            n,
            "link",
            "set",
            &w.host_dev,
            "address",
            "ee:ee:ee:ee:ee:ee",
        ])?;
        ip(&[
            "-n",
            n,
            "route",
            "add",
            &format!("{}/32", w.addr),
            "dev",
            &w.host_dev,
        ])?;
        let mac = w.mac.map(|b| format!("{b:02x}")).join(":");
        ip(&[
            "-n",
            n,
            "neigh",
            "add",
            &w.addr.to_string(),
            "lladdr",
            &mac,
            "dev",
            &w.host_dev,
        ])?;
    }
    run(
        "ip",
        &[
            "netns",
            "exec",
            n,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/ip_forward; for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done",
        ],
    )?;
    Ok(())
}

#[test]
#[ignore = "measurement: run by hand with --release and TORTIE_PERF"]
fn udp_64_byte_throughput_through_the_daemon_and_the_kernel() {
    let Ok(perf) = std::env::var("TORTIE_PERF") else {
        eprintln!("set TORTIE_PERF to a tortie-perf binary");
        return;
    };
    let perf = std::fs::canonicalize(perf).unwrap().display().to_string();
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    for size in ["64", "1518"] {
        let topo = Topo::new("tput", true);
        let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
        let mut control = Control::new(&topo.ring_path(), topo.tables());
        control.snapshot();
        let mode = std::env::var("TORTIE_MODE").unwrap_or_else(|_| "busy".into());
        let daemon = Daemon::start(&topo, 19096, &["--mode", &mode, "--cores", "1"]);
        assert!(wait_for(Duration::from_secs(5), || {
            daemon.get("/readyz").is_some_and(|(c, _)| c == 200)
        }));
        let cpu0 = worker_cpu_seconds(daemon.child.id());
        let rx0 = daemon.metric("tortie_fastpath_rx_packets_total", &[]);
        let busy0 = daemon.metric("tortie_fastpath_worker_busy_milliseconds_total", &[]);
        let (sent, got, mpps) = pktgen(&perf, &a.ns, &b.ns, size);
        std::thread::sleep(Duration::from_millis(300));
        let cpu1 = worker_cpu_seconds(daemon.child.id());
        let (user, sys) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
        let cpu = user + sys;
        let forwarded = daemon.metric("tortie_fastpath_rx_packets_total", &[]) - rx0;
        let busy_ms = daemon.metric("tortie_fastpath_worker_busy_milliseconds_total", &[]) - busy0;
        println!(
            "  worker 0: {busy_ms} ms in passes that moved frames = {:.3} Mpps while busy ({:.0} ns per frame, syscalls and descheduling included)",
            forwarded as f64 / (busy_ms.max(1) as f64 * 1e3),
            busy_ms as f64 * 1e6 / forwarded.max(1) as f64
        );
        println!(
            "  worker 0: {forwarded} frames in {cpu:.2} s of its CPU time ({user:.2} s user, {sys:.2} s system) = {:.3} Mpps per busy core, {:.0} ns per frame in user space",
            forwarded as f64 / cpu.max(0.01) / 1e6,
            user * 1e9 / forwarded.max(1) as f64
        );
        let drops = daemon.metric("tortie_fastpath_drops_total", &[]);
        println!(
            "tortie-fastpath ({mode}), {size}-byte frames: sent {sent}, received {got} ({:.1} %), {mpps:.3} Mpps received, fastpath drops {drops}",
            100.0 * got as f64 / sent.max(1) as f64
        );
        let body = daemon.get("/metrics").map(|(_, b)| b).unwrap_or_default();
        for l in body.lines().filter(|l| {
            (l.contains("drops_total") || l.contains("packets_total")) && !l.ends_with(" 0")
        }) {
            println!("  {l}");
        }
        drop(daemon);
        drop(topo);

        let topo = Topo::new("tputk", true);
        kernel_forwarding(&topo).unwrap();
        let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
        let (sent, got, mpps) = pktgen(&perf, &a.ns, &b.ns, size);
        println!(
            "kernel forwarding, {size}-byte frames: sent {sent}, received {got} ({:.1} %), {mpps:.3} Mpps received",
            100.0 * got as f64 / sent.max(1) as f64
        );
    }
}

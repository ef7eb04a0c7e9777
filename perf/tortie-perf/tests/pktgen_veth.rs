//! `tortie-perf pktgen` end to end over a veth pair, AF_XDP on both ends.
//!
//! Needs root (network namespaces, AF_XDP); as non-root each test prints why and returns. The
//! topology is built through netlink by the crate's own namespace layer (the generator itself
//! only takes interface names); namespaces are deleted by a Drop guard even when a test fails,
//! and every wait is bounded.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tortie_perf::netns::{self, link, link::VethEnd};

const BIN: &str = env!("CARGO_BIN_EXE_tortie-perf");

fn is_root() -> bool {
    // /proc/self/status "Uid:" line: real, effective, ...
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Namespace A holds `dev_a`; `dev_b` (its veth peer) is in namespace B, or also in A when
/// `split` is false. Deleted on drop.
struct Topo {
    ns_a: String,
    ns_b: String,
    dev_a: String,
    dev_b: String,
}

impl Topo {
    fn new(tag: &str, split: bool) -> Topo {
        let pid = std::process::id() % 100_000;
        let t = Topo {
            ns_a: format!("tpg-{tag}-{pid}-a"),
            ns_b: format!("tpg-{tag}-{pid}-b"),
            dev_a: format!("pg{tag}{pid}a"),
            dev_b: format!("pg{tag}{pid}b"),
        };
        if let Err(e) = t.build(split) {
            panic!("building the veth topology failed: {e}");
        }
        t
    }

    fn ns_of_b(&self, split: bool) -> &str {
        if split { &self.ns_b } else { &self.ns_a }
    }

    fn build(&self, split: bool) -> Result<(), String> {
        let (a, b) = (self.ns_a.clone(), self.ns_of_b(split).to_string());
        netns::create(&a).map_err(|e| e.to_string())?;
        if split {
            netns::create(&b).map_err(|e| e.to_string())?;
        }
        let (dev_a, dev_b) = (self.dev_a.clone(), self.dev_b.clone());
        let peer_ns = b.clone();
        netns::netlink(Some(&a), async move |h| {
            let end_a = VethEnd {
                name: &dev_a,
                mac: [2, 0, 0, 0, 0, 1],
            };
            let end_b = VethEnd {
                name: &dev_b,
                mac: [2, 0, 0, 0, 0, 2],
            };
            link::add_veth(&h, end_a, end_b, Some(&peer_ns), 2).await?;
            link::add_address(&h, &dev_a, "198.18.7.1".parse().expect("addr"), 24).await?;
            link::set_up(&h, &dev_a).await
        })
        .map_err(|e| e.to_string())?;
        let dev_b = self.dev_b.clone();
        netns::netlink(Some(&b), async move |h| {
            link::add_address(&h, &dev_b, "198.18.7.2".parse().expect("addr"), 24).await?;
            link::set_up(&h, &dev_b).await
        })
        .map_err(|e| e.to_string())
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        let _ = netns::delete(&self.ns_a);
        let _ = netns::delete(&self.ns_b);
    }
}

/// `tortie-perf pktgen ARGS` inside namespace `ns` (through the binary's own `netns-exec`
/// mode, which keeps the mounts as they are).
fn pktgen(ns: &str, args: &[&str]) -> Command {
    let mut c = netns::exec::command(std::path::Path::new(BIN), ns, false, BIN);
    c.arg("pktgen").args(args);
    c
}

/// Kills a child (by its own handle) if the test ends before it does.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Wait for `child` to exit within `limit`, then collect its output.
fn finish(mut reaper: Reaper, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    let child = reaper.0.as_mut().expect("child");
    while child.try_wait().expect("try_wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "pktgen did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    reaper
        .0
        .take()
        .expect("child")
        .wait_with_output()
        .expect("output")
}

fn json(out: &Output, who: &str) -> serde_json::Map<String, serde_json::Value> {
    assert!(
        out.status.success(),
        "{who} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{who}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let obj = v.as_object().expect("a JSON object").clone();
    for key in [
        "tx_packets",
        "rx_packets",
        "loss",
        "mpps",
        "gbps",
        "p50_us",
        "p99_us",
        "duration_s",
    ] {
        assert!(obj.contains_key(key), "{who}: key {key} missing in {obj:?}");
    }
    obj
}

const COUNT: u64 = 10_000;

/// Receiver in one namespace, sender in the other, two queues each: every packet sent
/// arrives, in order, with latency.
#[test]
fn two_namespaces_udp_v4_no_loss() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return;
    }
    let topo = Topo::new("s", true);
    let count = COUNT.to_string();
    let mut rx = pktgen(
        &topo.ns_b,
        &[
            "--rx-dev",
            &topo.dev_b,
            "--queues",
            "2",
            "--count",
            &count,
            "--duration",
            "20",
            "-o",
            "json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn receiver");
    // Forward the receiver's stderr, noting when it is bound.
    let stderr = rx.stderr.take().expect("stderr");
    let rx = Reaper(Some(rx));
    let (ready_tx, ready_rx) = mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("pktgen: ready") {
                let _ = ready_tx.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    assert!(
        ready_rx.recv_timeout(Duration::from_secs(15)).is_ok(),
        "receiver never became ready"
    );
    let tx = pktgen(
        &topo.ns_a,
        &[
            "--tx-dev",
            &topo.dev_a,
            "--queues",
            "2",
            "--count",
            &count,
            "--rate",
            "50000",
            "--flows",
            "16",
            "-o",
            "json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn sender");
    let tx_out = finish(Reaper(Some(tx)), Duration::from_secs(30));
    let rx_out = finish(rx, Duration::from_secs(30));
    let rx_log = log.join().unwrap_or_default();
    let t = json(&tx_out, "sender");
    let mut rx_out = rx_out;
    rx_out.stderr = rx_log.into_bytes();
    let r = json(&rx_out, "receiver");
    assert_eq!(t["tx_packets"], COUNT, "{t:?}");
    assert_eq!(r["rx_packets"], COUNT, "{r:?}");
    assert_eq!(r["loss"], 0, "{r:?}");
    assert_eq!(r["out_of_order"], 0, "{r:?}");
    let p50 = r["p50_us"].as_f64().expect("latency measured");
    let p99 = r["p99_us"].as_f64().expect("latency measured");
    assert!(p50 > 0.0 && p50 <= p99, "{r:?}");
    assert!(r["mpps"].as_f64().is_some_and(|m| m > 0.0), "{r:?}");
}

/// Sender and receiver in one process, IPv6 TCP with IMIX frame sizes: rx == tx, loss 0.
#[test]
fn one_process_tcp_v6_imix_no_loss() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return;
    }
    let topo = Topo::new("o", false);
    let out = pktgen(
        &topo.ns_a,
        &[
            "--tx-dev",
            &topo.dev_a,
            "--rx-dev",
            &topo.dev_b,
            "--ipv6",
            "--proto",
            "tcp",
            "--frame-size",
            "imix",
            "--flows",
            "4",
            "--count",
            "3000",
            "--rate",
            "30000",
            "-o",
            "json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn pktgen");
    let out = finish(Reaper(Some(out)), Duration::from_secs(30));
    let r = json(&out, "pktgen");
    assert_eq!(r["tx_packets"], 3000, "{r:?}");
    assert_eq!(r["rx_packets"], 3000, "{r:?}");
    assert_eq!(r["loss"], 0, "{r:?}");
    // IMIX averages (7*64 + 4*594 + 1518) / 12 = 362 bytes: well above 64-byte line rate bits.
    let (mpps, gbps) = (r["mpps"].as_f64().unwrap(), r["gbps"].as_f64().unwrap());
    assert!(gbps > mpps * 8.0 * 300.0 / 1000.0, "{r:?}");
}

/// Bad options fail before any socket is opened, naming the option.
#[test]
fn bad_options_are_named() {
    let out = Command::new(BIN)
        .args(["pktgen", "--tx-dev", "lo", "--dst-range", "198.18.0.1/40"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--dst-range"), "{err}");
    let out = Command::new(BIN)
        .args(["pktgen", "--frame-size", "63", "--rx-dev", "lo"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frame-size"));
    let out = Command::new(BIN)
        .args(["pktgen", "--tx-dev", "lo", "--queues", "2"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--flows: 1 is fewer than --queues 2"));
    let out = Command::new(BIN).args(["pktgen"]).output().expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tx-dev, --rx-dev or both"));
}

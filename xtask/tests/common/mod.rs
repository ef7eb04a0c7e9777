//! Shared by the lab tests: a lab that is always taken down, bounded retries, and a check list
//! that records every assertion so one run reports all that works and all that does not.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use xtask::lab::state::RUN_DIR;
use xtask::lab::workload::WorkloadSpec;
use xtask::lab::{Lab, UpOptions};

/// A lab taken down on drop, even when the test panics.
pub struct LabGuard(pub Option<Lab>);

impl LabGuard {
    /// Builds the binaries and brings a lab up (with or without the daemons).
    pub fn up(daemons: bool) -> LabGuard {
        LabGuard::up_with(daemons, false)
    }

    /// As [`LabGuard::up`], with IPv6 too when `ipv6`.
    pub fn up_with(daemons: bool, ipv6: bool) -> LabGuard {
        LabGuard::up_full(daemons, ipv6, false)
    }

    /// As [`LabGuard::up_with`]; `routes_from_bgp`: tortie-control routes other nodes' blocks
    /// only from what BGP learned.
    pub fn up_full(daemons: bool, ipv6: bool, routes_from_bgp: bool) -> LabGuard {
        let run_dir = PathBuf::from(RUN_DIR);
        assert!(
            Lab::attach(&run_dir).unwrap().is_none() && !xtask::lab::topology::exists(),
            "a lab is already up on this machine; `cargo xtask lab down` first"
        );
        let started = Instant::now();
        let bin_dir = xtask::build_lab_binaries(daemons, false).expect("build the lab binaries");
        eprintln!("binaries built in {:.1} s", started.elapsed().as_secs_f64());
        let options = UpOptions {
            run_dir,
            bin_dir,
            daemons,
            ready_timeout: Duration::from_secs(30),
            keep_on_failure: false,
            ipv6,
            routes_from_bgp,
        };
        let started = Instant::now();
        let lab = Lab::up(&options).expect("lab up");
        eprintln!("lab up in {:.1} s", started.elapsed().as_secs_f64());
        LabGuard(Some(lab))
    }

    pub fn lab(&mut self) -> &mut Lab {
        self.0.as_mut().expect("lab")
    }

    /// Attaches a workload with `role` and `name` labels.
    pub fn add(&mut self, name: &str, namespace: &str, node: &str, role: &str) -> String {
        let spec = WorkloadSpec::new(name, namespace, node, &[("role", role), ("name", name)]);
        self.lab()
            .add_workload(&spec)
            .expect("add workload")
            .address
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Some(lab) = self.0.take() {
            match lab.down() {
                Ok(report) => eprintln!("lab down: {report:?}"),
                Err(err) => eprintln!("lab down failed: {err}"),
            }
        }
    }
}

/// Retries `check` every 50 ms until it returns true or `bound` passes; returns how long it
/// took, or `None` when it never held.
pub fn eventually(bound: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if check() {
            return Some(started.elapsed());
        }
        if started.elapsed() >= bound {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Named checks, reported together at the end.
#[derive(Default)]
pub struct Checks(Vec<(String, bool, String)>);

impl Checks {
    pub fn record(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        let detail = detail.into();
        eprintln!("[{}] {name}: {detail}", if ok { "PASS" } else { "FAIL" });
        self.0.push((name.to_string(), ok, detail));
    }

    /// Whether any check failed.
    pub fn any_failed(&self) -> bool {
        self.0.iter().any(|(_, ok, _)| !ok)
    }

    /// Panics listing every failed check.
    pub fn assert_all(&self) {
        let failed: Vec<String> = self
            .0
            .iter()
            .filter(|(_, ok, _)| !ok)
            .map(|(name, _, detail)| format!("{name}: {detail}"))
            .collect();
        assert!(
            failed.is_empty(),
            "{} of {} checks failed:\n{}",
            failed.len(),
            self.0.len(),
            failed.join("\n")
        );
    }
}

/// Whether this process may build namespaces; tests print why they skip otherwise.
pub fn root_or_skip(test: &str) -> bool {
    if xtask::exec::is_root() {
        return true;
    }
    eprintln!("{test}: skipped (needs root to create network namespaces)");
    false
}

/// Runs tcpdump for one matching packet on `iface` in `namespace`, runs `action` once tcpdump
/// says it is listening (and once more a second later, in case the first packet raced it);
/// returns what it printed (empty when nothing matched within 5 s).
pub fn capture(namespace: &str, iface: &str, filter: &str, action: impl Fn()) -> String {
    use std::io::BufRead;
    let child = xtask::exec::in_netns(namespace, "timeout")
        .args(["5", "tcpdump", "-i", iface, "-nn", "-l", "-c", "1", filter])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return "tcpdump did not start".into();
    };
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
    }
    let _ = rx.recv_timeout(Duration::from_secs(3));
    action();
    std::thread::sleep(Duration::from_secs(1));
    action();
    let output = child
        .wait_with_output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    String::from_utf8_lossy(&output).trim().to_string()
}

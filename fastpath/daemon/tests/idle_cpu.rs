//! CPU an idle daemon uses in each `--mode` (ignored by default; a measurement, printed):
//! the node topology with two workloads, the uplink and the host veth attached, no traffic,
//! `utime + stime` of the process over 5 s from `/proc/PID/stat`. Needs root.
//!
//! `cargo test -p tortie-fastpath --test idle_cpu -- --ignored --nocapture`

mod common;

use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(10);
const WINDOW: Duration = Duration::from_secs(5);

/// `utime + stime` of `pid` in clock ticks (fields 14 and 15 of `/proc/PID/stat`).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may contain spaces: count fields after its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // `rest` starts at field 3, so utime (14) and stime (15) are at 11 and 12.
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn idle_share(mode: &str, port: u16) -> f64 {
    let topo = Topo::new(&format!("idle{}", &mode[..1]), true);
    let mut control = Control::new(&topo.ring_path(), topo.tables());
    control.snapshot();
    let daemon = Daemon::start(&topo, port, &["--mode", mode]);
    assert!(wait_for(WAIT, || daemon
        .get("/readyz")
        .is_some_and(|(c, _)| c == 200)
        && topo
            .workloads
            .iter()
            .all(|w| topo.xdp_attached(&w.host_dev))));
    std::thread::sleep(Duration::from_secs(1));
    let pid = daemon.pid().as_raw();
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(WINDOW);
    let (t1, c1) = (Instant::now(), cpu_ticks(pid));
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let cpu_s = (c1 - c0) as f64 / hz;
    let share = cpu_s / (t1 - t0).as_secs_f64();
    eprintln!(
        "mode {mode}: {cpu_s:.2} s CPU in {:.2} s = {:.1} % of a core",
        (t1 - t0).as_secs_f64(),
        share * 100.0
    );
    share
}

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn idle_cpu_busy_vs_adaptive() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return;
    }
    let adaptive = idle_share("adaptive", 19093);
    let busy = idle_share("busy", 19092);
    assert!(busy > 0.5, "busy mode spins a core: {busy}");
    assert!(adaptive < 0.2, "adaptive mode idles: {adaptive}");
}

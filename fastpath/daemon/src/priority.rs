//! Real-time scheduling for the worker threads (`--worker-rt-priority`).
//!
//! The kernel forwards in softirq context, which runs ahead of every task on its CPU; a
//! userspace worker is an ordinary task. On a core shared with other work (a small node,
//! builds, other pods) an adaptive worker woken by a frame waits in the run queue behind the
//! other tasks' slices: `tortie-perf connrate` measured the worker runnable-but-waiting for
//! 27-68 % of a trial and a p99 connect time of 23-44 ms (docs/perf/node.md, "connrate").
//!
//! A nice value does not fix that: the fair scheduler shares a core between task *groups*
//! (cgroups, or with `kernel.sched_autogroup_enabled` one group per session) before it looks
//! at nice values, so a nice -20 worker still gets only its group's share against builds in
//! other groups. Worse, a group's weight is split across CPUs by its tasks' weighted load, so
//! a nice -20 worker pulls its group's weight onto its own core and starves the group's tasks
//! on the other cores (measured: with the benchmark's end hosts in the daemon's session, a
//! nice -20 worker cut the connection rate to 3,400-16,000 per second, 700-1,400 in busy
//! mode, against 10,000-20,000 at nice 0).
//!
//! `SCHED_FIFO` is above every fair-class group, as softirq is above every task: a woken
//! worker runs at once. An adaptive worker sleeps in `poll(2)` when idle, so it takes its core
//! only while frames flow; under sustained load it may take up to the kernel's real-time
//! budget (`kernel.sched_rt_runtime_us`, 95 % by default) of its core, and the kernel's own
//! per-CPU threads there (ksoftirqd, kworkers) wait for the rest. Two workers at the same
//! priority on one core do not share it while both spin (FIFO has no time slices), hence off
//! by default and not for busy mode on shared cores.
//!
//! The policy is set with util-linux's `chrt --fifo --pid PRIO TID` on the worker's own thread
//! id (a control-path call at worker start; the workspace forbids `unsafe`, and neither nix
//! nor rustix wraps `sched_setscheduler`). It needs `CAP_SYS_NICE` and a real-time budget in
//! the daemon's cgroup; without them the worker logs a warning and runs as an ordinary task.

use std::process::{Command, Stdio};

use rustix::thread::gettid;

/// Scheduling policy number of `SCHED_FIFO` (as in `/proc/PID/stat`, field 41).
pub const SCHED_FIFO: u32 = 1;

/// The calling thread's id.
pub fn thread_id() -> i32 {
    gettid().as_raw_nonzero().get()
}

/// Puts thread `tid` under `SCHED_FIFO` at `priority` (1..=99) with `chrt`.
pub fn set_fifo(tid: i32, priority: u8) -> Result<(), String> {
    let out = Command::new("chrt")
        .args(["--fifo", "--pid", &priority.to_string(), &tid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running chrt: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "chrt --fifo --pid {priority} {tid}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `(policy, rt_priority)` of thread `tid` of this process, from `/proc/self/task/TID/stat`.
pub fn policy_of(tid: i32) -> Result<(u32, u32), String> {
    let path = format!("/proc/self/task/{tid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_stat_policy(&stat).ok_or_else(|| format!("{path}: no policy fields"))
}

/// Fields 40 (`rt_priority`) and 41 (`policy`) of a `/proc/PID/stat` line (proc(5)). The
/// command name (field 2) may hold spaces and parentheses, so fields are counted after the
/// last `)`.
pub fn parse_stat_policy(stat: &str) -> Option<(u32, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3.
    let mut fields = rest.split_whitespace().skip(40 - 3);
    let rt_priority = fields.next()?.parse().ok()?;
    let policy = fields.next()?.parse().ok()?;
    Some((policy, rt_priority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A real line (fields 3..52), with a command name holding ") (" and spaces.
        let line = "1234 (fp-worker) (x 0) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 6 0 0 -51 0 \
                    3 0 100 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 50 1 0 0 \
                    0 0 0 0 0 0 0 0 0";
        assert_eq!(parse_stat_policy(line), Some((1, 50)));
        assert_eq!(parse_stat_policy("1 (x) S 1 2"), None, "too short");
        assert_eq!(parse_stat_policy("no parenthesis"), None);
    }

    #[test]
    fn fifo_applies_to_one_thread_only() {
        let main = policy_of(thread_id()).expect("own policy");
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            let tid = thread_id();
            let set = set_fifo(tid, 1);
            let _ = tx.send((set, policy_of(tid)));
            // Stay alive (and sleeping) until the main thread has looked.
            let _ = done_rx.recv_timeout(std::time::Duration::from_secs(5));
        });
        let (set, seen) = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("thread answered");
        let _ = done_tx.send(());
        h.join().expect("thread");
        match set {
            Ok(()) => assert_eq!(seen.expect("policy"), (SCHED_FIFO, 1)),
            // No CAP_SYS_NICE or no real-time budget here: the error names the command.
            Err(e) => {
                assert!(e.contains("chrt"), "{e}");
                eprintln!("skipping the FIFO check: {e}");
            }
        }
        assert_eq!(
            policy_of(thread_id()).expect("own policy"),
            main,
            "other threads keep theirs"
        );
    }

    #[test]
    fn a_missing_thread_is_an_error_not_a_panic() {
        assert!(policy_of(i32::MAX).is_err());
        assert!(set_fifo(i32::MAX, 1).is_err());
    }
}

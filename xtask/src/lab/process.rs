//! Starting, watching and stopping the lab's daemons by PID.
//!
//! A daemon is started with `ip netns exec` (which execs the daemon in place, so the PID is the
//! daemon's), in its own process group (a Ctrl-C in the terminal reaches the demo, which then
//! tears the lab down, not the daemons directly), with stdout and stderr in a file beside its
//! log. It is identified by PID *and* start time, so a stop never signals a stranger that reused
//! the PID.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Result, XtaskError};
use crate::exec::{describe, in_netns_with_sysfs};

use super::state::ProcessRecord;

/// How long a daemon gets to exit after SIGTERM before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(5);

/// What one start asks for.
pub struct Launch<'a> {
    /// The node.
    pub node: &'a str,
    /// `control` or `fastpath`.
    pub role: &'a str,
    /// The node's network namespace.
    pub netns: &'a str,
    /// The binary.
    pub program: &'a Path,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Its log file (passed with `--log-file` by the caller, recorded here).
    pub log: &'a Path,
    /// Where its stdout and stderr go.
    pub output: &'a Path,
}

/// Starts a daemon and returns its record and child handle.
pub fn start(launch: &Launch<'_>) -> Result<(ProcessRecord, Child)> {
    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(launch.output)
        .map_err(|err| XtaskError::file(launch.output, err))?;
    let stderr = output
        .try_clone()
        .map_err(|err| XtaskError::file(launch.output, err))?;
    let mut command = in_netns_with_sysfs(launch.netns, launch.program);
    command
        .args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(stderr)
        .process_group(0);
    let text = describe(&command);
    let child = command.spawn().map_err(|source| XtaskError::Spawn {
        program: launch.program.display().to_string(),
        source,
    })?;
    let pid = child.id();
    // The start time can be read as soon as the process exists.
    let start_ticks = start_ticks(pid).unwrap_or(0);
    Ok((
        ProcessRecord {
            node: launch.node.to_string(),
            role: launch.role.to_string(),
            pid,
            start_ticks,
            command: text,
            log: launch.log.to_path_buf(),
        },
        child,
    ))
}

/// The process's start time in clock ticks since boot, from `/proc/PID/stat`.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Fields of `/proc/PID/stat` after the command name (index 0 is the state, field 3).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

/// Whether the recorded process is still running (a reused PID is not; nor is a zombie whose
/// threads have all exited).
///
/// After SIGKILL the thread-group leader turns zombie at once while its other threads may still
/// be tearing down (AF_XDP sockets, for instance) and still hold the process's files, such as
/// a listening socket: until the last thread is gone, a restarted daemon could not bind its
/// port. So a zombie counts as running while `/proc/PID/task` lists more than the leader.
pub fn is_running(record: &ProcessRecord) -> bool {
    let Some(fields) = stat_fields(record.pid) else {
        return false;
    };
    let state = fields.first().map(String::as_str).unwrap_or("X");
    let same = fields.get(19).and_then(|t| t.parse::<u64>().ok()) == Some(record.start_ticks);
    let threads = std::fs::read_dir(format!("/proc/{}/task", record.pid))
        .map(|dir| dir.count())
        .unwrap_or(0);
    same && state != "X" && (state != "Z" || threads > 1)
}

/// Sends SIGTERM to the recorded process if it is still the one recorded.
pub fn terminate(record: &ProcessRecord) {
    if is_running(record) {
        let _ = kill(Pid::from_raw(record.pid as i32), Signal::SIGTERM);
    }
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was not running (already exited, or the PID now belongs to another process).
    AlreadyGone,
    /// It exited after SIGTERM.
    Terminated,
    /// It ignored SIGTERM for [`TERM_GRACE`] and was killed.
    Killed,
}

/// Children this process started, kept so that exited ones are reaped (a zombie would still
/// look like a PID in use).
#[derive(Debug, Default)]
pub struct Children(HashMap<u32, Child>);

impl Children {
    /// Keeps `child`.
    pub fn adopt(&mut self, child: Child) {
        self.0.insert(child.id(), child);
    }

    /// Reaps `pid` if it is our child and has exited; returns its exit status in words.
    pub fn reap(&mut self, pid: u32) -> Option<String> {
        let child = self.0.get_mut(&pid)?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.0.remove(&pid);
                Some(status.to_string())
            }
            _ => None,
        }
    }

    /// Stops the recorded daemon: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, record: &ProcessRecord, grace: Duration) -> Stopped {
        self.reap(record.pid);
        if !is_running(record) {
            self.0.remove(&record.pid);
            return Stopped::AlreadyGone;
        }
        terminate(record);
        self.finish(record, grace)
    }

    /// After [`terminate`]: waits up to `grace` for the exit, then sends SIGKILL.
    pub fn finish(&mut self, record: &ProcessRecord, grace: Duration) -> Stopped {
        if self.wait_gone(record, grace) {
            return Stopped::Terminated;
        }
        let _ = kill(Pid::from_raw(record.pid as i32), Signal::SIGKILL);
        self.wait_gone(record, Duration::from_secs(2));
        Stopped::Killed
    }

    /// Sends SIGKILL (a crash, for tests) and waits until the process is gone.
    pub fn crash(&mut self, record: &ProcessRecord) -> bool {
        if !is_running(record) {
            return false;
        }
        let _ = kill(Pid::from_raw(record.pid as i32), Signal::SIGKILL);
        self.wait_gone(record, Duration::from_secs(2))
    }

    fn wait_gone(&mut self, record: &ProcessRecord, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        loop {
            self.reap(record.pid);
            if !is_running(record) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The last `lines` lines of a file (empty when it cannot be read), for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_start_time_and_sees_it_running() {
        let pid = std::process::id();
        let ticks = start_ticks(pid).expect("own stat");
        let me = ProcessRecord {
            node: "n".into(),
            role: "test".into(),
            pid,
            start_ticks: ticks,
            command: String::new(),
            log: "/dev/null".into(),
        };
        assert!(is_running(&me));
        let reused = ProcessRecord {
            start_ticks: ticks + 1,
            ..me
        };
        assert!(!is_running(&reused), "a different start time is a stranger");
    }

    #[test]
    fn stops_a_child_with_sigterm_and_reports_a_gone_one() {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let record = ProcessRecord {
            node: "n".into(),
            role: "test".into(),
            pid: child.id(),
            start_ticks: start_ticks(child.id()).unwrap(),
            command: "sleep 30".into(),
            log: "/dev/null".into(),
        };
        let mut children = Children::default();
        children.adopt(child);
        let started = Instant::now();
        assert_eq!(children.stop(&record, TERM_GRACE), Stopped::Terminated);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(children.stop(&record, TERM_GRACE), Stopped::AlreadyGone);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let path = std::env::temp_dir().join(format!("xtask-tail-{}", std::process::id()));
        std::fs::write(&path, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&path, 2), "b\nc");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(tail(&path, 2), "");
    }
}

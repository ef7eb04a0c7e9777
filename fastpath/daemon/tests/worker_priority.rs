//! `--worker-rt-priority`: the worker thread (and only it) runs under SCHED_FIFO; without the
//! flag every thread is an ordinary task. Needs root (CAP_SYS_NICE) and `chrt`; prints why
//! and returns otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tortie_fastpath::priority::{SCHED_FIFO, parse_stat_policy};

/// `(thread name, policy, rt_priority)` of every thread of `pid`.
fn threads(pid: u32) -> Vec<(String, u32, u32)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let (policy, prio) = parse_stat_policy(&stat)?;
            Some((comm.trim().to_owned(), policy, prio))
        })
        .collect()
}

fn start(dir: &Path, extra: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join("log")).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_tortie-fastpath"))
        .args(["--ring", dir.join("ring").to_str().expect("utf-8")])
        .args([
            "--status-file",
            dir.join("status.json").to_str().expect("utf-8"),
        ])
        .args(["--metrics", "127.0.0.1:0", "--cores", "0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("start tortie-fastpath")
}

/// Waits (bounded) until the worker thread exists and has logged its start, then returns
/// the thread list.
fn worker_threads(child: &Child, dir: &Path) -> Vec<(String, u32, u32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        let t = threads(child.id());
        if log.contains("worker started") && t.iter().any(|(n, _, _)| n == "fp-worker-0") {
            return t;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    threads(child.id())
}

/// The first worker's `rt_priority` in the status file, once it shows `want` (bounded wait:
/// the file is rewritten every second); the last value seen otherwise.
fn status_rt_priority(dir: &Path, want: u64) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = std::fs::read(dir.join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["workers"][0]["rt_priority"].as_u64());
        if seen == Some(want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    seen
}

fn stop(mut child: Child) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tfp-prio-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn only_the_worker_runs_fifo_and_only_when_asked() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: needs root (CAP_SYS_NICE)");
        return;
    }
    if Command::new("chrt")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipping: no chrt");
        return;
    }
    for (tag, extra, want) in [
        ("rt", &["--worker-rt-priority", "3"][..], Some(3)),
        ("plain", &[][..], None),
    ] {
        let dir = tempdir(tag);
        let child = start(&dir, extra);
        let t = worker_threads(&child, &dir);
        let published = status_rt_priority(&dir, u64::from(want.unwrap_or(0)));
        stop(child);
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        let worker = t.iter().find(|(n, _, _)| n == "fp-worker-0");
        let Some((_, policy, prio)) = worker else {
            panic!("no worker thread; threads {t:?}; log:\n{log}");
        };
        match want {
            Some(p) => {
                if log.contains("could not make the worker SCHED_FIFO") {
                    // A container without a real-time budget: the daemon said so and ran on.
                    eprintln!("skipping the FIFO check: no real-time budget here");
                    continue;
                }
                assert_eq!((*policy, *prio), (SCHED_FIFO, p), "log:\n{log}");
                assert!(log.contains("rt_priority=3"), "start logged: {log}");
            }
            None => assert_eq!((*policy, *prio), (0, 0), "ordinary task by default"),
        }
        assert_eq!(
            published,
            Some(u64::from(want.unwrap_or(0))),
            "status file's workers[0].rt_priority"
        );
        for (name, policy, _) in t.iter().filter(|(n, _, _)| n != "fp-worker-0") {
            assert_eq!(*policy, 0, "{name} stays an ordinary task");
        }
    }
}

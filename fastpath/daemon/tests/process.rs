//! The daemon as a process, without network namespaces (runs as any user): it waits for the
//! ring, applies what control sends, counts bad input in its status file, and exits 0 on
//! SIGTERM.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tortie_abi::{Generation, Message, Tables};
use tortie_ring::{MessageKind, Producer};

fn status(path: &Path) -> serde_json::Value {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn waits_for_the_ring_applies_snapshots_counts_bad_input_and_stops_cleanly() {
    let dir = std::env::temp_dir().join(format!("tfp-proc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ring = dir.join("ring");
    let status_file = dir.join("run/status.json");
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tortie-fastpath"))
        .args(["--ring", ring.to_str().unwrap()])
        .args(["--status-file", status_file.to_str().unwrap()])
        .args(["--metrics", "127.0.0.1:0", "--cores", "0"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    let result = std::panic::catch_unwind(|| {
        // No ring yet: not ready, waiting, status written anyway.
        assert!(wait_for(|| status(&status_file)["pid"] == child.id()));
        let s = status(&status_file);
        assert_eq!(s["ready"], false);
        assert_eq!(s["awaiting_snapshot"], true);
        assert_eq!(s["generation"], 0);
        assert_eq!(s["mode"], "adaptive");

        // Control appears: a snapshot with no interfaces (no uplink) makes it ready.
        let mut p = Producer::create_or_open(&ring, 1 << 16).unwrap();
        let snap = Message::Snapshot {
            generation: Generation(7),
            tables: Tables::default(),
        };
        p.try_send(MessageKind::SNAPSHOT, 7, &snap.encode())
            .unwrap();
        assert!(wait_for(|| status(&status_file)["generation"] == 7));
        assert!(wait_for(|| status(&status_file)["ready"] == true));

        // A delta on the wrong base and an undecodable payload: counted, generation kept.
        let delta = Message::Delta {
            base: Generation(3),
            generation: Generation(4),
            ops: vec![],
        };
        p.try_send(MessageKind::DELTA, 4, &delta.encode()).unwrap();
        p.try_send(MessageKind::DELTA, 8, b"garbage").unwrap();
        assert!(wait_for(|| {
            let s = status(&status_file);
            s["ring"]["skipped_deltas"] == 1 && s["ring"]["decode_errors"] == 1
        }));
        let s = status(&status_file);
        assert_eq!(s["generation"], 7);
        assert_eq!(s["ring"]["received_messages"], 3);
        assert_eq!(s["interfaces"].as_array().map(Vec::len), Some(0));
    });
    let _ = kill(pid, Signal::SIGTERM);
    let mut code = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            code = st.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if code.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        eprintln!("daemon log:\n{log}");
        std::panic::resume_unwind(e);
    }
    assert_eq!(code, Some(0), "exit status; log:\n{log}");
    assert!(log.contains("waiting for tortie-control"), "{log}");
}

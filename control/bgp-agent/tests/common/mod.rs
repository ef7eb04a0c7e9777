//! Shared by the BIRD interop tests: a BIRD process removed with its files whatever
//! happens, the root/binary check, and a bounded wait.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One BIRD process; removed with its files even when an assertion fails.
pub struct Bird {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
}

impl Bird {
    /// Starts BIRD named `name` with `conf` (a log line to its own folder is prepended).
    pub fn start(name: &str, conf: &str) -> Bird {
        let dir = std::env::temp_dir().join(format!("tortie-agent-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = format!("log \"{}/bird.log\" all;\n{conf}", dir.display());
        let path = dir.join("bird.conf");
        std::fs::write(&path, conf).unwrap();
        let sock = dir.join("bird.ctl");
        let child = Command::new("bird")
            .arg("-f")
            .arg("-c")
            .arg(&path)
            .arg("-s")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting bird (Debian package bird2)");
        Bird { child, dir, sock }
    }

    pub fn show(&self, args: &[&str]) -> String {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("birdc (Debian package bird2)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bird.log")).unwrap_or_default()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the test can run: root (else it prints SKIPPED for `test`), and BIRD installed
/// (else it fails: the Debian package bird2 is a test dependency).
pub fn runnable(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("SKIPPED {test}: needs root");
        return false;
    }
    for bin in ["bird", "birdc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{bin} is missing: install the Debian package bird2");
    }
    true
}

/// Polls `f` every 100 ms for at most `secs` seconds.
pub fn wait(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

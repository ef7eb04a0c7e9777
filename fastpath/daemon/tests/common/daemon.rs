//! The daemon process inside the node namespace, and its HTTP endpoint.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{Topo, in_ns};

/// The daemon, started inside the node namespace; killed on drop if still running.
pub struct Daemon {
    pub child: Child,
    pub metrics: SocketAddr,
    pub node: String,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(topo: &Topo, metrics_port: u16, extra: &[&str]) -> Daemon {
        let metrics: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
        let log = topo.dir.join(format!(
            "fastpath-{}.log",
            Instant::now().elapsed().as_nanos()
        ));
        let log_file = File::create(&log).unwrap();
        let mut args: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            topo.node.clone(),
            env!("CARGO_BIN_EXE_tortie-fastpath").into(),
            "--ring".into(),
            topo.ring_path().display().to_string(),
            "--status-file".into(),
            topo.status_path().display().to_string(),
            "--metrics".into(),
            metrics.to_string(),
            "--log-level".into(),
            "info".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("spawn tortie-fastpath");
        Daemon {
            child,
            metrics,
            node: topo.node.clone(),
            log,
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` from the daemon's endpoint (inside the node namespace): status and body.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let (addr, path, ns) = (self.metrics, path.to_owned(), self.node.clone());
        in_ns(&ns, move || http_get(addr, &path))
    }

    /// Sums the samples of `metric` whose labels contain every `label` (`key="value"`).
    pub fn metric(&self, metric: &str, labels: &[&str]) -> u64 {
        let Some((_, body)) = self.get("/metrics") else {
            return 0;
        };
        body.lines()
            .filter(|l| {
                l.starts_with(metric)
                    && (l[metric.len()..].starts_with('{') || l[metric.len()..].starts_with(' '))
                    && labels.iter().all(|lab| l.contains(lab))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }

    pub fn kill9(&mut self) {
        let _ = kill(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (waits up to 10 s, then SIGKILL).
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = kill(self.pid(), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}

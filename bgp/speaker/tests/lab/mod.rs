//! Network-namespace lab for interop tests against real BGP daemons.
//!
//! Each test builds its own topology: a bridge in a hub namespace and one namespace per
//! speaker, with addresses from 198.18.0.0/24 and 2001:db8:ffff::/64 that exist only inside
//! those namespaces. Our speaker (the SUT) runs in-process on a thread that has entered its
//! namespace. Everything started is recorded by PID and torn down in `Drop`, also when the
//! test fails. Every wait is bounded.
//!
//! The tests need root (namespaces) and the Debian packages `bird2`, `gobgpd`, `frr` and
//! `exabgp`. Without root they are skipped with a message; as root, a missing daemon is a
//! test failure that names the package.

#![allow(dead_code)]

pub mod daemons;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use tortie_bgp::runtime::{self, SpeakerEvent, SpeakerHandle};
use tortie_bgp::wire::Prefix;
use tortie_bgp::{BestRoute, RouteEvent, SpeakerConfig};

/// True when the lab can run (root). Prints why not otherwise.
pub fn can_run(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED {test}: needs root for network namespaces");
    false
}

/// Fails the test clearly when a daemon binary is missing.
pub fn require(binary: &str, package: &str) {
    let found = ["/usr/sbin", "/usr/bin", "/usr/lib/frr", "/sbin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(binary).exists());
    assert!(
        found,
        "{binary} not found: install the Debian package `{package}` (apt-get install {package})"
    );
}

pub fn v4(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, i))
}

pub fn v6(i: u8) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        0xffff,
        0,
        0,
        0,
        0,
        u16::from(i),
    ))
}

pub fn pfx(s: &str) -> Prefix {
    s.parse().unwrap()
}

/// Runs a command to completion with a time limit; returns (success, stdout+stderr).
pub fn sh(args: &[&str], limit: Duration) -> (bool, String) {
    let mut child = match Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return (false, format!("{}: {e}", args[0])),
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return (false, format!("{args:?} timed out"));
            }
        }
    }
    match child.wait_with_output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// Polls `f` every 200 ms for at most `secs` seconds.
pub fn wait(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f()
}

/// One topology.
pub struct Lab {
    /// Short unique tag (namespace and interface names).
    pub tag: String,
    /// Working directory for configs, sockets and logs.
    pub dir: PathBuf,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    pid_files: Vec<PathBuf>,
    sut: Option<Sut>,
}

/// Our speaker, running in its namespace.
pub struct Sut {
    pub handle: SpeakerHandle,
    events: UnboundedReceiver<SpeakerEvent>,
    /// Every event seen so far.
    pub seen: Vec<SpeakerEvent>,
    stop: Option<std_mpsc::Sender<bool>>,
    crash: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Lab {
    /// Creates the hub and one namespace per `(name, index)`; node `index` gets 198.18.0.index
    /// and 2001:db8:ffff::index.
    pub fn new(tag: &str, nodes: &[(&str, u8)]) -> Lab {
        let dir = std::env::temp_dir().join(format!("tortie-bgp-lab-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            tag: tag.to_string(),
            dir,
            namespaces: vec![],
            children: vec![],
            pid_files: vec![],
            sut: None,
        };
        // Leftovers of an earlier run that was killed before its Drop ran carry the same
        // names (ours by construction): remove them first.
        for (name, i) in nodes.iter().copied().chain([("hub", 0)]) {
            let _ = sh(
                &["ip", "netns", "del", &lab.ns(name)],
                Duration::from_secs(10),
            );
            if name != "hub" {
                let _ = sh(
                    &["ip", "link", "del", &format!("v{tag}{i}")],
                    Duration::from_secs(10),
                );
            }
        }
        let hub = lab.ns("hub");
        lab.ip(&["netns", "add", &hub]);
        lab.namespaces.push(hub.clone());
        lab.ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        lab.ip(&["-n", &hub, "link", "set", "br0", "up"]);
        for (name, i) in nodes {
            let ns = lab.ns(name);
            lab.ip(&["netns", "add", &ns]);
            lab.namespaces.push(ns.clone());
            let veth = format!("v{tag}{i}");
            lab.ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            lab.ip(&["link", "set", &veth, "netns", &hub]);
            lab.ip(&["-n", &hub, "link", "set", &veth, "master", "br0", "up"]);
            lab.ip(&["-n", &ns, "link", "set", "lo", "up"]);
            lab.ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("198.18.0.{i}/24"),
                "dev",
                "eth0",
            ]);
            lab.ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("2001:db8:ffff::{i}/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
            lab.ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    /// The namespace name of a node.
    pub fn ns(&self, name: &str) -> String {
        format!("tbgp-{}-{name}", self.tag)
    }

    fn ip(&self, args: &[&str]) {
        let mut v = vec!["ip"];
        v.extend_from_slice(args);
        let (ok, out) = sh(&v, Duration::from_secs(10));
        assert!(ok, "ip {args:?}: {out}");
    }

    /// Writes a file under the lab directory and returns its path.
    pub fn file(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.dir.join(rel);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(&p, content).unwrap();
        p
    }

    /// Starts a long-running process in a node's namespace (`ip netns exec` keeps one exec
    /// chain, so the child's PID is the daemon's). Output goes to `<label>.log`.
    pub fn spawn(&mut self, node: &str, label: &str, args: &[&str]) {
        let log = fs::File::create(self.dir.join(format!("{label}.log"))).unwrap();
        let err = log.try_clone().unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap();
        self.children.push((label.to_string(), child));
    }

    /// Kills a process started with [`Lab::spawn`] with SIGKILL (like `kill -9`).
    pub fn kill(&mut self, label: &str) {
        if let Some(pos) = self.children.iter().position(|(l, _)| l == label) {
            let (_, mut c) = self.children.remove(pos);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Registers a pid file of a self-daemonizing process for cleanup.
    pub fn track_pid_file(&mut self, p: PathBuf) {
        self.pid_files.push(p);
    }

    /// Runs a command inside a node's namespace.
    pub fn exec(&self, node: &str, args: &[&str]) -> (bool, String) {
        let ns = self.ns(node);
        let mut v = vec!["ip", "netns", "exec", ns.as_str()];
        v.extend_from_slice(args);
        sh(&v, Duration::from_secs(15))
    }

    /// The contents of a log written by a spawned process.
    pub fn log(&self, label: &str) -> String {
        fs::read_to_string(self.dir.join(format!("{label}.log"))).unwrap_or_default()
    }

    /// Starts our speaker in namespace `node`.
    pub fn start_sut(&mut self, node: &str, cfg: SpeakerConfig) {
        let path = format!("/run/netns/{}", self.ns(node));
        let (tx, rx) = std_mpsc::channel();
        let (stop_tx, stop_rx) = std_mpsc::channel::<bool>();
        let thread = std::thread::spawn(move || {
            let f = fs::File::open(&path).unwrap();
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let r = runtime::spawn(cfg);
                let handle = r.as_ref().ok().map(|(h, _)| h.clone());
                tx.send(r.map_err(|e| e.to_string())).unwrap();
                // Park until told to stop (polling keeps the runtime's tasks running).
                let crash = loop {
                    match stop_rx.try_recv() {
                        Ok(c) => break c,
                        Err(std_mpsc::TryRecvError::Disconnected) => break false,
                        Err(std_mpsc::TryRecvError::Empty) => {
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                    }
                };
                if let Some(h) = handle.filter(|_| !crash) {
                    let _ = tokio::time::timeout(Duration::from_secs(2), h.shutdown()).await;
                }
            });
        });
        let (handle, events) = rx.recv().unwrap().expect("speaker starts");
        self.sut = Some(Sut {
            handle,
            events,
            seen: vec![],
            stop: Some(stop_tx),
            crash: false,
            thread: Some(thread),
        });
    }

    /// Our speaker.
    pub fn sut(&mut self) -> &mut Sut {
        self.sut.as_mut().expect("SUT started")
    }

    /// Kills our speaker without a Cease: its runtime is dropped, sockets close under the
    /// peers (what they see when the process is killed).
    pub fn crash_sut(&mut self) {
        if let Some(mut s) = self.sut.take() {
            s.crash = true;
            s.stop();
        }
    }

    /// Whether a file under the lab directory contains `needle`.
    pub fn log_contains(&self, rel: &str, needle: &str) -> bool {
        fs::read_to_string(self.dir.join(rel)).is_ok_and(|s| s.contains(needle))
    }

    /// Stops our speaker (its sessions see a Cease).
    pub fn stop_sut(&mut self) {
        if let Some(mut s) = self.sut.take() {
            s.stop();
        }
    }
}

impl Sut {
    /// Collects pending events.
    pub fn poll(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            self.seen.push(ev);
        }
    }

    /// The current best route for a prefix, from the event stream.
    pub fn route(&mut self, p: Prefix) -> Option<BestRoute> {
        self.poll();
        let mut cur = None;
        for ev in &self.seen {
            match ev {
                SpeakerEvent::Route(RouteEvent::Added(q, r) | RouteEvent::Changed(q, r))
                    if *q == p =>
                {
                    cur = Some(r.clone())
                }
                SpeakerEvent::Route(RouteEvent::Withdrawn(q)) if *q == p => cur = None,
                _ => {}
            }
        }
        cur
    }

    /// Waits (bounded) until `p` is present (`want`) or absent.
    pub fn wait_route(&mut self, p: Prefix, want: bool, secs: u64) -> bool {
        wait(secs, || self.route(p).is_some() == want)
    }

    /// Number of events about `p` after index `from` of `seen`.
    pub fn events_for(&mut self, p: Prefix, from: usize) -> Vec<SpeakerEvent> {
        self.poll();
        self.seen[from..]
            .iter()
            .filter(|e| matches!(e, SpeakerEvent::Route(r) if r.prefix() == p))
            .cloned()
            .collect()
    }

    /// Peer status through the handle.
    pub fn status(&self) -> Vec<tortie_bgp::runtime::PeerStatus> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(self.handle.status()).unwrap_or_default()
    }

    /// Whether the session with `addr` is Established.
    pub fn established(&self, addr: IpAddr) -> bool {
        self.status()
            .iter()
            .any(|s| s.address == addr && s.state == tortie_bgp::fsm::State::Established)
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(self.crash);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_sut();
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for f in &self.pid_files {
            if let Ok(s) = fs::read_to_string(f)
                && let Ok(pid) = s.trim().parse::<i32>()
                && pid > 1
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        for ns in self.namespaces.iter().rev() {
            let _ = sh(&["ip", "netns", "del", ns], Duration::from_secs(10));
        }
        if std::env::var_os("TORTIE_BGP_LAB_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

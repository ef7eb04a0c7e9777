//! Test support: network namespaces that remove themselves, a SQLite datastore, the daemon
//! run inside a namespace, and a ring reader that keeps the fastpath's view of the tables.
//!
//! Everything runs inside namespaces the test creates, with addresses from 198.18.0.0/15;
//! every wait is bounded; namespaces, daemons and files are removed on drop, also when an
//! assertion fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tortie_abi as abi;
use tortie_datastore::{Datastore, SqliteStore, keys};
use tortie_ring::{Consumer, MessageKind};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Runs a command, panicking with its output when it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!(
            "tortie-ctl-{}-{}-{tag}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    /// `ip -n NS args...`
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "-n", self.name.as_str()];
        full.extend_from_slice(args);
        run(&full)
    }

    /// The index of a link in this namespace.
    pub fn index(&self, link: &str) -> u32 {
        let out = self.ip(&["-o", "link", "show", "dev", link]);
        out.split(':').next().unwrap().trim().parse().unwrap()
    }

    /// The MAC of a link in this namespace.
    pub fn mac(&self, link: &str) -> [u8; 6] {
        let out = self.ip(&["-o", "link", "show", "dev", link]);
        let text = out
            .split("link/ether ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let mut mac = [0; 6];
        for (slot, part) in mac.iter_mut().zip(text.split(':')) {
            *slot = u8::from_str_radix(part, 16).unwrap();
        }
        mac
    }

    pub fn has_link(&self, link: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.name, "link", "show", "dev", link])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The lab: node namespace `node` with uplink `up0` 198.18.1.11/24, a router namespace
/// (bridge `br0` 198.18.1.1/24, the default gateway of both nodes) and a second node's namespace on the
/// same segment (198.18.1.12/24). Also `docker0` (198.18.9.1/24, created first, excluded
/// by first-found) and `ext1` (198.18.4.11/24, created last).
pub struct Lab {
    pub node: Netns,
    pub router: Netns,
    pub node2: Netns,
}

impl Lab {
    pub fn new() -> Lab {
        let node = Netns::new("n");
        let router = Netns::new("r");
        let node2 = Netns::new("p");
        // Veth pairs stand in for dummies (not every kernel has the dummy module).
        node.ip(&[
            "link", "add", "docker0", "type", "veth", "peer", "name", "dk1",
        ]);
        node.ip(&["link", "set", "dk1", "up"]);
        node.ip(&["addr", "add", "198.18.9.1/24", "dev", "docker0"]);
        node.ip(&["link", "set", "docker0", "up"]);
        node.ip(&[
            "link",
            "add",
            "up0",
            "type",
            "veth",
            "peer",
            "name",
            "r0",
            "netns",
            &router.name,
        ]);
        node.ip(&["addr", "add", "198.18.1.11/24", "dev", "up0"]);
        node.ip(&["link", "set", "up0", "up"]);
        node.ip(&[
            "link", "add", "ext1", "type", "veth", "peer", "name", "ext1p",
        ]);
        node.ip(&["link", "set", "ext1p", "up"]);
        node.ip(&["addr", "add", "198.18.4.11/24", "dev", "ext1"]);
        node.ip(&["link", "set", "ext1", "up"]);
        router.ip(&["link", "add", "br0", "type", "bridge"]);
        router.ip(&["link", "set", "r0", "master", "br0"]);
        router.ip(&[
            "link",
            "add",
            "r1",
            "type",
            "veth",
            "peer",
            "name",
            "q0",
            "netns",
            &node2.name,
        ]);
        router.ip(&["link", "set", "r1", "master", "br0"]);
        router.ip(&["addr", "add", "198.18.1.1/24", "dev", "br0"]);
        for l in ["br0", "r0", "r1"] {
            router.ip(&["link", "set", l, "up"]);
        }
        node2.ip(&["addr", "add", "198.18.1.12/24", "dev", "q0"]);
        node2.ip(&["link", "set", "q0", "up"]);
        // Both nodes have the router as their default gateway (a BGP next hop that is the
        // gateway stays `Uplink`; any other on-link next hop gets its own entry).
        node2.ip(&["route", "add", "default", "via", "198.18.1.1", "dev", "q0"]);
        node.ip(&["route", "add", "default", "via", "198.18.1.1", "dev", "up0"]);
        Lab {
            node,
            router,
            node2,
        }
    }

    /// A workload veth pair in the node namespace: host side `host`, other end `peer`.
    pub fn workload_link(&self, host: &str, peer: &str) {
        self.node
            .ip(&["link", "add", host, "type", "veth", "peer", "name", peer]);
        self.node.ip(&["link", "set", host, "up"]);
        self.node.ip(&["link", "set", peer, "up"]);
    }
}

/// A SQLite datastore in a temporary directory.
pub struct Store {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub ds: SqliteStore,
}

impl Store {
    pub fn new() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tortie.db");
        let ds = SqliteStore::open(&path).unwrap();
        Store { dir, path, ds }
    }

    pub fn put_resource(&self, plural: &str, ns: Option<&str>, name: &str, doc: serde_json::Value) {
        let key = keys::resource_key(plural, ns, name).unwrap();
        self.ds.put(&key, doc.to_string().as_bytes()).unwrap();
    }

    pub fn node(&self, name: &str, v4: &str) {
        self.put_resource(
            "nodes",
            None,
            name,
            serde_json::json!({"apiVersion":"projectcalico.org/v3","kind":"Node",
                "metadata":{"name":name},"spec":{"bgp":{"ipv4Address":v4}}}),
        );
    }

    pub fn pool(&self, name: &str, cidr: &str, ipip: &str, nat: bool) {
        self.put_resource(
            "ippools",
            None,
            name,
            serde_json::json!({"apiVersion":"projectcalico.org/v3","kind":"IPPool",
                "metadata":{"name":name},"spec":{"cidr":cidr,"blockSize":26,"ipipMode":ipip,
                "natOutgoing":nat,"nodeSelector":"all()"}}),
        );
    }

    pub fn affinity(&self, node: &str, cidr: &str) {
        let key = keys::ipam_affinity_key(node, cidr).unwrap();
        self.ds
            .put(&key, br#"{"state":"confirmed","deleted":false}"#)
            .unwrap();
    }

    pub fn workload(&self, ns: &str, name: &str, node: &str, iface: &str, ip: &str, labels: &str) {
        let labels: serde_json::Value = serde_json::from_str(labels).unwrap();
        self.put_resource(
            "workloadendpoints",
            Some(ns),
            name,
            serde_json::json!({"apiVersion":"projectcalico.org/v3","kind":"WorkloadEndpoint",
                "metadata":{"name":name,"namespace":ns,"labels":labels},
                "spec":{"orchestrator":"cni","workload":name,"node":node,"endpoint":"eth0",
                    "interfaceName":iface,"mac":"02:00:00:00:00:04","ipNetworks":[ip],
                    "profiles":[format!("kns.{ns}")]}}),
        );
    }

    pub fn get_json(&self, key: &str) -> Option<serde_json::Value> {
        self.ds
            .get(key)
            .unwrap()
            .and_then(|kv| serde_json::from_slice(&kv.value).ok())
    }
}

/// The daemon binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tortie-control")
}

/// A running tortie-control, killed (SIGKILL) on drop if still running.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(ns: &Netns, store: &Store, ring: &Path, args: &[&str]) -> Daemon {
        Daemon::start_as("n1", ns, store, ring, args)
    }

    /// [`Daemon::start`] for node `node` (its fastpath status file is per node, except n1's).
    pub fn start_as(node: &str, ns: &Netns, store: &Store, ring: &Path, args: &[&str]) -> Daemon {
        let status_file = if node == "n1" {
            "fastpath-status.json".to_string()
        } else {
            format!("fastpath-status-{node}.json")
        };
        let log = store.dir.path().join(format!(
            "control-{}.log",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, binary()])
            .args(["--node", node, "--ring"])
            .arg(ring)
            .args(["--fastpath-status"])
            .arg(store.dir.path().join(status_file))
            .args(["--log-level", "debug", "--log-file"])
            .arg(&log)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATASTORE_TYPE", "sqlite")
            .env("SQLITE_PATH", &store.path)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn tortie-control");
        Daemon { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal by PID.
    pub fn signal(&self, sig: &str) {
        run(&["kill", sig, &self.pid().to_string()]);
    }

    /// Waits (bounded) until every thread of the process is stopped (after SIGSTOP).
    pub fn wait_stopped(&self) {
        let dir = format!("/proc/{}/task", self.pid());
        wait_for("the daemon to stop", Duration::from_secs(10), || {
            let tasks = std::fs::read_dir(&dir).ok()?;
            let all_stopped = tasks.flatten().all(|t| {
                std::fs::read_to_string(t.path().join("stat"))
                    .ok()
                    .and_then(|st| {
                        st.rsplit_once(')')
                            .map(|(_, rest)| rest.trim_start().starts_with('T'))
                    })
                    .unwrap_or(false)
            });
            all_stopped.then_some(())
        });
    }

    /// Waits (bounded) for the process to exit; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits (bounded) for `f` to return `Some`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One message as read from the ring.
#[derive(Debug, Clone)]
pub struct Received {
    pub kind: MessageKind,
    pub generation: u64,
    pub message: abi::Message,
    pub at: Instant,
}

/// The fastpath's side of the ring, keeping the applied state.
pub struct Reader {
    pub consumer: Consumer,
    pub state: abi::State,
    pub log: Vec<Received>,
    buf: Vec<u8>,
}

impl Reader {
    pub fn open(ring: &Path) -> Reader {
        let consumer = wait_for("the ring file", Duration::from_secs(20), || {
            Consumer::open(ring).ok()
        });
        Reader {
            consumer,
            state: abi::State::default(),
            log: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Takes what is published; returns how many messages were applied.
    pub fn poll(&mut self) -> usize {
        let mut n = 0;
        loop {
            match self.consumer.try_recv(&mut self.buf) {
                Ok(Some(meta)) => {
                    let (message, _) = abi::Message::decode(&self.buf).expect("decode");
                    assert_eq!(message.generation().0, meta.generation);
                    self.state.apply(message.clone()).expect("apply in order");
                    self.log.push(Received {
                        kind: meta.kind,
                        generation: meta.generation,
                        message,
                        at: Instant::now(),
                    });
                    n += 1;
                }
                Ok(None) => return n,
                Err(e) => panic!("ring: {e}"),
            }
        }
    }

    /// Polls until `pred` holds on the state (bounded).
    pub fn until(&mut self, what: &str, timeout: Duration, pred: impl Fn(&abi::Tables) -> bool) {
        let end = Instant::now() + timeout;
        loop {
            self.poll();
            if pred(&self.state.tables) {
                return;
            }
            if Instant::now() >= end {
                let mut dump = format!("{:#?}", self.state.tables);
                dump.truncate(4000);
                panic!("timed out waiting for {what}; tables: {dump}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn route(&self, cidr: &str) -> Option<abi::RouteTarget> {
        let net: ipnet::IpNet = cidr.parse().unwrap();
        self.state
            .tables
            .routes
            .iter()
            .find(|r| r.prefix.addr == net.addr() && r.prefix.len == net.prefix_len())
            .map(|r| r.target)
    }
}

//! Test support: temporary SQLite stores, a throwaway etcd on loopback, manifests from YAML,
//! and a datastore wrapper that caps transaction size and injects failures.

#![allow(dead_code)]

pub mod suite;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tortie_datastore::{
    Datastore, DatastoreConfig, DatastoreError, KeyValue, Operation, Revision, Snapshot, TxnOp,
    TxnOutcome, Watcher, open,
};
use tortie_model::{Resource, parse_documents};

/// Parses YAML manifests (panics on error: test input is meant to be valid).
pub fn resources(yaml: &str) -> Vec<Resource> {
    parse_documents(yaml, "test.yaml").unwrap_or_else(|e| panic!("test manifest: {e}"))
}

/// One resource from YAML.
pub fn resource(yaml: &str) -> Resource {
    let mut all = resources(yaml);
    assert_eq!(all.len(), 1);
    all.remove(0)
}

/// A fresh SQLite store in a temporary directory (kept alive by the returned guard).
pub fn sqlite() -> (tempfile::TempDir, Arc<dyn Datastore>) {
    let dir = tempfile::tempdir().unwrap();
    let ds = open(&DatastoreConfig::sqlite(dir.path().join("tortie.db"))).unwrap();
    (dir, ds)
}

/// A policy manifest named `name` in namespace `ns`.
pub fn policy_yaml(ns: &str, name: &str, order: u32) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  order: {order}\n  selector: app == \"web\"\n  ingress:\n    - action: Allow\n      protocol: TCP\n      destination:\n        ports: [80]\n"
    )
}

/// A pool manifest.
pub fn pool_yaml(name: &str, cidr: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: {name}\nspec:\n  cidr: {cidr}\n"
    )
}

/// A throwaway etcd on free loopback ports; killed (by PID) and its data removed on drop.
pub struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    /// The client URL.
    pub endpoint: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Etcd {
    /// Starts etcd if the `etcd` binary is installed (Debian `etcd-server`); `None` otherwise.
    pub fn start() -> Option<Etcd> {
        let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new(binary)
            .args(["--name", "t", "--data-dir"])
            .arg(dir.path())
            .args([
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("t={peer_url}")])
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let etcd = Etcd {
            child,
            _dir: dir,
            endpoint,
        };
        // Bounded wait for the client port to accept and the cluster to answer.
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(ds) = open(&DatastoreConfig::etcd([etcd.endpoint.clone()]))
                && ds.current_revision().is_ok()
            {
                return Some(etcd);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd at {} did not become ready within 15 s", etcd.endpoint);
    }

    /// A client.
    pub fn open(&self) -> Arc<dyn Datastore> {
        open(&DatastoreConfig::etcd([self.endpoint.clone()])).unwrap()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wraps a datastore: reports `max` as its transaction limit and fails the `fail_at`-th call
/// to `txn` (1-based) with `Unavailable`, to exercise chunking and rollback.
pub struct Capped {
    pub inner: Arc<dyn Datastore>,
    pub max: usize,
    pub fail_at: Option<usize>,
    pub calls: AtomicUsize,
}

impl Capped {
    pub fn new(inner: Arc<dyn Datastore>, max: usize, fail_at: Option<usize>) -> Capped {
        Capped {
            inner,
            max,
            fail_at,
            calls: AtomicUsize::new(0),
        }
    }
}

impl Datastore for Capped {
    fn describe(&self) -> String {
        format!("capped({})", self.inner.describe())
    }
    fn max_txn_ops(&self) -> Option<usize> {
        Some(self.max)
    }
    fn get(&self, key: &str) -> Result<Option<KeyValue>, DatastoreError> {
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> Result<Snapshot, DatastoreError> {
        self.inner.list(prefix)
    }
    fn txn(&self, ops: &[TxnOp]) -> Result<TxnOutcome, DatastoreError> {
        if ops.len() > self.max {
            return Err(DatastoreError::TxnTooLarge {
                ops: ops.len(),
                max: self.max,
            });
        }
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_at == Some(call) {
            return Err(DatastoreError::Unavailable {
                operation: Operation::Txn,
                endpoint: "injected".into(),
                cause: "injected failure".into(),
            });
        }
        self.inner.txn(ops)
    }
    fn watch(&self, prefix: &str, from: Revision) -> Result<Watcher, DatastoreError> {
        self.inner.watch(prefix, from)
    }
    fn compact(&self, revision: Revision) -> Result<(), DatastoreError> {
        self.inner.compact(revision)
    }
    fn current_revision(&self) -> Result<Revision, DatastoreError> {
        self.inner.current_revision()
    }
}

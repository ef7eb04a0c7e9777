//! Test support: temporary SQLite stores, a throwaway etcd on loopback, manifests from YAML,
//! and a datastore wrapper that caps transaction size and injects failures.

#![allow(dead_code)]

pub mod suite;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// A throwaway etcd (Debian `etcd-server`) on free loopback ports, killed by PID on drop. A
/// missing binary fails the test naming the package (the installer provides it).
pub struct Etcd {
    _server: tortie_testkit::etcd::EtcdServer,
    /// The client URL.
    pub endpoint: String,
}

impl Etcd {
    /// Starts etcd. Always `Some`: kept an `Option` so callers read as before.
    pub fn start() -> Option<Etcd> {
        let server = tortie_testkit::etcd::EtcdServer::start();
        let endpoint = server.endpoint.clone();
        Some(Etcd {
            _server: server,
            endpoint,
        })
    }

    /// A client.
    pub fn open(&self) -> Arc<dyn Datastore> {
        open(&DatastoreConfig::etcd([self.endpoint.clone()])).unwrap()
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

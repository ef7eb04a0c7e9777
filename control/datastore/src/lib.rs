//! Datastore backends with etcd semantics: embedded SQLite and etcd v3.
//!
//! Tortie keeps Calico's resources (`projectcalico.org/v3` documents as JSON) and IPAM state
//! in a key-value store with etcd's model, so that the control daemon, the CNI plugin and the
//! CLI can share it and so that an existing Calico etcd datastore can be read as it is:
//!
//! - one store-wide **revision** that every committed write advances by one;
//! - per key: `create_revision`, `mod_revision` (the compare-and-swap token) and `version`;
//! - **list** of a prefix as a consistent snapshot at one revision;
//! - multi-key **transactions**, all-or-nothing, each operation carrying its condition
//!   (absent / exists / at a mod_revision / none);
//! - **watch** of a prefix from a revision: history replay, then live changes, in revision
//!   order, with `prev` values; a start older than the **compaction** point fails with
//!   [`DatastoreError::Compacted`] and the caller relists.
//!
//! Backends: [`SqliteStore`] (the default; one file, several processes) and [`EtcdStore`].
//! [`open`] picks one from a [`DatastoreConfig`], usually read with
//! [`DatastoreConfig::from_env`] from Calico's variables (`DATASTORE_TYPE`, `ETCD_ENDPOINTS`,
//! ...). [`keys`] builds and parses Calico's etcd v3 key layout.
//!
//! # Blocking API
//!
//! Every call blocks the calling thread. The CNI plugin has no async runtime, and one
//! blocking API serves it, the CLI and the daemon alike. The etcd backend runs its gRPC client
//! on a private single-threaded tokio runtime on its own thread. Async callers use
//! `tokio::task::spawn_blocking`: calling from inside an async task would stall that task's
//! worker thread for the length of a round trip.
//!
//! # Transaction size
//!
//! etcd refuses transactions of more than `--max-txn-ops` operations (128 by default). The
//! etcd backend checks this first and returns [`DatastoreError::TxnTooLarge`]; SQLite has no
//! limit ([`Datastore::max_txn_ops`] is `None`), which is its bulk path. Code that must work
//! on both asks `max_txn_ops` and either refuses or uses [`txn_chunked`], which gives up
//! atomicity across chunks.
//!
//! # Example
//!
//! ```
//! use tortie_datastore::{Condition, Datastore, DatastoreConfig, TxnOp, keys, open};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = open(&DatastoreConfig::sqlite(dir.path().join("tortie.db"))).unwrap();
//! let key = keys::resource_key("ippools", None, "default-ipv4-ippool").unwrap();
//! let created = store.create(&key, br#"{"spec":{"cidr":"10.0.0.0/16"}}"#).unwrap();
//! // Compare-and-swap: succeeds only if nobody wrote the key since we read it.
//! let updated = store.update(&key, br#"{"spec":{"cidr":"10.1.0.0/16"}}"#, created.mod_revision).unwrap();
//! assert!(store.update(&key, b"{}", created.mod_revision).unwrap_err().is_conflict());
//! // List, then watch from the list's revision + 1 to follow on without a gap.
//! let snapshot = store.list(keys::RESOURCES_PREFIX).unwrap();
//! assert_eq!(snapshot.kvs, vec![updated]);
//! let mut watcher = store.watch(keys::RESOURCES_PREFIX, snapshot.revision + 1).unwrap();
//! store.txn(&[TxnOp::Delete { key: key.clone(), condition: Condition::Exists }]).unwrap();
//! assert_eq!(watcher.recv().unwrap().key(), key);
//! ```

mod config;
mod error;
mod etcd;
pub mod keys;
mod sqlite;
mod types;
mod watch;

pub use config::{DEFAULT_SQLITE_PATH, DatastoreConfig, DatastoreKind, open};
pub use error::{DatastoreError, Operation, Result};
pub use etcd::{
    ETCD_CONNECT_TIMEOUT, ETCD_DEFAULT_MAX_TXN_OPS, ETCD_LIST_PAGE_SIZE, ETCD_REQUEST_TIMEOUT,
    EtcdStore,
};
pub use sqlite::{
    CHANGE_CHECK as SQLITE_CHANGE_CHECK, POLL_INTERVAL as SQLITE_POLL_INTERVAL,
    SETTLE_CHECK as SQLITE_SETTLE_CHECK, SETTLE_FAST as SQLITE_SETTLE_FAST,
    SETTLE_WINDOW as SQLITE_SETTLE_WINDOW, SqliteStore,
};
pub use types::{Condition, KeyValue, Revision, Snapshot, TxnOp, TxnOutcome, WatchEvent};
pub use watch::Watcher;

use types::record_after_put;

/// A key-value store with etcd's semantics. Implemented by [`SqliteStore`] and
/// [`EtcdStore`]; both pass the same conformance suite.
///
/// Keys are UTF-8 strings (Calico's `/`-separated paths), values are bytes. Prefixes are raw
/// byte prefixes: `/a/b` also matches `/a/bc`, so list a directory with a trailing `/`.
pub trait Datastore: Send + Sync {
    /// A short description for logs: `sqlite:<path>` or `etcdv3:<endpoints>`.
    fn describe(&self) -> String;

    /// The most operations one [`Datastore::txn`] accepts, or `None` for no limit.
    fn max_txn_ops(&self) -> Option<usize>;

    /// Reads one key.
    fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Reads every key starting with `prefix` (all keys for `""`), sorted by key, as of one
    /// revision.
    fn list(&self, prefix: &str) -> Result<Snapshot>;

    /// Applies `ops` atomically at one new revision if every op's condition holds; otherwise
    /// writes nothing and returns the first failing condition's error (`NotFound`,
    /// `AlreadyExists` or `Conflict`, naming the key). Fails with `TxnTooLarge` beyond
    /// [`Datastore::max_txn_ops`] and `InvalidTxn` if a key appears twice.
    fn txn(&self, ops: &[TxnOp]) -> Result<TxnOutcome>;

    /// Streams changes under `prefix` with revisions `>= from_revision`; `0` means "changes
    /// after now". Fails with `Compacted` if `from_revision` is older than the compaction
    /// point (see [`Watcher`] for errors during the watch).
    fn watch(&self, prefix: &str, from_revision: Revision) -> Result<Watcher>;

    /// Discards history before `revision`. As in etcd: a revision at or before the current
    /// compaction point is `Compacted`, one beyond the current revision `FutureRevision`.
    fn compact(&self, revision: Revision) -> Result<()>;

    /// The store's current revision.
    fn current_revision(&self) -> Result<Revision>;

    /// Creates `key`; fails with `AlreadyExists` if it exists. Returns the new record.
    fn create(&self, key: &str, value: &[u8]) -> Result<KeyValue> {
        let op = TxnOp::Put {
            key: key.to_owned(),
            value: value.to_vec(),
            condition: Condition::Absent,
        };
        let outcome = self
            .txn(&[op])
            .map_err(|e| e.with_operation(Operation::Create))?;
        Ok(record_after_put(key, value, outcome.revision, None))
    }

    /// Compare-and-swap: replaces `key` only if its mod_revision is still
    /// `expected_mod_revision`; `Conflict` (carrying the actual revision) if not, `NotFound`
    /// if the key is gone.
    fn update(&self, key: &str, value: &[u8], expected_mod_revision: Revision) -> Result<KeyValue> {
        let op = TxnOp::Put {
            key: key.to_owned(),
            value: value.to_vec(),
            condition: Condition::ModRevision(expected_mod_revision),
        };
        let outcome = self
            .txn(&[op])
            .map_err(|e| e.with_operation(Operation::Update))?;
        let prev = outcome.prev_kvs.into_iter().next().flatten();
        Ok(record_after_put(
            key,
            value,
            outcome.revision,
            prev.as_ref(),
        ))
    }

    /// Writes `key` unconditionally (create or replace).
    fn put(&self, key: &str, value: &[u8]) -> Result<KeyValue> {
        let op = TxnOp::Put {
            key: key.to_owned(),
            value: value.to_vec(),
            condition: Condition::Any,
        };
        let outcome = self
            .txn(&[op])
            .map_err(|e| e.with_operation(Operation::Put))?;
        let prev = outcome.prev_kvs.into_iter().next().flatten();
        Ok(record_after_put(
            key,
            value,
            outcome.revision,
            prev.as_ref(),
        ))
    }

    /// Deletes `key`, only at `expected_mod_revision` when given. `NotFound` if absent.
    /// Returns the deleted record (use [`Datastore::txn`] to learn the delete's revision).
    fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue> {
        let condition = expected_mod_revision.map_or(Condition::Exists, Condition::ModRevision);
        let op = TxnOp::Delete {
            key: key.to_owned(),
            condition,
        };
        let outcome = self
            .txn(&[op])
            .map_err(|e| e.with_operation(Operation::Delete))?;
        outcome
            .prev_kvs
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| DatastoreError::NotFound {
                operation: Operation::Delete,
                key: key.to_owned(),
            })
    }
}

/// Applies `ops` in transactions of at most [`Datastore::max_txn_ops`] operations each, in
/// order, stopping at the first failure. Each chunk is atomic; the whole is **not**: after a
/// failure the earlier chunks stay committed. Returns each committed chunk's outcome.
pub fn txn_chunked(store: &dyn Datastore, ops: &[TxnOp]) -> Result<Vec<TxnOutcome>> {
    let size = store.max_txn_ops().unwrap_or(ops.len()).max(1);
    ops.chunks(size).map(|chunk| store.txn(chunk)).collect()
}

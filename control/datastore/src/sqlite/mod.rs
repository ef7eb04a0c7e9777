//! The embedded backend: one SQLite file (WAL, `synchronous=FULL`) with etcd's semantics,
//! shared by every process on the host.
//!
//! Concurrency: within a process, one connection writes and another reads (each behind a
//! mutex), and each watcher has its own. Across processes, SQLite's file locks order the
//! writers (`BEGIN IMMEDIATE`, see `write.rs`) and WAL lets readers proceed while one writes.
//! A list reads `meta.revision` and the keys inside one read transaction, so it is a
//! snapshot at exactly that revision.

mod notify;
mod schema;
mod wal_waker;
mod watch;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

use crate::Datastore;
use crate::error::{DatastoreError, Operation, Result};
use crate::types::{KeyValue, Revision, Snapshot, TxnOp, TxnOutcome, prefix_end, validate_txn};
use crate::watch::Watcher;
use notify::Notifier;
use schema::{kv_from_row, open_connection, read_kv, read_revision, sql_error};
use wal_waker::WalWaker;

pub use notify::{CHANGE_CHECK, SETTLE_CHECK, SETTLE_FAST, SETTLE_WINDOW};

/// How often a caught-up watcher reads the events table even when nothing told it of a
/// commit (a safety net). Writes from this process wake watchers immediately; writes from
/// other processes through inotify on the `-wal` file, then `PRAGMA data_version` checks
/// (see [`SETTLE_CHECK`]), or, where inotify is not available, within [`CHANGE_CHECK`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The SQLite datastore. Cheap to share (`Arc`); every method blocks the calling thread.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    notifier: Arc<Notifier>,
    poll_interval: Duration,
    /// Watches the `-wal` file for other processes' commits; started with the first watch
    /// (a store that is only written to, like the CLI's, needs none).
    wal_waker: Mutex<WalWakerState>,
}

#[derive(Debug)]
enum WalWakerState {
    NotStarted,
    /// Held for its `Drop`, which stops the thread with the store.
    Running {
        _waker: WalWaker,
    },
    /// inotify could not be set up: watchers check `data_version` every [`CHANGE_CHECK`].
    Unavailable,
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave SQLite half-written: an open transaction
    // is rolled back when its guard drops. So a poisoned lock is still usable.
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

/// Decodes a `kv` row selected in column order.
fn first_kv(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    kv_from_row(row, 0)
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let writer = open_connection(&path)?;
        let reader = open_connection(&path)?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            notifier: Arc::new(Notifier::default()),
            poll_interval: POLL_INTERVAL,
            wal_waker: Mutex::new(WalWakerState::NotStarted),
        })
    }

    /// Whether another process's commit wakes this store's watchers through inotify (set
    /// up by the first watch); `false` before that or where inotify is not available, in
    /// which case watchers check `PRAGMA data_version` every [`CHANGE_CHECK`].
    pub fn wal_watched(&self) -> bool {
        matches!(
            *self.wal_waker.lock().unwrap_or_else(|p| p.into_inner()),
            WalWakerState::Running { .. }
        )
    }

    fn ensure_wal_waker(&self) {
        let mut state = self.wal_waker.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*state, WalWakerState::NotStarted) {
            *state = match WalWaker::start(&self.path, Arc::clone(&self.notifier)) {
                Ok(waker) => WalWakerState::Running { _waker: waker },
                Err(_) => WalWakerState::Unavailable,
            };
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The oldest revision a watch may still start from.
    pub fn compact_revision(&self) -> Result<Revision> {
        let conn = lock(&self.reader);
        schema::read_meta(&conn, "compact_revision").map_err(sql_error(
            Operation::Revision,
            "",
            &self.path,
        ))
    }
}

impl Datastore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    /// None: SQLite commits any number of operations atomically. This is the bulk path
    /// (10,000 resources in one transaction); portable callers check this limit.
    fn max_txn_ops(&self) -> Option<usize> {
        None
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let conn = lock(&self.reader);
        read_kv(&conn, key).map_err(sql_error(Operation::Get, key, &self.path))
    }

    fn list(&self, prefix: &str) -> Result<Snapshot> {
        let err = sql_error(Operation::List, prefix, &self.path);
        let mut conn = lock(&self.reader);
        let tx = conn.transaction().map_err(&err)?;
        let revision = read_revision(&tx).map_err(&err)?;
        let lo = prefix.as_bytes();
        let end = prefix_end(lo);
        let kvs = {
            let columns = "SELECT key, value, create_revision, mod_revision, version FROM kv";
            let sql = match &end {
                Some(_) => format!("{columns} WHERE key >= ?1 AND key < ?2 ORDER BY key"),
                None => format!("{columns} WHERE key >= ?1 ORDER BY key"),
            };
            let mut stmt = tx.prepare_cached(&sql).map_err(&err)?;
            let rows = match &end {
                Some(hi) => stmt.query_map(rusqlite::params![lo, hi], first_kv),
                None => stmt.query_map(rusqlite::params![lo], first_kv),
            }
            .map_err(&err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&err)?
        };
        tx.commit().map_err(&err)?;
        Ok(Snapshot { kvs, revision })
    }

    fn txn(&self, ops: &[TxnOp]) -> Result<TxnOutcome> {
        validate_txn(ops, self.max_txn_ops())?;
        let outcome = {
            let mut conn = lock(&self.writer);
            write::apply_txn(&mut conn, &self.path, ops)?
        };
        self.notifier.notify();
        Ok(outcome)
    }

    fn watch(&self, prefix: &str, from_revision: Revision) -> Result<Watcher> {
        if from_revision < 0 {
            return Err(DatastoreError::InvalidArgument {
                operation: Operation::Watch,
                key: prefix.to_owned(),
                reason: format!("negative start revision {from_revision}"),
            });
        }
        let conn = open_connection(&self.path).map_err(|e| e.with_operation(Operation::Watch))?;
        self.ensure_wal_waker();
        let start = if from_revision == 0 {
            read_revision(&conn).map_err(sql_error(Operation::Watch, prefix, &self.path))? + 1
        } else {
            from_revision
        };
        watch::start(
            conn,
            self.path.clone(),
            prefix,
            start,
            Arc::clone(&self.notifier),
            self.poll_interval,
        )
    }

    fn compact(&self, revision: Revision) -> Result<()> {
        let mut conn = lock(&self.writer);
        write::compact(&mut conn, &self.path, revision)
    }

    fn current_revision(&self) -> Result<Revision> {
        let conn = lock(&self.reader);
        read_revision(&conn).map_err(sql_error(Operation::Revision, "", &self.path))
    }
}

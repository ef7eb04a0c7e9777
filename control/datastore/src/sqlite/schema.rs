//! Opening a connection to the shared SQLite file: pragmas, schema, and row decoding.
//!
//! Layout (kine's idea, with the current state kept apart from the history so that a list
//! is one index range scan):
//! - `meta(name, value)`: `revision` (the store revision, 1 when empty), `compact_revision`
//!   (history before it is gone), `schema_version`.
//! - `kv(key, value, create_revision, mod_revision, version)`: the live keys. Keys are
//!   stored as BLOBs so that range bounds compare as raw bytes, as etcd's do.
//! - `events(id, revision, key, deleted, value, ..., prev_*)`: one row per change, in commit
//!   order, with the previous record inline so that a watcher gets `prev` without a join and
//!   keeps it even after older events are compacted.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Row, TransactionBehavior};

use crate::error::{DatastoreError, Operation, Result};
use crate::types::{KeyValue, Revision};

/// How long a writer waits for another process's write transaction before giving up with
/// [`DatastoreError::Unavailable`]. Write transactions here are short (milliseconds), so a
/// wait this long means something is wrong with the other process.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema this code writes. A file with a newer version is refused rather than
/// misread.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES
    ('schema_version', 1), ('revision', 1), ('compact_revision', 0);
CREATE TABLE IF NOT EXISTS kv (
    key             BLOB PRIMARY KEY,
    value           BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision    INTEGER NOT NULL,
    version         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id                   INTEGER PRIMARY KEY,
    revision             INTEGER NOT NULL,
    key                  BLOB NOT NULL,
    deleted              INTEGER NOT NULL,
    value                BLOB,
    create_revision      INTEGER,
    version              INTEGER,
    prev_value           BLOB,
    prev_create_revision INTEGER,
    prev_mod_revision    INTEGER,
    prev_version         INTEGER
);
CREATE INDEX IF NOT EXISTS events_by_revision ON events (revision);
";

/// Maps a SQLite error: lock timeouts and I/O failures mean the store is unavailable; the
/// rest are backend faults.
pub(crate) fn sql_error(
    operation: Operation,
    key: &str,
    path: &Path,
) -> impl Fn(rusqlite::Error) -> DatastoreError {
    move |error| {
        let unavailable = matches!(
            error.sqlite_error_code(),
            Some(
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::ReadOnly
            )
        );
        if unavailable {
            DatastoreError::Unavailable {
                operation,
                endpoint: path.display().to_string(),
                cause: error.to_string(),
            }
        } else {
            DatastoreError::Backend {
                operation,
                key: key.to_owned(),
                cause: error.to_string(),
            }
        }
    }
}

/// Opens one connection with the pragmas every connection needs, creating the file, its
/// directory and the schema if missing. Safe to race with other processes doing the same.
pub(crate) fn open_connection(path: &Path) -> Result<Connection> {
    let err = sql_error(Operation::Open, "", path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DatastoreError::Unavailable {
            operation: Operation::Open,
            endpoint: path.display().to_string(),
            cause: format!("creating directory {}: {e}", dir.display()),
        })?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(&err)?;
    // The busy timeout first: the pragmas and the schema below may wait for another
    // process that is opening the same file.
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(&err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DatastoreError::Unavailable {
            operation: Operation::Open,
            endpoint: path.display().to_string(),
            cause: format!("cannot switch to WAL journal mode (got {mode})"),
        });
    }
    // FULL: a commit is on disk (WAL fsynced) before it is acknowledged, as with etcd.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(&err)?;
    conn.set_prepared_statement_cache_capacity(32);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    tx.execute_batch(SCHEMA).map_err(&err)?;
    let version: i64 = tx
        .query_row(
            "SELECT value FROM meta WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .map_err(&err)?;
    if version > SCHEMA_VERSION {
        return Err(DatastoreError::Backend {
            operation: Operation::Open,
            key: String::new(),
            cause: format!(
                "{} has schema version {version}; this build understands up to {SCHEMA_VERSION}",
                path.display()
            ),
        });
    }
    tx.commit().map_err(&err)?;
    Ok(conn)
}

/// Reads a `meta` counter.
pub(crate) fn read_meta(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
}

/// Converts a stored key back to a string. Every key was written from a `&str`, so a failure
/// here means the file was written by something else.
pub(crate) fn key_from_blob(blob: Vec<u8>) -> rusqlite::Result<String> {
    String::from_utf8(blob).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

/// Decodes `key, value, create_revision, mod_revision, version` starting at column `at`.
pub(crate) fn kv_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_from_blob(row.get(at)?)?,
        value: row.get(at + 1)?,
        create_revision: row.get(at + 2)?,
        mod_revision: row.get(at + 3)?,
        version: row.get(at + 4)?,
    })
}

/// Reads one live key.
pub(crate) fn read_kv(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, create_revision, mod_revision, version FROM kv WHERE key = ?1",
    )?;
    let mut rows = stmt.query([key.as_bytes()])?;
    match rows.next()? {
        Some(row) => Ok(Some(kv_from_row(row, 0)?)),
        None => Ok(None),
    }
}

/// The store revision.
pub(crate) fn read_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    read_meta(conn, "revision")
}

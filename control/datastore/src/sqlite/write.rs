//! Write transactions on the SQLite store.
//!
//! Every write runs in `BEGIN IMMEDIATE`: the transaction takes SQLite's write lock before
//! it reads anything, so the conditions it checks cannot change under it, and writers in
//! other processes queue on the lock (up to the busy timeout) instead of failing late with
//! a stale read. That is what makes compare-and-swap safe across processes.

use std::path::Path;

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use crate::error::{DatastoreError, Operation, Result};
use crate::sqlite::schema::{read_kv, read_meta, read_revision, sql_error};
use crate::types::{KeyValue, Revision, TxnOp, TxnOutcome};

/// Checks every condition, then applies every operation at one new revision, or writes
/// nothing. The ops were validated (no duplicate keys) by the caller.
pub(crate) fn apply_txn(conn: &mut Connection, path: &Path, ops: &[TxnOp]) -> Result<TxnOutcome> {
    let first_key = ops.first().map_or("", TxnOp::key);
    let err = sql_error(Operation::Txn, first_key, path);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    let current = read_revision(&tx).map_err(&err)?;

    let mut prev_kvs = Vec::with_capacity(ops.len());
    for op in ops {
        let prev = read_kv(&tx, op.key()).map_err(sql_error(Operation::Txn, op.key(), path))?;
        op.condition()
            .check(Operation::Txn, op.key(), prev.as_ref())?;
        prev_kvs.push(prev);
    }

    let revision = current + 1;
    let mut changed = false;
    for (op, prev) in ops.iter().zip(&prev_kvs) {
        let err = sql_error(Operation::Txn, op.key(), path);
        changed |= apply_op(&tx, op, prev.as_ref(), revision).map_err(err)?;
    }
    if !changed {
        // Nothing to write (no ops, or deletes of absent keys): the revision stays, as in
        // etcd. Dropping the transaction rolls it back.
        return Ok(TxnOutcome {
            revision: current,
            prev_kvs,
        });
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE name = 'revision'",
        [revision],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)?;
    Ok(TxnOutcome { revision, prev_kvs })
}

/// Applies one operation; returns whether it changed anything.
fn apply_op(
    tx: &Transaction<'_>,
    op: &TxnOp,
    prev: Option<&KeyValue>,
    revision: Revision,
) -> rusqlite::Result<bool> {
    match op {
        TxnOp::Put { key, value, .. } => {
            let create_revision = prev.map_or(revision, |p| p.create_revision);
            let version = prev.map_or(1, |p| p.version + 1);
            tx.prepare_cached(
                "INSERT OR REPLACE INTO kv (key, value, create_revision, mod_revision, version)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                key.as_bytes(),
                value,
                create_revision,
                revision,
                version
            ])?;
            insert_event(
                tx,
                revision,
                key,
                false,
                Some((value, create_revision, version)),
                prev,
            )?;
            Ok(true)
        }
        TxnOp::Delete { key, .. } => {
            if prev.is_none() {
                return Ok(false);
            }
            tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                .execute([key.as_bytes()])?;
            insert_event(tx, revision, key, true, None, prev)?;
            Ok(true)
        }
    }
}

fn insert_event(
    tx: &Transaction<'_>,
    revision: Revision,
    key: &str,
    deleted: bool,
    new: Option<(&Vec<u8>, Revision, i64)>,
    prev: Option<&KeyValue>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (revision, key, deleted, value, create_revision, version,
                             prev_value, prev_create_revision, prev_mod_revision, prev_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        revision,
        key.as_bytes(),
        deleted,
        new.map(|n| n.0),
        new.map(|n| n.1),
        new.map(|n| n.2),
        prev.map(|p| &p.value),
        prev.map(|p| p.create_revision),
        prev.map(|p| p.mod_revision),
        prev.map(|p| p.version),
    ])?;
    Ok(())
}

/// Drops the history before `revision`: watches from an older revision then fail with
/// [`DatastoreError::Compacted`]. Mirrors etcd: compacting to a revision at or before the
/// current compaction point is `Compacted`, beyond the current revision `FutureRevision`.
pub(crate) fn compact(conn: &mut Connection, path: &Path, revision: Revision) -> Result<()> {
    let err = sql_error(Operation::Compact, "", path);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    let current = read_revision(&tx).map_err(&err)?;
    let compacted = read_meta(&tx, "compact_revision").map_err(&err)?;
    if revision > current {
        return Err(DatastoreError::FutureRevision {
            operation: Operation::Compact,
            requested: revision,
            current,
        });
    }
    if revision <= compacted {
        return Err(DatastoreError::Compacted {
            operation: Operation::Compact,
            key: String::new(),
            requested: revision,
            compact_revision: compacted,
        });
    }
    tx.execute("DELETE FROM events WHERE revision < ?1", [revision])
        .map_err(&err)?;
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE name = 'compact_revision'",
        [revision],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)?;
    Ok(())
}

//! Committing a list of transaction operations: in one transaction where the backend allows,
//! otherwise (etcd's 128-operation limit) in chunks with a compensating rollback.
//!
//! # The chunked-write guarantee ([`TxnPolicy::Chunked`])
//!
//! 1. Nothing is written before every resource has passed defaults, validation and the
//!    cross-resource checks (that happens before this module is called).
//! 2. Each chunk is one atomic transaction, and every operation in it carries a
//!    compare-and-swap condition on the key's state read before the batch started, so a
//!    concurrent writer makes the chunk fail instead of being overwritten.
//! 3. If a chunk fails, every chunk already committed is undone, newest first, each undo
//!    operation conditioned on the key still holding the revision this batch wrote (so the
//!    rollback never clobbers a concurrent writer). The caller gets
//!    [`StoreError::ChunkFailed`].
//! 4. If the rollback itself cannot finish (the datastore became unreachable, or another
//!    writer changed a key in between), the caller gets [`StoreError::PartiallyWritten`]
//!    naming how many keys keep the batch's values.
//! 5. Not isolated: between the first and the last chunk, readers and watchers can see part
//!    of the batch; a rolled-back key gets its old value back at a new mod revision. A process
//!    killed mid-batch leaves the committed chunks in place.
//!
//! With [`TxnPolicy::Refuse`], a batch over the limit fails with
//! [`StoreError::TooLargeForOneTxn`] and nothing is written.

use tortie_datastore::{Condition, Datastore, DatastoreError, KeyValue, Revision, TxnOp};

use crate::error::StoreError;

/// What to do with a batch that needs more operations than one transaction may hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TxnPolicy {
    /// Write in chunks with a compensating rollback (see the module docs for the guarantee).
    #[default]
    Chunked,
    /// Refuse the batch and write nothing.
    Refuse,
}

/// What a commit did: the revision each operation was committed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Per operation, in order, the revision of the transaction that wrote it.
    pub revisions: Vec<Revision>,
    /// Number of transactions used.
    pub transactions: usize,
}

/// One committed operation, remembered so it can be undone.
struct Done {
    key: String,
    prev: Option<KeyValue>,
    revision: Revision,
    deleted: bool,
}

/// Commits `ops` under `policy`. `map_error` turns a datastore error about operation `i` into
/// the caller's error (for example, naming the resource instead of the key).
pub fn commit(
    ds: &dyn Datastore,
    ops: &[TxnOp],
    policy: TxnPolicy,
    map_error: &dyn Fn(DatastoreError, Option<usize>) -> StoreError,
) -> Result<Committed, StoreError> {
    let max = ds.max_txn_ops().unwrap_or(usize::MAX).max(1);
    if ops.len() <= max {
        return match ds.txn(ops) {
            Ok(outcome) => Ok(Committed {
                revisions: vec![outcome.revision; ops.len()],
                transactions: 1,
            }),
            Err(e) => {
                let op_index = blamed(&e, ops, 0);
                Err(map_error(e, op_index))
            }
        };
    }
    if policy == TxnPolicy::Refuse {
        return Err(StoreError::TooLargeForOneTxn {
            ops: ops.len(),
            max,
        });
    }
    let chunks: Vec<&[TxnOp]> = ops.chunks(max).collect();
    let mut done: Vec<Done> = Vec::with_capacity(ops.len());
    let mut revisions = Vec::with_capacity(ops.len());
    for (number, chunk) in chunks.iter().enumerate() {
        let base = number * max;
        match ds.txn(chunk) {
            Ok(outcome) => {
                for (op, prev) in chunk.iter().zip(outcome.prev_kvs) {
                    done.push(Done {
                        key: op.key().to_string(),
                        prev,
                        revision: outcome.revision,
                        deleted: matches!(op, TxnOp::Delete { .. }),
                    });
                    revisions.push(outcome.revision);
                }
            }
            Err(e) => {
                let op_index = blamed(&e, chunk, base);
                let source = Box::new(map_error(e, op_index));
                let unrestored = rollback(ds, &done, max);
                let error = match unrestored.first() {
                    None => StoreError::ChunkFailed {
                        chunk: number + 1,
                        chunks: chunks.len(),
                        source,
                    },
                    Some(first) => StoreError::PartiallyWritten {
                        chunk: number + 1,
                        chunks: chunks.len(),
                        source,
                        unrestored: unrestored.len(),
                        first_key: first.clone(),
                    },
                };
                return Err(error);
            }
        }
    }
    Ok(Committed {
        revisions,
        transactions: chunks.len(),
    })
}

/// The operation a datastore error names, by key, offset by `base`.
fn blamed(error: &DatastoreError, ops: &[TxnOp], base: usize) -> Option<usize> {
    let key = match error {
        DatastoreError::NotFound { key, .. }
        | DatastoreError::AlreadyExists { key, .. }
        | DatastoreError::Conflict { key, .. }
        | DatastoreError::InvalidTxn { key, .. } => key,
        _ => return None,
    };
    ops.iter().position(|op| op.key() == key).map(|i| i + base)
}

/// Undoes `done`, newest first, in transactions of at most `max` operations; a transaction
/// that fails is retried one key at a time so that every key that can be restored is.
/// Returns the keys left holding the batch's values.
fn rollback(ds: &dyn Datastore, done: &[Done], max: usize) -> Vec<String> {
    let undo: Vec<TxnOp> = done.iter().rev().map(undo_op).collect();
    let mut unrestored = Vec::new();
    for chunk in undo.chunks(max) {
        if ds.txn(chunk).is_ok() {
            continue;
        }
        for op in chunk {
            if ds.txn(std::slice::from_ref(op)).is_err() {
                unrestored.push(op.key().to_string());
            }
        }
    }
    unrestored
}

fn undo_op(done: &Done) -> TxnOp {
    let key = done.key.clone();
    match (&done.prev, done.deleted) {
        // A delete is undone by putting the old value back where the key is still absent.
        (Some(prev), true) => TxnOp::Put {
            key,
            value: prev.value.clone(),
            condition: Condition::Absent,
        },
        // A delete of an absent key changed nothing; re-check that it is still absent.
        (None, true) => TxnOp::Delete {
            key,
            condition: Condition::Absent,
        },
        // An update is undone by writing the old value over our revision.
        (Some(prev), false) => TxnOp::Put {
            key,
            value: prev.value.clone(),
            condition: Condition::ModRevision(done.revision),
        },
        // A create is undone by deleting our revision.
        (None, false) => TxnOp::Delete {
            key,
            condition: Condition::ModRevision(done.revision),
        },
    }
}

//! The value types shared by every backend: key-value records, transactions, watch events.

use std::collections::HashSet;

use crate::error::{DatastoreError, Operation, Result};

/// A store-wide revision, as in etcd: one counter for the whole store that every committed
/// write transaction advances by exactly one. An empty store is at revision 1.
pub type Revision = i64;

/// One stored key with etcd's per-key metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key (Calico keys are `/`-separated paths; see [`crate::keys`]).
    pub key: String,
    /// The value: for Calico resources, a JSON document.
    pub value: Vec<u8>,
    /// Revision of the transaction that created the key (reset by a delete).
    pub create_revision: Revision,
    /// Revision of the last transaction that wrote the key: the compare-and-swap token.
    pub mod_revision: Revision,
    /// Number of writes since creation: 1 after a create, +1 per update.
    pub version: i64,
}

/// A consistent listing: every key under a prefix as of one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The keys, sorted by key bytes.
    pub kvs: Vec<KeyValue>,
    /// The store revision the listing reflects. Watch from `revision + 1` to follow on
    /// without missing or repeating a change.
    pub revision: Revision,
}

/// A change delivered by a [`crate::Watcher`], in revision order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was created or updated; `kv.mod_revision` is the event's revision.
    Put {
        /// The key as written.
        kv: KeyValue,
        /// The key before the write (`None` for a create, or where the backend's history of
        /// the previous version was compacted away).
        prev: Option<KeyValue>,
    },
    /// The key was deleted at `revision`.
    Delete {
        /// The deleted key.
        key: String,
        /// Revision of the deleting transaction.
        revision: Revision,
        /// The key before the delete (`None` where the backend lost it to compaction).
        prev: Option<KeyValue>,
    },
}

impl WatchEvent {
    /// The revision of the transaction that made this change.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put { kv, .. } => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }

    /// The changed key.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put { kv, .. } => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }
}

/// The condition a transaction operation needs on its key; the transaction commits only if
/// every condition holds, and writes nothing otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// No condition.
    Any,
    /// The key must not exist (create).
    Absent,
    /// The key must exist, at any revision.
    Exists,
    /// The key must exist with exactly this mod_revision (compare-and-swap).
    ModRevision(Revision),
}

impl Condition {
    /// Checks the condition against the key's current record; the error names the key.
    pub(crate) fn check(
        self,
        operation: Operation,
        key: &str,
        current: Option<&KeyValue>,
    ) -> Result<()> {
        match (self, current) {
            (Condition::Any, _) => Ok(()),
            (Condition::Absent, None) => Ok(()),
            (Condition::Absent, Some(kv)) => Err(DatastoreError::AlreadyExists {
                operation,
                key: key.to_owned(),
                mod_revision: kv.mod_revision,
            }),
            (Condition::Exists | Condition::ModRevision(_), None) => {
                Err(DatastoreError::NotFound {
                    operation,
                    key: key.to_owned(),
                })
            }
            (Condition::Exists, Some(_)) => Ok(()),
            (Condition::ModRevision(expected), Some(kv)) if kv.mod_revision == expected => Ok(()),
            (Condition::ModRevision(expected), Some(kv)) => Err(DatastoreError::Conflict {
                operation,
                key: key.to_owned(),
                expected,
                actual: kv.mod_revision,
            }),
        }
    }
}

/// One operation of a multi-key transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Write `value` at `key` if `condition` holds.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
        /// What must be true of the key beforehand.
        condition: Condition,
    },
    /// Delete `key` if `condition` holds. With [`Condition::Any`], deleting an absent key is
    /// a no-op (as in etcd).
    Delete {
        /// The key.
        key: String,
        /// What must be true of the key beforehand.
        condition: Condition,
    },
}

impl TxnOp {
    /// The operation's key.
    pub fn key(&self) -> &str {
        match self {
            TxnOp::Put { key, .. } | TxnOp::Delete { key, .. } => key,
        }
    }

    /// The operation's condition.
    pub fn condition(&self) -> Condition {
        match self {
            TxnOp::Put { condition, .. } | TxnOp::Delete { condition, .. } => *condition,
        }
    }
}

/// The result of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOutcome {
    /// The revision the transaction committed at; every key it wrote has this mod_revision.
    /// A transaction that changed nothing (no ops, or only deletes of absent keys) leaves the
    /// store at its current revision and reports that.
    pub revision: Revision,
    /// For each operation, in order, the key's record before the transaction.
    pub prev_kvs: Vec<Option<KeyValue>>,
}

/// Rejects what both backends reject: an empty key, the same key twice in one txn (etcd:
/// "duplicate key given in txn request"), and more operations than `max` allows.
pub(crate) fn validate_txn(ops: &[TxnOp], max: Option<usize>) -> Result<()> {
    if let Some(max) = max
        && ops.len() > max
    {
        return Err(DatastoreError::TxnTooLarge {
            ops: ops.len(),
            max,
        });
    }
    let mut seen = HashSet::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        if op.key().is_empty() {
            return Err(DatastoreError::InvalidTxn {
                index,
                key: String::new(),
                reason: "empty key",
            });
        }
        if !seen.insert(op.key()) {
            return Err(DatastoreError::InvalidTxn {
                index,
                key: op.key().to_owned(),
                reason: "the same key appears twice in one txn",
            });
        }
    }
    Ok(())
}

/// The first key after every key that starts with `prefix` (etcd's `range_end` for a prefix),
/// or `None` when no such key exists (empty prefix, or all bytes 0xff): then the range is open.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Builds the record a committed put leaves behind, from the record before it.
pub(crate) fn record_after_put(
    key: &str,
    value: &[u8],
    revision: Revision,
    prev: Option<&KeyValue>,
) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: value.to_vec(),
        create_revision: prev.map_or(revision, |p| p.create_revision),
        mod_revision: revision,
        version: prev.map_or(1, |p| p.version + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str) -> TxnOp {
        TxnOp::Put {
            key: key.into(),
            value: vec![],
            condition: Condition::Any,
        }
    }

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"/a/b"), Some(b"/a/c".to_vec()));
        assert_eq!(prefix_end(b"/a\xff"), Some(b"/b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn txn_validation_rejects_duplicates_empty_keys_and_oversize() {
        assert!(validate_txn(&[put("/a"), put("/b")], Some(2)).is_ok());
        assert!(matches!(
            validate_txn(&[put("/a"), put("/a")], None),
            Err(DatastoreError::InvalidTxn { index: 1, .. })
        ));
        assert!(matches!(
            validate_txn(&[put("")], None),
            Err(DatastoreError::InvalidTxn { index: 0, .. })
        ));
        assert!(matches!(
            validate_txn(&[put("/a"), put("/b"), put("/c")], Some(2)),
            Err(DatastoreError::TxnTooLarge { ops: 3, max: 2 })
        ));
    }

    #[test]
    fn conditions_report_the_precise_failure() {
        let kv = KeyValue {
            key: "/k".into(),
            value: vec![],
            create_revision: 2,
            mod_revision: 5,
            version: 3,
        };
        let op = Operation::Txn;
        assert!(Condition::ModRevision(5).check(op, "/k", Some(&kv)).is_ok());
        assert!(matches!(
            Condition::ModRevision(4).check(op, "/k", Some(&kv)),
            Err(DatastoreError::Conflict {
                expected: 4,
                actual: 5,
                ..
            })
        ));
        assert!(matches!(
            Condition::Absent.check(op, "/k", Some(&kv)),
            Err(DatastoreError::AlreadyExists {
                mod_revision: 5,
                ..
            })
        ));
        assert!(matches!(
            Condition::Exists.check(op, "/k", None),
            Err(DatastoreError::NotFound { .. })
        ));
        assert!(Condition::Any.check(op, "/k", None).is_ok());
    }
}

//! Translations between this crate's types and etcd's: records, transactions, errors.

use etcd_client::{Compare, CompareOp, DeleteOptions, PutOptions, Txn, TxnOpResponse};

use crate::error::{DatastoreError, Operation, Result};
use crate::types::{Condition, KeyValue, Revision, TxnOp, TxnOutcome, WatchEvent};

/// Converts an etcd record. Keys written by Calico and by us are UTF-8; anything else is
/// reported, not mangled.
pub(super) fn kv_from_etcd(operation: Operation, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    let key = kv.key_str().map_err(|_| DatastoreError::Backend {
        operation,
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        cause: "etcd returned a key that is not UTF-8".into(),
    })?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
    })
}

/// Converts an owned etcd record without copying its value (lists move 100 MB through here).
pub(super) fn kv_into_record(operation: Operation, kv: etcd_client::KeyValue) -> Result<KeyValue> {
    let (create_revision, mod_revision, version) =
        (kv.create_revision(), kv.mod_revision(), kv.version());
    let (key, value) = kv.into_key_value();
    let key = String::from_utf8(key).map_err(|e| DatastoreError::Backend {
        operation,
        key: String::from_utf8_lossy(e.as_bytes()).into_owned(),
        cause: "etcd returned a key that is not UTF-8".into(),
    })?;
    Ok(KeyValue {
        key,
        value,
        create_revision,
        mod_revision,
        version,
    })
}

/// Converts a watch event (etcd: a delete's `kv` holds the key and the delete's revision).
pub(super) fn event_from_etcd(event: &etcd_client::Event) -> Result<WatchEvent> {
    let Some(kv) = event.kv() else {
        return Err(DatastoreError::Backend {
            operation: Operation::Watch,
            key: String::new(),
            cause: "etcd sent a watch event without a key".into(),
        });
    };
    let prev = event
        .prev_kv()
        .map(|p| kv_from_etcd(Operation::Watch, p))
        .transpose()?;
    match event.event_type() {
        etcd_client::EventType::Put => Ok(WatchEvent::Put {
            kv: kv_from_etcd(Operation::Watch, kv)?,
            prev,
        }),
        etcd_client::EventType::Delete => Ok(WatchEvent::Delete {
            key: kv_from_etcd(Operation::Watch, kv)?.key,
            revision: kv.mod_revision(),
            prev,
        }),
    }
}

/// Maps a client error. `requested` is the revision the call asked for, if any, so that a
/// compaction error can say which.
pub(super) fn map_error(
    operation: Operation,
    key: &str,
    endpoints: &str,
    requested: Revision,
    error: etcd_client::Error,
) -> DatastoreError {
    let unavailable = |cause: String| DatastoreError::Unavailable {
        operation,
        endpoint: endpoints.to_owned(),
        cause,
    };
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message();
            match status.code() {
                tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Cancelled => unavailable(format!("{:?}: {message}", status.code())),
                // A connection lost mid-stream surfaces as a status carrying the HTTP/2 error
                // ("h2 protocol error: error reading a body from connection").
                tonic::Code::Unknown | tonic::Code::Internal if lost_connection(message) => {
                    unavailable(format!("connection lost: {message}"))
                }
                _ if message.contains("required revision has been compacted") => {
                    DatastoreError::Compacted {
                        operation,
                        key: key.to_owned(),
                        requested,
                        compact_revision: 0,
                    }
                }
                _ if message.contains("required revision is a future revision") => {
                    DatastoreError::FutureRevision {
                        operation,
                        requested,
                        current: 0,
                    }
                }
                _ => DatastoreError::Backend {
                    operation,
                    key: key.to_owned(),
                    cause: format!("etcd: {message} ({:?})", status.code()),
                },
            }
        }
        etcd_client::Error::TransportError(e) => unavailable(format!("transport: {e}")),
        etcd_client::Error::IoError(e) => unavailable(format!("I/O: {e}")),
        other => DatastoreError::Backend {
            operation,
            key: key.to_owned(),
            cause: other.to_string(),
        },
    }
}

/// Whether a gRPC status message describes a broken transport rather than an etcd answer.
fn lost_connection(message: &str) -> bool {
    [
        "h2 protocol error",
        "connection",
        "transport error",
        "broken pipe",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Builds the etcd transaction: one compare per condition, the writes (with their previous
/// records) on success, and on failure a read of every conditioned key, from which
/// [`outcome_from_etcd`] names the condition that failed.
pub(super) fn txn_to_etcd(ops: &[TxnOp]) -> Txn {
    let mut compares = Vec::new();
    let mut on_failure = Vec::new();
    let mut on_success = Vec::with_capacity(ops.len());
    for op in ops {
        let key = op.key().as_bytes().to_vec();
        let compare = match op.condition() {
            Condition::Any => None,
            Condition::Absent => Some(Compare::version(key.clone(), CompareOp::Equal, 0)),
            Condition::Exists => Some(Compare::version(key.clone(), CompareOp::Greater, 0)),
            Condition::ModRevision(r) => {
                Some(Compare::mod_revision(key.clone(), CompareOp::Equal, r))
            }
        };
        if let Some(compare) = compare {
            compares.push(compare);
            on_failure.push(etcd_client::TxnOp::get(key.clone(), None));
        }
        on_success.push(match op {
            TxnOp::Put { value, .. } => {
                etcd_client::TxnOp::put(key, value.clone(), Some(PutOptions::new().with_prev_key()))
            }
            TxnOp::Delete { .. } => {
                etcd_client::TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()))
            }
        });
    }
    Txn::new()
        .when(compares)
        .and_then(on_success)
        .or_else(on_failure)
}

/// Reads a transaction response: the revision and previous records on success, or the first
/// failing condition (in op order) as its precise error.
pub(super) fn outcome_from_etcd(
    ops: &[TxnOp],
    response: &etcd_client::TxnResponse,
) -> Result<TxnOutcome> {
    let revision = response.header().map_or(0, |h| h.revision());
    let responses = response.op_responses();
    if response.succeeded() {
        let mut prev_kvs = Vec::with_capacity(ops.len());
        for (op, resp) in ops.iter().zip(&responses) {
            let prev = match resp {
                TxnOpResponse::Put(put) => put.prev_key(),
                TxnOpResponse::Delete(delete) => delete.prev_kvs().first(),
                _ => None,
            };
            prev_kvs.push(
                prev.map(|p| kv_from_etcd(Operation::Txn, p))
                    .transpose()
                    .map_err(|e| match e {
                        DatastoreError::Backend { cause, .. } => DatastoreError::Backend {
                            operation: Operation::Txn,
                            key: op.key().to_owned(),
                            cause,
                        },
                        other => other,
                    })?,
            );
        }
        return Ok(TxnOutcome { revision, prev_kvs });
    }
    let conditioned = ops.iter().filter(|op| op.condition() != Condition::Any);
    for (op, resp) in conditioned.zip(&responses) {
        let current = match resp {
            TxnOpResponse::Get(get) => get.kvs().first(),
            _ => None,
        };
        let current = current
            .map(|kv| kv_from_etcd(Operation::Txn, kv))
            .transpose()?;
        op.condition()
            .check(Operation::Txn, op.key(), current.as_ref())?;
    }
    // etcd runs the failure branch atomically with the compares, so one of the re-read
    // conditions must fail; reaching here means the response did not match the request.
    Err(DatastoreError::Backend {
        operation: Operation::Txn,
        key: ops.first().map_or("", TxnOp::key).to_owned(),
        cause: "etcd reported a failed compare but every condition holds on re-read".into(),
    })
}

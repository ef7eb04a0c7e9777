//! Reading and writing IPAM records through the datastore: every read returns the record with
//! its mod revision, and every write is a transaction conditioned on the revisions read, so a
//! concurrent writer makes the transaction fail instead of being overwritten.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tortie_datastore::{Condition, Datastore, DatastoreError, TxnOp};

use crate::IpamError;

/// A record as read, with the condition a write of it must carry.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    /// The decoded record.
    pub value: T,
    /// `ModRevision(r)` for a record read at revision r, `Absent` for one that did not exist.
    pub condition: Condition,
}

/// Reads and decodes the record at `key`.
pub fn read<T: DeserializeOwned>(
    ds: &dyn Datastore,
    key: &str,
) -> Result<Option<Versioned<T>>, IpamError> {
    let Some(kv) = ds.get(key).map_err(datastore_error)? else {
        return Ok(None);
    };
    let value = decode(key, &kv.value)?;
    Ok(Some(Versioned {
        value,
        condition: Condition::ModRevision(kv.mod_revision),
    }))
}

/// Lists and decodes every record under `prefix`, with its key.
pub fn list<T: DeserializeOwned>(
    ds: &dyn Datastore,
    prefix: &str,
) -> Result<Vec<(String, Versioned<T>)>, IpamError> {
    let snapshot = ds.list(prefix).map_err(datastore_error)?;
    snapshot
        .kvs
        .into_iter()
        .map(|kv| {
            let value = decode(&kv.key, &kv.value)?;
            Ok((
                kv.key,
                Versioned {
                    value,
                    condition: Condition::ModRevision(kv.mod_revision),
                },
            ))
        })
        .collect()
}

/// Decodes a stored JSON record, naming the key when it is corrupt.
pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, IpamError> {
    serde_json::from_slice(bytes).map_err(|err| IpamError::Corrupt {
        key: key.to_string(),
        cause: err.to_string(),
    })
}

/// A put of `value` at `key`, conditioned on `condition`.
pub fn put<T: Serialize>(key: &str, value: &T, condition: Condition) -> TxnOp {
    TxnOp::Put {
        key: key.to_string(),
        value: serde_json::to_vec(value).unwrap_or_default(),
        condition,
    }
}

/// A delete of `key`, conditioned on `condition`.
pub fn delete(key: &str, condition: Condition) -> TxnOp {
    TxnOp::Delete {
        key: key.to_string(),
        condition,
    }
}

/// Outcome of a conditioned write.
pub enum Commit {
    /// Written.
    Done,
    /// Someone else wrote first: re-read and try again.
    Lost,
}

/// Commits `ops` as one transaction; a failed condition is [`Commit::Lost`], not an error.
pub fn commit(ds: &dyn Datastore, ops: Vec<TxnOp>) -> Result<Commit, IpamError> {
    match ds.txn(&ops) {
        Ok(_) => Ok(Commit::Done),
        Err(err) if err.is_conflict() => Ok(Commit::Lost),
        Err(err) => Err(datastore_error(err)),
    }
}

/// Wraps a datastore error.
pub fn datastore_error(err: DatastoreError) -> IpamError {
    IpamError::Datastore(err.to_string())
}

//! The one error type of the crate. Every variant names the operation and, where there is one,
//! the key, so that a log line alone says what failed and where.

use std::fmt;

use crate::types::Revision;

/// The datastore operation an error came from. It is part of every error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Opening the store (connecting, creating the schema).
    Open,
    /// [`crate::Datastore::get`].
    Get,
    /// [`crate::Datastore::list`].
    List,
    /// [`crate::Datastore::create`].
    Create,
    /// [`crate::Datastore::update`].
    Update,
    /// [`crate::Datastore::put`].
    Put,
    /// [`crate::Datastore::delete`].
    Delete,
    /// [`crate::Datastore::txn`].
    Txn,
    /// [`crate::Datastore::watch`] and the events a watcher delivers.
    Watch,
    /// [`crate::Datastore::compact`].
    Compact,
    /// [`crate::Datastore::current_revision`].
    Revision,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Open => "open",
            Operation::Get => "get",
            Operation::List => "list",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Put => "put",
            Operation::Delete => "delete",
            Operation::Txn => "txn",
            Operation::Watch => "watch",
            Operation::Compact => "compact",
            Operation::Revision => "current_revision",
        })
    }
}

/// Everything that can go wrong in a datastore call.
///
/// The first four variants are *expected* outcomes of optimistic concurrency, and callers
/// branch on them (retry a CAS loop on `Conflict`, relist on `Compacted`). The others are
/// faults.
#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    /// The key does not exist (an update, a delete, or a txn condition that needs it).
    #[error("{operation} {key:?}: key not found")]
    NotFound {
        /// The failed operation.
        operation: Operation,
        /// The missing key.
        key: String,
    },
    /// The key exists but the operation needs it absent (a create).
    #[error("{operation} {key:?}: key already exists at mod_revision {mod_revision}")]
    AlreadyExists {
        /// The failed operation.
        operation: Operation,
        /// The existing key.
        key: String,
        /// Its current mod_revision.
        mod_revision: Revision,
    },
    /// Compare-and-swap lost: the key's mod_revision is not the one the caller read.
    #[error("{operation} {key:?}: expected mod_revision {expected}, found {actual}")]
    Conflict {
        /// The failed operation.
        operation: Operation,
        /// The contended key.
        key: String,
        /// The mod_revision the caller expected.
        expected: Revision,
        /// The key's current mod_revision (re-read and retry).
        actual: Revision,
    },
    /// The requested revision has been compacted away: the history the caller asked for
    /// no longer exists. Relist, then watch from the list's revision + 1.
    #[error(
        "{operation} {key:?}: revision {requested} has been compacted (history starts at {compact_revision})"
    )]
    Compacted {
        /// The failed operation.
        operation: Operation,
        /// The key or prefix concerned.
        key: String,
        /// The revision the caller asked for.
        requested: Revision,
        /// The oldest revision still available (0 where the backend does not say).
        compact_revision: Revision,
    },
    /// The requested revision is newer than the store's current revision.
    #[error("{operation}: revision {requested} is in the future (current revision {current})")]
    FutureRevision {
        /// The failed operation.
        operation: Operation,
        /// The revision the caller asked for.
        requested: Revision,
        /// The store's current revision (0 where the backend does not say).
        current: Revision,
    },
    /// The backend could not be reached (etcd down, SQLite file unreadable or locked for longer
    /// than the busy timeout).
    #[error("{operation}: datastore {endpoint} unavailable: {cause}")]
    Unavailable {
        /// The failed operation.
        operation: Operation,
        /// The etcd endpoints or the SQLite path.
        endpoint: String,
        /// What the transport or the library said.
        cause: String,
    },
    /// A transaction holds more operations than the backend accepts in one atomic unit.
    /// etcd's default `--max-txn-ops` is 128; the caller refuses or splits (non-atomically).
    #[error("txn of {ops} operations exceeds the backend's limit of {max} operations per txn")]
    TxnTooLarge {
        /// Operations requested.
        ops: usize,
        /// The backend's limit.
        max: usize,
    },
    /// A transaction is malformed (the same key twice, an empty key).
    #[error("txn operation {index} on {key:?}: {reason}")]
    InvalidTxn {
        /// Position of the offending operation.
        index: usize,
        /// Its key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An argument is outside what the operation accepts.
    #[error("{operation} {key:?}: {reason}")]
    InvalidArgument {
        /// The failed operation.
        operation: Operation,
        /// The key or prefix concerned.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A key does not follow Calico's etcd v3 layout.
    #[error("key {key:?}: {reason}")]
    InvalidKey {
        /// The key or key component.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The datastore configuration (environment variables) is invalid.
    #[error("datastore configuration {variable}: {reason}")]
    Config {
        /// The environment variable or field at fault.
        variable: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A watcher's stream has ended (after delivering an error, or because it was closed).
    #[error("watch {prefix:?}: the watch has ended")]
    WatchClosed {
        /// The watched prefix.
        prefix: String,
    },
    /// Any other backend failure (SQL error, corrupt record, non-UTF-8 key from etcd).
    #[error("{operation} {key:?}: {cause}")]
    Backend {
        /// The failed operation.
        operation: Operation,
        /// The key or prefix concerned.
        key: String,
        /// The backend's message.
        cause: String,
    },
}

impl DatastoreError {
    /// True for the errors a compare-and-swap loop retries on (re-read, then write again).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            DatastoreError::Conflict { .. }
                | DatastoreError::AlreadyExists { .. }
                | DatastoreError::NotFound { .. }
        )
    }

    /// The same error attributed to `operation`: single-key calls run as one-operation
    /// transactions and report themselves, not "txn".
    pub(crate) fn with_operation(mut self, op: Operation) -> Self {
        match &mut self {
            DatastoreError::NotFound { operation, .. }
            | DatastoreError::AlreadyExists { operation, .. }
            | DatastoreError::Conflict { operation, .. }
            | DatastoreError::Compacted { operation, .. }
            | DatastoreError::FutureRevision { operation, .. }
            | DatastoreError::Unavailable { operation, .. }
            | DatastoreError::InvalidArgument { operation, .. }
            | DatastoreError::Backend { operation, .. } => *operation = op,
            _ => {}
        }
        self
    }

    /// True when the caller must relist because the history it asked for is gone.
    pub fn is_compacted(&self) -> bool {
        matches!(self, DatastoreError::Compacted { .. })
    }
}

/// The crate's result type.
pub type Result<T, E = DatastoreError> = std::result::Result<T, E>;

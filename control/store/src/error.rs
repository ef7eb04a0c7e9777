//! The crate's one error type. Each variant names the resource (kind, namespace, name) it is
//! about; errors about one member of a batch say which member, so a caller that read the batch
//! from files can point at the file, document and line.

use tortie_datastore::DatastoreError;
use tortie_model::ModelError;

use crate::patch::PatchError;

/// A resource's identity as printed in messages: `NetworkPolicy(prod/allow-dns)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceName {
    /// Calico kind name, e.g. `NetworkPolicy`.
    pub kind: String,
    /// Namespace for namespaced kinds.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl std::fmt::Display for ResourceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}({}/{})", self.kind, ns, self.name),
            None => write!(f, "{}({})", self.kind, self.name),
        }
    }
}

/// Everything that can go wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Defaults, validation or a cross-resource check rejected the resource; the model error
    /// names the field path.
    #[error("{resource}: {source}")]
    Invalid {
        /// The resource.
        resource: ResourceName,
        /// What the model said (boxed: it carries a path and a location).
        #[source]
        source: Box<ModelError>,
    },
    /// `create` of something that exists.
    #[error("{0}: resource already exists")]
    AlreadyExists(ResourceName),
    /// `replace`, `delete`, `patch` or `get` of something that does not exist.
    #[error("{0}: resource does not exist")]
    NotFound(ResourceName),
    /// The resourceVersion given (or read before a write) is no longer current: someone else
    /// wrote the resource in between.
    #[error(
        "{resource}: update conflict: resourceVersion {expected} is not the current version {actual}; get the resource again and retry"
    )]
    Conflict {
        /// The resource.
        resource: ResourceName,
        /// The resourceVersion the caller had.
        expected: String,
        /// The stored one (empty if the resource vanished).
        actual: String,
    },
    /// `metadata.resourceVersion` is not a revision number.
    #[error("{resource}: metadata.resourceVersion: {value:?} is not a valid resource version")]
    BadResourceVersion {
        /// The resource.
        resource: ResourceName,
        /// The value given.
        value: String,
    },
    /// A namespaced kind without a namespace, or a cluster-scoped kind with one.
    #[error("{resource}: metadata.namespace: {message}")]
    Namespace {
        /// The resource.
        resource: ResourceName,
        /// What is wrong.
        message: String,
    },
    /// The same resource twice in one batch.
    #[error("{resource}: duplicate: the same resource appears earlier in the input (item {first})")]
    Duplicate {
        /// The resource.
        resource: ResourceName,
        /// 1-based position of the first occurrence in the batch.
        first: usize,
    },
    /// A stored value that does not decode as a v3 resource.
    #[error("stored value at {key}: {message}")]
    Corrupt {
        /// The datastore key.
        key: String,
        /// What failed to decode.
        message: String,
    },
    /// A patch that does not apply.
    #[error("{resource}: {source}")]
    Patch {
        /// The resource.
        resource: ResourceName,
        /// Why.
        #[source]
        source: PatchError,
    },
    /// A batch larger than the backend's transaction limit under [`crate::TxnPolicy::Refuse`].
    #[error(
        "the input holds {ops} resources, more than the datastore accepts in one transaction ({max} operations; etcd's --max-txn-ops); nothing was written. Split the input, raise the server limit, or allow chunked writes"
    )]
    TooLargeForOneTxn {
        /// Writes needed.
        ops: usize,
        /// The backend's limit.
        max: usize,
    },
    /// A chunked batch failed part-way and the chunks already written were rolled back.
    #[error("chunk {chunk} of {chunks} failed, earlier chunks were rolled back: {source}")]
    ChunkFailed {
        /// 1-based failing chunk.
        chunk: usize,
        /// Number of chunks.
        chunks: usize,
        /// What failed.
        #[source]
        source: Box<StoreError>,
    },
    /// A chunked batch failed and could not be fully rolled back: the datastore holds part of
    /// the batch. The message lists what is left behind.
    #[error(
        "chunk {chunk} of {chunks} failed ({source}) and the rollback did not complete: {unrestored} keys could not be restored (first: {first_key}); the datastore holds part of the input"
    )]
    PartiallyWritten {
        /// 1-based failing chunk.
        chunk: usize,
        /// Number of chunks.
        chunks: usize,
        /// The original failure.
        #[source]
        source: Box<StoreError>,
        /// Keys that still hold the batch's values.
        unrestored: usize,
        /// The first such key.
        first_key: String,
    },
    /// An error about one member of a batch; `index` is its 0-based position.
    #[error("{source}")]
    InBatch {
        /// 0-based position in the batch passed to the call.
        index: usize,
        /// The error.
        #[source]
        source: Box<StoreError>,
    },
    /// The datastore failed (unreachable, I/O, ...).
    #[error("datastore: {0}")]
    Datastore(#[from] DatastoreError),
}

impl StoreError {
    /// The batch position an error refers to, if any (looking through chunk wrappers).
    pub fn batch_index(&self) -> Option<usize> {
        match self {
            StoreError::InBatch { index, .. } => Some(*index),
            StoreError::ChunkFailed { source, .. }
            | StoreError::PartiallyWritten { source, .. } => source.batch_index(),
            _ => None,
        }
    }

    /// The error without its batch wrapper.
    pub fn innermost(&self) -> &StoreError {
        match self {
            StoreError::InBatch { source, .. } => source.innermost(),
            other => other,
        }
    }

    pub(crate) fn at(self, index: usize) -> StoreError {
        match self {
            already @ StoreError::InBatch { .. } => already,
            other => StoreError::InBatch {
                index,
                source: Box::new(other),
            },
        }
    }
}

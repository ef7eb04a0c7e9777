//! [`Store`]: the typed resource client over any [`Datastore`].

use std::collections::HashMap;

use tortie_datastore::{Condition, Datastore, DatastoreError, KeyValue, Revision, TxnOp, keys};
use tortie_model::{Kind, Resource};

use crate::commit::{TxnPolicy, commit};
use crate::error::StoreError;
use crate::patch::{Patch, apply_patch};
use crate::plan::{Plan, WriteMode, plan_writes, read_existing};
use crate::resource::{ResourceId, decode, parse_version};

/// Which namespaces a list covers. Cluster-scoped kinds ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// One namespace.
    Namespace(&'a str),
    /// Every namespace (`-A`).
    AllNamespaces,
}

/// A consistent listing of one kind.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The resources, sorted by namespace then name, each with its resourceVersion.
    pub items: Vec<Resource>,
    /// The datastore revision the listing reflects.
    pub revision: Revision,
}

/// The result of a batch write.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// Per batch position: the resource as stored (with resourceVersion, uid,
    /// creationTimestamp), or `None` where it was skipped.
    pub results: Vec<Option<Resource>>,
    /// How many were created.
    pub created: usize,
    /// How many existing resources were replaced.
    pub replaced: usize,
    /// How many were skipped (`CreateSkipExisting`).
    pub skipped: usize,
    /// Transactions used (1 unless the batch was chunked).
    pub transactions: usize,
}

/// The result of a batch delete.
#[derive(Debug, Clone)]
pub struct DeleteOutcome {
    /// Per position: the deleted resource, or `None` where it did not exist and missing
    /// resources were allowed.
    pub deleted: Vec<Option<Resource>>,
}

/// The typed resource client: maps resources to Calico's etcd v3 keys, runs defaults,
/// validation and cross-resource checks before every write, and keeps `resourceVersion` equal
/// to the key's mod revision.
pub struct Store<'a> {
    ds: &'a dyn Datastore,
    policy: TxnPolicy,
}

impl<'a> Store<'a> {
    /// A client over `ds` that chunks batches larger than one transaction
    /// ([`TxnPolicy::Chunked`]).
    pub fn new(ds: &'a dyn Datastore) -> Store<'a> {
        Store {
            ds,
            policy: TxnPolicy::default(),
        }
    }

    /// The same client with another policy for batches over the transaction limit.
    pub fn with_txn_policy(mut self, policy: TxnPolicy) -> Store<'a> {
        self.policy = policy;
        self
    }

    /// The datastore underneath.
    pub fn datastore(&self) -> &'a dyn Datastore {
        self.ds
    }

    /// Reads one resource.
    pub fn get(&self, id: &ResourceId) -> Result<Resource, StoreError> {
        let key = id.key()?;
        match self.ds.get(&key)? {
            Some(kv) => decode(&kv),
            None => Err(StoreError::NotFound(id.display())),
        }
    }

    /// Lists one kind, in one namespace or all of them, as one consistent snapshot.
    pub fn list(&self, kind: Kind, scope: Scope<'_>) -> Result<Listing, StoreError> {
        let namespace = match scope {
            Scope::Namespace(ns) if kind.is_namespaced() => Some(ns),
            _ => None,
        };
        let prefix = keys::resource_prefix(kind.plural(), namespace)?;
        let snapshot = self.ds.list(&prefix)?;
        let items = decode_all(&snapshot.kvs)?;
        Ok(Listing {
            items,
            revision: snapshot.revision,
        })
    }

    /// Creates one resource; fails if it exists.
    pub fn create(&self, resource: Resource) -> Result<Resource, StoreError> {
        self.write_one(resource, WriteMode::Create)
    }

    /// Replaces one existing resource; a `metadata.resourceVersion` given is a
    /// compare-and-swap condition.
    pub fn replace(&self, resource: Resource) -> Result<Resource, StoreError> {
        self.write_one(resource, WriteMode::Replace)
    }

    /// Creates or replaces one resource.
    pub fn apply(&self, resource: Resource) -> Result<Resource, StoreError> {
        self.write_one(resource, WriteMode::Apply)
    }

    fn write_one(&self, resource: Resource, mode: WriteMode) -> Result<Resource, StoreError> {
        let outcome = self
            .write_all(vec![resource], mode)
            .map_err(|e| e.innermost_owned())?;
        outcome
            .results
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| StoreError::Corrupt {
                key: String::new(),
                message: "write produced no result".into(),
            })
    }

    /// Creates or replaces every resource, all or nothing: everything is checked first, then
    /// written in one transaction (or in chunks with rollback where the backend limits
    /// transaction size and the policy allows; see [`crate::commit`]).
    pub fn apply_all(&self, resources: Vec<Resource>) -> Result<WriteOutcome, StoreError> {
        self.write_all(resources, WriteMode::Apply)
    }

    /// Writes a batch under `mode`, all or nothing. An error about one resource is
    /// [`StoreError::InBatch`] with its position.
    pub fn write_all(
        &self,
        resources: Vec<Resource>,
        mode: WriteMode,
    ) -> Result<WriteOutcome, StoreError> {
        let count = resources.len();
        let plan = plan_writes(self.ds, resources, mode)?;
        let ops = crate::plan::ops_of(&plan);
        let committed = commit(self.ds, &ops, self.policy, &|e, op| {
            write_error(&plan, e, op)
        })?;
        let mut results: Vec<Option<Resource>> = vec![None; count];
        let (mut created, mut replaced) = (0, 0);
        let skipped = plan.skipped.len();
        for (write, revision) in plan.writes.into_iter().zip(committed.revisions) {
            if write.existed {
                replaced += 1;
            } else {
                created += 1;
            }
            let mut resource = write.resource;
            resource.metadata_mut().resource_version = revision.to_string();
            results[write.index] = Some(resource);
        }
        Ok(WriteOutcome {
            results,
            created,
            replaced,
            skipped,
            transactions: committed.transactions,
        })
    }

    /// Deletes one resource; `resource_version` (if given) must be current.
    pub fn delete(
        &self,
        id: &ResourceId,
        resource_version: Option<&str>,
    ) -> Result<Resource, StoreError> {
        let outcome = self
            .delete_all(&[(id.clone(), resource_version.map(str::to_string))], false)
            .map_err(|e| e.innermost_owned())?;
        outcome
            .deleted
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| StoreError::NotFound(id.display()))
    }

    /// Deletes every named resource, all or nothing. A missing resource is an error unless
    /// `skip_missing`. Each entry may carry a resourceVersion that must be current.
    pub fn delete_all(
        &self,
        targets: &[(ResourceId, Option<String>)],
        skip_missing: bool,
    ) -> Result<DeleteOutcome, StoreError> {
        let mut keyed = Vec::with_capacity(targets.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (index, (id, _)) in targets.iter().enumerate() {
            let key = id.key().map_err(|e| e.at(index))?;
            if let Some(first) = seen.insert(key.clone(), index) {
                return Err(StoreError::Duplicate {
                    resource: id.display(),
                    first: first + 1,
                }
                .at(index));
            }
            keyed.push((id.clone(), key));
        }
        let existing = read_existing(self.ds, &keyed)?;
        let mut ops = Vec::new();
        let mut positions = Vec::new();
        let mut deleted: Vec<Option<Resource>> = vec![None; targets.len()];
        for (index, ((id, key), (_, version))) in keyed.iter().zip(targets).enumerate() {
            let Some(kv) = existing.get(key) else {
                if skip_missing {
                    continue;
                }
                return Err(StoreError::NotFound(id.display()).at(index));
            };
            let revision = match version.as_deref().filter(|v| !v.is_empty()) {
                Some(v) => {
                    let wanted = parse_version(id, v).map_err(|e| e.at(index))?;
                    if wanted != kv.mod_revision {
                        return Err(StoreError::Conflict {
                            resource: id.display(),
                            expected: v.to_string(),
                            actual: kv.mod_revision.to_string(),
                        }
                        .at(index));
                    }
                    wanted
                }
                None => kv.mod_revision,
            };
            deleted[index] = Some(decode(kv).map_err(|e| e.at(index))?);
            ops.push(TxnOp::Delete {
                key: key.clone(),
                condition: Condition::ModRevision(revision),
            });
            positions.push(index);
        }
        commit(self.ds, &ops, self.policy, &|e, op| {
            let index = op.map(|i| positions[i]);
            let id = index.map(|i| &keyed[i].0);
            datastore_error(e, id, index)
        })?;
        Ok(DeleteOutcome { deleted })
    }

    /// Applies `patch` to the stored resource and replaces it, conditioned on the revision
    /// read (a concurrent change makes the patch fail with a conflict, not be lost).
    pub fn patch(&self, id: &ResourceId, patch: &Patch) -> Result<Resource, StoreError> {
        let current = self.get(id)?;
        let mut value = serde_json::to_value(&current).map_err(|e| StoreError::Corrupt {
            key: id.key().unwrap_or_default(),
            message: e.to_string(),
        })?;
        apply_patch(&mut value, patch).map_err(|source| StoreError::Patch {
            resource: id.display(),
            source,
        })?;
        let text = serde_json::to_string(&value).unwrap_or_default();
        let mut patched = Resource::from_json(&text).map_err(|source| StoreError::Invalid {
            resource: id.display(),
            source: Box::new(source),
        })?;
        let after = ResourceId::of(&patched);
        if after.kind != id.kind || after.name != id.name || after.namespace != id.namespace {
            return Err(StoreError::Patch {
                resource: id.display(),
                source: crate::patch::PatchError(
                    "a patch may not change kind, metadata.name or metadata.namespace".into(),
                ),
            });
        }
        // The patch is relative to what was read: write only over that revision.
        patched.metadata_mut().resource_version = current.metadata().resource_version.clone();
        self.replace(patched)
    }

    /// Every stored record under `prefix`, raw (used by export).
    pub(crate) fn raw_list(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self.ds.list(prefix)?.kvs)
    }

    pub(crate) fn policy(&self) -> TxnPolicy {
        self.policy
    }
}

impl StoreError {
    fn innermost_owned(self) -> StoreError {
        match self {
            StoreError::InBatch { source, .. } => source.innermost_owned(),
            other => other,
        }
    }
}

/// Decodes many records; large listings are decoded on several threads.
fn decode_all(kvs: &[KeyValue]) -> Result<Vec<Resource>, StoreError> {
    const PER_THREAD: usize = 4096;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if kvs.len() < 2 * PER_THREAD || threads < 2 {
        return kvs.iter().map(decode).collect();
    }
    let chunk = kvs.len().div_ceil(threads);
    let parts: Vec<Result<Vec<Resource>, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = kvs
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(decode).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StoreError::Corrupt {
                        key: String::new(),
                        message: "decoder thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut items = Vec::with_capacity(kvs.len());
    for part in parts {
        items.extend(part?);
    }
    Ok(items)
}

/// Maps a datastore error from a batch write to the resource it concerns.
fn write_error(plan: &Plan, error: DatastoreError, op: Option<usize>) -> StoreError {
    let Some(write) = op.and_then(|i| plan.writes.get(i)) else {
        return StoreError::Datastore(error);
    };
    let id = ResourceId::of(&write.resource);
    datastore_error(error, Some(&id), Some(write.index))
}

fn datastore_error(
    error: DatastoreError,
    id: Option<&ResourceId>,
    index: Option<usize>,
) -> StoreError {
    let (Some(id), Some(index)) = (id, index) else {
        return StoreError::Datastore(error);
    };
    let mapped = match error {
        DatastoreError::AlreadyExists { .. } => StoreError::AlreadyExists(id.display()),
        DatastoreError::NotFound { .. } => StoreError::NotFound(id.display()),
        DatastoreError::Conflict {
            expected, actual, ..
        } => StoreError::Conflict {
            resource: id.display(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        },
        other => StoreError::Datastore(other),
    };
    mapped.at(index)
}

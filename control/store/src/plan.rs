//! Planning a batch of writes: every check that can fail runs here, before anything is
//! written, and the result is a list of conditioned transaction operations.
//!
//! Order of checks, per resource and then across the batch:
//! 1. namespace rules and the datastore key; the same key twice in the batch is an error;
//! 2. Calico's defaults, then validation (field paths come from the model);
//! 3. the stored state: create of an existing key, replace of a missing key, a stale
//!    `metadata.resourceVersion`, a change to an immutable field;
//! 4. cross-resource checks: IP pools must not overlap each other or the stored pools.

use std::collections::HashMap;

use tortie_datastore::{Condition, Datastore, KeyValue, TxnOp, keys};
use tortie_model::{IpPool, Kind, Resource};

use crate::error::StoreError;
use crate::resource::{ResourceId, checked_id, decode, encode, parse_version};
use crate::stamp;

/// How a batch treats resources that exist or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Every resource must be new.
    Create,
    /// New resources are created; existing ones are left untouched and reported as skipped.
    CreateSkipExisting,
    /// Create what is new, replace what exists.
    Apply,
    /// Every resource must exist.
    Replace,
}

/// One planned write.
#[derive(Debug)]
pub(crate) struct PlannedWrite {
    /// Position in the caller's batch.
    pub index: usize,
    /// The resource as it will be stored (defaults applied, uid and timestamp set).
    pub resource: Resource,
    /// Its key.
    pub key: String,
    /// The condition its write carries.
    pub condition: Condition,
    /// Whether the key existed before.
    pub existed: bool,
}

/// The plan for a batch.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Writes, in batch order.
    pub writes: Vec<PlannedWrite>,
    /// Positions of resources left alone (`CreateSkipExisting`).
    pub skipped: Vec<usize>,
}

/// Above this many keys, the stored state is read with one list per kind instead of one get
/// per key (one round trip instead of thousands on etcd).
const LIST_THRESHOLD: usize = 32;

/// Reads the stored records of `keys_wanted` (grouped by kind for large batches).
pub(crate) fn read_existing(
    ds: &dyn Datastore,
    ids: &[(ResourceId, String)],
) -> Result<HashMap<String, KeyValue>, StoreError> {
    let mut found = HashMap::new();
    if ids.len() > LIST_THRESHOLD {
        let mut kinds: Vec<Kind> = ids.iter().map(|(id, _)| id.kind).collect();
        kinds.sort_by_key(|k| k.plural());
        kinds.dedup();
        let wanted: std::collections::HashSet<&str> = ids.iter().map(|(_, k)| k.as_str()).collect();
        for kind in kinds {
            let prefix = keys::resource_prefix(kind.plural(), None)?;
            for kv in ds.list(&prefix)?.kvs {
                if wanted.contains(kv.key.as_str()) {
                    found.insert(kv.key.clone(), kv);
                }
            }
        }
    } else {
        for (_, key) in ids {
            if let Some(kv) = ds.get(key)? {
                found.insert(key.clone(), kv);
            }
        }
    }
    Ok(found)
}

/// Checks `resources` and plans their writes under `mode`. Errors are wrapped with the
/// batch position of the resource they are about.
pub(crate) fn plan_writes(
    ds: &dyn Datastore,
    resources: Vec<Resource>,
    mode: WriteMode,
) -> Result<Plan, StoreError> {
    // 1. identities, keys and duplicates.
    let mut ids = Vec::with_capacity(resources.len());
    let mut first_seen: HashMap<String, usize> = HashMap::with_capacity(resources.len());
    for (index, resource) in resources.iter().enumerate() {
        let id = checked_id(resource).map_err(|e| e.at(index))?;
        let key = id.key().map_err(|e| e.at(index))?;
        if let Some(first) = first_seen.insert(key.clone(), index) {
            return Err(StoreError::Duplicate {
                resource: id.display(),
                first: first + 1,
            }
            .at(index));
        }
        ids.push((id, key));
    }

    // 2. defaults and validation.
    let mut resources = resources;
    for (index, resource) in resources.iter_mut().enumerate() {
        resource.apply_defaults();
        resource.validate().map_err(|source| {
            StoreError::Invalid {
                resource: ids[index].0.display(),
                source: Box::new(source),
            }
            .at(index)
        })?;
    }

    // 3. the stored state.
    let existing = read_existing(ds, &ids)?;
    let mut plan = Plan::default();
    for (index, (mut resource, (id, key))) in resources.into_iter().zip(ids).enumerate() {
        let stored = existing.get(&key);
        let wrap = |e: StoreError| e.at(index);
        let given_version =
            Some(resource.metadata().resource_version.clone()).filter(|v| !v.is_empty());
        match (mode, stored) {
            (WriteMode::Create, Some(_)) => {
                return Err(wrap(StoreError::AlreadyExists(id.display())));
            }
            (WriteMode::CreateSkipExisting, Some(_)) => {
                plan.skipped.push(index);
                continue;
            }
            (WriteMode::Replace, None) => return Err(wrap(StoreError::NotFound(id.display()))),
            (_, None) => {
                if let Some(version) = given_version {
                    // A version on a create means the caller expected the resource to exist.
                    parse_version(&id, &version).map_err(wrap)?;
                    return Err(wrap(StoreError::Conflict {
                        resource: id.display(),
                        expected: version,
                        actual: String::new(),
                    }));
                }
                let meta = resource.metadata_mut();
                meta.uid = stamp::new_uid();
                meta.creation_timestamp = Some(stamp::now_rfc3339());
                plan.writes.push(PlannedWrite {
                    index,
                    resource,
                    key,
                    condition: Condition::Absent,
                    existed: false,
                });
            }
            (_, Some(kv)) => {
                let old = decode(kv).map_err(wrap)?;
                let condition = match given_version {
                    Some(version) => {
                        let wanted = parse_version(&id, &version).map_err(wrap)?;
                        if wanted != kv.mod_revision {
                            return Err(wrap(StoreError::Conflict {
                                resource: id.display(),
                                expected: version,
                                actual: kv.mod_revision.to_string(),
                            }));
                        }
                        Condition::ModRevision(wanted)
                    }
                    None => Condition::ModRevision(kv.mod_revision),
                };
                {
                    // Server-set fields survive an update whatever the input says.
                    let old_meta = old.metadata();
                    let meta = resource.metadata_mut();
                    meta.uid = old_meta.uid.clone();
                    meta.creation_timestamp = old_meta.creation_timestamp.clone();
                    meta.resource_version.clear();
                }
                tortie_model::check_update(&old, &resource).map_err(|source| {
                    wrap(StoreError::Invalid {
                        resource: id.display(),
                        source: Box::new(source),
                    })
                })?;
                plan.writes.push(PlannedWrite {
                    index,
                    resource,
                    key,
                    condition,
                    existed: true,
                });
            }
        }
    }

    // 4. cross-resource checks.
    check_pools(ds, &plan)?;
    Ok(plan)
}

/// Every IP pool written must not overlap another pool of the batch or a stored pool that the
/// batch does not replace.
fn check_pools(ds: &dyn Datastore, plan: &Plan) -> Result<(), StoreError> {
    let batch_pools: Vec<(&PlannedWrite, &IpPool)> = plan
        .writes
        .iter()
        .filter_map(|w| match &w.resource {
            Resource::IpPool(pool) => Some((w, pool)),
            _ => None,
        })
        .collect();
    if batch_pools.is_empty() {
        return Ok(());
    }
    let prefix = keys::resource_prefix(Kind::IpPool.plural(), None)?;
    let mut stored: Vec<IpPool> = Vec::new();
    for kv in ds.list(&prefix)?.kvs {
        if batch_pools.iter().any(|(w, _)| w.key == kv.key) {
            continue;
        }
        if let Resource::IpPool(pool) = decode(&kv)? {
            stored.push(pool);
        }
    }
    // The model skips the pool with the new pool's own name, and names are unique in a batch,
    // so one list serves every pool.
    let mut against = stored;
    against.extend(batch_pools.iter().map(|(_, p)| (*p).clone()));
    for (write, pool) in &batch_pools {
        tortie_model::check_pool_overlap(pool, &against).map_err(|source| {
            StoreError::Invalid {
                resource: ResourceId::of(&write.resource).display(),
                source: Box::new(source),
            }
            .at(write.index)
        })?;
    }
    Ok(())
}

/// The transaction operations of a plan, in order.
pub(crate) fn ops_of(plan: &Plan) -> Vec<TxnOp> {
    plan.writes
        .iter()
        .map(|w| TxnOp::Put {
            key: w.key.clone(),
            value: encode(&w.resource),
            condition: w.condition,
        })
        .collect()
}

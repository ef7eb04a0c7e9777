//! Moving a whole datastore between backends: [`export`] reads every v3 resource and every
//! IPAM record into one [`Export`]; [`import`] writes an export into an empty datastore.
//!
//! Resources travel as their v3 JSON documents (uid and creationTimestamp kept,
//! resourceVersion dropped: revisions belong to the source store). IPAM records travel as
//! their exact stored bytes (text), keyed by their Calico key, so allocation state survives
//! byte for byte.

use serde::{Deserialize, Serialize};
use tortie_datastore::{Condition, TxnOp, keys};
use tortie_model::Resource;

use crate::commit::commit;
use crate::error::StoreError;
use crate::resource::{checked_id, decode, encode};
use crate::store::Store;

/// The `kind` of an export document.
pub const EXPORT_KIND: &str = "DatastoreExport";
/// The `apiVersion` of an export document.
pub const EXPORT_API_VERSION: &str = "tortie.dev/v1";

/// A raw key-value record carried by an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    /// The Calico key, e.g. `/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26`.
    pub key: String,
    /// The stored value as text (Calico's IPAM values are JSON).
    pub value: String,
}

/// A whole-datastore export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Export {
    /// Always [`EXPORT_API_VERSION`].
    pub api_version: String,
    /// Always [`EXPORT_KIND`].
    pub kind: String,
    /// Where the export was taken (`Datastore::describe`).
    pub source: String,
    /// The source's revision when the export was read.
    pub revision: i64,
    /// Every v3 resource, as JSON documents.
    pub resources: Vec<serde_json::Value>,
    /// Every record under `/calico/ipam/`.
    pub ipam: Vec<RawRecord>,
}

/// Why an export could not be imported.
fn import_error(message: String) -> StoreError {
    StoreError::Corrupt {
        key: "import".into(),
        message,
    }
}

/// Reads every v3 resource and IPAM record. Both lists come from one consistent point where
/// the backend allows (the resource list's revision is recorded).
pub fn export(store: &Store<'_>) -> Result<Export, StoreError> {
    let ds = store.datastore();
    let snapshot = ds.list(keys::RESOURCES_PREFIX)?;
    let mut resources = Vec::with_capacity(snapshot.kvs.len());
    for kv in &snapshot.kvs {
        let mut resource = decode(kv)?;
        resource.metadata_mut().resource_version.clear();
        resources.push(
            serde_json::to_value(&resource).map_err(|e| StoreError::Corrupt {
                key: kv.key.clone(),
                message: e.to_string(),
            })?,
        );
    }
    let mut ipam = Vec::new();
    for kv in store.raw_list("/calico/ipam/")? {
        let value = String::from_utf8(kv.value).map_err(|_| StoreError::Corrupt {
            key: kv.key.clone(),
            message: "IPAM value is not UTF-8 text".into(),
        })?;
        ipam.push(RawRecord { key: kv.key, value });
    }
    Ok(Export {
        api_version: EXPORT_API_VERSION.into(),
        kind: EXPORT_KIND.into(),
        source: ds.describe(),
        revision: snapshot.revision,
        resources,
        ipam,
    })
}

/// Writes `export` into the store, which must hold no v3 resource and no IPAM record.
/// Resources are validated as on any write; the whole import is one transaction or, on etcd,
/// chunks with rollback (see [`crate::commit`]). Returns the number of records written.
pub fn import(store: &Store<'_>, export: &Export) -> Result<usize, StoreError> {
    if export.kind != EXPORT_KIND || export.api_version != EXPORT_API_VERSION {
        return Err(import_error(format!(
            "not a datastore export: expected apiVersion {EXPORT_API_VERSION} and kind {EXPORT_KIND}, found {} {}",
            export.api_version, export.kind
        )));
    }
    let ds = store.datastore();
    let present =
        ds.list(keys::RESOURCES_PREFIX)?.kvs.len() + store.raw_list("/calico/ipam/")?.len();
    if present > 0 {
        return Err(import_error(format!(
            "the target datastore {} is not empty ({present} resource or IPAM keys); import needs an empty datastore",
            ds.describe()
        )));
    }
    let mut ops = Vec::with_capacity(export.resources.len() + export.ipam.len());
    for (index, value) in export.resources.iter().enumerate() {
        let text = serde_json::to_string(value).unwrap_or_default();
        let resource = Resource::from_json(&text)
            .map_err(|e| import_error(format!("resources[{index}]: {e}")))?;
        let id = checked_id(&resource).map_err(|e| e.at(index))?;
        resource.validate().map_err(|source| {
            StoreError::Invalid {
                resource: id.display(),
                source: Box::new(source),
            }
            .at(index)
        })?;
        ops.push(TxnOp::Put {
            key: id.key()?,
            value: encode(&resource),
            condition: Condition::Absent,
        });
    }
    for (index, record) in export.ipam.iter().enumerate() {
        if !record.key.starts_with("/calico/ipam/") {
            return Err(import_error(format!(
                "ipam[{index}]: key {:?} is not under /calico/ipam/",
                record.key
            )));
        }
        ops.push(TxnOp::Put {
            key: record.key.clone(),
            value: record.value.clone().into_bytes(),
            condition: Condition::Absent,
        });
    }
    commit(ds, &ops, store.policy(), &|e, _| StoreError::Datastore(e))?;
    Ok(ops.len())
}

//! `metadata` of every resource: Kubernetes `ObjectMeta`, as Calico's v3 API uses it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Resource metadata. Identity is kind + namespace + name; the rest is bookkeeping written by the
/// datastore (`uid`, `resourceVersion`, `creationTimestamp`, `generation`) or by users (`labels`,
/// `annotations`). Fields Kubernetes adds that Calico ignores are carried unchanged. Fields are
/// declared in the order Kubernetes writes them, so JSON output matches Calico's byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Name, unique per kind (and namespace).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Prefix for server-generated names (Kubernetes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generate_name: String,
    /// Namespace, for namespaced kinds (`default` when left empty; see `apply_defaults`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Legacy self link (Kubernetes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub self_link: String,
    /// Datastore-assigned unique ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Datastore revision of this version of the object (for compare-and-swap).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Spec generation counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Creation time (RFC 3339), as written by the datastore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Deletion time, set while finalizers run (Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    /// Grace period of a pending deletion (Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    /// Labels, matched by selectors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations (no effect on behaviour).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Owners (Kubernetes), carried unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<serde_json::Value>,
    /// Finalizers (Kubernetes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    /// Server-side-apply bookkeeping (Kubernetes), carried unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<serde_json::Value>,
}

impl ObjectMeta {
    /// Metadata with just a name.
    pub fn named(name: &str) -> Self {
        ObjectMeta {
            name: name.to_string(),
            ..ObjectMeta::default()
        }
    }

    /// Metadata with a namespace and a name.
    pub fn namespaced(namespace: &str, name: &str) -> Self {
        ObjectMeta {
            name: name.to_string(),
            namespace: namespace.to_string(),
            ..ObjectMeta::default()
        }
    }
}

//! The store's view of a model [`Resource`]: its identity, its datastore key, and its stored
//! (JSON) form.
//!
//! Calico's etcd v3 backend stores each resource as its v3 JSON document without
//! `metadata.resourceVersion`; the version is the key's mod revision and is filled in on read.
//! This module is the only place that knows both the model's accessors and the key layout.

use tortie_datastore::{KeyValue, keys};
use tortie_model::{Kind, Resource};

use crate::error::{ResourceName, StoreError};

/// The namespace calicoctl gives namespaced resources that name none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A resource's identity: kind, namespace (namespaced kinds only) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceId {
    /// The kind.
    pub kind: Kind,
    /// The namespace; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ResourceId {
    /// An identity; the namespace is dropped for cluster-scoped kinds and defaulted to
    /// `default` for namespaced ones, as calicoctl does.
    pub fn new(kind: Kind, namespace: Option<&str>, name: &str) -> ResourceId {
        let namespace = if kind.is_namespaced() {
            Some(namespace.unwrap_or(DEFAULT_NAMESPACE).to_string())
        } else {
            None
        };
        ResourceId {
            kind,
            namespace,
            name: name.to_string(),
        }
    }

    /// The identity of `resource`: a namespaced kind left without a namespace is in
    /// `default`; a namespace written on a cluster-scoped kind is kept, for
    /// [`checked_id`] to reject.
    pub fn of(resource: &Resource) -> ResourceId {
        ResourceId {
            kind: resource.kind(),
            namespace: Some(resource.effective_namespace().to_string()).filter(|ns| !ns.is_empty()),
            name: resource.name().to_string(),
        }
    }

    /// The printable form used in errors.
    pub fn display(&self) -> ResourceName {
        ResourceName {
            kind: self.kind.name().to_string(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// The datastore key (`/calico/resources/v3/projectcalico.org/<plural>[/<ns>]/<name>`).
    pub fn key(&self) -> Result<String, StoreError> {
        keys::resource_key(self.kind.plural(), self.namespace.as_deref(), &self.name).map_err(|e| {
            StoreError::Namespace {
                resource: self.display(),
                message: e.to_string(),
            }
        })
    }
}

/// Checks the namespace of `resource` against its kind and returns its identity: namespaced
/// kinds need one, cluster-scoped kinds must not have one.
pub fn checked_id(resource: &Resource) -> Result<ResourceId, StoreError> {
    let id = ResourceId::of(resource);
    match (id.kind.is_namespaced(), &id.namespace) {
        (true, None) => Err(StoreError::Namespace {
            resource: id.display(),
            message: format!("{} is namespaced: a namespace is required", id.kind.name()),
        }),
        (false, Some(ns)) => Err(StoreError::Namespace {
            resource: id.display(),
            message: format!(
                "{} is cluster-scoped: namespace {ns:?} must not be set",
                id.kind.name()
            ),
        }),
        _ => Ok(id),
    }
}

/// The bytes stored for `resource`: its JSON without `metadata.resourceVersion`.
pub fn encode(resource: &Resource) -> Vec<u8> {
    let mut stored = resource.clone();
    stored.metadata_mut().resource_version.clear();
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// Decodes a stored record, setting `metadata.resourceVersion` from its mod revision.
pub fn decode(kv: &KeyValue) -> Result<Resource, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        key: kv.key.clone(),
        message,
    };
    let text = std::str::from_utf8(&kv.value).map_err(|e| corrupt(e.to_string()))?;
    let mut resource = Resource::from_json(text).map_err(|e| corrupt(e.to_string()))?;
    resource.metadata_mut().resource_version = kv.mod_revision.to_string();
    Ok(resource)
}

/// Parses a user-given `metadata.resourceVersion` as a revision.
pub fn parse_version(id: &ResourceId, text: &str) -> Result<i64, StoreError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| StoreError::BadResourceVersion {
            resource: id.display(),
            value: text.to_string(),
        })
}

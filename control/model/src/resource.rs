//! [`Resource`]: one object of any supported kind, in Calico's exact JSON/YAML shape
//! (`apiVersion`, `kind`, `metadata`, `spec`, and `status` where the datastore wrote one).

use crate::document::de::{DeError, from_tree};
use crate::document::emit;
use crate::document::tree::{Tree, TreeValue};
use crate::error::{FieldPath, ModelError};
use crate::kind::{CALICO_API_VERSION, K8S_CORE_API_VERSION, K8S_NETWORKING_API_VERSION, Kind};
use crate::meta::ObjectMeta;
use crate::types::*;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An object: metadata, spec, and the status the datastore may have written.
#[derive(Debug, Clone, PartialEq)]
pub struct Object<S> {
    /// Name, namespace, labels and bookkeeping.
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: S,
    /// Observed state written by controllers; carried unchanged, never validated.
    pub status: Option<serde_json::Value>,
}

impl<S> Object<S> {
    /// An object with the given metadata and spec and no status.
    pub fn new(metadata: ObjectMeta, spec: S) -> Self {
        Object {
            metadata,
            spec,
            status: None,
        }
    }
}

/// A Calico NetworkPolicy.
pub type NetworkPolicy = Object<NetworkPolicySpec>;
/// A Calico GlobalNetworkPolicy.
pub type GlobalNetworkPolicy = Object<GlobalNetworkPolicySpec>;
/// A Tier.
pub type Tier = Object<TierSpec>;
/// A NetworkSet (namespaced) or GlobalNetworkSet.
pub type NetworkSet = Object<NetworkSetSpec>;
/// An IPPool.
pub type IpPool = Object<IpPoolSpec>;
/// An IPReservation.
pub type IpReservation = Object<IpReservationSpec>;
/// The IPAMConfiguration.
pub type IpamConfiguration = Object<IpamConfigurationSpec>;
/// A BGPConfiguration.
pub type BgpConfiguration = Object<BgpConfigurationSpec>;
/// A BGPPeer.
pub type BgpPeer = Object<BgpPeerSpec>;
/// A BGPFilter.
pub type BgpFilter = Object<BgpFilterSpec>;
/// A Node.
pub type Node = Object<NodeSpec>;
/// A HostEndpoint.
pub type HostEndpoint = Object<HostEndpointSpec>;
/// A WorkloadEndpoint.
pub type WorkloadEndpoint = Object<WorkloadEndpointSpec>;
/// A Profile.
pub type Profile = Object<ProfileSpec>;
/// A FelixConfiguration.
pub type FelixConfiguration = Object<FelixConfigurationSpec>;
/// The ClusterInformation.
pub type ClusterInformation = Object<ClusterInformationSpec>;
/// A Kubernetes NetworkPolicy.
pub type KubernetesNetworkPolicy = Object<KubernetesNetworkPolicySpec>;
/// A Kubernetes Namespace.
pub type KubernetesNamespace = Object<NamespaceSpec>;

/// Identity of a resource: two resources with equal keys are the same object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// The kind.
    pub kind: Kind,
    /// The namespace (`default` for a namespaced kind left without one; empty otherwise).
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {:?}", self.kind, self.name)
        } else {
            write!(f, "{} \"{}/{}\"", self.kind, self.namespace, self.name)
        }
    }
}

macro_rules! resources {
    ($($variant:ident => $spec:ty),* $(,)?) => {
        /// One resource of any supported kind.
        ///
        /// Serializes to (and deserializes from) exactly Calico's shape, so values stored in
        /// Calico's etcd layout read back unchanged. Deserialization is strict: unknown fields,
        /// unknown kinds and malformed values are errors naming the field path.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(missing_docs)]
        pub enum Resource {
            $($variant(Object<$spec>),)*
        }

        impl Resource {
            /// The resource's kind.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Resource::$variant(_) => Kind::$variant,)*
                }
            }

            /// The resource's metadata.
            pub fn metadata(&self) -> &ObjectMeta {
                match self {
                    $(Resource::$variant(o) => &o.metadata,)*
                }
            }

            /// The resource's metadata, for changing it.
            pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self {
                    $(Resource::$variant(o) => &mut o.metadata,)*
                }
            }

            /// The status written by a controller, if any.
            pub fn status(&self) -> Option<&serde_json::Value> {
                match self {
                    $(Resource::$variant(o) => o.status.as_ref(),)*
                }
            }

            fn serialize_spec<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                match self {
                    $(Resource::$variant(o) => map.serialize_entry("spec", &o.spec),)*
                }
            }
        }

        fn build(
            kind: Kind,
            metadata: ObjectMeta,
            spec: &Tree,
            status: Option<serde_json::Value>,
            path: &FieldPath,
        ) -> Result<Resource, DeError> {
            let spec_path = path.field("spec");
            Ok(match kind {
                $(Kind::$variant => Resource::$variant(Object {
                    metadata,
                    spec: from_tree(spec, &spec_path)?,
                    status,
                }),)*
            })
        }
    };
}

resources! {
    NetworkPolicy => NetworkPolicySpec,
    GlobalNetworkPolicy => GlobalNetworkPolicySpec,
    Tier => TierSpec,
    NetworkSet => NetworkSetSpec,
    GlobalNetworkSet => NetworkSetSpec,
    IpPool => IpPoolSpec,
    IpReservation => IpReservationSpec,
    IpamConfiguration => IpamConfigurationSpec,
    BgpConfiguration => BgpConfigurationSpec,
    BgpPeer => BgpPeerSpec,
    BgpFilter => BgpFilterSpec,
    Node => NodeSpec,
    HostEndpoint => HostEndpointSpec,
    WorkloadEndpoint => WorkloadEndpointSpec,
    Profile => ProfileSpec,
    FelixConfiguration => FelixConfigurationSpec,
    ClusterInformation => ClusterInformationSpec,
    KubernetesNetworkPolicy => KubernetesNetworkPolicySpec,
    KubernetesNamespace => NamespaceSpec,
}

impl Resource {
    /// The resource's name.
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The namespace the resource lives in: `metadata.namespace`, or `default` for a namespaced
    /// kind that has none; empty for cluster-scoped kinds.
    pub fn effective_namespace(&self) -> &str {
        let namespace = self.metadata().namespace.as_str();
        if self.kind().is_namespaced() && namespace.is_empty() {
            "default"
        } else {
            namespace
        }
    }

    /// The resource's identity.
    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            kind: self.kind(),
            namespace: self.effective_namespace().to_string(),
            name: self.name().to_string(),
        }
    }

    /// Reads one resource from JSON (e.g. a value stored in etcd).
    pub fn from_json(text: &str) -> Result<Resource, ModelError> {
        serde_json::from_str(text)
            .map_err(|e| ModelError::invalid(&FieldPath::root(), e.to_string()))
    }

    /// Compact JSON, as Calico stores values in etcd.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Block-style YAML with keys sorted, re-appliable with `parse_documents`.
    pub fn to_yaml(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        emit::to_yaml(&value)
    }
}

impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let status = self.status();
        let mut map = serializer.serialize_map(Some(4 + usize::from(status.is_some())))?;
        map.serialize_entry("apiVersion", self.kind().api_version())?;
        map.serialize_entry("kind", self.kind().name())?;
        map.serialize_entry("metadata", self.metadata())?;
        self.serialize_spec(&mut map)?;
        if let Some(status) = status {
            map.serialize_entry("status", status)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tree = Tree::deserialize(deserializer)?;
        resource_from_tree(&tree, &FieldPath::root(), None).map_err(D::Error::custom)
    }
}

const TOP_LEVEL_FIELDS: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];

fn error_at(tree: &Tree, path: FieldPath, message: String) -> DeError {
    DeError {
        message,
        path: Some(path),
        mark: tree.mark,
    }
}

/// Reads a text field of the root mapping (`apiVersion`, `kind`), or the list's default.
fn text_field<'a>(
    root: &'a Tree,
    name: &str,
    path: &FieldPath,
    default: Option<&'a str>,
) -> Result<&'a str, DeError> {
    match root.get(name) {
        Some(node) => node.as_text().ok_or_else(|| {
            let message = format!("{name} must be a string, not {}", node.describe());
            error_at(node, path.field(name), message)
        }),
        None => default.ok_or_else(|| error_at(root, path.field(name), format!("missing {name}"))),
    }
}

/// The kind of a document, with clear errors for unknown API versions and kinds.
pub(crate) fn kind_of(
    root: &Tree,
    path: &FieldPath,
    defaults: Option<(&str, &str)>,
) -> Result<Kind, DeError> {
    let api_version = text_field(root, "apiVersion", path, defaults.map(|d| d.0))?;
    let kind = text_field(root, "kind", path, defaults.map(|d| d.1))?;
    if let Some(found) = Kind::from_api(api_version, kind) {
        return Ok(found);
    }
    let known = [
        CALICO_API_VERSION,
        K8S_NETWORKING_API_VERSION,
        K8S_CORE_API_VERSION,
    ];
    if !known.contains(&api_version) {
        let node = root.get("apiVersion").unwrap_or(root);
        let message = format!(
            "unknown apiVersion {api_version:?} (expected {CALICO_API_VERSION}, or {K8S_NETWORKING_API_VERSION} / {K8S_CORE_API_VERSION} for Kubernetes inputs)"
        );
        return Err(error_at(node, path.field("apiVersion"), message));
    }
    let node = root.get("kind").unwrap_or(root);
    let mut message = format!("unknown kind {kind:?} for apiVersion {api_version}");
    let suggestion = Kind::ALL
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(kind) || Kind::from_user_str(kind) == Some(*k));
    if let Some(k) = suggestion {
        message.push_str(&format!(
            " (did you mean kind {:?} with apiVersion {}?)",
            k.name(),
            k.api_version()
        ));
    }
    Err(error_at(node, path.field("kind"), message))
}

/// Builds a resource from a document tree. `defaults` supplies `apiVersion`/`kind` for items of
/// a typed list that leave them out.
pub(crate) fn resource_from_tree(
    root: &Tree,
    path: &FieldPath,
    defaults: Option<(&str, &str)>,
) -> Result<Resource, DeError> {
    let TreeValue::Map(entries) = &root.value else {
        let message = format!("expected a resource (a mapping), found {}", root.describe());
        return Err(error_at(root, path.clone(), message));
    };
    let kind = kind_of(root, path, defaults)?;
    for (key, _) in entries {
        let name = key.as_text().unwrap_or_default();
        if !TOP_LEVEL_FIELDS.contains(&name) {
            let message = format!(
                "unknown field {name:?} (expected apiVersion, kind, metadata, spec or status)"
            );
            return Err(error_at(key, path.field(name), message));
        }
    }
    let null = Tree {
        value: TreeValue::Null,
        mark: root.mark,
    };
    let metadata: ObjectMeta = from_tree(
        root.get("metadata").unwrap_or(&null),
        &path.field("metadata"),
    )?;
    let status = match root.get("status") {
        Some(node) if !node.is_null() => Some(from_tree(node, &path.field("status"))?),
        _ => None,
    };
    build(
        kind,
        metadata,
        root.get("spec").unwrap_or(&null),
        status,
        path,
    )
}

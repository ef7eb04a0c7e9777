//! Identities of the things the graph tracks and emits.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// An endpoint under policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum EndpointId {
    /// A WorkloadEndpoint, by namespace and `metadata.name`.
    Workload {
        /// Namespace.
        namespace: String,
        /// `metadata.name`.
        name: String,
    },
    /// A HostEndpoint, by name.
    Host {
        /// `metadata.name`.
        name: String,
    },
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointId::Workload { namespace, name } => {
                write!(f, "workload endpoint {namespace}/{name}")
            }
            EndpointId::Host { name } => write!(f, "host endpoint {name}"),
        }
    }
}

/// A label set the selector index knows: endpoints and network sets (which rule selectors
/// match, so their nets join IP sets, but policy selectors never apply to).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ItemId {
    Endpoint(EndpointId),
    NetworkSet { namespace: String, name: String },
    GlobalNetworkSet { name: String },
}

/// Where an item inherits labels from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ParentId {
    /// A profile listed on the endpoint (its `labelsToApply`).
    Profile(String),
    /// The item's namespace (`pcns.`-prefixed namespace labels).
    Namespace(String),
    /// The workload's service account (`pcsa.projectcalico.org/name`).
    ServiceAccount(String, String),
}

/// A policy: a Calico NetworkPolicy (Kubernetes ones as `knp.default.<name>`) or a
/// GlobalNetworkPolicy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum PolicyId {
    /// A namespaced policy.
    Namespaced {
        /// Namespace.
        namespace: String,
        /// Name (`knp.default.<name>` for converted Kubernetes policy).
        name: String,
    },
    /// A global policy.
    Global {
        /// Name.
        name: String,
    },
}

impl PolicyId {
    /// The name policies are sorted by after their order, as Felix does: `<namespace>/<name>`
    /// for namespaced policy, the name for global policy.
    pub fn sort_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyId::Namespaced { namespace, name } => write!(f, "{namespace}/{name}"),
            PolicyId::Global { name } => f.write_str(name),
        }
    }
}

/// An IP set: the members of one selector (scoped as the rule's namespace dictates), or the
/// `(address, protocol, port)` members of one named port over one selector. The text is the
/// selector's unique id (`s:...`), or `n:<protocol>:<port name>:<selector id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct IpSetId(pub Arc<str>);

impl fmt::Display for IpSetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the selector index files selectors under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SelectorKey {
    /// A policy's endpoint selector.
    Policy(PolicyId),
    /// A rule selector shared by one or more IP sets, by unique id.
    Set(Arc<str>),
}

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
pub(crate) enum ItemKey {
    Endpoint(EndpointId),
    NetworkSet { namespace: String, name: String },
    GlobalNetworkSet { name: String },
}

/// The number standing for an [`ItemKey`] inside the selector index (see
/// [`crate::items::ItemTable`]): the index compares, copies and files item ids many times per
/// matched item, and a number makes each of those one integer operation instead of a string
/// comparison or two heap allocations. Numbers of removed items are reused, so their order
/// means nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ItemId(pub(crate) u32);

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

    /// Compares the names policies sort by (see [`PolicyId::sort_name`]) without building
    /// them: endpoint programs sort their policies on every re-plan, and formatting two
    /// strings per comparison was a large part of that.
    pub fn cmp_sort_name(&self, other: &PolicyId) -> std::cmp::Ordering {
        fn parts(id: &PolicyId) -> [&str; 3] {
            match id {
                PolicyId::Namespaced { namespace, name } => [namespace, "/", name],
                PolicyId::Global { name } => [name, "", ""],
            }
        }
        let bytes = |id| parts(id).into_iter().flat_map(str::bytes);
        bytes(self).cmp(bytes(other))
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy_id() -> impl Strategy<Value = PolicyId> {
        let part = "[a-c/.-]{0,4}";
        prop_oneof![
            (part, part).prop_map(|(namespace, name)| PolicyId::Namespaced { namespace, name }),
            part.prop_map(|name| PolicyId::Global { name }),
        ]
    }

    #[test]
    fn sort_name_comparison_examples() {
        let ns = |namespace: &str, name: &str| PolicyId::Namespaced {
            namespace: namespace.into(),
            name: name.into(),
        };
        let global = |name: &str| PolicyId::Global { name: name.into() };
        use std::cmp::Ordering::*;
        assert_eq!(ns("a", "b").cmp_sort_name(&global("a/b")), Equal);
        assert_eq!(ns("a", "b").cmp_sort_name(&global("a")), Greater);
        assert_eq!(ns("a", "b").cmp_sort_name(&ns("a-", "a")), Greater); // '/' > '-'
        assert_eq!(global("a.b").cmp_sort_name(&ns("a", "a")), Less); // '.' < '/'
    }

    proptest! {
        #[test]
        fn sort_name_comparison_agrees_with_the_names(a in policy_id(), b in policy_id()) {
            prop_assert_eq!(a.cmp_sort_name(&b), a.sort_name().cmp(&b.sort_name()));
        }
    }
}

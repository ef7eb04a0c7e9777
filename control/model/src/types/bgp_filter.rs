//! BGPFilter (`projectcalico.org/v3`, Calico v3.26+): import and export rules that
//! `BGPPeer.spec.filters` attach to sessions.

use super::primitives::Cidr;
use serde::{Deserialize, Serialize};

/// Spec of a `BGPFilter`: rule lists per direction and family, each evaluated in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpFilterSpec {
    /// Rules for IPv4 routes sent to the peer.
    #[serde(rename = "exportV4", default, skip_serializing_if = "Vec::is_empty")]
    pub export_v4: Vec<BgpFilterRule>,
    /// Rules for IPv4 routes received from the peer.
    #[serde(rename = "importV4", default, skip_serializing_if = "Vec::is_empty")]
    pub import_v4: Vec<BgpFilterRule>,
    /// Rules for IPv6 routes sent to the peer.
    #[serde(rename = "exportV6", default, skip_serializing_if = "Vec::is_empty")]
    pub export_v6: Vec<BgpFilterRule>,
    /// Rules for IPv6 routes received from the peer.
    #[serde(rename = "importV6", default, skip_serializing_if = "Vec::is_empty")]
    pub import_v6: Vec<BgpFilterRule>,
}

/// One rule: the conditions that are set must all hold for `action` to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpFilterRule {
    /// The CIDR the route's prefix is compared with (needs `matchOperator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Cidr>,
    /// How the prefix is compared with `cidr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_operator: Option<BgpFilterMatchOperator>,
    /// Range of prefix lengths (needs `cidr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<BgpFilterPrefixLength>,
    /// Only routes from this source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<BgpFilterMatchSource>,
    /// Only routes through this interface (a name or a `*` wildcard pattern).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    /// What to do with a matching route.
    pub action: BgpFilterAction,
}

/// Prefix-length bounds, both optional and inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpFilterPrefixLength {
    /// Shortest length matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u8>,
    /// Longest length matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u8>,
}

/// Comparison of a route's prefix with a rule's CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BgpFilterMatchOperator {
    /// Exactly the CIDR.
    Equal,
    /// Not exactly the CIDR.
    NotEqual,
    /// Within the CIDR (the CIDR included).
    In,
    /// Outside the CIDR.
    NotIn,
}

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BgpFilterMatchSource {
    /// Learned from a BGP peer (as opposed to originated by the node).
    RemotePeers,
}

/// A rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BgpFilterAction {
    /// Take (import) or send (export) the route.
    Accept,
    /// Drop it.
    Reject,
}

//! Policy resources: NetworkPolicy, GlobalNetworkPolicy, Tier, Profile, and their rules.
//!
//! Field names and omission rules follow Calico's `projectcalico.org/v3` JSON exactly (empty
//! strings, empty lists, `false` and unset options are left out when written), so values stored
//! by Calico read back and write out unchanged.

use super::primitives::{Cidr, IpVersion, Port, Protocol};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Writes an `order` as Go's JSON encoder writes a float64: whole numbers without a fraction
/// (`1000`, not `1000.0`), so stored values match Calico's byte for byte.
fn serialize_order<S: serde::Serializer>(order: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match order {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => s.serialize_i64(*v as i64),
        Some(v) => s.serialize_f64(*v),
        None => s.serialize_none(),
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Accept the packet and stop evaluating policy.
    Allow,
    /// Drop the packet and stop evaluating policy.
    Deny,
    /// Log the packet and continue with the next rule.
    Log,
    /// Skip the rest of the tier and go to the next tier (or to the profiles).
    Pass,
}

/// A direction a policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PolicyType {
    /// Traffic to the selected endpoints.
    Ingress,
    /// Traffic from the selected endpoints.
    Egress,
}

/// Hints to the policy engine that never change enforcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PerformanceHint {
    /// Treat the policy as used on every node (pre-load it).
    AssumeNeededOnEveryNode,
}

/// ICMP type and code match (`icmp` / `notICMP`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpFields {
    /// ICMP type, 0-254.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u16>,
    /// ICMP code, 0-255; only valid together with a type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// A Kubernetes Service match (`services`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceMatch {
    /// Service name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Service namespace (defaults to the policy's own in a NetworkPolicy).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// A service-account match (`serviceAccounts`): names and selector are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountMatch {
    /// Service account names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Selector over service-account labels.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
}

/// Source or destination match criteria of a rule; all present criteria are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntityRule {
    /// IP is in any of these networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<Cidr>,
    /// Endpoint (or network set) labels match this selector.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Scopes `selector` to namespaces whose labels match; `global()` selects non-namespaced
    /// objects only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    /// Kubernetes Service match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ServiceMatch>,
    /// Port is any of these (requires a port protocol unless all are named ports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// IP is in none of these networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_nets: Vec<Cidr>,
    /// Packet is not from/to an endpoint matching this selector.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub not_selector: String,
    /// Port is none of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<Port>,
    /// Service-account match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<ServiceAccountMatch>,
}

impl EntityRule {
    /// Whether the entity rule has no criteria (matches everything).
    pub fn is_empty(&self) -> bool {
        *self == EntityRule::default()
    }
}

/// One HTTP path match: exactly one of `exact` and `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPath {
    /// Exact path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exact: String,
    /// Path prefix.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// Application-layer HTTP match (accepted and validated; enforcement needs an L7 proxy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpMatch {
    /// HTTP methods (ORed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Paths (ORed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<HttpPath>,
}

/// Per-rule metadata (no effect on matching).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMetadata {
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A policy or profile rule: match criteria plus an action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    /// What to do on a match.
    pub action: Action,
    /// Restrict to one IP family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<IpVersion>,
    /// IP protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// ICMP type/code (protocol must be ICMP or ICMPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpFields>,
    /// Negated protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_protocol: Option<Protocol>,
    /// Negated ICMP match.
    #[serde(rename = "notICMP", default, skip_serializing_if = "Option::is_none")]
    pub not_icmp: Option<IcmpFields>,
    /// Source criteria.
    #[serde(default, skip_serializing_if = "EntityRule::is_empty")]
    pub source: EntityRule,
    /// Destination criteria.
    #[serde(default, skip_serializing_if = "EntityRule::is_empty")]
    pub destination: EntityRule,
    /// HTTP criteria (Allow rules only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpMatch>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RuleMetadata>,
}

impl Rule {
    /// A rule with only an action (matches every packet).
    pub fn new(action: Action) -> Self {
        Rule {
            action,
            ip_version: None,
            protocol: None,
            icmp: None,
            not_protocol: None,
            not_icmp: None,
            source: EntityRule::default(),
            destination: EntityRule::default(),
            http: None,
            metadata: None,
        }
    }
}

/// Spec of a namespaced `NetworkPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Tier name; empty means `default`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tier: String,
    /// Order within the tier (lower first); unset means last.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_order"
    )]
    pub order: Option<f64>,
    /// Ingress rules, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    /// Egress rules, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    /// Endpoints the policy applies to; empty means `all()` (in the policy's namespace).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Directions; inferred from the rules when empty (see `apply_defaults`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<PolicyType>,
    /// Selector over the endpoints' service-account labels (ANDed with `selector`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_selector: String,
    /// Engine hints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_hints: Vec<PerformanceHint>,
}

/// Spec of a cluster-wide `GlobalNetworkPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GlobalNetworkPolicySpec {
    /// Tier name; empty means `default`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tier: String,
    /// Order within the tier (lower first); unset means last.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_order"
    )]
    pub order: Option<f64>,
    /// Ingress rules, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    /// Egress rules, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    /// Endpoints the policy applies to; empty means `all()`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Directions; inferred from the rules when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<PolicyType>,
    /// Rules run before connection tracking; allowed packets are not tracked.
    #[serde(default, skip_serializing_if = "is_false")]
    pub do_not_track: bool,
    /// Rules run before DNAT (ingress only, host endpoints).
    #[serde(rename = "preDNAT", default, skip_serializing_if = "is_false")]
    pub pre_dnat: bool,
    /// Also police traffic forwarded through host endpoints.
    #[serde(default, skip_serializing_if = "is_false")]
    pub apply_on_forward: bool,
    /// Selector over the endpoints' service-account labels.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_selector: String,
    /// Selector over the endpoints' namespace labels.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    /// Engine hints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_hints: Vec<PerformanceHint>,
}

/// What happens at the end of a tier when no policy in it decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TierAction {
    /// Drop (the default).
    Deny,
    /// Continue with the next tier.
    Pass,
}

/// Spec of a `Tier`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TierSpec {
    /// Order among tiers (lower first); unset means last.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_order"
    )]
    pub order: Option<f64>,
    /// End-of-tier action; `Deny` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<TierAction>,
}

/// Spec of a `Profile`: rules applied after policy, and labels given to member endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfileSpec {
    /// Ingress rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    /// Egress rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    /// Labels merged into each endpoint that lists the profile (the endpoint's own win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels_to_apply: BTreeMap<String, String>,
}

/// Spec of a `NetworkSet` or `GlobalNetworkSet`: labelled networks that rule selectors can match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSetSpec {
    /// The networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<Cidr>,
}

//! Policies, profiles and tiers in compiled form.

use crate::ids::PolicyId;
use crate::rules::{
    CompiledRule, IpSetSpec, SERVICE_ACCOUNT_LABEL_PREFIX, Scope, compile_rule, in_namespace,
    namespace_selector, parse_or_nothing,
};
use serde::Serialize;
use tortie_model::infer_policy_types;
use tortie_model::types::{
    GlobalNetworkPolicySpec, NetworkPolicySpec, PolicyType, ProfileSpec, Rule, TierAction,
};
use tortie_selector::Selector;

/// The tier policies without a `tier` belong to.
pub const DEFAULT_TIER: &str = "default";

/// Which stage of host-endpoint processing a policy belongs to (workload endpoints only ever
/// run [`PolicyClass::Normal`] policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PolicyClass {
    /// Tracked policy after DNAT (optionally also for forwarded traffic: `applyOnForward`).
    Normal,
    /// `preDNAT: true`: ingress only, before DNAT, no default drop.
    PreDnat,
    /// `doNotTrack: true`: before conntrack, no default drop.
    Untracked,
}

/// A policy ready for the per-endpoint programs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompiledPolicy {
    /// Identity.
    pub id: PolicyId,
    /// Tier name.
    pub tier: String,
    /// Order within the tier; `None` sorts last.
    pub order: Option<f64>,
    /// Endpoint selector, scoped (namespace, namespaceSelector, serviceAccountSelector).
    #[serde(serialize_with = "serialize_selector")]
    pub selector: Selector,
    /// Applies to ingress.
    pub ingress_enabled: bool,
    /// Applies to egress.
    pub egress_enabled: bool,
    /// Stage.
    pub class: PolicyClass,
    /// `applyOnForward`.
    pub apply_on_forward: bool,
    /// Ingress rules.
    pub ingress: Vec<CompiledRule>,
    /// Egress rules.
    pub egress: Vec<CompiledRule>,
}

fn serialize_selector<S: serde::Serializer>(sel: &Selector, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(sel.canonical())
}

/// A profile ready for the per-endpoint programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompiledProfile {
    /// Name.
    pub name: String,
    /// Ingress rules.
    pub ingress: Vec<CompiledRule>,
    /// Egress rules.
    pub egress: Vec<CompiledRule>,
}

/// A tier's sorting and end-of-tier behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TierInfo {
    /// Order; `None` sorts last.
    pub order: Option<f64>,
    /// What happens when a policy of the tier applied and no rule decided.
    pub default_action: TierAction,
}

/// The tiers Calico creates itself, used while no Tier resource of that name exists.
pub fn builtin_tier(name: &str) -> Option<TierInfo> {
    let (order, default_action) = match name {
        DEFAULT_TIER => (1_000_000.0, TierAction::Deny),
        "kube-admin" => (1_000.0, TierAction::Pass),
        "kube-baseline" => (10_000_000.0, TierAction::Pass),
        _ => return None,
    };
    Some(TierInfo {
        order: Some(order),
        default_action,
    })
}

/// Sorts by order (unset last), then by name, as Felix sorts tiers and policies.
pub fn order_cmp(a: (Option<f64>, &str), b: (Option<f64>, &str)) -> std::cmp::Ordering {
    let key = |o: Option<f64>| o.unwrap_or(f64::INFINITY);
    key(a.0).total_cmp(&key(b.0)).then_with(|| a.1.cmp(b.1))
}

struct Common<'a> {
    tier: &'a str,
    order: Option<f64>,
    types: &'a [PolicyType],
    ingress: &'a [Rule],
    egress: &'a [Rule],
}

fn compile_common(
    id: PolicyId,
    common: Common<'_>,
    selector: Selector,
    scope: Scope<'_>,
    sets: &mut Vec<IpSetSpec>,
) -> CompiledPolicy {
    let types = if common.types.is_empty() {
        infer_policy_types(!common.ingress.is_empty(), !common.egress.is_empty())
    } else {
        common.types.to_vec()
    };
    let tier = if common.tier.is_empty() {
        DEFAULT_TIER
    } else {
        common.tier
    };
    CompiledPolicy {
        id,
        tier: tier.to_string(),
        order: common.order,
        selector,
        ingress_enabled: types.contains(&PolicyType::Ingress),
        egress_enabled: types.contains(&PolicyType::Egress),
        class: PolicyClass::Normal,
        apply_on_forward: false,
        ingress: common
            .ingress
            .iter()
            .map(|r| compile_rule(r, scope, sets))
            .collect(),
        egress: common
            .egress
            .iter()
            .map(|r| compile_rule(r, scope, sets))
            .collect(),
    }
}

fn service_account_part(text: &str, parts: &mut Vec<Selector>) {
    if !text.is_empty() {
        parts.push(parse_or_nothing(text).with_prefix(SERVICE_ACCOUNT_LABEL_PREFIX));
    }
}

fn and_all(parts: Vec<Selector>) -> Selector {
    let mut iter = parts.into_iter();
    let first = iter.next().unwrap_or_default();
    iter.fold(first, |acc, s| acc.and(&s))
}

/// Compiles a namespaced NetworkPolicy (also a converted Kubernetes one).
pub fn compile_network_policy(
    namespace: &str,
    name: &str,
    spec: &NetworkPolicySpec,
    sets: &mut Vec<IpSetSpec>,
) -> CompiledPolicy {
    let mut parts = vec![in_namespace(namespace), parse_or_nothing(&spec.selector)];
    service_account_part(&spec.service_account_selector, &mut parts);
    let id = PolicyId::Namespaced {
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    let common = Common {
        tier: &spec.tier,
        order: spec.order,
        types: &spec.types,
        ingress: &spec.ingress,
        egress: &spec.egress,
    };
    compile_common(
        id,
        common,
        and_all(parts),
        Scope::Namespace(namespace),
        sets,
    )
}

/// Compiles a GlobalNetworkPolicy.
pub fn compile_global_policy(
    name: &str,
    spec: &GlobalNetworkPolicySpec,
    sets: &mut Vec<IpSetSpec>,
) -> CompiledPolicy {
    let mut parts = vec![parse_or_nothing(&spec.selector)];
    if !spec.namespace_selector.is_empty() {
        parts.push(namespace_selector(&spec.namespace_selector));
    }
    service_account_part(&spec.service_account_selector, &mut parts);
    let common = Common {
        tier: &spec.tier,
        order: spec.order,
        types: &spec.types,
        ingress: &spec.ingress,
        egress: &spec.egress,
    };
    let id = PolicyId::Global {
        name: name.to_string(),
    };
    let mut policy = compile_common(id, common, and_all(parts), Scope::Global, sets);
    policy.class = if spec.do_not_track {
        PolicyClass::Untracked
    } else if spec.pre_dnat {
        PolicyClass::PreDnat
    } else {
        PolicyClass::Normal
    };
    policy.apply_on_forward = spec.apply_on_forward;
    policy
}

/// Compiles a profile's rules (profiles are global in scope).
pub fn compile_profile(
    name: &str,
    spec: &ProfileSpec,
    sets: &mut Vec<IpSetSpec>,
) -> CompiledProfile {
    CompiledProfile {
        name: name.to_string(),
        ingress: spec
            .ingress
            .iter()
            .map(|r| compile_rule(r, Scope::Global, sets))
            .collect(),
        egress: spec
            .egress
            .iter()
            .map(|r| compile_rule(r, Scope::Global, sets))
            .collect(),
    }
}

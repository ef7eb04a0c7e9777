//! `Resource::validate`: Calico's validation rules, each error naming the field path.
//!
//! The rules follow Calico's v3 validator and CRD checks (names, selectors and `global()`
//! placement, CIDRs, ports and protocols, ICMP, IP families, preDNAT/doNotTrack/applyOnForward,
//! IP pool sizing, BGP peering). Validation works on a resource with or without defaults
//! applied: unset fields are judged by their default.

mod endpoint;
mod names;
mod network;
mod policy;

use crate::error::{FieldPath, Result};
use crate::kind::Kind;
use crate::meta::ObjectMeta;
use crate::resource::Resource;
use names::{check_annotations, check_dns_label, check_dns_subdomain, check_labels, fail};

pub use endpoint::workload_endpoint_name;
pub(crate) use policy::builtin_tier;

/// How a kind's `metadata.name` is checked.
enum NameRule {
    Subdomain,
    Label,
    /// Checked by the kind's own validator (policies, tiers, singletons).
    KindSpecific,
}

fn name_rule(kind: Kind) -> NameRule {
    match kind {
        Kind::NetworkPolicy
        | Kind::GlobalNetworkPolicy
        | Kind::Tier
        | Kind::IpamConfiguration
        | Kind::ClusterInformation => NameRule::KindSpecific,
        Kind::KubernetesNamespace => NameRule::Label,
        _ => NameRule::Subdomain,
    }
}

fn check_metadata(kind: Kind, meta: &ObjectMeta) -> Result<()> {
    let path = FieldPath::root().field("metadata");
    let name_path = path.field("name");
    if meta.name.is_empty() {
        return fail(&name_path, format!("a {kind} needs a name"));
    }
    match name_rule(kind) {
        NameRule::Subdomain => check_dns_subdomain(&name_path, &meta.name, "name")?,
        NameRule::Label => check_dns_label(&name_path, &meta.name, "name")?,
        NameRule::KindSpecific => {}
    }
    let namespace_path = path.field("namespace");
    if kind.is_namespaced() {
        if !meta.namespace.is_empty() {
            check_dns_label(&namespace_path, &meta.namespace, "namespace")?;
        }
    } else if !meta.namespace.is_empty() {
        return fail(
            &namespace_path,
            format!("a {kind} is cluster-wide and cannot have a namespace"),
        );
    }
    check_labels(&path.field("labels"), &meta.labels)?;
    if matches!(kind, Kind::NetworkSet | Kind::GlobalNetworkSet)
        && meta.labels.contains_key("projectcalico.org/namespace")
    {
        return fail(
            &path.field("labels").key("projectcalico.org/namespace"),
            "projectcalico.org/namespace is reserved and cannot be set",
        );
    }
    check_annotations(&path.field("annotations"), &meta.annotations)
}

impl Resource {
    /// Checks the resource against Calico's rules. The error names the first offending field.
    pub fn validate(&self) -> Result<()> {
        check_metadata(self.kind(), self.metadata())?;
        let spec = FieldPath::root().field("spec");
        let name_path = FieldPath::root().field("metadata").field("name");
        match self {
            Resource::NetworkPolicy(o) => {
                policy::check_network_policy(&spec, &o.spec)?;
                policy::check_order(&spec.field("order"), o.spec.order)?;
                policy::check_policy_name(&name_path, &o.metadata.name, &o.spec.tier, true)
            }
            Resource::GlobalNetworkPolicy(o) => {
                policy::check_global_network_policy(&spec, &o.spec)?;
                policy::check_order(&spec.field("order"), o.spec.order)?;
                policy::check_policy_name(&name_path, &o.metadata.name, &o.spec.tier, false)
            }
            Resource::Tier(o) => policy::check_tier(&name_path, &o.metadata.name, &spec, &o.spec),
            Resource::Profile(o) => policy::check_profile(&spec, &o.spec),
            Resource::NetworkSet(_) | Resource::GlobalNetworkSet(_) => Ok(()),
            Resource::IpPool(o) => network::check_ip_pool(&spec, &o.spec),
            Resource::IpReservation(_) => Ok(()),
            Resource::IpamConfiguration(o) => {
                network::check_ipam_config(&name_path, &o.metadata.name, &spec, &o.spec)
            }
            Resource::BgpConfiguration(o) => {
                network::check_bgp_configuration(&o.metadata.name, &spec, &o.spec)
            }
            Resource::BgpPeer(o) => network::check_bgp_peer(&spec, &o.spec),
            Resource::BgpFilter(o) => network::check_bgp_filter(&spec, &o.spec),
            Resource::Node(o) => endpoint::check_node(&spec, &o.spec),
            Resource::HostEndpoint(o) => endpoint::check_host_endpoint(&spec, &o.spec),
            Resource::WorkloadEndpoint(o) => {
                endpoint::check_workload_endpoint(&spec, &o.spec)?;
                endpoint::check_workload_endpoint_name(&name_path, &o.metadata.name, &o.spec)
            }
            Resource::FelixConfiguration(o) => endpoint::check_felix(&spec, &o.spec),
            Resource::ClusterInformation(o) => {
                if o.metadata.name != "default" {
                    return fail(
                        &name_path,
                        "the ClusterInformation must be named \"default\"",
                    );
                }
                Ok(())
            }
            Resource::KubernetesNetworkPolicy(o) => {
                endpoint::check_k8s_network_policy(&spec, &o.spec)
            }
            Resource::KubernetesNamespace(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;

//! The resource kinds: their names, API groups, storage plurals, scope and CLI aliases.

use std::fmt;

/// API version of every Calico kind.
pub const CALICO_API_VERSION: &str = "projectcalico.org/v3";
/// API version of Kubernetes NetworkPolicy.
pub const K8S_NETWORKING_API_VERSION: &str = "networking.k8s.io/v1";
/// API version of Kubernetes core kinds (Namespace).
pub const K8S_CORE_API_VERSION: &str = "v1";

/// A kind of resource the model understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Namespaced Calico policy.
    NetworkPolicy,
    /// Cluster-wide Calico policy.
    GlobalNetworkPolicy,
    /// Ordered group of policies.
    Tier,
    /// Namespaced set of networks.
    NetworkSet,
    /// Cluster-wide set of networks.
    GlobalNetworkSet,
    /// Address pool.
    IpPool,
    /// Addresses IPAM must not assign.
    IpReservation,
    /// IPAM settings (singleton `default`).
    IpamConfiguration,
    /// BGP settings (`default` and `node.<name>`).
    BgpConfiguration,
    /// BGP peering.
    BgpPeer,
    /// BGP import/export rules referenced by BGPPeers.
    BgpFilter,
    /// A Calico node.
    Node,
    /// A host interface under policy.
    HostEndpoint,
    /// A workload interface under policy.
    WorkloadEndpoint,
    /// Rules and labels shared by endpoints.
    Profile,
    /// Dataplane agent settings.
    FelixConfiguration,
    /// Cluster-wide facts (singleton `default`).
    ClusterInformation,
    /// `networking.k8s.io/v1` NetworkPolicy (input only).
    KubernetesNetworkPolicy,
    /// `v1` Namespace (input only: its labels feed namespace selectors).
    KubernetesNamespace,
}

impl Kind {
    /// Every kind, in documentation order.
    pub const ALL: [Kind; 19] = [
        Kind::NetworkPolicy,
        Kind::GlobalNetworkPolicy,
        Kind::Tier,
        Kind::NetworkSet,
        Kind::GlobalNetworkSet,
        Kind::IpPool,
        Kind::IpReservation,
        Kind::IpamConfiguration,
        Kind::BgpConfiguration,
        Kind::BgpPeer,
        Kind::BgpFilter,
        Kind::Node,
        Kind::HostEndpoint,
        Kind::WorkloadEndpoint,
        Kind::Profile,
        Kind::FelixConfiguration,
        Kind::ClusterInformation,
        Kind::KubernetesNetworkPolicy,
        Kind::KubernetesNamespace,
    ];

    /// The `kind:` value in manifests (`IPPool`, `BGPPeer`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::NetworkPolicy | Kind::KubernetesNetworkPolicy => "NetworkPolicy",
            Kind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
            Kind::Tier => "Tier",
            Kind::NetworkSet => "NetworkSet",
            Kind::GlobalNetworkSet => "GlobalNetworkSet",
            Kind::IpPool => "IPPool",
            Kind::IpReservation => "IPReservation",
            Kind::IpamConfiguration => "IPAMConfiguration",
            Kind::BgpConfiguration => "BGPConfiguration",
            Kind::BgpPeer => "BGPPeer",
            Kind::BgpFilter => "BGPFilter",
            Kind::Node => "Node",
            Kind::HostEndpoint => "HostEndpoint",
            Kind::WorkloadEndpoint => "WorkloadEndpoint",
            Kind::Profile => "Profile",
            Kind::FelixConfiguration => "FelixConfiguration",
            Kind::ClusterInformation => "ClusterInformation",
            Kind::KubernetesNamespace => "Namespace",
        }
    }

    /// The `apiVersion:` value in manifests.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::KubernetesNetworkPolicy => K8S_NETWORKING_API_VERSION,
            Kind::KubernetesNamespace => K8S_CORE_API_VERSION,
            _ => CALICO_API_VERSION,
        }
    }

    /// The lower-case plural used as the path segment in Calico's etcd key layout,
    /// `/calico/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>`. The two
    /// Kubernetes input kinds have no Calico etcd keys; their plurals are the Kubernetes
    /// resource names.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::NetworkPolicy => "networkpolicies",
            Kind::GlobalNetworkPolicy => "globalnetworkpolicies",
            Kind::Tier => "tiers",
            Kind::NetworkSet => "networksets",
            Kind::GlobalNetworkSet => "globalnetworksets",
            Kind::IpPool => "ippools",
            Kind::IpReservation => "ipreservations",
            Kind::IpamConfiguration => "ipamconfigurations",
            Kind::BgpConfiguration => "bgpconfigurations",
            Kind::BgpPeer => "bgppeers",
            Kind::BgpFilter => "bgpfilters",
            Kind::Node => "nodes",
            Kind::HostEndpoint => "hostendpoints",
            Kind::WorkloadEndpoint => "workloadendpoints",
            Kind::Profile => "profiles",
            Kind::FelixConfiguration => "felixconfigurations",
            Kind::ClusterInformation => "clusterinformations",
            Kind::KubernetesNetworkPolicy => "kubernetesnetworkpolicies",
            Kind::KubernetesNamespace => "namespaces",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        matches!(
            self,
            Kind::NetworkPolicy
                | Kind::NetworkSet
                | Kind::WorkloadEndpoint
                | Kind::KubernetesNetworkPolicy
        )
    }

    /// Names accepted on the command line besides the kind name and plural (calicoctl's
    /// aliases), all lower case; matching is case-insensitive.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Kind::NetworkPolicy => &[
                "networkpolicy",
                "policy",
                "policies",
                "np",
                "nps",
                "pol",
                "pols",
            ],
            Kind::GlobalNetworkPolicy => &["globalnetworkpolicy", "gnp", "gnps"],
            Kind::Tier => &["tier"],
            Kind::NetworkSet => &["networkset", "netset", "netsets"],
            Kind::GlobalNetworkSet => &["globalnetworkset", "gns"],
            Kind::IpPool => &["ippool", "ipp", "ipps", "pool", "pools"],
            Kind::IpReservation => &["ipreservation", "ipres"],
            Kind::IpamConfiguration => &["ipamconfiguration", "ipamconfig", "ipamconfigs"],
            Kind::BgpConfiguration => &["bgpconfiguration", "bgpconfig", "bgpconfigs"],
            Kind::BgpPeer => &["bgppeer", "bgpp", "bgpps", "bp", "bps"],
            Kind::BgpFilter => &["bgpfilter", "bgpf", "bgpfs"],
            Kind::Node => &["node", "no", "nos"],
            Kind::HostEndpoint => &["hostendpoint", "hep", "heps"],
            Kind::WorkloadEndpoint => &["workloadendpoint", "wep", "weps"],
            Kind::Profile => &["profile", "pro", "pros"],
            Kind::FelixConfiguration => &["felixconfiguration", "felixconfig", "felixconfigs"],
            Kind::ClusterInformation => &["clusterinformation", "clusterinfo", "clusterinfos"],
            Kind::KubernetesNetworkPolicy => &[
                "kubernetesnetworkpolicy",
                "k8snetworkpolicy",
                "k8snetworkpolicies",
                "knp",
            ],
            Kind::KubernetesNamespace => &["namespace", "ns"],
        }
    }

    /// Resolves what a user typed (kind name, plural or alias, any case) to a kind.
    ///
    /// `networkpolicy` means Calico's NetworkPolicy, as in calicoctl.
    pub fn from_user_str(text: &str) -> Option<Kind> {
        let lower = text.trim().to_ascii_lowercase();
        Kind::ALL
            .into_iter()
            .find(|kind| kind.plural() == lower || kind.aliases().contains(&lower.as_str()))
    }

    /// The kind for a manifest's `apiVersion` and `kind`.
    pub fn from_api(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.api_version() == api_version && k.name() == kind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::KubernetesNetworkPolicy => f.write_str("NetworkPolicy (networking.k8s.io/v1)"),
            other => f.write_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calicoctl_aliases_resolve_case_insensitively() {
        for (text, kind) in [
            ("policy", Kind::NetworkPolicy),
            ("NetworkPolicies", Kind::NetworkPolicy),
            ("gnp", Kind::GlobalNetworkPolicy),
            ("globalnetworkpolicies", Kind::GlobalNetworkPolicy),
            ("ippool", Kind::IpPool),
            ("pools", Kind::IpPool),
            ("IPPools", Kind::IpPool),
            ("wep", Kind::WorkloadEndpoint),
            ("hep", Kind::HostEndpoint),
            ("bgppeer", Kind::BgpPeer),
            ("bgpfilters", Kind::BgpFilter),
            ("bgpconfig", Kind::BgpConfiguration),
            ("nodes", Kind::Node),
            ("felixconfiguration", Kind::FelixConfiguration),
            ("ipamconfig", Kind::IpamConfiguration),
            ("tiers", Kind::Tier),
            ("knp", Kind::KubernetesNetworkPolicy),
            ("ns", Kind::KubernetesNamespace),
        ] {
            assert_eq!(Kind::from_user_str(text), Some(kind), "{text}");
        }
        assert_eq!(Kind::from_user_str("ippol"), None);
    }

    #[test]
    fn every_kind_resolves_by_its_name_plural_and_api_pair() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_user_str(kind.plural()), Some(kind));
            assert_eq!(Kind::from_api(kind.api_version(), kind.name()), Some(kind));
            assert_eq!(Kind::from_user_str(kind.aliases()[0]), Some(kind));
        }
        assert_eq!(
            Kind::from_user_str("NetworkPolicy"),
            Some(Kind::NetworkPolicy)
        );
        assert_eq!(
            Kind::from_api("networking.k8s.io/v1", "NetworkPolicy"),
            Some(Kind::KubernetesNetworkPolicy)
        );
    }

    #[test]
    fn no_alias_is_shared_between_kinds() {
        let mut seen = std::collections::HashSet::new();
        for kind in Kind::ALL {
            assert!(seen.insert(kind.plural()), "{}", kind.plural());
            for alias in kind.aliases() {
                assert!(seen.insert(alias), "{alias}");
            }
        }
    }

    #[test]
    fn scope_matches_calico() {
        assert!(Kind::NetworkPolicy.is_namespaced());
        assert!(Kind::WorkloadEndpoint.is_namespaced());
        assert!(Kind::NetworkSet.is_namespaced());
        assert!(!Kind::GlobalNetworkPolicy.is_namespaced());
        assert!(!Kind::IpPool.is_namespaced());
        assert!(!Kind::HostEndpoint.is_namespaced());
    }
}

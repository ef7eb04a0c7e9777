//! BGP resources: BGPConfiguration and BGPPeer.

use super::policy::is_false;
use super::primitives::{AsNumber, Cidr};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Log level of the BGP daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogSeverity {
    /// Debug.
    Debug,
    /// Info (the default).
    Info,
    /// Warning.
    Warning,
    /// Error.
    Error,
    /// Fatal.
    Fatal,
}

/// One CIDR to advertise (`serviceClusterIPs`, `serviceExternalIPs`, `serviceLoadBalancerIPs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CidrBlock {
    /// The network.
    pub cidr: Cidr,
}

/// A named BGP community value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Community {
    /// Name used by `prefixAdvertisements`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `aa:nn` (standard, 16-bit parts) or `aa:nn:mm` (large, 32-bit parts).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// Communities to attach to one prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixAdvertisement {
    /// The prefix.
    pub cidr: Cidr,
    /// Community names (from `communities`) or literal values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
}

/// A reference to a key of a Kubernetes Secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeySelector {
    /// Secret name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Key within the secret.
    pub key: String,
    /// Whether a missing secret is acceptable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// A BGP session password.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpPassword {
    /// Where the password is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

/// Which addresses the BGP daemon listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BindMode {
    /// All addresses.
    None,
    /// Only the node's IP.
    #[serde(rename = "NodeIP")]
    NodeIp,
}

/// Whether LoadBalancer addresses are advertised as their CIDR or one route per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Aggregation {
    /// Advertise the configured CIDRs.
    Enabled,
    /// Advertise each service address.
    Disabled,
}

/// Spec of `BGPConfiguration` (`default` is global; `node.<name>` overrides per node).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpConfigurationSpec {
    /// Log level; `Info` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_severity_screen: Option<LogSeverity>,
    /// Full iBGP mesh between nodes; true when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    /// Cluster-wide default AS; 64512 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// LoadBalancer address ranges to advertise.
    #[serde(
        rename = "serviceLoadBalancerIPs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_load_balancer_ips: Vec<CidrBlock>,
    /// External IP ranges to advertise.
    #[serde(
        rename = "serviceExternalIPs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_external_ips: Vec<CidrBlock>,
    /// Cluster IP ranges to advertise.
    #[serde(
        rename = "serviceClusterIPs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_cluster_ips: Vec<CidrBlock>,
    /// Named community values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<Community>,
    /// Per-prefix communities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    /// BGP listen port; 179 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    /// Password for mesh sessions (only on `default`, needs the mesh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_password: Option<BgpPassword>,
    /// Graceful-restart time for mesh sessions, a duration such as `120s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_max_restart_time: Option<String>,
    /// Listen address mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_mode: Option<BindMode>,
    /// Interfaces whose routes are not imported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_interfaces: Vec<String>,
    /// Address nodes use to peer with local workloads over IPv4.
    #[serde(
        rename = "localWorkloadPeeringIPV4",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub local_workload_peering_ipv4: Option<IpAddr>,
    /// Address nodes use to peer with local workloads over IPv6.
    #[serde(
        rename = "localWorkloadPeeringIPV6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub local_workload_peering_ipv6: Option<IpAddr>,
    /// LoadBalancer aggregation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_load_balancer_aggregation: Option<Aggregation>,
}

/// Next-hop handling for a peering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NextHopMode {
    /// eBGP: self; iBGP: keep (the default).
    Auto,
    /// Always "next hop self".
    #[serde(rename = "Self")]
    SelfMode,
    /// Always keep the original next hop.
    Keep,
}

/// Source address of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceAddress {
    /// The node's IP (the default).
    UseNodeIP,
    /// Let the kernel choose.
    None,
}

/// Whether the reverse session of a `peerSelector` peering is created automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReversePeering {
    /// Created automatically (the default).
    Auto,
    /// Must be configured by hand.
    Manual,
}

/// Spec of a `BGPPeer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpPeerSpec {
    /// Only this node peers (exclusive with `nodeSelector`); empty means every node.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Nodes that peer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    /// Peer address: `IP`, `IPv4:port` or `[IPv6]:port`.
    #[serde(rename = "peerIP", default, skip_serializing_if = "String::is_empty")]
    pub peer_ip: String,
    /// Remote AS (must be empty with `peerSelector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// Peer with the Calico nodes matching this selector.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer_selector: String,
    /// Deprecated: keep the original next hop.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_original_next_hop: bool,
    /// Next-hop mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_mode: Option<NextHopMode>,
    /// Session password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<BgpPassword>,
    /// Source address mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<SourceAddress>,
    /// Graceful-restart time, a duration such as `120s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_time: Option<String>,
    /// Keepalive time, a duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<String>,
    /// How often our own AS may appear in received paths (Calico spells it
    /// `numAllowedLocalASNumbers`).
    #[serde(
        rename = "numAllowedLocalASNumbers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub num_allowed_local_as_numbers: Option<u32>,
    /// GTSM hop count (RFC 5082).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_security: Option<u8>,
    /// Gateway for a static route to the peer (needs `peerIP`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reachable_by: String,
    /// BGPFilter names, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// Local AS override for this peering.
    #[serde(
        rename = "localASNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub local_as_number: Option<AsNumber>,
    /// Peer with local workloads matching this selector (needs `asNumber`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local_workload_selector: String,
    /// Reverse-peering mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_peering: Option<ReversePeering>,
}

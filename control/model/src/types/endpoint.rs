//! Nodes and endpoints: Node, HostEndpoint, WorkloadEndpoint.

use super::primitives::{AsNumber, Cidr, Protocol};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// BGP settings of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeBgpSpec {
    /// Per-node AS (the cluster default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// IPv4 address with its prefix length, e.g. `10.0.0.5/24`.
    #[serde(
        rename = "ipv4Address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_address: Option<Cidr>,
    /// IPv6 address with its prefix length.
    #[serde(
        rename = "ipv6Address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_address: Option<Cidr>,
    /// Address of the IP-in-IP tunnel device.
    #[serde(
        rename = "ipv4IPIPTunnelAddr",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_ipip_tunnel_addr: Option<IpAddr>,
    /// Route-reflector cluster ID (IPv4 syntax); set means the node is a reflector.
    #[serde(
        rename = "routeReflectorClusterID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub route_reflector_cluster_id: String,
}

/// The node's identity in an orchestrator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrchRef {
    /// Node name in the orchestrator.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    /// Orchestrator name, e.g. `k8s`.
    pub orchestrator: String,
}

/// WireGuard addresses of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeWireguardSpec {
    /// IPv4 address of the WireGuard device.
    #[serde(
        rename = "interfaceIPv4Address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_ipv4_address: Option<IpAddr>,
    /// IPv6 address of the WireGuard device.
    #[serde(
        rename = "interfaceIPv6Address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_ipv6_address: Option<IpAddr>,
}

/// Kind of a node address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeAddressType {
    /// The address Calico uses for the node.
    CalicoNodeIP,
    /// An internal address.
    InternalIP,
    /// An external address.
    ExternalIP,
}

/// One address of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddress {
    /// Address, with or without a prefix length.
    pub address: Cidr,
    /// Kind of address.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub address_type: Option<NodeAddressType>,
}

/// Spec of a `Node`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeSpec {
    /// BGP settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBgpSpec>,
    /// VXLAN tunnel address (IPv4).
    #[serde(
        rename = "ipv4VXLANTunnelAddr",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_vxlan_tunnel_addr: Option<IpAddr>,
    /// VXLAN device MAC (IPv4).
    #[serde(
        rename = "vxlanTunnelMACAddr",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub vxlan_tunnel_mac_addr: String,
    /// VXLAN tunnel address (IPv6).
    #[serde(
        rename = "ipv6VXLANTunnelAddr",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_vxlan_tunnel_addr: Option<IpAddr>,
    /// VXLAN device MAC (IPv6).
    #[serde(
        rename = "vxlanTunnelMACAddrV6",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub vxlan_tunnel_mac_addr_v6: String,
    /// Orchestrator references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orch_refs: Vec<OrchRef>,
    /// WireGuard settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<NodeWireguardSpec>,
    /// Addresses of the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
}

/// A named port of an endpoint (`HostEndpoint.spec.ports`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointPort {
    /// Port name, referenced by rules.
    pub name: String,
    /// TCP, UDP or SCTP.
    pub protocol: Protocol,
    /// Port number.
    pub port: u16,
}

/// Spec of a `HostEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostEndpointSpec {
    /// Owning node (required).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Interface name, or `*` for all of the host's traffic.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    /// The interface's addresses.
    #[serde(rename = "expectedIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub expected_ips: Vec<IpAddr>,
    /// Profiles applied after policy, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Named ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EndpointPort>,
}

/// A 1:1 NAT ("floating IP") of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpNat {
    /// The workload's own address.
    #[serde(rename = "internalIP")]
    pub internal_ip: IpAddr,
    /// The address it is reachable at.
    #[serde(rename = "externalIP")]
    pub external_ip: IpAddr,
}

/// A port of a workload, possibly exposed on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadEndpointPort {
    /// Port name (required unless `hostPort` is set).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// TCP, UDP or SCTP.
    pub protocol: Protocol,
    /// Port number in the workload.
    pub port: u16,
    /// Port on the host mapped to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    /// Host address the host port binds.
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
}

/// Spec of a `WorkloadEndpoint` (normally written by the CNI plugin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadEndpointSpec {
    /// Orchestrator, e.g. `k8s`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orchestrator: String,
    /// Workload name (non-Kubernetes orchestrators).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workload: String,
    /// Node the workload runs on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Container ID.
    #[serde(
        rename = "containerID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    /// Pod name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// Interface name inside the workload, e.g. `eth0`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// Service account of the pod.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    /// Addresses (/32 and /128 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_networks: Vec<Cidr>,
    /// 1:1 NATs; internal addresses must be in `ipNetworks`.
    #[serde(rename = "ipNATs", default, skip_serializing_if = "Vec::is_empty")]
    pub ip_nats: Vec<IpNat>,
    /// IPv4 gateway.
    #[serde(
        rename = "ipv4Gateway",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_gateway: Option<IpAddr>,
    /// IPv6 gateway.
    #[serde(
        rename = "ipv6Gateway",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_gateway: Option<IpAddr>,
    /// Profiles, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Host-side interface name, e.g. `cali0123456789a`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    /// Workload MAC address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<WorkloadEndpointPort>,
    /// Source prefixes the workload may spoof.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_spoofed_source_prefixes: Vec<Cidr>,
    /// QoS controls (bandwidth, packet rate, connections, DSCP): carried, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_controls: Option<serde_json::Value>,
}

//! The tables control writes: endpoints, IP sets, routes, NAT, nodes and settings.

use std::net::IpAddr;

use crate::ids::{EndpointId, IpSetId, MacAddr, NodeId, Prefix, ProgramId, SubnetAddr};

/// Whether an endpoint is a workload interface or a host endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    /// A workload (pod/VM) interface: the fastpath answers ARP/ND for it and enforces
    /// anti-spoofing on its traffic.
    Workload,
    /// A host endpoint (an interface of the node itself).
    Host,
}

/// One endpoint and the programs that police it.
///
/// Directions are seen from the endpoint: `ingress` polices traffic *to* it, `egress` traffic
/// *from* it. Profiles are compiled into the tail of each program.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Its id (route targets refer to it).
    pub id: EndpointId,
    /// Interface index the fastpath receives and transmits its frames on.
    pub if_index: u32,
    /// Workload or host.
    pub kind: EndpointKind,
    /// The MAC of the workload side (destination MAC of frames sent to it).
    pub mac: MacAddr,
    /// Addresses the endpoint owns; a workload may only send from these (anti-spoofing).
    pub addrs: Vec<Prefix>,
    /// Program for traffic to the endpoint; `None` means no policy (allow).
    pub ingress: Option<ProgramId>,
    /// Program for traffic from the endpoint; `None` means no policy (allow).
    pub egress: Option<ProgramId>,
    /// doNotTrack program for traffic to the endpoint: run before conntrack on every packet;
    /// `Allow` bypasses conntrack and the normal policy, `Deny` drops.
    pub untracked_ingress: Option<ProgramId>,
    /// doNotTrack program for traffic from the endpoint.
    pub untracked_egress: Option<ProgramId>,
    /// preDNAT program: run on new flows arriving from the endpoint before DNAT; `Deny`
    /// drops, anything else continues.
    pub pre_dnat: Option<ProgramId>,
    /// Host endpoints: the `applyOnForward` program for forwarded traffic that arrives
    /// through this endpoint (to a local workload or out of another host endpoint). `None`
    /// means no `applyOnForward` policy applies in this direction, and Calico then allows
    /// forwarded traffic (the normal programs police only traffic to and from the host
    /// itself).
    pub forward_ingress: Option<ProgramId>,
    /// Host endpoints: the `applyOnForward` program for forwarded traffic that leaves
    /// through this endpoint (from a local workload or from another host endpoint). `None`
    /// allows, as for [`Endpoint::forward_ingress`].
    pub forward_egress: Option<ProgramId>,
}

/// An IP set: compiled selector membership.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IpSet {
    /// Its id.
    pub id: IpSetId,
    /// Member networks (usually host prefixes).
    pub members: Vec<Prefix>,
}

/// IP-in-IP encapsulation mode (Calico IPPool `ipipMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpipMode {
    /// Never encapsulate.
    Never,
    /// Always encapsulate traffic to other nodes' blocks.
    Always,
    /// Encapsulate only when the node is outside this node's subnet.
    CrossSubnet,
}

/// Where a route sends traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// A local workload endpoint.
    Local(EndpointId),
    /// A block on another node; `encap` overrides the node-wide IP-in-IP mode when set.
    Node {
        /// The node that owns the block.
        node: NodeId,
        /// Per-pool override of [`Settings::ipip_mode`].
        encap: Option<IpipMode>,
    },
    /// Out of the uplink to the default gateway, unencapsulated.
    Uplink,
    /// The node itself (delivered to the host interface).
    Host,
    /// Dropped.
    Blackhole,
}

/// One route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// Destination prefix.
    pub prefix: Prefix,
    /// Target.
    pub target: RouteTarget,
}

/// A 1:1 DNAT mapping (a floating IP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnatEntry {
    /// The address clients use.
    pub external: IpAddr,
    /// The workload address it maps to.
    pub internal: IpAddr,
}

/// NAT configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Nat {
    /// Floating IPs.
    pub dnat: Vec<DnatEntry>,
    /// Pools with `natOutgoing`: traffic from them to outside every pool is masqueraded.
    pub snat_pools: Vec<Prefix>,
    /// Every pool (destinations inside one are never masqueraded).
    pub all_pools: Vec<Prefix>,
    /// IPv4 address masqueraded traffic takes (the node address).
    pub snat_v4: Option<IpAddr>,
    /// IPv6 address masqueraded traffic takes.
    pub snat_v6: Option<IpAddr>,
    /// First source port for masqueraded flows.
    pub port_lo: u16,
    /// Last source port (inclusive).
    pub port_hi: u16,
}

/// A remote node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// Its id.
    pub id: NodeId,
    /// Its IPv4 address (tunnel endpoint and native next hop).
    pub addr: IpAddr,
    /// The MAC to send to for this node on the uplink (resolved by control).
    pub mac: MacAddr,
    /// Outer source addresses accepted for IP-in-IP from this node (usually `addr`; only
    /// these, so an entry for a router that is a BGP next hop lists none).
    pub tunnel_allowed: Vec<IpAddr>,
}

/// What happens to traffic from a workload to the host itself (Felix
/// `DefaultEndpointToHostAction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostAction {
    /// Drop it.
    Drop,
    /// Accept it.
    Accept,
    /// Hand it to the host's own rules (delivered to the host interface like Accept).
    Return,
}

/// Node-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Settings {
    /// IP MTU of the uplink (bytes of IP packet, not counting Ethernet).
    pub mtu: u16,
    /// Workload-to-host action.
    pub default_endpoint_to_host: HostAction,
    /// Node-wide IP-in-IP mode.
    pub ipip_mode: IpipMode,
    /// This node's IPv4 address with its subnet length (CrossSubnet, tunnel source, SNAT).
    pub node_v4: Option<SubnetAddr>,
    /// This node's IPv6 address with its subnet length.
    pub node_v6: Option<SubnetAddr>,
    /// Interface index of the uplink.
    pub uplink_if: u32,
    /// MAC of the uplink.
    pub uplink_mac: MacAddr,
    /// MAC of the default gateway on the uplink.
    pub gateway_mac: MacAddr,
    /// Interface index frames for the host itself are sent to.
    pub host_if: u32,
    /// Conntrack idle timeout of established TCP flows, seconds.
    pub tcp_established_timeout_s: u32,
    /// Conntrack timeout of TCP flows in handshake or teardown, seconds.
    pub tcp_transitory_timeout_s: u32,
    /// Conntrack idle timeout of UDP (and SCTP) flows, seconds.
    pub udp_timeout_s: u32,
    /// Conntrack idle timeout of ICMP flows, seconds.
    pub icmp_timeout_s: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mtu: 1500,
            default_endpoint_to_host: HostAction::Drop,
            ipip_mode: IpipMode::Never,
            node_v4: None,
            node_v6: None,
            uplink_if: 0,
            uplink_mac: [0; 6],
            gateway_mac: [0; 6],
            host_if: 0,
            tcp_established_timeout_s: 3600,
            tcp_transitory_timeout_s: 120,
            udp_timeout_s: 60,
            icmp_timeout_s: 30,
        }
    }
}

//! Address management resources: IPPool, IPReservation, IPAMConfiguration.

use super::policy::is_false;
use super::primitives::Cidr;
use serde::{Deserialize, Serialize};

/// Encapsulation mode of a pool (`ipipMode`, `vxlanMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EncapMode {
    /// Always encapsulate traffic to this pool.
    Always,
    /// Encapsulate only when the destination node is in another subnet.
    CrossSubnet,
    /// Never encapsulate (the default).
    Never,
}

impl EncapMode {
    /// Whether the mode encapsulates anything.
    pub fn is_enabled(self) -> bool {
        self != EncapMode::Never
    }
}

/// What a pool's addresses may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AllowedUse {
    /// Pod / workload addresses.
    Workload,
    /// Tunnel device addresses (IPIP, VXLAN, WireGuard).
    Tunnel,
    /// Service LoadBalancer addresses.
    LoadBalancer,
}

/// Whether IPAM may pick a pool on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AssignmentMode {
    /// Used for automatic assignment (the default).
    Automatic,
    /// Used only when a workload asks for the pool explicitly.
    Manual,
}

/// Spec of an `IPPool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpPoolSpec {
    /// The pool's network (strictly masked; immutable).
    pub cidr: Cidr,
    /// VXLAN mode; `Never` when unset.
    #[serde(rename = "vxlanMode", default, skip_serializing_if = "Option::is_none")]
    pub vxlan_mode: Option<EncapMode>,
    /// IP-in-IP mode (IPv4 only); `Never` when unset.
    #[serde(rename = "ipipMode", default, skip_serializing_if = "Option::is_none")]
    pub ipip_mode: Option<EncapMode>,
    /// Masquerade traffic leaving all pools.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nat_outgoing: bool,
    /// IPAM assigns nothing new from a disabled pool.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// Do not advertise the pool over BGP.
    #[serde(rename = "disableBGPExport", default, skip_serializing_if = "is_false")]
    pub disable_bgp_export: bool,
    /// Prefix length of the per-node blocks (v4 20-32, v6 116-128; immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u8>,
    /// Nodes that may allocate from the pool; `all()` when unset.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    /// Namespaces whose workloads may use the pool (ANDed with `nodeSelector`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    /// Uses; `[Workload, Tunnel]` when unset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_uses: Vec<AllowedUse>,
    /// Assignment mode; `Automatic` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_mode: Option<AssignmentMode>,
}

impl IpPoolSpec {
    /// A pool over `cidr` with every other field unset.
    pub fn new(cidr: Cidr) -> Self {
        IpPoolSpec {
            cidr,
            vxlan_mode: None,
            ipip_mode: None,
            nat_outgoing: false,
            disabled: false,
            disable_bgp_export: false,
            block_size: None,
            node_selector: String::new(),
            namespace_selector: String::new(),
            allowed_uses: Vec::new(),
            assignment_mode: None,
        }
    }

    /// The block size, or Calico's default for the pool's family (26 for IPv4, 122 for IPv6).
    pub fn effective_block_size(&self) -> u8 {
        self.block_size.unwrap_or(match self.cidr.version() {
            super::primitives::IpVersion::V4 => 26,
            super::primitives::IpVersion::V6 => 122,
        })
    }
}

/// Spec of an `IPReservation`: addresses IPAM must never hand out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpReservationSpec {
    /// Reserved networks (or single addresses).
    #[serde(
        rename = "reservedCIDRs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reserved_cidrs: Vec<Cidr>,
}

/// Whether KubeVirt VMs keep their address across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VmAddressPersistence {
    /// Keep it (the default).
    Enabled,
    /// Release it.
    Disabled,
}

/// Spec of the singleton `IPAMConfiguration` named `default`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpamConfigurationSpec {
    /// Forbid borrowing addresses from other nodes' blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_affinity: Option<bool>,
    /// Allow claiming new blocks (true when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_allocate_blocks: Option<bool>,
    /// Cap on affine blocks per node; 0 or unset means the built-in cap of 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_blocks_per_host: Option<u32>,
    /// Minimum age of a released address before reuse, 0-1200 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_cooldown_seconds: Option<u32>,
    /// KubeVirt VM address persistence.
    #[serde(
        rename = "kubeVirtVMAddressPersistence",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_virt_vm_address_persistence: Option<VmAddressPersistence>,
}

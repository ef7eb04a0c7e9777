//! FelixConfiguration and ClusterInformation.
//!
//! Felix has well over a hundred knobs, most of them about dataplanes Tortie does not have
//! (iptables, eBPF, Windows). The knobs Tortie can honour are typed fields; every other knob that
//! Calico defines is carried as an opaque JSON value in [`FelixConfigurationSpec::other`] so a
//! Calico configuration reads and writes back unchanged. A name that Calico does not define is
//! still an error (see [`KNOWN_OPAQUE_KNOBS`]): a typo must not pass silently.

use super::primitives::{Port, Protocol};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Action for traffic from a workload to its own host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EndpointToHostAction {
    /// Drop (Calico's built-in default).
    Drop,
    /// Accept.
    Accept,
    /// Continue with the host's own rules.
    Return,
}

/// A failsafe port: always open on host endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtoPort {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: Protocol,
    /// Port number.
    pub port: u16,
    /// Optional peer network.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub net: String,
}

/// Spec of a `FelixConfiguration` (`default`, `node.<name>`, or selector-scoped).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FelixConfigurationSpec {
    /// Enable IPv6 handling (true when unset).
    #[serde(
        rename = "ipv6Support",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_support: Option<bool>,
    /// Comma-separated prefixes of workload interface names (`cali` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_prefix: Option<String>,
    /// Comma-separated interfaces (or `/regex/`) never treated as host endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_exclude: Option<String>,
    /// Workload-to-host action (`Drop` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_endpoint_to_host_action: Option<EndpointToHostAction>,
    /// Ports always open inbound on host endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failsafe_inbound_host_ports: Option<Vec<ProtoPort>>,
    /// Ports always open outbound on host endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failsafe_outbound_host_ports: Option<Vec<ProtoPort>>,
    /// Prefix of Log-action records (`calico-packet` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_prefix: Option<String>,
    /// Log level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_severity_screen: Option<String>,
    /// Force IP-in-IP on or off (derived from pools when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip_enabled: Option<bool>,
    /// IP-in-IP device MTU (0 = auto).
    #[serde(rename = "ipipMTU", default, skip_serializing_if = "Option::is_none")]
    pub ipip_mtu: Option<u32>,
    /// Force VXLAN on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_enabled: Option<bool>,
    /// VXLAN MTU (IPv4).
    #[serde(rename = "vxlanMTU", default, skip_serializing_if = "Option::is_none")]
    pub vxlan_mtu: Option<u32>,
    /// VXLAN MTU (IPv6).
    #[serde(
        rename = "vxlanMTUV6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_mtu_v6: Option<u32>,
    /// VXLAN UDP port (4789 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_port: Option<u16>,
    /// VXLAN VNI (4096 when unset).
    #[serde(rename = "vxlanVNI", default, skip_serializing_if = "Option::is_none")]
    pub vxlan_vni: Option<u32>,
    /// Accept IP-in-IP packets sent by workloads.
    #[serde(
        rename = "allowIPIPPacketsFromWorkloads",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_ipip_packets_from_workloads: Option<bool>,
    /// Accept VXLAN packets sent by workloads.
    #[serde(
        rename = "allowVXLANPacketsFromWorkloads",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_vxlan_packets_from_workloads: Option<bool>,
    /// Source-port range for SNAT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_port_range: Option<Port>,
    /// Source address for SNAT (IPv4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_outgoing_address: Option<IpAddr>,
    /// Maximum members of one IP set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ipset_size: Option<u32>,
    /// Serve health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_enabled: Option<bool>,
    /// Health listen host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_host: Option<String>,
    /// Health listen port (9099 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_port: Option<u16>,
    /// Serve Prometheus metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_enabled: Option<bool>,
    /// Metrics port (9091 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_port: Option<u16>,
    /// Kubernetes NodePort ranges (at most 7, numeric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_node_port_ranges: Option<Vec<Port>>,
    /// Where endpoint status files are written for the CNI plugin to wait on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_status_path_prefix: Option<String>,
    /// Every other knob Calico defines, carried unchanged (names checked by validation).
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Deserializes the typed knobs by name (so a bad value is reported at its own field and line)
/// and collects every other key into `other`. serde's `flatten` cannot do the first part: it
/// buffers the whole mapping and reports errors against the mapping.
macro_rules! felix_spec_deserialize {
    ($($field:ident => $name:literal),* $(,)?) => {
        impl<'de> Deserialize<'de> for FelixConfigurationSpec {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct SpecVisitor;
                impl<'de> serde::de::Visitor<'de> for SpecVisitor {
                    type Value = FelixConfigurationSpec;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a FelixConfiguration spec")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<FelixConfigurationSpec, A::Error> {
                        let mut spec = FelixConfigurationSpec::default();
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $($name => spec.$field = map.next_value()?,)*
                                _ => {
                                    let value = map.next_value()?;
                                    spec.other.insert(key, value);
                                }
                            }
                        }
                        Ok(spec)
                    }
                }
                d.deserialize_map(SpecVisitor)
            }
        }
    };
}

felix_spec_deserialize! {
    ipv6_support => "ipv6Support",
    interface_prefix => "interfacePrefix",
    interface_exclude => "interfaceExclude",
    default_endpoint_to_host_action => "defaultEndpointToHostAction",
    failsafe_inbound_host_ports => "failsafeInboundHostPorts",
    failsafe_outbound_host_ports => "failsafeOutboundHostPorts",
    log_prefix => "logPrefix",
    log_severity_screen => "logSeverityScreen",
    ipip_enabled => "ipipEnabled",
    ipip_mtu => "ipipMTU",
    vxlan_enabled => "vxlanEnabled",
    vxlan_mtu => "vxlanMTU",
    vxlan_mtu_v6 => "vxlanMTUV6",
    vxlan_port => "vxlanPort",
    vxlan_vni => "vxlanVNI",
    allow_ipip_packets_from_workloads => "allowIPIPPacketsFromWorkloads",
    allow_vxlan_packets_from_workloads => "allowVXLANPacketsFromWorkloads",
    nat_port_range => "natPortRange",
    nat_outgoing_address => "natOutgoingAddress",
    max_ipset_size => "maxIpsetSize",
    health_enabled => "healthEnabled",
    health_host => "healthHost",
    health_port => "healthPort",
    prometheus_metrics_enabled => "prometheusMetricsEnabled",
    prometheus_metrics_port => "prometheusMetricsPort",
    kube_node_port_ranges => "kubeNodePortRanges",
    endpoint_status_path_prefix => "endpointStatusPathPrefix",
}

/// Felix knobs that Calico defines and Tortie carries without interpreting.
pub const KNOWN_OPAQUE_KNOBS: &[&str] = &[
    "awsSrcDstCheck",
    "bpfCTLBLogFilter",
    "bpfConnectTimeLoadBalancing",
    "bpfConnectTimeLoadBalancingEnabled",
    "bpfDSROptoutCIDRs",
    "bpfDataIfacePattern",
    "bpfDisableGROForIfaces",
    "bpfDisableUnprivileged",
    "bpfEnabled",
    "bpfEnforceRPF",
    "bpfExcludeCIDRsFromNAT",
    "bpfExtToServiceConnmark",
    "bpfExternalServiceMode",
    "bpfForceTrackPacketsFromIfaces",
    "bpfHostConntrackBypass",
    "bpfHostNetworkedNATWithoutCTLB",
    "bpfKubeProxyEndpointSlicesEnabled",
    "bpfKubeProxyIptablesCleanupEnabled",
    "bpfKubeProxyMinSyncPeriod",
    "bpfL3IfacePattern",
    "bpfLogFilters",
    "bpfLogLevel",
    "bpfMapSizeConntrack",
    "bpfMapSizeIPSets",
    "bpfMapSizeIfState",
    "bpfMapSizeNATAffinity",
    "bpfMapSizeNATBackend",
    "bpfMapSizeNATFrontend",
    "bpfMapSizeRoute",
    "bpfPSNATPorts",
    "bpfPolicyDebugEnabled",
    "bpfRedirectToPeer",
    "chainInsertMode",
    "dataplaneDriver",
    "dataplaneWatchdogTimeout",
    "debugDisableLogDropping",
    "debugHost",
    "debugMemoryProfilePath",
    "debugPort",
    "debugSimulateCalcGraphHangAfter",
    "debugSimulateDataplaneApplyDelay",
    "debugSimulateDataplaneHangAfter",
    "deviceRouteProtocol",
    "deviceRouteSourceAddress",
    "deviceRouteSourceAddressIPv6",
    "disableConntrackInvalidCheck",
    "endpointReportingDelay",
    "endpointReportingEnabled",
    "externalNodesList",
    "featureDetectOverride",
    "featureGates",
    "floatingIPs",
    "genericXDPEnabled",
    "healthTimeoutOverrides",
    "interfaceRefreshInterval",
    "ipsetsRefreshInterval",
    "iptablesBackend",
    "iptablesFilterAllowAction",
    "iptablesFilterDenyAction",
    "iptablesLockFilePath",
    "iptablesLockProbeInterval",
    "iptablesLockTimeout",
    "iptablesMangleAllowAction",
    "iptablesMarkMask",
    "iptablesNATOutgoingInterfaceFilter",
    "iptablesPostWriteCheckInterval",
    "iptablesRefreshInterval",
    "logActionRateLimit",
    "logActionRateLimitBurst",
    "logDebugFilenameRegex",
    "logFilePath",
    "logSeverityFile",
    "logSeveritySys",
    "metadataAddr",
    "metadataPort",
    "mtuIfacePattern",
    "natOutgoingExclusions",
    "netlinkTimeout",
    "nftablesMode",
    "openstackRegion",
    "policySyncPathPrefix",
    "prometheusGoMetricsEnabled",
    "prometheusMetricsHost",
    "prometheusProcessMetricsEnabled",
    "prometheusWireGuardMetricsEnabled",
    "removeExternalRoutes",
    "reportingInterval",
    "reportingTTL",
    "routeRefreshInterval",
    "routeSource",
    "routeSyncDisabled",
    "routeTableRange",
    "routeTableRanges",
    "serviceLoopPrevention",
    "sidecarAccelerationEnabled",
    "usageReportingEnabled",
    "usageReportingInitialDelay",
    "usageReportingInterval",
    "useInternalDataplaneDriver",
    "windowsManageFirewallRules",
    "wireguardEnabled",
    "wireguardEnabledV6",
    "wireguardHostEncryptionEnabled",
    "wireguardInterfaceName",
    "wireguardInterfaceNameV6",
    "wireguardKeepAlive",
    "wireguardListeningPort",
    "wireguardListeningPortV6",
    "wireguardMTU",
    "wireguardMTUV6",
    "wireguardRoutingRulePriority",
    "workloadSourceSpoofing",
    "xdpEnabled",
    "xdpRefreshInterval",
];

/// Spec of the singleton `ClusterInformation` named `default` (written by the cluster itself).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterInformationSpec {
    /// Unique cluster ID.
    #[serde(
        rename = "clusterGUID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_guid: String,
    /// Comma-separated cluster type tags.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_type: String,
    /// Version that last wrote the datastore.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub calico_version: String,
    /// Whether the datastore may be used (false pauses all writers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_ready: Option<bool>,
    /// Product variant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_and_opaque_knobs_round_trip() {
        let json = r#"{"ipv6Support":false,"vxlanVNI":4096,"bpfEnabled":true,"routeTableRanges":[{"min":1,"max":250}]}"#;
        let spec: FelixConfigurationSpec = serde_json::from_str(json).unwrap();
        assert_eq!(spec.ipv6_support, Some(false));
        assert_eq!(spec.vxlan_vni, Some(4096));
        assert_eq!(spec.other.len(), 2);
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(json).unwrap()
        );
        assert!(
            serde_json::from_str::<FelixConfigurationSpec>(r#"{"ipv6Support":"maybe"}"#).is_err()
        );
    }

    #[test]
    fn every_typed_knob_is_known_to_the_deserializer() {
        // Serializing a spec with every typed field set and reading it back must keep them
        // all typed: a field missing from the macro would land in `other` instead.
        let spec = FelixConfigurationSpec {
            ipv6_support: Some(true),
            interface_prefix: Some("cali".into()),
            interface_exclude: Some("kube-ipvs0".into()),
            default_endpoint_to_host_action: Some(EndpointToHostAction::Accept),
            failsafe_inbound_host_ports: Some(vec![]),
            failsafe_outbound_host_ports: Some(vec![]),
            log_prefix: Some("p".into()),
            log_severity_screen: Some("Info".into()),
            ipip_enabled: Some(true),
            ipip_mtu: Some(1440),
            vxlan_enabled: Some(true),
            vxlan_mtu: Some(1410),
            vxlan_mtu_v6: Some(1390),
            vxlan_port: Some(4789),
            vxlan_vni: Some(4096),
            allow_ipip_packets_from_workloads: Some(false),
            allow_vxlan_packets_from_workloads: Some(false),
            nat_port_range: Some(Port::range(1024, 65535)),
            nat_outgoing_address: Some("192.0.2.1".parse().unwrap()),
            max_ipset_size: Some(1_048_576),
            health_enabled: Some(true),
            health_host: Some("localhost".into()),
            health_port: Some(9099),
            prometheus_metrics_enabled: Some(true),
            prometheus_metrics_port: Some(9091),
            kube_node_port_ranges: Some(vec![Port::range(30000, 32767)]),
            endpoint_status_path_prefix: Some("/var/run/calico".into()),
            other: BTreeMap::new(),
        };
        let back: FelixConfigurationSpec =
            serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }
}

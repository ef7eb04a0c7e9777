//! Validation of nodes, endpoints, Felix configuration and the Kubernetes input kinds.

use super::names::{
    check_dns_subdomain, check_interface_name, check_port_name, fail, is_label_value, is_mac,
    is_qualified_name,
};
use crate::error::{FieldPath, Result};
use crate::types::*;
use std::net::IpAddr;

fn check_family(path: &FieldPath, addr: IpAddr, v4: bool) -> Result<()> {
    if addr.is_ipv4() == v4 {
        return Ok(());
    }
    fail(
        path,
        format!("{addr} is not an IPv{} address", if v4 { 4 } else { 6 }),
    )
}

pub(crate) fn check_node(spec_path: &FieldPath, spec: &NodeSpec) -> Result<()> {
    if let Some(bgp) = &spec.bgp {
        let bgp_path = spec_path.field("bgp");
        if *bgp == NodeBgpSpec::default() {
            return fail(&bgp_path, "bgp must not be empty (leave it out instead)");
        }
        if let Some(addr) = bgp.ipv4_address {
            check_family(&bgp_path.field("ipv4Address"), addr.0.addr(), true)?;
        }
        if let Some(addr) = bgp.ipv6_address {
            check_family(&bgp_path.field("ipv6Address"), addr.0.addr(), false)?;
        }
        if let Some(addr) = bgp.ipv4_ipip_tunnel_addr {
            check_family(&bgp_path.field("ipv4IPIPTunnelAddr"), addr, true)?;
        }
        if !bgp.route_reflector_cluster_id.is_empty()
            && bgp
                .route_reflector_cluster_id
                .parse::<std::net::Ipv4Addr>()
                .is_err()
        {
            return fail(
                &bgp_path.field("routeReflectorClusterID"),
                format!(
                    "invalid cluster ID {:?}: must be in IPv4 form",
                    bgp.route_reflector_cluster_id
                ),
            );
        }
    }
    if let Some(addr) = spec.ipv4_vxlan_tunnel_addr {
        check_family(&spec_path.field("ipv4VXLANTunnelAddr"), addr, true)?;
    }
    if let Some(addr) = spec.ipv6_vxlan_tunnel_addr {
        check_family(&spec_path.field("ipv6VXLANTunnelAddr"), addr, false)?;
    }
    for (field, mac) in [
        ("vxlanTunnelMACAddr", &spec.vxlan_tunnel_mac_addr),
        ("vxlanTunnelMACAddrV6", &spec.vxlan_tunnel_mac_addr_v6),
    ] {
        if !mac.is_empty() && !is_mac(mac) {
            return fail(
                &spec_path.field(field),
                format!("invalid MAC address {mac:?}"),
            );
        }
    }
    if let Some(wireguard) = &spec.wireguard {
        let path = spec_path.field("wireguard");
        if let Some(addr) = wireguard.interface_ipv4_address {
            check_family(&path.field("interfaceIPv4Address"), addr, true)?;
        }
        if let Some(addr) = wireguard.interface_ipv6_address {
            check_family(&path.field("interfaceIPv6Address"), addr, false)?;
        }
    }
    for (i, orch) in spec.orch_refs.iter().enumerate() {
        if orch.orchestrator.is_empty() {
            return fail(
                &spec_path.field("orchRefs").index(i).field("orchestrator"),
                "orchestrator is required",
            );
        }
    }
    Ok(())
}

fn check_profiles(path: &FieldPath, profiles: &[String]) -> Result<()> {
    for (i, profile) in profiles.iter().enumerate() {
        check_dns_subdomain(&path.index(i), profile, "profile name")?;
    }
    Ok(())
}

fn check_port_protocol(path: &FieldPath, protocol: Protocol) -> Result<()> {
    if protocol.supports_ports() {
        return Ok(());
    }
    fail(
        path,
        format!("protocol {protocol} has no ports (use TCP, UDP or SCTP)"),
    )
}

pub(crate) fn check_host_endpoint(spec_path: &FieldPath, spec: &HostEndpointSpec) -> Result<()> {
    if spec.node.is_empty() {
        return fail(&spec_path.field("node"), "a host endpoint needs its node");
    }
    check_dns_subdomain(&spec_path.field("node"), &spec.node, "node name")?;
    if spec.interface_name.is_empty() && spec.expected_ips.is_empty() {
        return fail(
            &spec_path.field("interfaceName"),
            "set interfaceName, expectedIPs, or both",
        );
    }
    if !spec.interface_name.is_empty() {
        check_interface_name(
            &spec_path.field("interfaceName"),
            &spec.interface_name,
            true,
        )?;
    }
    check_profiles(&spec_path.field("profiles"), &spec.profiles)?;
    for (i, port) in spec.ports.iter().enumerate() {
        let path = spec_path.field("ports").index(i);
        check_port_name(&path.field("name"), &port.name)?;
        check_port_protocol(&path.field("protocol"), port.protocol)?;
        if port.port == 0 {
            return fail(&path.field("port"), "port must be 1-65535");
        }
    }
    Ok(())
}

/// The name Calico derives for a workload endpoint: `<node>-<orchestrator>-<workload>-<endpoint>`
/// (the pod name as the workload for `k8s`), each part with `-` doubled. `None` until every part
/// is known.
pub fn workload_endpoint_name(spec: &WorkloadEndpointSpec) -> Option<String> {
    let workload = if spec.orchestrator == "k8s" {
        &spec.pod
    } else {
        &spec.workload
    };
    let parts = [&spec.node, &spec.orchestrator, workload, &spec.endpoint];
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let escaped: Vec<String> = parts.iter().map(|p| p.replace('-', "--")).collect();
    Some(escaped.join("-"))
}

pub(crate) fn check_workload_endpoint_name(
    name_path: &FieldPath,
    name: &str,
    spec: &WorkloadEndpointSpec,
) -> Result<()> {
    match workload_endpoint_name(spec) {
        Some(expected) if expected != name => fail(
            name_path,
            format!(
                "workload endpoint name {name:?} does not match its node, orchestrator, workload and endpoint (expected {expected:?})"
            ),
        ),
        _ => Ok(()),
    }
}

pub(crate) fn check_workload_endpoint(
    spec_path: &FieldPath,
    spec: &WorkloadEndpointSpec,
) -> Result<()> {
    if spec.node.is_empty() {
        return fail(
            &spec_path.field("node"),
            "a workload endpoint needs its node",
        );
    }
    check_dns_subdomain(&spec_path.field("node"), &spec.node, "node name")?;
    if !spec.container_id.is_empty() {
        let id = &spec.container_id;
        let ok = id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        if !ok {
            return fail(
                &spec_path.field("containerID"),
                format!("invalid container ID {id:?}"),
            );
        }
    }
    for (i, net) in spec.ip_networks.iter().enumerate() {
        let full = match net.version() {
            IpVersion::V4 => 32,
            IpVersion::V6 => 128,
        };
        if net.prefix_len() != full {
            return fail(
                &spec_path.field("ipNetworks").index(i),
                format!("{net} holds several addresses: workload networks are /32 or /128"),
            );
        }
    }
    if let Some(gw) = spec.ipv4_gateway {
        check_family(&spec_path.field("ipv4Gateway"), gw, true)?;
    }
    if let Some(gw) = spec.ipv6_gateway {
        check_family(&spec_path.field("ipv6Gateway"), gw, false)?;
    }
    for (i, nat) in spec.ip_nats.iter().enumerate() {
        let path = spec_path.field("ipNATs").index(i);
        if nat.internal_ip.is_ipv4() != nat.external_ip.is_ipv4() {
            return fail(
                &path.field("externalIP"),
                "internal and external IPs must be of the same family",
            );
        }
        if !spec
            .ip_networks
            .iter()
            .any(|n| n.0.contains(&nat.internal_ip))
        {
            return fail(
                &path.field("internalIP"),
                format!(
                    "{} is not one of the endpoint's ipNetworks",
                    nat.internal_ip
                ),
            );
        }
    }
    check_profiles(&spec_path.field("profiles"), &spec.profiles)?;
    if !spec.interface_name.is_empty() {
        check_interface_name(
            &spec_path.field("interfaceName"),
            &spec.interface_name,
            false,
        )?;
    }
    if !spec.mac.is_empty() && !is_mac(&spec.mac) {
        return fail(
            &spec_path.field("mac"),
            format!("invalid MAC address {:?}", spec.mac),
        );
    }
    for (i, port) in spec.ports.iter().enumerate() {
        let path = spec_path.field("ports").index(i);
        check_port_protocol(&path.field("protocol"), port.protocol)?;
        if port.name.is_empty() && port.host_port.is_none() {
            return fail(
                &path.field("name"),
                "a port needs a name unless it sets hostPort",
            );
        }
        if !port.name.is_empty() {
            check_port_name(&path.field("name"), &port.name)?;
        }
        if port.port == 0 || port.host_port == Some(0) {
            return fail(&path, "ports must be 1-65535");
        }
    }
    Ok(())
}

pub(crate) fn check_felix(spec_path: &FieldPath, spec: &FelixConfigurationSpec) -> Result<()> {
    for key in spec.other.keys() {
        if !KNOWN_OPAQUE_KNOBS.contains(&key.as_str()) {
            return fail(
                &spec_path.field(key),
                format!("unknown field {key:?} in a FelixConfiguration"),
            );
        }
    }
    for field in ["failsafeInboundHostPorts", "failsafeOutboundHostPorts"] {
        let ports = if field == "failsafeInboundHostPorts" {
            &spec.failsafe_inbound_host_ports
        } else {
            &spec.failsafe_outbound_host_ports
        };
        for (i, port) in ports.iter().flatten().enumerate() {
            let path = spec_path.field(field).index(i);
            check_port_protocol(&path.field("protocol"), port.protocol)?;
            if !port.net.is_empty() && port.net.parse::<Cidr>().is_err() {
                return fail(
                    &path.field("net"),
                    format!("invalid network {:?}", port.net),
                );
            }
        }
    }
    if let Some(ranges) = &spec.kube_node_port_ranges {
        let path = spec_path.field("kubeNodePortRanges");
        if ranges.len() > 7 {
            return fail(&path, "at most 7 node port ranges");
        }
        if let Some(i) = ranges.iter().position(|p| matches!(p, Port::Named(_))) {
            return fail(&path.index(i), "node port ranges cannot be named ports");
        }
    }
    if let Some(Port::Named(_)) = spec.nat_port_range {
        return fail(
            &spec_path.field("natPortRange"),
            "natPortRange must be a port or range of ports",
        );
    }
    if let Some(addr) = spec.nat_outgoing_address {
        check_family(&spec_path.field("natOutgoingAddress"), addr, true)?;
    }
    Ok(())
}

fn check_label_selector(path: &FieldPath, selector: &LabelSelector) -> Result<()> {
    for (key, value) in &selector.match_labels {
        let entry = path.field("matchLabels").key(key);
        if !is_qualified_name(key) {
            return fail(&entry, format!("invalid label key {key:?}"));
        }
        if !is_label_value(value) {
            return fail(&entry, format!("invalid label value {value:?}"));
        }
    }
    for (i, req) in selector.match_expressions.iter().enumerate() {
        let entry = path.field("matchExpressions").index(i);
        if !is_qualified_name(&req.key) {
            return fail(
                &entry.field("key"),
                format!("invalid label key {:?}", req.key),
            );
        }
        let needs_values = matches!(
            req.operator,
            LabelSelectorOperator::In | LabelSelectorOperator::NotIn
        );
        if needs_values && req.values.is_empty() {
            return fail(
                &entry.field("values"),
                format!("operator {:?} needs values", req.operator),
            );
        }
        if !needs_values && !req.values.is_empty() {
            return fail(
                &entry.field("values"),
                format!("operator {:?} takes no values", req.operator),
            );
        }
        for (j, value) in req.values.iter().enumerate() {
            if !is_label_value(value) {
                return fail(
                    &entry.field("values").index(j),
                    format!("invalid label value {value:?}"),
                );
            }
        }
    }
    Ok(())
}

fn check_k8s_peer(path: &FieldPath, peer: &NetworkPolicyPeer) -> Result<()> {
    let selectors = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
    match (&peer.ip_block, selectors) {
        (Some(_), true) => {
            return fail(
                path,
                "ipBlock cannot be combined with podSelector or namespaceSelector",
            );
        }
        (None, false) => {
            return fail(
                path,
                "a peer needs podSelector, namespaceSelector or ipBlock",
            );
        }
        _ => {}
    }
    if let Some(selector) = &peer.pod_selector {
        check_label_selector(&path.field("podSelector"), selector)?;
    }
    if let Some(selector) = &peer.namespace_selector {
        check_label_selector(&path.field("namespaceSelector"), selector)?;
    }
    if let Some(block) = &peer.ip_block {
        for (i, except) in block.except.iter().enumerate() {
            let inside = block.cidr.version() == except.version()
                && block.cidr.network().contains(&except.network())
                && except.prefix_len() > block.cidr.prefix_len();
            if !inside {
                return fail(
                    &path.field("ipBlock").field("except").index(i),
                    format!("{except} must be strictly inside {}", block.cidr),
                );
            }
        }
    }
    Ok(())
}

fn check_k8s_port(path: &FieldPath, port: &NetworkPolicyPort) -> Result<()> {
    match &port.port {
        Some(IntOrString::Int(n)) => {
            if !(1..=65535).contains(n) {
                return fail(
                    &path.field("port"),
                    format!("port {n} out of range (1-65535)"),
                );
            }
            if let Some(end) = port.end_port
                && (end < *n || end > 65535)
            {
                return fail(
                    &path.field("endPort"),
                    format!("endPort {end} must be between port {n} and 65535"),
                );
            }
        }
        Some(IntOrString::String(name)) => {
            check_port_name(&path.field("port"), name)?;
            if port.end_port.is_some() {
                return fail(&path.field("endPort"), "endPort needs a numeric port");
            }
        }
        None if port.end_port.is_some() => {
            return fail(&path.field("endPort"), "endPort needs a numeric port");
        }
        None => {}
    }
    Ok(())
}

pub(crate) fn check_k8s_network_policy(
    spec_path: &FieldPath,
    spec: &KubernetesNetworkPolicySpec,
) -> Result<()> {
    check_label_selector(&spec_path.field("podSelector"), &spec.pod_selector)?;
    super::policy::check_types(&spec_path.field("policyTypes"), &spec.policy_types)?;
    for (i, rule) in spec.ingress.iter().enumerate() {
        let path = spec_path.field("ingress").index(i);
        for (j, port) in rule.ports.iter().enumerate() {
            check_k8s_port(&path.field("ports").index(j), port)?;
        }
        for (j, peer) in rule.from.iter().enumerate() {
            check_k8s_peer(&path.field("from").index(j), peer)?;
        }
    }
    for (i, rule) in spec.egress.iter().enumerate() {
        let path = spec_path.field("egress").index(i);
        for (j, port) in rule.ports.iter().enumerate() {
            check_k8s_port(&path.field("ports").index(j), port)?;
        }
        for (j, peer) in rule.to.iter().enumerate() {
            check_k8s_peer(&path.field("to").index(j), peer)?;
        }
    }
    Ok(())
}

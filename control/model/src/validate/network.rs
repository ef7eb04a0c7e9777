//! Validation of address and routing resources: IPPool, IPReservation, IPAMConfiguration,
//! network sets, BGPConfiguration and BGPPeer.

use super::names::{Global, check_dns_subdomain, check_duration, check_selector, fail};
use crate::error::{FieldPath, Result};
use crate::types::*;
use std::net::IpAddr;

/// IPv4 link-local range; pools may not overlap it.
const V4_LINK_LOCAL: &str = "169.254.0.0/16";
/// IPv6 link-local range; pools may not overlap it.
const V6_LINK_LOCAL: &str = "fe80::/10";

fn overlaps(a: &ipnet::IpNet, b: &ipnet::IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

pub(crate) fn check_ip_pool(spec_path: &FieldPath, spec: &IpPoolSpec) -> Result<()> {
    let cidr_path = spec_path.field("cidr");
    let cidr = spec.cidr;
    if !cidr.is_strictly_masked() {
        return fail(
            &cidr_path,
            format!(
                "IP pool CIDR {cidr} is not strictly masked (did you mean {}?)",
                cidr.network()
            ),
        );
    }
    let link_local: ipnet::IpNet = match cidr.version() {
        IpVersion::V4 => V4_LINK_LOCAL.parse().expect("constant CIDR"),
        IpVersion::V6 => V6_LINK_LOCAL.parse().expect("constant CIDR"),
    };
    if overlaps(&cidr.0, &link_local) {
        return fail(
            &cidr_path,
            format!("IP pool {cidr} overlaps the link-local range {link_local}"),
        );
    }
    let (min, max) = match cidr.version() {
        IpVersion::V4 => (20, 32),
        IpVersion::V6 => (116, 128),
    };
    if let Some(block) = spec.block_size
        && !(min..=max).contains(&block)
    {
        return fail(
            &spec_path.field("blockSize"),
            format!(
                "blockSize {block} out of range for an IPv{} pool ({min}-{max})",
                cidr.version().number()
            ),
        );
    }
    let block = spec.effective_block_size();
    if !spec.disabled && cidr.prefix_len() > block {
        return fail(
            &cidr_path,
            format!(
                "IP pool {cidr} is smaller than one block (/{block}): the prefix must be /{block} or shorter"
            ),
        );
    }
    let ipip = spec.ipip_mode.is_some_and(EncapMode::is_enabled);
    let vxlan = spec.vxlan_mode.is_some_and(EncapMode::is_enabled);
    if ipip && cidr.version() == IpVersion::V6 {
        return fail(
            &spec_path.field("ipipMode"),
            "IP-in-IP is not supported on an IPv6 pool (use Never)",
        );
    }
    if ipip && vxlan {
        return fail(
            &spec_path.field("ipipMode"),
            "ipipMode and vxlanMode cannot both be enabled on the same pool",
        );
    }
    check_selector(
        &spec_path.field("nodeSelector"),
        &spec.node_selector,
        Global::Forbidden,
    )?;
    check_selector(
        &spec_path.field("namespaceSelector"),
        &spec.namespace_selector,
        Global::Forbidden,
    )?;
    let uses_path = spec_path.field("allowedUses");
    for (i, used) in spec.allowed_uses.iter().enumerate() {
        if spec.allowed_uses[..i].contains(used) {
            return fail(
                &uses_path.index(i),
                format!("{used:?} listed more than once"),
            );
        }
    }
    if spec.allowed_uses.contains(&AllowedUse::LoadBalancer) {
        if spec.allowed_uses.len() > 1 {
            return fail(
                &uses_path,
                "LoadBalancer cannot be combined with other uses",
            );
        }
        if ipip || vxlan {
            return fail(
                &uses_path,
                "a LoadBalancer pool cannot use IP-in-IP or VXLAN",
            );
        }
        let selector = spec.node_selector.trim();
        if !(selector.is_empty() || selector == "all()") {
            return fail(
                &spec_path.field("nodeSelector"),
                "a LoadBalancer pool's nodeSelector must be all()",
            );
        }
    }
    Ok(())
}

pub(crate) fn check_ipam_config(
    name_path: &FieldPath,
    name: &str,
    spec_path: &FieldPath,
    spec: &IpamConfigurationSpec,
) -> Result<()> {
    if name != "default" {
        return fail(name_path, "the IPAMConfiguration must be named \"default\"");
    }
    if spec.strict_affinity == Some(false) && spec.auto_allocate_blocks == Some(false) {
        return fail(
            &spec_path.field("autoAllocateBlocks"),
            "autoAllocateBlocks cannot be false while strictAffinity is false",
        );
    }
    if let Some(seconds) = spec.ip_cooldown_seconds
        && seconds > 1200
    {
        return fail(
            &spec_path.field("ipCooldownSeconds"),
            format!("ipCooldownSeconds {seconds} out of range (0-1200)"),
        );
    }
    Ok(())
}

fn check_community_value(path: &FieldPath, value: &str) -> Result<()> {
    let parts: Vec<&str> = value.split(':').collect();
    let ok = match parts.len() {
        2 => parts.iter().all(|p| p.parse::<u16>().is_ok()),
        3 => parts.iter().all(|p| p.parse::<u32>().is_ok()),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    fail(
        path,
        format!(
            "invalid community {value:?}: expected aa:nn (16-bit parts) or aa:nn:mm (32-bit parts)"
        ),
    )
}

pub(crate) fn check_bgp_configuration(
    name: &str,
    spec_path: &FieldPath,
    spec: &BgpConfigurationSpec,
) -> Result<()> {
    let communities_path = spec_path.field("communities");
    for (i, community) in spec.communities.iter().enumerate() {
        let path = communities_path.index(i);
        check_dns_subdomain(&path.field("name"), &community.name, "community name")?;
        check_community_value(&path.field("value"), &community.value)?;
        if spec.communities[..i]
            .iter()
            .any(|c| c.name == community.name)
        {
            return fail(
                &path.field("name"),
                format!("community {:?} defined more than once", community.name),
            );
        }
    }
    let adverts_path = spec_path.field("prefixAdvertisements");
    for (i, advert) in spec.prefix_advertisements.iter().enumerate() {
        for (j, community) in advert.communities.iter().enumerate() {
            let path = adverts_path.index(i).field("communities").index(j);
            let named = spec.communities.iter().any(|c| &c.name == community);
            if !named && community.contains(':') {
                check_community_value(&path, community)?;
            } else if !named {
                return fail(
                    &path,
                    format!(
                        "community {community:?} is neither defined in communities nor a literal aa:nn value"
                    ),
                );
            }
        }
    }
    if spec.listen_port == Some(0) {
        return fail(&spec_path.field("listenPort"), "listenPort must be 1-65535");
    }
    let mesh_only = [
        ("nodeMeshPassword", spec.node_mesh_password.is_some()),
        (
            "nodeMeshMaxRestartTime",
            spec.node_mesh_max_restart_time.is_some(),
        ),
    ];
    for (field, set) in mesh_only {
        if !set {
            continue;
        }
        if name != "default" {
            return fail(
                &spec_path.field(field),
                format!("{field} can only be set on the \"default\" BGPConfiguration"),
            );
        }
        if spec.node_to_node_mesh_enabled == Some(false) {
            return fail(
                &spec_path.field(field),
                format!("{field} requires nodeToNodeMeshEnabled"),
            );
        }
    }
    if let Some(duration) = &spec.node_mesh_max_restart_time {
        check_duration(&spec_path.field("nodeMeshMaxRestartTime"), duration)?;
    }
    if let Some(password) = &spec.node_mesh_password {
        check_password(&spec_path.field("nodeMeshPassword"), password)?;
    }
    for (field, addr, v4) in [
        (
            "localWorkloadPeeringIPV4",
            spec.local_workload_peering_ipv4,
            true,
        ),
        (
            "localWorkloadPeeringIPV6",
            spec.local_workload_peering_ipv6,
            false,
        ),
    ] {
        if let Some(addr) = addr
            && addr.is_ipv4() != v4
        {
            return fail(
                &spec_path.field(field),
                format!("{addr} is not an IPv{} address", if v4 { 4 } else { 6 }),
            );
        }
    }
    for (i, iface) in spec.ignored_interfaces.iter().enumerate() {
        if iface.is_empty() {
            return fail(
                &spec_path.field("ignoredInterfaces").index(i),
                "empty interface name",
            );
        }
    }
    Ok(())
}

fn check_password(path: &FieldPath, password: &BgpPassword) -> Result<()> {
    match &password.secret_key_ref {
        Some(secret) if secret.name.is_empty() => fail(
            &path.field("secretKeyRef").field("name"),
            "secret name is required",
        ),
        Some(secret) if secret.key.is_empty() => fail(
            &path.field("secretKeyRef").field("key"),
            "secret key is required",
        ),
        Some(_) => Ok(()),
        None => fail(path, "secretKeyRef is required"),
    }
}

/// `peerIP` forms: `IP`, `IPv4:port`, `[IPv6]:port`.
pub(crate) fn parse_peer_ip(text: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some((ip, None));
    }
    if let Ok(sock) = text.parse::<std::net::SocketAddr>() {
        return (sock.port() != 0).then_some((sock.ip(), Some(sock.port())));
    }
    None
}

pub(crate) fn check_bgp_peer(spec_path: &FieldPath, spec: &BgpPeerSpec) -> Result<()> {
    if !spec.node.is_empty() && !spec.node_selector.is_empty() {
        return fail(
            &spec_path.field("node"),
            "node must be empty when nodeSelector is set",
        );
    }
    if !spec.peer_ip.is_empty() && !spec.peer_selector.is_empty() {
        return fail(
            &spec_path.field("peerIP"),
            "peerIP must be empty when peerSelector is set",
        );
    }
    if spec.as_number.is_some() && !spec.peer_selector.is_empty() {
        return fail(
            &spec_path.field("asNumber"),
            "asNumber must be empty when peerSelector is set (the remote node's AS is used)",
        );
    }
    if !spec.node.is_empty() {
        check_dns_subdomain(&spec_path.field("node"), &spec.node, "node name")?;
    }
    if !spec.peer_ip.is_empty() && parse_peer_ip(&spec.peer_ip).is_none() {
        return fail(
            &spec_path.field("peerIP"),
            format!(
                "invalid peerIP {:?}: expected an IP, IPv4:port or [IPv6]:port",
                spec.peer_ip
            ),
        );
    }
    check_selector(
        &spec_path.field("nodeSelector"),
        &spec.node_selector,
        Global::Forbidden,
    )?;
    check_selector(
        &spec_path.field("peerSelector"),
        &spec.peer_selector,
        Global::Forbidden,
    )?;
    check_selector(
        &spec_path.field("localWorkloadSelector"),
        &spec.local_workload_selector,
        Global::Forbidden,
    )?;
    if !spec.local_workload_selector.is_empty() && spec.as_number.is_none() {
        return fail(
            &spec_path.field("asNumber"),
            "localWorkloadSelector requires asNumber",
        );
    }
    if !spec.reachable_by.is_empty() {
        if spec.peer_ip.is_empty() {
            return fail(
                &spec_path.field("reachableBy"),
                "reachableBy requires peerIP",
            );
        }
        if spec.reachable_by.parse::<IpAddr>().is_err() {
            return fail(
                &spec_path.field("reachableBy"),
                format!("invalid gateway address {:?}", spec.reachable_by),
            );
        }
    }
    for (field, duration) in [
        ("maxRestartTime", &spec.max_restart_time),
        ("keepaliveTime", &spec.keepalive_time),
    ] {
        if let Some(duration) = duration {
            check_duration(&spec_path.field(field), duration)?;
        }
    }
    if let Some(password) = &spec.password {
        check_password(&spec_path.field("password"), password)?;
    }
    for (i, filter) in spec.filters.iter().enumerate() {
        check_dns_subdomain(
            &spec_path.field("filters").index(i),
            filter,
            "BGPFilter name",
        )?;
    }
    if spec.ttl_security == Some(0) {
        return fail(
            &spec_path.field("ttlSecurity"),
            "ttlSecurity must be 1-255 hops",
        );
    }
    Ok(())
}

/// BGPFilter: each rule's CIDR is of its list's family and comes with a match operator
/// (and the other way round); a prefix length needs a CIDR and stays within the family's
/// range with min <= max; `interface` is a non-empty name pattern when set.
pub(crate) fn check_bgp_filter(spec_path: &FieldPath, spec: &BgpFilterSpec) -> Result<()> {
    for (field, rules, v4) in [
        ("exportV4", &spec.export_v4, true),
        ("importV4", &spec.import_v4, true),
        ("exportV6", &spec.export_v6, false),
        ("importV6", &spec.import_v6, false),
    ] {
        let max_len: u8 = if v4 { 32 } else { 128 };
        for (i, rule) in rules.iter().enumerate() {
            let path = spec_path.field(field).index(i);
            match (&rule.cidr, rule.match_operator) {
                (Some(c), Some(_)) => {
                    if c.0.addr().is_ipv4() != v4 {
                        return fail(
                            &path.field("cidr"),
                            format!("{} is not an IPv{} CIDR", c.0, if v4 { 4 } else { 6 }),
                        );
                    }
                }
                (None, None) => {}
                (Some(_), None) => {
                    return fail(
                        &path.field("matchOperator"),
                        "is required with cidr (Equal, NotEqual, In or NotIn)",
                    );
                }
                (None, Some(_)) => {
                    return fail(&path.field("cidr"), "is required with matchOperator");
                }
            }
            if let Some(pl) = rule.prefix_length {
                let pl_path = path.field("prefixLength");
                if rule.cidr.is_none() {
                    return fail(&pl_path, "requires cidr");
                }
                for (name, v) in [("min", pl.min), ("max", pl.max)] {
                    if let Some(v) = v
                        && v > max_len
                    {
                        return fail(&pl_path.field(name), format!("{v} is beyond {max_len}"));
                    }
                }
                if let (Some(lo), Some(hi)) = (pl.min, pl.max)
                    && lo > hi
                {
                    return fail(&pl_path, format!("min {lo} is greater than max {hi}"));
                }
            }
            if rule.interface.chars().any(char::is_whitespace) {
                return fail(
                    &path.field("interface"),
                    format!("{:?} is not an interface name pattern", rule.interface),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ip_forms() {
        assert!(parse_peer_ip("192.0.2.1").is_some());
        assert_eq!(parse_peer_ip("192.0.2.1:1179").unwrap().1, Some(1179));
        assert_eq!(parse_peer_ip("[2001:db8::1]:179").unwrap().1, Some(179));
        assert!(parse_peer_ip("2001:db8::1").is_some());
        assert!(parse_peer_ip("192.0.2.1:0").is_none());
        assert!(parse_peer_ip("router").is_none());
    }
}

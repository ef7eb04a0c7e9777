//! Calico's etcd v3 key layout, so that a store written by Calico (calicoctl, calico-node,
//! calico-ipam with `DATASTORE_TYPE=etcdv3`) reads back here, and the other way round.
//!
//! Resources (libcalico-go `model.ResourceKey`): the lowercase plural of the kind, then the
//! namespace for namespaced kinds, then the name:
//!
//! ```text
//! /calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>   namespaced kinds
//! /calico/resources/v3/projectcalico.org/<plural>/<name>               cluster-scoped kinds
//! ```
//!
//! IPAM (libcalico-go `model.BlockKey`, `BlockAffinityKey`, `IPAMHandleKey`, `IPAMConfigKey`),
//! where a CIDR is written with its `/` turned into `-` (`10.0.0.0/26` -> `10.0.0.0-26`):
//!
//! ```text
//! /calico/ipam/v2/assignment/ipv<4|6>/block/<cidr>
//! /calico/ipam/v2/host/<node>/ipv<4|6>/block/<cidr>
//! /calico/ipam/v2/handle/<handle-id>
//! /calico/ipam/v2/config
//! ```
//!
//! This module takes kinds as plural strings on purpose: it knows the layout, not the model.

use std::net::IpAddr;

use crate::error::{DatastoreError, Result};

/// Prefix of every `projectcalico.org/v3` resource key.
pub const RESOURCES_PREFIX: &str = "/calico/resources/v3/projectcalico.org/";
/// Prefix of every IPAM key.
pub const IPAM_PREFIX: &str = "/calico/ipam/v2/";
/// Prefix of IPAM blocks (both families).
pub const IPAM_BLOCK_PREFIX: &str = "/calico/ipam/v2/assignment/";
/// Prefix of block affinities (all nodes).
pub const IPAM_AFFINITY_PREFIX: &str = "/calico/ipam/v2/host/";
/// Prefix of IPAM handles.
pub const IPAM_HANDLE_PREFIX: &str = "/calico/ipam/v2/handle/";
/// The singleton IPAM configuration key.
pub const IPAM_CONFIG_KEY: &str = "/calico/ipam/v2/config";

/// A resource key taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceKey {
    /// Lowercase plural of the kind, e.g. `networkpolicies`.
    pub plural: String,
    /// The namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// The resource name.
    pub name: String,
}

/// An IPAM key taken apart. CIDRs are in their usual `addr/len` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpamKey {
    /// An allocation block.
    Block {
        /// The block's CIDR.
        cidr: String,
    },
    /// A node's affinity to a block.
    Affinity {
        /// The node name.
        host: String,
        /// The block's CIDR.
        cidr: String,
    },
    /// An allocation handle.
    Handle {
        /// The handle id (e.g. `k8s-pod-network.<container-id>`).
        id: String,
    },
    /// The IPAM configuration singleton.
    Config,
}

fn invalid(key: &str, reason: impl Into<String>) -> DatastoreError {
    DatastoreError::InvalidKey {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// A key component must be non-empty and free of `/`, or keys of different resources could
/// collide or leak into each other's prefixes.
fn check_segment(what: &str, segment: &str) -> Result<()> {
    if segment.is_empty() {
        return Err(invalid(segment, format!("{what} is empty")));
    }
    if segment.contains('/') {
        return Err(invalid(segment, format!("{what} contains '/'")));
    }
    Ok(())
}

/// The key of a resource: `namespace` is `Some` for namespaced kinds and `None` for
/// cluster-scoped ones.
pub fn resource_key(plural: &str, namespace: Option<&str>, name: &str) -> Result<String> {
    check_segment("kind plural", plural)?;
    check_segment("name", name)?;
    match namespace {
        Some(ns) => {
            check_segment("namespace", ns)?;
            Ok(format!("{RESOURCES_PREFIX}{plural}/{ns}/{name}"))
        }
        None => Ok(format!("{RESOURCES_PREFIX}{plural}/{name}")),
    }
}

/// The prefix to list one kind (every namespace when `namespace` is `None`), or one namespace
/// of a namespaced kind. It ends in `/`, so `networksets` does not also list
/// `networksetsfoo`.
pub fn resource_prefix(plural: &str, namespace: Option<&str>) -> Result<String> {
    check_segment("kind plural", plural)?;
    match namespace {
        Some(ns) => {
            check_segment("namespace", ns)?;
            Ok(format!("{RESOURCES_PREFIX}{plural}/{ns}/"))
        }
        None => Ok(format!("{RESOURCES_PREFIX}{plural}/")),
    }
}

/// Takes a resource key apart: two segments after the prefix for cluster-scoped kinds, three
/// for namespaced ones.
pub fn parse_resource_key(key: &str) -> Result<ResourceKey> {
    let rest = key
        .strip_prefix(RESOURCES_PREFIX)
        .ok_or_else(|| invalid(key, format!("does not start with {RESOURCES_PREFIX}")))?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(invalid(key, "has an empty path segment"));
    }
    match segments.as_slice() {
        [plural, name] => Ok(ResourceKey {
            plural: (*plural).to_owned(),
            namespace: None,
            name: (*name).to_owned(),
        }),
        [plural, ns, name] => Ok(ResourceKey {
            plural: (*plural).to_owned(),
            namespace: Some((*ns).to_owned()),
            name: (*name).to_owned(),
        }),
        _ => Err(invalid(
            key,
            format!(
                "expected <plural>/<name> or <plural>/<namespace>/<name>, found {} segments",
                segments.len()
            ),
        )),
    }
}

/// Validates `addr/len` and returns the IP version and the key form `addr-len`.
fn cidr_segment(cidr: &str) -> Result<(u8, String)> {
    let (addr, len) = cidr
        .split_once('/')
        .ok_or_else(|| invalid(cidr, "CIDR has no '/'"))?;
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| invalid(cidr, "CIDR address is not an IP"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| invalid(cidr, "CIDR prefix length is not a number"))?;
    let (version, max) = if ip.is_ipv4() { (4, 32) } else { (6, 128) };
    if len > max {
        return Err(invalid(cidr, format!("prefix length {len} exceeds {max}")));
    }
    Ok((version, format!("{ip}-{len}")))
}

/// Turns the key form `addr-len` back into `addr/len`, checking the family matches.
fn cidr_from_segment(key: &str, segment: &str, version: u8) -> Result<String> {
    let (addr, len) = segment
        .rsplit_once('-')
        .ok_or_else(|| invalid(key, "block CIDR has no '-'"))?;
    let cidr = format!("{addr}/{len}");
    let (parsed_version, _) = cidr_segment(&cidr).map_err(|e| match e {
        DatastoreError::InvalidKey { reason, .. } => invalid(key, reason),
        other => other,
    })?;
    if parsed_version != version {
        return Err(invalid(key, format!("block {cidr} is not IPv{version}")));
    }
    Ok(cidr)
}

/// The key of an IPAM block, e.g. `10.0.0.0/26` ->
/// `/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26`.
pub fn ipam_block_key(cidr: &str) -> Result<String> {
    let (version, segment) = cidr_segment(cidr)?;
    Ok(format!("{IPAM_BLOCK_PREFIX}ipv{version}/block/{segment}"))
}

/// The key of a node's affinity to a block.
pub fn ipam_affinity_key(host: &str, cidr: &str) -> Result<String> {
    check_segment("host", host)?;
    let (version, segment) = cidr_segment(cidr)?;
    Ok(format!(
        "{IPAM_AFFINITY_PREFIX}{host}/ipv{version}/block/{segment}"
    ))
}

/// The prefix of all affinities of one node.
pub fn ipam_affinity_prefix(host: &str) -> Result<String> {
    check_segment("host", host)?;
    Ok(format!("{IPAM_AFFINITY_PREFIX}{host}/"))
}

/// The key of an allocation handle.
pub fn ipam_handle_key(handle_id: &str) -> Result<String> {
    check_segment("handle id", handle_id)?;
    Ok(format!("{IPAM_HANDLE_PREFIX}{handle_id}"))
}

fn parse_version(key: &str, segment: &str) -> Result<u8> {
    match segment {
        "ipv4" => Ok(4),
        "ipv6" => Ok(6),
        _ => Err(invalid(
            key,
            format!("expected ipv4 or ipv6, found {segment:?}"),
        )),
    }
}

/// Takes an IPAM key apart.
pub fn parse_ipam_key(key: &str) -> Result<IpamKey> {
    if key == IPAM_CONFIG_KEY {
        return Ok(IpamKey::Config);
    }
    let rest = key
        .strip_prefix(IPAM_PREFIX)
        .ok_or_else(|| invalid(key, format!("does not start with {IPAM_PREFIX}")))?;
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["assignment", family, "block", cidr] => {
            let version = parse_version(key, family)?;
            Ok(IpamKey::Block {
                cidr: cidr_from_segment(key, cidr, version)?,
            })
        }
        ["host", host, family, "block", cidr] if !host.is_empty() => {
            let version = parse_version(key, family)?;
            Ok(IpamKey::Affinity {
                host: (*host).to_owned(),
                cidr: cidr_from_segment(key, cidr, version)?,
            })
        }
        ["handle", id] if !id.is_empty() => Ok(IpamKey::Handle {
            id: (*id).to_owned(),
        }),
        _ => Err(invalid(key, "not a block, affinity, handle or config key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_keys_follow_calicos_layout_and_parse_back() {
        let ns = resource_key("networkpolicies", Some("prod"), "allow-dns").unwrap();
        assert_eq!(
            ns,
            "/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow-dns"
        );
        let cluster = resource_key("ippools", None, "default-ipv4-ippool").unwrap();
        assert_eq!(
            cluster,
            "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool"
        );
        assert_eq!(
            parse_resource_key(&ns).unwrap(),
            ResourceKey {
                plural: "networkpolicies".into(),
                namespace: Some("prod".into()),
                name: "allow-dns".into()
            }
        );
        assert_eq!(parse_resource_key(&cluster).unwrap().namespace, None);
        assert_eq!(
            resource_prefix("workloadendpoints", Some("ns1")).unwrap(),
            "/calico/resources/v3/projectcalico.org/workloadendpoints/ns1/"
        );
    }

    #[test]
    fn resource_keys_reject_ambiguous_components() {
        assert!(resource_key("networkpolicies", Some("a/b"), "x").is_err());
        assert!(resource_key("networkpolicies", None, "").is_err());
        assert!(resource_key("", None, "x").is_err());
        assert!(parse_resource_key("/calico/resources/v3/projectcalico.org/ippools").is_err());
        assert!(parse_resource_key("/calico/resources/v3/projectcalico.org/a/b/c/d").is_err());
        assert!(parse_resource_key("/calico/resources/v3/projectcalico.org/a//c").is_err());
        assert!(parse_resource_key("/calico/v1/policy/x").is_err());
    }

    #[test]
    fn ipam_keys_follow_calicos_layout_and_parse_back() {
        let block = ipam_block_key("10.0.0.0/26").unwrap();
        assert_eq!(block, "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26");
        assert_eq!(
            parse_ipam_key(&block).unwrap(),
            IpamKey::Block {
                cidr: "10.0.0.0/26".into()
            }
        );
        let v6 = ipam_block_key("fd00:1::/122").unwrap();
        assert_eq!(v6, "/calico/ipam/v2/assignment/ipv6/block/fd00:1::-122");
        assert_eq!(
            parse_ipam_key(&v6).unwrap(),
            IpamKey::Block {
                cidr: "fd00:1::/122".into()
            }
        );
        let aff = ipam_affinity_key("node-1", "10.0.0.64/26").unwrap();
        assert_eq!(aff, "/calico/ipam/v2/host/node-1/ipv4/block/10.0.0.64-26");
        assert_eq!(
            parse_ipam_key(&aff).unwrap(),
            IpamKey::Affinity {
                host: "node-1".into(),
                cidr: "10.0.0.64/26".into()
            }
        );
        let handle = ipam_handle_key("k8s-pod-network.abc123").unwrap();
        assert_eq!(handle, "/calico/ipam/v2/handle/k8s-pod-network.abc123");
        assert_eq!(
            parse_ipam_key(&handle).unwrap(),
            IpamKey::Handle {
                id: "k8s-pod-network.abc123".into()
            }
        );
        assert_eq!(parse_ipam_key(IPAM_CONFIG_KEY).unwrap(), IpamKey::Config);
    }

    #[test]
    fn ipam_keys_reject_malformed_input() {
        assert!(ipam_block_key("10.0.0.0").is_err());
        assert!(ipam_block_key("10.0.0.0/33").is_err());
        assert!(ipam_block_key("nonsense/26").is_err());
        assert!(ipam_affinity_key("", "10.0.0.0/26").is_err());
        assert!(parse_ipam_key("/calico/ipam/v2/assignment/ipv6/block/10.0.0.0-26").is_err());
        assert!(parse_ipam_key("/calico/ipam/v2/assignment/ipv4/block/10.0.0.0").is_err());
        assert!(parse_ipam_key("/calico/ipam/v2/handle/").is_err());
        assert!(parse_ipam_key("/calico/ipam/v2/unknown").is_err());
    }
}

//! What a node originates: its affine blocks and the service CIDRs, with communities.

use crate::error::AgentError;
use crate::input::{ClusterView, NodeInfo};
use crate::plan::PoolRule;
use ipnet::IpNet;
use tortie_bgp::LocalRoute;
use tortie_bgp::wire::{LargeCommunity, NextHop, Origin, PathAttributes, Prefix};
use tortie_model::types::{Aggregation, BgpConfigurationSpec};

/// LOCAL_PREF Calico's BIRD puts on routes it originates: 2147483647 − 1024 (the normal route
/// priority), so BIRD-based Calico nodes treat ours as normal-priority routes.
pub const CALICO_LOCAL_PREF: u32 = 2_147_482_623;

/// Why a prefix is advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdvertisementKind {
    /// An IPAM block affine to this node.
    Block,
    /// `BGPConfiguration` `serviceClusterIPs`.
    ServiceClusterIps,
    /// `BGPConfiguration` `serviceExternalIPs`.
    ServiceExternalIps,
    /// `BGPConfiguration` `serviceLoadBalancerIPs`.
    ServiceLoadBalancerIps,
}

/// One prefix this node originates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// The prefix (host bits clear).
    pub prefix: IpNet,
    /// Why.
    pub kind: AdvertisementKind,
    /// Standard communities (`aa:nn` as `aa << 16 | nn`) from `prefixAdvertisements`.
    pub communities: Vec<u32>,
    /// Large communities from `prefixAdvertisements`.
    pub large_communities: Vec<LargeCommunity>,
}

impl Advertisement {
    /// The prefix in the speaker's form.
    pub fn wire_prefix(&self) -> Prefix {
        to_wire(self.prefix)
    }

    /// The route handed to the speaker: ORIGIN IGP, LOCAL_PREF 2147482623 (iBGP only; the
    /// speaker strips it towards eBGP peers), the communities, next hop = our session address.
    pub fn local_route(&self) -> LocalRoute {
        LocalRoute {
            attrs: PathAttributes {
                origin: Origin::Igp,
                local_pref: Some(CALICO_LOCAL_PREF),
                communities: self.communities.clone(),
                large_communities: self.large_communities.clone(),
                ..PathAttributes::default()
            },
            next_hop: None::<NextHop>,
        }
    }
}

/// An `ipnet` prefix as the speaker's prefix.
pub fn to_wire(net: IpNet) -> Prefix {
    match net.trunc() {
        IpNet::V4(n) => Prefix::V4(n.network(), n.prefix_len()),
        IpNet::V6(n) => Prefix::V6(n.network(), n.prefix_len()),
    }
}

/// The speaker's prefix as an `ipnet` prefix.
pub fn from_wire(p: Prefix) -> IpNet {
    match p {
        Prefix::V4(a, l) => IpNet::V4(ipnet::Ipv4Net::new(a, l).unwrap_or_default()),
        Prefix::V6(a, l) => IpNet::V6(ipnet::Ipv6Net::new(a, l).unwrap_or_default()),
    }
}

pub(crate) fn compute(
    view: &ClusterView<'_>,
    me: &NodeInfo,
    blocks: &[IpNet],
    pools: &[PoolRule],
    warnings: &mut Vec<String>,
) -> Result<Vec<Advertisement>, AgentError> {
    let mut out: Vec<Advertisement> = vec![];
    let mut push = |prefix: IpNet, kind| {
        let prefix = prefix.trunc();
        if !out.iter().any(|a| a.prefix == prefix) {
            out.push(Advertisement {
                prefix,
                kind,
                communities: vec![],
                large_communities: vec![],
            });
        }
    };
    for block in blocks {
        let pool = pools.iter().find(|p| p.cidr.contains(block));
        if pool.is_some_and(|p| p.export_disabled) {
            continue;
        }
        if (block.addr().is_ipv4() && me.v4.is_none())
            || (block.addr().is_ipv6() && me.v6.is_none())
        {
            warnings.push(format!(
                "block {block}: the node has no address of its family, so no session carries it"
            ));
        }
        push(*block, AdvertisementKind::Block);
    }
    if let Some(g) = view.global {
        for c in &g.service_cluster_ips {
            push(c.cidr.0, AdvertisementKind::ServiceClusterIps);
        }
        for c in &g.service_external_ips {
            push(c.cidr.0, AdvertisementKind::ServiceExternalIps);
        }
        if g.service_load_balancer_aggregation == Some(Aggregation::Disabled) {
            if !g.service_load_balancer_ips.is_empty() {
                warnings.push("BGPConfiguration \"default\" spec.serviceLoadBalancerAggregation Disabled: per-service addresses are not advertised (Services are not read)".into());
            }
        } else {
            for c in &g.service_load_balancer_ips {
                push(c.cidr.0, AdvertisementKind::ServiceLoadBalancerIps);
            }
        }
    }
    apply_communities(view, me, &mut out)?;
    out.sort_by_key(|a| a.prefix);
    Ok(out)
}

/// `prefixAdvertisements` from `BGPConfiguration node.<name>` when it has any, else from
/// `default`; every advertised prefix inside an entry's CIDR gets its communities (as BIRD's
/// `net ~ CIDR` test in Calico's export filter).
fn apply_communities(
    view: &ClusterView<'_>,
    me: &NodeInfo,
    out: &mut [Advertisement],
) -> Result<(), AgentError> {
    let per_node = view
        .per_node
        .get(me.name.as_str())
        .filter(|c| !c.prefix_advertisements.is_empty());
    let (source, resource): (&BgpConfigurationSpec, String) = match (per_node, view.global) {
        (Some(c), _) => (c, format!("BGPConfiguration \"node.{}\"", me.name)),
        (None, Some(g)) => (g, "BGPConfiguration \"default\"".to_string()),
        (None, None) => return Ok(()),
    };
    let names = view.global.map_or(&[][..], |g| &g.communities[..]);
    for (i, adv) in source.prefix_advertisements.iter().enumerate() {
        let cidr = adv.cidr.0.trunc();
        for (j, name) in adv.communities.iter().enumerate() {
            let value = names
                .iter()
                .find(|c| c.name == *name)
                .map_or(name.as_str(), |c| c.value.as_str());
            let parsed = parse_community(value).map_err(|problem| {
                AgentError::invalid(
                    &resource,
                    format!("spec.prefixAdvertisements[{i}].communities[{j}]"),
                    problem,
                )
            })?;
            for a in out.iter_mut().filter(|a| cidr.contains(&a.prefix)) {
                match parsed {
                    Community::Standard(c) if !a.communities.contains(&c) => a.communities.push(c),
                    Community::Large(c) if !a.large_communities.contains(&c) => {
                        a.large_communities.push(c)
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Community {
    Standard(u32),
    Large(LargeCommunity),
}

/// `aa:nn` (RFC 1997, 16-bit parts) or `aa:nn:mm` (RFC 8092, 32-bit parts).
fn parse_community(text: &str) -> Result<Community, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let bad = || format!("{text:?} is neither a community name nor aa:nn / aa:nn:mm");
    match parts.as_slice() {
        [a, n] => {
            let a: u16 = a.parse().map_err(|_| bad())?;
            let n: u16 = n.parse().map_err(|_| bad())?;
            Ok(Community::Standard((u32::from(a) << 16) | u32::from(n)))
        }
        [a, n, m] => Ok(Community::Large(LargeCommunity {
            global: a.parse().map_err(|_| bad())?,
            local1: n.parse().map_err(|_| bad())?,
            local2: m.parse().map_err(|_| bad())?,
        })),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Communities: arbitrary text is parsed or refused without panicking; both forms
        /// round-trip.
        #[test]
        fn communities_parse_or_refuse(text in ".{0,24}", a in any::<u16>(), n in any::<u16>(), l in any::<[u32; 3]>()) {
            let _ = parse_community(&text);
            prop_assert_eq!(
                parse_community(&format!("{a}:{n}")),
                Ok(Community::Standard((u32::from(a) << 16) | u32::from(n)))
            );
            prop_assert_eq!(
                parse_community(&format!("{}:{}:{}", l[0], l[1], l[2])),
                Ok(Community::Large(LargeCommunity { global: l[0], local1: l[1], local2: l[2] }))
            );
        }
    }

    #[test]
    fn prefixes_convert_both_ways() {
        for text in ["198.19.0.64/26", "0.0.0.0/0", "2001:db8:1::40/122", "::/0"] {
            let net: IpNet = text.parse().unwrap();
            assert_eq!(from_wire(to_wire(net)), net);
            assert_eq!(to_wire(net).to_string(), text);
        }
    }
}

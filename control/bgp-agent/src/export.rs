//! The export policy every session gets: Calico's BIRD export filter.
//!
//! Calico's confd templates give every BGP session (mesh, global and node-specific peers)
//! `export filter calico_export_to_bgp_peers` (`bird.cfg.template`, `template bgp
//! bgp_template`), defined in `bird_ipam.cfg.template`: `reject_disabled_pools()` first (a
//! pool with `disableBGPExport` is never exported), then `calico_aggr()` (the node's own
//! blocks whole), static routes (service CIDRs), then `if ( net ~ <pool> ) accept` for every
//! other pool, and `reject` for everything else. So a route a ToR sends that lies outside
//! the pools never leaves the node; iBGP's own rule keeps mesh-learned routes off the mesh,
//! and a route reflector reflects pool routes (RFC 4456).
//!
//! Differences, on purpose:
//! - routes learned over eBGP are never re-advertised (to the mesh or to another eBGP
//!   peer), even inside a pool: the fabric, not a node, carries routes between routers;
//! - the node's own advertisements (blocks, borrowed addresses, service CIDRs) are
//!   accepted by source. `calico_aggr`'s other half, rejecting what lies inside one of the
//!   node's own blocks, is kept for routes learned from peers (another node's /32 borrowed
//!   from this node's block is not passed on by this node). A block change thus changes
//!   the export policy of every session, which the speaker applies in place (only the
//!   differences are sent, no session resets).

use crate::plan::PoolRule;
use ipnet::IpNet;
use tortie_bgp::{PolicyAction, PolicyRule, PrefixMatch, RoutePolicy, SourceMatch};

/// Calico's export filter for a cluster with these pools, on a node with these affine
/// blocks (rules listed in the module doc).
pub(crate) fn calico_export(pools: &[PoolRule], own_blocks: &[IpNet]) -> RoutePolicy {
    let mut rules = vec![PolicyRule {
        source: Some(SourceMatch::EbgpPeers),
        ..PolicyRule::any(PolicyAction::Reject)
    }];
    rules.extend(pools.iter().filter(|p| p.export_disabled).map(|p| {
        PolicyRule::prefix(
            PrefixMatch::In(crate::advertise::to_wire(p.cidr)),
            PolicyAction::Reject,
        )
    }));
    rules.push(PolicyRule {
        source: Some(SourceMatch::Local),
        ..PolicyRule::any(PolicyAction::Accept)
    });
    rules.extend(own_blocks.iter().map(|b| PolicyRule {
        prefix: Some(PrefixMatch::In(crate::advertise::to_wire(*b))),
        source: Some(SourceMatch::Peers),
        ..PolicyRule::any(PolicyAction::Reject)
    }));
    rules.extend(pools.iter().filter(|p| !p.export_disabled).map(|p| {
        PolicyRule::prefix(
            PrefixMatch::In(crate::advertise::to_wire(p.cidr)),
            PolicyAction::Accept,
        )
    }));
    RoutePolicy {
        rules,
        default: PolicyAction::Reject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tortie_abi::IpipMode;
    use tortie_bgp::RouteSource;
    use tortie_bgp::wire::Prefix;

    fn p(s: &str) -> Prefix {
        crate::advertise::to_wire(s.parse().unwrap())
    }

    #[test]
    fn follows_calicos_bird_filter() {
        let pools = [
            PoolRule {
                cidr: "198.18.0.0/16".parse().unwrap(),
                ipip: IpipMode::Never,
                export_disabled: false,
            },
            PoolRule {
                cidr: "198.19.128.0/17".parse().unwrap(),
                ipip: IpipMode::Never,
                export_disabled: true,
            },
        ];
        let pol = calico_export(&pools, &["198.18.1.0/26".parse().unwrap()]);
        let (local, ibgp, ebgp) = (RouteSource::Local, RouteSource::Ibgp, RouteSource::Ebgp);
        assert!(pol.accepts(&p("198.18.1.0/26"), local), "own block");
        assert!(pol.accepts(&p("198.19.0.0/24"), local), "service CIDR");
        assert!(
            pol.accepts(&p("198.18.2.0/26"), ibgp),
            "pool route (reflection, to ToR)"
        );
        assert!(!pol.accepts(&p("198.19.1.0/24"), ibgp), "outside the pools");
        assert!(
            !pol.accepts(&p("198.18.3.0/26"), ebgp),
            "ToR routes stay here"
        );
        assert!(!pol.accepts(&p("198.19.200.0/24"), ebgp));
        assert!(
            !pol.accepts(&p("198.19.130.0/26"), local),
            "disableBGPExport pool"
        );
        assert!(!pol.accepts(&p("198.19.130.0/26"), ibgp));
        assert!(!pol.accepts(&p("2001:db8::/64"), ibgp));
        // calico_aggr: inside an own block only our own route goes out.
        assert!(pol.accepts(&p("198.18.1.0/26"), local));
        assert!(
            !pol.accepts(&p("198.18.1.9/32"), ibgp),
            "borrowed from our block"
        );
        assert!(
            pol.accepts(&p("198.18.2.9/32"), ibgp),
            "borrowed from another block"
        );
    }
}

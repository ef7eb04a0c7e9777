//! Calico's `BGPFilter` resource, attached to sessions by `BGPPeer.spec.filters`.
//!
//! Each filter has rule lists per direction and family (`exportV4`, `importV4`, `exportV6`,
//! `importV6`); a peer's filters are evaluated in the order the BGPPeer lists them, rules
//! in order, first match wins (as confd renders them into the BIRD peer's import and export
//! filters, before Calico's own export filter). A route no rule matches is imported, and
//! exported only if Calico's export filter ([`crate::export`]) lets it through.
//!
//! `source: RemotePeers` matches routes learned from any BGP peer. `interface` rules match
//! routes of kernel interfaces, which this speaker never imports or exports, so such a rule
//! never matches: it is left out, with a warning.

use crate::input::ClusterView;
use crate::plan::PlannedPeer;
use tortie_bgp::wire::Family;
use tortie_bgp::{PolicyAction, PolicyRule, PrefixMatch, SourceMatch};
use tortie_model::types::{
    BgpFilterAction, BgpFilterMatchOperator, BgpFilterMatchSource, BgpFilterRule,
};

/// Puts the BGPFilter rules of every planned peer that came from a BGPPeer with `filters`
/// in front of its import and export policies.
pub(crate) fn apply(
    view: &ClusterView<'_>,
    planned: &mut [PlannedPeer],
    warnings: &mut Vec<String>,
) {
    for p in planned.iter_mut() {
        let Some(spec) = p.source.as_deref().and_then(|s| view.peers.get(s)) else {
            continue;
        };
        let peer_name = p.source.clone().unwrap_or_default();
        let (mut import, mut export) = (vec![], vec![]);
        for name in &spec.filters {
            let Some(f) = view.filters.get(name.as_str()) else {
                let w = format!(
                    "BGPPeer {peer_name:?} spec.filters: BGPFilter {name:?} does not exist; ignored"
                );
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
                continue;
            };
            for (rules, family, is_import) in [
                (&f.import_v4, Family::Ipv4Unicast, true),
                (&f.import_v6, Family::Ipv6Unicast, true),
                (&f.export_v4, Family::Ipv4Unicast, false),
                (&f.export_v6, Family::Ipv6Unicast, false),
            ] {
                for rule in rules {
                    match translate(rule, family) {
                        Some(r) if is_import => import.push(r),
                        Some(r) => export.push(r),
                        None => {
                            let w = format!(
                                "BGPFilter {name:?}: a rule on interface {:?} matches kernel routes, which are never exported; ignored",
                                rule.interface
                            );
                            if !warnings.contains(&w) {
                                warnings.push(w);
                            }
                        }
                    }
                }
            }
        }
        p.config.import_policy.rules.splice(0..0, import);
        p.config.export_policy.rules.splice(0..0, export);
    }
}

/// One BGPFilter rule as a speaker policy rule for `family`; `None` for interface rules.
fn translate(rule: &BgpFilterRule, family: Family) -> Option<PolicyRule> {
    if !rule.interface.is_empty() {
        return None;
    }
    let prefix = rule.cidr.as_ref().zip(rule.match_operator).map(|(c, op)| {
        let p = crate::advertise::to_wire(c.0);
        match op {
            BgpFilterMatchOperator::Equal => PrefixMatch::Equal(p),
            BgpFilterMatchOperator::NotEqual => PrefixMatch::NotEqual(p),
            BgpFilterMatchOperator::In => PrefixMatch::In(p),
            BgpFilterMatchOperator::NotIn => PrefixMatch::NotIn(p),
        }
    });
    let max = if family == Family::Ipv4Unicast {
        32
    } else {
        128
    };
    let length = rule
        .prefix_length
        .map(|pl| (pl.min.unwrap_or(0), pl.max.unwrap_or(max)));
    Some(PolicyRule {
        family: Some(family),
        prefix,
        length,
        source: rule.source.map(|s| match s {
            BgpFilterMatchSource::RemotePeers => SourceMatch::Peers,
        }),
        action: match rule.action {
            BgpFilterAction::Accept => PolicyAction::Accept,
            BgpFilterAction::Reject => PolicyAction::Reject,
        },
    })
}

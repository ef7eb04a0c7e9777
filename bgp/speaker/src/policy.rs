//! Per-peer route policy: an ordered list of prefix rules, evaluated first match wins.
//!
//! This is the small policy language the control plane needs to express Calico's BIRD
//! filters (`calico_export_to_bgp_peers`: accept own blocks, pool and service CIDRs, reject
//! the rest) and Calico's `BGPFilter` resource (rules with a CIDR, a match operator, a
//! prefix-length range and a source). Import policy is applied as an UPDATE is installed
//! (a rejected route is treated as withdrawn, so a changed decision also removes what the
//! peer sent before); export policy is applied per peer before the RFC 4271 §9.1.3 /
//! RFC 4456 rules in `speaker/export.rs`.

use tortie_bgp_wire::{Family, Prefix};

/// What a rule does with a matching route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    /// Use the route (import) / send it (export).
    Accept,
    /// Drop it.
    Reject,
}

/// How a rule's CIDR is compared with the route's prefix (Calico's `matchOperator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrefixMatch {
    /// The prefix is exactly the CIDR.
    Equal(Prefix),
    /// The prefix is not exactly the CIDR.
    NotEqual(Prefix),
    /// The prefix lies within the CIDR (the CIDR itself included).
    In(Prefix),
    /// The prefix does not lie within the CIDR.
    NotIn(Prefix),
}

impl PrefixMatch {
    fn matches(&self, p: &Prefix) -> bool {
        match self {
            PrefixMatch::Equal(c) => c == p,
            PrefixMatch::NotEqual(c) => c != p,
            PrefixMatch::In(c) => covers(c, p),
            PrefixMatch::NotIn(c) => !covers(c, p),
        }
    }

    fn family(&self) -> Family {
        match self {
            PrefixMatch::Equal(c)
            | PrefixMatch::NotEqual(c)
            | PrefixMatch::In(c)
            | PrefixMatch::NotIn(c) => c.family(),
        }
    }
}

/// Whether `outer` contains `inner` (same family, shorter or equal length, same leading bits).
pub fn covers(outer: &Prefix, inner: &Prefix) -> bool {
    match (outer, inner) {
        (Prefix::V4(o, ol), Prefix::V4(i, il)) if ol <= il => {
            let mask = if *ol == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(*ol))
            };
            u32::from(*o) & mask == u32::from(*i) & mask
        }
        (Prefix::V6(o, ol), Prefix::V6(i, il)) if ol <= il => {
            let mask = if *ol == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(*ol))
            };
            u128::from(*o) & mask == u128::from(*i) & mask
        }
        _ => false,
    }
}

/// Where a route came from, as rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteSource {
    /// Originated by this speaker.
    Local,
    /// Learned from an iBGP peer.
    Ibgp,
    /// Learned from an eBGP peer.
    Ebgp,
}

/// Which sources a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceMatch {
    /// Routes this speaker originates.
    Local,
    /// Routes learned from any peer (Calico's `source: RemotePeers`).
    Peers,
    /// Routes learned from eBGP peers.
    EbgpPeers,
    /// Routes learned from iBGP peers.
    IbgpPeers,
}

impl SourceMatch {
    fn matches(self, s: RouteSource) -> bool {
        matches!(
            (self, s),
            (SourceMatch::Local, RouteSource::Local)
                | (SourceMatch::Peers, RouteSource::Ibgp | RouteSource::Ebgp)
                | (SourceMatch::EbgpPeers, RouteSource::Ebgp)
                | (SourceMatch::IbgpPeers, RouteSource::Ibgp)
        )
    }
}

/// One rule: every condition that is set must hold for the action to apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyRule {
    /// Only routes of this family (also implied by `prefix`).
    pub family: Option<Family>,
    /// Prefix condition.
    pub prefix: Option<PrefixMatch>,
    /// Prefix length range, both ends included.
    pub length: Option<(u8, u8)>,
    /// Source condition.
    pub source: Option<SourceMatch>,
    /// What to do when the conditions hold.
    pub action: PolicyAction,
}

impl PolicyRule {
    /// A rule with no condition (matches everything).
    pub fn any(action: PolicyAction) -> Self {
        PolicyRule {
            family: None,
            prefix: None,
            length: None,
            source: None,
            action,
        }
    }

    /// A rule on a prefix alone.
    pub fn prefix(m: PrefixMatch, action: PolicyAction) -> Self {
        PolicyRule {
            prefix: Some(m),
            ..PolicyRule::any(action)
        }
    }

    fn matches(&self, p: &Prefix, s: RouteSource) -> bool {
        // A prefix condition only ever concerns its own family: an IPv4 rule never decides
        // an IPv6 route (BGPFilter keeps separate v4 and v6 rule lists).
        let family = self.family.or(self.prefix.map(|m| m.family()));
        family.is_none_or(|f| f == p.family())
            && self.prefix.is_none_or(|m| m.matches(p))
            && self
                .length
                .is_none_or(|(lo, hi)| (lo..=hi).contains(&p.prefix_len()))
            && self.source.is_none_or(|m| m.matches(s))
    }
}

/// An ordered rule list and the action when no rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutePolicy {
    /// Rules, first match wins.
    pub rules: Vec<PolicyRule>,
    /// Action when no rule matches.
    pub default: PolicyAction,
}

impl Default for RoutePolicy {
    fn default() -> Self {
        RoutePolicy::accept_all()
    }
}

impl RoutePolicy {
    /// No rules; everything accepted (plain RFC 4271 behaviour).
    pub fn accept_all() -> Self {
        RoutePolicy {
            rules: vec![],
            default: PolicyAction::Accept,
        }
    }

    /// True when the policy accepts everything without looking.
    pub fn is_accept_all(&self) -> bool {
        self.rules.is_empty() && self.default == PolicyAction::Accept
    }

    /// The decision for a route.
    pub fn evaluate(&self, prefix: &Prefix, source: RouteSource) -> PolicyAction {
        self.rules
            .iter()
            .find(|r| r.matches(prefix, source))
            .map_or(self.default, |r| r.action)
    }

    /// Shorthand for `evaluate(..) == Accept`.
    pub fn accepts(&self, prefix: &Prefix, source: RouteSource) -> bool {
        self.evaluate(prefix, source) == PolicyAction::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PolicyAction::{Accept, Reject};

    fn p(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
    }

    #[test]
    fn covers_checks_family_length_and_bits() {
        assert!(covers(&p("198.18.0.0/16"), &p("198.18.3.0/26")));
        assert!(covers(&p("198.18.0.0/16"), &p("198.18.0.0/16")));
        assert!(!covers(&p("198.18.0.0/16"), &p("198.19.0.0/26")));
        assert!(!covers(&p("198.18.0.0/26"), &p("198.18.0.0/16")));
        assert!(covers(&p("0.0.0.0/0"), &p("198.19.0.0/26")));
        assert!(!covers(&p("0.0.0.0/0"), &p("2001:db8::/64")));
        assert!(covers(&p("2001:db8::/32"), &p("2001:db8:1::/64")));
        assert!(!covers(&p("2001:db8::/32"), &p("2001:db9::/64")));
    }

    #[test]
    fn operators() {
        let c = p("198.18.0.0/16");
        let (eq, inside, out) = (p("198.18.0.0/16"), p("198.18.1.0/24"), p("198.19.0.0/24"));
        assert!(PrefixMatch::Equal(c).matches(&eq) && !PrefixMatch::Equal(c).matches(&inside));
        assert!(
            PrefixMatch::NotEqual(c).matches(&inside) && !PrefixMatch::NotEqual(c).matches(&eq)
        );
        assert!(PrefixMatch::In(c).matches(&inside) && PrefixMatch::In(c).matches(&eq));
        assert!(!PrefixMatch::In(c).matches(&out));
        assert!(PrefixMatch::NotIn(c).matches(&out) && !PrefixMatch::NotIn(c).matches(&inside));
    }

    #[test]
    fn first_match_wins_then_default() {
        let pol = RoutePolicy {
            rules: vec![
                PolicyRule::prefix(PrefixMatch::Equal(p("198.18.1.0/26")), Accept),
                PolicyRule::prefix(PrefixMatch::In(p("198.18.1.0/26")), Reject),
                PolicyRule::prefix(PrefixMatch::In(p("198.18.0.0/16")), Accept),
            ],
            default: Reject,
        };
        let local = RouteSource::Local;
        assert!(pol.accepts(&p("198.18.1.0/26"), local));
        assert!(
            !pol.accepts(&p("198.18.1.5/32"), local),
            "more specific of an own block"
        );
        assert!(pol.accepts(&p("198.18.9.0/26"), local));
        assert!(!pol.accepts(&p("203.0.113.0/24"), local));
        assert!(!pol.accepts(&p("2001:db8::/64"), local));
    }

    #[test]
    fn length_and_source_conditions() {
        let pol = RoutePolicy {
            rules: vec![
                PolicyRule {
                    source: Some(SourceMatch::EbgpPeers),
                    ..PolicyRule::any(Reject)
                },
                PolicyRule {
                    prefix: Some(PrefixMatch::In(p("198.18.0.0/15"))),
                    length: Some((24, 26)),
                    ..PolicyRule::any(Accept)
                },
            ],
            default: Reject,
        };
        assert!(!pol.accepts(&p("198.18.1.0/24"), RouteSource::Ebgp));
        assert!(pol.accepts(&p("198.18.1.0/24"), RouteSource::Ibgp));
        assert!(pol.accepts(&p("198.18.1.0/26"), RouteSource::Local));
        assert!(!pol.accepts(&p("198.18.1.0/27"), RouteSource::Local));
        assert!(!pol.accepts(&p("198.18.0.0/16"), RouteSource::Local));
        assert!(SourceMatch::Peers.matches(RouteSource::Ibgp));
        assert!(!SourceMatch::Peers.matches(RouteSource::Local));
        assert!(SourceMatch::IbgpPeers.matches(RouteSource::Ibgp));
    }

    #[test]
    fn a_v4_rule_never_decides_a_v6_route() {
        let pol = RoutePolicy {
            rules: vec![PolicyRule::prefix(
                PrefixMatch::NotIn(p("198.18.0.0/16")),
                Reject,
            )],
            default: Accept,
        };
        assert!(pol.accepts(&p("2001:db8::/64"), RouteSource::Local));
        assert!(!pol.accepts(&p("203.0.113.0/24"), RouteSource::Local));
        assert!(RoutePolicy::default().is_accept_all());
    }
}

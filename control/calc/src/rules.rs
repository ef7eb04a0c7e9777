//! Rules in the form the graph keeps, emits and evaluates: selectors replaced by IP sets,
//! ports by ranges and named-port sets, protocols by numbers.
//!
//! Scoping follows Calico's rule conversion: in a namespaced policy a rule selector (or a
//! `notSelector`, or service-account match) without a `namespaceSelector` sees only the
//! policy's namespace (`projectcalico.org/namespace == '<ns>'` is ANDed in); a
//! `namespaceSelector` is evaluated over `pcns.`-prefixed namespace labels, and `global()`
//! there means "not namespaced" (`!has(projectcalico.org/namespace)`). `notSelector` itself is
//! not scoped: it excludes matching endpoints anywhere.

use crate::ids::IpSetId;
use ipnet::IpNet;
use serde::Serialize;
use std::sync::Arc;
use tortie_model::types::{Action, EntityRule, IcmpFields, Port, Protocol, Rule};
use tortie_selector::Selector;

/// Label every namespaced endpoint and network set carries with its namespace.
pub const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";
/// Label carrying a namespace's or service account's name.
pub const NAME_LABEL: &str = "projectcalico.org/name";
/// Prefix of namespace labels as endpoints inherit them.
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
/// Prefix of service-account labels as endpoints inherit them.
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";

/// An ICMP type (and optional code) match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct IcmpMatch {
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code, if the rule names one.
    pub code: Option<u8>,
}

/// One side (source or destination) of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct PeerMatch {
    /// The address must be in one of these (empty: no constraint).
    pub nets: Vec<IpNet>,
    /// The address must be in none of these.
    pub not_nets: Vec<IpNet>,
    /// The address must be a member of this selector IP set.
    pub set: Option<IpSetId>,
    /// The address must not be a member of this selector IP set.
    pub not_set: Option<IpSetId>,
    /// The port must be in one of these ranges or named-port sets (both empty: no constraint).
    pub ports: Vec<(u16, u16)>,
    /// Named-port sets of `ports`.
    pub named_ports: Vec<IpSetId>,
    /// The port must be in none of these ranges ...
    pub not_ports: Vec<(u16, u16)>,
    /// ... nor in these named-port sets.
    pub not_named_ports: Vec<IpSetId>,
}

/// A rule ready to evaluate or to hand to the fastpath compiler.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CompiledRule {
    /// What a match does.
    pub action: Action,
    /// 4 or 6 when the rule is restricted to one family.
    pub ip_version: Option<u8>,
    /// IP protocol number.
    pub protocol: Option<u8>,
    /// Excluded IP protocol number.
    pub not_protocol: Option<u8>,
    /// ICMP type/code match.
    pub icmp: Option<IcmpMatch>,
    /// Excluded ICMP type/code.
    pub not_icmp: Option<IcmpMatch>,
    /// Source constraints.
    pub src: PeerMatch,
    /// Destination constraints.
    pub dst: PeerMatch,
    /// Set when the rule can never match here: it references Kubernetes Services, which the
    /// datastore does not hold (so there are no service endpoints to match).
    pub never_matches: bool,
}

/// An IP set a rule needs: a selector, and for a named-port set the port name and the
/// protocol the rule restricts it to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpSetSpec {
    /// Whose addresses.
    pub selector: Selector,
    /// `(port name, protocol)` for a named-port set.
    pub named_port: Option<(Arc<str>, Option<u8>)>,
}

impl IpSetSpec {
    /// The set's id, derived from its content so equal specs share one set.
    pub fn id(&self) -> IpSetId {
        match &self.named_port {
            None => IpSetId(Arc::from(self.selector.unique_id())),
            Some((name, protocol)) => {
                let proto = protocol.map_or_else(|| "any".to_string(), |p| p.to_string());
                IpSetId(Arc::from(format!(
                    "n:{proto}:{name}:{}",
                    self.selector.unique_id()
                )))
            }
        }
    }
}

/// Where a policy or profile lives, which decides how rule selectors are scoped.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// A namespaced policy in this namespace.
    Namespace(&'a str),
    /// A global policy or a profile.
    Global,
}

/// Compiles one rule, collecting the IP sets it needs into `sets`.
pub(crate) fn compile_rule(
    rule: &Rule,
    scope: Scope<'_>,
    sets: &mut Vec<IpSetSpec>,
) -> CompiledRule {
    let protocol = rule.protocol.map(Protocol::number);
    let never_matches = rule.source.services.is_some() || rule.destination.services.is_some();
    CompiledRule {
        action: rule.action,
        ip_version: rule.ip_version.map(|v| v.number()),
        protocol,
        not_protocol: rule.not_protocol.map(Protocol::number),
        icmp: rule.icmp.as_ref().and_then(icmp_match),
        not_icmp: rule.not_icmp.as_ref().and_then(icmp_match),
        src: compile_peer(&rule.source, scope, protocol, sets),
        dst: compile_peer(&rule.destination, scope, protocol, sets),
        never_matches,
    }
}

fn icmp_match(fields: &IcmpFields) -> Option<IcmpMatch> {
    let icmp_type = u8::try_from(fields.icmp_type?).ok()?;
    Some(IcmpMatch {
        icmp_type,
        code: fields.code.and_then(|c| u8::try_from(c).ok()),
    })
}

/// A selector that cannot parse matches nothing (validation rejects such resources; this is
/// the safe reading if one arrives anyway).
pub(crate) fn parse_or_nothing(text: &str) -> Selector {
    Selector::parse(text).unwrap_or_else(|_| {
        Selector::parse(
            "has(projectcalico.org/invalid-selector) && !has(projectcalico.org/invalid-selector)",
        )
        .unwrap_or_default()
    })
}

/// `namespaceSelector` as endpoints see it: `pcns.`-prefixed, or "not namespaced" for
/// `global()`.
pub(crate) fn namespace_selector(text: &str) -> Selector {
    let parsed = parse_or_nothing(text);
    if parsed.uses_global() {
        parse_or_nothing(&format!("!has({NAMESPACE_LABEL})"))
    } else {
        parsed.with_prefix(NAMESPACE_LABEL_PREFIX)
    }
}

/// `projectcalico.org/namespace == '<ns>'`.
pub(crate) fn in_namespace(namespace: &str) -> Selector {
    parse_or_nothing(&format!("{NAMESPACE_LABEL} == \"{namespace}\""))
}

fn and_all(parts: Vec<Selector>) -> Selector {
    let mut iter = parts.into_iter();
    let Some(first) = iter.next() else {
        return Selector::all();
    };
    iter.fold(first, |acc, next| acc.and(&next))
}

/// The positive selector of an entity, scoped as Calico scopes it; `None` when the entity
/// has no selector-like criteria.
fn entity_selector(entity: &EntityRule, scope: Scope<'_>) -> Option<Selector> {
    let service_accounts = entity.service_accounts.as_ref();
    let has_any = !entity.selector.is_empty()
        || !entity.not_selector.is_empty()
        || !entity.namespace_selector.is_empty()
        || service_accounts.is_some();
    if !has_any {
        return None;
    }
    let mut parts = Vec::new();
    if !entity.namespace_selector.is_empty() {
        parts.push(namespace_selector(&entity.namespace_selector));
    } else if let Scope::Namespace(ns) = scope {
        parts.push(in_namespace(ns));
    }
    if !entity.selector.is_empty() {
        parts.push(parse_or_nothing(&entity.selector));
    }
    if let Some(sa) = service_accounts {
        if !sa.names.is_empty() {
            let names: Vec<String> = sa.names.iter().map(|n| format!("\"{n}\"")).collect();
            parts.push(parse_or_nothing(&format!(
                "{SERVICE_ACCOUNT_LABEL_PREFIX}{NAME_LABEL} in {{{}}}",
                names.join(", ")
            )));
        }
        if !sa.selector.is_empty() {
            parts.push(parse_or_nothing(&sa.selector).with_prefix(SERVICE_ACCOUNT_LABEL_PREFIX));
        }
    }
    if parts.is_empty() {
        // Only a notSelector in a global rule: any address that is not excluded.
        return None;
    }
    Some(and_all(parts))
}

fn compile_peer(
    entity: &EntityRule,
    scope: Scope<'_>,
    protocol: Option<u8>,
    sets: &mut Vec<IpSetSpec>,
) -> PeerMatch {
    let mut peer = PeerMatch {
        nets: entity.nets.iter().map(|c| c.network()).collect(),
        not_nets: entity.not_nets.iter().map(|c| c.network()).collect(),
        ..PeerMatch::default()
    };
    let selector = entity_selector(entity, scope);
    if let Some(sel) = &selector {
        let spec = IpSetSpec {
            selector: sel.clone(),
            named_port: None,
        };
        peer.set = Some(spec.id());
        sets.push(spec);
    }
    if !entity.not_selector.is_empty() {
        let spec = IpSetSpec {
            selector: parse_or_nothing(&entity.not_selector),
            named_port: None,
        };
        peer.not_set = Some(spec.id());
        sets.push(spec);
    }
    // Named ports resolve over the entity's selector, or every endpoint in scope.
    let port_selector = || {
        selector.clone().unwrap_or_else(|| match scope {
            Scope::Namespace(ns) => in_namespace(ns),
            Scope::Global => Selector::all(),
        })
    };
    for (ports, ranges, named) in [
        (&entity.ports, &mut peer.ports, &mut peer.named_ports),
        (
            &entity.not_ports,
            &mut peer.not_ports,
            &mut peer.not_named_ports,
        ),
    ] {
        for port in ports {
            match port {
                Port::Named(name) => {
                    let spec = IpSetSpec {
                        selector: port_selector(),
                        named_port: Some((Arc::from(name.as_str()), protocol)),
                    };
                    named.push(spec.id());
                    sets.push(spec);
                }
                numeric => {
                    if let Some(bounds) = numeric.bounds() {
                        ranges.push(bounds);
                    }
                }
            }
        }
    }
    peer
}

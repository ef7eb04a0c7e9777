//! Validation of policies, tiers, profiles and their rules (Calico's rule, entity-rule and
//! policy validators, and the CRD rules that replaced some of them).

use super::names::{
    Global, check_annotations, check_dns_label, check_dns_subdomain, check_labels, check_port_name,
    check_selector, fail,
};
use crate::error::{FieldPath, Result};
use crate::types::*;
use std::collections::HashSet;

/// Most rules a policy direction may hold.
const MAX_RULES: usize = 1024;
/// Most networks in one `nets`/`notNets`.
const MAX_NETS: usize = 256;
/// Most entries in one `ports`/`notPorts`.
const MAX_PORTS: usize = 50;

/// Where a rule sits, which decides what it may contain.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Ingress,
    Egress,
}

/// What owns the rules.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    NetworkPolicy,
    GlobalNetworkPolicy,
    Profile,
}

pub(crate) fn check_rules(
    path: &FieldPath,
    rules: &[Rule],
    direction: Direction,
    owner: Owner,
) -> Result<()> {
    if rules.len() > MAX_RULES {
        return fail(
            path,
            format!("{} rules, more than the {MAX_RULES} allowed", rules.len()),
        );
    }
    for (i, rule) in rules.iter().enumerate() {
        check_rule(&path.index(i), rule, direction, owner)?;
    }
    Ok(())
}

fn check_rule(path: &FieldPath, rule: &Rule, direction: Direction, owner: Owner) -> Result<()> {
    check_entity(&path.field("source"), &rule.source)?;
    check_entity(&path.field("destination"), &rule.destination)?;
    check_ports_need_protocol(path, rule)?;
    check_icmp(path, rule)?;
    check_rule_nets(path, rule)?;
    check_services_placement(path, rule, direction, owner)?;
    if let Some(http) = &rule.http {
        check_http(&path.field("http"), rule, http, direction)?;
    }
    if let Some(metadata) = &rule.metadata {
        check_annotations(
            &path.field("metadata").field("annotations"),
            &metadata.annotations,
        )?;
    }
    Ok(())
}

fn check_entity(path: &FieldPath, entity: &EntityRule) -> Result<()> {
    check_selector(&path.field("selector"), &entity.selector, Global::Forbidden)?;
    check_selector(
        &path.field("notSelector"),
        &entity.not_selector,
        Global::Forbidden,
    )?;
    check_selector(
        &path.field("namespaceSelector"),
        &entity.namespace_selector,
        Global::AloneOnly,
    )?;
    for (field, nets) in [("nets", &entity.nets), ("notNets", &entity.not_nets)] {
        if nets.len() > MAX_NETS {
            return fail(
                &path.field(field),
                format!("{} networks, more than the {MAX_NETS} allowed", nets.len()),
            );
        }
    }
    for (i, net) in entity.not_nets.iter().enumerate() {
        if net.prefix_len() == 0 {
            return fail(
                &path.field("notNets").index(i),
                format!("notNets {net} excludes every address, so the rule could never match"),
            );
        }
    }
    for (field, ports) in [("ports", &entity.ports), ("notPorts", &entity.not_ports)] {
        if ports.len() > MAX_PORTS {
            return fail(
                &path.field(field),
                format!("{} ports, more than the {MAX_PORTS} allowed", ports.len()),
            );
        }
        for (i, port) in ports.iter().enumerate() {
            if let Port::Named(name) = port {
                check_port_name(&path.field(field).index(i), name)?;
            }
        }
    }
    if let Some(accounts) = &entity.service_accounts {
        let accounts_path = path.field("serviceAccounts");
        for (i, name) in accounts.names.iter().enumerate() {
            check_dns_subdomain(
                &accounts_path.field("names").index(i),
                name,
                "service account name",
            )?;
        }
        check_selector(
            &accounts_path.field("selector"),
            &accounts.selector,
            Global::Forbidden,
        )?;
    }
    if let Some(services) = &entity.services {
        let services_path = path.field("services");
        if services.name.is_empty() {
            return fail(&services_path.field("name"), "services must name a service");
        }
        check_dns_subdomain(&services_path.field("name"), &services.name, "service name")?;
        if !services.namespace.is_empty() {
            check_dns_label(
                &services_path.field("namespace"),
                &services.namespace,
                "namespace",
            )?;
        }
        let conflict = if !entity.namespace_selector.is_empty() {
            Some("namespaceSelector")
        } else if !entity.selector.is_empty() || !entity.not_selector.is_empty() {
            Some("selector/notSelector")
        } else if entity.service_accounts.is_some() {
            Some("serviceAccounts")
        } else if !entity.nets.is_empty() || !entity.not_nets.is_empty() {
            Some("nets/notNets")
        } else {
            None
        };
        if let Some(other) = conflict {
            return fail(
                &services_path,
                format!("services cannot be combined with {other} in the same rule"),
            );
        }
    }
    Ok(())
}

/// Numeric ports need a protocol with ports; named ports carry their own protocol.
fn check_ports_need_protocol(path: &FieldPath, rule: &Rule) -> Result<()> {
    let protocol_has_ports = rule.protocol.is_some_and(Protocol::supports_ports);
    for side in ["source", "destination"] {
        let entity = if side == "source" {
            &rule.source
        } else {
            &rule.destination
        };
        for (field, ports) in [("ports", &entity.ports), ("notPorts", &entity.not_ports)] {
            let numeric = ports.iter().any(|p| p.bounds().is_some());
            let any = !ports.is_empty();
            let protocol_without_ports = rule.protocol.is_some() && !protocol_has_ports;
            if (numeric && !protocol_has_ports) || (any && protocol_without_ports) {
                return fail(
                    &path.field(side).field(field),
                    "rules that specify ports must set protocol to TCP, UDP or SCTP",
                );
            }
        }
    }
    Ok(())
}

fn check_icmp(path: &FieldPath, rule: &Rule) -> Result<()> {
    for (field, icmp) in [("icmp", &rule.icmp), ("notICMP", &rule.not_icmp)] {
        let Some(icmp) = icmp else { continue };
        let icmp_path = path.field(field);
        if !rule.protocol.is_some_and(|p| p.is_icmp() || p.is_icmpv6()) {
            return fail(&icmp_path, "ICMP fields require protocol ICMP or ICMPv6");
        }
        if let Some(t) = icmp.icmp_type
            && t > 254
        {
            return fail(
                &icmp_path.field("type"),
                format!("ICMP type {t} out of range (0-254)"),
            );
        }
        if let Some(code) = icmp.code {
            if code > 255 {
                return fail(
                    &icmp_path.field("code"),
                    format!("ICMP code {code} out of range (0-255)"),
                );
            }
            if icmp.icmp_type.is_none() {
                return fail(
                    &icmp_path.field("code"),
                    "ICMP code specified without an ICMP type",
                );
            }
        }
    }
    for (field, protocol) in [
        ("protocol", rule.protocol),
        ("notProtocol", rule.not_protocol),
    ] {
        let Some(protocol) = protocol else { continue };
        match (rule.ip_version, protocol.is_icmp(), protocol.is_icmpv6()) {
            (Some(IpVersion::V6), true, _) => {
                return fail(&path.field(field), "protocol ICMP requires ipVersion 4");
            }
            (Some(IpVersion::V4), _, true) => {
                return fail(&path.field(field), "protocol ICMPv6 requires ipVersion 6");
            }
            _ => {}
        }
    }
    Ok(())
}

/// All networks of a rule are of one family, and that family agrees with `ipVersion`.
fn check_rule_nets(path: &FieldPath, rule: &Rule) -> Result<()> {
    let mut family: Option<IpVersion> = rule.ip_version;
    let family_from_rule = rule.ip_version.is_some();
    for (side, entity) in [("source", &rule.source), ("destination", &rule.destination)] {
        for (field, nets) in [("nets", &entity.nets), ("notNets", &entity.not_nets)] {
            for (i, net) in nets.iter().enumerate() {
                let version = net.version();
                match family {
                    None => family = Some(version),
                    Some(f) if f == version => {}
                    Some(_) => {
                        let message = if family_from_rule {
                            format!("network {net} does not match the rule's ipVersion")
                        } else {
                            "rule contains both IPv4 and IPv6 networks".to_string()
                        };
                        return fail(&path.field(side).field(field).index(i), message);
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_services_placement(
    path: &FieldPath,
    rule: &Rule,
    direction: Direction,
    owner: Owner,
) -> Result<()> {
    if direction == Direction::Egress && rule.source.services.is_some() {
        return fail(
            &path.field("source").field("services"),
            "services are not allowed in an egress rule's source",
        );
    }
    if direction == Direction::Ingress && rule.destination.services.is_some() {
        return fail(
            &path.field("destination").field("services"),
            "services are not allowed in an ingress rule's destination",
        );
    }
    if rule.destination.services.is_some()
        && (!rule.destination.ports.is_empty() || !rule.destination.not_ports.is_empty())
    {
        return fail(
            &path.field("destination").field("ports"),
            "ports cannot be specified with destination services (the service's ports are used)",
        );
    }
    if owner == Owner::GlobalNetworkPolicy {
        for (side, entity) in [("source", &rule.source), ("destination", &rule.destination)] {
            if entity
                .services
                .as_ref()
                .is_some_and(|s| s.namespace.is_empty())
            {
                return fail(
                    &path.field(side).field("services").field("namespace"),
                    "services in a GlobalNetworkPolicy must name a namespace",
                );
            }
        }
    }
    Ok(())
}

fn check_http(path: &FieldPath, rule: &Rule, http: &HttpMatch, direction: Direction) -> Result<()> {
    if rule.action != Action::Allow {
        return fail(path, "HTTP match is only valid on Allow rules");
    }
    if rule.protocol.is_some_and(|p| p.number() != 6) {
        return fail(
            path,
            "rules with an HTTP match must have protocol TCP or none",
        );
    }
    if direction == Direction::Egress {
        return fail(path, "HTTP match is not allowed in egress rules");
    }
    if http.methods.len() > 20 || http.paths.len() > 20 {
        return fail(path, "at most 20 methods and 20 paths");
    }
    for (i, p) in http.paths.iter().enumerate() {
        if p.exact.is_empty() == p.prefix.is_empty() {
            return fail(
                &path.field("paths").index(i),
                "each path must set exactly one of exact and prefix",
            );
        }
    }
    Ok(())
}

pub(crate) fn check_types(path: &FieldPath, types: &[PolicyType]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, t) in types.iter().enumerate() {
        if !seen.insert(*t) {
            return fail(
                &path.index(i),
                format!("{t:?} type specified more than once"),
            );
        }
    }
    Ok(())
}

fn check_hints(path: &FieldPath, hints: &[PerformanceHint]) -> Result<()> {
    if hints.len() > 1 {
        return fail(&path.index(1), "performance hint specified more than once");
    }
    Ok(())
}

/// Policy names: a DNS label, optionally prefixed by the policy's tier (`<tier>.<name>`; the
/// prefix is required outside the `default` tier). NetworkPolicies may also carry the names of
/// converted Kubernetes policies (`knp.default.<name>`, `ossg.default.<name>`).
pub(crate) fn check_policy_name(
    path: &FieldPath,
    name: &str,
    tier: &str,
    namespaced: bool,
) -> Result<()> {
    let tier = if tier.is_empty() { "default" } else { tier };
    if name.len() > 253 {
        return fail(
            path,
            format!("name is {} characters, more than 253", name.len()),
        );
    }
    if namespaced {
        for converted in ["knp.default.", "ossg.default."] {
            if let Some(rest) = name.strip_prefix(converted) {
                return check_dns_subdomain(path, rest, "policy name").map_err(|_| {
                    crate::ModelError::invalid(path, format!("invalid policy name {name:?}"))
                });
            }
        }
    }
    let prefix = format!("{tier}.");
    let base = match name.strip_prefix(&prefix) {
        Some(rest) => rest,
        None if tier != "default" => {
            return fail(
                path,
                format!(
                    "policy {name:?} is in tier {tier:?}, so its name must start with {prefix:?}"
                ),
            );
        }
        None => name,
    };
    if base.contains('.') {
        let (given, _) = base.split_once('.').unwrap_or((base, ""));
        return fail(
            path,
            format!(
                "policy name {name:?} has prefix {given:?}, which is not its tier {tier:?} (names are <name> or <tier>.<name>)"
            ),
        );
    }
    check_dns_label(path, base, "policy name")
}

pub(crate) fn check_network_policy(spec_path: &FieldPath, spec: &NetworkPolicySpec) -> Result<()> {
    if !spec.tier.is_empty() {
        check_dns_label(&spec_path.field("tier"), &spec.tier, "tier name")?;
    }
    check_selector(
        &spec_path.field("selector"),
        &spec.selector,
        Global::Forbidden,
    )?;
    check_selector(
        &spec_path.field("serviceAccountSelector"),
        &spec.service_account_selector,
        Global::Forbidden,
    )?;
    check_types(&spec_path.field("types"), &spec.types)?;
    check_hints(
        &spec_path.field("performanceHints"),
        &spec.performance_hints,
    )?;
    check_rules(
        &spec_path.field("ingress"),
        &spec.ingress,
        Direction::Ingress,
        Owner::NetworkPolicy,
    )?;
    check_rules(
        &spec_path.field("egress"),
        &spec.egress,
        Direction::Egress,
        Owner::NetworkPolicy,
    )
}

pub(crate) fn check_global_network_policy(
    spec_path: &FieldPath,
    spec: &GlobalNetworkPolicySpec,
) -> Result<()> {
    if !spec.tier.is_empty() {
        check_dns_label(&spec_path.field("tier"), &spec.tier, "tier name")?;
    }
    check_selector(
        &spec_path.field("selector"),
        &spec.selector,
        Global::Forbidden,
    )?;
    check_selector(
        &spec_path.field("serviceAccountSelector"),
        &spec.service_account_selector,
        Global::Forbidden,
    )?;
    check_selector(
        &spec_path.field("namespaceSelector"),
        &spec.namespace_selector,
        Global::Forbidden,
    )?;
    check_types(&spec_path.field("types"), &spec.types)?;
    check_hints(
        &spec_path.field("performanceHints"),
        &spec.performance_hints,
    )?;
    if spec.do_not_track && spec.pre_dnat {
        return fail(
            &spec_path.field("preDNAT"),
            "preDNAT and doNotTrack cannot both be true",
        );
    }
    if spec.pre_dnat && !spec.egress.is_empty() {
        return fail(
            &spec_path.field("egress"),
            "a preDNAT policy cannot have egress rules",
        );
    }
    if spec.pre_dnat
        && let Some(i) = spec.types.iter().position(|t| *t == PolicyType::Egress)
    {
        return fail(
            &spec_path.field("types").index(i),
            "a preDNAT policy cannot have the Egress type",
        );
    }
    if (spec.do_not_track || spec.pre_dnat) && !spec.apply_on_forward {
        return fail(
            &spec_path.field("applyOnForward"),
            "applyOnForward must be true when preDNAT or doNotTrack is true",
        );
    }
    check_rules(
        &spec_path.field("ingress"),
        &spec.ingress,
        Direction::Ingress,
        Owner::GlobalNetworkPolicy,
    )?;
    check_rules(
        &spec_path.field("egress"),
        &spec.egress,
        Direction::Egress,
        Owner::GlobalNetworkPolicy,
    )
}

/// The built-in tiers and the order and default action Calico pins them to.
pub(crate) const BUILTIN_TIERS: [(&str, f64, TierAction); 3] = [
    ("kube-admin", 1_000.0, TierAction::Pass),
    ("default", 1_000_000.0, TierAction::Deny),
    ("kube-baseline", 10_000_000.0, TierAction::Pass),
];

/// The pinned order and default action of a built-in tier.
pub(crate) fn builtin_tier(name: &str) -> Option<(&'static str, f64, TierAction)> {
    BUILTIN_TIERS.iter().copied().find(|(n, _, _)| *n == name)
}

pub(crate) fn check_tier(
    name_path: &FieldPath,
    name: &str,
    spec_path: &FieldPath,
    spec: &TierSpec,
) -> Result<()> {
    check_dns_label(name_path, name, "tier name")?;
    if let Some(order) = spec.order
        && !order.is_finite()
    {
        return fail(&spec_path.field("order"), "order must be a finite number");
    }
    if let Some((_, order, action)) = BUILTIN_TIERS.iter().find(|(n, _, _)| *n == name) {
        if spec.order.is_some_and(|o| o != *order) {
            return fail(
                &spec_path.field("order"),
                format!("the {name} tier's order must be {order}"),
            );
        }
        if spec.default_action.is_some_and(|a| a != *action) {
            return fail(
                &spec_path.field("defaultAction"),
                format!("the {name} tier's defaultAction must be {action:?}"),
            );
        }
    }
    Ok(())
}

pub(crate) fn check_profile(spec_path: &FieldPath, spec: &ProfileSpec) -> Result<()> {
    check_labels(&spec_path.field("labelsToApply"), &spec.labels_to_apply)?;
    check_rules(
        &spec_path.field("ingress"),
        &spec.ingress,
        Direction::Ingress,
        Owner::Profile,
    )?;
    check_rules(
        &spec_path.field("egress"),
        &spec.egress,
        Direction::Egress,
        Owner::Profile,
    )
}

pub(crate) fn check_order(path: &FieldPath, order: Option<f64>) -> Result<()> {
    match order {
        Some(o) if !o.is_finite() => fail(path, "order must be a finite number"),
        _ => Ok(()),
    }
}

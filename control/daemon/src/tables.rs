//! The table state control has sent, kept keyed so that each cycle's new state diffs into
//! delta operations cheaply.
//!
//! Endpoints, routes, nodes, settings and NAT are recomputed whole every cycle (they are
//! small and cheap to build) and compared with what was sent; policy programs and IP sets
//! come as operations from the compiler and are applied here as they are forwarded.

use std::collections::BTreeMap;
use std::net::IpAddr;

use tortie_abi as abi;

/// The non-policy tables of one cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plain {
    /// Settings.
    pub settings: abi::Settings,
    /// NAT.
    pub nat: abi::Nat,
    /// Endpoints by id.
    pub endpoints: BTreeMap<u32, abi::Endpoint>,
    /// Routes by prefix.
    pub routes: BTreeMap<(IpAddr, u8), abi::Route>,
    /// Nodes by id.
    pub nodes: BTreeMap<u32, abi::Node>,
}

/// Everything sent so far (the fastpath's tables once it applied the last message).
#[derive(Debug, Clone, Default)]
pub struct SentTables {
    /// Non-policy tables.
    pub plain: Plain,
    /// Programs by id.
    pub programs: BTreeMap<u32, abi::PolicyProgram>,
    /// IP sets by id.
    pub ip_sets: BTreeMap<u32, abi::IpSet>,
}

/// The key of a route.
pub fn route_key(p: &abi::Prefix) -> (IpAddr, u8) {
    (p.addr, p.len)
}

impl SentTables {
    /// Records a policy operation (programs and IP sets; others are ignored).
    pub fn apply_policy(&mut self, op: &abi::Op) {
        match op {
            abi::Op::UpsertProgram(p) => {
                self.programs.insert(p.id.0, p.clone());
            }
            abi::Op::RemoveProgram(id) => {
                self.programs.remove(&id.0);
            }
            abi::Op::UpsertIpSet(s) => {
                self.ip_sets.insert(s.id.0, s.clone());
            }
            abi::Op::RemoveIpSet(id) => {
                self.ip_sets.remove(&id.0);
            }
            _ => {}
        }
    }

    /// The whole state as tables (for a snapshot).
    pub fn to_tables(&self) -> abi::Tables {
        abi::Tables {
            settings: self.plain.settings.clone(),
            endpoints: self.plain.endpoints.values().cloned().collect(),
            programs: self.programs.values().cloned().collect(),
            ip_sets: self.ip_sets.values().cloned().collect(),
            routes: self.plain.routes.values().copied().collect(),
            nat: self.plain.nat.clone(),
            nodes: self.plain.nodes.values().cloned().collect(),
        }
    }
}

/// Upserts and removals turning `old` into `new`: upserts first (settings, NAT, nodes,
/// endpoints, routes), then removals in reverse (routes, endpoints, nodes), so nothing is
/// referenced before it exists or removed while referenced.
pub fn diff_plain(old: &Plain, new: &Plain) -> (Vec<abi::Op>, Vec<abi::Op>) {
    let mut upserts = Vec::new();
    let mut removals = Vec::new();
    if old.settings != new.settings {
        upserts.push(abi::Op::Settings(new.settings.clone()));
    }
    if old.nat != new.nat {
        upserts.push(abi::Op::Nat(new.nat.clone()));
    }
    for (id, n) in &new.nodes {
        if old.nodes.get(id) != Some(n) {
            upserts.push(abi::Op::UpsertNode(n.clone()));
        }
    }
    for (id, e) in &new.endpoints {
        if old.endpoints.get(id) != Some(e) {
            upserts.push(abi::Op::UpsertEndpoint(e.clone()));
        }
    }
    for (k, r) in &new.routes {
        if old.routes.get(k) != Some(r) {
            upserts.push(abi::Op::UpsertRoute(*r));
        }
    }
    for (k, r) in &old.routes {
        if !new.routes.contains_key(k) {
            removals.push(abi::Op::RemoveRoute(r.prefix));
        }
    }
    for id in old.endpoints.keys() {
        if !new.endpoints.contains_key(id) {
            removals.push(abi::Op::RemoveEndpoint(abi::EndpointId(*id)));
        }
    }
    for id in old.nodes.keys() {
        if !new.nodes.contains_key(id) {
            removals.push(abi::Op::RemoveNode(abi::NodeId(*id)));
        }
    }
    (upserts, removals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(p: &str, target: abi::RouteTarget) -> abi::Route {
        let net: ipnet::IpNet = p.parse().unwrap();
        abi::Route {
            prefix: abi::Prefix::new(net.addr(), net.prefix_len()).unwrap(),
            target,
        }
    }

    #[test]
    fn diff_then_apply_reaches_the_new_state() {
        let mut old = Plain::default();
        let r1 = route("198.19.0.0/26", abi::RouteTarget::Blackhole);
        let r2 = route("198.19.0.64/26", abi::RouteTarget::Uplink);
        old.routes.insert(route_key(&r1.prefix), r1);
        old.routes.insert(route_key(&r2.prefix), r2);
        let mut new = old.clone();
        new.routes.remove(&route_key(&r2.prefix));
        let r3 = route("198.19.0.4/32", abi::RouteTarget::Host);
        new.routes.insert(route_key(&r3.prefix), r3);
        new.settings.mtu = 1400;
        let (up, rm) = diff_plain(&old, &new);
        assert_eq!(up.len(), 2);
        assert_eq!(rm, vec![abi::Op::RemoveRoute(r2.prefix)]);
        let mut tables = SentTables {
            plain: old,
            ..Default::default()
        }
        .to_tables();
        for op in up.into_iter().chain(rm) {
            tables.apply(op);
        }
        let mut want = SentTables {
            plain: new.clone(),
            ..Default::default()
        }
        .to_tables();
        tables.routes.sort_by_key(|r| route_key(&r.prefix));
        want.routes.sort_by_key(|r| route_key(&r.prefix));
        assert_eq!(tables, want);
        assert_eq!(diff_plain(&new, &new), (vec![], vec![]));
    }
}

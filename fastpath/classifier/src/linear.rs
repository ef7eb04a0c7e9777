//! The reference classifier: a linear scan that evaluates [`Rule`] semantics literally. It is
//! slow by design and shares no code with the indexed engine, so differential tests can trust
//! it.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::ipset::IpSetTable;
use crate::rule::{AddrMatch, IpVersion, Key, Match, PortMatch, Rule};

/// Rules in priority order, scanned one by one.
#[derive(Debug, Clone, Default)]
pub struct LinearClassifier {
    rules: Vec<Rule>,
}

fn addr_matches(m: &AddrMatch, addr: IpAddr, sets: &IpSetTable) -> bool {
    let in_net = |n: &IpNet| n.contains(&addr);
    let in_set = |id| match (sets.get(id), addr) {
        (Some(s), IpAddr::V4(a)) => s.contains_v4(a.into()),
        (Some(s), IpAddr::V6(a)) => s.contains_v6(a.into()),
        (None, _) => false,
    };
    (m.nets.is_empty() || m.nets.iter().any(in_net))
        && m.sets.iter().all(|&s| in_set(s))
        && !m.not_nets.iter().any(in_net)
        && !m.not_sets.iter().any(|&s| in_set(s))
}

fn port_matches(m: &PortMatch, port: u16) -> bool {
    (m.ranges.is_empty() || m.ranges.iter().any(|r| r.contains(port)))
        && !m.not_ranges.iter().any(|r| r.contains(port))
}

impl LinearClassifier {
    /// A reference classifier over `rules`.
    pub fn new(rules: impl IntoIterator<Item = Rule>) -> Self {
        let mut rules: Vec<Rule> = rules.into_iter().collect();
        rules.sort_by_key(|r| r.priority);
        Self { rules }
    }

    /// Adds a rule.
    pub fn insert(&mut self, rule: Rule) {
        let at = self.rules.partition_point(|r| r.priority <= rule.priority);
        self.rules.insert(at, rule);
    }

    /// Removes the rule equal to `rule`; returns whether it was present.
    pub fn remove(&mut self, rule: &Rule) -> bool {
        match self.rules.iter().position(|r| r == rule) {
            Some(i) => {
                self.rules.remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether `rule` matches `key`.
    pub fn rule_matches(rule: &Rule, key: &Key, sets: &IpSetTable) -> bool {
        let (src, dst, sp, dp, proto, version): (IpAddr, IpAddr, u16, u16, u8, IpVersion) =
            match key {
                Key::V4(k) => (
                    std::net::Ipv4Addr::from(k.src).into(),
                    std::net::Ipv4Addr::from(k.dst).into(),
                    k.src_port,
                    k.dst_port,
                    k.proto,
                    IpVersion::V4,
                ),
                Key::V6(k) => (
                    std::net::Ipv6Addr::from(k.src).into(),
                    std::net::Ipv6Addr::from(k.dst).into(),
                    k.src_port,
                    k.dst_port,
                    k.proto,
                    IpVersion::V6,
                ),
            };
        rule.ip_version.is_none_or(|v| v == version)
            && rule.protocol.is_none_or(|p| p == proto)
            && rule.not_protocol.is_none_or(|p| p != proto)
            && addr_matches(&rule.src, src, sets)
            && addr_matches(&rule.dst, dst, sets)
            && port_matches(&rule.src_ports, sp)
            && port_matches(&rule.dst_ports, dp)
    }

    /// First rule with priority `>= min_priority` matching `key`.
    pub fn classify_from(&self, key: &Key, sets: &IpSetTable, min_priority: u32) -> Option<Match> {
        self.rules
            .iter()
            .filter(|r| r.priority >= min_priority)
            .find(|r| Self::rule_matches(r, key, sets))
            .map(|r| Match {
                priority: r.priority,
                action: r.action,
            })
    }

    /// First rule matching `key`.
    pub fn classify(&self, key: &Key, sets: &IpSetTable) -> Option<Match> {
        self.classify_from(key, sets, 0)
    }
}

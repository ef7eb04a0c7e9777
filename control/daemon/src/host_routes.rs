//! Kernel routes that send the node's own traffic for local workloads through the fastpath.
//!
//! The CNI plugin installs `W/32 dev caliX`, so without these routes the kernel would reach a
//! local workload straight over its veth: the SYN of a health probe would bypass the fastpath,
//! the SYN-ACK would come back through it, find no conntrack entry and be dropped. Instead,
//! for every local workload address in the tables, tortie-control replaces that route with
//! `W/32 via 169.254.1.1 dev tortie-hostk onlink src <node address>` (and
//! `W/128 via fe80::1 dev tortie-hostk onlink` for IPv6), with permanent neighbour entries
//! for those gateways pointing at the `tortie-host` MAC. The kernel's packet then enters the
//! fastpath on `settings.host_if`, is routed to the workload like any other, and creates the
//! conntrack entry its reply matches.
//!
//! The routes carry protocol [`ROUTE_PROTOCOL`]. They are installed right after the tables
//! naming the workload are written (the fastpath applies a generation within milliseconds), removed
//! when the workload leaves the tables, re-installed when the workload's interface is
//! re-created (its index changes) and when a periodic check ([`HostRoutes::verify`]) finds
//! one missing or overridden. They vanish with `tortie-hostk`; on a clean stop the CNI
//! plugin's on-link routes are put back ([`HostRoutes::restore`]) so the kernel still
//! reaches its workloads directly while tortie-control is down.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::cluster::NodeAddrs;
use crate::host::LinkCache;
use crate::netlink::{Mac, Netlink};
use crate::routes::{RouteEntry, Target};

/// The IPv4 next hop of host-to-workload routes (the address workloads use as their own
/// gateway; on `tortie-hostk` it resolves to the `tortie-host` MAC).
pub const HOST_GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The IPv6 next hop of host-to-workload routes (link-local on `tortie-hostk`).
pub const HOST_GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// A local workload address and the index of the workload's host-side interface.
pub type Wanted = BTreeMap<IpNet, u32>;

/// The local workload addresses in `routes` with their interfaces' indexes (routes whose
/// interface is not known are left out).
pub fn wanted(routes: &[RouteEntry], links: &mut LinkCache, nl: &Netlink) -> Wanted {
    routes
        .iter()
        .filter_map(|r| match &r.target {
            Target::Local { interface, .. } => {
                links.get(nl, interface).map(|l| (r.prefix, l.index))
            }
            _ => None,
        })
        .collect()
}

/// What a sync must do: routes to (re)install and routes to delete.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Addresses to route through the host pair (new, or whose interface changed).
    pub install: Vec<IpNet>,
    /// Addresses no longer local.
    pub remove: Vec<IpNet>,
}

/// Compares what is installed with what is wanted.
pub fn plan(installed: &Wanted, wanted: &Wanted) -> Plan {
    Plan {
        install: wanted
            .iter()
            .filter(|(dst, index)| installed.get(dst) != Some(index))
            .map(|(dst, _)| *dst)
            .collect(),
        remove: installed
            .keys()
            .filter(|dst| !wanted.contains_key(dst))
            .copied()
            .collect(),
    }
}

/// The host-to-workload routes in force and how to install more.
pub struct HostRoutes {
    kernel_index: u32,
    host_mac: Mac,
    src_v4: Option<IpAddr>,
    src_v6: Option<IpAddr>,
    neighbours_set: bool,
    installed: Wanted,
    /// Netlink requests that failed (each is retried at the next sync or check).
    pub failures: u64,
}

impl HostRoutes {
    /// Routes through `tortie-hostk` (index `kernel_index`) toward the `tortie-host` MAC
    /// `host_mac`, sourced from the node's addresses when it has them.
    pub fn new(kernel_index: u32, host_mac: Mac, my: &NodeAddrs) -> HostRoutes {
        HostRoutes {
            kernel_index,
            host_mac,
            src_v4: my.v4.map(|n| n.addr()),
            src_v6: my.v6.map(|n| n.addr()),
            neighbours_set: false,
            installed: Wanted::new(),
            failures: 0,
        }
    }

    /// How many addresses are routed through the host pair.
    pub fn len(&self) -> usize {
        self.installed.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.installed.is_empty()
    }

    fn ensure_neighbours(&mut self, nl: &Netlink) {
        if self.neighbours_set {
            return;
        }
        match nl.set_permanent_neighbour(
            self.kernel_index,
            IpAddr::V4(HOST_GATEWAY_V4),
            self.host_mac,
        ) {
            Ok(()) => self.neighbours_set = true,
            Err(err) => {
                self.failures += 1;
                tracing::warn!(%err, "could not set the host gateway's neighbour entry");
            }
        }
        // IPv6 may be disabled on the node: the IPv4 entry alone is enough then.
        if let Err(err) = nl.set_permanent_neighbour(
            self.kernel_index,
            IpAddr::V6(HOST_GATEWAY_V6),
            self.host_mac,
        ) {
            tracing::debug!(%err, "no IPv6 neighbour entry for the host gateway");
        }
    }

    fn install(&mut self, nl: &Netlink, dst: IpNet) -> bool {
        let (gateway, src) = match dst {
            IpNet::V4(_) => (IpAddr::V4(HOST_GATEWAY_V4), self.src_v4),
            IpNet::V6(_) => (IpAddr::V6(HOST_GATEWAY_V6), self.src_v6),
        };
        match nl.replace_route_via(dst, gateway, self.kernel_index, src) {
            Ok(()) => true,
            Err(err) => {
                self.failures += 1;
                tracing::warn!(%err, %dst, "could not route a local workload through the fastpath");
                false
            }
        }
    }

    /// Brings the kernel's routes in line with `wanted`: installs new ones (and those whose
    /// workload interface changed), deletes those of workloads gone. Returns the plan carried
    /// out.
    pub fn sync(&mut self, nl: &Netlink, wanted: &Wanted) -> Plan {
        let plan = plan(&self.installed, wanted);
        if plan.install.is_empty() && plan.remove.is_empty() {
            return plan;
        }
        self.ensure_neighbours(nl);
        for dst in &plan.install {
            if self.install(nl, *dst) {
                self.installed.insert(*dst, wanted[dst]);
            } else {
                self.installed.remove(dst);
            }
        }
        for dst in &plan.remove {
            if let Err(err) = nl.delete_route(*dst, self.kernel_index) {
                self.failures += 1;
                tracing::warn!(%err, %dst, "could not delete a host-to-workload route");
            }
            self.installed.remove(dst);
        }
        tracing::debug!(
            installed = plan.install.len(),
            removed = plan.remove.len(),
            "host-to-workload routes"
        );
        plan
    }

    /// Checks the kernel's table (one dump per family) and re-installs routes that are
    /// missing or no longer go through the host pair (the CNI plugin re-adding its own, an
    /// administrator's change). Returns how many were re-installed.
    pub fn verify(&mut self, nl: &Netlink) -> usize {
        if self.installed.is_empty() {
            return 0;
        }
        let mut present = BTreeSet::new();
        for v6 in [false, true] {
            let wants_family = self
                .installed
                .keys()
                .any(|d| matches!(d, IpNet::V6(_)) == v6);
            if !wants_family {
                continue;
            }
            match nl.host_routes(v6) {
                Ok(routes) => present.extend(
                    routes
                        .into_iter()
                        .filter(|r| r.ours && r.oif == self.kernel_index)
                        .map(|r| r.dst),
                ),
                Err(err) => {
                    tracing::warn!(%err, "could not check the host-to-workload routes");
                    return 0;
                }
            }
        }
        let missing: Vec<IpNet> = self
            .installed
            .keys()
            .filter(|d| !present.contains(*d))
            .copied()
            .collect();
        if !missing.is_empty() {
            self.neighbours_set = false;
            self.ensure_neighbours(nl);
            tracing::info!(
                count = missing.len(),
                "re-installing host-to-workload routes"
            );
        }
        missing.iter().filter(|d| self.install(nl, **d)).count()
    }

    /// Puts back the CNI plugin's on-link routes (`W dev caliX`) for every address routed
    /// through the host pair, before the pair is deleted on a clean stop.
    pub fn restore(&mut self, nl: &Netlink) {
        for (dst, index) in std::mem::take(&mut self.installed) {
            if let Err(err) = nl.replace_link_route(dst, index) {
                tracing::debug!(%err, %dst, "could not restore the workload's on-link route");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(entries: &[(&str, u32)]) -> Wanted {
        entries
            .iter()
            .map(|(d, i)| (d.parse().unwrap(), *i))
            .collect()
    }

    #[test]
    fn plan_installs_new_and_moved_and_removes_gone() {
        let installed = w(&[
            ("198.19.0.1/32", 7),
            ("198.19.0.2/32", 8),
            ("198.19.0.3/32", 9),
        ]);
        let wanted = w(&[
            ("198.19.0.1/32", 7),
            ("198.19.0.2/32", 12),
            ("198.19.0.4/32", 10),
        ]);
        let p = plan(&installed, &wanted);
        assert_eq!(
            p.install,
            vec![
                "198.19.0.2/32".parse::<IpNet>().unwrap(),
                "198.19.0.4/32".parse().unwrap()
            ]
        );
        assert_eq!(p.remove, vec!["198.19.0.3/32".parse::<IpNet>().unwrap()]);
    }

    #[test]
    fn plan_is_empty_when_nothing_changed() {
        let both = w(&[("198.19.0.1/32", 7), ("2001:db8:1::5/128", 7)]);
        assert_eq!(plan(&both, &both), Plan::default());
        assert_eq!(plan(&Wanted::new(), &Wanted::new()), Plan::default());
    }
}

//! Which interfaces a generation asks the fastpath to serve, and how to name them.
//!
//! The fastpath never guesses: it serves `settings.uplink_if` (steered: only owned traffic),
//! `settings.host_if` and every `Workload` endpoint's `if_index` (all traffic). Names come
//! from the kernel's interface list of the process's own network namespace
//! (`if_nameindex(3)`); sysfs is only trusted for queue counts when it shows the same
//! namespace (a daemon started with `nsenter --net` sees the mounting namespace's
//! `/sys/class/net`, where the same name may be another interface).

use std::collections::BTreeMap;
use std::path::Path;

use tortie_abi::{EndpointKind, Tables};

/// Why an interface is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The node's uplink.
    Uplink,
    /// The host interface (`tortie-host`): frames for the node's own stack.
    Host,
    /// A workload's host-side veth.
    Workload,
}

impl Role {
    /// Name used in the status file and logs.
    pub fn name(self) -> &'static str {
        match self {
            Role::Uplink => "uplink",
            Role::Host => "host",
            Role::Workload => "workload",
        }
    }

    /// Whether the XDP program steers only owned traffic here (the uplink) or all of it.
    pub fn owned_only(self) -> bool {
        self == Role::Uplink
    }
}

/// The interfaces the tables name, by index, with their role. An index named twice keeps the
/// first role in uplink, host, workload order (the uplink's steering wins).
pub fn wanted(tables: &Tables) -> BTreeMap<u32, Role> {
    let mut out = BTreeMap::new();
    let s = &tables.settings;
    if s.uplink_if != 0 {
        out.insert(s.uplink_if, Role::Uplink);
    }
    if s.host_if != 0 {
        out.entry(s.host_if).or_insert(Role::Host);
    }
    for e in &tables.endpoints {
        if e.kind == EndpointKind::Workload && e.if_index != 0 {
            out.entry(e.if_index).or_insert(Role::Workload);
        }
    }
    out
}

/// The indexes of every interface in this process's network namespace (one `if_nameindex`).
pub fn present_indexes() -> Option<std::collections::BTreeSet<u32>> {
    let list = nix::net::if_::if_nameindex().ok()?;
    Some(list.iter().map(|i| i.index()).collect())
}

/// The name of interface `if_index` in this network namespace, if it exists.
pub fn name_of(if_index: u32) -> Option<String> {
    let list = nix::net::if_::if_nameindex().ok()?;
    list.iter()
        .find(|i| i.index() == if_index)
        .map(|i| i.name().to_string_lossy().into_owned())
}

/// RX queues of interface `name` (index `if_index`), at least 1. Read from `sys` (normally
/// `/sys/class/net`) only when its entry for `name` has the same index, i.e. sysfs belongs to
/// this network namespace; otherwise 1 (what a veth has).
pub fn queue_count(sys: &Path, name: &str, if_index: u32) -> u32 {
    let dir = sys.join(name);
    let same_namespace = std::fs::read_to_string(dir.join("ifindex"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        == Some(if_index);
    if !same_namespace {
        return 1;
    }
    let Ok(entries) = std::fs::read_dir(dir.join("queues")) else {
        return 1;
    };
    let n = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX).max(1)
}

/// The sysfs directory of network interfaces.
pub const SYS_CLASS_NET: &str = "/sys/class/net";

#[cfg(test)]
mod tests {
    use super::*;
    use tortie_abi::{Endpoint, EndpointId};

    fn endpoint(id: u32, if_index: u32, kind: EndpointKind) -> Endpoint {
        Endpoint {
            id: EndpointId(id),
            if_index,
            kind,
            mac: [2, 0, 0, 0, 0, 1],
            addrs: vec![],
            ingress: None,
            egress: None,
            untracked_ingress: None,
            untracked_egress: None,
            pre_dnat: None,
            forward_ingress: None,
            forward_egress: None,
        }
    }

    #[test]
    fn wanted_names_uplink_host_and_workloads_only() {
        let mut t = Tables::default();
        assert!(wanted(&t).is_empty(), "no interface named, none served");
        t.settings.uplink_if = 2;
        t.settings.host_if = 3;
        t.endpoints = vec![
            endpoint(1, 7, EndpointKind::Workload),
            endpoint(2, 8, EndpointKind::Host),
            endpoint(3, 2, EndpointKind::Workload),
            endpoint(4, 9, EndpointKind::Workload),
        ];
        let w = wanted(&t);
        let got: Vec<(u32, Role)> = w.into_iter().collect();
        assert_eq!(
            got,
            vec![
                (2, Role::Uplink),
                (3, Role::Host),
                (7, Role::Workload),
                (9, Role::Workload)
            ]
        );
        assert!(Role::Uplink.owned_only() && !Role::Workload.owned_only());
    }

    #[test]
    fn queues_from_a_sysfs_tree_only_when_it_shows_this_interface() {
        let dir = std::env::temp_dir().join(format!("tortie-fp-sys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("eth0/queues/rx-0")).unwrap();
        std::fs::create_dir_all(dir.join("eth0/queues/rx-1")).unwrap();
        std::fs::create_dir_all(dir.join("eth0/queues/tx-0")).unwrap();
        std::fs::write(dir.join("eth0/ifindex"), "4\n").unwrap();
        std::fs::create_dir_all(dir.join("lo")).unwrap();
        std::fs::write(dir.join("lo/ifindex"), "1\n").unwrap();
        assert_eq!(queue_count(&dir, "eth0", 4), 2);
        assert_eq!(
            queue_count(&dir, "eth0", 7),
            1,
            "another namespace's eth0 in sysfs: not trusted"
        );
        assert_eq!(queue_count(&dir, "lo", 1), 1, "no queues dir: one queue");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_come_from_this_namespace() {
        // Loopback is index 1 in every network namespace.
        assert_eq!(name_of(1).as_deref(), Some("lo"));
        assert_eq!(name_of(u32::MAX), None);
    }
}

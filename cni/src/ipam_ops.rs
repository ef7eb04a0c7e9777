//! The IPAM half of ADD, DEL, CHECK and GC, shared by the `tortie` plugin and the standalone
//! `tortie-ipam` plugin. Allocations are keyed by a handle built like Calico's,
//! `<network>.<container id>` (with `.<ifname>` appended for interfaces other than `eth0`), so
//! state is keyed by (network, container, interface) as the CNI spec asks.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use tortie_datastore::Datastore;
use tortie_ipam::{AssignIpArgs, AutoAssignArgs, Ipam, IpamError, PoolUse};

use crate::config::{Attachment, NetConf};
use crate::pools;
use crate::spec::{CniEnv, CniError, Code};

/// Who the addresses are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The network name from the configuration.
    pub network: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// This node.
    pub node: String,
    /// The workload's namespace (`K8S_POD_NAMESPACE`, else `default`).
    pub namespace: String,
    /// The pod name (`K8S_POD_NAME`), if any.
    pub pod: Option<String>,
}

impl Owner {
    /// Reads the owner from the configuration and the environment.
    pub fn new(conf: &NetConf, env: &CniEnv) -> Owner {
        Owner {
            network: if conf.name.is_empty() {
                "tortie".into()
            } else {
                conf.name.clone()
            },
            container_id: env.container_id.clone(),
            ifname: env.ifname.clone(),
            node: conf.node_name(),
            namespace: env
                .args
                .get("K8S_POD_NAMESPACE")
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| "default".into()),
            pod: env
                .args
                .get("K8S_POD_NAME")
                .filter(|n| !n.is_empty())
                .cloned(),
        }
    }

    /// The IPAM handle.
    pub fn handle(&self) -> String {
        handle_for(&self.network, &self.container_id, &self.ifname)
    }
}

/// The handle of (network, container, interface).
pub fn handle_for(network: &str, container_id: &str, ifname: &str) -> String {
    if ifname == "eth0" || ifname.is_empty() {
        format!("{network}.{container_id}")
    } else {
        format!("{network}.{container_id}.{ifname}")
    }
}

fn ipam_error(err: IpamError) -> CniError {
    let code = match err {
        IpamError::Datastore(_) | IpamError::Contention { .. } | IpamError::Corrupt { .. } => {
            Code::Datastore
        }
        _ => Code::Ipam,
    };
    CniError::new(code, "IP address management failed", err.to_string())
}

/// Allocates the owner's addresses (or returns those its handle already holds, so a retried ADD
/// does not allocate twice). Requested addresses come from `CNI_ARGS` `IP=` and
/// `runtimeConfig.ips` / `args.cni.ips`. Returns host-length prefixes (/32, /128).
pub fn add(
    ds: &dyn Datastore,
    conf: &NetConf,
    env: &CniEnv,
    owner: &Owner,
) -> Result<Vec<IpNet>, CniError> {
    let ipam = Ipam::new(ds);
    let handle = owner.handle();
    let held = ipam.addresses_of_handle(&handle).map_err(ipam_error)?;
    if !held.is_empty() {
        return Ok(held.into_iter().map(IpNet::from).collect());
    }
    let eligible = pools::eligible(
        ds,
        &owner.node,
        &conf.ipam.ipv4_pools,
        &conf.ipam.ipv6_pools,
    )?;
    let mut attributes = BTreeMap::from([
        ("node".to_string(), owner.node.clone()),
        ("namespace".to_string(), owner.namespace.clone()),
    ]);
    if let Some(pod) = &owner.pod {
        attributes.insert("pod".into(), pod.clone());
    }

    let mut requested: Vec<String> = env
        .args
        .get("IP")
        .map(|list| {
            list.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    requested.extend(conf.requested_ips());
    if !requested.is_empty() {
        let mut pools = eligible.v4.clone();
        pools.extend(eligible.v6.iter().cloned());
        let mut done: Vec<IpAddr> = Vec::new();
        for text in &requested {
            let ip = text
                .split('/')
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .ok_or_else(|| {
                    CniError::new(
                        Code::InvalidNetworkConfig,
                        format!("requested address {text:?} is not an IP address"),
                        "",
                    )
                })?;
            let args = AssignIpArgs {
                ip,
                node: &owner.node,
                handle: &handle,
                attributes: attributes.clone(),
                pools: &pools,
                reservations: &[],
            };
            if let Err(err) = ipam.assign_ip(&args) {
                ipam.release_ips(&done).map_err(ipam_error)?;
                return Err(ipam_error(err));
            }
            done.push(ip);
        }
        return Ok(done.into_iter().map(IpNet::from).collect());
    }

    let wants_v4 = conf.ipam.wants_v4();
    let wants_v6 = conf.ipam.wants_v6();
    if wants_v4 && eligible.v4.is_empty() {
        return Err(CniError::new(
            Code::Ipam,
            format!("no enabled IPv4 pool selects node {}", owner.node),
            "",
        ));
    }
    if wants_v6 && eligible.v6.is_empty() {
        return Err(CniError::new(
            Code::Ipam,
            format!("no enabled IPv6 pool selects node {}", owner.node),
            "",
        ));
    }
    let args = AutoAssignArgs {
        node: &owner.node,
        handle: &handle,
        attributes,
        num_v4: usize::from(wants_v4),
        num_v6: usize::from(wants_v6),
        v4_pools: &eligible.v4,
        v6_pools: &eligible.v6,
        reservations: &eligible.reservations,
        use_: PoolUse::Workload,
    };
    let got = ipam.auto_assign(&args).map_err(ipam_error)?;
    Ok(got.v4.into_iter().chain(got.v6).map(IpNet::from).collect())
}

/// Releases the owner's addresses (idempotent).
pub fn del(ds: &dyn Datastore, owner: &Owner) -> Result<Vec<IpAddr>, CniError> {
    Ipam::new(ds)
        .release_by_handle(&owner.handle())
        .map_err(ipam_error)
}

/// Checks that the owner's handle holds exactly the addresses `expected` lists.
pub fn check(ds: &dyn Datastore, owner: &Owner, expected: &[IpNet]) -> Result<(), CniError> {
    let held: HashSet<IpAddr> = Ipam::new(ds)
        .addresses_of_handle(&owner.handle())
        .map_err(ipam_error)?
        .into_iter()
        .collect();
    for net in expected {
        if !held.contains(&net.addr()) {
            return Err(CniError::new(
                Code::CheckFailed,
                format!("{} is not allocated to {}", net.addr(), owner.handle()),
                format!("the handle holds {held:?}"),
            ));
        }
    }
    Ok(())
}

/// GC: releases every handle of `network` that no valid attachment names. Returns the
/// released handles. Keeps going after a failed release and reports the first error.
pub fn gc(
    ds: &dyn Datastore,
    network: &str,
    valid: &[Attachment],
) -> Result<Vec<String>, CniError> {
    let ipam = Ipam::new(ds);
    let keep: HashSet<String> = valid
        .iter()
        .map(|a| handle_for(network, &a.container_id, &a.ifname))
        .collect();
    let prefix = format!("{network}.");
    let mut released = Vec::new();
    let mut first_error = None;
    for handle in ipam.handles().map_err(ipam_error)? {
        if !handle.starts_with(&prefix) || keep.contains(&handle) {
            continue;
        }
        match ipam.release_by_handle(&handle) {
            Ok(_) => released.push(handle),
            Err(err) => {
                first_error.get_or_insert(ipam_error(err));
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(released),
    }
}

/// STATUS: the datastore answers and at least one enabled pool exists.
pub fn status(ds: &dyn Datastore, conf: &NetConf) -> Result<(), CniError> {
    let eligible = pools::eligible(
        ds,
        &conf.node_name(),
        &conf.ipam.ipv4_pools,
        &conf.ipam.ipv6_pools,
    )
    .map_err(|err| {
        CniError::new(
            Code::NotAvailable,
            "datastore not available",
            err.to_string(),
        )
    })?;
    let v4_ok = !conf.ipam.wants_v4() || !eligible.v4.is_empty();
    let v6_ok = !conf.ipam.wants_v6() || !eligible.v6.is_empty();
    if v4_ok && v6_ok {
        Ok(())
    } else {
        Err(CniError::new(
            Code::NotAvailable,
            "no enabled IP pool for this node",
            format!("node {}", conf.node_name()),
        ))
    }
}

//! The `tortie` plugin: a veth pair per attachment, addresses from Tortie IPAM (or a delegate),
//! and a WorkloadEndpoint in the datastore.

use ipnet::IpNet;
use tracing::{info, warn};

use crate::config::NetConf;
use crate::ipam_ops::{self, Owner};
use crate::spec::{CniEnv, CniError, CniResult, Code, Interface, IpConfig, Route, version};
use crate::{delegate, endpoint, netlink};

const TORTIE_IPAM: &str = "tortie-ipam";

fn delegated(conf: &NetConf) -> Option<&str> {
    let kind = conf.ipam.plugin_type.as_str();
    (!kind.is_empty() && kind != TORTIE_IPAM).then_some(kind)
}

fn interface_error(err: netlink::NetlinkError) -> CniError {
    CniError::new(
        Code::Interface,
        "workload interface setup failed",
        err.to_string(),
    )
}

/// Fault injection for tests of crash recovery: when `TORTIE_CNI_FAULT` names this point, the
/// process aborts here, as a plugin killed at that moment would stop.
fn fault_point(name: &str) {
    if std::env::var("TORTIE_CNI_FAULT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

/// ADD: addresses, then the interface, then the endpoint; any failure undoes what was done.
pub fn add(conf: &NetConf, env: &CniEnv, stdin: &[u8]) -> Result<CniResult, CniError> {
    let ds = conf.open_datastore()?;
    let owner = Owner::new(conf, env);
    let netns = env.netns.clone().unwrap_or_default();
    let addresses: Vec<IpNet> = match delegated(conf) {
        Some(plugin) => {
            let result = delegate::run(plugin, "ADD", env, stdin)?.unwrap_or_else(|| CniResult {
                cni_version: conf.cni_version.clone(),
                interfaces: vec![],
                ips: vec![],
                routes: vec![],
                dns: Default::default(),
            });
            result
                .ips
                .iter()
                .map(|ip| IpNet::from(ip.address.addr()))
                .collect()
        }
        None => ipam_ops::add(ds.as_ref(), conf, env, &owner)?,
    };
    fault_point("abort-after-ipam");
    let release = |why: &CniError| {
        warn!(handle = %owner.handle(), error = %why, "ADD failed, releasing addresses");
        let _ = match delegated(conf) {
            Some(plugin) => delegate::run(plugin, "DEL", env, stdin).map(|_| ()),
            None => ipam_ops::del(ds.as_ref(), &owner).map(|_| ()),
        };
    };
    let host_name = endpoint::host_interface_name(&owner);
    let link = match netlink::setup(&host_name, &netns, &env.ifname, conf.mtu(), &addresses) {
        Ok(link) => link,
        Err(err) => {
            let err = interface_error(err);
            release(&err);
            return Err(err);
        }
    };
    if let Err(err) = endpoint::write(
        ds.as_ref(),
        &owner,
        &conf.labels(),
        &addresses,
        &host_name,
        &link.container_mac,
    ) {
        let _ = netlink::teardown(&host_name);
        release(&err);
        return Err(err);
    }
    if let Some(timeout) = conf.endpoint_ready_timeout()
        && let Err(err) = endpoint::wait_programmed(ds.as_ref(), &owner, timeout)
    {
        let _ = endpoint::delete(ds.as_ref(), &owner);
        let _ = netlink::teardown(&host_name);
        release(&err);
        return Err(err);
    }
    info!(handle = %owner.handle(), interface = %host_name, ?addresses, "ADD done");
    Ok(result(conf, env, &link, &addresses))
}

fn result(
    conf: &NetConf,
    env: &CniEnv,
    link: &netlink::WorkloadLink,
    addresses: &[IpNet],
) -> CniResult {
    let mut routes = Vec::new();
    if addresses.iter().any(|a| matches!(a, IpNet::V4(_))) {
        routes.push(Route {
            dst: "0.0.0.0/0"
                .parse()
                .unwrap_or(IpNet::from(std::net::IpAddr::V4(netlink::GATEWAY_V4))),
            gw: Some(netlink::GATEWAY_V4.into()),
        });
    }
    if addresses.iter().any(|a| matches!(a, IpNet::V6(_))) {
        routes.push(Route {
            dst: "::/0"
                .parse()
                .unwrap_or(IpNet::from(std::net::IpAddr::V6(netlink::GATEWAY_V6))),
            gw: Some(netlink::GATEWAY_V6.into()),
        });
    }
    CniResult {
        cni_version: conf.cni_version.clone(),
        interfaces: vec![
            Interface {
                name: link.host_name.clone(),
                mac: link.host_mac.clone(),
                mtu: None,
                sandbox: String::new(),
            },
            Interface {
                name: env.ifname.clone(),
                mac: link.container_mac.clone(),
                mtu: version::has_status_and_gc(&conf.cni_version).then(|| conf.mtu()),
                sandbox: env.netns.clone().unwrap_or_default(),
            },
        ],
        ips: addresses
            .iter()
            .map(|a| IpConfig {
                version: None,
                address: IpNet::from(a.addr()),
                gateway: None,
                interface: Some(1),
            })
            .collect(),
        routes,
        dns: Default::default(),
    }
    .for_version(&conf.cni_version)
}

/// DEL: remove the interface, the endpoint and the addresses; whatever is already gone is
/// skipped, and no netns or prevResult is needed.
pub fn del(conf: &NetConf, env: &CniEnv, stdin: &[u8]) -> Result<(), CniError> {
    let ds = conf.open_datastore()?;
    let owner = Owner::new(conf, env);
    let host_name = endpoint::host_interface_name(&owner);
    let mut first_error = None;
    if let Err(err) = netlink::teardown(&host_name) {
        first_error.get_or_insert(interface_error(err));
    }
    if let Err(err) = endpoint::delete(ds.as_ref(), &owner) {
        first_error.get_or_insert(err);
    }
    let released = match delegated(conf) {
        Some(plugin) => delegate::run(plugin, "DEL", env, stdin).map(|_| ()),
        None => ipam_ops::del(ds.as_ref(), &owner).map(|_| ()),
    };
    if let Err(err) = released {
        first_error.get_or_insert(err);
    }
    info!(handle = %owner.handle(), interface = %host_name, "DEL done");
    first_error.map_or(Ok(()), Err)
}

/// CHECK: the interface, its addresses and routes, and the IPAM allocation match prevResult.
pub fn check(conf: &NetConf, env: &CniEnv, stdin: &[u8]) -> Result<(), CniError> {
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| CniError::new(Code::InvalidNetworkConfig, "CHECK needs prevResult", ""))?;
    let owner = Owner::new(conf, env);
    let expected: Vec<IpNet> = prev
        .ips
        .iter()
        .map(|ip| IpNet::from(ip.address.addr()))
        .collect();
    let host_name = endpoint::host_interface_name(&owner);
    let netns = env.netns.clone().unwrap_or_default();
    netlink::check(&host_name, &netns, &env.ifname, &expected)
        .map_err(|err| CniError::new(Code::CheckFailed, "CHECK failed", err.to_string()))?;
    match delegated(conf) {
        Some(plugin) => delegate::run(plugin, "CHECK", env, stdin).map(|_| ()),
        None => ipam_ops::check(conf.open_datastore()?.as_ref(), &owner, &expected),
    }
}

/// STATUS: ready when the datastore answers and a pool can serve this node.
pub fn status(conf: &NetConf, env: &CniEnv, stdin: &[u8]) -> Result<(), CniError> {
    let ds = conf.open_datastore().map_err(|err| {
        CniError::new(
            Code::NotAvailable,
            "datastore not available",
            err.to_string(),
        )
    })?;
    match delegated(conf) {
        Some(plugin) => delegate::run(plugin, "STATUS", env, stdin).map(|_| ()),
        None => ipam_ops::status(ds.as_ref(), conf),
    }
}

/// GC: for this network and node, remove the endpoints, interfaces and addresses of every
/// attachment the runtime no longer lists as valid.
pub fn gc(conf: &NetConf, env: &CniEnv, stdin: &[u8]) -> Result<(), CniError> {
    let ds = conf.open_datastore()?;
    let valid = conf.valid_attachments.clone().unwrap_or_default();
    let network = if conf.name.is_empty() {
        "tortie"
    } else {
        conf.name.as_str()
    };
    let removed = crate::gc::endpoints(ds.as_ref(), &conf.node_name(), &valid)?;
    let released = match delegated(conf) {
        Some(plugin) => delegate::run(plugin, "GC", env, stdin).map(|_| Vec::new())?,
        None => ipam_ops::gc(ds.as_ref(), network, &valid)?,
    };
    info!(?removed, ?released, "GC done");
    Ok(())
}

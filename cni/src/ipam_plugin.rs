//! The `tortie-ipam` plugin: Tortie IPAM under any main plugin (for example the reference
//! `bridge`). Its ADD result has addresses and no interfaces, as the spec asks of IPAM plugins.

use ipnet::IpNet;

use crate::config::NetConf;
use crate::ipam_ops::{self, Owner};
use crate::spec::{CniEnv, CniError, CniResult, Code, IpConfig};

/// ADD: allocate and report the addresses.
pub fn add(conf: &NetConf, env: &CniEnv) -> Result<CniResult, CniError> {
    let ds = conf.open_datastore()?;
    let owner = Owner::new(conf, env);
    let addresses = ipam_ops::add(ds.as_ref(), conf, env, &owner)?;
    Ok(CniResult {
        cni_version: conf.cni_version.clone(),
        interfaces: vec![],
        ips: addresses
            .iter()
            .map(|a| IpConfig {
                version: None,
                address: IpNet::from(a.addr()),
                gateway: None,
                interface: None,
            })
            .collect(),
        routes: vec![],
        dns: Default::default(),
    }
    .for_version(&conf.cni_version))
}

/// DEL: release (idempotent).
pub fn del(conf: &NetConf, env: &CniEnv) -> Result<(), CniError> {
    let ds = conf.open_datastore()?;
    ipam_ops::del(ds.as_ref(), &Owner::new(conf, env)).map(|_| ())
}

/// CHECK: the handle holds what prevResult lists.
pub fn check(conf: &NetConf, env: &CniEnv) -> Result<(), CniError> {
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| CniError::new(Code::InvalidNetworkConfig, "CHECK needs prevResult", ""))?;
    let expected: Vec<IpNet> = prev.ips.iter().map(|ip| ip.address).collect();
    ipam_ops::check(
        conf.open_datastore()?.as_ref(),
        &Owner::new(conf, env),
        &expected,
    )
}

/// STATUS.
pub fn status(conf: &NetConf) -> Result<(), CniError> {
    let ds = conf.open_datastore().map_err(|err| {
        CniError::new(
            Code::NotAvailable,
            "datastore not available",
            err.to_string(),
        )
    })?;
    ipam_ops::status(ds.as_ref(), conf)
}

/// GC.
pub fn gc(conf: &NetConf) -> Result<(), CniError> {
    let ds = conf.open_datastore()?;
    let network = if conf.name.is_empty() {
        "tortie"
    } else {
        conf.name.as_str()
    };
    ipam_ops::gc(
        ds.as_ref(),
        network,
        &conf.valid_attachments.clone().unwrap_or_default(),
    )
    .map(|_| ())
}

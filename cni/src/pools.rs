//! The pools and reservations a node may allocate from, read from the v3 resources in the
//! datastore: enabled IPPools whose nodeSelector selects this node's labels (the Node resource,
//! when there is one), restricted to the pools the configuration names, and IPReservations.
//!
//! Only the fields allocation needs are read, leniently, so that a pool written by a newer
//! Calico with fields unknown here still serves.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Deserialize;
use tortie_datastore::{Datastore, keys};
use tortie_ipam::{Pool, PoolUse};
use tortie_selector::Selector;

use crate::spec::{CniError, Code};

#[derive(Debug, Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PoolSpec {
    cidr: IpNet,
    #[serde(default)]
    block_size: Option<u8>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    node_selector: Option<String>,
    #[serde(default)]
    allowed_uses: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct PoolDoc {
    metadata: Meta,
    spec: PoolSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReservationSpec {
    #[serde(default, rename = "reservedCIDRs")]
    reserved_cidrs: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ReservationDoc {
    spec: ReservationSpec,
}

#[derive(Debug, Deserialize)]
struct NodeDoc {
    metadata: Meta,
}

/// Pools and reservations for one request.
#[derive(Debug, Clone, Default)]
pub struct Eligible {
    /// IPv4 pools in preference order.
    pub v4: Vec<Pool>,
    /// IPv6 pools in preference order.
    pub v6: Vec<Pool>,
    /// Reserved ranges.
    pub reservations: Vec<IpNet>,
}

fn datastore_error(err: tortie_datastore::DatastoreError) -> CniError {
    CniError::new(Code::Datastore, "datastore read failed", err.to_string())
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, CniError> {
    serde_json::from_slice(bytes).map_err(|err| {
        CniError::new(
            Code::Datastore,
            format!("cannot decode {key}"),
            err.to_string(),
        )
    })
}

/// The labels of `node`'s Node resource (empty when it has none).
pub fn node_labels(ds: &dyn Datastore, node: &str) -> Result<BTreeMap<String, String>, CniError> {
    let key = keys::resource_key("nodes", None, node).map_err(|err| {
        CniError::new(
            Code::InvalidNetworkConfig,
            "invalid node name",
            err.to_string(),
        )
    })?;
    match ds.get(&key).map_err(datastore_error)? {
        Some(kv) => Ok(decode::<NodeDoc>(&key, &kv.value)?.metadata.labels),
        None => Ok(BTreeMap::new()),
    }
}

/// Reads what `node` may allocate from. `wanted_v4` / `wanted_v6` name pools (by name or CIDR);
/// empty means every eligible pool of the family.
pub fn eligible(
    ds: &dyn Datastore,
    node: &str,
    wanted_v4: &[String],
    wanted_v6: &[String],
) -> Result<Eligible, CniError> {
    let labels = node_labels(ds, node)?;
    let prefix = keys::resource_prefix("ippools", None).map_err(datastore_error)?;
    let mut eligible = Eligible::default();
    for kv in ds.list(&prefix).map_err(datastore_error)?.kvs {
        let doc: PoolDoc = decode(&kv.key, &kv.value)?;
        if doc.spec.disabled {
            continue;
        }
        let selector = doc.spec.node_selector.as_deref().unwrap_or("all()");
        let selects = Selector::parse(selector)
            .map_err(|err| {
                CniError::new(
                    Code::Datastore,
                    format!("IPPool {}: bad nodeSelector", doc.metadata.name),
                    err.to_string(),
                )
            })?
            .matches(&labels);
        if !selects {
            continue;
        }
        let v6 = matches!(doc.spec.cidr, IpNet::V6(_));
        let wanted = if v6 { wanted_v6 } else { wanted_v4 };
        if !wanted.is_empty()
            && !wanted
                .iter()
                .any(|w| w == &doc.metadata.name || w.parse::<IpNet>().ok() == Some(doc.spec.cidr))
        {
            continue;
        }
        let allowed_uses = match &doc.spec.allowed_uses {
            None => vec![PoolUse::Workload, PoolUse::Tunnel],
            Some(uses) => uses
                .iter()
                .filter_map(|u| match u.as_str() {
                    "Workload" => Some(PoolUse::Workload),
                    "Tunnel" => Some(PoolUse::Tunnel),
                    _ => None,
                })
                .collect(),
        };
        let pool = Pool {
            name: doc.metadata.name,
            cidr: doc.spec.cidr,
            block_size: doc.spec.block_size.unwrap_or(if v6 { 122 } else { 26 }),
            allowed_uses,
        };
        if v6 {
            eligible.v6.push(pool)
        } else {
            eligible.v4.push(pool)
        }
    }
    // Pools named in the configuration are tried in the configuration's order.
    let rank = |wanted: &[String], pool: &Pool| {
        wanted
            .iter()
            .position(|w| w == &pool.name || w.parse::<IpNet>().ok() == Some(pool.cidr))
            .unwrap_or(usize::MAX)
    };
    eligible.v4.sort_by_key(|p| rank(wanted_v4, p));
    eligible.v6.sort_by_key(|p| rank(wanted_v6, p));

    let prefix = keys::resource_prefix("ipreservations", None).map_err(datastore_error)?;
    for kv in ds.list(&prefix).map_err(datastore_error)?.kvs {
        let doc: ReservationDoc = decode(&kv.key, &kv.value)?;
        for cidr in doc.spec.reserved_cidrs {
            let net = cidr
                .parse::<IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|err| {
                    CniError::new(
                        Code::Datastore,
                        format!("{}: bad reservedCIDRs entry {cidr:?}", kv.key),
                        err.to_string(),
                    )
                })?;
            eligible.reservations.push(net);
        }
    }
    Ok(eligible)
}

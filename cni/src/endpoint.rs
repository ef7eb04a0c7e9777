//! The WorkloadEndpoint the plugin writes for each attachment, its name (Calico's rules), the
//! host-side interface name, and the status key tortie-control sets once the endpoint is
//! programmed in the fastpath.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde_json::json;
use tortie_datastore::{Datastore, DatastoreError, keys};

use crate::ipam_ops::Owner;
use crate::netlink::GATEWAY_V4;
use crate::spec::{CniError, Code};

/// Prefix of endpoint status records written by tortie-control:
/// `<prefix><node>/<namespace>/<endpoint name>` holding `{"status":"up"}` once programmed.
pub const STATUS_PREFIX: &str = "/tortie/status/v1/endpoints/";

/// How often the readiness wait polls.
const STATUS_POLL: Duration = Duration::from_millis(50);

/// The orchestrator and workload id of an owner: `k8s` and the pod name when the runtime says
/// which pod this is, else `cni` and the container id.
pub fn orchestrator_and_workload(owner: &Owner) -> (&'static str, &str) {
    match &owner.pod {
        Some(pod) => ("k8s", pod.as_str()),
        None => ("cni", owner.container_id.as_str()),
    }
}

/// Calico's WorkloadEndpoint name: `<node>-<orchestrator>-<workload>-<endpoint>`, each part with
/// its dashes doubled so the name can be split again.
pub fn endpoint_name(owner: &Owner) -> String {
    let (orchestrator, workload) = orchestrator_and_workload(owner);
    [
        owner.node.as_str(),
        orchestrator,
        workload,
        owner.ifname.as_str(),
    ]
    .iter()
    .map(|part| part.replace('-', "--"))
    .collect::<Vec<_>>()
    .join("-")
}

/// The host-side interface name: `tor` and 11 hex digits of a SHA-1 of the workload identity
/// (`<namespace>.<pod>` or `<network>.<container id>`, plus the interface when not `eth0`).
pub fn host_interface_name(owner: &Owner) -> String {
    let mut identity = match &owner.pod {
        Some(pod) => format!("{}.{pod}", owner.namespace),
        None => format!("{}.{}", owner.network, owner.container_id),
    };
    if owner.ifname != "eth0" {
        identity.push('.');
        identity.push_str(&owner.ifname);
    }
    let digest = sha1_smol::Sha1::from(identity).digest().to_string();
    format!("tor{}", &digest[..11])
}

fn key(owner: &Owner) -> Result<String, CniError> {
    keys::resource_key(
        "workloadendpoints",
        Some(&owner.namespace),
        &endpoint_name(owner),
    )
    .map_err(|err| {
        CniError::new(
            Code::InvalidNetworkConfig,
            "cannot name the workload endpoint",
            err.to_string(),
        )
    })
}

/// Writes (or rewrites) the owner's WorkloadEndpoint.
pub fn write(
    ds: &dyn Datastore,
    owner: &Owner,
    labels: &BTreeMap<String, String>,
    addresses: &[IpNet],
    host_name: &str,
    mac: &str,
) -> Result<(), CniError> {
    let (orchestrator, workload) = orchestrator_and_workload(owner);
    let mut all_labels = labels.clone();
    all_labels.insert(
        "projectcalico.org/namespace".into(),
        owner.namespace.clone(),
    );
    all_labels.insert("projectcalico.org/orchestrator".into(), orchestrator.into());
    let mut spec = json!({
        "orchestrator": orchestrator,
        "node": owner.node,
        "containerID": owner.container_id,
        "endpoint": owner.ifname,
        "interfaceName": host_name,
        "mac": mac,
        "ipNetworks": addresses.iter().map(|a| IpNet::from(a.addr()).to_string()).collect::<Vec<_>>(),
        "profiles": [format!("kns.{}", owner.namespace)],
    });
    if addresses.iter().any(|a| matches!(a, IpNet::V4(_))) {
        spec["ipv4Gateway"] = json!(GATEWAY_V4.to_string());
    }
    match orchestrator {
        "k8s" => spec["pod"] = json!(workload),
        _ => spec["workload"] = json!(workload),
    }
    let document = json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "WorkloadEndpoint",
        "metadata": {
            "name": endpoint_name(owner),
            "namespace": owner.namespace,
            "labels": all_labels,
        },
        "spec": spec,
    });
    let bytes = serde_json::to_vec(&document).unwrap_or_default();
    ds.put(&key(owner)?, &bytes).map(|_| ()).map_err(|err| {
        CniError::new(
            Code::Datastore,
            "cannot write the workload endpoint",
            err.to_string(),
        )
    })
}

/// Deletes the owner's WorkloadEndpoint (absent is fine).
pub fn delete(ds: &dyn Datastore, owner: &Owner) -> Result<(), CniError> {
    match ds.delete(&key(owner)?, None) {
        Ok(_) | Err(DatastoreError::NotFound { .. }) => Ok(()),
        Err(err) => Err(CniError::new(
            Code::Datastore,
            "cannot delete the workload endpoint",
            err.to_string(),
        )),
    }
}

/// The status key of the owner's endpoint.
pub fn status_key(owner: &Owner) -> String {
    format!(
        "{STATUS_PREFIX}{}/{}/{}",
        owner.node,
        owner.namespace,
        endpoint_name(owner)
    )
}

/// Waits until tortie-control reports the endpoint programmed, at most `timeout`.
pub fn wait_programmed(
    ds: &dyn Datastore,
    owner: &Owner,
    timeout: Duration,
) -> Result<(), CniError> {
    let key = status_key(owner);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(kv) = ds.get(&key).map_err(|err| {
            CniError::new(
                Code::Datastore,
                "cannot read endpoint status",
                err.to_string(),
            )
        })? {
            let value: serde_json::Value = serde_json::from_slice(&kv.value).unwrap_or_default();
            if value["status"] == "up" {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(CniError::new(
                Code::NotProgrammed,
                format!(
                    "the dataplane did not report endpoint {} programmed within {timeout:?}",
                    endpoint_name(owner)
                ),
                format!("status key {key}"),
            ));
        }
        std::thread::sleep(STATUS_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(pod: Option<&str>) -> Owner {
        Owner {
            network: "k8s-pod-network".into(),
            container_id: "abc123".into(),
            ifname: "eth0".into(),
            node: "node-a".into(),
            namespace: "default".into(),
            pod: pod.map(str::to_string),
        }
    }

    #[test]
    fn names_follow_calico() {
        assert_eq!(
            endpoint_name(&owner(Some("web-1"))),
            "node--a-k8s-web--1-eth0"
        );
        assert_eq!(endpoint_name(&owner(None)), "node--a-cni-abc123-eth0");
        let host = host_interface_name(&owner(Some("web-1")));
        assert_eq!(host.len(), 14);
        assert!(host.starts_with("tor") && host[3..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(host, host_interface_name(&owner(Some("web-2"))));
    }
}

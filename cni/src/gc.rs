//! GC of workload endpoints: this node's endpoints whose container is no longer a valid
//! attachment lose their record and their host interface.

use serde::Deserialize;
use tortie_datastore::{Datastore, keys};

use crate::config::Attachment;
use crate::netlink;
use crate::spec::{CniError, Code};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    node: String,
    #[serde(rename = "containerID", default)]
    container_id: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    interface_name: String,
}

#[derive(Deserialize)]
struct Doc {
    spec: Spec,
}

/// Removes stale endpoints of `node`; returns their keys.
pub fn endpoints(
    ds: &dyn Datastore,
    node: &str,
    valid: &[Attachment],
) -> Result<Vec<String>, CniError> {
    let prefix = keys::resource_prefix("workloadendpoints", None)
        .map_err(|err| CniError::new(Code::Datastore, "bad key", err.to_string()))?;
    let listed = ds.list(&prefix).map_err(|err| {
        CniError::new(
            Code::Datastore,
            "cannot list workload endpoints",
            err.to_string(),
        )
    })?;
    let mut removed = Vec::new();
    for kv in listed.kvs {
        let Ok(doc) = serde_json::from_slice::<Doc>(&kv.value) else {
            continue;
        };
        let spec = doc.spec;
        if spec.node != node || spec.container_id.is_empty() {
            continue;
        }
        let still_valid = valid.iter().any(|a| {
            a.container_id == spec.container_id
                && (a.ifname.is_empty() || a.ifname == spec.endpoint)
        });
        if still_valid {
            continue;
        }
        if !spec.interface_name.is_empty() {
            let _ = netlink::teardown(&spec.interface_name);
        }
        if ds.delete(&kv.key, Some(kv.mod_revision)).is_ok() {
            removed.push(kv.key);
        }
    }
    Ok(removed)
}

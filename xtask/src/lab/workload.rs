//! Workloads: a network namespace attached to a node by the `tortie` CNI plugin, run the way a
//! container runtime runs it (environment + network configuration on stdin), inside the node's
//! namespace, so the host side of the veth lands on the node.

use std::path::Path;

use serde_json::{Value, json};

use crate::error::{Result, XtaskError};
use crate::exec::{in_netns, ip, ip_in, netns_path, run_with_stdin};

use super::plan::{self, NETWORK, NODES, Node, POOL_NAME, POOL6_NAME, ROUTER_NS, WORKLOAD_MTU};
use super::state::{LabState, WorkloadRecord};

/// What to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// The pod name (also names its network namespace).
    pub name: String,
    /// The Kubernetes-style namespace.
    pub namespace: String,
    /// The node.
    pub node: String,
    /// Labels (`role=frontend`).
    pub labels: Vec<(String, String)>,
}

impl WorkloadSpec {
    /// A spec with labels given as `key=value` pairs.
    pub fn new(name: &str, namespace: &str, node: &str, labels: &[(&str, &str)]) -> Self {
        WorkloadSpec {
            name: name.to_string(),
            namespace: namespace.to_string(),
            node: node.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// The CNI network configuration for attaching workloads to `node` of the lab in `state`. With
/// the daemons, ADD waits (up to 10 s) until tortie-control reports the endpoint programmed, as
/// a runtime would want before starting the container's process.
pub fn network_config(state: &LabState, node: &str) -> Value {
    let ready_timeout = if state.daemons { 10 } else { 0 };
    json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "type": "tortie",
        "nodename": node,
        "mtu": WORKLOAD_MTU,
        "datastore_type": "sqlite",
        "sqlite_path": state.datastore,
        "log_level": "info",
        "log_file_path": state.run_dir.join(node).join("cni.log"),
        "endpoint_ready_timeout_secs": ready_timeout,
        "ipam": if state.ipv6 {
            json!({"type": "tortie-ipam", "assign_ipv4": "true", "ipv4_pools": [POOL_NAME],
                   "assign_ipv6": "true", "ipv6_pools": [POOL6_NAME]})
        } else {
            json!({"type": "tortie-ipam", "assign_ipv4": "true", "ipv4_pools": [POOL_NAME]})
        },
    })
}

fn lab_node(name: &str) -> Result<&'static Node> {
    plan::node(name).ok_or_else(|| {
        XtaskError::Usage(format!(
            "no node {name:?} in the lab (nodes: node1, node2, node3)"
        ))
    })
}

/// Creates the workload's namespace and runs the plugin's ADD; returns the attachment. On
/// failure the namespace is removed again.
pub fn add(state: &LabState, spec: &WorkloadSpec) -> Result<WorkloadRecord> {
    let node = lab_node(&spec.node)?;
    let netns = plan::workload_namespace(&spec.name);
    ip(&["netns", "add", &netns])?;
    let attached = ip_in(&netns, &["link", "set", "lo", "up"]).and_then(|()| {
        let mut config = network_config(state, node.name);
        let labels: Vec<Value> = spec
            .labels
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        config["args"] = json!({"cni": {"labels": labels}});
        let record = WorkloadRecord {
            name: spec.name.clone(),
            namespace: spec.namespace.clone(),
            netns: netns.clone(),
            node: node.name.to_string(),
            address: String::new(),
            address6: String::new(),
            container_id: format!("lab-{}", spec.name),
        };
        let result = cni(state, "ADD", &record, &config.to_string())?;
        let address = first_ipv4(&result).ok_or_else(|| XtaskError::Command {
            command: format!("CNI ADD {}", spec.name),
            status: "no IPv4 address in the result".into(),
            output: result.clone(),
        })?;
        let address6 = first_ipv6(&result).unwrap_or_default();
        Ok(WorkloadRecord {
            address,
            address6,
            ..record
        })
    });
    match attached {
        Ok(record) => {
            static_routes(state, &record, true);
            Ok(record)
        }
        Err(err) => {
            let _ = ip(&["netns", "delete", &netns]);
            Err(err)
        }
    }
}

/// Runs the plugin's DEL and removes the workload's namespace (both even when one fails).
pub fn del(state: &LabState, record: &WorkloadRecord) -> Result<()> {
    static_routes(state, record, false);
    let config = network_config(state, &record.node).to_string();
    let deleted = cni(state, "DEL", record, &config).map(|_| ());
    let removed = ip(&["netns", "delete", &record.netns]);
    deleted.and(removed)
}

/// Runs the `tortie` plugin inside the node's namespace; returns its standard output.
fn cni(state: &LabState, command: &str, record: &WorkloadRecord, config: &str) -> Result<String> {
    let node = lab_node(&record.node)?;
    let plugin = state.bin_dir.join("tortie");
    let mut process = in_netns(node.namespace, &plugin);
    process
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &record.container_id)
        .env("CNI_NETNS", netns_path(&record.netns))
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", path_str(&state.bin_dir))
        .env(
            "CNI_ARGS",
            format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={}",
                record.namespace, record.name
            ),
        );
    let output = run_with_stdin(&mut process, Some(config))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// The first IPv4 address (without its prefix length) of a CNI result.
pub fn first_ipv4(result: &str) -> Option<String> {
    let value: Value = serde_json::from_str(result).ok()?;
    value["ips"].as_array()?.iter().find_map(|ip| {
        let address = ip["address"].as_str()?.split('/').next()?;
        address
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .map(|a| a.to_string())
    })
}

/// The first IPv6 address (without its prefix length) of a CNI result.
pub fn first_ipv6(result: &str) -> Option<String> {
    let value: Value = serde_json::from_str(result).ok()?;
    value["ips"].as_array()?.iter().find_map(|ip| {
        let address = ip["address"].as_str()?.split('/').next()?;
        address
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|a| a.to_string())
    })
}

/// Static routes standing in for what BGP would tell the other nodes and the router:
///
/// - without the daemons, the workload's IPv4 `/32` via its node, on the router and on the
///   nodes of the same segment (nodes on the other segment reach it through the router);
/// - with IPv6, the workload's `/128` via its node's IPv6 address on the router, with or without
///   the daemons: IP-in-IP carries IPv4 only, so IPv6 between segments is routed natively, and
///   the router learns workload routes in a real network by BGP, which the lab does not run.
///   Without the daemons the same-segment nodes get it too.
fn static_routes(state: &LabState, record: &WorkloadRecord, add: bool) {
    let Some(node) = plan::node(&record.node) else {
        return;
    };
    let verb = if add { "replace" } else { "delete" };
    let peers: Vec<&str> = NODES
        .iter()
        .filter(|other| other.name != node.name && other.segment == node.segment)
        .map(|other| other.namespace)
        .collect();
    if !state.daemons {
        let host = format!("{}/32", record.address);
        for namespace in peers.iter().copied().chain([ROUTER_NS]) {
            let _ = ip_in(namespace, &["route", verb, &host, "via", node.addr]);
        }
    }
    if state.ipv6 && !record.address6.is_empty() {
        let host = format!("{}/128", record.address6);
        let targets: Vec<&str> = if state.daemons {
            vec![ROUTER_NS]
        } else {
            peers.iter().copied().chain([ROUTER_NS]).collect()
        };
        for namespace in targets {
            let _ = ip_in(namespace, &["-6", "route", verb, &host, "via", node.addr6]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_ipv4_address_of_a_result() {
        let result = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],
            "ips":[{"address":"2001:db8::5/128"},{"address":"198.19.0.4/32","interface":0}]}"#;
        assert_eq!(first_ipv4(result), Some("198.19.0.4".into()));
        assert_eq!(first_ipv6(result), Some("2001:db8::5".into()));
        assert_eq!(first_ipv4(r#"{"ips":[]}"#), None);
        assert_eq!(first_ipv4("not json"), None);
    }

    #[test]
    fn the_network_config_names_node_pool_and_datastore() {
        let state = LabState {
            run_dir: "/run/tortie-lab".into(),
            bin_dir: "/b".into(),
            datastore: "/run/tortie-lab/datastore.db".into(),
            daemons: false,
            ipv6: false,
            routes_from_bgp: false,
            processes: vec![],
            workloads: vec![],
        };
        let config = network_config(&state, "node2");
        assert_eq!(config["type"], "tortie");
        assert_eq!(config["nodename"], "node2");
        assert_eq!(config["sqlite_path"], "/run/tortie-lab/datastore.db");
        assert_eq!(config["ipam"]["ipv4_pools"][0], POOL_NAME);
        assert_eq!(config["log_file_path"], "/run/tortie-lab/node2/cni.log");
    }
}

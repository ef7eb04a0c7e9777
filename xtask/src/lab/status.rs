//! `cargo xtask lab status [-o json]`: where everything of a running lab is, enough to attach
//! another host to a segment, point `tortiectl` at the datastore, or add a workload to a node
//! by hand with the CNI configuration shown.

use serde_json::{Value, json};

use super::daemons::{ring_path, status_path};
use super::datastore::datastore_env;
use super::health::{self, CONTROL_METRICS, FASTPATH_METRICS};
use super::plan::{
    BRIDGE, NODES, OUTSIDE_ADDR, OUTSIDE_NS, OUTSIDE_ROUTER_ADDR, POOL_BLOCK_SIZE, POOL_CIDR,
    POOL_NAME, ROUTER_NS, SEGMENTS, UPLINK,
};
use super::process::is_running;
use super::state::LabState;
use super::workload::network_config;

/// The lab's description as JSON (the `-o json` output).
pub fn to_json(state: &LabState) -> Value {
    let env: serde_json::Map<String, Value> = datastore_env(&state.datastore)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let export = datastore_env(&state.datastore)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let segments: Vec<Value> = SEGMENTS
        .iter()
        .map(|s| {
            json!({
                "name": s.name, "namespace": s.namespace, "bridge": BRIDGE, "subnet": s.subnet,
                "gateway": s.router_addr,
                "attach": format!(
                    "ip link add HOST type veth peer name PORT netns {ns} && \
                     ip -n {ns} link set PORT master {BRIDGE} up",
                    ns = s.namespace
                ),
            })
        })
        .collect();
    let nodes: Vec<Value> = NODES
        .iter()
        .map(|node| {
            let daemons: Vec<Value> = state
                .processes
                .iter()
                .filter(|p| p.node == node.name)
                .map(|p| {
                    let running = is_running(p);
                    let addr = if p.role == "control" {
                        CONTROL_METRICS
                    } else {
                        FASTPATH_METRICS
                    };
                    let ready = running
                        && health::get(node.namespace, addr, "/readyz")
                            .map(|a| a.code == 200)
                            .unwrap_or(false);
                    json!({"role": p.role, "pid": p.pid, "running": running, "ready": ready,
                           "metrics": addr, "log": p.log, "command": p.command})
                })
                .collect();
            json!({
                "name": node.name,
                "namespace": node.namespace,
                "uplink": UPLINK,
                "address": node.addr_cidr(),
                "address6": if state.ipv6 { Value::from(node.addr6_cidr()) } else { Value::Null },
                "gateway": node.segment.router_addr,
                "segment": node.segment.name,
                "ring": ring_path(&state.run_dir, node),
                "fastpath_status_file": status_path(&state.run_dir, node),
                "daemons": daemons,
                "cni_config": network_config(state, node.name),
            })
        })
        .collect();
    let workloads: Vec<Value> = state
        .workloads
        .iter()
        .map(|w| {
            json!({"name": w.name, "namespace": w.namespace, "netns": w.netns, "node": w.node,
                   "address": w.address, "address6": w.address6, "container_id": w.container_id})
        })
        .collect();
    json!({
        "run_dir": state.run_dir,
        "dataplane": if state.daemons { "tortie-fastpath" } else { "kernel" },
        "datastore": {"type": "sqlite", "path": state.datastore, "env": env, "export": export},
        "ipv6": state.ipv6,
        "pool": {"name": POOL_NAME, "cidr": POOL_CIDR, "blockSize": POOL_BLOCK_SIZE,
                 "ipipMode": "CrossSubnet", "natOutgoing": true},
        "segments": segments,
        "router": {"namespace": ROUTER_NS,
                   "addresses": SEGMENTS.iter().map(|s| s.router_addr).chain([OUTSIDE_ROUTER_ADDR]).collect::<Vec<_>>()},
        "outside": {"namespace": OUTSIDE_NS, "address": OUTSIDE_ADDR},
        "nodes": nodes,
        "workloads": workloads,
        "cni_plugin": state.bin_dir.join("tortie"),
    })
}

/// The same description for a person.
pub fn to_text(status: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    out.push_str(&format!(
        "Tortie lab in {} (dataplane: {})\n\nDatastore (for tortiectl):\n  export {}\n",
        s(&status["run_dir"]),
        s(&status["dataplane"]),
        s(&status["datastore"]["export"])
    ));
    out.push_str(&format!(
        "\nPool {} {} (blockSize {}, ipipMode CrossSubnet, natOutgoing)\n",
        s(&status["pool"]["name"]),
        s(&status["pool"]["cidr"]),
        status["pool"]["blockSize"]
    ));
    out.push_str("\nSegments (attach a host: a veth whose peer joins the bridge):\n");
    for seg in status["segments"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {:5} {:16} netns {} bridge {} gateway {}\n",
            s(&seg["name"]),
            s(&seg["subnet"]),
            s(&seg["namespace"]),
            s(&seg["bridge"]),
            s(&seg["gateway"])
        ));
    }
    out.push_str(&format!(
        "  outside host {} in netns {} (behind the router, netns {})\n",
        s(&status["outside"]["address"]),
        s(&status["outside"]["namespace"]),
        s(&status["router"]["namespace"])
    ));
    out.push_str("\nNodes:\n");
    for node in status["nodes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {}  netns {}  {} {} ({}), default via {}\n",
            s(&node["name"]),
            s(&node["namespace"]),
            s(&node["uplink"]),
            s(&node["address"]),
            s(&node["segment"]),
            s(&node["gateway"])
        ));
        for daemon in node["daemons"].as_array().into_iter().flatten() {
            let health = match (daemon["running"].as_bool(), daemon["ready"].as_bool()) {
                (Some(true), Some(true)) => "running, ready",
                (Some(true), _) => "running, NOT ready",
                _ => "NOT running",
            };
            out.push_str(&format!(
                "    tortie-{:8} pid {:7} {health}; metrics {} ; log {}\n",
                s(&daemon["role"]),
                daemon["pid"],
                s(&daemon["metrics"]),
                s(&daemon["log"])
            ));
        }
    }
    let workloads = status["workloads"].as_array().cloned().unwrap_or_default();
    if !workloads.is_empty() {
        out.push_str("\nWorkloads:\n");
        for w in workloads {
            out.push_str(&format!(
                "  {:12} {:6} on {}  {:15} netns {}\n",
                s(&w["name"]),
                s(&w["namespace"]),
                s(&w["node"]),
                s(&w["address"]),
                s(&w["netns"])
            ));
        }
    }
    out.push_str(&format!(
        "\nAdd a workload to node1 by hand (CNI config in `lab status -o json`, .nodes[].cni_config):\n  \
         ip netns add tortie-lab-wl-x && CNI_COMMAND=ADD CNI_CONTAINERID=x CNI_NETNS=/run/netns/tortie-lab-wl-x \
         CNI_IFNAME=eth0 CNI_PATH={} nsenter --net=/run/netns/tortie-lab-node1 {} < node1.conf\n",
        s(&status["cni_plugin"]).rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default(),
        s(&status["cni_plugin"])
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::state::WorkloadRecord;

    #[test]
    fn status_names_nodes_segments_datastore_and_cni_config() {
        let state = LabState {
            run_dir: "/run/tortie-lab".into(),
            bin_dir: "/src/target/debug".into(),
            datastore: "/run/tortie-lab/datastore.db".into(),
            daemons: false,
            ipv6: false,
            routes_from_bgp: false,
            processes: vec![],
            workloads: vec![WorkloadRecord {
                name: "web".into(),
                namespace: "ns-a".into(),
                netns: "tortie-lab-wl-web".into(),
                node: "node1".into(),
                address: "198.19.0.1".into(),
                address6: String::new(),
                container_id: "lab-web".into(),
            }],
        };
        let json = to_json(&state);
        assert_eq!(json["nodes"][2]["address"], "198.18.2.13/24");
        assert_eq!(json["nodes"][0]["namespace"], "tortie-lab-node1");
        assert_eq!(json["segments"][1]["subnet"], "198.18.2.0/24");
        assert_eq!(
            json["datastore"]["env"]["SQLITE_PATH"],
            "/run/tortie-lab/datastore.db"
        );
        assert_eq!(json["nodes"][1]["cni_config"]["nodename"], "node2");
        assert_eq!(json["dataplane"], "kernel");
        let text = to_text(&json);
        assert!(
            text.contains("export DATASTORE_TYPE=sqlite SQLITE_PATH=/run/tortie-lab/datastore.db")
        );
        assert!(text.contains("node3  netns tortie-lab-node3  eth0 198.18.2.13/24 (segB)"));
        assert!(text.contains("web"));
    }
}

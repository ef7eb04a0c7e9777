//! `tortiectl node status|routes` over status documents as tortie-control publishes them.

mod common;

use common::Session;
use tortie_datastore::{Datastore, SqliteStore};

fn publish(session: &Session, node: &str, updated: u64, generation: u64) {
    let doc = serde_json::json!({
        "node": node, "updated_unix": updated,
        "control": {"pid": 4242, "started_unix": updated - 60, "ready": true, "registered": true,
            "node_v4": "198.18.1.11/24", "node_v6": null, "uplink": "up0",
            "host_if": "tortie-host", "datastore": "sqlite:x", "datastore_revision": 17,
            "generation_sent": generation, "snapshots_sent": 1, "deltas_sent": 5, "resyncs": 0,
            "datastore_events": 20,
            "ring": {"path": "/run/tortie/ring", "producer_epoch": 1, "consumer_epoch": 1,
                "sent_messages": 6, "received_messages": 6, "lag": 0, "full_events": 0,
                "corrupt_records": 0, "skipped_records": 0, "snapshot_requests": 0},
            "endpoints": 2, "pending_endpoints": [], "unresolved_nodes": ["n3"],
            "failed_closed": [{"endpoint": "workload endpoint ns/x", "reason": "a named port in notPorts"}],
            "apply_latency": {"count": 5, "p50_ms": 2.5, "p99_ms": 3.0, "max_ms": 3.0}},
        "fastpath": {"state": "fresh", "age_s": 0, "status": {"pid": 99, "started_unix": updated - 50,
            "updated_unix": updated, "ready": true, "generation": generation,
            "awaiting_snapshot": false, "mode": "adaptive",
            "workers": [{"id": 0, "core": 1, "rx_packets": 10, "tx_packets": 9, "drops": 1,
                "interfaces": ["up0", "tortie-host", "tor0123456789a"]}],
            "interfaces": [{"name": "up0", "if_index": 3, "role": "uplink",
                "bind_mode": "DriverCopy", "queues": 1}]}},
        "routes": [
            {"prefix": "0.0.0.0/0", "target": "uplink", "node": null, "next_hop": "198.18.1.1",
             "interface": "up0", "encap": null, "origin": "default", "reason": null},
            {"prefix": "198.19.0.4/32", "target": "local", "node": null, "next_hop": null,
             "interface": "tor0123456789a", "encap": null, "origin": "local-workload", "reason": null},
            {"prefix": "198.19.0.64/26", "target": "node", "node": "n2", "next_hop": "198.18.1.12",
             "interface": "up0", "encap": "ipip-cross-subnet", "origin": "ipam-block", "reason": null}]
    });
    let ds = SqliteStore::open(&session.db).unwrap();
    ds.put(
        &format!("/tortie/status/v1/nodes/{node}"),
        doc.to_string().as_bytes(),
    )
    .unwrap();
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn node_status_of_one_node_and_of_all() {
    let session = Session::new();
    publish(&session, "n1", now(), 77);
    publish(&session, "n2", now() - 600, 5);
    let one = session.run(&["node", "status", "--node", "n1"]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert!(one.stdout.contains("Node n1"), "{}", one.stdout);
    assert!(
        one.stdout.contains("tortie-control   pid 4242  up  ready"),
        "{}",
        one.stdout
    );
    assert!(one.stdout.contains("generation sent 77"), "{}", one.stdout);
    assert!(
        one.stdout.contains("generation applied 77 (in sync)"),
        "{}",
        one.stdout
    );
    assert!(one.stdout.contains("tor0123456789a"), "{}", one.stdout);
    assert!(
        one.stdout.contains("failed closed: workload endpoint ns/x"),
        "{}",
        one.stdout
    );
    let all = session.run(&["node", "status"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert!(all.stdout.contains("Node n1") && all.stdout.contains("Node n2"));
    assert!(all.stdout.contains("pid 4242  stale"), "{}", all.stdout);
    let json = session.run(&["node", "status", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let missing = session.run(&["node", "status", "--node", "nope"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("no status published for node \"nope\""),
        "{}",
        missing.stderr
    );
}

#[test]
fn node_routes_text_and_json() {
    let session = Session::new();
    publish(&session, "n1", now(), 3);
    let text = session.run(&["node", "routes", "--node", "n1"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", text.stdout);
    assert!(lines[0].starts_with("PREFIX"));
    assert!(lines[1].contains("gateway 198.18.1.1") && lines[1].contains("default"));
    assert!(lines[2].contains("local workload") && lines[2].contains("tor0123456789a"));
    assert!(lines[3].contains("n2 (198.18.1.12)") && lines[3].contains("ipam-block"));
    let json = session.run(&["node", "routes", "--node", "n1", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v[2]["encap"], "ipip-cross-subnet");
    let bad = session.run(&["node", "routes", "--node", "n1", "-o", "yaml"]);
    assert_eq!(bad.code, 1);
}

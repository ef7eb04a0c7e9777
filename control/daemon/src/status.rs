//! The node status control publishes to the datastore, and the fastpath status file it
//! reads.
//!
//! Key: `/tortie/status/v1/nodes/<node>` (see [`node_status_key`]). Value (JSON):
//!
//! ```json
//! {"node":"node1","updated_unix":1700000005,
//!  "control":{"pid":1,"started_unix":1700000000,"ready":true,"stopped":false,"registered":true,
//!             "node_v4":"198.18.1.11/24","node_v6":null,"uplink":"eth0","host_if":"tortie-host",
//!             "datastore":"sqlite:/var/lib/tortie/tortie.db","datastore_revision":42,
//!             "generation_sent":4294967301,"snapshots_sent":1,"deltas_sent":4,"resyncs":0,
//!             "datastore_events":17,
//!             "ring":{"path":"/run/tortie/ring","producer_epoch":1,"consumer_epoch":1,
//!                     "sent_messages":5,"received_messages":5,"lag":0,"full_events":0,
//!                     "corrupt_records":0,"skipped_records":0,"snapshot_requests":0},
//!             "endpoints":2,"pending_endpoints":[],"unresolved_nodes":[],"failed_closed":[],
//!             "apply_latency":{"count":12,"p50_ms":0.4,"p99_ms":1.9,"max_ms":1.9}},
//!  "fastpath":{"state":"fresh","age_s":1,"status":{ ...the fastpath status file... }},
//!  "routes":[{"prefix":"198.19.0.64/26","target":"node","node":"node2",
//!             "next_hop":"198.18.1.12","interface":"eth0","encap":"ipip-cross-subnet",
//!             "origin":"ipam-block"}],
//!  "bgp":{"enabled":true,"running":true,"as_number":64512,"router_id":"198.18.1.11",
//!         "error":null,
//!         "peers":[{"address":"198.18.1.12","port":179,"type":"node-to-node mesh",
//!                   "node":"node2","remote_as":64512,"state":"up","info":"Established",
//!                   "since_unix":1700000002,"prefixes_received":1,
//!                   "prefixes_advertised":1}]}}
//! ```
//!
//! `bgp.peers[].state` is calicoctl's STATE (`up` when Established, else `start`) and
//! `info` the RFC 4271 state, with the last error while not Established. With `--bgp off`
//! `bgp` is `{"enabled":false,"running":false,...,"peers":[]}`.
//!
//! `fastpath.state` is `fresh` (file updated within [`FASTPATH_STALE_AFTER_S`]), `stale`
//! (older) or `missing` (no readable file; `status` is null then).

use std::path::Path;

use serde::Serialize;

/// The prefix of node status keys.
pub const NODE_STATUS_PREFIX: &str = "/tortie/status/v1/nodes/";
/// The prefix of endpoint status keys (read by the CNI plugin).
pub const ENDPOINT_STATUS_PREFIX: &str = "/tortie/status/v1/endpoints/";
/// A fastpath status file older than this is stale.
pub const FASTPATH_STALE_AFTER_S: u64 = 5;

/// The status key of a node.
pub fn node_status_key(node: &str) -> String {
    format!("{NODE_STATUS_PREFIX}{node}")
}

/// The status key of an endpoint (`/tortie/status/v1/endpoints/<node>/<namespace>/<name>`).
pub fn endpoint_status_key(node: &str, namespace: &str, name: &str) -> String {
    format!("{ENDPOINT_STATUS_PREFIX}{node}/{namespace}/{name}")
}

/// Seconds since the epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The ring's state as published.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RingStatus {
    /// Ring file.
    pub path: String,
    /// Producer instances so far.
    pub producer_epoch: u64,
    /// Consumer instances so far.
    pub consumer_epoch: u64,
    /// Messages written.
    pub sent_messages: u64,
    /// Messages the fastpath took.
    pub received_messages: u64,
    /// sent - received.
    pub lag: u64,
    /// Sends refused for room.
    pub full_events: u64,
    /// Records that failed validation.
    pub corrupt_records: u64,
    /// Deltas the fastpath skipped while awaiting a snapshot.
    pub skipped_records: u64,
    /// Snapshots the fastpath asked for.
    pub snapshot_requests: u64,
}

/// An endpoint denied everything because its policy could not be compiled.
#[derive(Debug, Clone, Serialize)]
pub struct FailedClosed {
    /// The endpoint.
    pub endpoint: String,
    /// Why.
    pub reason: String,
}

/// Control's own part.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ControlStatus {
    /// Process id.
    pub pid: u32,
    /// Start time.
    pub started_unix: u64,
    /// Registered and first snapshot sent.
    pub ready: bool,
    /// Written by a daemon that stopped cleanly (its last status).
    pub stopped: bool,
    /// The Node resource is written.
    pub registered: bool,
    /// Node IPv4 address with its length.
    pub node_v4: Option<String>,
    /// Node IPv6 address with its length.
    pub node_v6: Option<String>,
    /// Uplink interface.
    pub uplink: Option<String>,
    /// The fastpath end of the host veth pair.
    pub host_if: String,
    /// The datastore in use.
    pub datastore: String,
    /// Last datastore revision seen.
    pub datastore_revision: i64,
    /// Generation of the last message written.
    pub generation_sent: u64,
    /// Snapshots written by this instance.
    pub snapshots_sent: u64,
    /// Deltas written by this instance.
    pub deltas_sent: u64,
    /// Relists after a compaction or a lost watch.
    pub resyncs: u64,
    /// Datastore changes received.
    pub datastore_events: u64,
    /// Ring counters.
    pub ring: RingStatus,
    /// Local endpoints in the tables.
    pub endpoints: usize,
    /// Local workload endpoints waiting for their interface.
    pub pending_endpoints: Vec<String>,
    /// Other nodes whose MAC is not resolved.
    pub unresolved_nodes: Vec<String>,
    /// Endpoints failed closed.
    pub failed_closed: Vec<FailedClosed>,
    /// Change-to-ring latency of the recent bursts (compile, diff, encode, write).
    pub apply_latency: crate::metrics::LatencySummary,
}

/// The fastpath's part.
#[derive(Debug, Clone, Serialize)]
pub struct FastpathPart {
    /// `fresh`, `stale` or `missing`.
    pub state: &'static str,
    /// Seconds since the file's `updated_unix`.
    pub age_s: Option<u64>,
    /// The file's content.
    pub status: Option<serde_json::Value>,
}

/// One route in force, as published.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RouteStatus {
    /// Destination.
    pub prefix: String,
    /// `local`, `node`, `router` (a BGP next hop on the uplink's segment that is no node),
    /// `uplink`, `host` or `blackhole`.
    pub target: &'static str,
    /// The node, for `node`.
    pub node: Option<String>,
    /// The next hop address (a node's address, the router's, the gateway).
    pub next_hop: Option<String>,
    /// The interface it leaves by.
    pub interface: Option<String>,
    /// `none`, `ipip`, `ipip-cross-subnet` (for `node`), `none` for `router`, else null.
    pub encap: Option<&'static str>,
    /// Where it came from.
    pub origin: crate::routes::Origin,
    /// Why traffic is dropped, for `blackhole`.
    pub reason: Option<&'static str>,
}

/// The whole published document.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub node: String,
    /// When it was written.
    pub updated_unix: u64,
    /// Control.
    pub control: ControlStatus,
    /// Fastpath.
    pub fastpath: FastpathPart,
    /// Routes in force.
    pub routes: Vec<RouteStatus>,
    /// The BGP speaker and its sessions.
    pub bgp: crate::bgp::BgpStatus,
}

/// Reads the fastpath status file and classifies it.
pub fn read_fastpath(path: &Path, now: u64) -> FastpathPart {
    let parsed = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    match parsed {
        None => FastpathPart {
            state: "missing",
            age_s: None,
            status: None,
        },
        Some(v) => {
            let updated = v["updated_unix"].as_u64().unwrap_or(0);
            let age = now.saturating_sub(updated);
            FastpathPart {
                state: if age <= FASTPATH_STALE_AFTER_S {
                    "fresh"
                } else {
                    "stale"
                },
                age_s: Some(age),
                status: Some(v),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastpath_file_is_fresh_stale_or_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fp.json");
        assert_eq!(read_fastpath(&path, 100).state, "missing");
        std::fs::write(&path, r#"{"updated_unix":98,"generation":7}"#).unwrap();
        let fresh = read_fastpath(&path, 100);
        assert_eq!((fresh.state, fresh.age_s), ("fresh", Some(2)));
        assert_eq!(fresh.status.unwrap()["generation"], 7);
        assert_eq!(read_fastpath(&path, 200).state, "stale");
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(read_fastpath(&path, 100).state, "missing");
    }

    #[test]
    fn keys() {
        assert_eq!(node_status_key("n1"), "/tortie/status/v1/nodes/n1");
        assert_eq!(
            endpoint_status_key("n1", "ns", "ep"),
            "/tortie/status/v1/endpoints/n1/ns/ep"
        );
    }
}

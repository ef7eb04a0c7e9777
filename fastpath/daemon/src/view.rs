//! What the config thread knows, shared with the metrics scrape and the status file.
//!
//! The config thread rewrites [`View`] under a mutex after each change (a control-path lock;
//! workers never touch it). Worker counters come from their [`WorkerStats`].

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tortie_abi::{IpipMode, RouteTarget, Tables};
use tortie_ring::RingStats;

use crate::stats::WorkerStats;

/// One served interface as the status file reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceView {
    /// Name.
    pub name: String,
    /// Index.
    pub if_index: u32,
    /// `uplink`, `host` or `workload`.
    pub role: &'static str,
    /// Bind mode of its sockets (`None` until one bound).
    pub bind_mode: Option<String>,
    /// Queues served (sockets open).
    pub queues: u32,
    /// Last attach error, if any.
    pub error: Option<String>,
}

/// The config thread's published view.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// Generation in force (0: none applied yet).
    pub generation: u64,
    /// When it was applied (wall clock, for the status file).
    pub applied_unix: Option<u64>,
    /// When it was applied (monotonic, for the age metric).
    pub applied_at: Option<Instant>,
    /// The ring consumer waits for a snapshot (after a restart or a lost record).
    pub awaiting_snapshot: bool,
    /// The ring's counters.
    pub ring: RingStats,
    /// Ring messages whose tortie-abi payload did not decode.
    pub decode_errors: u64,
    /// Deltas skipped because their base was not the generation in force.
    pub skipped_deltas: u64,
    /// Table sets that did not compile (the previous generation stays).
    pub compile_errors: u64,
    /// Served interfaces.
    pub interfaces: Vec<IfaceView>,
    /// Interface names per worker.
    pub worker_interfaces: Vec<Vec<String>>,
    /// Routes of the tables in force, as status JSON objects.
    pub routes: Vec<Value>,
    /// Rule id per rule slot of the generation in force.
    pub rule_ids: Vec<Option<u32>>,
    /// Readiness.
    pub ready: bool,
    /// Steering program counters (redirected, passed, redirect failed), read once a second.
    pub steer: Option<[u64; 3]>,
    /// Ring-to-workers latency of recent generations ([`crate::latency::LatencyWindow`]).
    pub apply_latency: Value,
}

/// State shared by the config thread, the metrics collector and the status writer.
#[derive(Debug)]
pub struct Shared {
    /// Workers' counters.
    pub workers: Vec<Arc<WorkerStats>>,
    /// The config thread's view.
    pub view: Mutex<View>,
    /// Process id.
    pub pid: u32,
    /// Start time (unix seconds).
    pub started_unix: u64,
    /// `busy` or `adaptive`.
    pub mode: &'static str,
}

/// Seconds since the epoch now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Shared {
    /// A copy of the view.
    pub fn view(&self) -> View {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Edits the view.
    pub fn update(&self, f: impl FnOnce(&mut View)) {
        let mut v = self.view.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut v);
    }

    /// The status document of the node contract.
    pub fn status_json(&self) -> Value {
        let v = self.view();
        let mut drops = serde_json::Map::new();
        let workers: Vec<Value> = self
            .workers
            .iter()
            .map(|w| {
                let s = w.snapshot();
                for (name, n) in &s.drops {
                    if *n > 0 {
                        let e = drops.entry(name.to_string()).or_insert(json!(0u64));
                        *e = json!(e.as_u64().unwrap_or(0) + n);
                    }
                }
                json!({
                    "id": s.id,
                    "core": s.core,
                    "rt_priority": s.rt_priority,
                    "rx_packets": s.rx_packets(),
                    "tx_packets": s.tx_packets(),
                    "drops": s.total_drops(),
                    "interfaces": v.worker_interfaces.get(s.id).cloned().unwrap_or_default(),
                })
            })
            .collect();
        let interfaces: Vec<Value> = v
            .interfaces
            .iter()
            .map(|i| {
                json!({
                    "name": i.name,
                    "if_index": i.if_index,
                    "role": i.role,
                    "bind_mode": i.bind_mode,
                    "queues": i.queues,
                    "error": i.error,
                })
            })
            .collect();
        json!({
            "pid": self.pid,
            "started_unix": self.started_unix,
            "updated_unix": unix_now(),
            "ready": v.ready,
            "generation": v.generation,
            "generation_applied_unix": v.applied_unix,
            "apply_latency": v.apply_latency,
            "awaiting_snapshot": v.awaiting_snapshot,
            "mode": self.mode,
            "workers": workers,
            "interfaces": interfaces,
            "routes": v.routes,
            "ring": {
                "producer_epoch": v.ring.producer_epoch,
                "consumer_epoch": v.ring.consumer_epoch,
                "received_messages": v.ring.received_messages,
                "corrupt_records": v.ring.corrupt_records,
                "skipped_records": v.ring.skipped_records,
                "decode_errors": v.decode_errors,
                "skipped_deltas": v.skipped_deltas,
            },
            "drops_by_reason": drops,
        })
    }

    /// Writes the status document to `path` atomically (temporary file, then rename).
    pub fn write_status(&self, path: &std::path::Path) -> std::io::Result<()> {
        let body = self.status_json().to_string();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, path)
    }
}

/// The routes of `tables` as status objects (`target`: local, node, uplink, host, blackhole).
pub fn route_views(tables: &Tables) -> Vec<Value> {
    tables
        .routes
        .iter()
        .map(|r| {
            let prefix = format!("{}/{}", r.prefix.addr, r.prefix.len);
            let (target, if_index, node, encap) = match r.target {
                RouteTarget::Local(id) => {
                    let ifi = tables
                        .endpoints
                        .iter()
                        .find(|e| e.id == id)
                        .map(|e| e.if_index);
                    ("local", ifi, None, None)
                }
                RouteTarget::Node { node, encap } => {
                    let addr = tables
                        .nodes
                        .iter()
                        .find(|n| n.id == node)
                        .map(|n| n.addr.to_string());
                    let encap = encap.map(|m| match m {
                        IpipMode::Never => "never",
                        IpipMode::Always => "always",
                        IpipMode::CrossSubnet => "cross-subnet",
                    });
                    ("node", None, addr, encap)
                }
                RouteTarget::Uplink => ("uplink", None, None, None),
                RouteTarget::Host => ("host", None, None, None),
                RouteTarget::Blackhole => ("blackhole", None, None, None),
            };
            json!({"prefix": prefix, "target": target, "if_index": if_index, "node": node, "encap": encap})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tortie_abi::{EndpointId, Prefix, Route};

    #[test]
    fn status_has_the_contract_fields_and_is_written_atomically() {
        let shared = Shared {
            workers: vec![Arc::new(WorkerStats::new(0, 1))],
            view: Mutex::new(View::default()),
            pid: 7,
            started_unix: 100,
            mode: "adaptive",
        };
        let mut t = Tables::default();
        t.routes.push(Route {
            prefix: Prefix::new("198.19.0.4".parse().unwrap(), 32).unwrap(),
            target: RouteTarget::Local(EndpointId(3)),
        });
        shared.update(|v| {
            v.generation = 42;
            v.ready = true;
            v.routes = route_views(&t);
            v.worker_interfaces = vec![vec!["eth0".into()]];
        });
        let s = shared.status_json();
        assert_eq!(s["generation"], 42);
        assert_eq!(s["ready"], true);
        assert_eq!(s["mode"], "adaptive");
        assert_eq!(s["workers"][0]["core"], 1);
        assert_eq!(
            s["workers"][0]["rt_priority"], 0,
            "an ordinary task unless set"
        );
        shared.workers[0]
            .rt_priority
            .store(2, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(shared.status_json()["workers"][0]["rt_priority"], 2);
        assert_eq!(s["workers"][0]["interfaces"][0], "eth0");
        assert_eq!(s["routes"][0]["prefix"], "198.19.0.4/32");
        assert_eq!(s["routes"][0]["target"], "local");
        assert!(s["ring"]["corrupt_records"].is_u64());
        let dir = std::env::temp_dir().join(format!("tortie-fp-status-{}", std::process::id()));
        let path = dir.join("status.json");
        shared.write_status(&path).unwrap();
        let back: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back["pid"], 7);
        assert!(!dir.join("status.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

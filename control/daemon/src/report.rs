//! What the daemon reports: the node status document, endpoint status for the CNI plugin,
//! and the thread that writes them (and runs compactions) off the main loop.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Instant;

use tortie_calc::EndpointId;
use tortie_datastore::Datastore;

use crate::engine::Engine;
use crate::host::HOST_IF;
use crate::options::Options;
use crate::status::{
    self, ControlStatus, FailedClosed, NodeStatus, RingStatus, RouteStatus, endpoint_status_key,
    now_unix,
};

/// A write for the status thread.
pub(crate) enum StatusWrite {
    Put(String, String),
    Delete(String),
}

/// Writes status keys (and runs compactions) off the main loop, so a slow datastore commit
/// never delays table updates.
pub(crate) fn status_writer(ds: &dyn Datastore, rx: &mpsc::Receiver<StatusWrite>) {
    while let Ok(write) = rx.recv() {
        let result = match write {
            StatusWrite::Put(key, value) => ds.put(&key, value.as_bytes()).map(|_| ()),
            StatusWrite::Delete(key) => match key.strip_prefix("compact:") {
                Some(rev) => match rev.parse() {
                    Ok(rev) => ds.compact(rev).or_else(|e| {
                        if matches!(e, tortie_datastore::DatastoreError::Compacted { .. }) {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    }),
                    Err(_) => Ok(()),
                },
                None => match ds.delete(&key, None) {
                    Err(tortie_datastore::DatastoreError::NotFound { .. }) => Ok(()),
                    other => other.map(|_| ()),
                },
            },
        };
        if let Err(err) = result {
            tracing::warn!(%err, "status write failed");
        }
    }
}

/// Bookkeeping of the loop.
pub(crate) struct LoopState {
    pub(crate) started: u64,
    pub(crate) registered: bool,
    pub(crate) ready: bool,
    pub(crate) last_status: Instant,
    pub(crate) last_published_generation: u64,
    pub(crate) last_refresh: Instant,
    pub(crate) last_compact: Instant,
    /// Endpoints reported up.
    pub(crate) reported: BTreeMap<EndpointId, ()>,
    /// Endpoints in the tables since this generation, not yet reported.
    pub(crate) pending_report: BTreeMap<EndpointId, u64>,
    pub(crate) uplink_name: Option<String>,
    pub(crate) describe: String,
    pub(crate) resyncs: u64,
    pub(crate) latency: crate::metrics::LatencyWindow,
}

impl LoopState {
    pub(crate) fn note_generation(&mut self, engine: &Engine, generation: u64) {
        for id in engine.in_tables.values() {
            if !self.reported.contains_key(id) {
                self.pending_report.entry(id.clone()).or_insert(generation);
            }
        }
    }

    /// Reports endpoints up once the fastpath applied a generation that holds them (or at
    /// once when no fastpath status file exists: nothing else will apply them), and deletes
    /// the status of endpoints that left.
    pub(crate) fn report_endpoints(
        &mut self,
        engine: &Engine,
        opts: &Options,
        tx: &mpsc::Sender<StatusWrite>,
    ) {
        let gone: Vec<EndpointId> = self
            .reported
            .keys()
            .filter(|id| !engine.cluster.workloads.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            self.reported.remove(&id);
            if let EndpointId::Workload { namespace, name } = &id {
                let _ = tx.send(StatusWrite::Delete(endpoint_status_key(
                    &opts.node, namespace, name,
                )));
            }
        }
        self.pending_report.retain(|id, _| {
            engine.cluster.workloads.contains_key(id) || engine.cluster.hosts.contains_key(id)
        });
        if self.pending_report.is_empty() {
            return;
        }
        let fastpath = status::read_fastpath(&opts.fastpath_status, now_unix());
        let applied = match fastpath.state {
            "missing" => u64::MAX,
            "fresh" => fastpath
                .status
                .as_ref()
                .and_then(|s| s["generation"].as_u64())
                .unwrap_or(0),
            _ => 0,
        };
        let ready: Vec<EndpointId> = self
            .pending_report
            .iter()
            .filter(|(_, g)| **g <= applied)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ready {
            self.pending_report.remove(&id);
            self.reported.insert(id.clone(), ());
            if let EndpointId::Workload { namespace, name } = &id {
                let _ = tx.send(StatusWrite::Put(
                    endpoint_status_key(&opts.node, namespace, name),
                    r#"{"status":"up"}"#.to_string(),
                ));
            }
        }
    }

    pub(crate) fn status(&self, engine: &Engine, opts: &Options, revision: i64) -> NodeStatus {
        let ring = engine.publisher.stats();
        let now = now_unix();
        let uplink = self.uplink_name.clone();
        let routes = engine
            .routes
            .iter()
            .map(|r| route_status(engine, r, uplink.as_deref()))
            .collect();
        NodeStatus {
            node: opts.node.clone(),
            updated_unix: now,
            control: ControlStatus {
                pid: std::process::id(),
                started_unix: self.started,
                ready: self.ready && self.registered,
                stopped: false,
                registered: self.registered,
                node_v4: engine.host.my.v4.map(|n| n.to_string()),
                node_v6: engine.host.my.v6.map(|n| n.to_string()),
                uplink,
                host_if: HOST_IF.to_string(),
                datastore: self.describe.clone(),
                datastore_revision: revision,
                generation_sent: engine.publisher.generation(),
                snapshots_sent: engine.publisher.snapshots,
                deltas_sent: engine.publisher.deltas,
                resyncs: self.resyncs,
                datastore_events: engine.events,
                ring: RingStatus {
                    path: engine.publisher.path().display().to_string(),
                    producer_epoch: ring.producer_epoch,
                    consumer_epoch: ring.consumer_epoch,
                    sent_messages: ring.sent_messages,
                    received_messages: ring.received_messages,
                    lag: ring.sent_messages.saturating_sub(ring.received_messages),
                    full_events: ring.full_events,
                    corrupt_records: ring.corrupt_records,
                    skipped_records: ring.skipped_records,
                    snapshot_requests: ring.snapshot_requests,
                },
                endpoints: engine.in_tables.len(),
                pending_endpoints: engine.pending_endpoints.clone(),
                unresolved_nodes: engine.unresolved_nodes.clone(),
                failed_closed: engine
                    .shared
                    .failed_closed()
                    .iter()
                    .map(|(id, reason)| FailedClosed {
                        endpoint: id.to_string(),
                        reason: reason.clone(),
                    })
                    .collect(),
                apply_latency: self.latency.summary(),
            },
            fastpath: status::read_fastpath(&opts.fastpath_status, now),
            routes,
            bgp: engine
                .bgp
                .as_ref()
                .map_or_else(crate::bgp::BgpStatus::disabled, |b| b.status()),
        }
    }
}

fn route_status(
    engine: &Engine,
    r: &crate::routes::RouteEntry,
    uplink: Option<&str>,
) -> RouteStatus {
    use crate::routes::Target;
    use tortie_abi::IpipMode;
    let gateway = engine
        .neigh
        .gateway
        .filter(|g| g.addr.is_ipv4() == r.prefix.addr().is_ipv4())
        .map(|g| g.addr.to_string());
    let (target, node, next_hop, interface, encap, reason) = match &r.target {
        Target::Local { interface, .. } => {
            ("local", None, None, Some(interface.clone()), None, None)
        }
        Target::Node { node, encap } => {
            let addr = engine
                .cluster
                .nodes
                .get(node)
                .and_then(|a| a.v4.or(a.v6))
                .map(|a| a.addr().to_string());
            let mode = encap.unwrap_or(IpipMode::Never);
            let word = match mode {
                IpipMode::Never => "none",
                IpipMode::Always => "ipip",
                IpipMode::CrossSubnet => "ipip-cross-subnet",
            };
            (
                "node",
                Some(node.clone()),
                addr,
                uplink.map(str::to_string),
                Some(word),
                None,
            )
        }
        Target::Router { addr } => (
            "router",
            None,
            Some(addr.to_string()),
            uplink.map(str::to_string),
            Some("none"),
            None,
        ),
        Target::Uplink => (
            "uplink",
            None,
            gateway,
            uplink.map(str::to_string),
            None,
            None,
        ),
        Target::Host => ("host", None, None, Some(HOST_IF.to_string()), None, None),
        Target::Blackhole(why) => ("blackhole", None, None, None, None, Some(*why)),
    };
    RouteStatus {
        prefix: r.prefix.to_string(),
        target,
        node,
        next_hop,
        interface,
        encap,
        origin: r.origin,
        reason,
    }
}

//! The control loop's state and one cycle: graph flush -> compiler delta -> tables ->
//! diff -> one ring message.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::net::IpAddr;

use tortie_abi as abi;
use tortie_calc::CalcEvent;
use tortie_calc::EndpointId;
use tortie_calc::compile::FastpathCompiler;

use crate::cluster::{Cluster, NodeAddrs};
use crate::error::ControlError;
use crate::host::{LinkCache, Neighbours};
use crate::netlink::{Link, Netlink};
use crate::programs::SharedPrograms;
use crate::publisher::{Publisher, Sent};
use crate::routes::RouteEntry;
use crate::sync::Update;
use crate::tables::{SentTables, diff_plain};

/// Stable numeric ids for names (never reused within one process).
#[derive(Debug)]
pub struct Ids<K> {
    map: HashMap<K, u32>,
    next: u32,
}

impl<K: Hash + Eq + Clone> Default for Ids<K> {
    fn default() -> Self {
        Ids {
            map: HashMap::new(),
            next: 0,
        }
    }
}

impl<K: Hash + Eq + Clone> Ids<K> {
    /// The id of `key`, handing out the next one the first time.
    pub fn get(&mut self, key: &K) -> u32 {
        if let Some(id) = self.map.get(key) {
            return *id;
        }
        self.next += 1;
        self.map.insert(key.clone(), self.next);
        self.next
    }
}

/// Host facts fixed at start.
pub struct HostFacts {
    /// This node's addresses.
    pub my: NodeAddrs,
    /// The uplink, if one is known.
    pub uplink: Option<Link>,
    /// The fastpath end of the host veth pair.
    pub host_link: Link,
}

/// The control loop's state.
pub struct Engine {
    pub(crate) node: String,
    /// The netlink connection.
    pub nl: Netlink,
    /// Datastore-derived state and the policy graph.
    pub cluster: Cluster,
    /// The policy compiler.
    pub compiler: FastpathCompiler,
    /// The ring.
    pub publisher: Publisher,
    /// What was sent.
    pub sent: SentTables,
    pub(crate) endpoint_ids: Ids<EndpointId>,
    pub(crate) node_ids: Ids<String>,
    /// Programs shared by endpoints with equal plans.
    pub shared: SharedPrograms,
    /// Link indexes.
    pub links: LinkCache,
    /// Gateway and node MACs.
    pub neigh: Neighbours,
    /// Host facts.
    pub host: HostFacts,
    /// Routes of the last cycle.
    pub routes: Vec<RouteEntry>,
    /// Local workloads whose interface is missing.
    pub pending_endpoints: Vec<String>,
    /// Other nodes whose MAC is not resolved (and BGP next-hop routers, as `next-hop ADDR`).
    pub unresolved_nodes: Vec<String>,
    /// Routers on the uplink's subnet that learned BGP routes go through (set by each
    /// build of the tables): their MACs are looked up with the nodes'.
    pub(crate) fabric_next_hops: Vec<IpAddr>,
    /// Table id -> endpoint, for the endpoints in the last tables.
    pub in_tables: BTreeMap<u32, EndpointId>,
    pub(crate) snapshot_pending: bool,
    /// Whether the non-policy tables must be rebuilt at the next cycle (a routing, endpoint
    /// or settings input changed, a link or neighbour changed, an endpoint's programs moved).
    pub tables_dirty: bool,
    /// Datastore changes applied.
    pub events: u64,
    /// The BGP speaker (`None` with `--bgp off`).
    pub bgp: Option<crate::bgp::BgpRunner>,
}

impl Engine {
    /// A fresh engine; the first [`Engine::cycle`] sends a snapshot.
    pub fn new(
        node: &str,
        nl: Netlink,
        publisher: Publisher,
        host: HostFacts,
        neigh: Neighbours,
    ) -> Engine {
        Engine {
            node: node.to_string(),
            nl,
            cluster: Cluster::new(node),
            compiler: FastpathCompiler::new(),
            publisher,
            sent: SentTables::default(),
            endpoint_ids: Ids::default(),
            node_ids: Ids::default(),
            shared: SharedPrograms::default(),
            links: LinkCache::default(),
            neigh,
            host,
            routes: Vec::new(),
            pending_endpoints: Vec::new(),
            unresolved_nodes: Vec::new(),
            fabric_next_hops: Vec::new(),
            in_tables: BTreeMap::new(),
            snapshot_pending: true,
            tables_dirty: true,
            events: 0,
            bgp: None,
        }
    }

    /// Applies one datastore update to the state (nothing is sent until [`Engine::cycle`]).
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Event(tortie_datastore::WatchEvent::Put { kv, .. }) => {
                self.events += 1;
                self.tables_dirty |= self.cluster.apply(&kv.key, Some(&kv.value)).tables;
            }
            Update::Event(tortie_datastore::WatchEvent::Delete { key, .. }) => {
                self.events += 1;
                self.tables_dirty |= self.cluster.apply(&key, None).tables;
            }
            Update::Resync(kvs) => {
                let present: BTreeSet<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
                for key in self.cluster.keys() {
                    if !present.contains(key.as_str()) {
                        self.cluster.apply(&key, None);
                    }
                }
                for kv in &kvs {
                    self.events += 1;
                    self.cluster.apply(&kv.key, Some(&kv.value));
                }
                self.tables_dirty = true;
            }
        }
    }

    /// Re-plans the BGP speaker if one of its inputs changed; marks the tables dirty when
    /// its learned routes changed. Called every loop iteration.
    pub fn poll_bgp(&mut self) {
        let Some(bgp) = &mut self.bgp else {
            return;
        };
        if std::mem::take(&mut self.cluster.bgp_changed) {
            bgp.sync(&self.cluster);
        }
        self.tables_dirty |= bgp.take_changed();
    }

    /// Asks for a full snapshot at the next cycle.
    pub fn request_snapshot(&mut self) {
        self.snapshot_pending = true;
    }

    /// Whether a snapshot is owed (the ring asked, or a send failed).
    pub fn snapshot_owed(&mut self) -> bool {
        if self.publisher.snapshot_due() {
            self.snapshot_pending = true;
        }
        self.snapshot_pending
    }

    /// Addresses of other nodes on the uplink's subnet (whose MACs must be resolved).
    pub fn neighbour_addrs(&self) -> Vec<IpAddr> {
        self.cluster
            .nodes
            .iter()
            .filter(|(name, _)| **name != self.node)
            .filter_map(|(_, a)| a.v4.or(a.v6))
            .filter(|a| {
                let mine = if a.addr().is_ipv4() {
                    self.host.my.v4
                } else {
                    self.host.my.v6
                };
                mine.is_some_and(|m| m.contains(&a.addr()))
            })
            .map(|a| a.addr())
            .chain(self.fabric_next_hops.iter().copied())
            .collect()
    }

    /// Flushes the graph, builds the tables, diffs them against what was sent and writes one
    /// message: a snapshot when one is owed, else a delta if anything changed. Returns the
    /// generation written, if any.
    pub fn cycle(&mut self) -> Result<Option<u64>, ControlError> {
        let t_start = std::time::Instant::now();
        let events = self.cluster.graph.flush();
        let t_flush = std::time::Instant::now();
        let graph = &self.cluster.graph;
        let local = |id: &EndpointId| {
            self.cluster.workloads.contains_key(id) || self.cluster.hosts.contains_key(id)
        };
        // IP sets go to the compiler (they hold every endpoint's addresses); programs are
        // compiled here per distinct plan of this node's endpoints.
        let mut set_events = Vec::new();
        let mut affected: BTreeSet<EndpointId> = BTreeSet::new();
        let mut planned: BTreeMap<EndpointId, std::sync::Arc<tortie_calc::EndpointPlan>> =
            BTreeMap::new();
        let mut removed: BTreeSet<EndpointId> = BTreeSet::new();
        for event in events {
            match &event {
                CalcEvent::IpSetAdded { id, .. } | CalcEvent::IpSetDelta { id, .. } => {
                    if id.0.starts_with("n:") {
                        // A named-port set's (protocol, port) groups shape the rules using it.
                        affected.extend(graph.endpoints_using_set(id).into_iter().filter(local));
                    }
                    set_events.push(event);
                }
                CalcEvent::IpSetRemoved(_) => set_events.push(event),
                CalcEvent::PolicyUpdated(p) => affected.extend(
                    graph
                        .endpoints_using_policy(&p.id)
                        .into_iter()
                        .filter(local),
                ),
                CalcEvent::ProfileUpdated(p) => affected.extend(
                    graph
                        .endpoints_using_profile(&p.name)
                        .into_iter()
                        .filter(local),
                ),
                CalcEvent::EndpointUpdated(plan) => {
                    if local(&plan.id) {
                        planned.insert(plan.id.clone(), plan.clone());
                    }
                }
                CalcEvent::EndpointRemoved(id) => {
                    removed.insert(id.clone());
                }
                CalcEvent::PolicyRemoved(_) | CalcEvent::ProfileRemoved(_) => {}
            }
        }
        // Endpoints that became this node's, or stopped being, without a plan change.
        for id in self
            .cluster
            .workloads
            .keys()
            .chain(self.cluster.hosts.keys())
        {
            if !self.shared.has(id) {
                affected.insert(id.clone());
            }
        }
        removed.extend(self.shared.endpoints_not(local));
        let set_ops = self.compiler.delta(&self.cluster.graph, &set_events);
        let (program_upserts, program_removals) = self.shared.update(
            &self.cluster.graph,
            &mut self.compiler,
            &planned,
            &affected,
            &removed,
        );
        let t_compile = std::time::Instant::now();
        // A change of policy content alone leaves endpoints, routes, nodes and settings as
        // they are: skip rebuilding them. Endpoints that only moved between program groups
        // (their plans changed) need their program ids updated, nothing else.
        let rebuild = std::mem::take(&mut self.tables_dirty)
            | self.snapshot_pending
            | !self.pending_endpoints.is_empty();
        let regrouped = self.shared.take_regrouped();
        let plain = rebuild.then(|| self.build_plain());
        let t_plain = std::time::Instant::now();

        let mut early = Vec::new();
        let mut late = program_removals;
        for op in set_ops {
            match op {
                abi::Op::UpsertIpSet(_) => early.push(op),
                abi::Op::RemoveIpSet(_) => late.push(op),
                _ => {}
            }
        }
        early.extend(program_upserts);
        for op in early.iter().chain(late.iter()) {
            self.sent.apply_policy(op);
        }
        let (upserts, removals) = match plain {
            Some(plain) => {
                let diff = diff_plain(&self.sent.plain, &plain);
                self.sent.plain = plain;
                diff
            }
            None if regrouped => (self.regroup_endpoints(), Vec::new()),
            None => (Vec::new(), Vec::new()),
        };
        let t_diff = std::time::Instant::now();
        let result = self.send(early, upserts, removals, late);
        tracing::debug!(
            flush_us = (t_flush - t_start).as_micros() as u64,
            compile_us = (t_compile - t_flush).as_micros() as u64,
            tables_us = (t_plain - t_compile).as_micros() as u64,
            diff_us = (t_diff - t_plain).as_micros() as u64,
            send_us = t_diff.elapsed().as_micros() as u64,
            "cycle"
        );
        result
    }

    /// Writes the cycle's message: a snapshot when one is owed, else the delta (if any op).
    fn send(
        &mut self,
        early: Vec<abi::Op>,
        upserts: Vec<abi::Op>,
        removals: Vec<abi::Op>,
        late: Vec<abi::Op>,
    ) -> Result<Option<u64>, ControlError> {
        if self.snapshot_owed() {
            return match self.publisher.send_snapshot(self.sent.to_tables())? {
                Sent::Written(g) => {
                    self.snapshot_pending = false;
                    Ok(Some(g))
                }
                Sent::Full => Ok(None),
            };
        }
        let mut ops = early;
        ops.extend(upserts);
        ops.extend(removals);
        ops.extend(late);
        if ops.is_empty() {
            return Ok(None);
        }
        match self.publisher.send_delta(ops)? {
            Sent::Written(g) => Ok(Some(g)),
            Sent::Full => {
                self.snapshot_pending = true;
                Ok(None)
            }
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }
}

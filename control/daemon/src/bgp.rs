//! The node's BGP speaker (`tortie-bgp-agent`), fed from the datastore state and read back
//! for routes and status.
//!
//! The agent runs on a small tokio runtime owned here (one worker thread named `bgp`); the
//! control loop stays a plain thread and only calls the agent's non-blocking methods:
//! [`BgpRunner::sync`] when a BGP input changed (Node, BGPConfiguration, BGPPeer, IPPool,
//! this node's block affinities and its workloads' borrowed addresses), [`BgpRunner::take_changed`] every tick (learned-route
//! changes make the tables dirty, so they leave as ordinary deltas), [`BgpRunner::learned`]
//! while the tables are built and [`BgpRunner::status`] for the published status.
//!
//! With `--routes-from-ipam=false` ([`BgpRunner::routes_from_ipam`]) the routes to other
//! nodes' blocks come from BGP alone, as in Calico with BIRD.
//!
//! A plan that cannot be made (this node's Node without `spec.bgp.ipv4Address`, a malformed
//! BGPPeer) or a speaker that cannot start (port in use) is logged and reported in the
//! status (`bgp.error`); the next input change tries again. BGP passwords come from
//! `--bgp-secrets-dir` (a mounted-secret layout); without it a password reference is logged
//! as missing by the agent and the session runs without TCP-MD5.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tortie_abi::NodeId;
use tortie_bgp_agent::{
    AgentInput, BgpAgent, FastpathRoute, NoSecrets, PeerStatus, SecretDir, SecretSource,
};

use crate::cluster::Cluster;
use crate::error::ControlError;

/// With `--routes-from-ipam=false`: after the speaker starts, how long the learned routes
/// must stay unchanged, with every session Established, before they alone route other
/// nodes' blocks.
pub const CONVERGED_QUIET: Duration = Duration::from_secs(1);
/// With `--routes-from-ipam=false`: the longest the IPAM affinities stand in for BGP after
/// the speaker starts (a peer that stays down must not keep them forever).
pub const CONVERGE_MAX: Duration = Duration::from_secs(30);

/// How long shutting down waits for the sessions to close with Cease.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// The speaker and the runtime it runs on.
pub struct BgpRunner {
    runtime: tokio::runtime::Runtime,
    node: String,
    agent: Option<BgpAgent>,
    error: Option<String>,
    secrets: Arc<dyn SecretSource>,
    routes_from_ipam: bool,
    /// When the speaker started, and when its learned routes last changed.
    started: Option<(Instant, Instant)>,
    /// The speaker has its table (every session Established, routes quiet), or gave up
    /// waiting ([`CONVERGE_MAX`]).
    converged: bool,
}

/// One BGP session, as published (`bgp.peers[]`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BgpPeerStatus {
    /// Peer address.
    pub address: String,
    /// Peer TCP port.
    pub port: u16,
    /// `node-to-node mesh`, `global` or `node specific` (calicoctl's PEER TYPE words).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The Calico node at the other end, if it is one.
    pub node: Option<String>,
    /// Remote AS.
    pub remote_as: u32,
    /// calicoctl's STATE: `up` when Established, else `start`.
    pub state: &'static str,
    /// The RFC 4271 FSM state (calicoctl's INFO, with the last error while not Established).
    pub info: String,
    /// Unix time of the last state change.
    pub since_unix: u64,
    /// Routes received from the peer and held.
    pub prefixes_received: usize,
    /// Routes advertised to the peer.
    pub prefixes_advertised: usize,
}

/// The speaker's part of the node status (`bgp`).
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct BgpStatus {
    /// `--bgp on`.
    pub enabled: bool,
    /// Whether the speaker is running.
    pub running: bool,
    /// Local AS.
    pub as_number: Option<u32>,
    /// Router id.
    pub router_id: Option<String>,
    /// Why the speaker is not running (or its last restart error).
    pub error: Option<String>,
    /// The sessions.
    pub peers: Vec<BgpPeerStatus>,
}

impl BgpStatus {
    /// The status of a node that runs no speaker.
    pub fn disabled() -> BgpStatus {
        BgpStatus::default()
    }
}

impl From<&PeerStatus> for BgpPeerStatus {
    fn from(p: &PeerStatus) -> Self {
        BgpPeerStatus {
            address: p.address.to_string(),
            port: p.port,
            kind: p.kind.calico_name(),
            node: p.node.clone(),
            remote_as: p.remote_as,
            state: p.calico_state(),
            info: p.info(),
            since_unix: p.since_unix,
            prefixes_received: p.received,
            prefixes_advertised: p.advertised,
        }
    }
}

impl BgpRunner {
    /// Builds the runtime; the speaker starts at the first [`BgpRunner::sync`]. Passwords
    /// are read under `secrets_dir` when given.
    pub fn new(node: &str, secrets_dir: Option<PathBuf>) -> Result<BgpRunner, ControlError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bgp")
            .enable_all()
            .build()
            .map_err(|e| ControlError::Io {
                path: "BGP runtime".into(),
                source: e,
            })?;
        Ok(BgpRunner {
            runtime,
            node: node.to_string(),
            agent: None,
            error: None,
            secrets: match secrets_dir {
                Some(dir) => Arc::new(SecretDir::new(dir)),
                None => Arc::new(NoSecrets),
            },
            routes_from_ipam: true,
            started: None,
            converged: false,
        })
    }

    /// `--routes-from-ipam`: with `false`, other nodes' blocks and borrowed addresses are
    /// routed only as BGP learns them (Calico with BIRD learns blocks only over BGP); the
    /// datastore's affinities then give this node's own blackholes alone.
    pub fn with_routes_from_ipam(mut self, on: bool) -> BgpRunner {
        self.routes_from_ipam = on;
        self
    }

    /// Whether other nodes' IPAM affinities and borrowed addresses make routes: with
    /// `--routes-from-ipam` (the default), and otherwise until the speaker has converged
    /// after it started (every session Established and no learned-route change for
    /// [`CONVERGED_QUIET`], or [`CONVERGE_MAX`] at the latest). A restarted tortie-control
    /// thus never sends the fastpath a table without the other nodes' blocks while its
    /// sessions come back (Calico with BIRD keeps its kernel routes across a restart).
    pub fn routes_from_ipam(&self) -> bool {
        self.routes_from_ipam || !self.converged
    }

    /// Plans from the cluster state and starts the speaker, or reconciles the running one.
    pub fn sync(&mut self, cluster: &Cluster) {
        let input = AgentInput::new(
            self.node.clone(),
            cluster.bgp_resources(),
            cluster.advertised_prefixes(),
        );
        let result = match &mut self.agent {
            Some(agent) => agent.update(&input),
            None => {
                BgpAgent::start_with_secrets(self.runtime.handle(), &input, self.secrets.clone())
                    .map(|agent| {
                        tracing::info!(listening = ?agent.listening(), "BGP speaker started");
                        self.agent = Some(agent);
                        let now = Instant::now();
                        self.started = Some((now, now));
                    })
            }
        };
        match result {
            Ok(()) => self.error = None,
            Err(err) => {
                tracing::warn!(%err, "BGP speaker not (re)configured");
                self.error = Some(err.to_string());
            }
        }
    }

    /// Whether the learned routes changed since the last call.
    ///
    /// Also true once, when the speaker has just converged and (with
    /// `--routes-from-ipam=false`) the IPAM stand-in routes must go.
    pub fn take_changed(&mut self) -> bool {
        let Some(agent) = self.agent.as_mut() else {
            return false;
        };
        let changed = !agent.take_changes().is_empty();
        let Some((started, last)) = self.started.as_mut() else {
            return changed;
        };
        if self.converged {
            return changed;
        }
        let now = Instant::now();
        if changed {
            *last = now;
        }
        let quiet = now.duration_since(*last) >= CONVERGED_QUIET;
        let all_up = agent.peers().iter().all(PeerStatus::is_established);
        if (all_up && quiet) || now.duration_since(*started) >= CONVERGE_MAX {
            self.converged = true;
            if !self.routes_from_ipam {
                tracing::info!(
                    after_ms = now.duration_since(*started).as_millis() as u64,
                    "BGP converged: other nodes' blocks are routed from BGP alone"
                );
            }
            return true;
        }
        changed
    }

    /// The learned routes in the fastpath's terms; `nodes` maps node addresses to ids.
    pub fn learned(&self, nodes: &HashMap<IpAddr, NodeId>) -> Vec<FastpathRoute> {
        self.agent
            .as_ref()
            .map(|a| a.fastpath_routes(nodes))
            .unwrap_or_default()
    }

    /// The published status.
    pub fn status(&self) -> BgpStatus {
        let Some(agent) = &self.agent else {
            return BgpStatus {
                enabled: true,
                error: self.error.clone(),
                ..BgpStatus::default()
            };
        };
        let plan = agent.plan();
        BgpStatus {
            enabled: true,
            running: agent.last_error().is_none(),
            as_number: Some(plan.speaker.local_as),
            router_id: Some(plan.speaker.router_id.to_string()),
            error: self.error.clone().or_else(|| agent.last_error()),
            peers: agent.peers().iter().map(BgpPeerStatus::from).collect(),
        }
    }

    /// Closes every session with Cease (bounded by [`SHUTDOWN_WAIT`]) and stops the runtime.
    pub fn shutdown(mut self) {
        if let Some(agent) = self.agent.take() {
            let done = self
                .runtime
                .block_on(async { tokio::time::timeout(SHUTDOWN_WAIT, agent.shutdown()).await });
            if done.is_err() {
                tracing::warn!("BGP sessions did not close in time");
            }
        }
        self.runtime.shutdown_timeout(SHUTDOWN_WAIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_without_an_address_reports_the_planning_error() {
        let mut runner = BgpRunner::new("n1", None).unwrap();
        let cluster = Cluster::new("n1");
        runner.sync(&cluster);
        let status = runner.status();
        assert!(status.enabled && !status.running);
        assert!(status.error.is_some(), "{status:?}");
        assert!(!runner.take_changed());
        assert!(runner.learned(&HashMap::new()).is_empty());
        assert!(runner.routes_from_ipam());
        let runner = runner.with_routes_from_ipam(false);
        assert!(
            runner.routes_from_ipam(),
            "the speaker never started: IPAM routes stand in"
        );
        runner.shutdown();
    }
}

//! [`BgpAgent`]: the running speaker, reconciled to the plan, with its learned routes.
//!
//! ```text
//!  BgpAgent (any thread) ──Apply/Status/Shutdown──► supervisor task ──► tortie_bgp speaker
//!       ▲                                               │  ▲              (runtime::spawn)
//!       └──── shared state (routes, changes, peers) ◄───┘  └── SpeakerEvent (routes, up/down)
//! ```
//!
//! One supervisor task on the caller's tokio runtime owns the speaker. Advertisement and
//! peer changes go to the running speaker, one peer at a time (the other sessions are not
//! touched); only a change of the speaker-wide settings (AS, router id, port, listen
//! addresses, cluster id) restarts it. The restart drops the sessions without a NOTIFICATION
//! so graceful-restart helpers keep our routes; learned routes stay installed here and are
//! swept once the sessions are back (see [`crate::SWEEP_MAX`]).

use crate::error::AgentError;
use crate::import::{FastpathRoute, LearnedRoute, RouteChange};
use crate::input::AgentInput;
use crate::plan::{AgentPlan, plan_with_secrets};
use crate::secrets::{NoSecrets, SecretSource};
use crate::status::PeerStatus;
use crate::supervisor::{Supervisor, lock, start_speaker};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc, oneshot};
use tortie_abi::NodeId;

/// Owns the running speaker of one node. Dropping it stops the speaker without a
/// NOTIFICATION (peers that help graceful restart keep our routes for the restart time);
/// [`BgpAgent::shutdown`] stops it with Cease.
pub struct BgpAgent {
    cmds: mpsc::UnboundedSender<Cmd>,
    shared: Arc<Mutex<Shared>>,
    notify: Arc<Notify>,
    plan: AgentPlan,
    secrets: Arc<dyn SecretSource>,
}

pub(crate) enum Cmd {
    Apply(Box<AgentPlan>),
    Status(oneshot::Sender<Vec<PeerStatus>>),
    Shutdown(oneshot::Sender<()>),
}

/// What the supervisor publishes and the agent reads.
#[derive(Default)]
pub(crate) struct Shared {
    pub routes: BTreeMap<IpNet, LearnedRoute>,
    pub changes: Vec<RouteChange>,
    pub peers: Vec<PeerStatus>,
    pub listening: Vec<SocketAddr>,
    pub last_error: Option<String>,
}

impl BgpAgent {
    /// Plans from `input`, starts the speaker on `handle`'s runtime (binding its listener
    /// now, so a port in use is reported here) and the supervisor task.
    /// Password references are reported missing; see [`BgpAgent::start_with_secrets`].
    pub fn start(
        handle: &tokio::runtime::Handle,
        input: &AgentInput,
    ) -> Result<BgpAgent, AgentError> {
        Self::start_with_secrets(handle, input, Arc::new(NoSecrets))
    }

    /// [`BgpAgent::start`], with BGP passwords looked up in `secrets` (now and on every
    /// [`BgpAgent::update`]).
    pub fn start_with_secrets(
        handle: &tokio::runtime::Handle,
        input: &AgentInput,
        secrets: Arc<dyn SecretSource>,
    ) -> Result<BgpAgent, AgentError> {
        let plan = plan_with_secrets(input, secrets.as_ref())?;
        log_warnings(&plan, &[]);
        let _enter = handle.enter();
        let (speaker, events) = start_speaker(&plan, false)?;
        let now = unix_now();
        let shared = Arc::new(Mutex::new(Shared {
            peers: plan
                .peers
                .iter()
                .map(|p| PeerStatus::initial(p, now))
                .collect(),
            listening: speaker.listening.clone(),
            ..Shared::default()
        }));
        let notify = Arc::new(Notify::new());
        let (tx, rx) = mpsc::unbounded_channel();
        let sup = Supervisor {
            plan: plan.clone(),
            speaker: Some(speaker),
            shared: shared.clone(),
            notify: notify.clone(),
            sweep: None,
        };
        handle.spawn(sup.run(rx, Some(events)));
        tracing::info!(
            node = %input.node,
            peers = plan.peers.len(),
            advertisements = plan.advertisements.len(),
            "BGP agent started"
        );
        Ok(BgpAgent {
            cmds: tx,
            shared,
            notify,
            plan,
            secrets,
        })
    }

    /// Re-plans from `input` and reconciles the speaker: advertisements are added and
    /// withdrawn in place, peers added, removed and changed one at a time; a changed AS,
    /// router id, port, listen address set or cluster id restarts the speaker.
    /// On a planning error nothing changes and the error is returned.
    pub fn update(&mut self, input: &AgentInput) -> Result<(), AgentError> {
        let new = plan_with_secrets(input, self.secrets.as_ref())?;
        if new == self.plan {
            return Ok(());
        }
        log_warnings(&new, &self.plan.warnings);
        self.cmds
            .send(Cmd::Apply(Box::new(new.clone())))
            .map_err(|_| AgentError::Stopped)?;
        self.plan = new;
        Ok(())
    }

    /// The plan in force.
    pub fn plan(&self) -> &AgentPlan {
        &self.plan
    }

    /// Every learned best route, by prefix.
    pub fn routes(&self) -> Vec<LearnedRoute> {
        self.lock().routes.values().cloned().collect()
    }

    /// Route changes since the last call, in order.
    pub fn take_changes(&mut self) -> Vec<RouteChange> {
        std::mem::take(&mut self.lock().changes)
    }

    /// Notified (one permit) whenever route changes are queued; await it, then call
    /// [`BgpAgent::take_changes`].
    pub fn changed(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// The learned routes as fastpath routes (see [`crate::fastpath_route`]); `nodes` maps
    /// every known node address to its id in the tables.
    pub fn fastpath_routes(&self, nodes: &HashMap<IpAddr, NodeId>) -> Vec<FastpathRoute> {
        self.lock()
            .routes
            .values()
            .filter_map(|r| self.plan.fastpath_route(r, nodes))
            .collect()
    }

    /// Peer status as of the last poll (at most [`crate::STATUS_INTERVAL`] old). Never blocks on
    /// the speaker, so it may be called from any thread, including a runtime worker.
    pub fn peers(&self) -> Vec<PeerStatus> {
        self.lock().peers.clone()
    }

    /// Peer status polled from the speaker now.
    pub async fn peers_now(&self) -> Result<Vec<PeerStatus>, AgentError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Status(tx))
            .map_err(|_| AgentError::Stopped)?;
        rx.await.map_err(|_| AgentError::Stopped)
    }

    /// Local addresses of the speaker's listeners.
    pub fn listening(&self) -> Vec<SocketAddr> {
        self.lock().listening.clone()
    }

    /// The last error from restarting the speaker, if it is not running.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// Stops every session with Cease and ends the speaker.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }
}

fn log_warnings(plan: &AgentPlan, before: &[String]) {
    for w in plan.warnings.iter().filter(|w| !before.contains(w)) {
        tracing::warn!("{w}");
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

//! Runs the BGP speaker for a Tortie node: Calico BGP resources in, fastpath routes out.
//!
//! tortie-control embeds this crate. It hands over the cluster's `Node`,
//! `BGPConfiguration`, `BGPPeer` and `IPPool` resources plus this node's affine IPAM blocks
//! ([`AgentInput`]); the crate
//! - translates them, purely, into a speaker configuration and the prefixes to originate
//!   ([`plan`] → [`AgentPlan`]), following Calico's rules for the node-to-node mesh, global and
//!   node-specific peers, `peerSelector` peerings, route reflectors and prefix advertisements;
//! - runs the `tortie-bgp` speaker on the caller's tokio runtime and keeps it reconciled
//!   ([`BgpAgent::start`], [`BgpAgent::update`]);
//! - reports what the speaker learned ([`BgpAgent::routes`], [`BgpAgent::take_changes`]) and
//!   maps it to fastpath routes ([`fastpath_route`]), and the sessions' status for
//!   `tortiectl node status` ([`BgpAgent::peers`]).
//!
//! ```no_run
//! # fn demo(resources: Vec<tortie_model::Resource>) -> Result<(), tortie_bgp_agent::AgentError> {
//! use tortie_bgp_agent::{AgentInput, BgpAgent};
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let input = AgentInput::new("node1", resources, vec!["198.19.0.0/26".parse().unwrap()]);
//! let mut agent = BgpAgent::start(rt.handle(), &input)?;
//! // ... later, on any resource or block change:
//! agent.update(&input)?;
//! for change in agent.take_changes() { /* program the fastpath */ }
//! # Ok(()) }
//! ```
//!
//! BGP passwords come from a [`SecretSource`] the caller supplies ([`SecretDir`] reads
//! mounted-secret files); there is no Kubernetes client.
//!
//! Every session gets Calico's BIRD export filter (own blocks, service and pool routes;
//! nothing learned over eBGP is passed on), after the rules of the `BGPFilter`s its
//! `BGPPeer` names. Per-peer `localASNumber`, `ttlSecurity` (GTSM), `maxRestartTime`,
//! `nextHopMode`, `keepOriginalNextHop` and `numAllowedLocalASNumbers` are honoured. Peer changes reach the running
//! speaker one peer at a time.
//!
//! Not handled (each is reported in [`AgentPlan::warnings`] when configured):
//! `reachableBy`, `localWorkloadSelector`, per-service
//! LoadBalancer addresses, `BGPFilter` rules on an `interface` (they match kernel routes,
//! which the speaker never carries).

mod advertise;
mod agent;
mod error;
mod export;
mod filters;
mod import;
mod input;
mod peer_spec;
mod peers;
mod plan;
mod secrets;
mod status;
mod supervisor;

pub use advertise::{Advertisement, AdvertisementKind, CALICO_LOCAL_PREF, from_wire, to_wire};
pub use agent::BgpAgent;
pub use error::AgentError;
pub use import::{FastpathRoute, LearnedRoute, ROUTE_ORIGIN, RouteChange, fastpath_route};
pub use input::{AgentInput, DEFAULT_AS, DEFAULT_PORT};
pub use plan::{
    AgentPlan, CONNECT_RETRY, DEFAULT_RESTART_TIME, ERROR_WAIT, PeerKind, PeerRole, PlannedPeer,
    PoolRule, plan, plan_with_secrets,
};
pub use secrets::{NoSecrets, SecretDir, SecretSource};
pub use status::PeerStatus;
pub use supervisor::{
    REMOVED_PEER_HOLD, RESTART_DEFERRAL, STATUS_INTERVAL, SWEEP_MAX, SWEEP_QUIET,
};

//! The calculation graph: what Calico enforces for every endpoint, incrementally, and why.
//!
//! [`CalcGraph`] is an I/O-free state machine. Feed it resource upserts and deletes (from a
//! datastore watch, a file, a test); call [`CalcGraph::flush`] to get the changes as
//! [`CalcEvent`]s in dependency order: IP sets, then policies and profiles, then endpoint
//! programs; removals in reverse. Output is a function of the current state only: splitting,
//! squashing or reordering the same final set of updates gives the same emitted state.
//!
//! What it computes, as Calico does:
//! - Kubernetes NetworkPolicy as the Calico policy `knp.default.<name>` (order 1000) and each
//!   Namespace as the profile `kns.<ns>` with `pcns.` labels ([`k8s`]).
//! - Selector matching through the incremental [`tortie_selector::index`], so a label change
//!   touches only the selectors filed under that label.
//! - IP sets per scoped rule selector (endpoint addresses, network-set nets) and named-port
//!   sets (`address, protocol, port`), reference counted.
//! - Per endpoint and direction: the tiers that apply (sorted by order then name), their
//!   policies (order then name), per stage for host endpoints (normal, applyOnForward,
//!   preDNAT, doNotTrack), and the profiles.
//!
//! [`compile::FastpathCompiler`] turns that state (and the events) into `tortie-abi` IP sets
//! and policy programs.
//!
//! [`explain`](explain::explain) evaluates one connection on that state with Calico's exact
//! semantics ([`eval`]); [`explain_on_resources`] is the entry point for the CLI.

pub mod compile;
mod error;
pub mod eval;
pub mod explain;
mod flush;
mod graph;
mod ids;
mod inputs;
mod items;
pub mod k8s;
mod maintain;
mod plan;
pub mod policy;
pub mod rules;
pub mod tunnel;

pub use error::CalcError;
pub use explain::{ExplainRequest, Explanation, Peer, explain_on_resources, parse_protocol};
pub use flush::Direction;
pub use graph::{
    CalcGraph, DEFAULT_ALLOW_PROFILE, DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND,
    EndpointInfo, Failsafe,
};
pub use ids::{EndpointId, IpSetId, PolicyId};
pub use plan::{CalcEvent, DirectionPlan, EndpointPlan, IpSetMember, NamedPort, TierPlan};

//! BGP speaker: I/O-free FSM, RIBs and best-path selection, with a thin tokio adapter.
//!
//! Layers, bottom up:
//! * [`fsm`]: the RFC 4271 §8 state machine of one peer (events in, actions out);
//! * [`rib`]: Adj-RIBs-In and Loc-RIB in one table, best-path selection;
//! * [`Speaker`]: peers, capability negotiation, UPDATE processing (RFC 7606 treatments,
//!   loop checks), export with route reflection (RFC 4456), graceful restart (RFC 4724,
//!   helper and restarting roles), route refresh (RFC 2918 / RFC 7313). Still no I/O:
//!   [`Input`]s in, [`Output`]s out;
//! * [`runtime`]: the tokio adapter that owns sockets (with TCP-MD5) and timers.
//!
//! The crate depends on nothing in-tree but `tortie-bgp-wire`; the control plane translates
//! its own resources into [`SpeakerConfig`] and consumes [`RouteEvent`]s.

pub mod config;
pub mod error;
pub mod fsm;
pub mod policy;
pub mod rib;
pub mod route;
pub mod runtime;
pub mod sim;
mod speaker;

pub use config::{GracefulRestartConfig, IdleHoldConfig, PeerConfig, SpeakerConfig};
pub use error::{ConfigError, RuntimeError};
pub use policy::{PolicyAction, PolicyRule, PrefixMatch, RoutePolicy, RouteSource, SourceMatch};
pub use route::{BestRoute, RouteAttrs, RouteEvent, RouteOrigin};
pub use speaker::peer::Negotiated;
pub use speaker::{Input, LocalRoute, Output, PeerId, PeerTimer, Speaker, TimerKey};
pub use tortie_bgp_wire as wire;

//! The I/O-free vector packet pipeline: graph nodes over batches of frames.
//!
//! A worker owns one [`Pipeline`] and calls [`Pipeline::process`] with a batch of up to 256
//! received [`Frame`]s (windows into AF_XDP UMEM chunks with [`frame::HEADROOM`] bytes free
//! in front). Every frame visits the nodes of [`graph::NodeKind::ORDER`] along declared arcs
//! and ends queued in a per-interface [`TxBatches`] or counted under a [`DropReason`]:
//!
//! ```text
//! parse -> neighbor (ARP/ND answers) -----------------------------------------------> tx
//!       -> ipip-decap -> ip-check (TTL, anti-spoofing) -> untracked-policy -> conntrack
//!   conntrack -(miss)-> pre-dnat -> route -> policy (+ SNAT, conntrack create) -> mtu
//!   conntrack -(hit)--------------> route ----------------------------------------> mtu
//!   mtu -> rewrite (NAT, TTL, checksums, MACs) -> ipip-encap -> tx
//! ```
//!
//! Like a VPP feature arc, a node with nothing to do for a packet is not visited:
//! untracked-policy only by packets from an endpoint with a doNotTrack program (ip-check
//! sends the others straight to conntrack), mtu not by packets to local workloads (route,
//! policy and fragment send those straight to rewrite).
//!
//! Tables come from control as an [`tortie_abi::Tables`] snapshot compiled into an immutable
//! [`Generation`]; workers switch generations between batches ([`swap`]). Nothing in a batch
//! allocates, locks, logs or reads a clock: time is the `now` argument. Counters
//! ([`Counters`]) and an opt-in packet trace ([`Trace`]) replace logs.
//!
//! See `docs/design/pipeline.md` for the nodes, arcs, drop reasons, the headroom contract,
//! fragment handling and the generation-swap protocol.

pub mod compile;
pub mod counters;
pub mod drop;
pub mod frag;
pub mod frame;
pub mod graph;
mod meta;
mod nodes;
mod pipeline;
pub mod reply;
pub mod rewrite;
pub mod swap;
pub mod trace;
mod tunnel;

pub use compile::{CompileError, Generation};
pub use counters::Counters;
pub use drop::DropReason;
pub use frame::{Frame, HEADROOM, MAX_BATCH, MIN_HEADROOM, TxBatches};
pub use pipeline::{Disposition, Pipeline, PipelineConfig};
pub use trace::Trace;

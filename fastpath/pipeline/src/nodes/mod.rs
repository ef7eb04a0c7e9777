//! The graph nodes, grouped by stage. Each node is a method on [`crate::Pipeline`] that
//! decides one packet and returns a step along one of its declared arcs
//! ([`crate::graph::NodeKind::next_arcs`]) or a drop reason.
//!
//! Measured cost (criterion, one core, batches of 256 64-byte frames, loaded 2-core
//! machine): see `docs/perf/pipeline.md`; the whole graph for an established flow between two
//! local workloads is the "established" figure there.

mod egress;
mod ingress;
mod session;

pub(crate) use session::{RouteMemo, flow_key};

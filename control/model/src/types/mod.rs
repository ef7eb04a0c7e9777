//! The spec types of every kind, and the value types they share.

mod bgp;
mod bgp_filter;
mod endpoint;
mod felix;
mod ipam;
mod k8s;
mod policy;
mod primitives;

pub use bgp::*;
pub use bgp_filter::*;
pub use endpoint::*;
pub use felix::*;
pub use ipam::*;
pub use k8s::*;
pub use policy::*;
pub use primitives::*;

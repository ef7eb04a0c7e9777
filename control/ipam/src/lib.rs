//! Calico IPAM: pools carved into node-affine blocks, handles, reservations, and
//! compare-and-swap on every write.
//!
//! The records (blocks, block affinities, handles, the configuration) use Calico's JSON shapes and
//! etcd v3 key layout ([`keys`]), so a datastore written by Calico is read as is. Every change is
//! a compare-and-swap of one block (plus its handle), retried on conflict, which is what makes
//! concurrent allocation from several processes and nodes safe.
//!
//! - [`block`]: one block and the allocation arithmetic inside it (no I/O).
//! - [`handle`], [`config`], [`pool`]: the other records and the block scan order.
//! - [`Ipam`]: the allocator over a [`tortie_datastore::Datastore`], and `check`, the
//!   consistency report behind `tortiectl ipam check`.

pub mod block;
mod check;
mod client;
pub mod config;
mod error;
pub mod handle;
pub mod keys;
pub mod pool;
mod records;

pub use block::{AllocationAttribute, AllocationBlock};
pub use check::CheckReport;
pub use client::{AssignIpArgs, Assignment, AutoAssignArgs, BlockAffinity, Ipam, MAX_ATTEMPTS};
pub use config::IpamConfig;
pub use error::IpamError;
pub use handle::IpamHandle;
pub use pool::{Pool, PoolUse};

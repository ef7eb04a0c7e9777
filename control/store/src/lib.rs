//! Typed access to `projectcalico.org/v3` resources in a datastore: validation, defaults,
//! all-or-nothing batch writes.
//!
//! [`Store`] is the resource client shared by `tortiectl`, tortie-control and the CNI plugin.
//! It works over any [`tortie_datastore::Datastore`] (SQLite or etcd) and:
//!
//! - maps (kind, namespace, name) to Calico's etcd v3 keys, so a store written by Calico reads
//!   back here and the other way round;
//! - sets `metadata.resourceVersion` from the key's mod revision on every read and write, and
//!   treats a resourceVersion given by the caller as a compare-and-swap condition, as
//!   calicoctl does; sets `uid` and `creationTimestamp` on create and keeps them on update;
//! - runs Calico's defaults, validation and the cross-resource checks (IP pool overlap
//!   against stored pools, immutable fields against the stored object) before writing;
//! - writes a batch ([`Store::apply_all`], [`Store::write_all`], [`Store::delete_all`]) all or
//!   nothing: everything is checked first, then written in one transaction. Where the backend
//!   caps a transaction (etcd: 128 operations by default) the batch is written in chunks with
//!   a compensating rollback, or refused, as [`TxnPolicy`] says; [`commit`] documents exactly
//!   what the chunked mode guarantees.
//!
//! [`migrate`] moves a whole datastore (resources and IPAM records) between backends.

pub mod commit;
mod error;
pub mod migrate;
pub mod patch;
mod plan;
mod resource;
pub mod stamp;
mod store;

pub use commit::TxnPolicy;
pub use error::{ResourceName, StoreError};
pub use patch::{Patch, PatchError};
pub use plan::WriteMode;
pub use resource::{DEFAULT_NAMESPACE, ResourceId};
pub use store::{DeleteOutcome, Listing, Scope, Store, WriteOutcome};

//! The `projectcalico.org/v3` resource model with Calico's defaults and validation.
//!
//! Users bring Calico manifests; this crate is the one place that reads, defaults, checks and
//! writes them, so every other part of Tortie (the CLI, the datastore, the calculation graph, the
//! CNI plugin) sees the same typed objects and the same error messages.
//!
//! # What it offers
//! - [`Kind`]: every supported kind with its manifest name, API version, etcd plural
//!   (`networkpolicies`, `ippools`, ...), scope, and calicoctl's aliases
//!   ([`Kind::from_user_str`] resolves `policy`, `gnp`, `pools`, `wep`, `hep`, ...).
//! - [`Resource`]: one object of any kind, serializing to exactly Calico's JSON/YAML shape
//!   (`apiVersion`, `kind`, `metadata`, `spec`), so values stored in Calico's etcd layout read
//!   back unchanged. Each variant holds an [`Object`] (metadata, spec, opaque status), with an
//!   alias per kind ([`NetworkPolicy`], [`IpPool`], ...); spec types live in [`types`].
//! - [`parse_documents`]: multi-document YAML or JSON (an object, an array, or a calicoctl
//!   `kind: XList`), strict (unknown fields rejected), validated, duplicate-free. Errors read
//!   `policy.yaml: document 2 (line 14, column 19): spec.ingress[0].protocol: unknown protocol "TPC" (...)`.
//!   [`read_documents`] reads as strictly but leaves validation to the caller.
//! - [`Resource::apply_defaults`] and [`Resource::validate`]: Calico's create-time defaults and
//!   validation rules; validation errors name the field path.
//! - [`check_update`] (immutable fields) and [`check_pool_overlap`]: checks an apply needs that
//!   involve more than one resource; [`workload_endpoint_name`] derives Calico's endpoint names.
//! - The Kubernetes inputs (`networking.k8s.io/v1` NetworkPolicy, `v1` Namespace) as kinds of
//!   their own ([`Kind::KubernetesNetworkPolicy`], [`Kind::KubernetesNamespace`]); converting
//!   Kubernetes policy into Calico policy is the policy compiler's job.
//!
//! # Example
//! ```
//! use tortie_model::{parse_documents, Kind, Resource};
//!
//! let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool-a\nspec:\n  cidr: 10.244.0.0/16\n";
//! let mut resources = parse_documents(text, "pool.yaml").unwrap();
//! let pool = &mut resources[0];
//! assert_eq!(pool.kind(), Kind::IpPool);
//! pool.apply_defaults();
//! let Resource::IpPool(p) = pool else { unreachable!() };
//! assert_eq!(p.spec.block_size, Some(26));
//!
//! let bad = text.replace("10.244.0.0/16", "10.244.0.1/16");
//! let err = parse_documents(&bad, "pool.yaml").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "pool.yaml: document 1 (line 6, column 9): spec.cidr: IP pool CIDR 10.244.0.1/16 is not strictly masked (did you mean 10.244.0.0/16?)"
//! );
//! ```
//!
//! # How errors get their lines
//! serde carries no positions, so documents are first parsed into a tree whose nodes remember
//! their line and column (`document::tree`, over a YAML 1.2 event parser; JSON is read by the
//! same parser). Typed values are deserialized from that tree by a deserializer that records
//! the path and position of the innermost failing node; validation errors carry a field path
//! that is looked up in the same tree.

mod defaults;
mod document;
mod error;
mod kind;
mod meta;
mod resource;
pub mod types;
mod update;
mod validate;

pub use defaults::infer_policy_types;
pub use document::{ParsedDocument, parse_documents, parse_documents_with_origin, read_documents};
pub use error::{FieldPath, Location, ModelError, Segment};
pub use kind::{CALICO_API_VERSION, K8S_CORE_API_VERSION, K8S_NETWORKING_API_VERSION, Kind};
pub use meta::ObjectMeta;
pub use resource::{
    BgpConfiguration, BgpFilter, BgpPeer, ClusterInformation, FelixConfiguration,
    GlobalNetworkPolicy, HostEndpoint, IpPool, IpReservation, IpamConfiguration,
    KubernetesNamespace, KubernetesNetworkPolicy, NetworkPolicy, NetworkSet, Node, Object, Profile,
    Resource, ResourceKey, Tier, WorkloadEndpoint,
};
pub use update::{check_pool_overlap, check_update};
pub use validate::workload_endpoint_name;

//! Packet classifier for compiled policy: flat as rules grow, incrementally updatable.
//!
//! A [`Classifier`] holds one program of [`Rule`]s (for Calico: one endpoint, one direction,
//! all tiers flattened into priority order) and answers "first rule matching this packet" with
//! the rule's priority and opaque action. [`Classifier::classify_from`] starts at a minimum
//! priority so a `Pass` verdict can continue at the next tier.
//!
//! Structure: tuple-space search with merged tuples (one hash table per group of similar
//! prefix-length tuples, searched in priority order with early exit), separate engines for
//! IPv4 (`u32`) and IPv6 (`u128`). Conditions the tables do not index — IP set memberships,
//! negations, fields with too many values — are predicates checked only on candidates. See
//! `docs/design/classifier.md` for the design and its costs.
//!
//! [`LinearClassifier`] is the literal reference implementation used by the differential tests;
//! [`classbench`] reads the standard ClassBench rule and trace files.

pub mod classbench;

mod addr;
mod classifier;
mod engine;
mod entry;
mod error;
mod expand;
mod ipset;
mod linear;
mod predicate;
mod rule;
mod space;
mod table;

pub use classifier::{Classifier, ClassifierStats};
pub use engine::EngineStats;
pub use error::{ClassBenchError, ClassifierError};
pub use ipset::{IpSet, IpSetTable};
pub use linear::LinearClassifier;
pub use rule::{AddrMatch, IpVersion, Key, Key4, Key6, Match, PortMatch, PortRange, Rule, SetId};

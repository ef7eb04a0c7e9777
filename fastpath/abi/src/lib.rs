//! The versioned table format that tortie-control writes and tortie-fastpath reads.
//!
//! Control compiles the datastore's resources into these plain tables: endpoints, policy
//! programs, IP sets, routes, NAT, nodes and settings. They travel over a shared-memory ring
//! as length-prefixed, versioned frames ([`Message::encode`], [`Message::decode`]): a full
//! [`Message::Snapshot`] with its generation number, or a [`Message::Delta`] naming the
//! generation it applies to. Tables refer to each other by numeric ids only.
//!
//! Decoding never panics and never allocates more than the input's size: every error names
//! the field and byte offset ([`AbiError`]). The format is hand-written (no serde) so the
//! layout is explicit and stable; see [`message`] for the frame layout and the versioning
//! rule.

mod codec;
mod encode;
mod error;
mod ids;
pub mod message;
pub mod policy;
pub mod tables;

pub use error::AbiError;
pub use ids::{
    EndpointId, Generation, IpSetId, MacAddr, NodeId, Prefix, ProgramId, RuleId, SubnetAddr,
    mask32, mask128,
};
pub use message::{
    FORMAT_VERSION, HEADER_LEN, MAX_BODY_LEN, Message, Op, State, Tables, decode_header,
};
pub use policy::{
    Action, AddrMatch, IcmpMatch, IpVersion, Policy, PolicyProgram, PortMatch, PortRange, Rule,
    RuleMatch, Tier, TierDefault,
};
pub use tables::{
    DnatEntry, Endpoint, EndpointKind, HostAction, IpSet, IpipMode, Nat, Node, Route, RouteTarget,
    Settings,
};

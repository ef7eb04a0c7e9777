//! What the graph emits: IP set members, per-endpoint programs (tiers and policies per
//! direction and stage), and the events that carry changes to the dataplane.

use crate::ids::{EndpointId, IpSetId, PolicyId};
use crate::policy::{CompiledPolicy, CompiledProfile};
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;
use tortie_model::types::TierAction;

/// One member of an IP set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum IpSetMember {
    /// An address or network (endpoint address, network-set net).
    Net(IpNet),
    /// An `(address, protocol, port)` of a named port.
    Port {
        /// Endpoint address.
        addr: IpAddr,
        /// IP protocol number.
        protocol: u8,
        /// Port number.
        port: u16,
    },
}

/// A named port an endpoint declares.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NamedPort {
    /// Port name.
    pub name: Arc<str>,
    /// IP protocol number.
    pub protocol: u8,
    /// Port number.
    pub port: u16,
}

/// One tier's part of an endpoint program: its policies in evaluation order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierPlan {
    /// Tier name.
    pub name: String,
    /// End-of-tier action when a policy applied and no rule decided.
    pub default_action: TierAction,
    /// Policies, sorted by order then name.
    pub policies: Vec<PolicyId>,
}

/// The tiers that apply to one endpoint in one direction, per stage. Workload endpoints only
/// have `normal`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DirectionPlan {
    /// Tracked policy for traffic to/from the endpoint itself.
    pub normal: Vec<TierPlan>,
    /// Host endpoints: `applyOnForward` policy, for forwarded traffic.
    pub forward: Vec<TierPlan>,
    /// Host endpoints, ingress: `preDNAT` policy.
    pub pre_dnat: Vec<TierPlan>,
    /// Host endpoints: `doNotTrack` policy.
    pub untracked: Vec<TierPlan>,
}

/// The program of one endpoint: what the dataplane runs for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointPlan {
    /// Which endpoint.
    pub id: EndpointId,
    /// Its addresses.
    pub addrs: Vec<IpNet>,
    /// Profiles in the order the endpoint lists them.
    pub profiles: Vec<String>,
    /// Traffic into the endpoint.
    pub ingress: DirectionPlan,
    /// Traffic out of the endpoint.
    pub egress: DirectionPlan,
}

/// One change the dataplane must apply.
///
/// Order within one [`crate::CalcGraph::flush`] is the control-to-dataplane contract: IP set
/// creations and member changes first, then policies, then profiles, then endpoints; then
/// removals in reverse (endpoints, profiles, policies, IP sets). So nothing ever refers to
/// something the dataplane does not have yet, and nothing is removed while referenced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum CalcEvent {
    /// A new IP set with all its members.
    IpSetAdded {
        /// Set.
        id: IpSetId,
        /// Members, sorted.
        members: Vec<IpSetMember>,
    },
    /// Members added to and removed from an existing set.
    IpSetDelta {
        /// Set.
        id: IpSetId,
        /// New members, sorted.
        added: Vec<IpSetMember>,
        /// Members gone, sorted.
        removed: Vec<IpSetMember>,
    },
    /// A policy is new or changed.
    PolicyUpdated(Arc<CompiledPolicy>),
    /// A profile is new or changed.
    ProfileUpdated(Arc<CompiledProfile>),
    /// An endpoint's program is new or changed.
    EndpointUpdated(Arc<EndpointPlan>),
    /// An endpoint is gone.
    EndpointRemoved(EndpointId),
    /// A profile is gone.
    ProfileRemoved(String),
    /// A policy is gone.
    PolicyRemoved(PolicyId),
    /// An IP set is no longer referenced by any rule.
    IpSetRemoved(IpSetId),
}

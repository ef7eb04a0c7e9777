//! Routes as the speaker stores and reports them.

use std::net::IpAddr;
use std::sync::Arc;
use tortie_bgp_wire::{NextHop, PathAttributes, Prefix};

/// Index of a route source: [`LOCAL_SOURCE`] for locally originated routes, `peer index + 1`
/// for routes learned from a peer.
pub type SourceId = u32;

/// The source id of locally originated routes.
pub const LOCAL_SOURCE: SourceId = 0;

/// Attributes of a route plus its next hop, shared by all prefixes of one UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    /// Path attributes as received (after RFC 7606 treatment and AS4 merging).
    pub path: PathAttributes,
    /// Next hop; `None` for a locally originated route ("this speaker").
    pub next_hop: Option<NextHop>,
}

/// Where the best route for a prefix came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOrigin {
    /// Originated by this speaker through [`crate::Speaker::originate`].
    Local,
    /// Learned from a peer.
    Peer {
        /// The peer's configured address.
        address: IpAddr,
        /// Learned over eBGP.
        ebgp: bool,
    },
}

/// A best route as reported to the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestRoute {
    /// Where it came from.
    pub origin: RouteOrigin,
    /// Attributes and next hop.
    pub attrs: Arc<RouteAttrs>,
}

impl BestRoute {
    /// The address to forward to (`None` for local routes).
    pub fn next_hop(&self) -> Option<IpAddr> {
        self.attrs.next_hop.map(|n| n.addr())
    }
}

/// A change of the Loc-RIB's best route for one prefix: what the forwarding plane must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteEvent {
    /// The prefix has a best route where it had none.
    Added(Prefix, BestRoute),
    /// The best route changed (another path won, or its attributes changed).
    Changed(Prefix, BestRoute),
    /// No route is left for the prefix.
    Withdrawn(Prefix),
}

impl RouteEvent {
    /// The prefix concerned.
    pub fn prefix(&self) -> Prefix {
        match self {
            RouteEvent::Added(p, _) | RouteEvent::Changed(p, _) | RouteEvent::Withdrawn(p) => *p,
        }
    }
}

//! Peer status for `tortiectl node status`.

use crate::plan::{PeerKind, PeerRole, PlannedPeer};
use std::net::IpAddr;
use tortie_bgp::fsm::State;

/// One peering's status, the rows of `tortiectl node status` (Calico's columns: address,
/// type, state, since, info).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerStatus {
    /// Peer address.
    pub address: IpAddr,
    /// Peer TCP port.
    pub port: u16,
    /// Mesh, global or node specific.
    pub kind: PeerKind,
    /// Route-reflection role.
    pub role: PeerRole,
    /// The Calico node at the other end, if it is one.
    pub node: Option<String>,
    /// Remote AS.
    pub remote_as: u32,
    /// FSM state: `Idle`, `Connect`, `Active`, `OpenSent`, `OpenConfirm` or `Established`.
    pub state: String,
    /// Unix time (seconds) of the last state change seen.
    pub since_unix: u64,
    /// Routes received from the peer and held.
    pub received: usize,
    /// Routes advertised to the peer.
    pub advertised: usize,
    /// Sessions dropped by errors so far.
    pub flaps: u32,
    /// Last error, if any.
    pub last_error: Option<String>,
}

impl PeerStatus {
    pub(crate) fn initial(p: &PlannedPeer, now_unix: u64) -> PeerStatus {
        PeerStatus {
            address: p.config.address,
            port: p.config.port,
            kind: p.kind,
            role: p.role,
            node: p.node.clone(),
            remote_as: p.config.remote_as,
            state: state_name(State::Idle).to_string(),
            since_unix: now_unix,
            received: 0,
            advertised: 0,
            flaps: 0,
            last_error: None,
        }
    }

    /// Whether the session is up.
    pub fn is_established(&self) -> bool {
        self.state == state_name(State::Established)
    }

    /// Calico's STATE column: `up` when Established, `start` otherwise.
    pub fn calico_state(&self) -> &'static str {
        if self.is_established() { "up" } else { "start" }
    }

    /// Calico's INFO column: the FSM state, with the last error while not Established.
    pub fn info(&self) -> String {
        match (&self.last_error, self.is_established()) {
            (Some(e), false) => format!("{} ({e})", self.state),
            _ => self.state.clone(),
        }
    }
}

/// The RFC 4271 name of a state.
pub(crate) fn state_name(s: State) -> &'static str {
    match s {
        State::Idle => "Idle",
        State::Connect => "Connect",
        State::Active => "Active",
        State::OpenSent => "OpenSent",
        State::OpenConfirm => "OpenConfirm",
        State::Established => "Established",
    }
}

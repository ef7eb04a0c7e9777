//! The pure translation: Calico resources in, a speaker configuration and advertisements out.

use crate::advertise::{self, Advertisement};
use crate::error::AgentError;
use crate::input::{AgentInput, ClusterView};
use crate::peers;
use crate::secrets::{NoSecrets, SecretSource};
use ipnet::IpNet;
use std::net::IpAddr;
use std::time::Duration;
use tortie_abi::IpipMode;
use tortie_bgp::{PeerConfig, SpeakerConfig};

/// Where a peering came from, as `calicoctl node status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerKind {
    /// The node-to-node mesh (`BGPConfiguration` `nodeToNodeMeshEnabled`).
    Mesh,
    /// A `BGPPeer` without `node` / `nodeSelector`: every node peers.
    Global,
    /// A `BGPPeer` with `node` or `nodeSelector`, or the reverse side of a `peerSelector` /
    /// node-address peering.
    NodeSpecific,
}

impl PeerKind {
    /// The words `calicoctl node status` prints in its PEER TYPE column.
    pub fn calico_name(self) -> &'static str {
        match self {
            PeerKind::Mesh => "node-to-node mesh",
            PeerKind::Global => "global",
            PeerKind::NodeSpecific => "node specific",
        }
    }
}

/// The route-reflection relationship on a peering (RFC 4456).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerRole {
    /// Plain iBGP or eBGP.
    Peer,
    /// We reflect to this peer: this node has a cluster ID and the peer is an iBGP peer
    /// outside that cluster.
    RouteReflectorClient,
    /// The peer is a Tortie/Calico node with a different cluster ID that reflects to us.
    RouteReflector,
}

/// One peering of the plan: the speaker's peer configuration plus where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPeer {
    /// What the speaker runs.
    pub config: PeerConfig,
    /// Mesh, global or node specific.
    pub kind: PeerKind,
    /// Route-reflection role.
    pub role: PeerRole,
    /// The Calico node at the other end, when the peer is one.
    pub node: Option<String>,
    /// The `BGPPeer` that asked for it (`None` for the mesh).
    pub source: Option<String>,
}

/// How learned routes inside one IP pool are forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRule {
    /// The pool's CIDR.
    pub cidr: IpNet,
    /// Its IP-in-IP mode (`Never` when unset, and for VXLAN pools: the fastpath has no VXLAN).
    pub ipip: IpipMode,
    /// `disableBGPExport`: this node does not advertise its blocks from the pool.
    pub export_disabled: bool,
}

/// Everything [`plan`] decided for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPlan {
    /// The speaker configuration (`peers` parallel to [`AgentPlan::peers`]).
    pub speaker: SpeakerConfig,
    /// The peerings with their provenance, in the speaker's peer order.
    pub peers: Vec<PlannedPeer>,
    /// Prefixes this node originates, with their attributes.
    pub advertisements: Vec<Advertisement>,
    /// IP pools, for turning learned routes into fastpath routes.
    pub pools: Vec<PoolRule>,
    /// This node's BGP addresses (IPv4, then IPv6 when set).
    pub node_addrs: Vec<IpAddr>,
    /// Settings that were read but cannot be honoured, one sentence each (logged by the agent).
    pub warnings: Vec<String>,
}

impl AgentPlan {
    /// The planned peer at `address`.
    pub fn peer(&self, address: IpAddr) -> Option<&PlannedPeer> {
        self.peers.iter().find(|p| p.config.address == address)
    }
}

/// Connect retry of Calico's BIRD template (`connect retry time 5`).
pub const CONNECT_RETRY: Duration = Duration::from_secs(5);
/// Calico's BIRD `error wait time 5,30`: first and longest wait after a session error.
pub const ERROR_WAIT: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(30));
/// Graceful-restart time when `nodeMeshMaxRestartTime` is unset (BIRD's default).
pub const DEFAULT_RESTART_TIME: Duration = Duration::from_secs(120);

/// Translates the cluster's resources into this node's BGP plan.
///
/// Pure and deterministic: the same input gives the same plan (peers sorted by address).
/// Calico's rules, from confd's peering computation:
/// - the node-to-node mesh (on unless `BGPConfiguration default` turns it off) peers with
///   every other node, per address family, except that route-reflector nodes (those with
///   `spec.bgp.routeReflectorClusterID`) take no part in it; a mesh session is passive when
///   the peer's address sorts after ours **as a string**, so only one side connects;
/// - `BGPPeer`s without `node`/`nodeSelector` are global, the others apply to the nodes they
///   select; `peerSelector` peers with the matching nodes (remote AS from those nodes), and
///   the selected nodes get the reverse peering automatically (`reversePeering: Manual`
///   turns that off); a node-specific peering never duplicates a global one;
/// - a node with a cluster ID treats every iBGP peer outside its cluster as a
///   route-reflector client;
/// - every session exports through Calico's export filter (`export.rs`), after the
///   rules of the BGPFilters its BGPPeer names (`filters.rs`), which also give its
///   import policy;
/// - the node advertises its affine blocks (not from pools with `disableBGPExport`) and the
///   `serviceClusterIPs` / `serviceExternalIPs` / `serviceLoadBalancerIPs` CIDRs, with the
///   communities `prefixAdvertisements` assigns, and LOCAL_PREF 2147482623 (Calico's
///   normal route priority 1024 as BIRD encodes it).
///
/// Password references are reported missing; see [`plan_with_secrets`].
pub fn plan(input: &AgentInput) -> Result<AgentPlan, AgentError> {
    plan_with_secrets(input, &NoSecrets)
}

/// [`plan`], with BGP passwords (`BGPPeer.spec.password`, `nodeMeshPassword`) looked up in
/// `secrets`; a missing or unusable one is a warning and the session runs without TCP-MD5
/// (as Calico does when it cannot read the secret).
pub fn plan_with_secrets(
    input: &AgentInput,
    secrets: &dyn SecretSource,
) -> Result<AgentPlan, AgentError> {
    let view = ClusterView::new(&input.resources)?;
    let me = match view.nodes.get(input.node.as_str()) {
        Some(me) => me.clone(),
        None if view.non_bgp_nodes.contains(&input.node.as_str()) => {
            return Err(AgentError::invalid(
                format!("Node {:?}", input.node),
                "spec.bgp",
                "is not set: the node runs no BGP",
            ));
        }
        None => return Err(AgentError::NodeNotFound(input.node.clone())),
    };
    let Some((router_id, _)) = me.v4 else {
        return Err(AgentError::invalid(
            format!("Node {:?}", me.name),
            "spec.bgp.ipv4Address",
            "is not set; the BGP router id is the node's IPv4 address",
        ));
    };
    let mut warnings = vec![];
    let my_as = view.node_as(&me);
    let restart_time = match view
        .global
        .and_then(|g| g.node_mesh_max_restart_time.as_deref())
    {
        None => DEFAULT_RESTART_TIME,
        Some(text) => crate::peer_spec::parse_duration(text).map_err(|problem| {
            AgentError::invalid(
                "BGPConfiguration \"default\"",
                "spec.nodeMeshMaxRestartTime",
                problem,
            )
        })?,
    };
    if restart_time > Duration::from_secs(4095) {
        return Err(AgentError::invalid(
            "BGPConfiguration \"default\"",
            "spec.nodeMeshMaxRestartTime",
            "must be at most 4095s (the graceful-restart capability's 12-bit field)",
        ));
    }
    let pools = pool_rules(&view);
    let advertisements =
        advertise::compute(&view, &me, &input.local_blocks, &pools, &mut warnings)?;
    let mut planned = peers::compute(&view, &me, my_as, restart_time, secrets, &mut warnings)?;
    // BGPFilter rules first, then Calico's export filter.
    crate::filters::apply(&view, &mut planned, &mut warnings);
    let own_blocks: Vec<IpNet> = advertisements
        .iter()
        .filter(|a| a.kind == advertise::AdvertisementKind::Block)
        .map(|a| a.prefix)
        .collect();
    let export = crate::export::calico_export(&pools, &own_blocks);
    for p in &mut planned {
        p.config
            .export_policy
            .rules
            .extend(export.rules.iter().cloned());
        p.config.export_policy.default = export.default;
    }
    let mut speaker = SpeakerConfig::new(my_as, router_id);
    speaker.listen_port = Some(view.listen_port(&me.name));
    let bind_node_ip = view
        .global
        .and_then(|g| g.bind_mode)
        .is_some_and(|m| m == tortie_model::types::BindMode::NodeIp);
    let node_addrs: Vec<IpAddr> = [me.addr(true), me.addr(false)]
        .into_iter()
        .flatten()
        .collect();
    if bind_node_ip {
        speaker.listen_addrs = node_addrs.clone();
    }
    speaker.cluster_id = me.cluster_id;
    speaker.graceful_restart.restart_time = restart_time;
    speaker.peers = planned.iter().map(|p| p.config.clone()).collect();
    speaker.validate()?;
    Ok(AgentPlan {
        speaker,
        peers: planned,
        advertisements,
        pools,
        node_addrs,
        warnings,
    })
}

fn pool_rules(view: &ClusterView<'_>) -> Vec<PoolRule> {
    use tortie_model::types::EncapMode;
    let mut rules: Vec<PoolRule> = view
        .pools
        .values()
        .map(|p| PoolRule {
            cidr: p.cidr.0.trunc(),
            ipip: match p.ipip_mode {
                Some(EncapMode::Always) => IpipMode::Always,
                Some(EncapMode::CrossSubnet) => IpipMode::CrossSubnet,
                _ => IpipMode::Never,
            },
            export_disabled: p.disable_bgp_export,
        })
        .collect();
    // Most specific first, so lookups can take the first match.
    rules.sort_by(|a, b| {
        b.cidr
            .prefix_len()
            .cmp(&a.cidr.prefix_len())
            .then(a.cidr.cmp(&b.cidr))
    });
    rules
}

#[cfg(test)]
mod tests;

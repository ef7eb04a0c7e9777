//! Which sessions a node runs: the node-to-node mesh, global and node-specific `BGPPeer`s,
//! `peerSelector` peerings and their automatic reverse side (Calico's rules, see [`compute`]).

use crate::error::AgentError;
use crate::input::{ClusterView, NodeInfo};
use crate::peer_spec::{ParsedPeer, Remote, Target, node_remotes, parse_duration};
use crate::plan::{CONNECT_RETRY, ERROR_WAIT, PeerKind, PeerRole, PlannedPeer};
use crate::secrets::SecretSource;
use std::net::IpAddr;
use std::time::Duration;
use tortie_bgp::{IdleHoldConfig, PeerConfig};
use tortie_model::types::{BgpPeerSpec, NextHopMode, ReversePeering, SourceAddress};

/// Computes this node's peerings, sorted by address.
///
/// Order of precedence (the first peering to an address wins, as in confd): mesh, global
/// `BGPPeer`s, node-specific `BGPPeer`s, then the reverse side of peerings other nodes have
/// towards this one. The speaker keys peers by address alone, so a second peering to the
/// same address on another port is dropped with a warning.
pub(crate) fn compute(
    view: &ClusterView<'_>,
    me: &NodeInfo,
    my_as: u32,
    restart_time: Duration,
    secrets: &dyn SecretSource,
    warnings: &mut Vec<String>,
) -> Result<Vec<PlannedPeer>, AgentError> {
    let mut out: Vec<PlannedPeer> = vec![];
    if view.mesh_enabled() && me.cluster_id.is_none() {
        mesh(view, me, secrets, &mut out, warnings);
    }
    // Parse every BGPPeer once (errors name the field) before using any.
    let mut parsed = vec![];
    for (name, spec) in &view.peers {
        parsed.push((*name, *spec, ParsedPeer::new(name, spec, view)?));
    }
    for global_pass in [true, false] {
        for (name, spec, p) in &parsed {
            if p.is_global() != global_pass || !p.applies_to(me) {
                continue;
            }
            let kind = if global_pass {
                PeerKind::Global
            } else {
                PeerKind::NodeSpecific
            };
            for remote in p.remotes(view, true, true) {
                push_bgp_peer(
                    me,
                    my_as,
                    restart_time,
                    secrets,
                    name,
                    spec,
                    kind,
                    remote,
                    &mut out,
                    warnings,
                );
            }
        }
    }
    for (name, spec, p) in &parsed {
        if spec.reverse_peering == Some(ReversePeering::Manual) || !p.reverse_applies_to(me, view) {
            continue;
        }
        let (v4, v6) = match &p.target {
            Target::Selector(_) => (true, true),
            Target::Address(a, _) => (a.is_ipv4(), a.is_ipv6()),
        };
        for node in view.nodes.values().filter(|n| p.local_side_matches(n)) {
            for remote in node_remotes(view, node, v4, v6) {
                push_bgp_peer(
                    me,
                    my_as,
                    restart_time,
                    secrets,
                    name,
                    spec,
                    PeerKind::NodeSpecific,
                    remote,
                    &mut out,
                    warnings,
                );
            }
        }
    }
    out.sort_by_key(|p| p.config.address);
    Ok(out)
}

fn mesh(
    view: &ClusterView<'_>,
    me: &NodeInfo,
    secrets: &dyn SecretSource,
    out: &mut Vec<PlannedPeer>,
    warnings: &mut Vec<String>,
) {
    let password = match view.global.and_then(|g| g.node_mesh_password.as_ref()) {
        None => None,
        Some(p) => crate::secrets::resolve(
            secrets,
            p,
            "BGPConfiguration \"default\" spec.nodeMeshPassword",
        )
        .unwrap_or_else(|w| {
            warnings.push(w);
            None
        }),
    };
    for other in view.nodes.values() {
        if other.name == me.name || other.cluster_id.is_some() {
            continue;
        }
        for v4 in [true, false] {
            let (Some(mine), Some(theirs)) = (me.addr(v4), other.addr(v4)) else {
                continue;
            };
            if mine == theirs {
                continue;
            }
            let mut cfg = base_config(theirs, view.node_as(other), view.listen_port(&other.name));
            cfg.local_address = Some(mine);
            cfg.password.clone_from(&password);
            // Calico makes the mesh one-directional by comparing the addresses as strings.
            cfg.passive = theirs.to_string() > mine.to_string();
            let planned = PlannedPeer {
                config: cfg,
                kind: PeerKind::Mesh,
                role: PeerRole::Peer,
                node: Some(other.name.clone()),
                source: None,
            };
            insert(out, planned, warnings);
        }
    }
}

fn base_config(address: IpAddr, asn: u32, port: u16) -> PeerConfig {
    let mut cfg = PeerConfig::new(address, asn);
    cfg.port = port;
    cfg.connect_retry = CONNECT_RETRY;
    cfg.idle_hold = IdleHoldConfig {
        initial: ERROR_WAIT.0,
        max: ERROR_WAIT.1,
        ..IdleHoldConfig::default()
    };
    cfg
}

/// Adds a peering unless one to the same address exists (the first wins).
fn insert(out: &mut Vec<PlannedPeer>, p: PlannedPeer, warnings: &mut Vec<String>) {
    match out.iter().find(|q| q.config.address == p.config.address) {
        None => out.push(p),
        Some(q) if q.config.port != p.config.port => warnings.push(format!(
            "peering to {} port {} ({}) dropped: a peering to that address on port {} exists",
            p.config.address,
            p.config.port,
            p.source.as_deref().unwrap_or("mesh"),
            q.config.port
        )),
        Some(_) => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn push_bgp_peer(
    me: &NodeInfo,
    my_as: u32,
    restart_time: Duration,
    secrets: &dyn SecretSource,
    name: &str,
    spec: &BgpPeerSpec,
    kind: PeerKind,
    remote: Remote,
    out: &mut Vec<PlannedPeer>,
    warnings: &mut Vec<String>,
) {
    // Skip ourselves.
    let Some(mine) = me.addr(remote.address.is_ipv4()) else {
        // A selected node's other family is simply not peered; an explicit address is.
        if remote.node.is_none() {
            warnings.push(format!(
                "BGPPeer {name:?}: this node has no address of {}'s family; not peered",
                remote.address
            ));
        }
        return;
    };
    if mine == remote.address {
        return;
    }
    let mut cfg = base_config(remote.address, remote.asn, remote.port);
    cfg.local_address = match spec.source_address {
        Some(SourceAddress::None) => None,
        _ => Some(mine),
    };
    // Calico v3.28 `localASNumber`: the AS this node presents to that peer.
    cfg.local_as = spec.local_as_number.map(|a| a.0).filter(|a| *a != my_as);
    let session_as = cfg.effective_local_as(my_as);
    let ebgp = remote.asn != session_as;
    // BIRD: `next hop self` (Self), `next hop keep` towards eBGP (Keep, or the older
    // keepOriginalNextHop); Auto is BIRD's default (self towards eBGP, keep within iBGP).
    match spec.next_hop_mode {
        Some(NextHopMode::SelfMode) => cfg.next_hop_self = true,
        Some(NextHopMode::Keep) => cfg.next_hop_keep = ebgp,
        _ => {}
    }
    if spec.keep_original_next_hop && ebgp {
        cfg.next_hop_keep = true;
    }
    // GTSM (RFC 5082): Calico's `ttlSecurity` is the peer's hop count.
    cfg.ttl_security = spec.ttl_security.filter(|h| *h > 0);
    if let Some(keepalive) = spec.keepalive_time.as_deref() {
        match parse_duration(keepalive) {
            Ok(k) if k.as_secs() >= 1 && k.as_secs() <= 21845 => cfg.hold_time = k * 3,
            _ => warnings.push(format!(
                "BGPPeer {name:?} spec.keepaliveTime {keepalive:?} is not a duration of 1s..6h; default hold time kept"
            )),
        }
    }
    // BIRD `graceful restart time` per peer: the restart time we advertise to it.
    if let Some(rt) = spec.max_restart_time.as_deref() {
        match parse_duration(rt) {
            Ok(d) if d.as_secs() <= 4095 => {
                cfg.restart_time = (d != restart_time).then_some(d);
            }
            _ => warnings.push(format!(
                "BGPPeer {name:?} spec.maxRestartTime {rt:?} is not a duration of at most 4095s; the node's restart time ({}s) is used",
                restart_time.as_secs()
            )),
        }
    }
    if let Some(p) = &spec.password {
        match crate::secrets::resolve(secrets, p, &format!("BGPPeer {name:?} spec.password")) {
            Ok(pw) => cfg.password = pw,
            Err(w) => warnings.push(w),
        }
    }
    // BIRD `allow local as N`: our AS may appear N times in a received path.
    if let Some(n) = spec.num_allowed_local_as_numbers.filter(|n| *n > 0) {
        cfg.allow_local_as = u8::try_from(n).unwrap_or(u8::MAX);
    }
    for (set, field) in [
        (!spec.reachable_by.is_empty(), "reachableBy"),
        (
            !spec.local_workload_selector.is_empty(),
            "localWorkloadSelector",
        ),
    ] {
        if set {
            warnings.push(format!(
                "BGPPeer {name:?} spec.{field} is not supported and is ignored"
            ));
        }
    }
    // confd: mesh and global peerings to another Calico node connect from one side only.
    if kind == PeerKind::Global && remote.node.is_some() {
        cfg.passive = remote.address.to_string() > mine.to_string();
    }
    let mut role = PeerRole::Peer;
    if !ebgp && session_as == my_as {
        if let Some(mine) = me.cluster_id
            && remote.cluster_id != Some(mine)
        {
            cfg.route_reflector_client = true;
            role = PeerRole::RouteReflectorClient;
        } else if remote.cluster_id.is_some() && me.cluster_id.is_none() {
            role = PeerRole::RouteReflector;
        }
    }
    insert(
        out,
        PlannedPeer {
            config: cfg,
            kind,
            role,
            node: remote.node,
            source: Some(name.to_string()),
        },
        warnings,
    );
}

use super::*;
use crate::advertise::AdvertisementKind;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tortie_bgp::wire::LargeCommunity;
use tortie_model::{Resource, read_documents};

fn resources(yaml: &str) -> Vec<Resource> {
    read_documents(yaml, "test.yaml")
        .unwrap()
        .into_iter()
        .map(|d| d.resource)
        .collect()
}

fn node(name: &str, v4: &str, extra_bgp: &str, labels: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  bgp:\n    ipv4Address: {v4}\n{extra_bgp}---\n"
    )
}

fn doc(kind: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}---\n"
    )
}

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool\nspec:\n  cidr: 198.19.0.0/20\n  ipipMode: CrossSubnet\n---\n";

fn three_nodes() -> String {
    node("n1", "198.18.1.9/24", "", "")
        + &node("n2", "198.18.1.10/24", "", "")
        + &node("n3", "198.18.2.13/24", "", "")
        + POOL
}

fn plan_for(node: &str, yaml: &str, blocks: &[&str]) -> Result<AgentPlan, AgentError> {
    plan(&AgentInput::new(
        node,
        resources(yaml),
        blocks.iter().map(|b| b.parse().unwrap()).collect(),
    ))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addrs(p: &AgentPlan) -> Vec<IpAddr> {
    p.peers.iter().map(|p| p.config.address).collect()
}

fn err_text(r: Result<AgentPlan, AgentError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn mesh_is_on_by_default_with_calico_defaults() {
    let p = plan_for("n1", &three_nodes(), &["198.19.0.0/26"]).unwrap();
    assert_eq!(p.speaker.local_as, 64512);
    assert_eq!(p.speaker.router_id, Ipv4Addr::new(198, 18, 1, 9));
    assert_eq!(p.speaker.listen_port, Some(179));
    assert!(p.speaker.listen_addrs.is_empty());
    assert_eq!(p.speaker.cluster_id, None);
    assert!(p.speaker.graceful_restart.enabled);
    assert_eq!(addrs(&p), vec![ip("198.18.1.10"), ip("198.18.2.13")]);
    for peer in &p.peers {
        assert_eq!(peer.kind, PeerKind::Mesh);
        assert_eq!(peer.role, PeerRole::Peer);
        assert_eq!(peer.config.remote_as, 64512);
        assert_eq!(peer.config.port, 179);
        assert_eq!(peer.config.local_address, Some(ip("198.18.1.9")));
        assert!(!peer.config.route_reflector_client);
        assert_eq!(peer.config.connect_retry, CONNECT_RETRY);
    }
    assert_eq!(p.peers[0].node.as_deref(), Some("n2"));
    assert_eq!(p.speaker.peers.len(), 2);
    assert_eq!(p.advertisements.len(), 1);
    let a = &p.advertisements[0];
    assert_eq!(a.kind, AdvertisementKind::Block);
    assert_eq!(a.local_route().attrs.local_pref, Some(2_147_482_623));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(
        p,
        plan_for("n1", &three_nodes(), &["198.19.0.0/26"]).unwrap()
    );
}

#[test]
fn mesh_direction_follows_calicos_string_comparison() {
    // "198.18.1.9" sorts after "198.18.1.10" as text although .9 < .10 numerically.
    let p1 = plan_for("n1", &three_nodes(), &[]).unwrap();
    let p2 = plan_for("n2", &three_nodes(), &[]).unwrap();
    assert!(!p1.peer(ip("198.18.1.10")).unwrap().config.passive);
    assert!(p2.peer(ip("198.18.1.9")).unwrap().config.passive);
    // Exactly one side of each pair connects.
    let p3 = plan_for("n3", &three_nodes(), &[]).unwrap();
    let plans = [
        ("198.18.1.9", &p1),
        ("198.18.1.10", &p2),
        ("198.18.2.13", &p3),
    ];
    for (a, pa) in plans {
        for (b, pb) in plans {
            if a != b {
                let ab = pa.peer(ip(b)).unwrap().config.passive;
                let ba = pb.peer(ip(a)).unwrap().config.passive;
                assert_ne!(ab, ba, "{a} <-> {b}");
            }
        }
    }
}

#[test]
fn disabled_mesh_with_a_global_peer() {
    let yaml = three_nodes()
        + &doc(
            "BGPConfiguration",
            "default",
            "  nodeToNodeMeshEnabled: false\n  asNumber: 65010\n  listenPort: 1179\n  bindMode: NodeIP\n",
        )
        + &doc(
            "BGPPeer",
            "tor",
            "  peerIP: 198.18.1.1\n  asNumber: 4200000001\n",
        );
    for n in ["n1", "n2", "n3"] {
        let p = plan_for(n, &yaml, &[]).unwrap();
        assert_eq!(p.speaker.local_as, 65010);
        assert_eq!(p.speaker.listen_port, Some(1179));
        assert_eq!(p.speaker.listen_addrs, p.node_addrs);
        assert_eq!(addrs(&p), vec![ip("198.18.1.1")]);
        let tor = &p.peers[0];
        assert_eq!(tor.kind, PeerKind::Global);
        assert_eq!(tor.config.remote_as, 4_200_000_001);
        // Not a Calico node: default port, never passive.
        assert_eq!(tor.config.port, 179);
        assert!(!tor.config.passive);
        assert_eq!(tor.source.as_deref(), Some("tor"));
    }
}

fn rr_yaml(mesh: bool) -> String {
    node(
        "rr1",
        "198.18.1.21/24",
        "    routeReflectorClusterID: 224.0.0.1\n",
        "route-reflector: 'true'",
    ) + &node(
        "rr2",
        "198.18.1.22/24",
        "    routeReflectorClusterID: 224.0.0.1\n",
        "route-reflector: 'true'",
    ) + &node("c1", "198.18.1.31/24", "", "")
        + &node("c2", "198.18.1.32/24", "", "")
        + &doc(
            "BGPConfiguration",
            "default",
            &format!("  nodeToNodeMeshEnabled: {mesh}\n"),
        )
        + &doc(
            "BGPPeer",
            "to-rrs",
            "  nodeSelector: all()\n  peerSelector: route-reflector == 'true'\n",
        )
}

#[test]
fn route_reflector_cluster_with_mesh_off() {
    let c1 = plan_for("c1", &rr_yaml(false), &[]).unwrap();
    assert_eq!(addrs(&c1), vec![ip("198.18.1.21"), ip("198.18.1.22")]);
    for p in &c1.peers {
        assert_eq!(p.kind, PeerKind::NodeSpecific);
        assert_eq!(p.role, PeerRole::RouteReflector);
        assert!(!p.config.route_reflector_client);
        assert!(!p.config.passive);
    }
    assert_eq!(c1.speaker.cluster_id, None);

    let rr1 = plan_for("rr1", &rr_yaml(false), &[]).unwrap();
    assert_eq!(rr1.speaker.cluster_id, Some(Ipv4Addr::new(224, 0, 0, 1)));
    assert_eq!(
        addrs(&rr1),
        vec![ip("198.18.1.22"), ip("198.18.1.31"), ip("198.18.1.32")]
    );
    // The other reflector shares the cluster ID: not a client.
    let rr2 = rr1.peer(ip("198.18.1.22")).unwrap();
    assert!(!rr2.config.route_reflector_client);
    assert_eq!(rr2.role, PeerRole::Peer);
    // Clients come from the automatic reverse peering.
    for c in ["198.18.1.31", "198.18.1.32"] {
        let p = rr1.peer(ip(c)).unwrap();
        assert!(p.config.route_reflector_client);
        assert_eq!(p.role, PeerRole::RouteReflectorClient);
        assert_eq!(p.kind, PeerKind::NodeSpecific);
    }
}

#[test]
fn route_reflectors_stay_out_of_the_mesh() {
    let rr1 = plan_for("rr1", &rr_yaml(true), &[]).unwrap();
    assert!(rr1.peers.iter().all(|p| p.kind != PeerKind::Mesh));
    assert_eq!(rr1.peers.len(), 3);
    let c1 = plan_for("c1", &rr_yaml(true), &[]).unwrap();
    let mesh: Vec<IpAddr> = c1
        .peers
        .iter()
        .filter(|p| p.kind == PeerKind::Mesh)
        .map(|p| p.config.address)
        .collect();
    assert_eq!(mesh, vec![ip("198.18.1.32")]);
    assert_eq!(c1.peers.len(), 3);
}

#[test]
fn reverse_peering_manual_leaves_the_selected_side_alone() {
    let yaml = rr_yaml(false).replace(
        "  peerSelector: route-reflector == 'true'\n",
        "  peerSelector: route-reflector == 'true'\n  reversePeering: Manual\n",
    );
    let rr1 = plan_for("rr1", &yaml, &[]).unwrap();
    assert_eq!(addrs(&rr1), vec![ip("198.18.1.22")]);
}

#[test]
fn node_specific_and_selected_peers() {
    let yaml = node("n1", "198.18.1.11/24", "", "rack: a")
        + &node("n2", "198.18.1.12/24", "", "rack: b")
        + &doc(
            "BGPConfiguration",
            "default",
            "  nodeToNodeMeshEnabled: false\n",
        )
        + &doc(
            "BGPPeer",
            "n2-only",
            "  node: n2\n  peerIP: 198.18.2.1\n  asNumber: 65001\n  nextHopMode: Self\n  keepaliveTime: 10s\n",
        )
        + &doc(
            "BGPPeer",
            "rack-a",
            "  nodeSelector: rack == 'a'\n  peerIP: '198.18.3.1:1790'\n  asNumber: 65002\n  sourceAddress: None\n",
        )
        + &doc(
            "BGPPeer",
            "global",
            "  peerIP: 198.18.2.1\n  asNumber: 65001\n",
        );
    let n1 = plan_for("n1", &yaml, &[]).unwrap();
    assert_eq!(addrs(&n1), vec![ip("198.18.2.1"), ip("198.18.3.1")]);
    let rack = n1.peer(ip("198.18.3.1")).unwrap();
    assert_eq!(rack.kind, PeerKind::NodeSpecific);
    assert_eq!(rack.config.port, 1790);
    assert_eq!(rack.config.local_address, None);
    let n2 = plan_for("n2", &yaml, &[]).unwrap();
    assert_eq!(addrs(&n2), vec![ip("198.18.2.1")]);
    // The global peering to the same address wins over the node-specific one.
    let g = &n2.peers[0];
    assert_eq!(g.kind, PeerKind::Global);
    assert_eq!(g.source.as_deref(), Some("global"));
    assert!(!g.config.next_hop_self);

    let only_node = yaml.replace(
        &doc(
            "BGPPeer",
            "global",
            "  peerIP: 198.18.2.1\n  asNumber: 65001\n",
        ),
        "",
    );
    let n2 = plan_for("n2", &only_node, &[]).unwrap();
    let p = &n2.peers[0];
    assert_eq!(p.kind, PeerKind::NodeSpecific);
    assert!(p.config.next_hop_self);
    assert_eq!(p.config.hold_time, Duration::from_secs(30));
}

#[test]
fn peering_to_another_node_by_address_gets_its_port_and_reverse_side() {
    let yaml = node("n1", "198.18.1.11/24", "", "")
        + &node("n2", "198.18.1.12/24", "    asNumber: 65002\n", "")
        + &doc(
            "BGPConfiguration",
            "default",
            "  nodeToNodeMeshEnabled: false\n",
        )
        + &doc("BGPConfiguration", "node.n2", "  listenPort: 1802\n")
        + &doc(
            "BGPPeer",
            "n1-to-n2",
            "  node: n1\n  peerIP: 198.18.1.12\n  asNumber: 65002\n",
        );
    let n1 = plan_for("n1", &yaml, &[]).unwrap();
    let p = n1.peer(ip("198.18.1.12")).unwrap();
    assert_eq!(p.config.port, 1802);
    assert_eq!(p.node.as_deref(), Some("n2"));
    assert_eq!(p.config.remote_as, 65002);
    let n2 = plan_for("n2", &yaml, &[]).unwrap();
    assert_eq!(n2.speaker.listen_port, Some(1802));
    assert_eq!(n2.speaker.local_as, 65002);
    let back = n2.peer(ip("198.18.1.11")).unwrap();
    assert_eq!(back.kind, PeerKind::NodeSpecific);
    assert_eq!(back.config.remote_as, 64512);
}

#[test]
fn advertisements_follow_pools_services_and_communities() {
    let yaml = three_nodes()
        + "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: quiet\nspec:\n  cidr: 198.19.16.0/20\n  disableBGPExport: true\n---\n"
        + &doc(
            "BGPConfiguration",
            "default",
            "  serviceClusterIPs:\n  - cidr: 10.96.0.0/12\n  serviceExternalIPs:\n  - cidr: 203.0.113.0/24\n  communities:\n  - name: blocks\n    value: '64512:100'\n  prefixAdvertisements:\n  - cidr: 198.19.0.0/20\n    communities: [blocks, '65000:1:2']\n  - cidr: 10.96.0.0/12\n    communities: ['64512:200']\n",
        );
    let p = plan_for(
        "n1",
        &yaml,
        &["198.19.0.64/26", "198.19.16.0/26", "198.19.1.7/32"],
    )
    .unwrap();
    let got: Vec<(String, AdvertisementKind)> = p
        .advertisements
        .iter()
        .map(|a| (a.prefix.to_string(), a.kind))
        .collect();
    assert_eq!(
        got,
        vec![
            ("10.96.0.0/12".into(), AdvertisementKind::ServiceClusterIps),
            ("198.19.0.64/26".into(), AdvertisementKind::Block),
            ("198.19.1.7/32".into(), AdvertisementKind::Block),
            (
                "203.0.113.0/24".into(),
                AdvertisementKind::ServiceExternalIps
            ),
        ]
    );
    let block = &p.advertisements[1];
    assert_eq!(block.communities, vec![(64512 << 16) | 100]);
    assert_eq!(
        block.large_communities,
        vec![LargeCommunity {
            global: 65000,
            local1: 1,
            local2: 2
        }]
    );
    assert_eq!(p.advertisements[0].communities, vec![(64512 << 16) | 200]);
    assert!(p.advertisements[3].communities.is_empty());
    assert_eq!(p.advertisements[2].communities, block.communities);
    // Only the exported block gets a blackhole route (not the borrowed address).
    let holes = p.blackhole_routes();
    assert_eq!(holes.len(), 1);
    assert_eq!(holes[0].target, tortie_abi::RouteTarget::Blackhole);
    assert_eq!(holes[0].prefix.len, 26);
    assert_eq!(holes[0].prefix.addr, ip("198.19.0.64"));
    let route = block.local_route();
    assert_eq!(route.attrs.communities, block.communities);
    // Pools for import, most specific first.
    assert_eq!(p.pools.len(), 2);
    assert!(p.pools.iter().any(|r| r.export_disabled));
    assert!(
        p.pools
            .iter()
            .any(|r| r.ipip == IpipMode::CrossSubnet && r.cidr.to_string() == "198.19.0.0/20")
    );
}

#[test]
fn per_node_prefix_advertisements_override_the_global_ones() {
    let yaml = three_nodes()
        + &doc(
            "BGPConfiguration",
            "default",
            "  prefixAdvertisements:\n  - cidr: 198.19.0.0/20\n    communities: ['1:1']\n",
        )
        + &doc(
            "BGPConfiguration",
            "node.n1",
            "  prefixAdvertisements:\n  - cidr: 198.19.0.0/20\n    communities: ['2:2']\n",
        );
    let n1 = plan_for("n1", &yaml, &["198.19.0.0/26"]).unwrap();
    assert_eq!(n1.advertisements[0].communities, vec![(2 << 16) | 2]);
    let n2 = plan_for("n2", &yaml, &["198.19.0.64/26"]).unwrap();
    assert_eq!(n2.advertisements[0].communities, vec![(1 << 16) | 1]);
}

#[test]
fn per_peer_knobs_are_honoured() {
    let yaml = three_nodes()
        + &doc(
            "BGPPeer",
            "tor",
            "  peerIP: 198.18.1.1\n  asNumber: 65001\n  password:\n    secretKeyRef:\n      name: bgp\n      key: tor\n  ttlSecurity: 1\n  localASNumber: 65099\n  maxRestartTime: 300s\n  nextHopMode: Keep\n  numAllowedLocalASNumbers: 2\n",
        );
    let p = plan_for("n1", &yaml, &[]).unwrap();
    let tor = &p.peer(ip("198.18.1.1")).unwrap().config;
    assert_eq!(
        tor.local_as,
        Some(65099),
        "localASNumber is presented to the peer"
    );
    assert_eq!(tor.ttl_security, Some(1));
    assert_eq!(tor.restart_time, Some(Duration::from_secs(300)));
    assert!(tor.next_hop_keep && !tor.next_hop_self);
    assert_eq!(tor.allow_local_as, 2);
    assert!(p.warnings.iter().any(|w| w.contains("spec.password")));
    assert!(
        !p.warnings
            .iter()
            .any(|w| w.contains("ttlSecurity") || w.contains("ASNumber")),
        "{:?}",
        p.warnings
    );
    // The node's own AS as localASNumber, the node's restart time and Self: no override.
    let yaml = yaml
        .replace("localASNumber: 65099", "localASNumber: 64512")
        .replace("maxRestartTime: 300s", "maxRestartTime: 120s")
        .replace("nextHopMode: Keep", "nextHopMode: Self");
    let p = plan_for("n1", &yaml, &[]).unwrap();
    let tor = &p.peer(ip("198.18.1.1")).unwrap().config;
    assert_eq!((tor.local_as, tor.restart_time), (None, None));
    assert!(tor.next_hop_self && !tor.next_hop_keep);
    // localASNumber equal to the remote AS makes the session iBGP: Keep is then moot.
    let yaml = yaml
        .replace("localASNumber: 64512", "localASNumber: 65001")
        .replace("nextHopMode: Self", "nextHopMode: Keep");
    let p = plan_for("n1", &yaml, &[]).unwrap();
    let tor = &p.peer(ip("198.18.1.1")).unwrap().config;
    assert!(!tor.is_ebgp(p.speaker.local_as) && !tor.next_hop_keep);
    // A bad maxRestartTime is reported and ignored.
    let bad = yaml.replace("maxRestartTime: 120s", "maxRestartTime: soon");
    let p = plan_for("n1", &bad, &[]).unwrap();
    assert!(p.warnings.iter().any(|w| w.contains("spec.maxRestartTime")));
    assert_eq!(p.peer(ip("198.18.1.1")).unwrap().config.restart_time, None);
}

#[test]
fn every_session_gets_calicos_export_filter() {
    let yaml = three_nodes()
        + &doc(
            "BGPPeer",
            "tor",
            "  peerIP: 198.18.1.1\n  asNumber: 65001\n",
        );
    let p = plan_for("n1", &yaml, &["198.19.0.0/26"]).unwrap();
    let pool_route = crate::advertise::to_wire("198.19.1.0/26".parse().unwrap());
    let outside = crate::advertise::to_wire("198.18.200.0/24".parse().unwrap());
    for peer in &p.peers {
        let pol = &peer.config.export_policy;
        assert!(pol.accepts(&pool_route, tortie_bgp::RouteSource::Ibgp));
        assert!(!pol.accepts(&pool_route, tortie_bgp::RouteSource::Ebgp));
        assert!(!pol.accepts(&outside, tortie_bgp::RouteSource::Ibgp));
        assert!(pol.accepts(&outside, tortie_bgp::RouteSource::Local));
    }
}

#[test]
fn bad_input_is_named_by_resource_and_field() {
    let base = three_nodes();
    assert_eq!(
        err_text(plan_for("nope", &base, &[])),
        "Node \"nope\": no such Node resource"
    );
    let no_v4 = base.replace(
        "    ipv4Address: 198.18.1.9/24\n",
        "    ipv6Address: 2001:db8::9/64\n",
    );
    assert_eq!(
        err_text(plan_for("n1", &no_v4, &[])),
        "Node \"n1\": spec.bgp.ipv4Address: is not set; the BGP router id is the node's IPv4 address"
    );
    let swapped = base.replace(
        "    ipv4Address: 198.18.1.9/24\n",
        "    ipv4Address: 2001:db8::9/64\n",
    );
    assert!(
        err_text(plan_for("n1", &swapped, &[])).starts_with("Node \"n1\": spec.bgp.ipv4Address:")
    );
    let bad_id = node(
        "x",
        "198.18.1.40/24",
        "    routeReflectorClusterID: rr-one\n",
        "",
    ) + &base;
    assert_eq!(
        err_text(plan_for("n1", &bad_id, &[])),
        "Node \"x\": spec.bgp.routeReflectorClusterID: \"rr-one\" is not an IPv4-formatted cluster ID"
    );
    let no_bgp =
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: bare\nspec: {}\n---\n"
            .to_string()
            + &base;
    assert_eq!(
        err_text(plan_for("bare", &no_bgp, &[])),
        "Node \"bare\": spec.bgp: is not set: the node runs no BGP"
    );
    let cases = [
        (
            "  peerIP: tor-1\n  asNumber: 65001\n",
            "BGPPeer \"p\": spec.peerIP: \"tor-1\" is not IP, IPv4:port or [IPv6]:port",
        ),
        (
            "  asNumber: 65001\n",
            "BGPPeer \"p\": spec.peerIP: one of spec.peerIP and spec.peerSelector is required",
        ),
        (
            "  peerIP: 198.18.9.9\n",
            "BGPPeer \"p\": spec.asNumber: is required: 198.18.9.9 is not a node's address",
        ),
        (
            "  peerIP: 198.18.9.9\n  asNumber: 1\n  peerSelector: all()\n",
            "BGPPeer \"p\": spec.peerSelector: cannot be combined with spec.peerIP",
        ),
        (
            "  peerSelector: all()\n  asNumber: 1\n",
            "BGPPeer \"p\": spec.asNumber: must be empty with spec.peerSelector (the remote AS comes from the selected nodes)",
        ),
        (
            "  node: n1\n  nodeSelector: all()\n  peerSelector: all()\n",
            "BGPPeer \"p\": spec.nodeSelector: cannot be combined with spec.node",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(
            err_text(plan_for(
                "n1",
                &(base.clone() + &doc("BGPPeer", "p", spec)),
                &[]
            )),
            want
        );
    }
    let bad_selector = base.clone()
        + &doc(
            "BGPPeer",
            "p",
            "  nodeSelector: rack == a\n  peerIP: 198.18.9.9\n  asNumber: 1\n",
        );
    let e = err_text(plan_for("n1", &bad_selector, &[]));
    assert!(
        e.starts_with("BGPPeer \"p\": spec.nodeSelector: column "),
        "{e}"
    );
    let bad_peer_selector = base.clone() + &doc("BGPPeer", "p", "  peerSelector: has(\n");
    assert!(
        err_text(plan_for("n1", &bad_peer_selector, &[]))
            .starts_with("BGPPeer \"p\": spec.peerSelector: column ")
    );
    let bad_community = base.clone()
        + &doc(
            "BGPConfiguration",
            "default",
            "  prefixAdvertisements:\n  - cidr: 198.19.0.0/20\n    communities: ['1:1', 'nope']\n",
        );
    assert_eq!(
        err_text(plan_for("n1", &bad_community, &[])),
        "BGPConfiguration \"default\": spec.prefixAdvertisements[0].communities[1]: \"nope\" is neither a community name nor aa:nn / aa:nn:mm"
    );
    let big_community = bad_community.replace("'nope'", "'70000:1'");
    assert!(err_text(plan_for("n1", &big_community, &[])).contains("communities[1]"));
    let bad_time = base.clone()
        + &doc(
            "BGPConfiguration",
            "default",
            "  nodeMeshMaxRestartTime: soon\n",
        );
    assert_eq!(
        err_text(plan_for("n1", &bad_time, &[])),
        "BGPConfiguration \"default\": spec.nodeMeshMaxRestartTime: \"soon\" is not a duration such as \"120s\" or \"1m30s\""
    );
    let long_time = base
        + &doc(
            "BGPConfiguration",
            "default",
            "  nodeMeshMaxRestartTime: 2h\n",
        );
    assert!(err_text(plan_for("n1", &long_time, &[])).contains("4095s"));
}

#[test]
fn restart_time_comes_from_the_mesh_setting() {
    let yaml = three_nodes()
        + &doc(
            "BGPConfiguration",
            "default",
            "  nodeMeshMaxRestartTime: 1m30s\n",
        );
    let p = plan_for("n1", &yaml, &[]).unwrap();
    assert_eq!(
        p.speaker.graceful_restart.restart_time,
        Duration::from_secs(90)
    );
}

#[test]
fn durations_and_peer_addresses_parse_like_calico() {
    use crate::peer_spec::{parse_duration, parse_peer_ip};
    assert_eq!(parse_duration("120s"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    for bad in ["", "10", "s", "10x", "-1s", "1s2"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse_peer_ip("198.18.1.1"), Some((ip("198.18.1.1"), 0)));
    assert_eq!(
        parse_peer_ip("198.18.1.1:1790"),
        Some((ip("198.18.1.1"), 1790))
    );
    assert_eq!(
        parse_peer_ip("[2001:db8::1]:179"),
        Some((ip("2001:db8::1"), 179))
    );
    assert_eq!(parse_peer_ip("2001:db8::1"), Some((ip("2001:db8::1"), 0)));
    assert_eq!(parse_peer_ip("198.18.1.1:0"), None);
    assert_eq!(parse_peer_ip("tor:179"), None);
}

#[test]
fn ipv6_mesh_sessions_run_beside_ipv4_ones() {
    let yaml = node(
        "a",
        "198.18.1.11/24",
        "    ipv6Address: 2001:db8::11/64\n",
        "",
    ) + &node(
        "b",
        "198.18.1.12/24",
        "    ipv6Address: 2001:db8::12/64\n",
        "",
    ) + &node("c", "198.18.1.13/24", "", "");
    let a = plan_for("a", &yaml, &["2001:db8:1::/122"]).unwrap();
    assert_eq!(
        addrs(&a),
        vec![ip("198.18.1.12"), ip("198.18.1.13"), ip("2001:db8::12")]
    );
    let v6 = a.peer(ip("2001:db8::12")).unwrap();
    assert_eq!(v6.config.local_address, Some(ip("2001:db8::11")));
    assert_eq!(
        v6.config.families,
        vec![tortie_bgp::wire::Family::Ipv6Unicast]
    );
    // A v6 block on a node without an IPv6 address is flagged.
    let c = plan_for("c", &yaml, &["2001:db8:1::40/122"]).unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("2001:db8:1::40/122")));
}

#[test]
fn passwords_come_from_the_secret_source() {
    use std::collections::BTreeMap;
    let yaml = three_nodes()
        + &doc(
            "BGPConfiguration",
            "default",
            "  nodeMeshPassword:\n    secretKeyRef:\n      name: bgp\n      key: mesh\n",
        )
        + &doc(
            "BGPPeer",
            "tor",
            "  peerIP: 198.18.1.1\n  asNumber: 65001\n  password:\n    secretKeyRef:\n      name: bgp\n      key: tor\n",
        );
    let mut secrets: BTreeMap<(String, String), String> = BTreeMap::new();
    secrets.insert(("bgp".into(), "mesh".into()), "m3sh".into());
    secrets.insert(("bgp".into(), "tor".into()), "x".repeat(81));
    let input = AgentInput::new("n1", resources(&yaml), vec![]);
    let p = plan_with_secrets(&input, &secrets).unwrap();
    assert_eq!(
        p.peer(ip("198.18.1.10"))
            .unwrap()
            .config
            .password
            .as_deref(),
        Some("m3sh")
    );
    let tor = p.peer(ip("198.18.1.1")).unwrap();
    assert_eq!(tor.config.password, None);
    assert!(
        p.warnings.iter().any(|w| w.contains("1..=80 bytes")),
        "{:?}",
        p.warnings
    );
    secrets.insert(("bgp".into(), "tor".into()), "s3cret".into());
    let p = plan_with_secrets(&input, &secrets).unwrap();
    assert_eq!(
        p.peer(ip("198.18.1.1")).unwrap().config.password.as_deref(),
        Some("s3cret")
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    // Without a source, the reference is reported and the session has no password.
    let p = plan(&input).unwrap();
    assert!(p.peers.iter().all(|p| p.config.password.is_none()));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("spec.nodeMeshPassword") && w.contains("not found"))
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The plan depends on the resources, not on the order the datastore listed them in.
        #[test]
        fn plan_ignores_resource_order(order in Just((0..7).collect::<Vec<usize>>()).prop_shuffle()) {
            let all = resources(&(rr_yaml(false) + POOL));
            prop_assert_eq!(all.len(), order.len());
            let shuffled: Vec<Resource> = order.iter().map(|&i| all[i].clone()).collect();
            for n in ["rr1", "c1"] {
                let a = plan(&AgentInput::new(n, all.clone(), vec!["198.19.0.0/26".parse().unwrap()])).unwrap();
                let b = plan(&AgentInput::new(n, shuffled.clone(), vec!["198.19.0.0/26".parse().unwrap()])).unwrap();
                prop_assert_eq!(a, b);
            }
        }

        /// Durations: any text is parsed or refused without panicking, and h/m/s sums
        /// written Go's way read back exactly.
        #[test]
        fn durations_parse_or_refuse(text in ".{0,12}", h in 0u64..50, m in 0u64..60, sec in 0u64..60) {
            let _ = crate::peer_spec::parse_duration(&text);
            let written = format!("{h}h{m}m{sec}s");
            prop_assert_eq!(
                crate::peer_spec::parse_duration(&written),
                Ok(Duration::from_secs(h * 3600 + m * 60 + sec))
            );
        }

        /// Peer addresses: arbitrary text never panics; IPv4:port round-trips.
        #[test]
        fn peer_ips_parse_or_refuse(text in ".{0,24}", a in any::<[u8; 4]>(), port in 1u16..) {
            let _ = crate::peer_spec::parse_peer_ip(&text);
            let addr = std::net::Ipv4Addr::from(a);
            prop_assert_eq!(
                crate::peer_spec::parse_peer_ip(&format!("{addr}:{port}")),
                Some((IpAddr::V4(addr), port))
            );
        }
    }
}

#[test]
fn bgp_filters_come_before_calicos_export_filter() {
    let yaml = three_nodes()
        + &doc(
            "BGPPeer",
            "tor",
            "  peerIP: 198.18.1.1\n  asNumber: 65001\n  filters: [no-host-routes, missing]\n",
        )
        + &doc(
            "BGPFilter",
            "no-host-routes",
            "  exportV4:\n  - action: Reject\n    matchOperator: In\n    cidr: 198.19.0.0/20\n    prefixLength:\n      min: 32\n  - action: Accept\n    matchOperator: Equal\n    cidr: 198.18.100.0/24\n  - action: Reject\n    interface: 'eth*'\n  importV4:\n  - action: Reject\n    matchOperator: NotIn\n    cidr: 198.18.0.0/15\n  importV6:\n  - action: Reject\n    source: RemotePeers\n",
        );
    let p = plan_for("n1", &yaml, &["198.19.0.0/26"]).unwrap();
    let w = |p: &str| tortie_bgp::wire::Prefix::from_str(p).unwrap();
    use std::str::FromStr;
    use tortie_bgp::RouteSource::{Ebgp, Ibgp, Local};
    let tor = &p.peer(ip("198.18.1.1")).unwrap().config;
    let exp = &tor.export_policy;
    assert!(exp.accepts(&w("198.19.0.0/26"), Local), "the block itself");
    assert!(
        !exp.accepts(&w("198.19.0.5/32"), Local),
        "host routes in the pool"
    );
    assert!(!exp.accepts(&w("198.19.0.70/32"), Ibgp));
    assert!(
        exp.accepts(&w("198.18.100.0/24"), Ibgp),
        "the filter accepts it"
    );
    assert!(
        !exp.accepts(&w("198.18.101.0/24"), Ibgp),
        "Calico's filter rejects it"
    );
    let imp = &tor.import_policy;
    assert!(imp.accepts(&w("198.19.1.0/24"), Ebgp));
    assert!(
        !imp.accepts(&w("203.0.113.0/24"), Ebgp),
        "outside 198.18.0.0/15"
    );
    assert!(
        !imp.accepts(&w("2001:db8::/64"), Ebgp),
        "importV6 rejects peers' routes"
    );
    // The mesh has no filters.
    let mesh = &p.peer(ip("198.18.1.10")).unwrap().config;
    assert!(mesh.import_policy.is_accept_all());
    assert!(mesh.export_policy.accepts(&w("198.19.0.5/32"), Local));
    assert!(
        p.warnings
            .iter()
            .any(|x| x.contains("\"missing\" does not exist")),
        "{:?}",
        p.warnings
    );
    assert!(
        p.warnings.iter().any(|x| x.contains("interface \"eth*\"")),
        "{:?}",
        p.warnings
    );
}

//! Three agents on 127.0.0.1-3 (one shared port, `bindMode: NodeIP`) built from one resource
//! set: they form Calico's full mesh and learn each other's blocks; then the mesh is turned
//! off and node 1 becomes a route reflector, and the routes flow through it. A node joining
//! the mesh adds one session on each node and leaves the others alone.

use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tortie_abi::{IpipMode, NodeId, RouteTarget};
use tortie_bgp_agent::{
    AgentInput, BgpAgent, LearnedRoute, PeerKind, PeerRole, PeerStatus, RouteChange, SecretSource,
};
use tortie_model::{Resource, parse_documents};

const NODES: [(&str, &str, &str); 3] = [
    ("n1", "127.0.0.1", "198.19.0.0/26"),
    ("n2", "127.0.0.2", "198.19.0.64/26"),
    ("n3", "127.0.0.3", "198.19.0.128/26"),
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cluster(port: u16, reflector: bool) -> Vec<Resource> {
    let mut y = String::new();
    for (i, (name, addr, _)) in NODES.iter().enumerate() {
        let rr = reflector && i == 0;
        y += &format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: {name}\n{}spec:\n  bgp:\n    ipv4Address: {addr}/8\n{}---\n",
            if rr {
                "  labels:\n    route-reflector: 'true'\n"
            } else {
                ""
            },
            if rr {
                "    routeReflectorClusterID: 224.0.0.1\n"
            } else {
                ""
            },
        );
    }
    y += "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool\nspec:\n  cidr: 198.19.0.0/20\n  ipipMode: CrossSubnet\n---\n";
    y += &format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  listenPort: {port}\n  bindMode: NodeIP\n  nodeToNodeMeshEnabled: {}\n{}---\n",
        !reflector,
        if reflector {
            ""
        } else {
            "  nodeMeshPassword:\n    secretKeyRef:\n      name: bgp\n      key: mesh\n"
        },
    );
    if reflector {
        y += "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: to-rr\nspec:\n  nodeSelector: all()\n  peerSelector: route-reflector == 'true'\n  password:\n    secretKeyRef:\n      name: bgp\n      key: mesh\n";
    }
    parse_documents(&y, "cluster.yaml").unwrap()
}

fn input(i: usize, resources: &[Resource], with_block: bool) -> AgentInput {
    let blocks = if with_block {
        vec![NODES[i].2.parse().unwrap()]
    } else {
        vec![]
    };
    AgentInput::new(NODES[i].0, resources.to_vec(), blocks)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Polls (every 50 ms, at most `secs`) until `pred` holds for the agent's routes.
async fn wait_routes(agent: &BgpAgent, secs: u64, pred: impl Fn(&[LearnedRoute]) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if pred(&agent.routes()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pred(&agent.routes())
}

async fn wait_peers(
    agent: &BgpAgent,
    secs: u64,
    pred: impl Fn(&[PeerStatus]) -> bool,
) -> Vec<PeerStatus> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let peers = agent.peers_now().await.unwrap();
        if pred(&peers) || tokio::time::Instant::now() >= deadline {
            return peers;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every other node's block, with that node as next hop.
fn has_others(i: usize) -> impl Fn(&[LearnedRoute]) -> bool {
    move |routes| {
        NODES
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .all(|(_, (_, addr, block))| {
                routes
                    .iter()
                    .any(|r| r.prefix == net(block) && r.next_hop == Some(ip(addr)))
            })
            && routes.len() == 2
    }
}

/// Starts the three agents; the mesh sessions use TCP-MD5 with the password from `secrets`.
fn start_all(resources: &[Resource]) -> Vec<BgpAgent> {
    let rt = tokio::runtime::Handle::current();
    let mut secrets: BTreeMap<(String, String), String> = BTreeMap::new();
    secrets.insert(("bgp".into(), "mesh".into()), "m3sh-key".into());
    let secrets: Arc<dyn SecretSource> = Arc::new(secrets);
    (0..3)
        .map(|i| {
            let agent =
                BgpAgent::start_with_secrets(&rt, &input(i, resources, true), secrets.clone())
                    .unwrap();
            assert!(
                agent.plan().warnings.is_empty(),
                "{:?}",
                agent.plan().warnings
            );
            agent
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_form_a_full_mesh_and_learn_each_others_blocks() {
    let port = free_port();
    let resources = cluster(port, false);
    let mut agents = start_all(&resources);
    for (i, a) in agents.iter().enumerate() {
        assert_eq!(
            a.listening(),
            vec![format!("{}:{port}", NODES[i].1).parse().unwrap()]
        );
        assert!(
            wait_routes(a, 20, has_others(i)).await,
            "node {i}: {:?}",
            a.routes()
        );
        let peers = wait_peers(a, 5, |p| p.iter().all(PeerStatus::is_established)).await;
        assert_eq!(peers.len(), 2);
        for p in &peers {
            assert_eq!(p.kind, PeerKind::Mesh);
            assert_eq!(p.calico_state(), "up");
            assert_eq!(p.info(), "Established");
            assert_eq!(p.received, 1);
            assert_eq!(
                p.advertised, 1,
                "split horizon: only our own block goes to mesh peers"
            );
            assert!(p.since_unix > 0);
        }
    }
    // Learned routes become fastpath routes towards the advertising node.
    let ids: HashMap<IpAddr, NodeId> = NODES
        .iter()
        .enumerate()
        .map(|(i, (_, a, _))| (ip(a), NodeId(i as u32 + 1)))
        .collect();
    let mut fp = agents[0].fastpath_routes(&ids);
    fp.sort_by_key(|r| r.route.prefix.addr);
    assert_eq!(fp.len(), 2);
    assert_eq!(fp[0].origin, "bgp");
    assert_eq!(
        fp[0].route.target,
        RouteTarget::Node {
            node: NodeId(2),
            encap: Some(IpipMode::CrossSubnet)
        }
    );
    let changes = agents[0].take_changes();
    assert!(
        changes
            .iter()
            .filter(|c| matches!(c, RouteChange::Add(_)))
            .count()
            >= 2
    );

    // Node 3 loses its block: the others remove the route, without a speaker restart.
    agents[2].update(&input(2, &resources, false)).unwrap();
    for a in &agents[..2] {
        assert!(
            wait_routes(a, 10, |r| r.len() == 1
                && r.iter().all(|r| r.prefix != net(NODES[2].2)))
            .await,
            "{:?}",
            a.routes()
        );
    }
    assert!(
        agents[0]
            .take_changes()
            .contains(&RouteChange::Remove(net(NODES[2].2)))
    );
    assert!(agents[2].peers().iter().all(PeerStatus::is_established));
    for a in agents {
        a.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_off_and_node_one_a_route_reflector() {
    let port = free_port();
    let mut agents = start_all(&cluster(port, false));
    for (i, a) in agents.iter().enumerate() {
        assert!(
            wait_routes(a, 20, has_others(i)).await,
            "node {i}: {:?}",
            a.routes()
        );
    }
    for a in agents.iter_mut() {
        a.take_changes();
    }
    let reflected = cluster(port, true);
    for (i, a) in agents.iter_mut().enumerate() {
        a.update(&input(i, &reflected, true)).unwrap();
        assert!(
            a.plan()
                .peers
                .iter()
                .all(|p| p.config.password.as_deref() == Some("m3sh-key"))
        );
    }
    // Clients peer with the reflector only, which reflects with the next hop kept.
    let rr = wait_peers(&agents[0], 30, |p| {
        p.len() == 2 && p.iter().all(PeerStatus::is_established)
    })
    .await;
    assert_eq!(rr.len(), 2, "{rr:?}");
    for p in &rr {
        assert!(p.is_established(), "{p:?}");
        assert_eq!(p.kind, PeerKind::NodeSpecific);
        assert_eq!(p.role, PeerRole::RouteReflectorClient);
    }
    for (i, a) in agents.iter().enumerate().skip(1) {
        let peers = wait_peers(a, 30, |p| p.iter().all(PeerStatus::is_established)).await;
        assert_eq!(peers.len(), 1, "{peers:?}");
        assert_eq!(peers[0].address, ip("127.0.0.1"));
        assert_eq!(peers[0].role, PeerRole::RouteReflector);
        assert!(peers[0].is_established(), "{peers:?}");
        assert!(
            wait_routes(a, 20, has_others(i)).await,
            "node {i}: {:?}",
            a.routes()
        );
        // The other client's block arrives through the reflector but points at its owner
        // (once every restarted speaker ended its selection deferral, RFC 4724 §4.1).
        let other = if i == 1 { 2 } else { 1 };
        let reflected = |routes: &[LearnedRoute]| {
            routes.iter().any(|r| {
                r.prefix == net(NODES[other].2)
                    && r.from_peer == ip("127.0.0.1")
                    && r.next_hop == Some(ip(NODES[other].1))
            })
        };
        let limit = tortie_bgp_agent::RESTART_DEFERRAL.as_secs() + 10;
        assert!(
            wait_routes(a, limit, reflected).await,
            "node {i}: {:?}",
            a.routes()
        );
    }
    assert!(wait_routes(&agents[0], 10, has_others(0)).await);
    // After the post-restart sweep, nothing learned again is lost.
    tokio::time::sleep(tortie_bgp_agent::SWEEP_QUIET + Duration::from_millis(1500)).await;
    for (i, a) in agents.iter_mut().enumerate() {
        assert!(has_others(i)(&a.routes()), "node {i}: {:?}", a.routes());
        // No route was removed on the way: the restarts were graceful on our side too.
        let changes = a.take_changes();
        assert!(
            changes.iter().all(|c| matches!(c, RouteChange::Add(_))),
            "node {i}: {changes:?}"
        );
    }
    for a in agents {
        a.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_of_a_deleted_node_are_swept_after_the_restart() {
    let port = free_port();
    let resources = cluster(port, false);
    let mut agents = start_all(&resources);
    for (i, a) in agents.iter().enumerate() {
        assert!(
            wait_routes(a, 20, has_others(i)).await,
            "node {i}: {:?}",
            a.routes()
        );
    }
    agents[0].take_changes();
    // Node 3 disappears from node 1's view: node 1 removes that one peer (quietly, keeping
    // its routes for REMOVED_PEER_HOLD, as other nodes drop the peering at the same time).
    // Node 3 keeps running and never withdraws, so only the end of the hold removes them.
    let without_n3: Vec<Resource> = resources
        .iter()
        .filter(|r| !(matches!(r, Resource::Node(_)) && r.name() == "n3"))
        .cloned()
        .collect();
    agents[0].update(&input(0, &without_n3, true)).unwrap();
    assert_eq!(agents[0].plan().peers.len(), 1);
    let n3_block = net(NODES[2].2);
    let limit = tortie_bgp_agent::REMOVED_PEER_HOLD.as_secs() + 5;
    assert!(
        wait_routes(&agents[0], limit, |r| r.len() == 1
            && r[0].prefix == net(NODES[1].2))
        .await,
        "{:?}",
        agents[0].routes()
    );
    assert_eq!(
        agents[0].take_changes(),
        vec![RouteChange::Remove(n3_block)]
    );
    let peers = agents[0].peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].address, ip(NODES[1].1));
    // The others still see node 3's block.
    assert!(agents[1].routes().iter().any(|r| r.prefix == n3_block));
    for a in agents {
        a.shutdown().await;
    }
}

/// Two nodes meshed; a third joins: each of the first two adds one session, and the one
/// they already had stays up (same "since", no flap, its route never withdrawn).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_adds_one_session_and_leaves_the_others_alone() {
    let port = free_port();
    let all = cluster(port, false);
    let two: Vec<Resource> = all
        .iter()
        .filter(|r| !(matches!(r, Resource::Node(_)) && r.name() == "n3"))
        .cloned()
        .collect();
    let rt = tokio::runtime::Handle::current();
    let mut secrets: BTreeMap<(String, String), String> = BTreeMap::new();
    secrets.insert(("bgp".into(), "mesh".into()), "m3sh-key".into());
    let secrets: Arc<dyn SecretSource> = Arc::new(secrets);
    let mut agents: Vec<BgpAgent> = (0..2)
        .map(|i| BgpAgent::start_with_secrets(&rt, &input(i, &two, true), secrets.clone()).unwrap())
        .collect();
    for a in &agents {
        let peers = wait_peers(a, 20, |p| p.len() == 1 && p[0].is_established()).await;
        assert!(peers[0].is_established(), "{peers:?}");
    }
    let before: Vec<PeerStatus> = agents.iter().map(|a| a.peers()[0].clone()).collect();
    for a in agents.iter_mut() {
        a.take_changes();
    }
    // "since" has a one-second resolution: a reset now would show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    agents.push(BgpAgent::start_with_secrets(&rt, &input(2, &all, true), secrets.clone()).unwrap());
    for (i, a) in agents.iter_mut().enumerate().take(2) {
        a.update(&input(i, &all, true)).unwrap();
    }
    for (i, a) in agents.iter().enumerate() {
        assert!(
            wait_routes(a, 20, has_others(i)).await,
            "node {i}: {:?}",
            a.routes()
        );
        let peers = wait_peers(a, 10, |p| {
            p.len() == 2 && p.iter().all(PeerStatus::is_established)
        })
        .await;
        assert!(peers.iter().all(PeerStatus::is_established), "{peers:?}");
    }
    for (i, a) in agents.iter_mut().enumerate().take(2) {
        let old = &before[i];
        let now = a.peers_now().await.unwrap();
        let same = now.iter().find(|p| p.address == old.address).unwrap();
        assert_eq!(same.since_unix, old.since_unix, "node {i}: {same:?}");
        assert_eq!(same.flaps, 0);
        assert!(same.is_established());
        // Only the new node's block arrived; nothing was removed.
        let changes = a.take_changes();
        assert!(
            changes
                .iter()
                .all(|c| matches!(c, RouteChange::Add(r) if r.prefix == net(NODES[2].2))),
            "node {i}: {changes:?}"
        );
    }
    for a in agents {
        a.shutdown().await;
    }
}

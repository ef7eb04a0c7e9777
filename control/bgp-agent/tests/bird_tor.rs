//! Interop: Calico's export filter and the per-peer knobs against BIRD 2 ToRs, on loopback.
//!
//! Nodes n1 (127.0.0.1) and n2 (127.0.0.2) run agents and share the mesh. BIRD "tor1"
//! (127.0.0.4, AS 65010, GTSM on) peers with n1 only (`ttlSecurity: 1`) and sends one prefix
//! outside the IP pool and one inside it; BIRD "tor2" (127.0.0.5, AS 65011) peers with n1
//! only, expecting AS 64999 (`localASNumber: 64999`, `nextHopMode: Keep`). Checked:
//! - n1 learns both ToR prefixes; neither reaches n2 (mesh) nor tor2 (another eBGP peer):
//!   routes learned over eBGP are not re-advertised (Calico's `calico_export_to_bgp_peers`);
//! - tor2 gets n1's and n2's blocks (pool routes), with AS path 64999 and, for n2's block,
//!   next hop n2 (Keep);
//! - the BGPFilter named by tor1's BGPPeer (`importV4` reject 198.19.9.0/24) keeps that
//!   third tor1 prefix out of n1;
//! - the GTSM session is Established (with BIRD's `ttl security on`, a session whose
//!   segments do not arrive with TTL 255 never comes up);
//! - a third ToR added for n1 gets its session while the others stay up, untouched on both
//!   ends (BIRD's "since" and ours unchanged).
//!
//! BIRD runs without a kernel protocol (the host's routes are untouched). Needs root and
//! Debian's `bird2`; prints SKIPPED otherwise.

use std::net::IpAddr;
mod common;

use common::{Bird, runnable, wait};
use std::time::Duration;
use tortie_bgp_agent::{AgentInput, BgpAgent, PeerStatus};
use tortie_model::parse_documents;

const TIMERS: &str = "hold time 9; keepalive time 3; connect delay time 1; connect retry time 1; error wait time 1,5;";

fn tor_conf(
    me: &str,
    asn: u32,
    port: u16,
    neighbor_as: u32,
    extra: &str,
    statics: &[&str],
) -> String {
    let routes: String = statics
        .iter()
        .map(|r| format!("route {r} blackhole; "))
        .collect();
    format!(
        "router id {me};\nprotocol device {{ scan time 10; }}\n\
         protocol static s4 {{ ipv4; {routes}}}\n\
         protocol bgp Node_n1 {{\n  local {me} port {port} as {asn};\n  neighbor 127.0.0.1 port {port} as {neighbor_as};\n  strict bind on;\n  {extra}\n  {TIMERS}\n  debug {{ states, events }};\n  ipv4 {{ import all; export where source = RTS_STATIC; }};\n}}\n"
    )
}

#[test]
fn tor_routes_stay_on_the_node_that_learned_them() {
    if !runnable("bird_tor") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut y = String::new();
    for (name, addr) in [("n1", "127.0.0.1"), ("n2", "127.0.0.2")] {
        y += &format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: {name}\nspec:\n  bgp:\n    ipv4Address: {addr}/8\n---\n"
        );
    }
    y += "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool\nspec:\n  cidr: 198.19.0.0/20\n---\n";
    y += &format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  listenPort: {port}\n  bindMode: NodeIP\n---\n"
    );
    y += &format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: tor1\nspec:\n  node: n1\n  peerIP: 127.0.0.4:{port}\n  asNumber: 65010\n  ttlSecurity: 1\n  filters: [from-tor1]\n---\n"
    );
    y += "apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata:\n  name: from-tor1\nspec:\n  importV4:\n  - action: Reject\n    matchOperator: Equal\n    cidr: 198.19.9.0/24\n---\n";
    y += &format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: tor2\nspec:\n  node: n1\n  peerIP: 127.0.0.5:{port}\n  asNumber: 65011\n  localASNumber: 64999\n  nextHopMode: Keep\n---\n"
    );
    let resources = parse_documents(&y, "cluster.yaml").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tor1 = Bird::start(
        "tor1",
        &tor_conf(
            "127.0.0.4",
            65010,
            port,
            64512,
            "multihop 1; ttl security on;",
            &["198.19.200.0/24", "198.19.8.0/24", "198.19.9.0/24"],
        ),
    );
    let tor2 = Bird::start(
        "tor2",
        &tor_conf("127.0.0.5", 65011, port, 64999, "multihop;", &[]),
    );
    let blocks = ["198.19.0.0/26", "198.19.0.64/26"];
    let mut agents: Vec<BgpAgent> = ["n1", "n2"]
        .iter()
        .zip(blocks)
        .map(|(n, b)| {
            let input = AgentInput::new(*n, resources.clone(), vec![b.parse().unwrap()]);
            let a = BgpAgent::start(rt.handle(), &input).unwrap();
            assert!(a.plan().warnings.is_empty(), "{:?}", a.plan().warnings);
            a
        })
        .collect();
    let tor_routes: [ipnet::IpNet; 2] = [
        "198.19.200.0/24".parse().unwrap(),
        "198.19.8.0/24".parse().unwrap(),
    ];
    assert!(
        wait(30, || {
            let r = agents[0].routes();
            tor_routes
                .iter()
                .all(|p| r.iter().any(|l| l.prefix == *p && l.ebgp))
        }),
        "n1 lacks tor1's routes: {:?}\n{:?}\n{}",
        agents[0].routes(),
        agents[0].peers(),
        tor1.log()
    );
    assert!(
        wait(10, || agents[0].peers().len() == 3
            && agents[0].peers().iter().all(PeerStatus::is_established)),
        "{:?}",
        agents[0].peers()
    );
    // tor2 has both blocks: n1's own and n2's (a mesh-learned pool route), as AS 64999.
    for (block, nh) in [(blocks[0], "127.0.0.1"), (blocks[1], "127.0.0.2")] {
        assert!(
            wait(15, || {
                let out = tor2.show(&["show", "route", "for", block, "all"]);
                out.contains("BGP.as_path: 64999") && out.contains(&format!("BGP.next_hop: {nh}"))
            }),
            "tor2 lacks {block} from AS 64999 with next hop {nh}:\n{}\n{}",
            tor2.show(&["show", "route", "all"]),
            tor2.show(&["show", "protocols", "all"])
        );
    }
    // n2 has n1's block over the mesh, so exports to it are flowing; give the ToR routes
    // time to (wrongly) follow, then check they did not.
    let n1_block: ipnet::IpNet = blocks[0].parse().unwrap();
    assert!(wait(10, || agents[1]
        .routes()
        .iter()
        .any(|r| r.prefix == n1_block)));
    std::thread::sleep(Duration::from_secs(2));
    let n2_routes = agents[1].routes();
    for p in &tor_routes {
        assert!(
            !n2_routes.iter().any(|r| r.prefix == *p),
            "n2 received {p} from n1: {n2_routes:?}"
        );
        let out = tor2.show(&["show", "route", "for", &p.to_string()]);
        assert!(
            !out.contains(&p.to_string()),
            "tor2 received {p} from n1:\n{out}"
        );
    }
    // The BGPFilter on tor1's BGPPeer kept 198.19.9.0/24 out of n1.
    let filtered: ipnet::IpNet = "198.19.9.0/24".parse().unwrap();
    assert!(
        !agents[0].routes().iter().any(|r| r.prefix == filtered),
        "{:?}",
        agents[0].routes()
    );
    assert!(
        tor1.show(&["show", "route", "for", "198.19.9.0/24"])
            .contains("198.19.9.0/24"),
        "tor1 does originate it"
    );
    // Every session stayed up (no collision flap with the GTSM session), and the ToR
    // routes are still on n1.
    let peers = agents[0].peers();
    assert!(
        peers.iter().all(|p| p.is_established() && p.flaps == 0),
        "{peers:?}\n{}",
        tor1.log()
    );
    let counts: Vec<(IpAddr, usize)> = peers.iter().map(|p| (p.address, p.advertised)).collect();
    eprintln!("n1 advertised per peer: {counts:?}");
    assert!(
        tor_routes
            .iter()
            .all(|p| agents[0].routes().iter().any(|r| r.prefix == *p))
    );

    // A third ToR is added for n1: one session more, the three it had stay up untouched
    // (same "since" on both ends: BIRD saw no new OPEN, no reset).
    let since = |b: &Bird| {
        b.show(&["show", "protocols", "Node_n1"])
            .lines()
            .find(|l| l.starts_with("Node_n1"))
            .map(|l| l.split_whitespace().nth(4).unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let before = (since(&tor1), since(&tor2), agents[0].peers());
    assert!(!before.0.is_empty() && !before.1.is_empty());
    std::thread::sleep(Duration::from_millis(1200));
    let tor3 = Bird::start(
        "tor3",
        &tor_conf(
            "127.0.0.6",
            65012,
            port,
            64512,
            "multihop;",
            &["198.19.201.0/24"],
        ),
    );
    let mut more = resources.clone();
    more.extend(
        parse_documents(
            &format!(
                "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: tor3\nspec:\n  node: n1\n  peerIP: 127.0.0.6:{port}\n  asNumber: 65012\n"
            ),
            "tor3.yaml",
        )
        .unwrap(),
    );
    agents[0]
        .update(&AgentInput::new(
            "n1",
            more,
            vec![blocks[0].parse().unwrap()],
        ))
        .unwrap();
    let third: ipnet::IpNet = "198.19.201.0/24".parse().unwrap();
    assert!(
        wait(20, || agents[0].routes().iter().any(|r| r.prefix == third)),
        "n1 lacks tor3's route: {:?}\n{}",
        agents[0].peers(),
        tor3.log()
    );
    assert_eq!((since(&tor1), since(&tor2)), (before.0, before.1));
    let after = agents[0].peers();
    assert_eq!(after.len(), 4, "{after:?}");
    for old in &before.2 {
        let now = after.iter().find(|p| p.address == old.address).unwrap();
        assert!(now.is_established() && now.flaps == 0, "{now:?}");
        assert_eq!(now.since_unix, old.since_unix, "{now:?}");
    }
    rt.block_on(async {
        for a in agents {
            a.shutdown().await;
        }
    });
    drop((tor1, tor2, tor3));
}

//! Interop: two agents and a BIRD 2 node configured like a Calico node share one mesh on
//! loopback (127.0.0.1, .2 and .4, one port; BIRD runs with no kernel protocol, so it never
//! touches the host's routes, and without an IGP it shows our routes as unreachable, which
//! is fine: the attributes are what is checked). Checks Calico's mesh direction (BIRD, whose address sorts
//! last as text, is the only side that connects to it), LOCAL_PREF 2147482623 on our blocks,
//! and BIRD's block as a fastpath route. Needs root and Debian's `bird2`; prints SKIPPED
//! otherwise.

use std::collections::HashMap;
use std::net::IpAddr;
mod common;

use common::{Bird, runnable, wait};
use tortie_abi::{IpipMode, NodeId, RouteTarget};
use tortie_bgp_agent::{AgentInput, BgpAgent, PeerStatus};
use tortie_model::parse_documents;

/// The Calico-shaped BIRD node: 127.0.0.4 in the mesh with n1 and n2, originating one block.
fn start_bird(port: u16) -> Bird {
    let mut conf = String::from(
        "router id 127.0.0.4;\nprotocol device { scan time 10; }\n\
         protocol static blocks4 { ipv4; route 198.19.0.192/26 blackhole; }\n",
    );
    for (i, peer) in ["127.0.0.1", "127.0.0.2"].iter().enumerate() {
        conf += &format!(
            "protocol bgp Mesh_{i} {{\n  local 127.0.0.4 port {port} as 64512;\n  neighbor {peer} port {port} as 64512;\n  strict bind on;\n  multihop;\n  hold time 9; keepalive time 3; connect delay time 1; connect retry time 1; error wait time 1,5;\n  graceful restart on;\n  debug {{ states, events }};\n  ipv4 {{ gateway recursive; import all; export where source = RTS_STATIC; }};\n}}\n"
        );
    }
    Bird::start("bird", &conf)
}

#[test]
fn agents_mesh_with_a_calico_shaped_bird_node() {
    if !runnable("bird_mesh") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut y = String::new();
    for (name, addr) in [
        ("n1", "127.0.0.1"),
        ("n2", "127.0.0.2"),
        ("bird", "127.0.0.4"),
    ] {
        y += &format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: {name}\nspec:\n  bgp:\n    ipv4Address: {addr}/8\n---\n"
        );
    }
    y += "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool\nspec:\n  cidr: 198.19.0.0/20\n  ipipMode: Always\n---\n";
    y += &format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  listenPort: {port}\n  bindMode: NodeIP\n"
    );
    let resources = parse_documents(&y, "cluster.yaml").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let blocks = ["198.19.0.0/26", "198.19.0.64/26"];
    let agents: Vec<BgpAgent> = ["n1", "n2"]
        .iter()
        .zip(blocks)
        .map(|(n, b)| {
            let input = AgentInput::new(*n, resources.clone(), vec![b.parse().unwrap()]);
            BgpAgent::start(rt.handle(), &input).unwrap()
        })
        .collect();
    // Calico's rule: "127.0.0.4" sorts after "127.0.0.1", so the agents wait for BIRD.
    for a in &agents {
        let bird = a.plan().peer("127.0.0.4".parse().unwrap()).unwrap();
        assert!(bird.config.passive);
    }
    let bird = start_bird(port);

    let bird_block: ipnet::IpNet = "198.19.0.192/26".parse().unwrap();
    let nodes: HashMap<IpAddr, NodeId> = [("127.0.0.4".parse().unwrap(), NodeId(4))]
        .into_iter()
        .collect();
    for a in &agents {
        assert!(
            wait(30, || a.routes().iter().any(|r| r.prefix == bird_block)),
            "no route from BIRD: {:?}\n{}",
            a.peers(),
            bird.show(&["show", "protocols", "all"])
        );
        let r = a
            .routes()
            .into_iter()
            .find(|r| r.prefix == bird_block)
            .unwrap();
        assert_eq!(r.next_hop, Some("127.0.0.4".parse().unwrap()));
        let fp = a.plan().fastpath_route(&r, &nodes).unwrap();
        assert_eq!(
            fp.route.target,
            RouteTarget::Node {
                node: NodeId(4),
                encap: Some(IpipMode::Always)
            }
        );
        assert!(
            wait(5, || a.peers().iter().all(PeerStatus::is_established)),
            "{:?}",
            a.peers()
        );
    }
    for (block, via) in [
        ("198.19.0.0/26", "127.0.0.1"),
        ("198.19.0.64/26", "127.0.0.2"),
    ] {
        assert!(
            wait(15, || {
                let out = bird.show(&["show", "route", "for", block, "all"]);
                out.contains(via) && out.contains("BGP.local_pref: 2147482623")
            }),
            "BIRD lacks {block} via {via}:\n{}",
            bird.show(&["show", "route", "all"])
        );
    }
    eprintln!("BIRD's table:\n{}", bird.show(&["show", "route", "all"]));
    // The agents never learn each other's blocks through BIRD (iBGP split horizon), but
    // directly over their own mesh session.
    let n1_block: ipnet::IpNet = blocks[0].parse().unwrap();
    assert!(wait(10, || agents[1]
        .routes()
        .iter()
        .any(|r| r.prefix == n1_block)));
    let r = agents[1]
        .routes()
        .into_iter()
        .find(|r| r.prefix == n1_block)
        .unwrap();
    assert_eq!(r.from_peer, "127.0.0.1".parse::<IpAddr>().unwrap());
    rt.block_on(async {
        for a in agents {
            a.shutdown().await;
        }
    });
    drop(bird);
}

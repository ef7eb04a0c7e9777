//! Interop: two agents and a BIRD 2 node configured like a Calico node share one mesh on
//! loopback (127.0.0.1, .2 and .4, one port; BIRD runs with no kernel protocol, so it never
//! touches the host's routes, and without an IGP it shows our routes as unreachable, which
//! is fine: the attributes are what is checked). Checks Calico's mesh direction (BIRD, whose address sorts
//! last as text, is the only side that connects to it), LOCAL_PREF 2147482623 on our blocks,
//! and BIRD's block as a fastpath route. Needs root and Debian's `bird2`; prints SKIPPED
//! otherwise.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tortie_abi::{IpipMode, NodeId, RouteTarget};
use tortie_bgp_agent::{AgentInput, BgpAgent, PeerStatus};
use tortie_model::parse_documents;

/// Removes the BIRD process and its files even when an assertion fails.
struct Bird {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
}

impl Bird {
    fn start(port: u16) -> Bird {
        let dir = std::env::temp_dir().join(format!("tortie-agent-bird-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut conf = format!(
            "log \"{}/bird.log\" all;\nrouter id 127.0.0.4;\nprotocol device {{ scan time 10; }}\n\
             protocol static blocks4 {{ ipv4; route 198.19.0.192/26 blackhole; }}\n",
            dir.display()
        );
        for (i, peer) in ["127.0.0.1", "127.0.0.2"].iter().enumerate() {
            conf += &format!(
                "protocol bgp Mesh_{i} {{\n  local 127.0.0.4 port {port} as 64512;\n  neighbor {peer} port {port} as 64512;\n  strict bind on;\n  multihop;\n  hold time 9; keepalive time 3; connect delay time 1; connect retry time 1; error wait time 1,5;\n  graceful restart on;\n  debug {{ states, events }};\n  ipv4 {{ gateway recursive; import all; export where source = RTS_STATIC; }};\n}}\n"
            );
        }
        let path = dir.join("bird.conf");
        std::fs::write(&path, conf).unwrap();
        let sock = dir.join("bird.ctl");
        let child = Command::new("bird")
            .arg("-f")
            .arg("-c")
            .arg(&path)
            .arg("-s")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting bird (Debian package bird2)");
        Bird { child, dir, sock }
    }

    fn show(&self, args: &[&str]) -> String {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("birdc (Debian package bird2)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn runnable() -> bool {
    // Root check from /proc (effective uid), without a libc call.
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("SKIPPED bird_mesh: needs root");
        return false;
    }
    for bin in ["bird", "birdc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{bin} is missing: install the Debian package bird2");
    }
    true
}

fn wait(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

#[test]
fn agents_mesh_with_a_calico_shaped_bird_node() {
    if !runnable() {
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
    let bird = Bird::start(port);

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

//! Two tortie-control daemons in two node namespaces on one segment, meshed over BGP, with
//! BIRD 2 (no kernel protocol) in the router namespace as a global BGPPeer that originates a
//! fabric prefix; the same mesh with `--routes-from-ipam=false`, where the route to the
//! other node's block exists only because BGP learned it; and a second router on the
//! segment (not the default gateway) whose prefix is routed to it directly.
//!
//! Needs root (network namespaces) and BIRD 2 (Debian `bird2`). Every namespace, daemon and
//! file is removed at the end, also on failure; BIRD is stopped by its PID.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Daemon, Lab, Netns, Reader, Store, wait_for};
use tortie_abi as abi;

const T: Duration = Duration::from_secs(25);
const FABRIC: &str = "198.18.200.0/24";
/// Originated by BIRD with n2 as third-party next hop (RFC 4271 §5.1.3: same subnet).
const VIA_N2: &str = "198.18.201.0/24";
/// Originated by a second router on the segment (not the default gateway), next hop itself.
const VIA_TOR2: &str = "198.18.202.0/24";

/// BIRD in a namespace, stopped (SIGTERM, then SIGKILL) on drop.
struct Bird {
    child: Child,
}

impl Bird {
    fn start(ns: &Netns, dir: &Path) -> Bird {
        Bird::run(
            ns,
            dir,
            &format!(
                r#"router id 198.18.1.1;
protocol device {{ }}
protocol static {{ ipv4; route {FABRIC} blackhole; route {VIA_N2} via 198.18.1.12; }}
template bgp node {{
  local 198.18.1.1 as 64513;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 {{ import all; export all; }};
}}
protocol bgp n1 from node {{ neighbor 198.18.1.11 as 64512; }}
protocol bgp n2 from node {{ neighbor 198.18.1.12 as 64512; }}
"#
            ),
        )
    }

    /// BIRD with `conf` (a `log` line to `dir/bird.log` is prepended), its control socket
    /// in `dir`.
    fn run(ns: &Netns, dir: &Path, conf: &str) -> Bird {
        let path = dir.join("bird.conf");
        std::fs::write(
            &path,
            format!("log \"{}\" all;\n{conf}", dir.join("bird.log").display()),
        )
        .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "bird", "-f", "-c"])
            .arg(&path)
            .arg("-s")
            .arg(dir.join("bird.ctl"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bird (Debian package bird2)");
        Bird { child }
    }

    /// Stops BIRD by PID (SIGTERM: it closes its sessions with Cease).
    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let end = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < end {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.stop();
    }
}

fn status(store: &Store, node: &str) -> serde_json::Value {
    store
        .get_json(&format!("/tortie/status/v1/nodes/{node}"))
        .unwrap_or_default()
}

fn peer_up(doc: &serde_json::Value, address: &str) -> bool {
    doc["bgp"]["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["address"] == address && p["state"] == "up" && p["info"] == "Established")
}

fn published_route(doc: &serde_json::Value, prefix: &str) -> Option<serde_json::Value> {
    doc["routes"]
        .as_array()?
        .iter()
        .find(|r| r["prefix"] == prefix)
        .cloned()
}

/// `tortiectl`, built beside this crate's binary by `cargo build -p tortie-cli`.
fn tortiectl() -> Option<PathBuf> {
    let path = Path::new(common::binary()).parent()?.join("tortiectl");
    path.exists().then_some(path)
}

#[test]
fn mesh_establishes_and_fabric_routes_reach_the_tables() {
    let lab = Lab::new();
    let store = Store::new();
    store.pool("pool4", "198.19.0.0/20", "CrossSubnet", true);
    store.affinity("n1", "198.19.0.0/26");
    store.affinity("n2", "198.19.0.64/26");
    store.put_resource(
        "bgppeers",
        None,
        "tor",
        serde_json::json!({"apiVersion":"projectcalico.org/v3","kind":"BGPPeer",
            "metadata":{"name":"tor"},"spec":{"peerIP":"198.18.1.1","asNumber":64513}}),
    );
    let mut bird = Bird::start(&lab.router, store.dir.path());
    let ring1 = store.dir.path().join("ring1");
    let ring2 = store.dir.path().join("ring2");
    let _d1 = Daemon::start_as(
        "n1",
        &lab.node,
        &store,
        &ring1,
        &["--ip", "198.18.1.11/24", "--uplink", "up0"],
    );
    let _d2 = Daemon::start_as(
        "n2",
        &lab.node2,
        &store,
        &ring2,
        &["--ip", "198.18.1.12/24", "--uplink", "q0"],
    );
    let mut reader1 = Reader::open(&ring1);
    let mut reader2 = Reader::open(&ring2);

    // Both mesh sessions and both sessions with BIRD reach Established, as published.
    let doc1 = wait_for("n1's sessions Established", T, || {
        let d = status(&store, "n1");
        (peer_up(&d, "198.18.1.12") && peer_up(&d, "198.18.1.1")).then_some(d)
    });
    wait_for("n2's sessions Established", T, || {
        let d = status(&store, "n2");
        (peer_up(&d, "198.18.1.11") && peer_up(&d, "198.18.1.1")).then_some(d)
    });
    let bgp = &doc1["bgp"];
    assert_eq!(bgp["enabled"], true);
    assert_eq!(bgp["as_number"], 64512);
    assert_eq!(bgp["router_id"], "198.18.1.11");
    let mesh = bgp["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["address"] == "198.18.1.12")
        .unwrap();
    assert_eq!(mesh["type"], "node-to-node mesh");
    assert_eq!(mesh["node"], "n2");
    let tor = bgp["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["address"] == "198.18.1.1")
        .unwrap();
    assert_eq!(tor["type"], "global");
    assert_eq!(tor["remote_as"], 64513);

    // BIRD's prefix: in both nodes' ring tables towards the uplink, published with origin
    // bgp. The other node's block stays the datastore's route.
    for reader in [&mut reader1, &mut reader2] {
        reader.until("the fabric route", T, |t| {
            t.routes.iter().any(|r| {
                r.prefix.addr.to_string() == "198.18.200.0"
                    && r.prefix.len == 24
                    && r.target == abi::RouteTarget::Uplink
            })
        });
    }
    let doc1 = wait_for("n1 publishes the fabric route", T, || {
        let d = status(&store, "n1");
        published_route(&d, FABRIC).map(|_| d)
    });
    assert_eq!(published_route(&doc1, FABRIC).unwrap()["origin"], "bgp");
    assert_eq!(
        published_route(&doc1, "198.19.0.64/26").unwrap()["origin"],
        "ipam-block"
    );

    // A learned route whose next hop is another node goes to that node (outside every pool:
    // no encapsulation); the node itself keeps no route to its own address.
    let n2_id = node_in_tables(&mut reader1, "198.18.1.12");
    reader1.until("the route via n2", T, |t| {
        t.routes.iter().any(|r| {
            r.prefix.addr.to_string() == "198.18.201.0"
                && r.target
                    == abi::RouteTarget::Node {
                        node: n2_id,
                        encap: Some(abi::IpipMode::Never),
                    }
        })
    });
    // The status is published at most once a second, so an earlier version of the route
    // (blackholed while n2's MAC was still unresolved) may be the first one seen: wait for
    // the one the ring already carries.
    let doc1 = wait_for("n1 publishes the route via n2", T, || {
        let d = status(&store, "n1");
        let via_node = published_route(&d, VIA_N2).is_some_and(|r| r["target"] == "node");
        via_node.then_some(d)
    });
    let via = published_route(&doc1, VIA_N2).unwrap();
    assert_eq!(
        (&via["target"], &via["node"]),
        (&"node".into(), &"n2".into())
    );
    assert_eq!(via["origin"], "bgp");
    reader2.poll();
    assert!(
        reader2.route(VIA_N2).is_none(),
        "n2 routes its own next hop"
    );

    // `tortiectl node status` lists the sessions like calicoctl.
    if let Some(ctl) = tortiectl() {
        let out = Command::new(ctl)
            .args(["node", "status", "--node", "n1"])
            .env("DATASTORE_TYPE", "sqlite")
            .env("SQLITE_PATH", &store.path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        eprintln!("{text}");
        assert!(text.contains("PEER ADDRESS"), "{text}");
        let row = text.lines().find(|l| l.contains("198.18.1.12 ")).unwrap();
        assert!(
            row.contains("node-to-node mesh") && row.contains("| up "),
            "{text}"
        );
        let row = text.lines().find(|l| l.contains("198.18.1.1 ")).unwrap();
        assert!(
            row.contains("global") && row.contains("Established"),
            "{text}"
        );
    } else {
        eprintln!("tortiectl not built (cargo build -p tortie-cli): its output is not checked");
    }

    // BIRD stops (Cease): the route leaves the tables as a delta.
    let before = reader1.log.len();
    bird.stop();
    reader1.until("the fabric route withdrawn", T, |t| {
        !t.routes
            .iter()
            .any(|r| r.prefix.addr.to_string() == "198.18.200.0")
    });
    assert!(
        reader1.log[before..]
            .iter()
            .any(|m| m.kind == tortie_ring::MessageKind::DELTA),
        "the withdrawal was not a delta"
    );
}

/// With `--routes-from-ipam=false` the other node's block is routed only as BGP learns it
/// (Calico with BIRD), once the speaker has converged: it is a route to that node with the
/// pool's encapsulation and origin `bgp`, and goes when that node's speaker stops (Cease),
/// although the datastore's affinity is still there. The node's own block stays a blackhole.
#[test]
fn blocks_are_routed_from_bgp_alone_without_ipam_routes() {
    let lab = Lab::new();
    let store = Store::new();
    store.pool("pool4", "198.19.0.0/20", "CrossSubnet", true);
    store.affinity("n1", "198.19.0.0/26");
    store.affinity("n2", "198.19.0.64/26");
    let ring1 = store.dir.path().join("ring1");
    let ring2 = store.dir.path().join("ring2");
    let _d1 = Daemon::start_as(
        "n1",
        &lab.node,
        &store,
        &ring1,
        &[
            "--ip",
            "198.18.1.11/24",
            "--uplink",
            "up0",
            "--routes-from-ipam=false",
        ],
    );
    let mut d2 = Daemon::start_as(
        "n2",
        &lab.node2,
        &store,
        &ring2,
        &[
            "--ip",
            "198.18.1.12/24",
            "--uplink",
            "q0",
            "--routes-from-ipam=false",
        ],
    );
    let mut reader1 = Reader::open(&ring1);
    wait_for("the mesh session Established", T, || {
        peer_up(&status(&store, "n1"), "198.18.1.12").then_some(())
    });
    let n2_id = node_in_tables(&mut reader1, "198.18.1.12");
    reader1.until("n2's block, learned over BGP", T, |t| {
        t.routes.iter().any(|r| {
            r.prefix.addr.to_string() == "198.19.0.64"
                && r.prefix.len == 26
                && r.target
                    == abi::RouteTarget::Node {
                        node: n2_id,
                        encap: Some(abi::IpipMode::CrossSubnet),
                    }
        })
    });
    // Until the speaker has converged the affinity stands in (a restarted daemon never
    // sends a table without the other nodes' blocks); then BGP alone routes the block.
    let doc1 = wait_for("n1 publishes n2's block learned over BGP", T, || {
        let d = status(&store, "n1");
        published_route(&d, "198.19.0.64/26")
            .is_some_and(|r| r["target"] == "node" && r["origin"] == "bgp")
            .then_some(d)
    });
    assert_eq!(
        published_route(&doc1, "198.19.0.64/26").unwrap()["node"],
        "n2"
    );
    assert_eq!(
        reader1.route("198.19.0.0/26"),
        Some(abi::RouteTarget::Blackhole),
        "n1's own block"
    );
    // n2's speaker goes (SIGTERM: Cease): its block leaves n1's table, affinity or not.
    d2.signal("-TERM");
    assert!(
        d2.wait_exit(Duration::from_secs(10)).is_some(),
        "n2 did not stop"
    );
    reader1.until("n2's block withdrawn", T, |t| {
        !t.routes
            .iter()
            .any(|r| r.prefix.addr.to_string() == "198.19.0.64" && r.prefix.len == 26)
    });
}

/// A BGP peer on the uplink's segment that is not the default gateway (a second ToR at
/// 198.18.1.2 on the router's bridge) advertises a prefix: n1 routes it to that router
/// directly, through a node entry with the router's address and MAC that accepts no
/// IP-in-IP, not to the gateway; the status and `tortiectl node routes` name the router;
/// when the router withdraws, the route and its entry go.
#[test]
fn fabric_routes_go_to_their_own_next_hop() {
    let lab = Lab::new();
    let tor2 = Netns::new("t");
    lab.router.ip(&[
        "link", "add", "r2", "type", "veth", "peer", "name", "t0", "netns", &tor2.name,
    ]);
    lab.router.ip(&["link", "set", "r2", "master", "br0"]);
    lab.router.ip(&["link", "set", "r2", "up"]);
    tor2.ip(&["addr", "add", "198.18.1.2/24", "dev", "t0"]);
    tor2.ip(&["link", "set", "t0", "up"]);
    let tor2_mac = tor2.mac("t0");
    assert_ne!(
        tor2_mac,
        lab.router.mac("br0"),
        "the router is not the gateway"
    );

    let store = Store::new();
    store.pool("pool4", "198.19.0.0/20", "CrossSubnet", true);
    store.affinity("n1", "198.19.0.0/26");
    store.put_resource(
        "bgppeers",
        None,
        "tor2",
        serde_json::json!({"apiVersion":"projectcalico.org/v3","kind":"BGPPeer",
            "metadata":{"name":"tor2"},"spec":{"peerIP":"198.18.1.2","asNumber":64514}}),
    );
    let bird_dir = store.dir.path().join("tor2");
    std::fs::create_dir(&bird_dir).unwrap();
    let mut bird = Bird::run(
        &tor2,
        &bird_dir,
        &format!(
            r#"router id 198.18.1.2;
protocol device {{ }}
protocol static {{ ipv4; route {VIA_TOR2} blackhole; }}
protocol bgp n1 {{
  local 198.18.1.2 as 64514;
  neighbor 198.18.1.11 as 64512;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 {{ import all; export all; }};
}}
"#
        ),
    );
    let ring = store.dir.path().join("ring1");
    let _d1 = Daemon::start_as(
        "n1",
        &lab.node,
        &store,
        &ring,
        &["--ip", "198.18.1.11/24", "--uplink", "up0"],
    );
    let mut reader = Reader::open(&ring);
    wait_for("the session with the second router Established", T, || {
        peer_up(&status(&store, "n1"), "198.18.1.2").then_some(())
    });

    let is_tor2_prefix =
        |r: &abi::Route| r.prefix.addr.to_string() == "198.18.202.0" && r.prefix.len == 24;
    reader.until("the router's prefix routed to a node entry", T, |t| {
        t.routes
            .iter()
            .any(|r| is_tor2_prefix(r) && matches!(r.target, abi::RouteTarget::Node { .. }))
    });
    let tables = &reader.state.tables;
    let route = tables.routes.iter().find(|r| is_tor2_prefix(r)).unwrap();
    let abi::RouteTarget::Node { node, encap } = route.target else {
        panic!("not a node route: {route:?}");
    };
    assert_eq!(encap, Some(abi::IpipMode::Never), "native to a router");
    let entry = tables.nodes.iter().find(|n| n.id == node).unwrap();
    assert_eq!(entry.addr.to_string(), "198.18.1.2");
    assert_eq!(
        entry.mac, tor2_mac,
        "the router's own MAC, not the gateway's"
    );
    assert!(
        entry.tunnel_allowed.is_empty(),
        "no IP-in-IP from a router: {entry:?}"
    );
    assert_eq!(
        reader.route("0.0.0.0/0"),
        Some(abi::RouteTarget::Uplink),
        "the default route still goes to the gateway"
    );

    let doc = wait_for("n1 publishes the route via the router", T, || {
        published_route(&status(&store, "n1"), VIA_TOR2).filter(|r| r["target"] == "router")
    });
    assert_eq!(doc["next_hop"], "198.18.1.2");
    assert_eq!(doc["interface"], "up0");
    assert_eq!(doc["origin"], "bgp");
    assert!(doc["node"].is_null());

    if let Some(ctl) = tortiectl() {
        let out = Command::new(ctl)
            .args(["node", "routes", "--node", "n1"])
            .env("DATASTORE_TYPE", "sqlite")
            .env("SQLITE_PATH", &store.path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let row = text.lines().find(|l| l.contains(VIA_TOR2)).unwrap();
        assert!(row.contains("router 198.18.1.2"), "{text}");
    } else {
        eprintln!("tortiectl not built (cargo build -p tortie-cli): its output is not checked");
    }

    // The router stops (Cease): its prefix and its node entry leave the tables.
    bird.stop();
    reader.until("the router's prefix and entry withdrawn", T, |t| {
        !t.routes.iter().any(is_tor2_prefix)
            && !t.nodes.iter().any(|n| n.addr.to_string() == "198.18.1.2")
    });
}

/// Waits until the node at `addr` (its MAC resolved) is in the reader's tables; its id there.
fn node_in_tables(reader: &mut Reader, addr: &str) -> abi::NodeId {
    reader.until(
        &format!("{addr} (its MAC resolved) in the tables"),
        T,
        |t| t.nodes.iter().any(|n| n.addr.to_string() == addr),
    );
    reader
        .state
        .tables
        .nodes
        .iter()
        .find(|n| n.addr.to_string() == addr)
        .map(|n| n.id)
        .expect("the node in the tables")
}

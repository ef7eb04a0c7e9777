//! tortie-control run as a process inside a network namespace against a real SQLite
//! datastore, read back through the ring as tortie-fastpath reads it.
//!
//! Needs root (network namespaces). Every namespace, daemon and file is removed at the end,
//! also on failure.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Lab, Reader, Store, wait_for};
use tortie_abi as abi;
use tortie_ring::MessageKind;

const T: Duration = Duration::from_secs(20);

fn node_v4(store: &Store, node: &str) -> Option<String> {
    let key = format!("/calico/resources/v3/projectcalico.org/nodes/{node}");
    store
        .get_json(&key)
        .and_then(|v| v["spec"]["bgp"]["ipv4Address"].as_str().map(str::to_string))
}

#[test]
fn registers_the_node_with_each_autodetection_method() {
    let lab = Lab::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--ip-autodetection-method", "first-found"],
            "198.18.1.11/24",
        ),
        (
            &["--ip-autodetection-method", "interface=ext.*"],
            "198.18.4.11/24",
        ),
        (
            &["--ip-autodetection-method", "can-reach=198.18.4.50"],
            "198.18.4.11/24",
        ),
        (
            &["--ip-autodetection-method", "can-reach=198.18.1.1"],
            "198.18.1.11/24",
        ),
        (&["--ip", "198.18.1.11/24"], "198.18.1.11/24"),
    ];
    for (args, want) in cases {
        let store = Store::new();
        let ring = store.dir.path().join("ring");
        let mut daemon = Daemon::start(&lab.node, &store, &ring, args);
        let got = wait_for("the Node resource", T, || {
            node_v4(&store, "n1").filter(|v| v == want)
        });
        assert_eq!(&got, want, "{args:?}");
        daemon.signal("-TERM");
        let status = daemon.wait_exit(T);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{}",
            daemon.log_text()
        );
        assert!(
            !lab.node.has_link("tortie-host"),
            "host veth pair left behind"
        );
    }
}

fn encap_of(r: Option<abi::RouteTarget>) -> Option<(u32, Option<abi::IpipMode>)> {
    match r {
        Some(abi::RouteTarget::Node { node, encap }) => Some((node.0, encap)),
        _ => None,
    }
}

#[test]
fn tables_routes_policy_deltas_and_restart() {
    let lab = Lab::new();
    lab.workload_link("tor0123456789a", "wl0");
    let store = Store::new();
    store.pool("pool4", "198.19.0.0/20", "CrossSubnet", true);
    store.node("n2", "198.18.1.12/24");
    store.node("n3", "198.18.2.13/24");
    store.affinity("n1", "198.19.0.0/26");
    store.affinity("n2", "198.19.0.64/26");
    store.affinity("n3", "198.19.0.128/26");
    store.workload(
        "ns1",
        "n1-cni-a-eth0",
        "n1",
        "tor0123456789a",
        "198.19.0.4/32",
        r#"{"app":"a"}"#,
    );
    // An endpoint on another node: in IP sets, never in this node's tables.
    store.workload(
        "ns1",
        "n2-cni-b-eth0",
        "n2",
        "tor00000000000",
        "198.19.0.68/32",
        r#"{"app":"b"}"#,
    );
    let ring = store.dir.path().join("ring");
    let mut daemon = Daemon::start(&lab.node, &store, &ring, &["--uplink", "up0"]);
    let mut reader = Reader::open(&ring);

    // The first snapshot, then the node MACs as they resolve.
    let up0 = lab.node.index("up0");
    let host_if = wait_for("tortie-host", T, || {
        lab.node
            .has_link("tortie-host")
            .then(|| lab.node.index("tortie-host"))
    });
    let wl_if = lab.node.index("tor0123456789a");
    let gw_mac = lab.router.mac("br0");
    let n2_mac = lab.node2.mac("q0");
    reader.until("nodes n2 and n3 with MACs", T, |t| t.nodes.len() == 2);
    assert_eq!(reader.log[0].kind, MessageKind::SNAPSHOT);
    let first_generation = reader.log[0].generation;
    let t = reader.state.tables.clone();
    assert_eq!(t.settings.uplink_if, up0);
    assert_eq!(t.settings.uplink_mac, lab.node.mac("up0"));
    assert_eq!(t.settings.host_if, host_if);
    assert_eq!(t.settings.gateway_mac, gw_mac);
    assert_eq!(t.settings.node_v4.unwrap().addr.to_string(), "198.18.1.11");
    assert_eq!(t.settings.node_v4.unwrap().subnet_len, 24);
    assert_eq!(t.settings.mtu, 1500);
    assert_eq!(t.settings.default_endpoint_to_host, abi::HostAction::Drop);
    assert_eq!(t.settings.ipip_mode, abi::IpipMode::CrossSubnet);
    assert_eq!((t.nat.port_lo, t.nat.port_hi), (61000, 65535));
    assert_eq!(t.nat.snat_v4.unwrap().to_string(), "198.18.1.11");
    assert_eq!(t.nat.snat_pools.len(), 1);
    // The one local endpoint, on its interface, with its programs.
    assert_eq!(t.endpoints.len(), 1, "{:?}", t.endpoints);
    let ep = &t.endpoints[0];
    assert_eq!(ep.if_index, wl_if);
    assert_eq!(ep.kind, abi::EndpointKind::Workload);
    assert_eq!(ep.mac, [2, 0, 0, 0, 0, 4]);
    let (ing, eg) = (ep.ingress.unwrap(), ep.egress.unwrap());
    assert!(t.programs.iter().any(|p| p.id == ing) && t.programs.iter().any(|p| p.id == eg));
    assert_eq!(t.programs.len(), 2, "only the local endpoint's programs");
    let _ = (ing, eg);
    // Routes.
    assert_eq!(
        reader.route("198.19.0.4/32"),
        Some(abi::RouteTarget::Local(ep.id))
    );
    assert_eq!(
        reader.route("198.19.0.0/26"),
        Some(abi::RouteTarget::Blackhole)
    );
    assert_eq!(reader.route("198.18.1.11/32"), Some(abi::RouteTarget::Host));
    // The node's own traffic to the workload goes through the fastpath: the kernel's route
    // to it leads into the host pair, whose gateway is the fastpath end's MAC.
    host_route_through_the_pair(&lab);
    assert_eq!(reader.route("0.0.0.0/0"), Some(abi::RouteTarget::Uplink));
    assert_eq!(reader.route("::/0"), Some(abi::RouteTarget::Uplink));
    let (n2_id, n2_encap) = encap_of(reader.route("198.19.0.64/26")).unwrap();
    let (n3_id, n3_encap) = encap_of(reader.route("198.19.0.128/26")).unwrap();
    assert_eq!(n2_encap, Some(abi::IpipMode::CrossSubnet));
    assert_eq!(n3_encap, Some(abi::IpipMode::CrossSubnet));
    let node = |id: u32| t.nodes.iter().find(|n| n.id.0 == id).unwrap().clone();
    // Same subnet: its own MAC; another subnet: the gateway's.
    assert_eq!(node(n2_id).mac, n2_mac);
    assert_eq!(node(n2_id).addr.to_string(), "198.18.1.12");
    assert_eq!(node(n2_id).tunnel_allowed, vec![node(n2_id).addr]);
    assert_eq!(node(n3_id).mac, gw_mac);

    // A policy applied with the store arrives as a delta, quickly.
    let ds = &store.ds;
    let typed = tortie_store::Store::new(ds);
    let mut latencies = Vec::new();
    for i in 0..20 {
        let text = format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: p{i}\nspec:\n  selector: app == 'a'\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [{}]\n",
            1000 + i
        );
        let resources = tortie_model::parse_documents(&text, "p.yaml").unwrap();
        reader.poll();
        let before = reader.log.len();
        let t0 = Instant::now();
        typed.apply_all(resources).unwrap();
        // Endpoints with equal plans share programs, so a new plan means new program ids:
        // follow the endpoint's current ingress program.
        let endpoint = ep.id;
        reader.until("the policy in the ingress program", T, |t| {
            let program = t
                .endpoints
                .iter()
                .find(|e| e.id == endpoint)
                .and_then(|e| e.ingress);
            t.programs
                .iter()
                .find(|p| Some(p.id) == program)
                .is_some_and(|p| p.tiers.iter().any(|tier| tier.policies.len() == i + 1))
        });
        let arrived = &reader.log[before..];
        assert!(
            arrived.iter().all(|m| m.kind == MessageKind::DELTA),
            "a policy change must be a delta"
        );
        latencies.push(arrived.last().unwrap().at.duration_since(t0));
    }
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    println!(
        "store apply -> delta on the ring (incl. SQLite's cross-process poll): p50 {p50:?}, max {max:?}"
    );
    // SQLite's cross-process watch polls every 20 ms; the rest is the daemon's.
    assert!(
        max < Duration::from_millis(500),
        "policy delta took {max:?}"
    );

    // The published status names the routes and the generation.
    let key = "/tortie/status/v1/nodes/n1";
    let status = wait_for("the node status", T, || {
        store
            .get_json(key)
            .filter(|s| s["control"]["generation_sent"].as_u64() == Some(reader.state.generation.0))
    });
    assert_eq!(status["control"]["ready"], true);
    assert_eq!(status["control"]["node_v4"], "198.18.1.11/24");
    assert_eq!(status["fastpath"]["state"], "missing");
    let routes = status["routes"].as_array().unwrap();
    let blk = routes
        .iter()
        .find(|r| r["prefix"] == "198.19.0.64/26")
        .unwrap();
    assert_eq!(blk["target"], "node");
    assert_eq!(blk["node"], "n2");
    assert_eq!(blk["next_hop"], "198.18.1.12");
    assert_eq!(blk["encap"], "ipip-cross-subnet");
    assert_eq!(blk["origin"], "ipam-block");
    let local = routes
        .iter()
        .find(|r| r["prefix"] == "198.19.0.4/32")
        .unwrap();
    assert_eq!(local["origin"], "local-workload");
    assert_eq!(local["interface"], "tor0123456789a");
    let lat = &status["control"]["apply_latency"];
    println!("control's own change-to-ring latency: {lat}");
    assert!(lat["count"].as_u64().unwrap() >= 20, "{lat}");
    tortiectl_prints_what_was_published(&store, reader.state.generation.0);

    // Endpoint reported programmed (no fastpath status file: reported once sent).
    wait_for("endpoint status", T, || {
        store
            .get_json("/tortie/status/v1/endpoints/n1/ns1/n1-cni-a-eth0")
            .filter(|v| v["status"] == "up")
    });

    // A new workload whose interface appears later gets in once it exists.
    store.workload(
        "ns1",
        "n1-cni-c-eth0",
        "n1",
        "tor0123456789c",
        "198.19.0.5/32",
        r#"{"app":"a"}"#,
    );
    std::thread::sleep(Duration::from_millis(200));
    reader.poll();
    assert!(reader.route("198.19.0.5/32").is_none());
    lab.workload_link("tor0123456789c", "wl1");
    let wl1_if = lab.node.index("tor0123456789c");
    reader.until("the second endpoint", T, |t| {
        t.endpoints.iter().any(|e| e.if_index == wl1_if)
    });
    let ep2 = reader
        .state
        .tables
        .endpoints
        .iter()
        .find(|e| e.if_index == wl1_if)
        .unwrap()
        .clone();
    assert!(
        reader
            .state
            .tables
            .programs
            .iter()
            .any(|p| Some(p.id) == ep2.ingress)
    );
    assert_eq!(
        reader.route("198.19.0.5/32"),
        Some(abi::RouteTarget::Local(ep2.id))
    );

    // kill -9 and restart: a fresh snapshot with a higher generation.
    let last = reader.state.generation.0;
    daemon.signal("-KILL");
    assert!(daemon.wait_exit(T).is_some(), "killed daemon did not exit");
    let mut daemon2 = Daemon::start(&lab.node, &store, &ring, &["--uplink", "up0"]);
    let before = reader.log.len();
    wait_for("a snapshot after the restart", T, || {
        reader.poll();
        reader.log[before..]
            .iter()
            .find(|m| m.kind == MessageKind::SNAPSHOT)
            .map(|m| m.generation)
    });
    assert!(reader.consumer.take_producer_restarted() || reader.log.len() > before);
    let snap = reader.log[before..]
        .iter()
        .find(|m| m.kind == MessageKind::SNAPSHOT)
        .unwrap()
        .generation;
    assert!(
        snap > last,
        "generation {snap} after restart is not above {last}"
    );
    assert!(snap > first_generation);
    reader.until("the same tables after restart", T, |t| {
        t.endpoints.len() == 2 && t.nodes.len() == 2
    });
    // The restarted daemon re-created the pair and routes through it again; a clean stop
    // puts the on-link route back.
    host_route_through_the_pair(&lab);
    daemon2.signal("-TERM");
    assert_eq!(daemon2.wait_exit(T).and_then(|s| s.code()), Some(0));
    let route = lab.node.ip(&["route", "show", "198.19.0.4/32"]);
    assert!(route.contains("dev tor0123456789a"), "{route}");
}

fn host_route_through_the_pair(lab: &Lab) {
    let route = wait_for("the host-to-workload route", T, || {
        let r = lab.node.ip(&["route", "show", "198.19.0.4/32"]);
        r.contains("via 169.254.1.1 dev tortie-hostk").then_some(r)
    });
    assert!(
        route.contains("proto 252") && route.contains("src 198.18.1.11"),
        "{route}"
    );
    let neigh = lab
        .node
        .ip(&["neigh", "show", "169.254.1.1", "dev", "tortie-hostk"]);
    let mac = lab.node.mac("tortie-host");
    let mac = mac.map(|b| format!("{b:02x}")).join(":");
    assert!(
        neigh.contains("PERMANENT") && neigh.contains(&mac),
        "{neigh} (tortie-host is {mac})"
    );
}

/// `tortiectl node status|routes` print the published document. tortiectl is another
/// package's binary: it is run when the workspace build left it beside this test (the
/// CLI's own tests cover the command on fixed documents).
fn tortiectl_prints_what_was_published(store: &Store, generation: u64) {
    let exe = std::env::current_exe().unwrap();
    let Some(tortiectl) = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("tortiectl"))
        .filter(|p| p.exists())
    else {
        eprintln!("tortiectl not built beside the tests; skipping its end-to-end check");
        return;
    };
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&tortiectl)
            .args(args)
            .env_clear()
            .env("DATASTORE_TYPE", "sqlite")
            .env("SQLITE_PATH", &store.path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let status = run(&["node", "status", "--node", "n1"]);
    assert!(
        status.contains(&format!("generation sent {generation}")),
        "{status}"
    );
    assert!(status.contains("tortie-fastpath  missing"), "{status}");
    println!("{status}");
    let routes = run(&["node", "routes", "--node", "n1"]);
    println!("{routes}");
    assert!(
        routes.contains("198.19.0.64/26") && routes.contains("n2 (198.18.1.12)"),
        "{routes}"
    );
    assert!(routes.contains("blackhole (own block)"), "{routes}");
    assert!(routes.contains("local-workload"), "{routes}");
}

#[test]
fn relists_when_compaction_overtakes_the_watch() {
    let lab = Lab::new();
    let store = Store::new();
    store.pool("pool4", "198.19.0.0/20", "Always", false);
    store.node("n2", "198.18.1.12/24");
    store.affinity("n2", "198.19.0.64/26");
    let ring = store.dir.path().join("ring");
    let daemon = Daemon::start(&lab.node, &store, &ring, &["--uplink", "up0"]);
    let mut reader = Reader::open(&ring);
    wait_for("n2's block route", T, || {
        reader.poll();
        encap_of(reader.route("198.19.0.64/26"))
    });
    assert_eq!(
        encap_of(reader.route("198.19.0.64/26")).unwrap().1,
        Some(abi::IpipMode::Always)
    );

    // Freeze the daemon (its watch with it), change and compact the store, thaw it.
    daemon.signal("-STOP");
    daemon.wait_stopped();
    use tortie_datastore::Datastore;
    let old = tortie_datastore::keys::ipam_affinity_key("n2", "198.19.0.64/26").unwrap();
    store.ds.delete(&old, None).unwrap();
    store.affinity("n2", "198.19.1.0/26");
    let revision = store.ds.current_revision().unwrap();
    store.ds.compact(revision).unwrap();
    daemon.signal("-CONT");

    wait_for("the new block and the old one gone", T, || {
        reader.poll();
        (encap_of(reader.route("198.19.1.0/26")).is_some()
            && reader.route("198.19.0.64/26").is_none())
        .then_some(())
    });
    let status = wait_for("a status counting the resync", T, || {
        store
            .get_json("/tortie/status/v1/nodes/n1")
            .filter(|s| s["control"]["resyncs"].as_u64().unwrap_or(0) >= 1)
    });
    assert!(status["control"]["datastore_revision"].as_i64().unwrap() >= revision);
    let log = daemon.log_text();
    for line in log.lines().filter(|l| !l.contains("DEBUG")) {
        println!("{line}");
    }
    assert!(!log.contains("ERROR"), "{log}");
}

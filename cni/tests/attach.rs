//! ADD / CHECK / DEL / GC with real network namespaces (root): the "node" is a namespace of the
//! test's own, where the plugin runs; workloads are namespaces attached to it. Traffic between
//! two workloads goes through the node's kernel, as it does before the fastpath attaches.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::{Netns, TestStore, is_root, run_plugin, stdout_json, tortie_conf};
use tortie_datastore::{Datastore, keys};
use tortie_ipam::Ipam;

const TORTIE: &str = env!("CARGO_BIN_EXE_tortie");

fn node() -> Netns {
    let node = Netns::new("node");
    let out = node.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    assert!(out.status.success(), "{out:?}");
    // Like a real host, the node has an uplink with a default route: proxy ARP answers for
    // 169.254.1.1 only when the node can route it somewhere other than the asking interface.
    for args in [
        &[
            "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink0p",
        ][..],
        &["ip", "link", "set", "uplink0p", "up"],
        &["ip", "link", "set", "uplink0", "up"],
        &["ip", "addr", "add", "198.18.59.1/24", "dev", "uplink0"],
        &[
            "ip",
            "route",
            "add",
            "default",
            "via",
            "198.18.59.254",
            "dev",
            "uplink0",
        ],
    ] {
        let out = node.exec(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    node
}

fn env<'a>(command: &'a str, id: &'a str, netns: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", id),
        ("CNI_NETNS", netns),
        ("CNI_IFNAME", "eth0"),
        ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop"),
        ("CNI_PATH", "/nonexistent"),
    ]
}

fn add(store: &TestStore, node: &Netns, id: &str, workload: &Netns) -> serde_json::Value {
    let conf = tortie_conf(store, "1.0.0", "node-a", "");
    let out = run_plugin(
        TORTIE,
        &env("ADD", id, &workload.path()),
        &conf,
        Some(&node.name),
    );
    assert!(
        out.status.success(),
        "ADD failed: {} / {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_json(&out)
}

fn ip_of(result: &serde_json::Value) -> IpAddr {
    let text = result["ips"][0]["address"].as_str().unwrap();
    text.split('/').next().unwrap().parse().unwrap()
}

/// A TCP exchange from `from` to `to_ip` (listening in `to`), bounded by timeouts.
fn tcp_works(from: &Netns, to: &Netns, to_ip: IpAddr) -> bool {
    let addr = SocketAddr::new(to_ip, 7777);
    let listener = tortie_cni::netlink::in_netns(&to.path(), move || {
        TcpListener::bind(addr).map_err(|e| tortie_cni::netlink::NetlinkError {
            what: "bind".into(),
            cause: e.to_string(),
        })
    })
    .expect("listen in workload");
    let server = std::thread::spawn(move || {
        listener.set_nonblocking(false).ok();
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 5];
            if conn.read_exact(&mut buf).is_ok() {
                let _ = conn.write_all(&buf);
            }
        }
    });
    let ok = tortie_cni::netlink::in_netns(&from.path(), move || {
        let attempt = || -> std::io::Result<bool> {
            let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
            conn.set_read_timeout(Some(Duration::from_secs(3)))?;
            conn.write_all(b"hello")?;
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf)?;
            Ok(&buf == b"hello")
        };
        Ok(attempt().unwrap_or(false))
    })
    .unwrap_or(false);
    if !ok {
        // Unblock the accept so the server thread ends.
        let _ = tortie_cni::netlink::in_netns(&to.path(), move || {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
            Ok(())
        });
    }
    let _ = server.join();
    ok
}

#[test]
fn add_check_del_with_real_namespaces() {
    if !is_root() {
        panic!("this test needs root to create network namespaces (cargo xtask test runs as root)");
    }
    let store = TestStore::new();
    store.add_pool("pool-a", "198.18.50.0/24", 26);
    let node = node();
    let w1 = Netns::new("w1");
    let w2 = Netns::new("w2");

    let r1 = add(&store, &node, "c1", &w1);
    let r2 = add(&store, &node, "c2", &w2);
    assert_eq!(r1["cniVersion"], "1.0.0");
    let host_if = r1["interfaces"][0]["name"].as_str().unwrap().to_string();
    assert!(
        host_if.starts_with("tor") && host_if.len() == 14,
        "{host_if}"
    );
    assert_eq!(r1["interfaces"][0]["mac"], "ee:ee:ee:ee:ee:ee");
    assert_eq!(r1["interfaces"][1]["name"], "eth0");
    assert_eq!(r1["interfaces"][1]["sandbox"], w1.path().as_str());
    assert_eq!(r1["routes"][0]["gw"], "169.254.1.1");
    let ip1 = ip_of(&r1);
    let ip2 = ip_of(&r2);
    assert_ne!(ip1, ip2);

    // Container side: the /32, the MTU and the routes through 169.254.1.1.
    let addr = w1.exec_stdout(&["ip", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains(&format!("{ip1}/32")), "{addr}");
    let link = w1.exec_stdout(&["ip", "-o", "link", "show", "dev", "eth0"]);
    assert!(link.contains("mtu 1400"), "{link}");
    let routes = w1.exec_stdout(&["ip", "route"]);
    assert!(
        routes.contains("default via 169.254.1.1 dev eth0"),
        "{routes}"
    );
    assert!(routes.contains("169.254.1.1 dev eth0"), "{routes}");
    // Node side: the host interface and a route to the workload.
    let node_routes = node.exec_stdout(&["ip", "route"]);
    assert!(
        node_routes.contains(&format!("{ip1} dev {host_if}")),
        "{node_routes}"
    );

    // Workload to workload through the node.
    assert!(tcp_works(&w1, &w2, ip2), "w1 -> w2 over TCP");

    // The WorkloadEndpoint is in the datastore.
    let ds = store.open();
    let key = keys::resource_key("workloadendpoints", Some("shop"), "node--a-cni-c1-eth0").unwrap();
    let wep: serde_json::Value =
        serde_json::from_slice(&ds.get(&key).unwrap().expect("endpoint written").value).unwrap();
    assert_eq!(wep["spec"]["interfaceName"], host_if.as_str());
    assert_eq!(wep["spec"]["ipNetworks"][0], format!("{ip1}/32"));
    assert_eq!(
        wep["metadata"]["labels"]["projectcalico.org/namespace"],
        "shop"
    );

    // CHECK passes, then fails once the address is gone.
    let mut conf: serde_json::Value =
        serde_json::from_str(&tortie_conf(&store, "1.0.0", "node-a", "")).unwrap();
    conf["prevResult"] = r1.clone();
    let check_conf = conf.to_string();
    let out = run_plugin(
        TORTIE,
        &env("CHECK", "c1", &w1.path()),
        &check_conf,
        Some(&node.name),
    );
    assert!(
        out.status.success(),
        "CHECK: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    w1.exec(&["ip", "addr", "del", &format!("{ip1}/32"), "dev", "eth0"]);
    let out = run_plugin(
        TORTIE,
        &env("CHECK", "c1", &w1.path()),
        &check_conf,
        Some(&node.name),
    );
    assert!(!out.status.success());
    assert_eq!(stdout_json(&out)["code"], 103);

    // DEL, twice, and without a netns.
    let plain = tortie_conf(&store, "1.0.0", "node-a", "");
    for netns in [w1.path(), w1.path(), String::new()] {
        let out = run_plugin(TORTIE, &env("DEL", "c1", &netns), &plain, Some(&node.name));
        assert!(
            out.status.success(),
            "DEL: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(
        !node.exec_stdout(&["ip", "link"]).contains(&host_if),
        "host interface removed"
    );
    assert!(ds.get(&key).unwrap().is_none(), "endpoint removed");
    let ipam = Ipam::new(&ds);
    assert!(ipam.ip_info(ip1).unwrap().is_none(), "address released");
    assert!(ipam.ip_info(ip2).unwrap().is_some());

    // A second ADD for an interface that already exists fails and leaks nothing.
    let out = run_plugin(
        TORTIE,
        &env("ADD", "c2-again", &w2.path()),
        &plain,
        Some(&node.name),
    );
    assert!(!out.status.success());
    assert_eq!(stdout_json(&out)["code"], 102);
    let report = ipam.check(None).unwrap();
    assert_eq!(report.allocations, 1, "{report}");
    assert!(report.is_clean(), "{report}");
}

#[test]
fn plugin_killed_after_allocation_leaves_a_leak_that_gc_releases() {
    if !is_root() {
        panic!("this test needs root to create network namespaces (cargo xtask test runs as root)");
    }
    let store = TestStore::new();
    store.add_pool("pool-b", "198.18.51.0/24", 26);
    let node = node();
    let w1 = Netns::new("w1");
    let w2 = Netns::new("w2");
    let live = add(&store, &node, "live", &w1);

    let conf = tortie_conf(&store, "1.1.0", "node-a", "");
    let w2_path = w2.path();
    let mut crash_env = env("ADD", "crashed", &w2_path);
    crash_env.push(("TORTIE_CNI_FAULT", "abort-after-ipam"));
    let out = run_plugin(TORTIE, &crash_env, &conf, Some(&node.name));
    assert!(!out.status.success(), "the plugin was aborted");

    // The allocation exists with no endpoint: `ipam check` with the live endpoints' handles
    // calls it a leak.
    let ds = store.open();
    let ipam = Ipam::new(&ds);
    let live_handles = std::collections::HashSet::from(["testnet.live".to_string()]);
    let report = ipam.check(Some(&live_handles)).unwrap();
    assert_eq!(report.leaks.len(), 1, "{report}");
    assert_eq!(report.leaks[0].1, "testnet.crashed");

    // GC with the runtime's list of valid attachments releases it and keeps the live one.
    let mut gc_conf: serde_json::Value = serde_json::from_str(&conf).unwrap();
    gc_conf["cni.dev/valid-attachments"] =
        serde_json::json!([{"containerID": "live", "ifname": "eth0"}]);
    let out = run_plugin(
        TORTIE,
        &[("CNI_COMMAND", "GC"), ("CNI_PATH", "/nonexistent")],
        &gc_conf.to_string(),
        Some(&node.name),
    );
    assert!(
        out.status.success(),
        "GC: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = ipam.check(Some(&live_handles)).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.allocations, 1);
    assert!(ipam.ip_info(ip_of(&live)).unwrap().is_some());
}

#[test]
fn dual_stack_attachment_routes_ipv6_through_the_link_local_gateway() {
    assert!(
        is_root(),
        "this test needs root (cargo xtask test runs as root)"
    );
    let store = TestStore::new();
    store.add_pool("v4", "198.18.52.0/24", 26);
    store.add_pool("v6", "2001:db8:52::/120", 122);
    let node = node();
    let w = Netns::new("w6");
    let conf = tortie_conf(&store, "1.1.0", "node-a", "").replace(
        r#""assign_ipv4":"true""#,
        r#""assign_ipv4":"true","assign_ipv6":"true""#,
    );
    let out = run_plugin(
        TORTIE,
        &env("ADD", "c6", &w.path()),
        &conf,
        Some(&node.name),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let result = stdout_json(&out);
    let ips: Vec<&str> = result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["address"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 2, "{result}");
    assert!(
        ips[1].starts_with("2001:db8:52::") && ips[1].ends_with("/128"),
        "{ips:?}"
    );
    assert_eq!(
        result["interfaces"][1]["mtu"], 1400,
        "1.1.0 results carry the MTU"
    );
    let addrs = w.exec_stdout(&["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(ips[1]), "{addrs}");
    let routes = w.exec_stdout(&["ip", "-6", "route"]);
    assert!(
        routes.contains("default via fe80::ecee:eeff:feee:eeee dev eth0"),
        "{routes}"
    );
    let out = run_plugin(
        TORTIE,
        &env("DEL", "c6", &w.path()),
        &conf,
        Some(&node.name),
    );
    assert!(out.status.success());
    let ds = store.open();
    assert_eq!(Ipam::new(&ds).check(None).unwrap().allocations, 0);
}

#[test]
fn readiness_timeout_fails_the_add_and_undoes_it() {
    assert!(
        is_root(),
        "this test needs root (cargo xtask test runs as root)"
    );
    let store = TestStore::new();
    store.add_pool("p", "198.18.53.0/24", 26);
    let node = node();
    let w = Netns::new("wr");
    let conf = tortie_conf(
        &store,
        "1.0.0",
        "node-a",
        r#","endpoint_ready_timeout_secs":0.3"#,
    );
    let out = run_plugin(
        TORTIE,
        &env("ADD", "cr", &w.path()),
        &conf,
        Some(&node.name),
    );
    assert!(
        !out.status.success(),
        "nobody reports the endpoint programmed"
    );
    assert_eq!(stdout_json(&out)["code"], 104);
    assert!(
        !w.exec_stdout(&["ip", "link"]).contains("eth0"),
        "the interface was removed"
    );
    let ds = store.open();
    assert_eq!(
        Ipam::new(&ds).check(None).unwrap().allocations,
        0,
        "the address was released"
    );
    let prefix = keys::resource_prefix("workloadendpoints", None).unwrap();
    assert!(
        ds.list(&prefix).unwrap().kvs.is_empty(),
        "the endpoint was removed"
    );
}

/// `tortie-ipam` under the reference `bridge` plugin (Debian containernetworking-plugins).
#[test]
fn tortie_ipam_serves_the_reference_bridge_plugin() {
    assert!(
        is_root(),
        "this test needs root (cargo xtask test runs as root)"
    );
    let bridge = "/usr/lib/cni/bridge";
    assert!(
        std::path::Path::new(bridge).exists(),
        "{bridge} is missing: `cargo xtask test` installs containernetworking-plugins"
    );
    let store = TestStore::new();
    store.add_pool("p", "198.18.54.0/24", 26);
    let node = node();
    let w = Netns::new("wb");
    let plugin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_tortie-ipam"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    let conf = format!(
        r#"{{"cniVersion":"1.0.0","name":"bridgenet","type":"bridge","bridge":"tbr0","isGateway":false,
            "ipam":{{"type":"tortie-ipam","nodename":"node-a","datastore_type":"sqlite","sqlite_path":"{}"}},
            "datastore_type":"sqlite","sqlite_path":"{}","nodename":"node-a"}}"#,
        store.path.display(),
        store.path.display()
    );
    let path = w.path();
    let mut vars = env("ADD", "cb", &path);
    vars.retain(|(k, _)| *k != "CNI_PATH");
    vars.push(("CNI_PATH", plugin_dir.as_str()));
    let out = run_plugin(bridge, &vars, &conf, Some(&node.name));
    assert!(
        out.status.success(),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result = stdout_json(&out);
    let address = result["ips"][0]["address"].as_str().unwrap().to_string();
    assert!(address.starts_with("198.18.54."), "{result}");
    let addrs = w.exec_stdout(&["ip", "-o", "addr", "show", "dev", "eth0"]);
    assert!(
        addrs.contains(address.split('/').next().unwrap()),
        "{addrs}"
    );
    vars[0] = ("CNI_COMMAND", "DEL");
    let out = run_plugin(bridge, &vars, &conf, Some(&node.name));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ds = store.open();
    assert_eq!(Ipam::new(&ds).check(None).unwrap().allocations, 0);
}

//! `policy explain` and `ipam show | check | release` through the built binary.

mod common;

use std::collections::BTreeMap;

use common::Session;
use tortie_ipam::{AutoAssignArgs, Ipam, Pool, PoolUse};

const CLUSTER: &str = r#"
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool-a}
spec: {cidr: 198.18.80.0/24, blockSize: 26}
---
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.shop}
spec:
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: node--1-k8s-web-eth0
  namespace: shop
  labels: {app: web, projectcalico.org/namespace: shop, projectcalico.org/orchestrator: k8s}
spec:
  orchestrator: k8s
  node: node-1
  pod: web
  endpoint: eth0
  containerID: c-web
  interfaceName: tor0000000001
  ipNetworks: [198.18.80.1/32]
  profiles: [kns.shop]
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: node--1-k8s-db-eth0
  namespace: shop
  labels: {app: db, projectcalico.org/namespace: shop, projectcalico.org/orchestrator: k8s}
spec:
  orchestrator: k8s
  node: node-1
  pod: db
  endpoint: eth0
  containerID: c-db
  interfaceName: tor0000000002
  ipNetworks: [198.18.80.2/32]
  profiles: [kns.shop]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: shop}
spec:
  selector: app == 'db'
  types: [Ingress]
  ingress:
    - action: Allow
      protocol: TCP
      source: {selector: app == 'web'}
      destination: {ports: [5432]}
"#;

#[test]
fn explain_names_the_deciding_policy() {
    let session = Session::new();
    let file = session.file("cluster.yaml", CLUSTER);
    assert_eq!(session.run(&["apply", "-f", &file]).code, 0);

    let allowed = session.run(&[
        "policy",
        "explain",
        "--from",
        "shop/web",
        "--to",
        "shop/db",
        "--protocol",
        "TCP",
        "--port",
        "5432",
        "-o",
        "json",
    ]);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    let json: serde_json::Value = serde_json::from_str(&allowed.stdout).unwrap();
    assert_eq!(json["verdict"], "Allow");
    let steps = json["ingress"]["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["policy"]
            .as_str()
            .is_some_and(|p| p.contains("db-from-web"))),
        "{json}"
    );

    // Another port: the policy selects db but no rule allows it, so the default tier denies.
    let denied = session.run(&[
        "policy",
        "explain",
        "--from",
        "shop/web",
        "--to",
        "shop/db",
        "--protocol",
        "TCP",
        "--port",
        "22",
        "-o",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&denied.stdout).unwrap();
    assert_eq!(json["verdict"], "Deny", "{json}");
    assert_eq!(json["egress"]["verdict"], "Allow");

    let text = session.run(&[
        "policy",
        "explain",
        "--from",
        "shop/web",
        "--to",
        "shop/db",
        "--protocol",
        "TCP",
        "--port",
        "5432",
    ]);
    assert_eq!(text.code, 0);
    assert!(!text.stdout.trim().is_empty());

    let unknown = session.run(&[
        "policy",
        "explain",
        "--from",
        "shop/nobody",
        "--to",
        "shop/db",
        "--protocol",
        "TCP",
    ]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("nobody"), "{}", unknown.stderr);
}

#[test]
fn ipam_show_check_release() {
    let session = Session::new();
    let file = session.file("cluster.yaml", CLUSTER);
    assert_eq!(session.run(&["apply", "-f", &file]).code, 0);
    let ds =
        tortie_datastore::open(&tortie_datastore::DatastoreConfig::sqlite(&session.db)).unwrap();
    let ipam = Ipam::new(ds.as_ref());
    let pools = [Pool {
        name: "pool-a".into(),
        cidr: "198.18.80.0/24".parse().unwrap(),
        block_size: 26,
        allowed_uses: vec![PoolUse::Workload],
    }];
    let assign = |handle: &str| {
        ipam.auto_assign(&AutoAssignArgs {
            node: "node-1",
            handle,
            attributes: BTreeMap::new(),
            num_v4: 1,
            num_v6: 0,
            v4_pools: &pools,
            v6_pools: &[],
            reservations: &[],
            use_: PoolUse::Workload,
        })
        .unwrap()
        .v4[0]
    };
    let live = assign("k8s-pod-network.c-web");
    let leaked = assign("k8s-pod-network.c-gone");

    let show = session.run(&["ipam", "show", "--show-blocks"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout.contains("pool-a") && show.stdout.contains("198.18.80.0/24"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("node-1"), "{}", show.stdout);
    let who = session.run(&["ipam", "show", "--ip", &live.to_string()]);
    assert!(
        who.stdout.contains("k8s-pod-network.c-web"),
        "{}",
        who.stdout
    );

    let check = session.run(&["ipam", "check"]);
    assert_eq!(check.code, 1, "a leak is a problem");
    assert!(
        check.stdout.contains(&leaked.to_string()),
        "{}",
        check.stdout
    );
    let fixed = session.run(&["ipam", "check", "--release-leaks"]);
    assert_eq!(fixed.code, 0, "{} {}", fixed.stdout, fixed.stderr);
    assert_eq!(session.run(&["ipam", "check"]).code, 0);

    let released = session.run(&["ipam", "release", "--ip", &live.to_string()]);
    assert_eq!(released.code, 0, "{}", released.stderr);
    let again = session.run(&["ipam", "release", "--ip", &live.to_string()]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("not assigned"));
}

const KUBERNETES_INPUTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: retail}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-ingress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
      ports: [{protocol: TCP, port: 5432}]
"#;

#[test]
fn kubernetes_inputs_are_stored_and_feed_explain() {
    let session = Session::new();
    let endpoints: String = CLUSTER
        .split("\n---\n")
        .filter(|doc| doc.contains("kind: WorkloadEndpoint"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    let file = session.file("endpoints.yaml", &endpoints);
    assert_eq!(session.run(&["apply", "-f", &file]).code, 0);
    let file = session.file("k8s.yaml", KUBERNETES_INPUTS);
    let applied = session.run(&["apply", "-f", &file]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let namespaces = session.run(&["get", "namespaces"]);
    assert!(namespaces.stdout.contains("shop"), "{}", namespaces.stdout);

    let explain = |port: &str| {
        let run = session.run(&[
            "policy",
            "explain",
            "--from",
            "shop/web",
            "--to",
            "shop/db",
            "--protocol",
            "TCP",
            "--port",
            port,
            "-o",
            "json",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()
    };
    let allowed = explain("5432");
    assert_eq!(allowed["verdict"], "Allow", "{allowed}");
    let text = allowed["ingress"].to_string();
    assert!(text.contains("knp.default.db-ingress"), "{text}");
    assert_eq!(explain("80")["verdict"], "Deny");
}

const FORWARDING: &str = r#"
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: node-1-eth0
  labels: {role: uplink}
spec:
  node: node-1
  interfaceName: eth0
  expectedIPs: [198.18.1.11]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: no-outbound-http}
spec:
  selector: role == 'uplink'
  applyOnForward: true
  types: [Egress]
  egress:
    - action: Deny
      protocol: TCP
      destination: {ports: [80]}
    - action: Allow
"#;

#[test]
fn explain_shows_forwarding_through_the_uplink_host_endpoint() {
    let session = Session::new();
    let file = session.file("cluster.yaml", CLUSTER);
    assert_eq!(session.run(&["apply", "-f", &file]).code, 0);
    let file = session.file("forwarding.yaml", FORWARDING);
    let applied = session.run(&["apply", "-f", &file]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let explain = |port: &str, output: &str| {
        session.run(&[
            "policy",
            "explain",
            "--from",
            "shop/web",
            "--to-ip",
            "198.18.3.2",
            "--protocol",
            "TCP",
            "--port",
            port,
            "-o",
            output,
        ])
    };
    let denied = explain("80", "json");
    assert_eq!(denied.code, 0, "{}", denied.stderr);
    let json: serde_json::Value = serde_json::from_str(&denied.stdout).unwrap();
    assert_eq!(json["verdict"], "Deny", "{json}");
    assert_eq!(json["forwardEgress"]["hostEndpoint"], "node-1-eth0");
    assert_eq!(
        json["forwardEgress"]["steps"][0]["policy"],
        "no-outbound-http"
    );
    let allowed = explain("443", "json");
    let json: serde_json::Value = serde_json::from_str(&allowed.stdout).unwrap();
    assert_eq!(json["verdict"], "Allow", "{json}");
    let text = explain("80", "text");
    assert!(
        text.stdout
            .contains("Forwarded out through host endpoint node-1-eth0"),
        "{}",
        text.stdout
    );
}

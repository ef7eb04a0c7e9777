//! Policy change latency with 1,000 local workload endpoints: each change is compiled for
//! every endpoint it selects and sent as one delta. Prints the figures; the bounds asserted
//! here are loose (debug build, shared machine); `docs/reference/tortie-control.md` records
//! release-build figures.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Lab, Reader, Store, wait_for};
use tortie_datastore::{Condition, Datastore, TxnOp, keys};
use tortie_ring::MessageKind;

const ENDPOINTS: usize = 1000;
const CHANGES: usize = 30;

#[test]
fn policy_deltas_at_1000_endpoints() {
    let lab = Lab::new();
    let batch = lab.node.name.clone() + ".batch";
    let batch_path = std::env::temp_dir().join(batch);
    let mut text = String::new();
    for i in 0..ENDPOINTS {
        text.push_str(&format!(
            "link add torx{i:010} type veth peer name wlx{i:010}\n"
        ));
        text.push_str(&format!("link set torx{i:010} up\n"));
    }
    std::fs::write(&batch_path, text).unwrap();
    let out = std::process::Command::new("ip")
        .args(["-n", &lab.node.name, "-batch"])
        .arg(&batch_path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&batch_path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = Store::new();
    store.pool("pool4", "198.19.0.0/16", "CrossSubnet", true);
    let mut ops = Vec::new();
    for i in 0..ENDPOINTS {
        let name = format!("n1-cni-w{i}-eth0");
        let ip = format!("198.19.{}.{}/32", 16 + i / 250, 1 + i % 250);
        let role = if i % 10 == 0 { "db" } else { "web" };
        let doc = serde_json::json!({"apiVersion":"projectcalico.org/v3","kind":"WorkloadEndpoint",
            "metadata":{"name":name,"namespace":"ns1","labels":{"app":"x","role":role}},
            "spec":{"orchestrator":"cni","workload":name,"node":"n1","endpoint":"eth0",
                "interfaceName":format!("torx{i:010}"),"mac":"02:00:00:00:00:04",
                "ipNetworks":[ip],"profiles":["kns.ns1"]}});
        ops.push(TxnOp::Put {
            key: keys::resource_key("workloadendpoints", Some("ns1"), &name).unwrap(),
            value: doc.to_string().into_bytes(),
            condition: Condition::Any,
        });
    }
    store.ds.txn(&ops).unwrap();

    let ring = store.dir.path().join("ring");
    let started = Instant::now();
    let daemon = Daemon::start(&lab.node, &store, &ring, &["--uplink", "up0"]);
    let mut reader = Reader::open(&ring);
    reader.until("1,000 endpoints", Duration::from_secs(120), |t| {
        t.endpoints.len() == ENDPOINTS
    });
    println!(
        "start to 1,000 endpoints in the tables: {:?}",
        started.elapsed()
    );

    let typed = tortie_store::Store::new(&store.ds);
    let mut e2e = Vec::new();
    for i in 0..CHANGES {
        let text = format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: p{i}\nspec:\n  order: {i}\n  selector: app == 'x'\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source:\n      selector: role == 'db'\n    destination:\n      ports: [{}]\n",
            2000 + i
        );
        let resources = tortie_model::parse_documents(&text, "p.yaml").unwrap();
        reader.poll();
        let before = reader.log.len();
        let t0 = Instant::now();
        typed.apply_all(resources).unwrap();
        let want = i + 1;
        reader.until(
            "the policy on every endpoint",
            Duration::from_secs(60),
            |t| {
                let programs: std::collections::HashMap<_, usize> = t
                    .programs
                    .iter()
                    .map(|p| (p.id, p.tiers.iter().map(|tier| tier.policies.len()).sum()))
                    .collect();
                t.endpoints.len() == ENDPOINTS
                    && t.endpoints
                        .iter()
                        .all(|e| e.ingress.and_then(|id| programs.get(&id).copied()) == Some(want))
            },
        );
        assert!(
            reader.log[before..]
                .iter()
                .all(|m| m.kind == MessageKind::DELTA)
        );
        e2e.push(reader.log.last().unwrap().at.duration_since(t0));
    }
    e2e.sort();
    let key = "/tortie/status/v1/nodes/n1";
    let status = wait_for("status with the latencies", Duration::from_secs(20), || {
        store.get_json(key).filter(|s| {
            s["control"]["apply_latency"]["count"].as_u64().unwrap_or(0) as usize >= CHANGES
        })
    });
    println!(
        "1,000 endpoints, {CHANGES} policy changes: store apply -> delta on the ring p50 {:?} max {:?}; control's change-to-ring {}",
        e2e[e2e.len() / 2],
        e2e[e2e.len() - 1],
        status["control"]["apply_latency"]
    );
    // Phase 2: the rules of a policy every endpoint has change, the plans do not.
    let mut rule_changes = Vec::new();
    for j in 0..CHANGES {
        let port = 3000 + j;
        let text = format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: p0\nspec:\n  order: 0\n  selector: app == 'x'\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source:\n      selector: role == 'db'\n    destination:\n      ports: [{port}]\n"
        );
        let resources = tortie_model::parse_documents(&text, "p.yaml").unwrap();
        reader.poll();
        let t0 = Instant::now();
        typed.apply_all(resources).unwrap();
        let port = port as u16;
        reader.until(
            "the new port on every endpoint",
            Duration::from_secs(60),
            |t| {
                t.programs.iter().any(|p| {
                    p.tiers.iter().any(|tier| {
                        tier.policies.iter().any(|pol| {
                            pol.rules
                                .iter()
                                .any(|r| r.matches.dst_ports.ranges.iter().any(|pr| pr.lo == port))
                        })
                    })
                })
            },
        );
        rule_changes.push(reader.log.last().unwrap().at.duration_since(t0));
    }
    rule_changes.sort();
    let status = wait_for("status with the latencies", Duration::from_secs(20), || {
        store.get_json(key).filter(|s| {
            s["control"]["apply_latency"]["count"].as_u64().unwrap_or(0) as usize >= 2 * CHANGES
        })
    });
    println!(
        "1,000 endpoints, {CHANGES} rule changes (plans unchanged): store apply -> delta on the ring p50 {:?} max {:?}; control's change-to-ring over both phases {}",
        rule_changes[rule_changes.len() / 2],
        rule_changes[rule_changes.len() - 1],
        status["control"]["apply_latency"]
    );

    // 1,000 endpoints, two distinct plans (role db / web share the same policies): the
    // programs are shared, not copied per endpoint.
    assert!(
        reader.state.tables.programs.len() <= 4,
        "{}",
        reader.state.tables.programs.len()
    );
    let log = daemon.log_text();
    let field = |line: &str, name: &str| -> u64 {
        line.split(&format!("{name}="))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut cycles: Vec<u64> = log
        .lines()
        .filter(|l| l.contains(" cycle "))
        .map(|l| {
            ["flush_us", "compile_us", "tables_us", "diff_us"]
                .iter()
                .map(|f| field(l, f))
                .sum()
        })
        .collect();
    let last: Vec<u64> = cycles.split_off(cycles.len().saturating_sub(CHANGES));
    if let Some(line) = log.lines().rfind(|l| l.contains(" cycle ")) {
        println!("last cycle: {line}");
    }
    let mut sorted = last.clone();
    sorted.sort_unstable();
    if let (Some(mid), Some(max)) = (sorted.get(sorted.len() / 2), sorted.last()) {
        println!(
            "rule changes: cycle time (flush + compile + tables + diff, no coalescing or send) p50 {mid} us, max {max} us"
        );
    }
    assert!(e2e[e2e.len() - 1] < Duration::from_secs(10));
}

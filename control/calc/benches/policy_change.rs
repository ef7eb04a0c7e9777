//! One policy change with 1,000 endpoints, stage by stage: the graph work tortie-control does
//! per datastore event in the policy-latency bench (`cargo xtask bench policy-latency`).
//!
//! The cluster is the bench's: 998 workload endpoints of another node labelled
//! `role: frontend` and two of this node (`pl-src`, frontend; `pl-dst`, backend), all in one
//! namespace with its `kns.` profile. The change is the bench's GlobalNetworkPolicy
//! `bench-block` (selects `pl-dst`, denies ingress from `role == 'frontend'`), put and deleted
//! alternately: each put creates the 999-member IP set of its rule, each delete removes it.
//!
//! Stages (each timed alone, the rest of the put/delete cycle runs untimed around it):
//! `parse` (the stored JSON into a `Resource`), `upsert` / `delete` (the graph update:
//! selector index, IP set members, dirty marks), `flush` (events out), `compile` (the
//! compiler's delta: IP sets and the changed programs).

use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tortie_calc::CalcGraph;
use tortie_calc::compile::FastpathCompiler;
use tortie_model::types::*;
use tortie_model::{Kind, ObjectMeta, Resource, ResourceKey};

const ENDPOINTS: usize = 1_000;
const NAMESPACE: &str = "ns-a";

/// The policy the latency bench toggles, as stored (JSON).
const BLOCK_JSON: &str = r#"{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy",
"metadata":{"name":"bench-block"},"spec":{"order":10,"selector":"name == 'pl-dst'",
"types":["Ingress"],"ingress":[{"action":"Deny","source":{"selector":"role == 'frontend'"}}]}}"#;

fn endpoint(name: &str, node: &str, labels: &[(&str, &str)], addr: std::net::Ipv4Addr) -> Resource {
    let mut meta = ObjectMeta::namespaced(NAMESPACE, name);
    meta.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    let spec = WorkloadEndpointSpec {
        orchestrator: "cni".into(),
        node: node.into(),
        workload: name.into(),
        endpoint: "eth0".into(),
        interface_name: format!("cali{}", name.len()),
        ip_networks: vec![Cidr(format!("{addr}/32").parse().unwrap())],
        profiles: vec![format!("kns.{NAMESPACE}")],
        ..Default::default()
    };
    Resource::WorkloadEndpoint(tortie_model::WorkloadEndpoint::new(meta, spec))
}

fn cluster() -> Vec<Resource> {
    let base = u32::from(std::net::Ipv4Addr::new(198, 19, 12, 1));
    let mut out = vec![Resource::KubernetesNamespace(
        tortie_model::KubernetesNamespace::new(ObjectMeta::named(NAMESPACE), Default::default()),
    )];
    out.push(endpoint(
        "node1-cni-pl--src-eth0",
        "node1",
        &[("role", "frontend"), ("name", "pl-src")],
        std::net::Ipv4Addr::new(198, 19, 0, 2),
    ));
    out.push(endpoint(
        "node1-cni-pl--dst-eth0",
        "node1",
        &[("role", "backend"), ("name", "pl-dst")],
        std::net::Ipv4Addr::new(198, 19, 0, 3),
    ));
    for i in 0..ENDPOINTS - 2 {
        out.push(endpoint(
            &format!("node2-cni-plbench{i}-eth0"),
            "node2",
            &[("role", "frontend"), ("bench", "synthetic")],
            std::net::Ipv4Addr::from(base + i as u32),
        ));
    }
    out
}

/// The graph with the cluster flushed and compiled once, as tortie-control holds it.
struct State {
    graph: CalcGraph,
    compiler: FastpathCompiler,
    block: Resource,
    key: ResourceKey,
}

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    Parse,
    Apply,
    Flush,
    Compile,
    All,
}

impl State {
    fn new() -> State {
        let mut graph = CalcGraph::from_resources(&cluster());
        let mut compiler = FastpathCompiler::new();
        let events = graph.flush();
        black_box(compiler.delta(&graph, &events));
        let block = Resource::from_json(BLOCK_JSON).expect("the bench policy parses");
        State {
            graph,
            compiler,
            key: ResourceKey {
                kind: Kind::GlobalNetworkPolicy,
                namespace: String::new(),
                name: "bench-block".into(),
            },
            block,
        }
    }

    /// One change (a put when `put`, else a delete), returning the time `stage` took.
    fn change(&mut self, put: bool, stage: Stage) -> Duration {
        let t0 = Instant::now();
        if put {
            black_box(Resource::from_json(BLOCK_JSON).expect("parses"));
        }
        let t1 = Instant::now();
        if put {
            self.graph.upsert(&self.block);
        } else {
            self.graph.delete(&self.key);
        }
        let t2 = Instant::now();
        let events = self.graph.flush();
        let t3 = Instant::now();
        let ops = self.compiler.delta(&self.graph, &events);
        let t4 = Instant::now();
        assert!(!ops.is_empty(), "every change reaches the tables");
        match stage {
            Stage::Parse => t1 - t0,
            Stage::Apply => t2 - t1,
            Stage::Flush => t3 - t2,
            Stage::Compile => t4 - t3,
            Stage::All => t4 - t1,
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut state = State::new();
    let mut group = c.benchmark_group("policy_change_1k_endpoints");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));
    let stages = [
        ("parse", Stage::Parse),
        ("apply", Stage::Apply),
        ("flush", Stage::Flush),
        ("compile", Stage::Compile),
        ("total", Stage::All),
    ];
    for put in [true, false] {
        for (name, stage) in stages {
            if !put && stage == Stage::Parse {
                continue;
            }
            let verb = if put { "put" } else { "delete" };
            group.bench_function(format!("{verb}_{name}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // The other half of the toggle, untimed, so every timed change is real.
                        if put {
                            total += state.change(true, stage);
                            state.change(false, Stage::All);
                        } else {
                            state.change(true, Stage::All);
                            total += state.change(false, stage);
                        }
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

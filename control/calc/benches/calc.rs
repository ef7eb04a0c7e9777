//! The Measure targets on a synthetic cluster: 10,000 endpoints in 100 namespaces
//! with 1,000 policies. Full computation, one label change, one policy added, one explain.

use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;
use tortie_calc::{CalcGraph, ExplainRequest, Peer, explain::explain};
use tortie_model::types::*;
use tortie_model::{ObjectMeta, Resource};

const NAMESPACES: usize = 100;
const ENDPOINTS: usize = 10_000;
const POLICIES: usize = 1_000;
const APPS: usize = 20;

fn namespace(n: usize) -> Resource {
    let mut meta = ObjectMeta::named(&format!("ns{n}"));
    meta.labels.insert("team".into(), format!("team{}", n % 10));
    Resource::KubernetesNamespace(tortie_model::KubernetesNamespace::new(
        meta,
        Default::default(),
    ))
}

fn endpoint(i: usize, app: usize) -> Resource {
    let ns = format!("ns{}", i % NAMESPACES);
    let mut meta = ObjectMeta::namespaced(&ns, &format!("node{}-k8s-pod{i}-eth0", i % 100));
    meta.labels = BTreeMap::from([
        ("app".to_string(), format!("app{app}")),
        (
            "tier".to_string(),
            if i.is_multiple_of(3) {
                "fe".into()
            } else {
                "be".into()
            },
        ),
        (
            "projectcalico.org/orchestrator".to_string(),
            "k8s".to_string(),
        ),
    ]);
    let ip = format!("10.{}.{}.{}/32", i >> 16, (i >> 8) & 255, i & 255);
    let spec = WorkloadEndpointSpec {
        orchestrator: "k8s".into(),
        node: format!("node{}", i % 100),
        workload: format!("pod{i}"),
        pod: format!("pod{i}"),
        endpoint: "eth0".into(),
        ip_networks: vec![Cidr(ip.parse().unwrap())],
        profiles: vec![format!("kns.{ns}")],
        ports: vec![WorkloadEndpointPort {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: 8080,
            host_port: None,
            host_ip: None,
        }],
        ..Default::default()
    };
    Resource::WorkloadEndpoint(tortie_model::WorkloadEndpoint::new(meta, spec))
}

fn policy(p: usize, name: &str) -> Resource {
    let ns = format!("ns{}", p % NAMESPACES);
    let mut allow_from = Rule::new(Action::Allow);
    allow_from.protocol = Some(Protocol::Tcp);
    allow_from.source.selector = format!("app == 'app{}'", (p + 1) % APPS);
    allow_from.destination.ports = vec![Port::Number(80), Port::Named("http".into())];
    let mut allow_ns = Rule::new(Action::Allow);
    allow_ns.source.namespace_selector = format!("team == 'team{}'", p % 10);
    let spec = NetworkPolicySpec {
        order: Some((p % 7) as f64),
        selector: format!("app == 'app{}'", p % APPS),
        types: vec![PolicyType::Ingress],
        ingress: vec![allow_from, allow_ns],
        ..Default::default()
    };
    Resource::NetworkPolicy(tortie_model::NetworkPolicy::new(
        ObjectMeta::namespaced(&ns, name),
        spec,
    ))
}

fn cluster() -> Vec<Resource> {
    let mut out: Vec<Resource> = (0..NAMESPACES).map(namespace).collect();
    out.extend((0..ENDPOINTS).map(|i| endpoint(i, i % APPS)));
    out.extend((0..POLICIES).map(|p| policy(p, &format!("pol{p}"))));
    out
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn bench(c: &mut Criterion) {
    let resources = cluster();
    let mut group = c.benchmark_group("calc");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("full_computation_10k_endpoints_1k_policies", |b| {
        b.iter(|| {
            let mut graph = CalcGraph::from_resources(&resources);
            black_box(graph.flush().len())
        })
    });
    group.finish();
    if let Some(kib) = peak_rss_kib() {
        eprintln!("peak RSS after full computations: {} MiB", kib / 1024);
    }

    let mut graph = CalcGraph::from_resources(&resources);
    let events = graph.flush().len();
    eprintln!("full computation emitted {events} events");
    let mut group = c.benchmark_group("calc_delta");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5));
    let mut flip = 0usize;
    group.bench_function("one_label_change", |b| {
        b.iter(|| {
            flip += 1;
            graph.upsert(&endpoint(4242, if flip.is_multiple_of(2) { 2 } else { 7 }));
            black_box(graph.flush().len())
        })
    });
    let mut next = 0usize;
    group.bench_function("one_policy_added", |b| {
        b.iter(|| {
            next += 1;
            graph.upsert(&policy(next * 13, &format!("added{next}")));
            black_box(graph.flush().len())
        })
    });
    let request = ExplainRequest::new(
        Peer::parse_endpoint("ns1/pod1").unwrap(),
        Peer::parse_endpoint("ns20/pod20").unwrap(),
        6,
        Some(8080),
    );
    group.bench_function("explain", |b| {
        b.iter(|| black_box(explain(&graph, &request).unwrap().verdict))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

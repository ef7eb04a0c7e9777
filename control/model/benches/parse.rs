//! Reading cost of manifests and stored values, next to a plain `serde_json::Value` parse of
//! the same bytes as the reference (the ratio is what the numbers are for).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tortie_model::{Resource, parse_documents, read_documents};

const POLICIES: usize = 1000;

fn policy_yaml(i: usize) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: allow-{i}
  namespace: ns-{ns}
  labels:
    app.kubernetes.io/name: svc-{i}
spec:
  order: {i}
  selector: app == 'svc-{i}' && has(role)
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: role == 'frontend'
      nets: [10.{a}.0.0/16]
    destination:
      ports: [80, 443, '8000:8080']
  - action: Deny
    protocol: ICMP
    icmp: {{type: 8, code: 0}}
  egress:
  - action: Allow
    protocol: UDP
    destination:
      ports: [53]
",
        ns = i % 20,
        a = i % 256,
    )
}

fn bench(c: &mut Criterion) {
    let yaml: String = (0..POLICIES)
        .map(|i| format!("---\n{}", policy_yaml(i)))
        .collect();
    let resources = parse_documents(&yaml, "bench.yaml").unwrap();
    let json_values: Vec<String> = resources.iter().map(Resource::to_json).collect();

    let mut group = c.benchmark_group("model");
    group.bench_function("parse_documents 1000 policies (yaml, validated)", |b| {
        b.iter(|| parse_documents(black_box(&yaml), "bench.yaml").unwrap())
    });
    group.bench_function("read_documents 1000 policies (yaml, unvalidated)", |b| {
        b.iter(|| read_documents(black_box(&yaml), "bench.yaml").unwrap())
    });
    group.bench_function("Resource::from_json x1000", |b| {
        b.iter(|| {
            for v in &json_values {
                black_box(Resource::from_json(black_box(v)).unwrap());
            }
        })
    });
    group.bench_function("reference: serde_json::Value x1000", |b| {
        b.iter(|| {
            for v in &json_values {
                black_box(serde_json::from_str::<serde_json::Value>(black_box(v)).unwrap());
            }
        })
    });
    group.bench_function("Resource::to_json x1000", |b| {
        b.iter(|| {
            for r in &resources {
                black_box(r.to_json());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

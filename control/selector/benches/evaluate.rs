//! Selector evaluation speed: a three-term selector against label sets of ten labels, through
//! each label lookup the crate supports, plus parse time for comparison.
//!
//! Run: `cargo bench -p tortie-selector --bench evaluate`.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tortie_selector::{LabelMap, Overlay, Selector};

const SELECTOR: &str = "app == 'web' && tier in {'a','b'} && has(env)";

/// Eight endpoints' labels, ten labels each: some match, some fail on the first, second or
/// third term.
fn endpoint_labels() -> Vec<BTreeMap<String, String>> {
    let variants = [
        ("web", "a", true),
        ("web", "b", true),
        ("db", "a", true),
        ("web", "c", true),
        ("web", "a", false),
        ("cache", "b", true),
        ("web", "b", true),
        ("web", "z", false),
    ];
    variants
        .iter()
        .enumerate()
        .map(|(i, (app, tier, has_env))| {
            let mut labels = BTreeMap::new();
            labels.insert("app".to_string(), app.to_string());
            labels.insert("tier".to_string(), tier.to_string());
            if *has_env {
                labels.insert("env".to_string(), "prod".to_string());
            }
            labels.insert("projectcalico.org/namespace".to_string(), format!("ns-{i}"));
            labels.insert(
                "projectcalico.org/orchestrator".to_string(),
                "k8s".to_string(),
            );
            labels.insert(
                "projectcalico.org/serviceaccount".to_string(),
                "default".to_string(),
            );
            labels.insert("pod-template-hash".to_string(), format!("7f9c{i}d"));
            labels.insert("version".to_string(), "v1.2.3".to_string());
            labels.insert("k8s.io/team".to_string(), "payments".to_string());
            labels.insert("release".to_string(), "stable".to_string());
            while labels.len() < 10 {
                labels.insert(format!("extra-{}", labels.len()), "x".to_string());
            }
            labels
        })
        .collect()
}

fn evaluate(c: &mut Criterion) {
    let selector = Selector::parse(SELECTOR).expect("bench selector parses");
    let btree = endpoint_labels();
    let hash: Vec<HashMap<String, String>> = btree
        .iter()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .collect();
    let map: Vec<LabelMap> = btree.iter().map(|m| m.iter().collect()).collect();
    let expected: Vec<bool> = btree.iter().map(|m| selector.matches(m)).collect();
    assert_eq!(
        expected,
        [true, true, false, false, false, false, true, false],
        "bench label sets exercise every term"
    );
    let (own, inherited): (Vec<LabelMap>, Vec<LabelMap>) = btree
        .iter()
        .map(|m| {
            let own: LabelMap = m.iter().filter(|(k, _)| !k.contains('/')).collect();
            let inherited: LabelMap = m.iter().filter(|(k, _)| k.contains('/')).collect();
            (own, inherited)
        })
        .unzip();

    let mut group = c.benchmark_group("evaluate_three_terms");
    group.throughput(Throughput::Elements(btree.len() as u64));
    group.bench_function("btreemap", |b| {
        b.iter(|| {
            let mut n = 0;
            for labels in &btree {
                n += usize::from(black_box(&selector).matches(black_box(labels)));
            }
            n
        })
    });
    // The floor: the same predicate hand-written against the BTreeMap, no selector engine.
    group.bench_function("handwritten_btreemap", |b| {
        b.iter(|| {
            let mut n = 0;
            for labels in &btree {
                let labels = black_box(labels);
                let hit = labels.get("app").is_some_and(|v| v == "web")
                    && labels.get("tier").is_some_and(|v| v == "a" || v == "b")
                    && labels.contains_key("env");
                n += usize::from(hit);
            }
            n
        })
    });
    group.bench_function("std_hashmap", |b| {
        b.iter(|| {
            let mut n = 0;
            for labels in &hash {
                n += usize::from(black_box(&selector).matches_with(black_box(labels)));
            }
            n
        })
    });
    group.bench_function("label_map", |b| {
        b.iter(|| {
            let mut n = 0;
            for labels in &map {
                n += usize::from(black_box(&selector).matches_with(black_box(labels)));
            }
            n
        })
    });
    group.bench_function("overlay_label_maps", |b| {
        b.iter(|| {
            let mut n = 0;
            for (own, inherited) in own.iter().zip(&inherited) {
                let labels = Overlay { own, inherited };
                n += usize::from(black_box(&selector).matches_with(black_box(&labels)));
            }
            n
        })
    });
    group.finish();

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("three_terms", |b| {
        b.iter(|| Selector::parse(black_box(SELECTOR)))
    });
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);

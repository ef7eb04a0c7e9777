//! Incremental index cost: 10,000 label sets and 1,000 selectors registered, then the time to
//! apply one change (an item's label, a selector, a namespace's labels) and compute its events.
//!
//! Run: `cargo bench -p tortie-selector --bench index`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tortie_selector::index::{MatchEvent, SelectorIndex};
use tortie_selector::{LabelMap, Selector};

const ITEMS: u32 = 10_000;
const SELECTORS: u32 = 1_000;
const NAMESPACES: u32 = 100;

fn selector_text(i: u32) -> String {
    match i % 10 {
        0..=5 => format!("app == 'app-{}' && tier in {{'t1', 't2'}}", i % 200),
        6 => format!("has(feature-{}) && env == 'prod'", i % 50),
        7 => format!(
            "k8s-app in {{'dns-{}', 'proxy-{}', 'metrics'}}",
            i % 30,
            i % 30
        ),
        8 => format!("pcns.team == 'team-{}' && role != 'batch'", i % 20),
        _ => format!("!has(quarantine) && version starts with 'v{}'", i % 4),
    }
}

fn item_labels(i: u32, app: u32) -> LabelMap {
    let mut labels = LabelMap::new();
    labels.insert("app", &format!("app-{app}"));
    labels.insert("tier", &format!("t{}", i % 5));
    labels.insert("env", if i.is_multiple_of(3) { "dev" } else { "prod" });
    labels.insert(
        "projectcalico.org/namespace",
        &format!("ns-{}", i % NAMESPACES),
    );
    labels.insert("pod-template-hash", &format!("{:x}", i * 7919));
    labels.insert("version", &format!("v{}.{}", i % 5, i % 7));
    labels.insert(&format!("feature-{}", i % 50), "on");
    labels.insert(
        "role",
        if i.is_multiple_of(4) {
            "batch"
        } else {
            "serve"
        },
    );
    if i.is_multiple_of(10) {
        labels.insert("k8s-app", &format!("dns-{}", i % 30));
    }
    labels
}

fn namespace_labels(ns: u32, team: u32) -> LabelMap {
    let mut labels = LabelMap::new();
    labels.insert("pcns.team", &format!("team-{team}"));
    labels.insert("pcns.kubernetes.io/metadata.name", &format!("ns-{ns}"));
    labels
}

fn build() -> SelectorIndex<u32, u32, u32> {
    let mut index = SelectorIndex::new();
    let mut events = Vec::new();
    for ns in 0..NAMESPACES {
        index.update_parent(ns, namespace_labels(ns, ns % 20), &mut events);
    }
    for i in 0..ITEMS {
        index.update_item(
            i,
            item_labels(i, i % 200),
            vec![i % NAMESPACES],
            &mut events,
        );
    }
    for s in 0..SELECTORS {
        let selector = Selector::parse(&selector_text(s)).expect("bench selector parses");
        index.update_selector(s, selector, &mut events);
    }
    assert!(
        events.len() > 10_000,
        "the workload matches: {} events",
        events.len()
    );
    index
}

fn bench(c: &mut Criterion) {
    let mut index = build();
    let mut events: Vec<MatchEvent<u32, u32>> = Vec::new();
    let mut group = c.benchmark_group("index_10k_items_1k_selectors");

    // Flip one endpoint's `app` label back and forth: each iteration is one update.
    let item = 1234;
    let labels = [item_labels(item, 34), item_labels(item, 35)];
    let mut flip = 0;
    group.bench_function("item_label_change", |b| {
        b.iter(|| {
            flip ^= 1;
            events.clear();
            index.update_item(
                item,
                labels[flip].clone(),
                vec![item % NAMESPACES],
                &mut events,
            );
            black_box(events.len())
        })
    });

    let selectors = [
        Selector::parse(&selector_text(17)).expect("parses"),
        Selector::parse("app == 'app-18' && tier in {'t1', 't2', 't3'}").expect("parses"),
    ];
    group.bench_function("selector_change", |b| {
        b.iter(|| {
            flip ^= 1;
            events.clear();
            index.update_selector(17, selectors[flip].clone(), &mut events);
            black_box(events.len())
        })
    });

    // A namespace relabel re-evaluates its 100 endpoints.
    let namespaces = [namespace_labels(7, 7), namespace_labels(7, 8)];
    group.sample_size(20);
    group.bench_function("namespace_label_change_100_children", |b| {
        b.iter(|| {
            flip ^= 1;
            events.clear();
            index.update_parent(7, namespaces[flip].clone(), &mut events);
            black_box(events.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

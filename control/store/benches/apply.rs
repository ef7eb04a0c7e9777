//! Bulk apply and list throughput, on SQLite and on a throwaway etcd on loopback (Debian
//! `etcd-server`, started through `tortie-testkit`).
//!
//! - `apply_10k/<backend>`: parse one 10,000-policy YAML file and `apply_all` it into an empty
//!   store (checks, then one transaction; on etcd, chunks of 128 with rollback on failure).
//! - `list_100k/<backend>`: list 100,000 stored NetworkPolicies, decoded to typed resources.
//!
//! Run: `cargo bench -p tortie-store --bench apply` (add `-- --quick` for a short run).
//! Sizes can be lowered for a smoke run with `TORTIE_BENCH_APPLY=1000 TORTIE_BENCH_LIST=10000`.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tortie_datastore::{Datastore, DatastoreConfig, TxnOp, keys, open};
use tortie_model::{Kind, parse_documents};
use tortie_store::{Scope, Store};
use tortie_testkit::etcd::EtcdServer;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One YAML file of `n` NetworkPolicies spread over 10 namespaces.
fn policy_file(n: usize) -> String {
    let mut text = String::with_capacity(n * 400);
    for i in 0..n {
        text.push_str(&format!(
            "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: policy-{i}\n  namespace: ns-{}\n  labels:\n    team: t{}\nspec:\n  order: {}\n  selector: app == \"app-{}\"\n  types: [Ingress]\n  ingress:\n    - action: Allow\n      protocol: TCP\n      source:\n        selector: role == \"client\"\n        nets: [198.18.{}.0/24]\n      destination:\n        ports: [80, 443, \"8000:8100\"]\n",
            i % 10,
            i % 7,
            i % 1000,
            i % 50,
            i % 256
        ));
    }
    text
}

/// Deletes every key under `/calico/` (between etcd iterations; SQLite gets a fresh file).
fn wipe(ds: &dyn Datastore) {
    let kvs = ds.list("/calico/").expect("list").kvs;
    let ops: Vec<TxnOp> = kvs
        .into_iter()
        .map(|kv| TxnOp::Delete {
            key: kv.key,
            condition: tortie_datastore::Condition::Any,
        })
        .collect();
    let max = ds.max_txn_ops().unwrap_or(usize::MAX);
    for chunk in ops.chunks(max) {
        ds.txn(chunk).expect("wipe");
    }
}

/// Stores `n` policies quickly (raw puts of valid documents, in large transactions).
fn fill(ds: &dyn Datastore, n: usize) {
    let resources = parse_documents(&policy_file(1), "seed.yaml").expect("seed");
    let template = serde_json::to_value(&resources[0]).expect("json");
    let max = ds.max_txn_ops().unwrap_or(10_000).min(10_000);
    let mut ops = Vec::with_capacity(max);
    for i in 0..n {
        let mut value = template.clone();
        value["metadata"]["name"] = format!("policy-{i}").into();
        value["metadata"]["namespace"] = format!("ns-{}", i % 10).into();
        let key = keys::resource_key(
            "networkpolicies",
            Some(&format!("ns-{}", i % 10)),
            &format!("policy-{i}"),
        )
        .expect("key");
        ops.push(TxnOp::Put {
            key,
            value: serde_json::to_vec(&value).expect("encode"),
            condition: tortie_datastore::Condition::Any,
        });
        if ops.len() == max {
            ds.txn(&ops).expect("fill");
            ops.clear();
        }
    }
    if !ops.is_empty() {
        ds.txn(&ops).expect("fill");
    }
}

fn bench(c: &mut Criterion) {
    let apply_n = size("TORTIE_BENCH_APPLY", 10_000);
    let list_n = size("TORTIE_BENCH_LIST", 100_000);
    let file = policy_file(apply_n);

    let mut apply = c.benchmark_group("apply_10k");
    apply
        .sample_size(10)
        .throughput(Throughput::Elements(apply_n as u64));
    apply.measurement_time(Duration::from_secs(20));
    apply.bench_function("sqlite", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let ds = open(&DatastoreConfig::sqlite(dir.path().join("b.db"))).expect("open");
                (dir, ds)
            },
            |(dir, ds)| {
                let resources = parse_documents(&file, "policies.yaml").expect("parse");
                let outcome = Store::new(ds.as_ref()).apply_all(resources).expect("apply");
                assert_eq!(outcome.created, apply_n);
                // Returned, so closing the store and removing the file are not timed.
                (dir, ds)
            },
            BatchSize::PerIteration,
        )
    });
    // etcd (Debian etcd-server) with room for 100,000 policies; a missing binary fails the
    // bench, naming the package.
    let etcd = EtcdServer::start_with_flags(&["--quota-backend-bytes", "8589934592"]);
    {
        let ds = open(&DatastoreConfig::etcd([etcd.endpoint.clone()])).expect("etcd");
        apply.bench_function("etcd", |b| {
            b.iter_batched(
                || wipe(ds.as_ref()),
                |()| {
                    let resources = parse_documents(&file, "policies.yaml").expect("parse");
                    let outcome = Store::new(ds.as_ref()).apply_all(resources).expect("apply");
                    assert_eq!(outcome.created, apply_n);
                },
                BatchSize::PerIteration,
            )
        });
    }
    apply.finish();

    let mut list = c.benchmark_group("list_100k");
    list.sample_size(10)
        .throughput(Throughput::Elements(list_n as u64));
    list.measurement_time(Duration::from_secs(20));
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = open(&DatastoreConfig::sqlite(dir.path().join("l.db"))).expect("open");
    fill(sqlite.as_ref(), list_n);
    list.bench_function("sqlite", |b| {
        b.iter(|| {
            let listing = Store::new(sqlite.as_ref())
                .list(Kind::NetworkPolicy, Scope::AllNamespaces)
                .expect("list");
            assert_eq!(listing.items.len(), list_n);
        })
    });
    {
        let ds = open(&DatastoreConfig::etcd([etcd.endpoint.clone()])).expect("etcd");
        wipe(ds.as_ref());
        fill(ds.as_ref(), list_n);
        list.bench_function("etcd", |b| {
            b.iter(|| {
                let listing = Store::new(ds.as_ref())
                    .list(Kind::NetworkPolicy, Scope::AllNamespaces)
                    .expect("list");
                assert_eq!(listing.items.len(), list_n);
            })
        });
    }
    list.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Bulk apply and large lists on both backends.
//!
//! - `apply_10k`: 10,000 resources of about 1 KiB of JSON. SQLite: one transaction (its bulk
//!   path, no op limit). etcd: transactions of 128 operations (`txn_chunked`).
//! - `list_100k`: one consistent list of 100,000 such resources.
//! - `cas_update_1`: one compare-and-swap update of one resource, durably committed: the
//!   latency a CNI plugin's IPAM write sees.
//! - `sqlite_watch/other_connection_commit_to_event`: from the return of a put through one
//!   `SqliteStore` to the event reaching a caught-up watcher of another `SqliteStore` on the
//!   same file (each has its own notifier, so this is the path another process's commit
//!   takes: inotify on the `-wal` file, then `PRAGMA data_version`), with the watcher idle
//!   for 5 ms before each put.
//!
//! etcd is Debian's `etcd-server`, started on loopback for the run (`tortie-testkit`).
//! Run: `cargo bench -p tortie-datastore --bench datastore -- --warm-up-time 1 --measurement-time 5`

use tortie_testkit::etcd;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tortie_datastore::{
    Condition, Datastore, DatastoreConfig, SqliteStore, TxnOp, open, txn_chunked,
};

const APPLY: usize = 10_000;
const LIST: usize = 100_000;

/// A NetworkPolicy-shaped JSON document of about 1 KiB.
fn resource(name: &str) -> Vec<u8> {
    let mut doc = format!(
        r#"{{"apiVersion":"projectcalico.org/v3","kind":"NetworkPolicy","metadata":{{"name":"{name}","namespace":"bench","labels":{{"app":"web","tier":"frontend"}}}},"spec":{{"order":100,"selector":"app == 'web'","types":["Ingress","Egress"],"ingress":[{{"action":"Allow","protocol":"TCP","source":{{"selector":"role == 'lb'"}},"destination":{{"ports":[80,443]}}}}],"egress":[{{"action":"Allow","protocol":"UDP","destination":{{"ports":[53]}}}}]}},"annotations":{{"note":""#
    );
    while doc.len() < 1000 {
        doc.push('x');
    }
    doc.push_str("\"}}");
    doc.into_bytes()
}

fn ops(prefix: &str, count: usize) -> Vec<TxnOp> {
    (0..count)
        .map(|i| {
            let key = format!("{prefix}/{i:06}");
            let value = resource(&format!("policy-{i}"));
            TxnOp::Put {
                key,
                value,
                condition: Condition::Any,
            }
        })
        .collect()
}

fn bench_backend(c: &mut Criterion, name: &str, store: &Arc<dyn Datastore>) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);

    let mut round = 0usize;
    group.throughput(Throughput::Elements(APPLY as u64));
    group.bench_function("apply_10k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let batch = ops(&format!("/bench/apply/{round}"), APPLY);
                let started = Instant::now();
                black_box(txn_chunked(store.as_ref(), &batch).unwrap());
                total += started.elapsed();
            }
            total
        });
    });

    let key = "/bench/cas/counter";
    let mut current = store.put(key, &resource("counter")).unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("cas_update_1", |b| {
        b.iter(|| {
            current = store
                .update(key, &current.value, current.mod_revision)
                .unwrap();
        });
    });

    for chunk in ops("/bench/list", LIST).chunks(APPLY) {
        txn_chunked(store.as_ref(), chunk).unwrap();
    }
    group.throughput(Throughput::Elements(LIST as u64));
    group.bench_function("list_100k", |b| {
        b.iter(|| {
            let snapshot = store.list("/bench/list/").unwrap();
            assert_eq!(snapshot.kvs.len(), LIST);
            black_box(snapshot)
        });
    });
    group.finish();
}

fn bench_sqlite_watch(c: &mut Criterion, path: &std::path::Path) {
    let watching = SqliteStore::open(path).unwrap();
    let writing = SqliteStore::open(path).unwrap();
    let mut watcher = watching.watch("/bench/watch/", 0).unwrap();
    let mut group = c.benchmark_group("sqlite_watch");
    group.sample_size(20).sampling_mode(SamplingMode::Flat);
    let mut round = 0u64;
    group.bench_function("other_connection_commit_to_event", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                // The watcher goes back to waiting.
                std::thread::sleep(Duration::from_millis(5));
                writing
                    .put("/bench/watch/k", round.to_string().as_bytes())
                    .unwrap();
                let committed = Instant::now();
                let event = watcher.recv_timeout(Duration::from_secs(5)).unwrap();
                total += committed.elapsed();
                assert!(event.is_some(), "the watcher saw the put");
            }
            total
        });
    });
    group.finish();
}

fn datastore(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    bench_sqlite_watch(c, &dir.path().join("watch.db"));
    let sqlite = open(&DatastoreConfig::sqlite(dir.path().join("bench.db"))).unwrap();
    bench_backend(c, "sqlite", &sqlite);
    drop(sqlite);

    let server = etcd::EtcdServer::start();
    let etcd = open(&DatastoreConfig::etcd([server.endpoint.clone()])).unwrap();
    bench_backend(c, "etcd", &etcd);
}

criterion_group!(benches, datastore);
criterion_main!(benches);

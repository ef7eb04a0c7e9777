//! The store against the real SQLite backend, plus chunking and rollback through a wrapper
//! that caps transaction size.

mod common;

use std::sync::Arc;

use common::{Capped, policy_yaml, resources, sqlite, suite};
use tortie_model::Kind;
use tortie_store::{Scope, Store, StoreError, TxnPolicy};

#[test]
fn create_get_list() {
    let (_dir, ds) = sqlite();
    suite::create_get_list(ds.as_ref());
}

#[test]
fn update_and_cas() {
    let (_dir, ds) = sqlite();
    suite::update_and_cas(ds.as_ref());
}

#[test]
fn batch_all_or_nothing() {
    let (_dir, ds) = sqlite();
    suite::batch_all_or_nothing(ds.as_ref());
}

#[test]
fn immutable_fields() {
    let (_dir, ds) = sqlite();
    suite::immutable_fields(ds.as_ref());
}

#[test]
fn deletes() {
    let (_dir, ds) = sqlite();
    suite::deletes(ds.as_ref());
}

#[test]
fn patches() {
    let (_dir, ds) = sqlite();
    suite::patches(ds.as_ref());
}

#[test]
fn migrate_sqlite_to_sqlite() {
    let (_a, from) = sqlite();
    let (_b, to) = sqlite();
    suite::migrate_round_trip(from.as_ref(), to.as_ref());
}

fn batch(n: usize) -> Vec<tortie_model::Resource> {
    let text: Vec<String> = (0..n)
        .map(|i| policy_yaml("bulk", &format!("p{i}"), 1))
        .collect();
    resources(&text.join("---\n"))
}

fn keys(ds: &dyn tortie_datastore::Datastore) -> Vec<(String, Vec<u8>)> {
    ds.list("/calico/")
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect()
}

#[test]
fn oversized_batch_is_refused_under_refuse_policy() {
    let (_dir, inner) = sqlite();
    let capped = Capped::new(Arc::clone(&inner), 4, None);
    let store = Store::new(&capped).with_txn_policy(TxnPolicy::Refuse);
    let err = store.apply_all(batch(5)).unwrap_err();
    assert!(
        matches!(err, StoreError::TooLargeForOneTxn { ops: 5, max: 4 }),
        "{err}"
    );
    assert!(err.to_string().contains("4 operations"));
    assert!(keys(inner.as_ref()).is_empty());
    store.apply_all(batch(4)).unwrap();
}

#[test]
fn chunked_batch_commits_in_chunks() {
    let (_dir, inner) = sqlite();
    let capped = Capped::new(Arc::clone(&inner), 4, None);
    let store = Store::new(&capped);
    let outcome = store.apply_all(batch(10)).unwrap();
    assert_eq!(outcome.transactions, 3);
    assert_eq!(
        store
            .list(Kind::NetworkPolicy, Scope::AllNamespaces)
            .unwrap()
            .items
            .len(),
        10
    );
}

#[test]
fn failed_chunk_rolls_back_earlier_chunks() {
    let (_dir, inner) = sqlite();
    // Some existing state the batch updates: p0..p3 exist with order 1.
    Store::new(inner.as_ref()).apply_all(batch(4)).unwrap();
    let before = keys(inner.as_ref());
    // The batch updates p0..p3 and creates p4..p9, in chunks of 4; the third txn fails.
    let updated: Vec<_> = (0..10)
        .map(|i| policy_yaml("bulk", &format!("p{i}"), 7))
        .collect();
    let capped = Capped::new(Arc::clone(&inner), 4, Some(3));
    let err = Store::new(&capped)
        .apply_all(resources(&updated.join("---\n")))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::ChunkFailed {
                chunk: 3,
                chunks: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        keys(inner.as_ref()),
        before,
        "values restored, creations undone"
    );
}

//! The same behaviour against a real etcd (Debian `etcd-server`), started on free loopback
//! ports for each test and killed by PID afterwards. A missing etcd binary fails the tests,
//! naming the Debian package.

mod common;

use common::{Etcd, policy_yaml, resources, sqlite, suite};
use tortie_model::Kind;
use tortie_store::{Scope, Store, StoreError, TxnPolicy};

fn etcd() -> Option<Etcd> {
    let etcd = Etcd::start();
    if etcd.is_none() {
        eprintln!("etcd is not installed (Debian package etcd-server): skipping");
    }
    etcd
}

#[test]
fn core_behaviour() {
    let Some(etcd) = etcd() else { return };
    let ds = etcd.open();
    suite::create_get_list(ds.as_ref());
    suite::update_and_cas(ds.as_ref());
    suite::batch_all_or_nothing(ds.as_ref());
    suite::immutable_fields(ds.as_ref());
    suite::deletes(ds.as_ref());
    suite::patches(ds.as_ref());
}

#[test]
fn large_batches_chunk_or_are_refused() {
    let Some(etcd) = etcd() else { return };
    let ds = etcd.open();
    let max = ds.max_txn_ops().expect("etcd limits transactions");
    let text: Vec<String> = (0..max + 20)
        .map(|i| policy_yaml("bulk", &format!("p{i}"), 1))
        .collect();
    let batch = resources(&text.join("---\n"));
    let refuse = Store::new(ds.as_ref()).with_txn_policy(TxnPolicy::Refuse);
    let err = refuse.apply_all(batch.clone()).unwrap_err();
    assert!(matches!(err, StoreError::TooLargeForOneTxn { .. }), "{err}");
    assert!(ds.list("/calico/").unwrap().kvs.is_empty());
    let outcome = Store::new(ds.as_ref()).apply_all(batch).unwrap();
    assert_eq!(outcome.transactions, 2);
    let listed = Store::new(ds.as_ref())
        .list(Kind::NetworkPolicy, Scope::AllNamespaces)
        .unwrap();
    assert_eq!(listed.items.len(), max + 20);
}

#[test]
fn migrate_sqlite_to_etcd_and_back() {
    let Some(etcd) = etcd() else { return };
    let (_a, first) = sqlite();
    let (_b, last) = sqlite();
    let middle = etcd.open();
    suite::migrate_round_trip(first.as_ref(), middle.as_ref());
    let export = tortie_store::migrate::export(&Store::new(middle.as_ref())).unwrap();
    tortie_store::migrate::import(&Store::new(last.as_ref()), &export).unwrap();
    let again = tortie_store::migrate::export(&Store::new(last.as_ref())).unwrap();
    assert_eq!(again.resources, export.resources);
    assert_eq!(again.ipam, export.ipam);
}

//! Behaviour every backend must show; run by `sqlite.rs` and `etcd.rs`.

use tortie_datastore::{Datastore, keys};
use tortie_model::Kind;
use tortie_store::{Patch, ResourceId, Scope, Store, StoreError, WriteMode};

use super::{policy_yaml, pool_yaml, resource, resources};

fn all_keys(ds: &dyn Datastore) -> Vec<(String, i64)> {
    ds.list("/calico/")
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.mod_revision))
        .collect()
}

/// Create sets uid, creationTimestamp and resourceVersion; the key is Calico's.
pub fn create_get_list(ds: &dyn Datastore) {
    let store = Store::new(ds);
    let created = store
        .create(resource(&policy_yaml("prod", "web", 10)))
        .unwrap();
    let meta = created.metadata();
    assert_eq!(meta.uid.len(), 36);
    assert!(meta.creation_timestamp.as_deref().unwrap().ends_with('Z'));
    let key = "/calico/resources/v3/projectcalico.org/networkpolicies/prod/web";
    let kv = ds.get(key).unwrap().expect("stored under Calico's key");
    assert_eq!(meta.resource_version, kv.mod_revision.to_string());
    let stored: serde_json::Value = serde_json::from_slice(&kv.value).unwrap();
    assert!(stored["metadata"].get("resourceVersion").is_none());
    assert_eq!(stored["kind"], "NetworkPolicy");

    let id = ResourceId::new(Kind::NetworkPolicy, Some("prod"), "web");
    assert_eq!(store.get(&id).unwrap(), created);
    store
        .create(resource(&policy_yaml("dev", "web", 10)))
        .unwrap();
    let prod = store
        .list(Kind::NetworkPolicy, Scope::Namespace("prod"))
        .unwrap();
    assert_eq!(prod.items.len(), 1);
    let all = store
        .list(Kind::NetworkPolicy, Scope::AllNamespaces)
        .unwrap();
    assert_eq!(all.items.len(), 2);
    assert!(all.revision >= kv.mod_revision);

    assert!(matches!(
        store.create(resource(&policy_yaml("prod", "web", 10))),
        Err(StoreError::AlreadyExists(_))
    ));
    let missing = ResourceId::new(Kind::NetworkPolicy, Some("prod"), "nope");
    assert!(matches!(store.get(&missing), Err(StoreError::NotFound(_))));
}

/// Update keeps uid and creationTimestamp, bumps resourceVersion, and honours a given
/// resourceVersion as compare-and-swap.
pub fn update_and_cas(ds: &dyn Datastore) {
    let store = Store::new(ds);
    let first = store
        .apply(resource(&policy_yaml("prod", "api", 10)))
        .unwrap();
    let second = store
        .apply(resource(&policy_yaml("prod", "api", 20)))
        .unwrap();
    assert_eq!(first.metadata().uid, second.metadata().uid);
    assert_eq!(
        first.metadata().creation_timestamp,
        second.metadata().creation_timestamp
    );
    assert_ne!(
        first.metadata().resource_version,
        second.metadata().resource_version
    );

    // A stale version is refused and nothing changes.
    let mut stale = resource(&policy_yaml("prod", "api", 30));
    stale.metadata_mut().resource_version = first.metadata().resource_version.clone();
    let before = all_keys(ds);
    assert!(matches!(
        store.replace(stale),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(all_keys(ds), before);

    // The current version is accepted.
    let mut fresh = resource(&policy_yaml("prod", "api", 30));
    fresh.metadata_mut().resource_version = second.metadata().resource_version.clone();
    store.replace(fresh).unwrap();

    let mut garbage = resource(&policy_yaml("prod", "api", 30));
    garbage.metadata_mut().resource_version = "abc".into();
    assert!(matches!(
        store.replace(garbage),
        Err(StoreError::BadResourceVersion { .. })
    ));
    assert!(matches!(
        store.replace(resource(&policy_yaml("prod", "absent", 1))),
        Err(StoreError::NotFound(_))
    ));
}

/// A batch with one bad member writes nothing, and the error names the member.
pub fn batch_all_or_nothing(ds: &dyn Datastore) {
    let store = Store::new(ds);
    store
        .create(resource(&pool_yaml("stored", "10.1.0.0/16")))
        .unwrap();
    let before = all_keys(ds);

    // Member 2 overlaps the stored pool.
    let batch = resources(&format!(
        "{}---\n{}---\n{}",
        policy_yaml("prod", "a", 1),
        pool_yaml("new", "10.2.0.0/16"),
        pool_yaml("clash", "10.1.128.0/17")
    ));
    let err = store.apply_all(batch).unwrap_err();
    assert_eq!(err.batch_index(), Some(2), "{err}");
    assert!(err.to_string().contains("clash"), "{err}");
    assert_eq!(all_keys(ds), before, "nothing written");

    // Two members overlapping each other.
    let batch = resources(&format!(
        "{}---\n{}",
        pool_yaml("x", "10.3.0.0/16"),
        pool_yaml("y", "10.3.1.0/24")
    ));
    assert!(store.apply_all(batch).is_err());
    assert_eq!(all_keys(ds), before);

    // The same resource twice.
    let mut batch = resources(&policy_yaml("prod", "twice", 1));
    batch.extend(resources(&policy_yaml("prod", "twice", 2)));
    let err = store.apply_all(batch).unwrap_err();
    assert_eq!(err.batch_index(), Some(1));
    assert!(
        matches!(err.innermost(), StoreError::Duplicate { first: 1, .. }),
        "{err}"
    );
    assert_eq!(all_keys(ds), before);

    // Create of an existing member.
    let batch = resources(&format!(
        "{}---\n{}",
        policy_yaml("prod", "b", 1),
        pool_yaml("stored", "10.1.0.0/16")
    ));
    let err = store.write_all(batch, WriteMode::Create).unwrap_err();
    assert_eq!(err.batch_index(), Some(1));
    assert_eq!(all_keys(ds), before);

    // And a good batch commits in one transaction, all at one revision.
    let batch = resources(&format!(
        "{}---\n{}---\n{}",
        policy_yaml("prod", "a", 1),
        policy_yaml("prod", "b", 1),
        pool_yaml("new", "10.2.0.0/16")
    ));
    let outcome = store.apply_all(batch).unwrap();
    assert_eq!(
        (outcome.created, outcome.replaced, outcome.transactions),
        (3, 0, 1)
    );
    let versions: Vec<String> = outcome
        .results
        .iter()
        .map(|r| r.as_ref().unwrap().metadata().resource_version.clone())
        .collect();
    assert!(versions.iter().all(|v| *v == versions[0]));
}

/// Changing an immutable field is refused with its field path.
pub fn immutable_fields(ds: &dyn Datastore) {
    let store = Store::new(ds);
    store
        .create(resource(&pool_yaml("pool", "10.9.0.0/16")))
        .unwrap();
    let before = all_keys(ds);
    let err = store
        .apply(resource(&pool_yaml("pool", "10.8.0.0/16")))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("spec.cidr"), "{text}");
    assert_eq!(all_keys(ds), before);
}

/// Deletes: absent is an error (unless skipped), batches are all or nothing.
pub fn deletes(ds: &dyn Datastore) {
    let store = Store::new(ds);
    store
        .create(resource(&policy_yaml("prod", "d1", 1)))
        .unwrap();
    store
        .create(resource(&policy_yaml("prod", "d2", 1)))
        .unwrap();
    let d1 = ResourceId::new(Kind::NetworkPolicy, Some("prod"), "d1");
    let d2 = ResourceId::new(Kind::NetworkPolicy, Some("prod"), "d2");
    let absent = ResourceId::new(Kind::NetworkPolicy, Some("prod"), "absent");
    let before = all_keys(ds);
    let err = store
        .delete_all(&[(d1.clone(), None), (absent.clone(), None)], false)
        .unwrap_err();
    assert_eq!(err.batch_index(), Some(1));
    assert!(matches!(err.innermost(), StoreError::NotFound(_)));
    assert_eq!(all_keys(ds), before);
    let outcome = store
        .delete_all(&[(d1.clone(), None), (absent, None)], true)
        .unwrap();
    assert!(outcome.deleted[0].is_some() && outcome.deleted[1].is_none());
    assert!(matches!(
        store.delete(&d1, None),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete(&d2, Some("1")),
        Err(StoreError::Conflict { .. })
    ));
    store.delete(&d2, None).unwrap();
    assert!(ds.get(&d2.key().unwrap()).unwrap().is_none());
}

/// Merge and JSON patches, and their refusals.
pub fn patches(ds: &dyn Datastore) {
    let store = Store::new(ds);
    store
        .create(resource(&pool_yaml("p", "10.20.0.0/16")))
        .unwrap();
    let id = ResourceId::new(Kind::IpPool, None, "p");
    let patched = store
        .patch(&id, &Patch::Merge(serde_json::json!({"spec": {"natOutgoing": true}, "metadata": {"labels": {"a": "b"}}})))
        .unwrap();
    let value = serde_json::to_value(&patched).unwrap();
    assert_eq!(value["spec"]["natOutgoing"], true);
    assert_eq!(value["metadata"]["labels"]["a"], "b");
    let patched = store
        .patch(
            &id,
            &Patch::Json(serde_json::json!([{"op": "remove", "path": "/metadata/labels/a"}])),
        )
        .unwrap();
    assert!(patched.metadata().labels.is_empty());
    let before = all_keys(ds);
    let renamed = store.patch(
        &id,
        &Patch::Merge(serde_json::json!({"metadata": {"name": "q"}})),
    );
    assert!(matches!(renamed, Err(StoreError::Patch { .. })));
    let immutable = store.patch(
        &id,
        &Patch::Merge(serde_json::json!({"spec": {"cidr": "10.21.0.0/16"}})),
    );
    assert!(immutable.unwrap_err().to_string().contains("spec.cidr"));
    let bad_field = store.patch(
        &id,
        &Patch::Merge(serde_json::json!({"spec": {"natOutgoin": true}})),
    );
    assert!(bad_field.unwrap_err().to_string().contains("natOutgoin"));
    assert_eq!(all_keys(ds), before);
}

/// Export then import into an empty store reproduces every resource and IPAM record.
pub fn migrate_round_trip(from: &dyn Datastore, to: &dyn Datastore) {
    let source = Store::new(from);
    source
        .apply_all(resources(&format!(
            "{}---\n{}---\n{}",
            policy_yaml("prod", "m1", 1),
            policy_yaml("dev", "m2", 2),
            pool_yaml("mp", "10.30.0.0/16")
        )))
        .unwrap();
    let block = keys::ipam_block_key("10.30.0.0/26").unwrap();
    from.create(&block, br#"{"cidr":"10.30.0.0/26","allocations":[null]}"#)
        .unwrap();
    let export = tortie_store::migrate::export(&source).unwrap();
    assert_eq!(export.ipam.len(), 1);
    let target = Store::new(to);
    let written = tortie_store::migrate::import(&target, &export).unwrap();
    assert_eq!(written, export.resources.len() + 1);
    assert_eq!(
        to.get(&block).unwrap().unwrap().value,
        from.get(&block).unwrap().unwrap().value
    );
    for kind in [Kind::NetworkPolicy, Kind::IpPool] {
        let strip = |store: &Store<'_>| -> Vec<serde_json::Value> {
            store
                .list(kind, Scope::AllNamespaces)
                .unwrap()
                .items
                .into_iter()
                .map(|mut r| {
                    r.metadata_mut().resource_version.clear();
                    serde_json::to_value(&r).unwrap()
                })
                .collect()
        };
        assert_eq!(strip(&source), strip(&target), "{kind}");
    }
    // A second import into the now non-empty store is refused.
    assert!(tortie_store::migrate::import(&target, &export).is_err());
}

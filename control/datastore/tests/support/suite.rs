//! The conformance suite: one set of behaviours every backend must show, run against
//! `&dyn Datastore`. Each case works under its own key prefix; the compaction case runs last
//! because compaction is store-wide.

use std::time::Duration;

use tortie_datastore::{
    Condition, Datastore, DatastoreError, KeyValue, Revision, TxnOp, WatchEvent, Watcher,
    txn_chunked,
};

/// Longest wait for one watch event; generous for a loaded machine.
const EVENT_WAIT: Duration = Duration::from_secs(10);

type Case = fn(&dyn Datastore, &str);

const CASES: &[(&str, Case)] = &[
    (
        "create_get_and_already_exists",
        create_get_and_already_exists,
    ),
    ("compare_and_swap_conflicts", compare_and_swap_conflicts),
    (
        "delete_missing_and_conditional",
        delete_missing_and_conditional,
    ),
    ("txn_all_or_nothing", txn_all_or_nothing),
    ("txn_size_limit_and_chunking", txn_size_limit_and_chunking),
    (
        "list_is_a_snapshot_at_a_revision",
        list_is_a_snapshot_at_a_revision,
    ),
    ("prefixes_do_not_leak", prefixes_do_not_leak),
    (
        "watch_replays_history_in_order",
        watch_replays_history_in_order,
    ),
    ("watch_delivers_live_changes", watch_delivers_live_changes),
    (
        "compaction_makes_old_watches_fail",
        compaction_makes_old_watches_fail,
    ),
];

/// Runs every case, naming each on stderr so that a failure says which one.
pub fn run_conformance(store: &dyn Datastore) {
    for (name, case) in CASES {
        eprintln!("conformance case {name} on {}", store.describe());
        case(store, &format!("/conformance/{name}"));
    }
}

fn put(key: &str, value: &str, condition: Condition) -> TxnOp {
    TxnOp::Put {
        key: key.to_owned(),
        value: value.as_bytes().to_vec(),
        condition,
    }
}

fn next_event(watcher: &mut Watcher) -> WatchEvent {
    match watcher.recv_timeout(EVENT_WAIT) {
        Ok(Some(event)) => event,
        Ok(None) => panic!("no watch event within {EVENT_WAIT:?}"),
        Err(e) => panic!("watch failed: {e}"),
    }
}

fn create_get_and_already_exists(store: &dyn Datastore, p: &str) {
    let key = format!("{p}/k");
    assert_eq!(store.get(&key).unwrap(), None);
    let kv = store.create(&key, b"v1").unwrap();
    assert_eq!(kv.key, key);
    assert_eq!(kv.value, b"v1");
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert_eq!(kv.version, 1);
    assert_eq!(store.current_revision().unwrap(), kv.mod_revision);
    assert_eq!(store.get(&key).unwrap(), Some(kv.clone()));
    match store.create(&key, b"v2") {
        Err(DatastoreError::AlreadyExists {
            key: k,
            mod_revision,
            ..
        }) => {
            assert_eq!(k, key);
            assert_eq!(mod_revision, kv.mod_revision);
        }
        other => panic!("second create: expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        store.get(&key).unwrap().unwrap().value,
        b"v1",
        "a failed create wrote"
    );
    let replaced = store.put(&key, b"v3").unwrap();
    assert_eq!(
        (replaced.version, replaced.create_revision),
        (2, kv.create_revision)
    );
    assert_eq!(store.get(&key).unwrap(), Some(replaced));
}

fn compare_and_swap_conflicts(store: &dyn Datastore, p: &str) {
    let key = format!("{p}/counter");
    let v1 = store.create(&key, b"1").unwrap();
    let v2 = store.update(&key, b"2", v1.mod_revision).unwrap();
    assert!(v2.mod_revision > v1.mod_revision);
    assert_eq!(v2.create_revision, v1.create_revision);
    assert_eq!(v2.version, 2);
    assert_eq!(store.get(&key).unwrap(), Some(v2.clone()));
    match store.update(&key, b"stale", v1.mod_revision) {
        Err(DatastoreError::Conflict {
            key: k,
            expected,
            actual,
            ..
        }) => {
            assert_eq!(k, key);
            assert_eq!(expected, v1.mod_revision);
            assert_eq!(actual, v2.mod_revision);
        }
        other => panic!("stale update: expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.get(&key).unwrap().unwrap().value,
        b"2",
        "a failed CAS wrote"
    );
    match store.update(&format!("{p}/missing"), b"x", 1) {
        Err(DatastoreError::NotFound { key: k, .. }) => assert_eq!(k, format!("{p}/missing")),
        other => panic!("update of a missing key: expected NotFound, got {other:?}"),
    }
    let err = store.update(&key, b"x", 1).unwrap_err();
    assert!(err.is_conflict());
    assert!(err.to_string().contains(&key), "error names the key: {err}");
}

fn delete_missing_and_conditional(store: &dyn Datastore, p: &str) {
    let key = format!("{p}/k");
    assert!(matches!(
        store.delete(&key, None),
        Err(DatastoreError::NotFound { .. })
    ));
    let kv = store.create(&key, b"v").unwrap();
    match store.delete(&key, Some(kv.mod_revision - 1)) {
        Err(DatastoreError::Conflict { actual, .. }) => assert_eq!(actual, kv.mod_revision),
        other => panic!("delete at a stale revision: expected Conflict, got {other:?}"),
    }
    assert!(
        store.get(&key).unwrap().is_some(),
        "a failed delete deleted"
    );
    let deleted = store.delete(&key, Some(kv.mod_revision)).unwrap();
    assert_eq!(deleted, kv);
    assert_eq!(store.get(&key).unwrap(), None);
    assert!(store.current_revision().unwrap() > kv.mod_revision);
    let again = store.create(&key, b"w").unwrap();
    assert_eq!(again.version, 1, "version restarts after a delete");
    assert!(again.create_revision > kv.create_revision);
    assert!(matches!(store.delete(&key, None), Ok(k) if k == again));
}

fn txn_all_or_nothing(store: &dyn Datastore, p: &str) {
    let (a, b, c) = (format!("{p}/a"), format!("{p}/b"), format!("{p}/c"));
    let ka = store.create(&a, b"a1").unwrap();
    let kc = store.create(&c, b"c1").unwrap();
    let before = store.current_revision().unwrap();

    // One failing condition: nothing is written, the revision does not move.
    let failing = [
        put(&b, "b1", Condition::Absent),
        put(&a, "a2", Condition::ModRevision(ka.mod_revision - 1)),
    ];
    match store.txn(&failing) {
        Err(DatastoreError::Conflict { key, actual, .. }) => {
            assert_eq!(key, a);
            assert_eq!(actual, ka.mod_revision);
        }
        other => panic!("txn with a stale CAS: expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get(&b).unwrap(), None, "a failed txn created a key");
    assert_eq!(
        store.current_revision().unwrap(),
        before,
        "a failed txn moved the revision"
    );
    let exists = [
        put(&b, "b1", Condition::Any),
        put(&c, "c2", Condition::Absent),
    ];
    assert!(
        matches!(store.txn(&exists), Err(DatastoreError::AlreadyExists { key, .. }) if key == c)
    );
    assert_eq!(
        store.get(&b).unwrap(),
        None,
        "a failed txn wrote an unconditional put"
    );
    let missing = [TxnOp::Delete {
        key: format!("{p}/none"),
        condition: Condition::Exists,
    }];
    assert!(matches!(
        store.txn(&missing),
        Err(DatastoreError::NotFound { .. })
    ));

    // All conditions hold: everything lands at one revision.
    let ok = [
        put(&b, "b1", Condition::Absent),
        put(&a, "a2", Condition::ModRevision(ka.mod_revision)),
        TxnOp::Delete {
            key: c.clone(),
            condition: Condition::ModRevision(kc.mod_revision),
        },
        TxnOp::Delete {
            key: format!("{p}/absent"),
            condition: Condition::Any,
        },
    ];
    let outcome = store.txn(&ok).unwrap();
    assert_eq!(outcome.revision, before + 1);
    assert_eq!(
        outcome.prev_kvs,
        vec![None, Some(ka.clone()), Some(kc), None]
    );
    let b_now = store.get(&b).unwrap().unwrap();
    let a_now = store.get(&a).unwrap().unwrap();
    assert_eq!(
        (b_now.mod_revision, a_now.mod_revision),
        (outcome.revision, outcome.revision)
    );
    assert_eq!(a_now.version, 2);
    assert_eq!(store.get(&c).unwrap(), None);

    // Malformed and empty transactions.
    let dup = [put(&a, "x", Condition::Any), put(&a, "y", Condition::Any)];
    assert!(matches!(
        store.txn(&dup),
        Err(DatastoreError::InvalidTxn { index: 1, .. })
    ));
    let rev = store.current_revision().unwrap();
    assert_eq!(store.txn(&[]).unwrap().revision, rev);
    let noop = [TxnOp::Delete {
        key: format!("{p}/absent"),
        condition: Condition::Any,
    }];
    assert_eq!(
        store.txn(&noop).unwrap().revision,
        rev,
        "a no-op txn moved the revision"
    );
}

fn txn_size_limit_and_chunking(store: &dyn Datastore, p: &str) {
    let ops = |n: usize, tag: &str| -> Vec<TxnOp> {
        (0..n)
            .map(|i| put(&format!("{p}/{tag}/{i:04}"), "{}", Condition::Absent))
            .collect()
    };
    match store.max_txn_ops() {
        Some(max) => {
            let before = store.current_revision().unwrap();
            match store.txn(&ops(max + 1, "over")) {
                Err(DatastoreError::TxnTooLarge { ops, max: m }) => {
                    assert_eq!((ops, m), (max + 1, max))
                }
                other => panic!("oversized txn: expected TxnTooLarge, got {other:?}"),
            }
            assert_eq!(store.current_revision().unwrap(), before);
            assert!(store.list(&format!("{p}/over/")).unwrap().kvs.is_empty());
            store.txn(&ops(max, "exact")).unwrap();
            assert_eq!(store.list(&format!("{p}/exact/")).unwrap().kvs.len(), max);
        }
        None => {
            let outcome = store.txn(&ops(1000, "bulk")).unwrap();
            let listed = store.list(&format!("{p}/bulk/")).unwrap();
            assert_eq!(listed.kvs.len(), 1000);
            assert!(
                listed
                    .kvs
                    .iter()
                    .all(|kv| kv.mod_revision == outcome.revision)
            );
        }
    }
    let chunked = txn_chunked(store, &ops(300, "chunked")).unwrap();
    let expected_chunks = store.max_txn_ops().map_or(1, |max| 300_usize.div_ceil(max));
    assert_eq!(chunked.len(), expected_chunks);
    assert_eq!(store.list(&format!("{p}/chunked/")).unwrap().kvs.len(), 300);
}

fn list_is_a_snapshot_at_a_revision(store: &dyn Datastore, p: &str) {
    let keys: Vec<String> = ["d", "b", "e", "a", "c"]
        .iter()
        .map(|k| format!("{p}/{k}"))
        .collect();
    for key in &keys {
        store.create(key, key.as_bytes()).unwrap();
    }
    let snapshot = store.list(&format!("{p}/")).unwrap();
    assert_eq!(snapshot.revision, store.current_revision().unwrap());
    let listed: Vec<&str> = snapshot.kvs.iter().map(|kv| kv.key.as_str()).collect();
    let mut sorted: Vec<&str> = keys.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    assert_eq!(listed, sorted, "a list is sorted by key");
    assert!(
        snapshot
            .kvs
            .iter()
            .all(|kv| kv.mod_revision <= snapshot.revision)
    );
    // Changes after the snapshot are exactly those a watch from revision + 1 sees.
    let mut watcher = store
        .watch(&format!("{p}/"), snapshot.revision + 1)
        .unwrap();
    store.put(&keys[0], b"changed").unwrap();
    let event = next_event(&mut watcher);
    assert_eq!(event.key(), keys[0]);
    assert_eq!(event.revision(), snapshot.revision + 1);
    let all = store.list("").unwrap();
    assert!(
        all.kvs.iter().any(|kv| kv.key == keys[0]),
        "the empty prefix lists every key"
    );
    assert_eq!(all.revision, snapshot.revision + 1);
}

fn prefixes_do_not_leak(store: &dyn Datastore, p: &str) {
    let (ab, abx, abc) = (
        format!("{p}/a/b"),
        format!("{p}/a/b/x"),
        format!("{p}/a/bc"),
    );
    for key in [&ab, &abx, &abc] {
        store.create(key, b"v").unwrap();
    }
    let dir = store.list(&format!("{p}/a/b/")).unwrap();
    assert_eq!(
        dir.kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(),
        vec![abx.clone()]
    );
    let raw = store.list(&ab).unwrap();
    assert_eq!(
        raw.kvs.len(),
        3,
        "a prefix without '/' is a raw byte prefix"
    );
    assert!(store.list(&format!("{p}/a/bcd")).unwrap().kvs.is_empty());

    let mut watcher = store.watch(&format!("{p}/a/b/"), 0).unwrap();
    store.put(&abc, b"other").unwrap();
    store.put(&ab, b"other").unwrap();
    store.put(&abx, b"mine").unwrap();
    let event = next_event(&mut watcher);
    assert_eq!(event.key(), abx, "a watch saw a key outside its prefix");
    assert_eq!(
        watcher.recv_timeout(Duration::from_millis(200)).unwrap(),
        None
    );
}

fn watch_replays_history_in_order(store: &dyn Datastore, p: &str) {
    let (a, b) = (format!("{p}/a"), format!("{p}/b"));
    let start: Revision = store.current_revision().unwrap() + 1;
    let a1 = store.create(&a, b"a1").unwrap();
    let b1 = store.create(&b, b"b1").unwrap();
    let a2 = store.update(&a, b"a2", a1.mod_revision).unwrap();
    store.delete(&b, None).unwrap();
    let end = store.current_revision().unwrap();

    let mut watcher = store.watch(&format!("{p}/"), start).unwrap();
    let events: Vec<WatchEvent> = (0..4).map(|_| next_event(&mut watcher)).collect();
    assert_eq!(
        events[0],
        WatchEvent::Put {
            kv: a1.clone(),
            prev: None
        }
    );
    assert_eq!(
        events[1],
        WatchEvent::Put {
            kv: b1.clone(),
            prev: None
        }
    );
    assert_eq!(
        events[2],
        WatchEvent::Put {
            kv: a2,
            prev: Some(a1)
        }
    );
    assert_eq!(
        events[3],
        WatchEvent::Delete {
            key: b.clone(),
            revision: end,
            prev: Some(b1)
        }
    );
    assert!(events.windows(2).all(|w| w[0].revision() < w[1].revision()));
    assert_eq!(
        watcher.recv_timeout(Duration::from_millis(100)).unwrap(),
        None
    );

    // Starting in the middle replays only the rest.
    let mut later = store.watch(&format!("{p}/"), events[2].revision()).unwrap();
    assert_eq!(next_event(&mut later).revision(), events[2].revision());
    assert_eq!(next_event(&mut later).revision(), events[3].revision());
}

fn watch_delivers_live_changes(store: &dyn Datastore, p: &str) {
    let mut watcher = store.watch(&format!("{p}/"), 0).unwrap();
    assert_eq!(
        watcher.recv_timeout(Duration::from_millis(100)).unwrap(),
        None
    );
    let mut written: Vec<KeyValue> = Vec::new();
    for i in 0..20 {
        let kv = store
            .put(&format!("{p}/k{}", i % 3), format!("{i}").as_bytes())
            .unwrap();
        written.push(kv);
    }
    store.delete(&format!("{p}/k0"), None).unwrap();
    for kv in &written {
        match next_event(&mut watcher) {
            WatchEvent::Put { kv: got, .. } => assert_eq!(&got, kv),
            other => panic!("expected the put of {}, got {other:?}", kv.key),
        }
    }
    assert!(
        matches!(next_event(&mut watcher), WatchEvent::Delete { key, .. } if key == format!("{p}/k0"))
    );
    drop(watcher);
    // Writes after the watcher is gone must not block or fail.
    store.put(&format!("{p}/after"), b"x").unwrap();
}

fn compaction_makes_old_watches_fail(store: &dyn Datastore, p: &str) {
    let key = format!("{p}/k");
    let first = store.create(&key, b"1").unwrap();
    store.put(&key, b"2").unwrap();
    let compact_at = store.put(&key, b"3").unwrap().mod_revision;
    store.put(&key, b"4").unwrap();
    store.compact(compact_at).unwrap();

    match store.watch(&format!("{p}/"), first.mod_revision) {
        Err(DatastoreError::Compacted {
            compact_revision,
            requested,
            ..
        }) => {
            assert_eq!(requested, first.mod_revision);
            assert_eq!(compact_revision, compact_at);
        }
        other => panic!("watch from a compacted revision: expected Compacted, got {other:?}"),
    }
    // From the compaction point on, history is intact.
    let mut watcher = store.watch(&format!("{p}/"), compact_at).unwrap();
    let event = next_event(&mut watcher);
    assert_eq!((event.revision(), event.key()), (compact_at, key.as_str()));
    assert!(matches!(
        store.compact(compact_at),
        Err(DatastoreError::Compacted { .. })
    ));
    let current = store.current_revision().unwrap();
    assert!(matches!(
        store.compact(current + 10),
        Err(DatastoreError::FutureRevision { .. })
    ));
    // Compaction trims history, never live keys.
    assert_eq!(store.get(&key).unwrap().unwrap().value, b"4");
    assert!(store.list(&format!("{p}/")).unwrap().kvs.len() == 1);
}

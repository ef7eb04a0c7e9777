//! Property test: random operation sequences applied to the SQLite backend give the same
//! results, the same final state and the same watch history as a small in-memory model of
//! etcd's semantics written independently here.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use tortie_datastore::{
    Condition, Datastore, DatastoreError, KeyValue, Revision, SqliteStore, TxnOp, WatchEvent,
};

/// Keys chosen to overlap as prefixes (`/p/b`, `/p/bc`, `/p/b/x`).
const KEYS: &[&str] = &["/p/a", "/p/b", "/p/bc", "/p/b/x", "/q"];
const PREFIXES: &[&str] = &["", "/p/", "/p/b", "/p/b/", "/q", "/z"];

/// How an operation picks its expected revision: the key's real one, or a wrong one.
#[derive(Debug, Clone, Copy)]
enum RevChoice {
    Current,
    Off(i64),
}

#[derive(Debug, Clone)]
enum CondChoice {
    Any,
    Absent,
    Exists,
    Rev(RevChoice),
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize, u8),
    Update(usize, u8, RevChoice),
    Put(usize, u8),
    Delete(usize, Option<RevChoice>),
    Txn(Vec<(bool, usize, u8, CondChoice)>),
    Get(usize),
    List(usize),
}

fn rev_choice() -> impl Strategy<Value = RevChoice> {
    prop_oneof![3 => Just(RevChoice::Current), 1 => (-3i64..=3).prop_map(RevChoice::Off)]
}

fn cond_choice() -> impl Strategy<Value = CondChoice> {
    prop_oneof![
        Just(CondChoice::Any),
        Just(CondChoice::Absent),
        Just(CondChoice::Exists),
        rev_choice().prop_map(CondChoice::Rev),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::Create(k, v)),
        (key.clone(), any::<u8>(), rev_choice()).prop_map(|(k, v, r)| Op::Update(k, v, r)),
        (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        (key.clone(), proptest::option::of(rev_choice())).prop_map(|(k, r)| Op::Delete(k, r)),
        proptest::collection::vec(
            (any::<bool>(), key.clone(), any::<u8>(), cond_choice()),
            0..4
        )
        .prop_map(Op::Txn),
        key.clone().prop_map(Op::Get),
        (0..PREFIXES.len()).prop_map(Op::List),
    ]
}

/// The comparable part of a result.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Kv(Option<KeyValue>),
    List(Vec<KeyValue>, Revision),
    Txn(Revision, Vec<Option<KeyValue>>),
    NotFound(String),
    AlreadyExists(String, Revision),
    Conflict(String, Revision, Revision),
    InvalidTxn(usize),
}

fn from_error(error: DatastoreError) -> Outcome {
    match error {
        DatastoreError::NotFound { key, .. } => Outcome::NotFound(key),
        DatastoreError::AlreadyExists {
            key, mod_revision, ..
        } => Outcome::AlreadyExists(key, mod_revision),
        DatastoreError::Conflict {
            key,
            expected,
            actual,
            ..
        } => Outcome::Conflict(key, expected, actual),
        DatastoreError::InvalidTxn { index, .. } => Outcome::InvalidTxn(index),
        other => panic!("unexpected error from the store: {other}"),
    }
}

/// etcd's semantics, spelled out plainly.
#[derive(Default)]
struct Model {
    revision: Revision,
    kvs: BTreeMap<String, KeyValue>,
    events: Vec<WatchEvent>,
}

impl Model {
    fn new() -> Self {
        Model {
            revision: 1,
            ..Default::default()
        }
    }

    fn expected(&self, key: &str, choice: RevChoice) -> Revision {
        let base = self
            .kvs
            .get(key)
            .map_or(self.revision, |kv| kv.mod_revision);
        match choice {
            RevChoice::Current => base,
            RevChoice::Off(d) => base + d,
        }
    }

    fn condition(&self, key: &str, choice: &CondChoice) -> Condition {
        match choice {
            CondChoice::Any => Condition::Any,
            CondChoice::Absent => Condition::Absent,
            CondChoice::Exists => Condition::Exists,
            CondChoice::Rev(r) => Condition::ModRevision(self.expected(key, *r)),
        }
    }

    fn check(&self, key: &str, condition: Condition) -> Result<(), Outcome> {
        let current = self.kvs.get(key);
        match (condition, current) {
            (Condition::Absent, Some(kv)) => {
                Err(Outcome::AlreadyExists(key.into(), kv.mod_revision))
            }
            (Condition::Exists | Condition::ModRevision(_), None) => {
                Err(Outcome::NotFound(key.into()))
            }
            (Condition::ModRevision(r), Some(kv)) if kv.mod_revision != r => {
                Err(Outcome::Conflict(key.into(), r, kv.mod_revision))
            }
            _ => Ok(()),
        }
    }

    fn txn(&mut self, ops: &[TxnOp]) -> Outcome {
        for (i, op) in ops.iter().enumerate() {
            if ops[..i].iter().any(|o| o.key() == op.key()) {
                return Outcome::InvalidTxn(i);
            }
        }
        for op in ops {
            if let Err(e) = self.check(op.key(), op.condition()) {
                return e;
            }
        }
        let prevs: Vec<Option<KeyValue>> = ops
            .iter()
            .map(|op| self.kvs.get(op.key()).cloned())
            .collect();
        let changes = ops
            .iter()
            .any(|op| matches!(op, TxnOp::Put { .. }) || self.kvs.contains_key(op.key()));
        if !changes {
            return Outcome::Txn(self.revision, prevs);
        }
        self.revision += 1;
        let rev = self.revision;
        for (op, prev) in ops.iter().zip(&prevs) {
            match op {
                TxnOp::Put { key, value, .. } => {
                    let kv = KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                    };
                    self.kvs.insert(key.clone(), kv.clone());
                    self.events.push(WatchEvent::Put {
                        kv,
                        prev: prev.clone(),
                    });
                }
                TxnOp::Delete { key, .. } => {
                    if self.kvs.remove(key).is_some() {
                        self.events.push(WatchEvent::Delete {
                            key: key.clone(),
                            revision: rev,
                            prev: prev.clone(),
                        });
                    }
                }
            }
        }
        Outcome::Txn(rev, prevs)
    }

    fn list(&self, prefix: &str) -> Outcome {
        let kvs = self
            .kvs
            .values()
            .filter(|kv| kv.key.starts_with(prefix))
            .cloned()
            .collect();
        Outcome::List(kvs, self.revision)
    }
}

fn value(v: u8) -> Vec<u8> {
    format!("{{\"v\":{v}}}").into_bytes()
}

/// Applies one op to both; returns (store, model) outcomes.
fn apply(store: &SqliteStore, model: &mut Model, op: &Op) -> (Outcome, Outcome) {
    let single = |model: &mut Model, txn_op: TxnOp| -> Outcome { model.txn(&[txn_op]) };
    match op {
        Op::Create(k, v) => {
            let key = KEYS[*k];
            let got = store
                .create(key, &value(*v))
                .map(|kv| Outcome::Kv(Some(kv)));
            let want = single(
                model,
                TxnOp::Put {
                    key: key.into(),
                    value: value(*v),
                    condition: Condition::Absent,
                },
            );
            (got.unwrap_or_else(from_error), as_kv(model, key, want))
        }
        Op::Update(k, v, r) => {
            let key = KEYS[*k];
            let expected = model.expected(key, *r);
            let got = store
                .update(key, &value(*v), expected)
                .map(|kv| Outcome::Kv(Some(kv)));
            let want = single(
                model,
                TxnOp::Put {
                    key: key.into(),
                    value: value(*v),
                    condition: Condition::ModRevision(expected),
                },
            );
            (got.unwrap_or_else(from_error), as_kv(model, key, want))
        }
        Op::Put(k, v) => {
            let key = KEYS[*k];
            let got = store.put(key, &value(*v)).map(|kv| Outcome::Kv(Some(kv)));
            let want = single(
                model,
                TxnOp::Put {
                    key: key.into(),
                    value: value(*v),
                    condition: Condition::Any,
                },
            );
            (got.unwrap_or_else(from_error), as_kv(model, key, want))
        }
        Op::Delete(k, r) => {
            let key = KEYS[*k];
            let expected = r.map(|r| model.expected(key, r));
            let got = store.delete(key, expected).map(|kv| Outcome::Kv(Some(kv)));
            let condition = expected.map_or(Condition::Exists, Condition::ModRevision);
            let want = match single(
                model,
                TxnOp::Delete {
                    key: key.into(),
                    condition,
                },
            ) {
                Outcome::Txn(_, prevs) => Outcome::Kv(prevs.into_iter().next().flatten()),
                other => other,
            };
            (got.unwrap_or_else(from_error), want)
        }
        Op::Txn(parts) => {
            let ops: Vec<TxnOp> = parts
                .iter()
                .map(|(is_put, k, v, c)| {
                    let key = KEYS[*k].to_owned();
                    let condition = model.condition(&key, c);
                    if *is_put {
                        TxnOp::Put {
                            key,
                            value: value(*v),
                            condition,
                        }
                    } else {
                        TxnOp::Delete { key, condition }
                    }
                })
                .collect();
            let got = store
                .txn(&ops)
                .map(|o| Outcome::Txn(o.revision, o.prev_kvs));
            (got.unwrap_or_else(from_error), model.txn(&ops))
        }
        Op::Get(k) => (
            Outcome::Kv(store.get(KEYS[*k]).unwrap()),
            Outcome::Kv(model.kvs.get(KEYS[*k]).cloned()),
        ),
        Op::List(p) => {
            let snapshot = store.list(PREFIXES[*p]).unwrap();
            (
                Outcome::List(snapshot.kvs, snapshot.revision),
                model.list(PREFIXES[*p]),
            )
        }
    }
}

/// A successful single put returns the record now stored.
fn as_kv(model: &Model, key: &str, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Txn(..) => Outcome::Kv(model.kvs.get(key).cloned()),
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("model.db")).unwrap();
        let mut model = Model::new();
        for (i, op) in ops.iter().enumerate() {
            let (got, want) = apply(&store, &mut model, op);
            prop_assert_eq!(got, want, "op {} {:?}", i, op);
        }
        let snapshot = store.list("").unwrap();
        prop_assert_eq!(Outcome::List(snapshot.kvs, snapshot.revision), model.list(""));
        // The whole history replays identically.
        let mut watcher = store.watch("", 1).unwrap();
        let mut replayed = Vec::new();
        while replayed.len() < model.events.len() {
            match watcher.recv_timeout(Duration::from_secs(5)).unwrap() {
                Some(event) => replayed.push(event),
                None => break,
            }
        }
        prop_assert_eq!(replayed, model.events.clone());
    }
}

//! Compare-and-swap from several processes at once: no lost update, on both backends.
//!
//! The parent starts copies of this test binary running only `cas_child`, with the store
//! chosen by Calico's environment variables (which also exercises `from_env`). Each child
//! increments one counter [`INCREMENTS`] times with a CAS retry loop. The final value must
//! be the sum, and the key's history must show every value once, in order.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::etcd::EtcdServer;
use tortie_datastore::{Datastore, DatastoreConfig, WatchEvent, open};

const CHILDREN: usize = 4;
const INCREMENTS: usize = 50;
const COUNTER_KEY: &str = "/multiprocess/counter";
/// Marks a child process and carries nothing else; the store comes from DATASTORE_TYPE etc.
const CHILD_ENV: &str = "TORTIE_DATASTORE_CAS_CHILD";
const CHILD_DEADLINE: Duration = Duration::from_secs(180);
/// Retries per increment before a child gives up (it should need a handful).
const MAX_ATTEMPTS: usize = 100_000;

/// Child entry point, run only as a subprocess of the tests below. Run directly (without
/// the marker variable) it does nothing.
#[test]
#[ignore = "run as a subprocess by the multi-process tests"]
fn cas_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let config = DatastoreConfig::from_env().expect("child datastore config");
    let store = open(&config).expect("child opens the store");
    for _ in 0..INCREMENTS {
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(
                attempts < MAX_ATTEMPTS,
                "no CAS success after {MAX_ATTEMPTS} attempts"
            );
            let kv = store.get(COUNTER_KEY).unwrap().expect("counter exists");
            let value: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
            match store.update(
                COUNTER_KEY,
                (value + 1).to_string().as_bytes(),
                kv.mod_revision,
            ) {
                Ok(_) => break,
                Err(e) if e.is_conflict() => continue,
                Err(e) => panic!("child update failed: {e}"),
            }
        }
    }
}

fn spawn_child(env: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new(exe);
    command.args([
        "cas_child",
        "--exact",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    command.env(CHILD_ENV, "1");
    // The harness chatter of four children would bury the parent's report; panics still
    // reach stderr.
    command.stdout(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().expect("spawning a child test process")
}

/// Waits for every child within the deadline, killing them (by PID) on timeout.
fn wait_all(children: &mut [Child]) {
    let deadline = Instant::now() + CHILD_DEADLINE;
    let mut done = vec![false; children.len()];
    while done.iter().any(|d| !d) {
        if Instant::now() > deadline {
            for child in children.iter_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
            panic!("children did not finish within {CHILD_DEADLINE:?}");
        }
        for (child, finished) in children.iter_mut().zip(done.iter_mut()) {
            if !*finished && let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "a child failed: {status}");
                *finished = true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_contention(store: &dyn Datastore, env: &[(&str, String)]) {
    let created = store.create(COUNTER_KEY, b"0").unwrap();
    let mut children: Vec<Child> = (0..CHILDREN).map(|_| spawn_child(env)).collect();
    wait_all(&mut children);

    let total = CHILDREN * INCREMENTS;
    let kv = store.get(COUNTER_KEY).unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&kv.value).unwrap(),
        total.to_string(),
        "lost updates"
    );
    assert_eq!(kv.version as usize, total + 1);

    // Every intermediate value appears exactly once, in order, in the key's history.
    let watcher = store.watch(COUNTER_KEY, created.mod_revision).unwrap();
    let values: Vec<usize> = watcher
        .take(total + 1)
        .map(|event| match event.unwrap() {
            WatchEvent::Put { kv, .. } => std::str::from_utf8(&kv.value).unwrap().parse().unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(values, (0..=total).collect::<Vec<_>>());
}

#[test]
fn sqlite_cas_from_several_processes_loses_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contended.db");
    let store = open(&DatastoreConfig::sqlite(&path)).unwrap();
    let env = [
        ("DATASTORE_TYPE", "sqlite".to_owned()),
        ("SQLITE_PATH", path.display().to_string()),
    ];
    run_contention(store.as_ref(), &env);
}

#[test]
fn etcd_cas_from_several_processes_loses_no_update() {
    let server = EtcdServer::start();
    let store = open(&DatastoreConfig::etcd([server.endpoint.clone()])).unwrap();
    let env = [
        ("DATASTORE_TYPE", "etcdv3".to_owned()),
        ("ETCD_ENDPOINTS", server.endpoint.clone()),
    ];
    run_contention(store.as_ref(), &env);
}

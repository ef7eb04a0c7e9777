//! The shared conformance suite against both backends: SQLite in a temp dir, and a real etcd
//! (Debian `etcd-server`) started on loopback for the test.

mod support;

use std::time::{Duration, Instant};

use support::etcd::{EtcdServer, TlsFiles};
use support::suite::run_conformance;
use tortie_datastore::{
    Datastore, DatastoreConfig, DatastoreError, DatastoreKind, SqliteStore, open,
};

#[test]
fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("nested/dir/tortie.db")).unwrap();
    run_conformance(&store);
}

#[test]
fn etcd_passes_the_conformance_suite() {
    let server = EtcdServer::start();
    let store = open(&DatastoreConfig::etcd([server.endpoint.clone()])).unwrap();
    run_conformance(store.as_ref());
}

#[test]
fn etcd_unreachable_is_unavailable_naming_the_endpoint() {
    // A loopback port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let error = open(&DatastoreConfig::etcd([endpoint.clone()]))
        .err()
        .expect("connect must fail");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "connect took {:?}",
        started.elapsed()
    );
    match &error {
        DatastoreError::Unavailable {
            endpoint: named, ..
        } => assert_eq!(named, &endpoint),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(error.to_string().contains(&endpoint), "{error}");
}

#[test]
fn two_sqlite_handles_on_one_file_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let first = SqliteStore::open(&path).unwrap();
    let second = SqliteStore::open(&path).unwrap();
    let mut watcher = second.watch("/shared/", 0).unwrap();
    let kv = first.create("/shared/k", b"v").unwrap();
    // The second handle has its own notifier: this event arrives through polling, the path
    // writes from another process take.
    let event = watcher
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("polled event");
    assert_eq!(event.revision(), kv.mod_revision);
    assert!(matches!(
        second.create("/shared/k", b"w"),
        Err(DatastoreError::AlreadyExists { .. })
    ));
}

#[test]
fn etcd_over_tls_with_a_client_certificate() {
    let certs_dir = tempfile::tempdir().unwrap();
    let tls = TlsFiles::generate(certs_dir.path());
    let server = EtcdServer::start_tls(&tls);
    let config = |cert: Option<&std::path::Path>, key: Option<&std::path::Path>| DatastoreConfig {
        kind: DatastoreKind::EtcdV3 {
            endpoints: vec![server.endpoint.clone()],
            ca_cert: Some(tls.ca.clone()),
            cert: cert.map(Into::into),
            key: key.map(Into::into),
        },
    };
    // The port accepts connections a little before etcd serves; retry within a bound.
    let deadline = Instant::now() + Duration::from_secs(15);
    let store = loop {
        match open(&config(Some(&tls.client_cert), Some(&tls.client_key))) {
            Ok(store) => break store,
            Err(e) if Instant::now() < deadline => {
                eprintln!("TLS etcd not ready yet: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("TLS connect failed: {e}"),
        }
    };
    let kv = store.create("/tls/k", b"v").unwrap();
    assert_eq!(store.get("/tls/k").unwrap(), Some(kv));
    // Without a client certificate the server refuses us.
    assert!(
        open(&config(None, None)).is_err(),
        "etcd accepted a client without a certificate"
    );
}

#[test]
fn etcd_going_away_ends_watches_and_requests_with_unavailable() {
    let server = EtcdServer::start();
    let endpoint = server.endpoint.clone();
    let store = open(&DatastoreConfig::etcd([endpoint.clone()])).unwrap();
    let mut watcher = store.watch("/gone/", 0).unwrap();
    store.put("/gone/k", b"v").unwrap();
    assert!(
        watcher
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .is_some()
    );
    drop(server); // kills etcd

    let started = Instant::now();
    match watcher.recv_timeout(Duration::from_secs(30)) {
        Err(DatastoreError::Unavailable {
            endpoint: named, ..
        }) => assert_eq!(named, endpoint),
        other => panic!("watch after etcd stopped: expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        watcher.recv(),
        Err(DatastoreError::WatchClosed { .. })
    ));
    match store.get("/gone/k") {
        Err(DatastoreError::Unavailable {
            endpoint: named, ..
        }) => assert_eq!(named, endpoint),
        other => panic!("get after etcd stopped: expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
}

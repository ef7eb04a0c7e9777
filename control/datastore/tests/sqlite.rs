//! SQLite-specific behaviour beyond the shared conformance suite.

use std::time::{Duration, Instant};

use tortie_datastore::{Datastore, DatastoreError, SqliteStore};

/// A watcher that lags far behind (its channel full, more history unread) and is then
/// overtaken by a compaction receives `Compacted` as its last item, after the events it was
/// already owed.
#[test]
fn a_lagging_watcher_overtaken_by_compaction_gets_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("lag.db")).unwrap();
    let start = store.current_revision().unwrap() + 1;
    // More revisions than the watcher's channel plus two read windows hold.
    let writes = 2600;
    for i in 0..writes {
        store.put("/lag/k", i.to_string().as_bytes()).unwrap();
    }
    let mut watcher = store.watch("/lag/", start).unwrap();
    // Let the poller fill the channel and block, then compact everything.
    std::thread::sleep(Duration::from_millis(300));
    let current = store.current_revision().unwrap();
    store.compact(current).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = 0;
    let error = loop {
        assert!(
            Instant::now() < deadline,
            "watcher neither finished nor failed"
        );
        match watcher.recv_timeout(Duration::from_secs(5)) {
            Ok(Some(_)) => received += 1,
            Ok(None) => panic!("watcher stalled after {received} events"),
            Err(e) => break e,
        }
    };
    assert!(
        received < writes,
        "the watcher got all {writes} events despite the compaction"
    );
    match error {
        DatastoreError::Compacted {
            compact_revision,
            requested,
            ..
        } => {
            assert_eq!(compact_revision, current);
            assert_eq!(requested, start + received as i64);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(matches!(
        watcher.recv(),
        Err(DatastoreError::WatchClosed { .. })
    ));
}

/// Opening a file written by a newer schema is refused, not misread.
#[test]
fn a_newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE meta SET value = 99 WHERE name = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(error.to_string().contains("schema version 99"), "{error}");
}

/// A directory where the file should be is reported as unavailable, naming the path.
#[test]
fn an_unusable_path_is_unavailable_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let error = SqliteStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(error, DatastoreError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains(&dir.path().display().to_string()),
        "{error}"
    );
}

/// A write through another connection (as another process makes it) reaches a caught-up
/// watcher well within the safety-net poll: it sees SQLite's `data_version` change within
/// about a millisecond. The fastest of several writes is compared (a loaded machine delays
/// some), against a quarter of the poll interval (the old 20 ms poll alone took about half of it here).
#[test]
fn another_connections_write_reaches_a_watcher_within_the_change_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.db");
    let watching = SqliteStore::open(&path).unwrap();
    let writing = SqliteStore::open(&path).unwrap();
    let start = watching.current_revision().unwrap() + 1;
    let mut watcher = watching.watch("/n/", start).unwrap();
    let mut fastest = Duration::MAX;
    for i in 0..10 {
        // Let the watcher catch up and settle into its wait.
        std::thread::sleep(Duration::from_millis(30));
        let written = Instant::now();
        writing.put("/n/k", i.to_string().as_bytes()).unwrap();
        let event = watcher.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(event.is_some(), "write {i} never reached the watcher");
        fastest = fastest.min(written.elapsed());
    }
    assert!(
        fastest < tortie_datastore::SQLITE_POLL_INTERVAL / 4,
        "fastest cross-connection notification took {fastest:?}"
    );
}

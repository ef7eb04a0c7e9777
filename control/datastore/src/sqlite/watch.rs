//! Watching the SQLite store: a thread per watcher reads the `events` table from the next
//! revision it owes its consumer.
//!
//! SQLite has no cross-process change notification, and the CNI plugin, the CLI and the
//! daemon are separate processes writing one file. A writer in *this* process wakes its
//! watchers at once through [`Notifier`]; a write from another process wakes them through
//! inotify on the `-wal` file ([`super::wal_waker`]), and since that wake-up may come before
//! the commit is visible, a watcher then checks `PRAGMA data_version` (which changes when
//! another connection commits; it reads the WAL index in shared memory, no lock, no
//! transaction: about a microsecond) often for a short while ([`super::notify`]). Without
//! inotify it checks every [`super::CHANGE_CHECK`]. Every [`super::POLL_INTERVAL`] it reads
//! the events table anyway, as a safety net.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{DatastoreError, Operation, Result};
use crate::sqlite::notify::Notifier;
use crate::sqlite::schema::{key_from_blob, read_meta, read_revision, sql_error};
use crate::types::{KeyValue, Revision, WatchEvent, prefix_end};
use crate::watch::{WATCH_CHANNEL_CAPACITY, WatchItem, Watcher};

/// Revisions read per query, so a watcher far behind catches up in bounded steps.
const REVISION_WINDOW: i64 = 1024;

/// One poll's result.
enum Batch {
    /// Events with revisions `next..=through`, matching the prefix.
    Events {
        events: Vec<WatchEvent>,
        through: Revision,
        caught_up: bool,
    },
    /// The history from `next` is gone.
    Compacted(Revision),
}

struct Poller {
    conn: Connection,
    path: PathBuf,
    prefix: String,
    end: Option<Vec<u8>>,
    /// `PRAGMA data_version` when the last batch was read.
    data_version: i64,
}

impl Poller {
    /// SQLite's data version of this connection: it changes when another connection commits.
    fn data_version(&self) -> rusqlite::Result<i64> {
        self.conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))
    }

    /// Whether another connection committed since the last batch.
    fn changed(&mut self) -> rusqlite::Result<bool> {
        let now = self.data_version()?;
        Ok(now != self.data_version)
    }

    fn read_batch(&mut self, next: Revision) -> rusqlite::Result<Batch> {
        // Read before the transaction: a commit racing with it shows as a change next time
        // (one extra, empty read) rather than being missed.
        self.data_version = self.data_version()?;
        let tx = self.conn.transaction()?;
        let current = read_revision(&tx)?;
        let compacted = read_meta(&tx, "compact_revision")?;
        if next < compacted {
            return Ok(Batch::Compacted(compacted));
        }
        let through = current.min(next + REVISION_WINDOW - 1);
        let mut events = Vec::new();
        if through >= next {
            let sql = if self.end.is_some() {
                "SELECT revision, key, deleted, value, create_revision, version, prev_value,
                        prev_create_revision, prev_mod_revision, prev_version
                 FROM events WHERE revision >= ?1 AND revision <= ?2 AND key >= ?3 AND key < ?4
                 ORDER BY id"
            } else {
                "SELECT revision, key, deleted, value, create_revision, version, prev_value,
                        prev_create_revision, prev_mod_revision, prev_version
                 FROM events WHERE revision >= ?1 AND revision <= ?2 AND key >= ?3
                 ORDER BY id"
            };
            let mut stmt = tx.prepare_cached(sql)?;
            let lo = self.prefix.as_bytes();
            let mut rows = match &self.end {
                Some(hi) => stmt.query(rusqlite::params![next, through, lo, hi])?,
                None => stmt.query(rusqlite::params![next, through, lo])?,
            };
            while let Some(row) = rows.next()? {
                events.push(event_from_row(row)?);
            }
        }
        Ok(Batch::Events {
            events,
            through: through.max(next - 1),
            caught_up: through >= current,
        })
    }
}

fn event_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<WatchEvent> {
    let revision: Revision = row.get(0)?;
    let key = key_from_blob(row.get(1)?)?;
    let deleted: bool = row.get(2)?;
    let prev_value: Option<Vec<u8>> = row.get(6)?;
    let prev = match prev_value {
        Some(value) => Some(KeyValue {
            key: key.clone(),
            value,
            create_revision: row.get(7)?,
            mod_revision: row.get(8)?,
            version: row.get(9)?,
        }),
        None => None,
    };
    if deleted {
        return Ok(WatchEvent::Delete {
            key,
            revision,
            prev,
        });
    }
    let kv = KeyValue {
        key,
        value: row.get(3)?,
        create_revision: row.get(4)?,
        mod_revision: revision,
        version: row.get(5)?,
    };
    Ok(WatchEvent::Put { kv, prev })
}

/// Starts a watcher on `prefix` from revision `start` (`start >= 1`) with its own connection.
/// The compaction check happens here, so a watch from a compacted revision fails at once.
pub(crate) fn start(
    conn: Connection,
    path: PathBuf,
    prefix: &str,
    start: Revision,
    notifier: Arc<Notifier>,
    poll_interval: Duration,
) -> Result<Watcher> {
    let mut poller = Poller {
        conn,
        path,
        prefix: prefix.to_owned(),
        end: prefix_end(prefix.as_bytes()),
        data_version: 0,
    };
    let compacted = read_meta(&poller.conn, "compact_revision").map_err(sql_error(
        Operation::Watch,
        prefix,
        &poller.path,
    ))?;
    if start < compacted {
        return Err(DatastoreError::Compacted {
            operation: Operation::Watch,
            key: prefix.to_owned(),
            requested: start,
            compact_revision: compacted,
        });
    }
    let (tx, rx) = sync_channel(WATCH_CHANNEL_CAPACITY);
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread_notifier = Arc::clone(&notifier);
    let handle = thread::Builder::new()
        .name("tortie-sqlite-watch".into())
        .spawn(move || {
            run(
                &mut poller,
                start,
                &tx,
                &thread_stop,
                &thread_notifier,
                poll_interval,
            )
        })
        .map_err(|e| DatastoreError::Backend {
            operation: Operation::Watch,
            key: prefix.to_owned(),
            cause: format!("spawning the watch thread: {e}"),
        })?;
    let stop_fn = move || {
        stop.store(true, Ordering::Release);
        notifier.notify();
        let _joined = handle.join();
    };
    Ok(Watcher::new(prefix.to_owned(), rx, Box::new(stop_fn)))
}

fn run(
    poller: &mut Poller,
    mut next: Revision,
    tx: &SyncSender<WatchItem>,
    stop: &AtomicBool,
    notifier: &Notifier,
    poll_interval: Duration,
) {
    while !stop.load(Ordering::Acquire) {
        let seen = notifier.generation();
        match poller.read_batch(next) {
            Ok(Batch::Events {
                events,
                through,
                caught_up,
            }) => {
                for event in events {
                    if tx.send(Ok(event)).is_err() {
                        return;
                    }
                }
                next = through + 1;
                if caught_up {
                    wait_for_change(poller, notifier, seen, poll_interval);
                }
            }
            Ok(Batch::Compacted(compact_revision)) => {
                let _closed = tx.send(Err(DatastoreError::Compacted {
                    operation: Operation::Watch,
                    key: poller.prefix.clone(),
                    requested: next,
                    compact_revision,
                }));
                return;
            }
            Err(error) => {
                let error = sql_error(Operation::Watch, &poller.prefix, &poller.path)(error);
                let _closed = tx.send(Err(error));
                return;
            }
        }
    }
}

/// Waits until this process commits or the `-wal` file is written (the notifier moves past
/// `seen`), another process's commit is visible (`data_version` changes, checked as often as
/// [`Notifier::check_interval`] says), or `poll_interval` passes.
fn wait_for_change(poller: &mut Poller, notifier: &Notifier, seen: u64, poll_interval: Duration) {
    let deadline = Instant::now() + poll_interval;
    loop {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let check = notifier.check_interval(now);
        notifier.wait_past(seen, check.map_or(left, |c| c.min(left)));
        if notifier.generation() != seen || Instant::now() >= deadline {
            return;
        }
        // An error here shows again, and is reported, at the batch read that follows.
        if check.is_some() && poller.changed().unwrap_or(true) {
            return;
        }
    }
}

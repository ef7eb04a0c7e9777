//! Watching etcd: one gRPC watch stream per [`Watcher`], pumped by a task on the private
//! runtime into the watcher's bounded channel.
//!
//! Compaction: etcd answers a watch from a compacted revision with `created`, then
//! `canceled` carrying `compact_revision`, a little later. So that `watch` itself fails with
//! `Compacted` (as on SQLite), a count-only read at the start revision probes first; only when
//! it reports compaction does `watch` wait (bounded) for etcd's cancel to learn the
//! compaction point. A compaction that overtakes a running watch arrives on the stream.

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use etcd_client::{GetOptions, WatchOptions, WatchStream};

use super::convert::{event_from_etcd, map_error};
use super::{ETCD_REQUEST_TIMEOUT, EtcdStore};
use crate::Datastore;
use crate::error::{DatastoreError, Operation, Result};
use crate::types::{Revision, prefix_end};
use crate::watch::{WATCH_CHANNEL_CAPACITY, WatchItem, Watcher};

/// How long a producer waits before retrying a send into a full channel.
const FULL_CHANNEL_BACKOFF: Duration = Duration::from_millis(2);

pub(super) fn start(store: &EtcdStore, prefix: &str, from_revision: Revision) -> Result<Watcher> {
    if from_revision < 0 {
        return Err(DatastoreError::InvalidArgument {
            operation: Operation::Watch,
            key: prefix.to_owned(),
            reason: format!("negative start revision {from_revision}"),
        });
    }
    // Resolve "now" here, so that every write after `watch` returns is delivered.
    let start = if from_revision == 0 {
        store
            .current_revision()
            .map_err(|e| e.with_operation(Operation::Watch))?
            + 1
    } else {
        from_revision
    };
    let key = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    };
    let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0]);

    let compacted = if from_revision == 0 {
        false
    } else {
        let mut kv = store.kv.clone();
        let probe_key = key.clone();
        let probe = store.call(Operation::Watch, prefix, start, async move {
            let options = GetOptions::new().with_revision(start).with_count_only();
            kv.get(probe_key, Some(options)).await
        });
        match probe {
            Ok(_) | Err(DatastoreError::FutureRevision { .. }) => false,
            Err(DatastoreError::Compacted { .. }) => true,
            Err(other) => return Err(other),
        }
    };

    let mut client = store.client.watch_client();
    let options = WatchOptions::new()
        .with_range(end)
        .with_start_revision(start)
        .with_prev_key();
    let mut stream = store.call(Operation::Watch, prefix, start, async move {
        client.watch(key, Some(options)).await
    })?;

    if compacted {
        let compact_revision = store.runtime.run(ETCD_REQUEST_TIMEOUT, async move {
            compaction_point(&mut stream).await
        });
        return Err(DatastoreError::Compacted {
            operation: Operation::Watch,
            key: prefix.to_owned(),
            requested: start,
            compact_revision: compact_revision.unwrap_or(0),
        });
    }

    let (tx, rx) = sync_channel(WATCH_CHANNEL_CAPACITY);
    let task = store.runtime.handle().spawn(pump(
        stream,
        tx,
        prefix.to_owned(),
        store.endpoints.clone(),
        start,
    ));
    Ok(Watcher::new(
        prefix.to_owned(),
        rx,
        Box::new(move || task.abort()),
    ))
}

/// Reads until etcd cancels the watch and returns the compaction point it reports.
async fn compaction_point(stream: &mut WatchStream) -> Revision {
    while let Ok(Some(response)) = stream.message().await {
        if response.canceled() {
            return response.compact_revision();
        }
    }
    0
}

/// Sends into the bounded channel without blocking the runtime thread; false once the
/// watcher is gone.
async fn send(tx: &SyncSender<WatchItem>, mut item: WatchItem) -> bool {
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(TrySendError::Full(back)) => {
                item = back;
                tokio::time::sleep(FULL_CHANNEL_BACKOFF).await;
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

async fn pump(
    mut stream: WatchStream,
    tx: SyncSender<WatchItem>,
    prefix: String,
    endpoints: String,
    mut next: Revision,
) {
    loop {
        let error = match stream.message().await {
            Ok(Some(response)) if response.canceled() => {
                if response.compact_revision() > 0 {
                    DatastoreError::Compacted {
                        operation: Operation::Watch,
                        key: prefix.clone(),
                        requested: next,
                        compact_revision: response.compact_revision(),
                    }
                } else {
                    DatastoreError::Unavailable {
                        operation: Operation::Watch,
                        endpoint: endpoints.clone(),
                        cause: format!("etcd canceled the watch: {}", response.cancel_reason()),
                    }
                }
            }
            Ok(Some(response)) => {
                for event in response.events() {
                    let item = event_from_etcd(event);
                    let failed = item.is_err();
                    if let Ok(event) = &item {
                        next = event.revision() + 1;
                    }
                    if !send(&tx, item).await || failed {
                        return;
                    }
                }
                continue;
            }
            Ok(None) => DatastoreError::Unavailable {
                operation: Operation::Watch,
                endpoint: endpoints.clone(),
                cause: "etcd closed the watch stream".into(),
            },
            Err(e) => map_error(Operation::Watch, &prefix, &endpoints, next, e),
        };
        let _watcher_gone = send(&tx, Err(error)).await;
        return;
    }
}

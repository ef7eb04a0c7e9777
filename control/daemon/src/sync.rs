//! Following the datastore: list, then watch from the list's revision + 1; relist when the
//! watch ends (compaction overtook it, or the backend went away).

use std::sync::Arc;
use std::time::Duration;

use tortie_datastore::{Datastore, DatastoreError, KeyValue, Revision, WatchEvent, Watcher};

use crate::error::ControlError;

/// Everything control reads lives under this prefix (resources and IPAM).
pub const WATCH_PREFIX: &str = "/calico/";
/// Keys under the watch prefix that control ignores (IPAM blocks and handles change with
/// every allocation; routes follow affinities).
const IGNORED: &[&str] = &["/calico/ipam/v2/assignment/", "/calico/ipam/v2/handle/"];

/// What the datastore said.
#[derive(Debug)]
pub enum Update {
    /// One change.
    Event(WatchEvent),
    /// The watch was lost and the whole prefix relisted: these are the current keys.
    Resync(Vec<KeyValue>),
}

/// Whether control cares about a key.
pub fn relevant(key: &str) -> bool {
    !IGNORED.iter().any(|p| key.starts_with(p))
}

/// List-and-watch of [`WATCH_PREFIX`].
pub struct Syncer {
    ds: Arc<dyn Datastore>,
    watcher: Option<Watcher>,
    /// The last revision seen.
    pub revision: Revision,
    /// Relists after the first list.
    pub resyncs: u64,
}

impl Syncer {
    /// Lists the prefix and starts watching after it; returns the keys.
    pub fn start(ds: Arc<dyn Datastore>) -> Result<(Syncer, Vec<KeyValue>), ControlError> {
        let mut syncer = Syncer {
            ds,
            watcher: None,
            revision: 0,
            resyncs: 0,
        };
        let kvs = syncer.relist()?;
        Ok((syncer, kvs))
    }

    fn relist(&mut self) -> Result<Vec<KeyValue>, ControlError> {
        self.watcher = None;
        let snapshot = self.ds.list(WATCH_PREFIX)?;
        self.revision = snapshot.revision;
        self.watcher = Some(self.ds.watch(WATCH_PREFIX, snapshot.revision + 1)?);
        Ok(snapshot
            .kvs
            .into_iter()
            .filter(|kv| relevant(&kv.key))
            .collect())
    }

    /// Waits at most `timeout` for the next relevant change. A watch that ends is replaced
    /// by a relist ([`Update::Resync`]); a relist that fails is an error (the caller retries).
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Update>, ControlError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let Some(watcher) = self.watcher.as_mut() else {
                self.resyncs += 1;
                return self.relist().map(|kvs| Some(Update::Resync(kvs)));
            };
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            match watcher.recv_timeout(wait) {
                Ok(Some(event)) => {
                    self.revision = self.revision.max(event.revision());
                    if relevant(event.key()) {
                        return Ok(Some(Update::Event(event)));
                    }
                }
                Ok(None) => return Ok(None),
                Err(err) => {
                    match &err {
                        DatastoreError::Compacted { .. } => {
                            tracing::info!(%err, "watch overtaken by compaction; relisting")
                        }
                        _ => tracing::warn!(%err, "watch ended; relisting"),
                    }
                    self.watcher = None;
                }
            }
        }
    }

    /// Takes every change already delivered, without waiting.
    pub fn drain(&mut self) -> Result<Vec<Update>, ControlError> {
        let mut out = Vec::new();
        while let Some(u) = self.next(Duration::ZERO)? {
            let resync = matches!(u, Update::Resync(_));
            out.push(u);
            if resync {
                break;
            }
        }
        Ok(out)
    }
}

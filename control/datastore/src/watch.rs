//! [`Watcher`]: the blocking receiving end of a watch, shared by both backends.
//!
//! A backend runs the watch elsewhere (a polling thread for SQLite, a task on the private
//! runtime for etcd) and sends events through a bounded channel, so a slow consumer applies
//! back-pressure instead of growing memory. Dropping the watcher stops that producer.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::error::{DatastoreError, Result};
use crate::types::WatchEvent;

/// Capacity of the channel between a watch producer and its [`Watcher`].
pub(crate) const WATCH_CHANNEL_CAPACITY: usize = 1024;

/// What a watch producer sends: an event, or the error that ends the watch.
pub(crate) type WatchItem = Result<WatchEvent>;

/// A stream of changes under a prefix, in revision order, starting at the requested revision.
///
/// `recv` blocks; `recv_timeout` bounds the wait; the iterator yields until the watch ends.
/// A watch ends after delivering exactly one error: [`DatastoreError::Compacted`] when the
/// history it needs was compacted (the caller relists and watches again from the list's
/// revision + 1), or [`DatastoreError::Unavailable`] when the backend went away. After that,
/// `recv` returns [`DatastoreError::WatchClosed`].
pub struct Watcher {
    prefix: String,
    rx: Option<Receiver<WatchItem>>,
    stop: Option<Box<dyn FnOnce() + Send>>,
    ended: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("prefix", &self.prefix)
            .field("ended", &self.ended)
            .finish()
    }
}

impl Watcher {
    /// Wraps a producer's channel; `stop` runs when the watcher is dropped, after the channel
    /// has been closed (so a producer blocked on a full channel wakes up).
    pub(crate) fn new(
        prefix: String,
        rx: Receiver<WatchItem>,
        stop: Box<dyn FnOnce() + Send>,
    ) -> Self {
        Watcher {
            prefix,
            rx: Some(rx),
            stop: Some(stop),
            ended: false,
        }
    }

    /// The watched prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Blocks until the next event. Errors end the watch (see the type's docs).
    pub fn recv(&mut self) -> Result<WatchEvent> {
        loop {
            // A long bounded wait in a loop: the same as an unbounded one, without a
            // separate code path.
            if let Some(event) = self.recv_timeout(Duration::from_secs(3600))? {
                return Ok(event);
            }
        }
    }

    /// Waits at most `timeout` for the next event; `Ok(None)` when none came in time.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<WatchEvent>> {
        let closed = || DatastoreError::WatchClosed {
            prefix: self.prefix.clone(),
        };
        if self.ended {
            return Err(closed());
        }
        let Some(rx) = self.rx.as_ref() else {
            return Err(closed());
        };
        match rx.recv_timeout(timeout) {
            Ok(Ok(event)) => Ok(Some(event)),
            Ok(Err(error)) => {
                self.ended = true;
                Err(error)
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                Err(closed())
            }
        }
    }

    /// Takes every event already delivered, without waiting.
    pub fn try_recv_all(&mut self) -> Result<Vec<WatchEvent>> {
        let mut events = Vec::new();
        while let Some(event) = self.recv_timeout(Duration::ZERO)? {
            events.push(event);
        }
        Ok(events)
    }
}

impl Iterator for Watcher {
    type Item = Result<WatchEvent>;

    /// Yields each event, then the error that ended the watch, then `None`.
    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        match self.recv() {
            Err(DatastoreError::WatchClosed { .. }) => None,
            other => Some(other),
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

//! Telling this process's watchers that the database may have changed, and how often a
//! waiting watcher should ask SQLite itself.
//!
//! Two sources wake watchers: a commit made by this process ([`Notifier::notify`], called
//! after the commit), and a write to the database's `-wal` file by any process, seen through
//! inotify ([`super::wal_waker`], which calls [`Notifier::wal_written`]).
//!
//! SQLite commits in WAL mode by appending the transaction's frames to the `-wal` file,
//! syncing it (`synchronous=FULL`), and only then publishing the commit in the WAL index, a
//! shared-memory file that inotify cannot see. So the inotify event comes *before* the commit
//! is visible, by about the time of the sync: a watcher it wakes may read too early and find
//! nothing new. For [`SETTLE_WINDOW`] after a WAL write a waiting watcher therefore checks
//! `PRAGMA data_version` (which changes once another connection's commit is visible): every
//! [`SETTLE_CHECK`] for the first [`SETTLE_FAST`], then every [`CHANGE_CHECK`]. With no
//! recent WAL write it does not check at all and sleeps until woken or until its safety-net
//! read ([`super::POLL_INTERVAL`]). Without inotify (it could not be set up) it checks every
//! [`CHANGE_CHECK`], always.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often a caught-up watcher checks `PRAGMA data_version` for commits by other
/// connections (other processes) when the `-wal` file is not watched, and in the second part
/// of the [`SETTLE_WINDOW`] when it is.
pub const CHANGE_CHECK: Duration = Duration::from_millis(1);
/// How often a watcher checks `PRAGMA data_version` during [`SETTLE_FAST`] after a write to
/// the `-wal` file: the write's commit becomes visible when its sync completes, typically
/// within a millisecond or two.
pub const SETTLE_CHECK: Duration = Duration::from_micros(100);
/// How long after a write to the `-wal` file the checks come every [`SETTLE_CHECK`].
pub const SETTLE_FAST: Duration = Duration::from_millis(3);
/// How long after a write to the `-wal` file a watcher keeps checking at all (a sync on a
/// loaded disk can take tens of milliseconds).
pub const SETTLE_WINDOW: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct State {
    /// Bumped by every wake-up.
    generation: u64,
    /// Whether a [`super::wal_waker::WalWaker`] is watching the `-wal` file.
    wal_watched: bool,
    /// When the `-wal` file was last written, as far as the waker saw.
    wal_written: Option<Instant>,
}

/// Wakes this process's watchers of one store.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    state: Mutex<State>,
    changed: Condvar,
}

impl Notifier {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called after a commit by this process.
    pub(crate) fn notify(&self) {
        let mut state = self.lock();
        state.generation += 1;
        self.changed.notify_all();
    }

    /// Called when the `-wal` file was written (by any process).
    pub(crate) fn wal_written(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.wal_written = Some(Instant::now());
        self.changed.notify_all();
    }

    /// Whether the `-wal` file is being watched (set by the waker when it starts and stops).
    pub(crate) fn set_wal_watched(&self, watched: bool) {
        let mut state = self.lock();
        state.wal_watched = watched;
        // Waiting watchers re-plan their checks.
        state.generation += 1;
        self.changed.notify_all();
    }

    /// The number of wake-ups so far.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Waits until the generation moves past `seen`, at most `timeout`.
    pub(crate) fn wait_past(&self, seen: u64, timeout: Duration) {
        let guard = self.lock();
        let _unused = self
            .changed
            .wait_timeout_while(guard, timeout, |state| state.generation == seen)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// How long a waiting watcher may go at `now` without checking `PRAGMA data_version`;
    /// `None`: no checks needed (the `-wal` file is watched and was not written lately).
    pub(crate) fn check_interval(&self, now: Instant) -> Option<Duration> {
        let state = self.lock();
        check_interval(state.wal_watched, state.wal_written, now)
    }
}

fn check_interval(
    wal_watched: bool,
    wal_written: Option<Instant>,
    now: Instant,
) -> Option<Duration> {
    if !wal_watched {
        return Some(CHANGE_CHECK);
    }
    let age = now.saturating_duration_since(wal_written?);
    if age < SETTLE_FAST {
        Some(SETTLE_CHECK)
    } else if age < SETTLE_WINDOW {
        Some(CHANGE_CHECK)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_follow_the_last_wal_write() {
        let now = Instant::now();
        let ago = |d: Duration| now.checked_sub(d);
        // Not watched: the fixed check, whatever happened.
        assert_eq!(check_interval(false, None, now), Some(CHANGE_CHECK));
        assert_eq!(check_interval(false, Some(now), now), Some(CHANGE_CHECK));
        // Watched, never written: nothing to wait for but the notifier.
        assert_eq!(check_interval(true, None, now), None);
        // Just written: fast checks, then the usual ones, then none.
        assert_eq!(check_interval(true, Some(now), now), Some(SETTLE_CHECK));
        if let Some(t) = ago(SETTLE_FAST / 2) {
            assert_eq!(check_interval(true, Some(t), now), Some(SETTLE_CHECK));
        }
        if let Some(t) = ago(SETTLE_FAST) {
            assert_eq!(check_interval(true, Some(t), now), Some(CHANGE_CHECK));
        }
        if let Some(t) = ago(SETTLE_WINDOW) {
            assert_eq!(check_interval(true, Some(t), now), None);
        }
        // A write stamped after `now` (another thread's clock read) counts as just written.
        let later = now + Duration::from_millis(1);
        assert_eq!(check_interval(true, Some(later), now), Some(SETTLE_CHECK));
    }

    #[test]
    fn every_source_wakes_a_waiter() {
        let notifier = std::sync::Arc::new(Notifier::default());
        for wake in [
            Notifier::notify as fn(&Notifier),
            Notifier::wal_written,
            |n: &Notifier| n.set_wal_watched(true),
        ] {
            let seen = notifier.generation();
            let waker = std::sync::Arc::clone(&notifier);
            let thread = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                wake(&waker);
            });
            let started = Instant::now();
            notifier.wait_past(seen, Duration::from_secs(10));
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_ne!(notifier.generation(), seen);
            thread.join().unwrap();
        }
    }
}

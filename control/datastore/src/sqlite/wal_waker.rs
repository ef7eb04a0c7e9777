//! Waking watchers when any process writes the database: inotify on the `-wal` file.
//!
//! SQLite has no cross-process change notification, but every commit in WAL mode appends to
//! `<database>-wal`, and the kernel reports such writes through inotify. A [`WalWaker`] (one
//! per store, started with its first watch) is a thread blocked on an inotify descriptor that
//! watches the database's directory and calls [`Notifier::wal_written`] whenever the `-wal`
//! file is modified, so a commit by another process wakes this process's watchers at once
//! instead of at their next `PRAGMA data_version` check. The directory is watched rather than
//! the file so that a `-wal` file removed and created again (SQLite deletes it when the last
//! connection closes) is still seen.
//!
//! If inotify cannot be set up (no descriptors left, a file system without it), no waker runs
//! and watchers keep checking `PRAGMA data_version` every [`super::CHANGE_CHECK`]; the same
//! happens if the watch ends on its own (the directory was removed).

use std::ffi::OsString;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rustix::fd::OwnedFd;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

use super::notify::Notifier;

/// The thread watching one database's `-wal` file. Dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct WalWaker {
    inotify: Arc<OwnedFd>,
    watch: i32,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The directory to watch and the `-wal` file's name in it, for the database at `database`.
/// Symbolic links are resolved first, as SQLite resolves them when it names the WAL file.
pub(crate) fn wal_location(database: &Path) -> std::io::Result<(PathBuf, OsString)> {
    let database = std::fs::canonicalize(database)?;
    let (Some(dir), Some(name)) = (database.parent(), database.file_name()) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} names no file in a directory", database.display()),
        ));
    };
    let mut wal = name.to_os_string();
    wal.push("-wal");
    Ok((dir.to_path_buf(), wal))
}

impl WalWaker {
    /// Starts watching the `-wal` file of the database at `database`, waking `notifier`.
    pub(crate) fn start(database: &Path, notifier: Arc<Notifier>) -> std::io::Result<WalWaker> {
        let (dir, wal) = wal_location(database)?;
        let fd = Arc::new(inotify::init(CreateFlags::CLOEXEC)?);
        let watch = inotify::add_watch(&*fd, &dir, WatchFlags::MODIFY | WatchFlags::CREATE)?;
        let stop = Arc::new(AtomicBool::new(false));
        notifier.set_wal_watched(true);
        let thread = {
            let fd = Arc::clone(&fd);
            let stop = Arc::clone(&stop);
            let notifier = Arc::clone(&notifier);
            std::thread::Builder::new()
                .name("tortie-sqlite-wal".into())
                .spawn(move || {
                    run(&fd, &wal, &notifier, &stop);
                    notifier.set_wal_watched(false);
                })
        };
        match thread {
            Ok(thread) => Ok(WalWaker {
                inotify: fd,
                watch,
                stop,
                thread: Some(thread),
            }),
            Err(err) => {
                notifier.set_wal_watched(false);
                Err(err)
            }
        }
    }
}

impl Drop for WalWaker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Removing the watch queues an IN_IGNORED event, which ends the thread's blocking
        // read. If it fails, the watch is already gone and the thread has ended by itself.
        let _gone = inotify::remove_watch(&*self.inotify, self.watch);
        if let Some(thread) = self.thread.take() {
            let _joined = thread.join();
        }
    }
}

/// Reads inotify events until the watch ends or `stop` is set; wakes `notifier` once per
/// read that saw the `-wal` file written (one read returns every event queued so far).
fn run(fd: &OwnedFd, wal: &OsString, notifier: &Notifier, stop: &AtomicBool) {
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    let mut reader = inotify::Reader::new(fd, &mut buf);
    loop {
        let mut written = false;
        // At least one event (the read blocks), then whatever else that read returned.
        loop {
            let event = match reader.next() {
                Ok(event) => event,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return,
            };
            let flags = event.events();
            if flags.contains(ReadFlags::IGNORED) {
                // The watch was removed: by `Drop`, or by the kernel (directory gone).
                return;
            }
            // An overflowed queue lost events: assume the worst.
            written |= flags.contains(ReadFlags::QUEUE_OVERFLOW)
                || event
                    .file_name()
                    .is_some_and(|name| name.to_bytes() == wal.as_encoded_bytes());
            if reader.is_buffer_empty() {
                break;
            }
        }
        if stop.load(Ordering::Acquire) {
            return;
        }
        if written {
            notifier.wal_written();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_for_generation_past(notifier: &Notifier, seen: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while notifier.generation() == seen && Instant::now() < deadline {
            notifier.wait_past(seen, Duration::from_millis(50));
        }
        notifier.generation() != seen
    }

    #[test]
    fn the_wal_file_is_named_after_the_resolved_database() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.db");
        std::fs::write(&real, b"").unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (watched, name) = wal_location(&link).unwrap();
        assert_eq!(watched, std::fs::canonicalize(dir.path()).unwrap());
        assert_eq!(name, "real.db-wal");
        assert!(wal_location(&dir.path().join("missing.db")).is_err());
    }

    #[test]
    fn writes_to_the_wal_file_wake_and_other_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        std::fs::write(&db, b"").unwrap();
        let notifier = Arc::new(Notifier::default());
        let waker = WalWaker::start(&db, Arc::clone(&notifier)).unwrap();
        assert!(notifier.check_interval(Instant::now()).is_none());

        // Another file in the directory: no wake-up.
        let seen = notifier.generation();
        std::fs::write(dir.path().join("other"), b"x").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(notifier.generation(), seen);

        // The -wal file created and written: woken, and checks become frequent.
        let seen = notifier.generation();
        std::fs::write(dir.path().join("w.db-wal"), b"frames").unwrap();
        assert!(wait_for_generation_past(&notifier, seen), "not woken");

        // Dropping the waker ends its thread and the watch: back to fixed checks.
        drop(waker);
        assert_eq!(
            notifier.check_interval(Instant::now()),
            Some(super::super::CHANGE_CHECK)
        );
    }

    #[test]
    fn a_removed_directory_ends_the_waker() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let db = sub.join("gone.db");
        std::fs::write(&db, b"").unwrap();
        let notifier = Arc::new(Notifier::default());
        let waker = WalWaker::start(&db, Arc::clone(&notifier)).unwrap();
        let seen = notifier.generation();
        std::fs::remove_dir_all(&sub).unwrap();
        assert!(wait_for_generation_past(&notifier, seen), "not told");
        let deadline = Instant::now() + Duration::from_secs(5);
        while notifier.check_interval(Instant::now()).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            notifier.check_interval(Instant::now()),
            Some(super::super::CHANGE_CHECK)
        );
        drop(waker);
    }
}

//! The producer's wake-up call to a waiting consumer: a Unix datagram socket the consumer
//! binds at `<ring path>.bell`, to which the producer sends one byte after each message.
//!
//! The ring itself never blocks and needs no notification; the doorbell only shortens the
//! time a consumer that waits between polls takes to notice a message (from its poll period
//! to the wake-up latency of a blocked `recv`, tens of microseconds). It is best effort on
//! both ends: a consumer that cannot bind the socket, or a producer whose datagram is refused
//! (no consumer, the socket's buffer full of earlier rings), falls back to polling, which is
//! always correct. Pathname sockets are reached through the file system, so the two ends
//! need not share a network namespace.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The doorbell path of the ring at `ring`: the same path with `.bell` appended.
pub fn bell_path(ring: &Path) -> PathBuf {
    let mut name = ring.as_os_str().to_owned();
    name.push(".bell");
    PathBuf::from(name)
}

/// The consumer's end: a bound socket it waits on.
#[derive(Debug)]
pub struct Bell {
    socket: UnixDatagram,
    path: PathBuf,
    inode: u64,
}

impl Bell {
    /// Binds the doorbell of the ring at `ring`, replacing a stale socket file left by an
    /// earlier consumer.
    pub fn bind(ring: &Path) -> io::Result<Bell> {
        let path = bell_path(ring);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let socket = UnixDatagram::bind(&path)?;
        let inode = std::fs::metadata(&path)?.ino();
        Ok(Bell {
            socket,
            path,
            inode,
        })
    }

    /// Waits until the producer rings or `timeout` passes; returns whether it rang. One
    /// call consumes one ring (several rings since the last wait make the next waits return
    /// at once, which costs a poll each, never a missed message).
    pub fn wait(&self, timeout: Duration) -> bool {
        if timeout.is_zero() {
            return false;
        }
        if self.socket.set_read_timeout(Some(timeout)).is_err() {
            std::thread::sleep(timeout);
            return false;
        }
        let mut byte = [0u8; 8];
        self.socket.recv(&mut byte).is_ok()
    }
}

impl Drop for Bell {
    fn drop(&mut self) {
        // Only our own socket file: a newer consumer may have replaced it.
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The producer's end: an unbound, non-blocking socket that sends to the bell's path.
#[derive(Debug)]
pub struct Ringer {
    socket: Option<UnixDatagram>,
    path: PathBuf,
}

impl Ringer {
    /// A ringer for the ring at `ring` (no consumer need be listening yet).
    pub fn new(ring: &Path) -> Ringer {
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .ok();
        Ringer {
            socket,
            path: bell_path(ring),
        }
    }

    /// Rings once; returns whether a consumer's socket took the datagram.
    pub fn ring(&self) -> bool {
        self.socket
            .as_ref()
            .is_some_and(|s| s.send_to(&[1], &self.path).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_ring_wakes_the_waiter_and_silence_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let ring = dir.path().join("ring");
        let bell = Bell::bind(&ring).unwrap();
        let ringer = Ringer::new(&ring);
        let started = Instant::now();
        assert!(!bell.wait(Duration::from_millis(30)));
        assert!(started.elapsed() >= Duration::from_millis(25));
        let waiter = std::thread::spawn(move || {
            let t = Instant::now();
            (bell.wait(Duration::from_secs(5)), t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(ringer.ring());
        let (rang, took) = waiter.join().unwrap();
        assert!(rang);
        assert!(took < Duration::from_secs(5), "woke after {took:?}");
    }

    #[test]
    fn a_ringer_without_a_consumer_fails_quietly() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!Ringer::new(&dir.path().join("ring")).ring());
    }

    #[test]
    fn a_stale_bell_is_replaced_and_only_its_owner_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let ring = dir.path().join("ring");
        let old = Bell::bind(&ring).unwrap();
        let new = Bell::bind(&ring).unwrap();
        drop(old);
        assert!(
            bell_path(&ring).exists(),
            "the old bell removed the new one's file"
        );
        assert!(Ringer::new(&ring).ring());
        assert!(new.wait(Duration::from_secs(1)));
        drop(new);
        assert!(!bell_path(&ring).exists());
    }
}

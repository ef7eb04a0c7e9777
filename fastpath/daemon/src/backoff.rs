//! The adaptive mode's wait: spin while frames keep coming, then block in `poll(2)` on the
//! worker's sockets (woken by the first received frame) when they stop.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};

/// What an idle pass should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Spin: frames moved recently.
    Spin,
    /// Block on the sockets for at most this long (a received frame ends it at once).
    Wait(Duration),
}

/// Bounded back-off of the adaptive mode: spin for a while, then wait in `poll(2)`.
#[derive(Debug, Default)]
pub struct Backoff {
    idle_passes: u32,
}

impl Backoff {
    const SPIN_PASSES: u32 = 512;
    /// Longest wait with nothing in flight: bounds how late a command, a generation swap or
    /// a heartbeat can be (RX wakes the poll at once).
    pub const MAX_WAIT: Duration = Duration::from_millis(10);
    /// Wait with frames in flight (waiting for TX completions, which `poll` does not signal).
    pub const IN_FLIGHT_WAIT: Duration = Duration::from_millis(1);

    /// A pass moved frames: spin again.
    pub fn busy(&mut self) {
        self.idle_passes = 0;
    }

    /// A pass found nothing: spin, or wait once spinning went on long enough.
    /// `in_flight`: some port has frames submitted and not completed, or waiting to submit.
    pub fn idle(&mut self, in_flight: bool) -> Idle {
        self.idle_passes = self.idle_passes.saturating_add(1);
        if self.idle_passes <= Self::SPIN_PASSES {
            std::hint::spin_loop();
            return Idle::Spin;
        }
        Idle::Wait(if in_flight {
            Self::IN_FLIGHT_WAIT
        } else {
            Self::MAX_WAIT
        })
    }
}

/// Blocks in `poll(2)` until a socket has received frames (POLLIN) or `timeout` passes; with
/// no socket, sleeps. `store` is the reused fd vector (no allocation per wait).
pub fn wait_for_rx<'a>(
    sockets: impl Iterator<Item = BorrowedFd<'a>>,
    store: Vec<PollFd<'static>>,
    timeout: Duration,
) -> Vec<PollFd<'static>> {
    let mut fds = recycle_fds(store);
    fds.extend(sockets.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
    if fds.is_empty() {
        std::thread::sleep(timeout);
        return recycle_fds(fds);
    }
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    // EINTR or any other error: the next pass looks at the rings anyway.
    let _ = nix::poll::poll(&mut fds, PollTimeout::from(ms));
    recycle_fds(fds)
}

/// Empties the poll fd vector and gives it another lifetime, keeping its buffer (the
/// in-place collect of an empty vector of a same-layout type does not allocate).
fn recycle_fds<'a, 'b>(mut v: Vec<PollFd<'a>>) -> Vec<PollFd<'b>> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("vector is empty"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_spins_then_waits_bounded() {
        let mut b = Backoff::default();
        for _ in 0..Backoff::SPIN_PASSES {
            assert_eq!(b.idle(false), Idle::Spin);
        }
        assert_eq!(b.idle(false), Idle::Wait(Backoff::MAX_WAIT));
        assert_eq!(b.idle(true), Idle::Wait(Backoff::IN_FLIGHT_WAIT));
        b.busy();
        assert_eq!(b.idle_passes, 0);
        assert_eq!(b.idle(false), Idle::Spin);
    }

    #[test]
    fn poll_fd_vector_keeps_the_allocation() {
        use std::os::fd::AsFd;
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let v: Vec<PollFd<'static>> = Vec::with_capacity(4);
        let ptr = v.as_ptr() as usize;
        let mut w = recycle_fds(v);
        w.push(PollFd::new(sock.as_fd(), PollFlags::POLLIN));
        assert_eq!(w.as_ptr() as usize, ptr, "same buffer, no allocation");
        let back: Vec<PollFd<'static>> = recycle_fds(w);
        assert!(back.is_empty());
        assert_eq!(back.as_ptr() as usize, ptr);
    }

    #[test]
    fn wait_ends_when_a_socket_is_readable() {
        use std::os::fd::AsFd;
        use std::time::Instant;
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let wait = Duration::from_millis(200);
        let t = Instant::now();
        let store = wait_for_rx(std::iter::once(sock.as_fd()), Vec::new(), wait);
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "nothing to read: waits"
        );
        sock.send_to(b"x", sock.local_addr().unwrap()).unwrap();
        let t = Instant::now();
        let store = wait_for_rx(std::iter::once(sock.as_fd()), store, wait);
        assert!(
            t.elapsed() < Duration::from_millis(150),
            "readable: returns at once"
        );
        assert!(store.is_empty());
    }
}

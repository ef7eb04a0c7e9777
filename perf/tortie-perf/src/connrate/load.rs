//! How busy the smoltcp end hosts were: the evidence for whether they, rather than the
//! system under test, set a trial's rate.
//!
//! Their thread polls without sleeping, so its CPU time is always the whole trial and says
//! nothing. What counts is the time spent on loop passes that had packets to handle (or
//! timers to run), split into userspace work and `sendto`, over the sending part of the
//! trial (the drain after the deadline is left out).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::xskdev::DevStats;

/// Where the smoltcp end hosts' one thread spent a trial.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EndHostLoad {
    /// Share of the trial's wall time spent on packets (receiving, TCP, the two
    /// applications, sending). Near 1, the end hosts set the rate; on a machine shared
    /// with other work it also counts the time they were pre-empted in the middle of a pass.
    pub busy_share: f64,
    /// Of that, µs per completed connection in userspace: copying frames in, smoltcp, the
    /// client and server logic.
    pub stack_us_per_conn: f64,
    /// µs per completed connection inside `sendto` on the AF_XDP sockets: the kernel's copy
    /// and veth transmit, and whatever runs inline behind it on the same CPU (for the
    /// kernel systems, forwarding the server's replies; for tortie-fastpath, the steering
    /// program's redirect to its worker).
    pub send_us_per_conn: f64,
    /// Segments both end hosts sent per completed connection.
    pub segments_per_conn: f64,
    /// Segments per `sendto` (the AF_XDP transmit batch).
    pub segments_per_kick: f64,
}

/// Accumulates an [`EndHostLoad`] over one trial.
#[derive(Debug)]
pub struct LoadMeter {
    stack: Duration,
    send: Duration,
    start: (DevStats, DevStats),
    stop: Option<(DevStats, DevStats)>,
}

impl LoadMeter {
    /// Start with the client's and server's device counters.
    pub fn start(client: DevStats, server: DevStats) -> LoadMeter {
        LoadMeter {
            stack: Duration::ZERO,
            send: Duration::ZERO,
            start: (client, server),
            stop: None,
        }
    }

    /// One busy pass: userspace work from `began` to `sending`, `sendto` until `done`.
    pub fn record(&mut self, began: Instant, sending: Instant, done: Instant) {
        if self.stop.is_none() {
            self.stack += sending.saturating_duration_since(began);
            self.send += done.saturating_duration_since(sending);
        }
    }

    /// The deadline passed: take the counters (only the first call counts).
    pub fn stop(&mut self, client: DevStats, server: DevStats) {
        self.stop.get_or_insert((client, server));
    }

    /// The load over a trial of `duration` that completed `conns` connections.
    pub fn finish(self, duration: Duration, conns: u64) -> EndHostLoad {
        let (c0, s0) = self.start;
        let (c1, s1) = self.stop.unwrap_or(self.start);
        let segments = (c1.tx + s1.tx).saturating_sub(c0.tx + s0.tx);
        let kicks = (c1.kicks + s1.kicks).saturating_sub(c0.kicks + s0.kicks);
        let conns = conns.max(1) as f64;
        let per_conn = |d: Duration| d.as_secs_f64() * 1e6 / conns;
        let busy = (self.stack + self.send).as_secs_f64();
        EndHostLoad {
            busy_share: (busy / duration.as_secs_f64().max(1e-9)).min(1.0),
            stack_us_per_conn: per_conn(self.stack),
            send_us_per_conn: per_conn(self.send),
            segments_per_conn: segments as f64 / conns,
            segments_per_kick: segments as f64 / kicks.max(1) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(tx: u64, kicks: u64) -> DevStats {
        DevStats {
            tx,
            kicks,
            ..DevStats::default()
        }
    }

    #[test]
    fn load_is_per_connection_and_counts_only_until_the_deadline() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut m = LoadMeter::start(stats(100, 10), stats(50, 5));
        m.record(t, t + ms(300), t + ms(800));
        m.stop(stats(500_100, 15_010), stats(400_050, 15_005));
        // After the deadline: neither time nor counters count.
        m.record(t, t + ms(1_000), t + ms(2_000));
        m.stop(stats(900_000, 90_000), stats(900_000, 90_000));
        let l = m.finish(Duration::from_secs(2), 100_000);
        assert!((l.busy_share - 0.4).abs() < 1e-9, "{l:?}");
        assert!((l.stack_us_per_conn - 3.0).abs() < 1e-9, "{l:?}");
        assert!((l.send_us_per_conn - 5.0).abs() < 1e-9, "{l:?}");
        assert!((l.segments_per_conn - 9.0).abs() < 1e-9, "{l:?}");
        assert!((l.segments_per_kick - 30.0).abs() < 1e-9, "{l:?}");
    }

    #[test]
    fn an_empty_trial_gives_zeros_and_a_share_is_at_most_one() {
        let idle = LoadMeter::start(stats(0, 0), stats(0, 0)).finish(Duration::ZERO, 0);
        assert_eq!(idle.busy_share, 0.0);
        assert_eq!(idle.segments_per_conn, 0.0);
        let t = Instant::now();
        let mut m = LoadMeter::start(stats(0, 0), stats(0, 0));
        m.record(t, t + Duration::from_secs(3), t + Duration::from_secs(3));
        assert_eq!(m.finish(Duration::from_secs(2), 1).busy_share, 1.0);
    }
}

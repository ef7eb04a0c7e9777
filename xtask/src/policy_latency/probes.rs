//! The probes of the policy-latency bench: a prober thread inside the sending workload's
//! namespace that sends one UDP datagram every [`PROBE_INTERVAL`] (no process per probe), and
//! sink threads inside the receiving workload's namespace that timestamp each arrival. Both
//! run in this process, so their [`Instant`]s compare directly.
//!
//! Each probe is a new flow (source port and destination port rotate over
//! [`SOURCE_PORTS`] x [`SINK_PORTS`]): an established flow keeps its verdict across policy
//! changes, as in Calico, so only new flows show the policy in force.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::netns::{self, NsThread};

/// Time between probes.
pub const PROBE_INTERVAL: Duration = Duration::from_micros(200);
/// Source ports the prober binds (below the kernel's ephemeral range, so nothing else uses
/// them in the workload).
pub const SOURCE_PORTS: std::ops::Range<u16> = 20000..30000;
/// Ports the sink listens on.
pub const SINK_PORTS: std::ops::Range<u16> = 9100..9116;
/// Probes one run may send (memory is reserved up front: two 8-byte slots each).
pub const MAX_PROBES: usize = 1 << 20;

/// Send and receive times of every probe, in nanoseconds after `base` (0: not yet).
pub struct Record {
    /// The clock's origin.
    pub base: Instant,
    /// When probe `i` was sent.
    pub sent: Vec<AtomicU64>,
    /// When probe `i` arrived.
    pub received: Vec<AtomicU64>,
    /// Probes sent so far.
    pub count: AtomicU64,
}

impl Record {
    fn new() -> Record {
        Record {
            base: Instant::now(),
            sent: (0..MAX_PROBES).map(|_| AtomicU64::new(0)).collect(),
            received: (0..MAX_PROBES).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
        }
    }

    /// Nanoseconds from `base` to `t`.
    pub fn at(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn now(&self) -> u64 {
        self.at(Instant::now()).max(1)
    }

    /// A copy of the probes `from..` sent so far: (sent, received or 0).
    pub fn since(&self, from: usize) -> Vec<(u64, u64)> {
        let count = usize::try_from(self.count.load(Ordering::Acquire)).unwrap_or(0);
        (from..count.min(MAX_PROBES))
            .map(|i| {
                (
                    self.sent[i].load(Ordering::Acquire),
                    self.received[i].load(Ordering::Acquire),
                )
            })
            .collect()
    }
}

/// The running prober and sink; stopped on drop.
pub struct Probes {
    /// What they recorded.
    pub record: Arc<Record>,
    /// Whether the prober sends (it idles, sending nothing, while false).
    pub active: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Vec<NsThread<()>>,
}

impl Probes {
    /// Starts the sink in `sink_ns` (listening on [`SINK_PORTS`]) and the prober in
    /// `prober_ns`, sending to `target` while [`Probes::active`] is set.
    pub fn start(prober_ns: &str, sink_ns: &str, target: IpAddr) -> Result<Probes> {
        let record = Arc::new(Record::new());
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for port in SINK_PORTS {
            let socket = netns::run_in(sink_ns, move || {
                let s = UdpSocket::bind(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port))?;
                s.set_read_timeout(Some(Duration::from_millis(20)))?;
                Ok::<_, std::io::Error>(s)
            })?
            .map_err(|err| crate::error::XtaskError::Netns {
                namespace: sink_ns.into(),
                message: format!("UDP bind :{port}: {err}"),
            })?;
            let (record, stop) = (record.clone(), stop.clone());
            threads.push(netns::spawn_in(sink_ns, move || {
                sink(&socket, &record, &stop)
            })?);
        }
        let (r, s, a) = (record.clone(), stop.clone(), active.clone());
        threads.push(netns::spawn_in(prober_ns, move || {
            prober(target, &r, &s, &a)
        })?);
        Ok(Probes {
            record,
            active,
            stop,
            threads,
        })
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn sink(socket: &UdpSocket, record: &Record, stop: &AtomicBool) {
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        if let Ok(n) = socket.recv(&mut buf)
            && n >= 8
        {
            let seq = u64::from_be_bytes(buf[..8].try_into().unwrap_or([0xff; 8]));
            if let Some(slot) = usize::try_from(seq)
                .ok()
                .and_then(|i| record.received.get(i))
            {
                let _ = slot.compare_exchange(0, record.now(), Ordering::AcqRel, Ordering::Relaxed);
            }
        }
    }
}

fn prober(target: IpAddr, record: &Record, stop: &AtomicBool, active: &AtomicBool) {
    let ports = SINK_PORTS.len() as u64;
    let sources = u64::from(SOURCE_PORTS.end - SOURCE_PORTS.start);
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if !active.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
            next = Instant::now();
            continue;
        }
        let seq = record.count.load(Ordering::Relaxed);
        let Ok(i) = usize::try_from(seq) else { return };
        if i >= MAX_PROBES {
            return;
        }
        let src = SOURCE_PORTS.start + u16::try_from(seq % sources).unwrap_or(0);
        let dst = SINK_PORTS.start + u16::try_from((seq / sources + seq) % ports).unwrap_or(0);
        if let Ok(socket) = UdpSocket::bind(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), src)) {
            record.sent[i].store(record.now(), Ordering::Release);
            let _ = socket.send_to(&seq.to_be_bytes(), SocketAddr::new(target, dst));
        } else {
            // The port is taken (a socket not yet closed): the slot stays unsent, skipped by
            // the analysis.
        }
        record.count.store(seq + 1, Ordering::Release);
        next += PROBE_INTERVAL;
        let now = Instant::now();
        if next > now {
            let wait = next - now;
            // Sleep the bulk, spin the rest: thread sleeps overshoot by tens of microseconds.
            if wait > Duration::from_micros(80) {
                std::thread::sleep(wait - Duration::from_micros(60));
            }
            while Instant::now() < next {
                std::hint::spin_loop();
            }
        } else if now - next > Duration::from_millis(5) {
            next = now;
        }
    }
}

/// The verdict a change installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// New flows are allowed from the change on.
    Allow,
    /// New flows are dropped from the change on.
    Deny,
}

/// When the first probe with the new verdict was sent, in nanoseconds after `commit`, from
/// `probes` = (sent, received) in sending order (unsent slots have sent == 0). `settle` is how
/// long after its sending a probe that has not arrived counts as dropped. `None` while the
/// probes do not show the new verdict yet.
///
/// Allow: the first probe sent after the commit that arrived. Deny: the probe after the last
/// one that arrived (a lost probe before it cannot fake an early enforcement), provided at
/// least `quiet` probes after it, all older than `settle`, stayed away.
pub fn first_new_verdict(
    probes: &[(u64, u64)],
    commit: u64,
    now: u64,
    settle: u64,
    quiet: usize,
    verdict: Verdict,
) -> Option<u64> {
    let after: Vec<(u64, u64)> = probes
        .iter()
        .copied()
        .filter(|(sent, _)| *sent != 0 && *sent >= commit)
        .collect();
    match verdict {
        Verdict::Allow => after
            .iter()
            .find(|(_, received)| *received != 0)
            .map(|(sent, _)| sent - commit),
        Verdict::Deny => {
            let first_dropped = after
                .iter()
                .rposition(|(_, received)| *received != 0)
                .map_or(0, |i| i + 1);
            let tail = &after[first_dropped.min(after.len())..];
            let settled = tail.iter().filter(|(sent, _)| sent + settle <= now).count();
            (settled >= quiet).then(|| tail[0].0 - commit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn probes(from: u64, step: u64, arrived: impl Fn(u64) -> bool, n: u64) -> Vec<(u64, u64)> {
        (0..n)
            .map(|i| {
                let sent = from + i * step;
                (sent, if arrived(sent) { sent + MS / 10 } else { 0 })
            })
            .collect()
    }

    #[test]
    fn allow_is_the_first_arrival_after_the_commit() {
        // Probes every 0.2 ms from t=0; the commit at 10 ms; enforced from 13 ms on.
        let p = probes(0, MS / 5, |s| !(10 * MS..13 * MS).contains(&s), 200);
        assert_eq!(
            first_new_verdict(&p, 10 * MS, 40 * MS, 5 * MS, 10, Verdict::Allow),
            Some(3 * MS)
        );
        // Nothing arrived after the commit yet.
        let p = probes(0, MS / 5, |s| s < 10 * MS, 60);
        assert_eq!(
            first_new_verdict(&p, 10 * MS, 40 * MS, 5 * MS, 10, Verdict::Allow),
            None
        );
    }

    #[test]
    fn deny_is_the_probe_after_the_last_arrival_once_quiet() {
        // One probe lost early (at 10.4 ms) must not count as the enforcement.
        let p = probes(0, MS / 5, |s| s != 10 * MS + 2 * MS / 5 && s < 12 * MS, 200);
        assert_eq!(
            first_new_verdict(&p, 10 * MS, 40 * MS, 5 * MS, 10, Verdict::Deny),
            Some(2 * MS)
        );
        // Too recent to tell: the missing probes may still be in flight.
        assert_eq!(
            first_new_verdict(&p, 10 * MS, 12 * MS + MS, 5 * MS, 10, Verdict::Deny),
            None
        );
        // Unsent slots are skipped.
        let mut p = probes(0, MS / 5, |s| s < 11 * MS, 200);
        p[60] = (0, 0);
        assert_eq!(
            first_new_verdict(&p, 10 * MS, 40 * MS, 5 * MS, 10, Verdict::Deny),
            Some(MS)
        );
    }
}

//! The per-queue transmit and receive loops. Each runs on its own (optionally pinned) thread with
//! its own UMEM and AF_XDP port, and publishes running totals through relaxed atomics once per
//! batch for the progress line.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};
use tortie_xsk::{DescBatch, FramePool, Port, PortConfig, Umem, UmemSpec};

use super::latency::Histogram;
use super::template::{Template, parse_stamp};

/// Frames moved per ring operation.
pub const BATCH: usize = 64;

/// CLOCK_MONOTONIC in nanoseconds: comparable between processes on one host, so the sender and
/// a receiver in another network namespace share the time base.
pub fn now_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Nanoseconds the calling thread has spent on a CPU (user + system), so rates on a shared
/// machine can be divided by the CPU time the worker actually got.
pub fn thread_cpu_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Running totals of one worker, read by the progress line.
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets.
    pub packets: AtomicU64,
    /// Frame bytes (without FCS).
    pub bytes: AtomicU64,
}

/// Where a worker's port lives and how it is sized.
#[derive(Debug, Clone)]
pub struct PortSite {
    /// Interface name.
    pub ifname: String,
    /// Queue id.
    pub queue: u32,
    /// CPU to pin to, if any.
    pub core: Option<core_affinity::CoreId>,
    /// Network namespace this thread enters before opening the port (the interface name is
    /// resolved there).
    pub netns: Option<std::path::PathBuf>,
}

fn open(site: &PortSite, fill_target: u32) -> anyhow::Result<(Umem, FramePool, Port)> {
    if let Some(ns) = &site.netns {
        // A network namespace is per thread: only this worker moves.
        let f = std::fs::File::open(ns)
            .map_err(|e| anyhow::anyhow!("opening network namespace {}: {e}", ns.display()))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| anyhow::anyhow!("entering network namespace {}: {e}", ns.display()))?;
    }
    if let Some(core) = site.core {
        // Best effort: a failed pin only costs speed.
        let _ = core_affinity::set_for_current(core);
    }
    let (umem, mut pool) = Umem::new(UmemSpec {
        frames: 4096,
        frame_size: 2048,
        ring_size: 2048,
    })?;
    let cfg = PortConfig {
        fill_target,
        ..PortConfig::default()
    };
    // libxdp attaches its redirect program on the first bind of an interface and reuses it for
    // the next queues; concurrent first binds race, so ports open one at a time.
    static OPEN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    // A socket closed a moment ago on the same queue (the previous trial of a harness) is
    // released by the kernel asynchronously, and the queue reads busy until then: retry for a
    // bounded while (20 tries, 2 s in all) before giving up.
    let mut tries = 0;
    let port = loop {
        match Port::open(&umem, &site.ifname, site.queue, &cfg, &mut pool) {
            Ok(p) => break p,
            Err(e) if tries >= 19 => return Err(e.into()),
            Err(_) => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    Ok((umem, pool, port))
}

/// What one transmit worker is asked to do.
#[derive(Debug)]
pub struct TxJob {
    /// Port.
    pub site: PortSite,
    /// Templates, indexed `flow * sizes + size`.
    pub templates: Arc<Vec<Template>>,
    /// Frame sizes cycled per flow.
    pub sizes: usize,
    /// Flows this worker sends: `first_flow, first_flow + stride, ...` (below `flows`).
    pub first_flow: usize,
    /// Step between this worker's flows (the queue count).
    pub stride: usize,
    /// Total flows.
    pub flows: usize,
    /// Packets to send (`u64::MAX`: until stopped).
    pub count: u64,
    /// Packets per second for this worker (0: as fast as possible).
    pub rate: u64,
}

/// What a transmit worker did.
#[derive(Debug, Clone, Copy, Default)]
pub struct TxResult {
    /// Packets sent.
    pub sent: u64,
    /// The thread's CPU time (ns) from `go` to the end of the drain.
    pub cpu_ns: u64,
    /// Time spent sending (ns), from `go` to the last submission, before the drain.
    pub send_ns: u64,
}

/// Send, once `go` is set, until `count` packets are out or `stop` is set.
pub fn tx_loop(
    job: TxJob,
    counters: &Counters,
    go: &AtomicBool,
    stop: &AtomicBool,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> TxResult {
    let (umem, mut pool, mut port) = match open(&job.site, 0) {
        Ok(x) => {
            let _ = ready.send(Ok(()));
            x
        }
        Err(e) => {
            let _ = ready.send(Err(format!(
                "tx {} queue {}: {e:#}",
                job.site.ifname, job.site.queue
            )));
            return TxResult::default();
        }
    };
    // Send only once every port (receivers included) is bound; `stop` ends the wait.
    while !go.load(Ordering::Acquire) {
        if stop.load(Ordering::Relaxed) {
            return TxResult::default();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let cpu0 = thread_cpu_ns();
    let my_flows: Vec<usize> = (job.first_flow..job.flows).step_by(job.stride).collect();
    if my_flows.is_empty() {
        return TxResult::default();
    }
    let mut seqs = vec![0u32; my_flows.len()];
    let mut batch = DescBatch::with_capacity(BATCH);
    let (mut sent, mut bytes, mut pending, mut k) = (0u64, 0u64, 0u64, 0usize);
    let start = Instant::now();
    while sent < job.count && !stop.load(Ordering::Relaxed) {
        port.reap_completions(&mut pool);
        let mut want = (job.count - sent).min(BATCH as u64) as usize;
        if job.rate > 0 {
            let due = (start.elapsed().as_nanos() as u64 as u128 * job.rate as u128 / 1_000_000_000)
                as u64;
            let allowed = due.saturating_sub(sent + batch.len() as u64);
            if allowed == 0 && batch.is_empty() {
                if job.rate < 1_000_000 {
                    std::thread::sleep(Duration::from_micros(20));
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            want = want.min(allowed as usize);
        }
        let ts = now_ns();
        while batch.len() < want {
            let Some(mut d) = pool.alloc() else { break };
            let slot = k % my_flows.len();
            let flow = my_flows[slot];
            let seq = seqs[slot];
            let t = &job.templates[flow * job.sizes + (seq as usize % job.sizes)];
            if umem.write(&mut d, &t.bytes).is_err() {
                pool.free(d);
                break;
            }
            t.stamp(umem.bytes_mut(&mut d), flow as u16, seq, ts);
            pending += t.bytes.len() as u64;
            seqs[slot] = seq.wrapping_add(1);
            k += 1;
            let _ = batch.push(d);
        }
        match port.tx_batch(&mut batch) {
            Ok(n) => sent += n as u64,
            Err(_) => break,
        }
        let left: u64 = batch.iter().map(|d| d.len() as u64).sum();
        bytes += pending - left;
        pending = left;
        counters.packets.store(sent, Ordering::Relaxed);
        counters.bytes.store(bytes, Ordering::Relaxed);
    }
    let send_ns = start.elapsed().as_nanos() as u64;
    // Drain: frames still in the TX ring are in flight; kick until the kernel has them all.
    batch.free_all(&mut pool);
    let deadline = Instant::now() + Duration::from_secs(2);
    while pool.len() < 4096 && Instant::now() < deadline {
        if port.reap_completions(&mut pool) == 0 {
            let _ = port.kick_tx();
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    TxResult {
        sent,
        cpu_ns: thread_cpu_ns().saturating_sub(cpu0),
        send_ns,
    }
}

/// Per-flow receive state: loss is the gap between the highest sequence seen and the packets
/// received (tail loss is only visible against the sender's count).
#[derive(Debug, Clone, Copy, Default)]
struct FlowRx {
    packets: u64,
    /// Highest sequence number seen plus one (0: none seen).
    next: u64,
    out_of_order: u64,
}

impl FlowRx {
    /// Count one packet of this flow with sequence number `seq`.
    #[inline]
    fn record(&mut self, seq: u32) {
        self.packets += 1;
        let seq = u64::from(seq);
        if seq + 1 > self.next {
            self.next = seq + 1;
        } else {
            self.out_of_order += 1;
        }
    }

    /// Packets missing below the highest sequence number seen.
    fn gaps(&self) -> u64 {
        self.next.saturating_sub(self.packets)
    }
}

/// What a receive worker found.
#[derive(Debug, Default)]
pub struct RxResult {
    /// Stamped packets received.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Packets missing by sequence number (gaps below the highest sequence seen, per flow).
    pub seq_gaps: u64,
    /// Packets whose sequence number was below one already seen.
    pub out_of_order: u64,
    /// One-way latency.
    pub latency: Histogram,
    /// Monotonic time of the first and last stamped packet (ns).
    pub first_ns: u64,
    /// See `first_ns`.
    pub last_ns: u64,
    /// Frames the kernel could not deliver to the socket (`XDP_STATISTICS` `rx_dropped`,
    /// which counts RX-ring-full and fill-ring-empty drops alike).
    pub kernel_dropped: u64,
    /// CPU time of the receive thread (ns); it busy-polls, so this includes idle polling.
    pub cpu_ns: u64,
}

/// Receive until `stop` is set.
pub fn rx_loop(
    site: PortSite,
    counters: &Counters,
    stop: &AtomicBool,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> RxResult {
    let mut res = RxResult::default();
    let (umem, mut pool, mut port) = match open(&site, 2048) {
        Ok(x) => {
            let _ = ready.send(Ok(()));
            x
        }
        Err(e) => {
            let _ = ready.send(Err(format!(
                "rx {} queue {}: {e:#}",
                site.ifname, site.queue
            )));
            return res;
        }
    };
    // Indexed by the 16-bit flow id of the stamp, so a receiver needs no flow count.
    let mut state = vec![FlowRx::default(); 1 << 16];
    let mut batch = DescBatch::with_capacity(BATCH);
    let mut idle = 0u32;
    let cpu0 = thread_cpu_ns();
    while !stop.load(Ordering::Relaxed) {
        let n = match port.rx_batch(&mut batch, &mut pool) {
            Ok(n) => n,
            Err(_) => break,
        };
        if n == 0 {
            idle += 1;
            if idle > 1024 {
                std::thread::sleep(Duration::from_micros(10));
            }
            continue;
        }
        idle = 0;
        let now = now_ns();
        for d in batch.iter() {
            let frame = umem.bytes(d);
            let Some(st) = parse_stamp(frame) else {
                continue;
            };
            let Some(f) = state.get_mut(usize::from(st.flow)) else {
                continue;
            };
            f.record(st.seq);
            res.packets += 1;
            res.bytes += frame.len() as u64;
            res.latency.record(now.saturating_sub(st.ts_ns));
            if res.first_ns == 0 {
                res.first_ns = now;
            }
            res.last_ns = now;
        }
        batch.free_all(&mut pool);
        counters.packets.store(res.packets, Ordering::Relaxed);
        counters.bytes.store(res.bytes, Ordering::Relaxed);
    }
    res.cpu_ns = thread_cpu_ns().saturating_sub(cpu0);
    if let Ok(k) = port.kernel_stats() {
        res.kernel_dropped = k.rx_dropped;
    }
    for f in &state {
        res.seq_gaps += f.gaps();
        res.out_of_order += f.out_of_order;
    }
    res
}

#[cfg(test)]
mod tests {
    use super::FlowRx;

    #[test]
    fn sequence_gaps_and_reordering_are_counted() {
        let mut f = FlowRx::default();
        for seq in [0, 1, 2, 5, 3, 7] {
            f.record(seq);
        }
        // Seen 0,1,2,3,5,7 of 0..=7: 4 and 6 missing; 3 arrived after 5.
        assert_eq!((f.packets, f.gaps(), f.out_of_order), (6, 2, 1));
        let mut clean = FlowRx::default();
        (0..100).for_each(|s| clean.record(s));
        assert_eq!((clean.gaps(), clean.out_of_order), (0, 0));
        assert_eq!(FlowRx::default().gaps(), 0);
    }
}

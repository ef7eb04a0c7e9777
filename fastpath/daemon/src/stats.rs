//! Counters a worker publishes for the metrics endpoint and the status file.
//!
//! A worker counts in plain integers on its own stack and the pipeline's [`Counters`]; every
//! [`PUBLISH_INTERVAL_NS`] it copies them into its [`WorkerStats`] with relaxed atomic
//! stores (no lock, no allocation). Readers (the metrics scrape, the status writer) load
//! them with relaxed loads: each value is exact as of some publish, values are not a
//! consistent snapshot of one instant, which counters do not need.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use tortie_pipeline::{Counters, DropReason};

/// How often a worker publishes its counters (100 ms).
pub const PUBLISH_INTERVAL_NS: u64 = 100_000_000;
/// Interfaces one worker reports counters for (more are served, but summed in slot 0's
/// totals only).
pub const MAX_PORTS: usize = 256;
/// Rule slots published per worker (rules beyond it are counted by the pipeline but not
/// exported).
pub const MAX_RULE_SLOTS: usize = 16 * 1024;

/// Drops the worker itself decides, outside the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerDrop {
    /// The pipeline sent a frame to an interface this worker has no socket on.
    TxNoPort,
    /// The interface's TX batch was full (the TX ring has been full for a while).
    TxBatchFull,
    /// A frame the pipeline transmits grew past the frame's data area.
    TxTooLong,
}

impl WorkerDrop {
    /// Every worker drop.
    pub const ALL: [WorkerDrop; 3] = [
        WorkerDrop::TxNoPort,
        WorkerDrop::TxBatchFull,
        WorkerDrop::TxTooLong,
    ];

    /// The counter's name (alongside the pipeline's drop reasons).
    pub fn name(self) -> &'static str {
        match self {
            WorkerDrop::TxNoPort => "tx-no-port",
            WorkerDrop::TxBatchFull => "tx-batch-full",
            WorkerDrop::TxTooLong => "tx-too-long",
        }
    }
}

/// The kernel's per-socket drop counters exported per port (`XDP_STATISTICS`), in
/// [`LocalPort::kernel`] order.
pub const KERNEL_COUNTERS: [&str; 5] = [
    "rx_dropped",
    "rx_ring_full",
    "rx_fill_ring_empty",
    "rx_invalid_descs",
    "tx_invalid_descs",
];

/// How often a worker reads its sockets' kernel counters (one `getsockopt` per socket).
pub const KERNEL_STATS_INTERVAL_NS: u64 = 1_000_000_000;

/// Traffic counters of one port (interface) of a worker.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Interface index (0: slot unused).
    pub if_index: AtomicU32,
    /// Frames received from the socket.
    pub rx_packets: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// Frames submitted to the TX ring.
    pub tx_packets: AtomicU64,
    /// Bytes submitted.
    pub tx_bytes: AtomicU64,
    /// Kernel socket counters ([`KERNEL_COUNTERS`]).
    pub kernel: [AtomicU64; 5],
}

/// Plain per-port counters the worker keeps locally.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalPort {
    /// Interface index.
    pub if_index: u32,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames submitted for TX.
    pub tx_packets: u64,
    /// Bytes submitted for TX.
    pub tx_bytes: u64,
    /// Kernel socket counters ([`KERNEL_COUNTERS`]), as last read.
    pub kernel: [u64; 5],
}

/// One worker's published counters.
#[derive(Debug)]
pub struct WorkerStats {
    /// Worker id.
    pub id: usize,
    /// Core it is pinned to.
    pub core: usize,
    /// Per-port counters (slot order is the worker's port order).
    pub ports: Box<[PortCounters]>,
    /// Pipeline drops by reason (cumulative over pipeline replacements).
    pub drops: Box<[AtomicU64]>,
    /// Worker drops by [`WorkerDrop`] order.
    pub worker_drops: [AtomicU64; 3],
    /// Generation the rule hits below belong to.
    pub rule_generation: AtomicU64,
    /// Rule slots valid below.
    pub rule_slots: AtomicU64,
    /// Hits per rule slot of `rule_generation` (restart with every generation).
    pub rule_hits: Box<[AtomicU64]>,
    /// Loop passes so far.
    pub passes: AtomicU64,
    /// Flows created.
    pub flows_created: AtomicU64,
    /// Frames free in the worker's pool (not posted to a ring, not held).
    pub free_frames: AtomicU64,
    /// Nanoseconds spent in passes that moved at least one frame (excludes idle polling).
    pub busy_ns: AtomicU64,
    /// The worker thread's `SCHED_FIFO` priority as read back at start (0: an ordinary task).
    pub rt_priority: AtomicU32,
}

impl WorkerStats {
    /// Zeroed counters for worker `id` on `core`.
    pub fn new(id: usize, core: usize) -> Self {
        Self {
            id,
            core,
            ports: (0..MAX_PORTS).map(|_| PortCounters::default()).collect(),
            drops: (0..DropReason::COUNT).map(|_| AtomicU64::new(0)).collect(),
            worker_drops: Default::default(),
            rule_generation: AtomicU64::new(0),
            rule_slots: AtomicU64::new(0),
            rule_hits: (0..MAX_RULE_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            passes: AtomicU64::new(0),
            flows_created: AtomicU64::new(0),
            free_frames: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            rt_priority: AtomicU32::new(0),
        }
    }

    /// Copies the worker's local counters in (worker thread only). `drop_base` holds the
    /// drops of pipelines this worker has replaced.
    pub fn publish(
        &self,
        ports: &[LocalPort],
        counters: &Counters,
        drop_base: &[u64; DropReason::COUNT],
        worker_drops: &[u64; 3],
        generation: u64,
        passes: u64,
    ) {
        let r = Ordering::Relaxed;
        for (slot, p) in self.ports.iter().zip(ports.iter()) {
            slot.if_index.store(p.if_index, r);
            slot.rx_packets.store(p.rx_packets, r);
            slot.rx_bytes.store(p.rx_bytes, r);
            slot.tx_packets.store(p.tx_packets, r);
            slot.tx_bytes.store(p.tx_bytes, r);
            for (k, v) in slot.kernel.iter().zip(p.kernel) {
                k.store(v, r);
            }
        }
        for slot in self.ports.iter().skip(ports.len()) {
            if slot.if_index.load(r) == 0 {
                break;
            }
            slot.if_index.store(0, r);
        }
        for reason in DropReason::ALL {
            let i = reason.index();
            self.drops[i].store(drop_base[i] + counters.drops(*reason), r);
        }
        for (slot, v) in self.worker_drops.iter().zip(worker_drops) {
            slot.store(*v, r);
        }
        let hits = counters.rule_hits();
        let n = hits.len().min(MAX_RULE_SLOTS);
        for (slot, v) in self.rule_hits.iter().zip(&hits[..n]) {
            slot.store(*v, r);
        }
        self.rule_slots.store(n as u64, r);
        self.rule_generation.store(generation, r);
        self.passes.store(passes, r);
        self.flows_created.store(counters.flows_created, r);
    }

    /// A plain copy for readers.
    pub fn snapshot(&self) -> WorkerSnapshot {
        let r = Ordering::Relaxed;
        let ports = self
            .ports
            .iter()
            .map(|p| LocalPort {
                if_index: p.if_index.load(r),
                rx_packets: p.rx_packets.load(r),
                rx_bytes: p.rx_bytes.load(r),
                tx_packets: p.tx_packets.load(r),
                tx_bytes: p.tx_bytes.load(r),
                kernel: std::array::from_fn(|i| p.kernel[i].load(r)),
            })
            .take_while(|p| p.if_index != 0)
            .collect();
        let slots = (self.rule_slots.load(r) as usize).min(MAX_RULE_SLOTS);
        WorkerSnapshot {
            id: self.id,
            core: self.core,
            ports,
            drops: DropReason::ALL
                .iter()
                .map(|d| (d.name(), self.drops[d.index()].load(r)))
                .chain(
                    WorkerDrop::ALL
                        .iter()
                        .zip(&self.worker_drops)
                        .map(|(d, v)| (d.name(), v.load(r))),
                )
                .collect(),
            rule_generation: self.rule_generation.load(r),
            rule_hits: self.rule_hits[..slots].iter().map(|h| h.load(r)).collect(),
            passes: self.passes.load(r),
            flows_created: self.flows_created.load(r),
            free_frames: self.free_frames.load(r),
            busy_ns: self.busy_ns.load(r),
            rt_priority: self.rt_priority.load(r),
        }
    }
}

/// A reader's copy of one worker's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerSnapshot {
    /// Worker id.
    pub id: usize,
    /// Core.
    pub core: usize,
    /// Ports in use.
    pub ports: Vec<LocalPort>,
    /// Every drop counter by name (pipeline reasons, then worker drops).
    pub drops: Vec<(&'static str, u64)>,
    /// Generation of the rule hits.
    pub rule_generation: u64,
    /// Hits per rule slot.
    pub rule_hits: Vec<u64>,
    /// Loop passes.
    pub passes: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Free frames in the pool.
    pub free_frames: u64,
    /// Nanoseconds of passes that moved frames.
    pub busy_ns: u64,
    /// `SCHED_FIFO` priority of the worker thread (0: an ordinary task).
    pub rt_priority: u32,
}

impl WorkerSnapshot {
    /// Frames received over every port.
    pub fn rx_packets(&self) -> u64 {
        self.ports.iter().map(|p| p.rx_packets).sum()
    }

    /// Frames transmitted over every port.
    pub fn tx_packets(&self) -> u64 {
        self.ports.iter().map(|p| p.tx_packets).sum()
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|(_, v)| v).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_then_snapshot_round_trips() {
        let s = WorkerStats::new(2, 5);
        let ports = [
            LocalPort {
                if_index: 7,
                rx_packets: 3,
                rx_bytes: 300,
                tx_packets: 2,
                tx_bytes: 200,
                kernel: [1, 2, 3, 4, 5],
            },
            LocalPort {
                if_index: 9,
                rx_packets: 1,
                rx_bytes: 60,
                tx_packets: 0,
                tx_bytes: 0,
                kernel: [0; 5],
            },
        ];
        let mut base = [0u64; DropReason::COUNT];
        base[DropReason::Spoofed.index()] = 4;
        s.publish(&ports, &Counters::default(), &base, &[1, 0, 0], 42, 10);
        let snap = s.snapshot();
        assert_eq!(snap.ports, ports.to_vec());
        assert_eq!((snap.rx_packets(), snap.tx_packets()), (4, 2));
        assert!(snap.drops.contains(&("spoofed-source", 4)));
        assert!(snap.drops.contains(&("tx-no-port", 1)));
        assert_eq!(snap.total_drops(), 5);
        assert_eq!((snap.rule_generation, snap.passes), (42, 10));
        // A port that went away disappears at the next publish.
        s.publish(&ports[..1], &Counters::default(), &base, &[1, 0, 0], 43, 11);
        assert_eq!(s.snapshot().ports.len(), 1);
    }
}

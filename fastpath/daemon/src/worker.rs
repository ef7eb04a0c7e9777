//! A pinned worker: its own UMEM and frame pool, one AF_XDP port per (interface, queue) it
//! serves, and the pipeline.
//!
//! Loop (one pass):
//! 1. control: apply attach/detach commands from the config thread (opening a socket is
//!    done here because the frame pool lives here), then [`WorkerSide::poll`] to switch to
//!    the newest table generation;
//! 2. per port: `rx_batch`, wrap each descriptor as a [`Frame`], [`Pipeline::process`],
//!    then move every transmitted descriptor to the TX batch of the port of its output
//!    interface (same UMEM: the descriptor moves, the bytes do not) and free the drops;
//! 3. per port: `tx_batch`, `reap_completions`;
//! 4. heartbeat; publish counters every 100 ms; when idle, back off (adaptive mode).
//!
//! Scheduling: an ordinary task unless `--worker-rt-priority` asks for `SCHED_FIFO`, set once
//! at start (see [`crate::priority`] for why a woken worker needs it on a shared core).
//!
//! No lock, allocation, log or per-packet syscall in a pass: batches, frame vectors and the
//! descriptor scratch are sized at start; the only syscalls are the AF_XDP wakeups the
//! kernel asks for. Control commands (rare) may allocate.
//!
//! Headroom: tortie-xsk hands out a frame's packet bytes starting at the kernel's data
//! address and cannot move a descriptor's address back into the 256-byte XDP headroom
//! (see `docs/design/xsk.md`). The pipeline needs [`MIN_HEADROOM`] bytes in front of a
//! frame for IP-in-IP and ICMP errors, so the worker extends each received frame to its
//! whole data area, moves the packet [`MIN_HEADROOM`] bytes back, and before TX moves the
//! (possibly grown or shrunk) result to the start again: two `memmove`s of the packet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tortie_pipeline::swap::WorkerSide;
use tortie_pipeline::{Disposition, DropReason, Frame, MIN_HEADROOM, Pipeline, TxBatches};
use tortie_telemetry::Liveness;
use tortie_xsk::{Desc, DescBatch, FramePool, Port, PortConfig, Umem, UmemSpec};

use nix::poll::PollFd;

use crate::backoff::{Backoff, Idle, wait_for_rx};
use crate::cli::LoopMode;
pub use crate::commands::{Command, Event};
use crate::stats::{
    KERNEL_STATS_INTERVAL_NS, LocalPort, MAX_PORTS, PUBLISH_INTERVAL_NS, WorkerStats,
};
use crate::steer::SteerHandle;

/// Frames per RX batch, per pipeline call and per TX submission (the kernel's copy-mode TX
/// budget per wakeup is 32).
pub const RX_BATCH: usize = 32;
/// TX submissions (and completion reaps) per port and pass.
const TX_SLICES_PER_PASS: usize = 8;
/// TX frames a port may hold waiting for ring space.
pub const TX_BATCH: usize = 512;

/// Everything a worker thread starts with.
pub struct WorkerSetup {
    /// Worker id (= the queue it serves).
    pub id: usize,
    /// Core to pin to.
    pub core: usize,
    /// Busy or adaptive.
    pub mode: LoopMode,
    /// SCHED_FIFO priority of the worker thread (see [`crate::priority`]); `None`: an
    /// ordinary task.
    pub rt_priority: Option<u8>,
    /// Forward without the pipeline (`--bypass`, see [`crate::bypass`]).
    pub bypass: bool,
    /// UMEM sizes.
    pub umem: UmemSpec,
    /// Initial pipeline.
    pub pipeline: Pipeline,
    /// Generation swap end.
    pub generations: WorkerSide,
    /// Commands from the config thread.
    pub commands: rtrb::Consumer<Command>,
    /// Events to the config thread.
    pub events: rtrb::Producer<Event>,
    /// Published counters.
    pub stats: Arc<WorkerStats>,
    /// Heartbeat.
    pub liveness: Liveness,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Steering (socket registration).
    pub steer: SteerHandle,
}

struct PortSlot {
    if_index: u32,
    port: Port,
    tx: DescBatch,
    local: LocalPort,
}

/// Reuses a vector's allocation for frames of another lifetime (the in-place collect of an
/// empty vector of a same-layout type keeps the buffer: no allocation per batch).
fn recycle<'a, 'b>(mut v: Vec<Frame<'a>>) -> Vec<Frame<'b>> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("vector is empty"))
        .collect()
}

/// Runs a worker until `stop` is set. Pins itself, creates its UMEM, then loops.
pub fn run(setup: WorkerSetup) {
    let WorkerSetup {
        id,
        core,
        mode,
        rt_priority,
        bypass,
        umem: spec,
        mut pipeline,
        mut generations,
        mut commands,
        mut events,
        stats,
        liveness,
        stop,
        steer,
    } = setup;
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        tracing::warn!(worker = id, core, "could not pin worker to core");
    }
    if let Some(prio) = rt_priority
        && let Err(e) = crate::priority::set_fifo(crate::priority::thread_id(), prio)
    {
        tracing::warn!(worker = id, prio, error = %e, "could not make the worker SCHED_FIFO (needs CAP_SYS_NICE and chrt); it competes for its core as an ordinary task");
    }
    let (umem, mut pool) = match Umem::new(spec) {
        Ok(u) => u,
        Err(e) => {
            let _ = events.push(Event::Failed {
                worker: id,
                error: e.to_string(),
            });
            return;
        }
    };
    let (policy, rt) = crate::priority::policy_of(crate::priority::thread_id()).unwrap_or((0, 0));
    let fifo_priority = if policy == crate::priority::SCHED_FIFO {
        rt
    } else {
        0
    };
    stats.rt_priority.store(fifo_priority, Ordering::Relaxed);
    tracing::info!(
        worker = id,
        core,
        policy,
        rt_priority = rt,
        frames = spec.frames,
        "worker started"
    );
    let mut slots: Vec<PortSlot> = Vec::with_capacity(MAX_PORTS);
    let mut rx = DescBatch::with_capacity(RX_BATCH);
    let mut order: Vec<Desc> = Vec::with_capacity(RX_BATCH);
    let mut windows: Vec<(usize, usize)> = Vec::with_capacity(RX_BATCH);
    let mut frames_store: Vec<Frame<'static>> = Vec::with_capacity(RX_BATCH);
    let mut txb = TxBatches::new();
    let mut ports_local: Vec<LocalPort> = Vec::with_capacity(MAX_PORTS);
    let mut served: Vec<u32> = Vec::with_capacity(MAX_PORTS);
    let mut drop_base = [0u64; DropReason::COUNT];
    let mut worker_drops = [0u64; 3];
    let mut backoff = Backoff::default();
    let mut poll_fds: Vec<PollFd<'static>> = Vec::with_capacity(MAX_PORTS);
    let capacity = spec.data_capacity();
    let clock = Instant::now();
    let mut last_publish = 0u64;
    let mut last_kernel_stats = 0u64;
    let mut passes = 0u64;
    let mut busy_ns = 0u64;

    while !stop.load(Ordering::Relaxed) {
        while let Ok(cmd) = commands.pop() {
            match cmd {
                Command::Attach {
                    if_index,
                    name,
                    queue,
                    config,
                } => {
                    let result = open_port(
                        &umem, &mut pool, &steer, if_index, &name, queue, &config,
                    )
                    .map(|port| {
                        let mode = port.mode();
                        slots.push(PortSlot {
                            if_index,
                            port,
                            tx: DescBatch::with_capacity(TX_BATCH),
                            local: LocalPort {
                                if_index,
                                ..LocalPort::default()
                            },
                        });
                        mode
                    });
                    let _ = events.push(Event::Attached {
                        worker: id,
                        if_index,
                        result,
                    });
                }
                Command::Detach { if_index } => {
                    if let Some(i) = slots.iter().position(|s| s.if_index == if_index) {
                        let mut slot = slots.remove(i);
                        slot.tx.free_all(&mut pool);
                        // Every frame the socket held (fill, RX, TX, completion) comes back,
                        // except from the UMEM's registration socket (see `Port::close`).
                        let registration = slot.port.is_registration_socket();
                        let returned = slot.port.close(&mut pool);
                        if registration {
                            tracing::warn!(
                                worker = id,
                                if_index,
                                returned,
                                "closed the UMEM's first socket: its fill-ring frames stay lost and this queue cannot be bound again until restart"
                            );
                        } else {
                            tracing::debug!(
                                worker = id,
                                if_index,
                                returned,
                                "socket closed, frames returned"
                            );
                        }
                    }
                    let _ = events.push(Event::Detached {
                        worker: id,
                        if_index,
                    });
                }
                Command::Replace(mut next) => {
                    // Generations published before this command belong to the old pipeline.
                    generations.poll(&mut pipeline);
                    for r in DropReason::ALL {
                        drop_base[r.index()] += pipeline.counters().drops(*r);
                    }
                    std::mem::swap(&mut pipeline, &mut next);
                    let _ = events.push(Event::Retired(next));
                }
            }
        }
        generations.poll(&mut pipeline);
        let now = u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut work = 0usize;
        for i in 0..slots.len() {
            let n = slots[i].port.rx_batch(&mut rx, &mut pool).unwrap_or(0);
            if n == 0 {
                continue;
            }
            work += n;
            let rx_if = slots[i].if_index;
            if bypass {
                served.clear();
                served.extend(slots.iter().map(|s| s.if_index));
                let target = crate::bypass::target(pipeline.generation(), rx_if, &served);
                let k = target.and_then(|t| slots.iter().position(|s| s.if_index == t.if_index));
                slots[i].local.rx_packets += n as u64;
                // Pop twice to keep the batch order.
                while let Some(d) = rx.pop() {
                    order.push(d);
                }
                while let Some(mut d) = order.pop() {
                    let (Some(t), Some(k)) = (target, k) else {
                        worker_drops[0] += 1;
                        pool.free(d);
                        continue;
                    };
                    let len = d.len();
                    slots[i].local.rx_bytes += len as u64;
                    crate::bypass::rewrite(umem.bytes_mut(&mut d), &t);
                    match slots[k].tx.push(d) {
                        Ok(()) => {
                            slots[k].local.tx_packets += 1;
                            slots[k].local.tx_bytes += len as u64;
                        }
                        Err(d) => {
                            worker_drops[1] += 1;
                            pool.free(d);
                        }
                    }
                }
                continue;
            }
            // Wrap the descriptors as frames with headroom in front.
            let mut frames = recycle(std::mem::take(&mut frames_store));
            let mut rx_bytes = 0u64;
            for d in rx.iter_mut() {
                let len = d.len();
                rx_bytes += len as u64;
                let shift = if len + MIN_HEADROOM <= capacity {
                    MIN_HEADROOM
                } else {
                    0
                };
                // Cannot fail: `capacity` is the UMEM's data capacity.
                let _ = umem.set_len(d, capacity);
                let buf = umem.bytes_mut(d);
                let len = len.min(buf.len().saturating_sub(shift));
                buf.copy_within(0..len, shift);
                // `shift + len <= buf.len()` by construction, so every descriptor gets its
                // frame and batch indices stay aligned with `rx`.
                if let Some(f) = Frame::new(buf, shift, len, rx_if) {
                    frames.push(f);
                }
            }
            slots[i].local.rx_packets += n as u64;
            slots[i].local.rx_bytes += rx_bytes;
            pipeline.process(&mut frames, now, &mut txb);
            windows.clear();
            windows.extend(frames.iter().map(|f| (f.offset(), f.len())));
            frames_store = recycle(frames);
            // Restore batch order: pop everything, then pop again from the reversed copy.
            while let Some(d) = rx.pop() {
                order.push(d);
            }
            let dispositions = pipeline.dispositions();
            let mut j = 0usize;
            while let Some(mut d) = order.pop() {
                let disp = dispositions.get(j).copied();
                let window = windows.get(j).copied();
                j += 1;
                let (Some(Disposition::Tx(out_if)), Some((off, len))) = (disp, window) else {
                    pool.free(d);
                    continue;
                };
                let Some(k) = slots.iter().position(|s| s.if_index == out_if) else {
                    worker_drops[0] += 1;
                    pool.free(d);
                    continue;
                };
                if off + len > capacity {
                    worker_drops[2] += 1;
                    pool.free(d);
                    continue;
                }
                if off != 0 {
                    umem.bytes_mut(&mut d).copy_within(off..off + len, 0);
                }
                if umem.set_len(&mut d, len).is_err() {
                    worker_drops[2] += 1;
                    pool.free(d);
                    continue;
                }
                match slots[k].tx.push(d) {
                    Ok(()) => {
                        slots[k].local.tx_packets += 1;
                        slots[k].local.tx_bytes += len as u64;
                    }
                    Err(d) => {
                        worker_drops[1] += 1;
                        pool.free(d);
                    }
                }
            }
        }
        for s in &mut slots {
            work += transmit(s, &mut pool);
        }
        passes += 1;
        if work > 0 {
            let end = u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX);
            busy_ns += end.saturating_sub(now);
        }
        liveness.beat();
        if now.saturating_sub(last_kernel_stats) >= KERNEL_STATS_INTERVAL_NS {
            // One getsockopt per socket per second: control-path cost, not per packet.
            last_kernel_stats = now;
            for s in &mut slots {
                if let Ok(k) = s.port.kernel_stats() {
                    s.local.kernel = [
                        k.rx_dropped,
                        k.rx_ring_full,
                        k.rx_fill_ring_empty_descs,
                        k.rx_invalid_descs,
                        k.tx_invalid_descs,
                    ];
                }
            }
        }
        if now.saturating_sub(last_publish) >= PUBLISH_INTERVAL_NS {
            last_publish = now;
            ports_local.clear();
            ports_local.extend(slots.iter().map(|s| s.local));
            stats.publish(
                &ports_local,
                pipeline.counters(),
                &drop_base,
                &worker_drops,
                pipeline.generation().id.0,
                passes,
            );
            stats
                .free_frames
                .store(pool.len() as u64, Ordering::Relaxed);
            stats.busy_ns.store(busy_ns, Ordering::Relaxed);
        }
        if work > 0 || mode == LoopMode::Busy {
            backoff.busy();
        } else {
            let in_flight = slots.iter().any(|s| {
                let st = s.port.stats();
                !s.tx.is_empty() || st.tx > st.completed
            });
            if let Idle::Wait(timeout) = backoff.idle(in_flight) {
                poll_fds = wait_for_rx(slots.iter().map(|s| s.port.as_fd()), poll_fds, timeout);
            }
        }
    }
    for mut s in slots.drain(..) {
        s.tx.free_all(&mut pool);
        s.port.close(&mut pool);
    }
    tracing::info!(worker = id, "worker stopped");
}

/// Submits a port's TX batch and recycles completed frames; returns the frames moved.
///
/// In copy mode the kernel transmits at most 32 frames per wakeup (`TX_BATCH_SIZE` in
/// net/xdp/xsk.c), so submissions are made in slices of [`RX_BATCH`] (32), each with its own
/// wakeup when the kernel asks for one, and a port with frames still in flight but nothing
/// new to submit is kicked once per pass.
fn transmit(s: &mut PortSlot, pool: &mut FramePool) -> usize {
    let mut moved = 0;
    let mut submitted = 0;
    for _ in 0..TX_SLICES_PER_PASS {
        if s.tx.is_empty() {
            break;
        }
        let n = s.port.tx_batch(&mut s.tx).unwrap_or(0);
        if n == 0 {
            break;
        }
        submitted += n;
    }
    for _ in 0..TX_SLICES_PER_PASS {
        let n = s.port.reap_completions(pool);
        moved += n;
        if n < RX_BATCH {
            break;
        }
    }
    let st = s.port.stats();
    if submitted == 0 && st.tx > st.completed {
        let _ = s.port.kick_tx();
    }
    moved + submitted
}

fn open_port(
    umem: &Umem,
    pool: &mut FramePool,
    steer: &SteerHandle,
    if_index: u32,
    name: &str,
    queue: u32,
    config: &PortConfig,
) -> Result<Port, String> {
    let port = Port::open(umem, name, queue, config, pool).map_err(|e| e.to_string())?;
    let steer = steer.lock().unwrap_or_else(|p| p.into_inner());
    steer
        .register(if_index, queue, &port)
        .map_err(|e| e.to_string())?;
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycle_keeps_the_allocation() {
        let mut buf = [0u8; 64];
        let mut v: Vec<Frame<'static>> = Vec::with_capacity(8);
        let cap = v.capacity();
        let ptr = v.as_ptr() as usize;
        let mut w = recycle(std::mem::take(&mut v));
        w.push(Frame::new(&mut buf, 0, 10, 1).unwrap());
        assert_eq!(w.capacity(), cap);
        assert_eq!(w.as_ptr() as usize, ptr, "same buffer, no allocation");
        let back: Vec<Frame<'static>> = recycle(w);
        assert!(back.is_empty());
        assert_eq!(back.as_ptr() as usize, ptr);
    }
}

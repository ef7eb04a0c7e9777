//! One AF_XDP socket bound to an interface queue, with its four rings, on a shared [`Umem`].
//!
//! Ring discipline follows the kernel's AF_XDP documentation
//! (Documentation/networking/af_xdp.rst, "XDP_USE_NEED_WAKEUP bind flag"): after producing to
//! the fill or TX ring, the kernel is kicked (`poll`/`sendto`) only when it set the ring's
//! need_wakeup flag.
#![allow(unsafe_code)]

use std::fmt::Write as _;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};

use xsk_rs::config::{BindFlags, Interface, LibxdpFlags, QueueSize, SocketConfig, XdpFlags};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, TxQueue};

use crate::batch::DescBatch;
use crate::error::XskError;
use crate::owned::OwnedFrames;
use crate::umem::{Desc, FramePool, Umem};

/// How the socket attaches. `Auto` tries zero-copy, then driver-mode copy, then SKB (generic)
/// mode, and keeps the first that binds. veth has no zero-copy, so it ends in `DriverCopy`
/// (native XDP on veth) or `Skb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// Try the modes below in order.
    Auto,
    /// Native XDP, `XDP_ZEROCOPY` (NIC driver support needed).
    ZeroCopy,
    /// Native XDP, `XDP_COPY`.
    DriverCopy,
    /// Generic (SKB) XDP, `XDP_COPY`: works on any interface, slowest.
    Skb,
}

impl BindMode {
    fn flags(self) -> (XdpFlags, BindFlags) {
        let wake = BindFlags::XDP_USE_NEED_WAKEUP;
        match self {
            BindMode::ZeroCopy | BindMode::Auto => {
                (XdpFlags::XDP_FLAGS_DRV_MODE, wake | BindFlags::XDP_ZEROCOPY)
            }
            BindMode::DriverCopy => (XdpFlags::XDP_FLAGS_DRV_MODE, wake | BindFlags::XDP_COPY),
            BindMode::Skb => (XdpFlags::XDP_FLAGS_SKB_MODE, wake | BindFlags::XDP_COPY),
        }
    }
}

/// Per-port settings.
#[derive(Debug, Clone, Copy)]
pub struct PortConfig {
    /// Bind mode (see [`BindMode`]).
    pub mode: BindMode,
    /// RX and TX ring size (a power of two).
    pub ring_size: u32,
    /// Most frames moved per `rx_batch`/`tx_batch`/`reap_completions` call.
    pub batch: usize,
    /// Frames this port keeps posted on its fill ring (taken from the worker's pool).
    pub fill_target: u32,
    /// Bind without loading libxdp's default XDP program (`XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD`):
    /// the interface's program is [`crate::Steering`]'s, attached beforehand, and the socket
    /// reaches it through [`crate::Steering::register`]. `mode` is then the mode
    /// [`crate::Steering::attach`] returned: `ZeroCopy` binds zero-copy, `DriverCopy` and
    /// `Skb` bind copy mode, `Auto` tries zero-copy then copy (for a natively attached
    /// program). Default `false`.
    pub external_program: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            mode: BindMode::Auto,
            ring_size: 2048,
            batch: 64,
            fill_target: 1024,
            external_program: false,
        }
    }
}

/// Counters kept by the port (plain integers: the port is single-threaded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received.
    pub rx: u64,
    /// Frames submitted for transmission.
    pub tx: u64,
    /// Frames recycled from the completion ring.
    pub completed: u64,
    /// Kicks made because the fill ring asked for one.
    pub fill_wakeups: u64,
    /// Kicks made because the TX ring asked for one.
    pub tx_wakeups: u64,
    /// RX passes where the pool had no frame to refill with.
    pub fill_starved: u64,
}

/// The kernel's per-socket counters (`getsockopt(XDP_STATISTICS)`). Control path only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames dropped for other reasons than invalid descriptors (e.g. RX ring full).
    pub rx_dropped: u64,
    /// Invalid descriptors on the RX side.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors submitted for TX.
    pub tx_invalid_descs: u64,
    /// Times the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when a frame arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the TX ring was empty when the kernel looked.
    pub tx_ring_empty_descs: u64,
}

/// One AF_XDP socket. Not `Sync`; owned by one worker thread.
pub struct Port {
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    umem: u32,
    mode: BindMode,
    batch: usize,
    fill_target: u32,
    /// Frames currently on the fill ring (posted, not yet received).
    posted: u32,
    /// Scratch descriptors for ring copies; sized once at open.
    scratch: Vec<FrameDesc>,
    stats: PortStats,
    /// Frames this port has handed to the kernel and not had back: one bit per UMEM frame,
    /// set when a frame is posted to the fill ring or submitted to the TX ring, cleared when
    /// it comes back on the RX or completion ring. What [`Port::close`] recovers.
    owned: OwnedFrames,
    /// The UMEM's fresh descriptors by frame number (see [`Umem`]).
    fresh: Arc<[FrameDesc]>,
    /// This socket is the UMEM's own (registration) socket: the first one opened while the
    /// UMEM had no other. libxdp never closes that fd before the UMEM goes, so the socket
    /// stays bound after the port is dropped (see [`Port::close`]).
    registration: bool,
    /// Registration in the UMEM's bound list, removed when the port goes.
    _bound: BoundKey,
}

/// A `(ifname, queue)` entry in the UMEM's bound list, removed on drop.
struct BoundKey {
    list: Arc<Mutex<Vec<(String, u32)>>>,
    key: (String, u32),
}

impl Drop for BoundKey {
    fn drop(&mut self) {
        let mut bound = self.list.lock().unwrap_or_else(|p| p.into_inner());
        bound.retain(|k| *k != self.key);
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("mode", &self.mode)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Port {
    /// Open an AF_XDP socket on `ifname` queue `queue`, using `umem`, and post up to
    /// `cfg.fill_target` frames from `pool` to its fill ring. Loads libxdp's default XDP
    /// redirect program on the interface unless `cfg.external_program` is set. Needs
    /// `CAP_NET_ADMIN`/`CAP_NET_RAW` (in the interface's network namespace).
    pub fn open(
        umem: &Umem,
        ifname: &str,
        queue: u32,
        cfg: &PortConfig,
        pool: &mut FramePool,
    ) -> Result<Port, XskError> {
        if pool.umem_id() != umem.id() {
            return Err(XskError::Config {
                field: "pool",
                reason: "frame pool belongs to another UMEM".into(),
            });
        }
        if cfg.batch == 0 {
            return Err(XskError::Config {
                field: "batch",
                reason: "must be > 0".into(),
            });
        }
        let ring = QueueSize::new(cfg.ring_size).map_err(|e| XskError::Config {
            field: "ring_size",
            reason: e.to_string(),
        })?;
        let iface: Interface = ifname.parse().map_err(|_| XskError::Config {
            field: "ifname",
            reason: format!("{ifname:?} contains a NUL byte"),
        })?;
        let mut bound = umem.bound.lock().unwrap_or_else(|p| p.into_inner());
        if bound.iter().any(|(n, q)| n == ifname && *q == queue) {
            return Err(XskError::AlreadyBound {
                ifname: ifname.into(),
                queue,
            });
        }
        let modes: &[BindMode] = match cfg.mode {
            // With an external program the XDP attach mode is already decided: generic XDP
            // only if the caller says `Skb`.
            BindMode::Auto if cfg.external_program => &[BindMode::ZeroCopy, BindMode::DriverCopy],
            BindMode::Auto => &[BindMode::ZeroCopy, BindMode::DriverCopy, BindMode::Skb],
            BindMode::ZeroCopy => &[BindMode::ZeroCopy],
            BindMode::DriverCopy => &[BindMode::DriverCopy],
            BindMode::Skb => &[BindMode::Skb],
        };
        let libxdp = if cfg.external_program {
            LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD
        } else {
            LibxdpFlags::empty()
        };
        let mut attempts = String::new();
        for &mode in modes {
            let (xdp, bind) = mode.flags();
            let sc = SocketConfig::builder()
                .rx_queue_size(ring)
                .tx_queue_size(ring)
                .libxdp_flags(libxdp)
                .xdp_flags(xdp)
                .bind_flags(bind)
                .build();
            // SAFETY: xsk-rs requires INHIBIT_PROG_LOAD when this UMEM already has a socket on
            // the same (ifname, queue); `bound` (checked above, held locked) rules that out.
            let res = unsafe { xsk_rs::Socket::new(sc, &umem.inner, &iface, queue) };
            match res {
                Ok((tx, rx, Some((fq, cq)))) => {
                    // libxdp gives the UMEM's own fd to a socket created while the UMEM has
                    // no other (xsk_socket__create_shared, `umem->refcount == 0`).
                    let registration = bound.is_empty();
                    bound.push((ifname.to_owned(), queue));
                    let mut port = Port {
                        tx,
                        rx,
                        fq,
                        cq,
                        umem: umem.id(),
                        mode,
                        batch: cfg.batch,
                        fill_target: cfg.fill_target.min(cfg.ring_size),
                        posted: 0,
                        scratch: vec![FrameDesc::default(); cfg.batch],
                        stats: PortStats::default(),
                        owned: OwnedFrames::new(umem.spec.frames, umem.spec.frame_size),
                        fresh: umem.fresh.clone(),
                        registration,
                        _bound: BoundKey {
                            list: umem.bound.clone(),
                            key: (ifname.to_owned(), queue),
                        },
                    };
                    // Unlock before anything that can fail: dropping `port` takes the lock.
                    drop(bound);
                    port.refill(pool)?;
                    return Ok(port);
                }
                Ok((_, _, None)) => {
                    return Err(XskError::AlreadyBound {
                        ifname: ifname.into(),
                        queue,
                    });
                }
                Err(e) => {
                    let _ = write!(attempts, "[{mode:?}: {e}] ");
                }
            }
        }
        Err(XskError::Bind {
            ifname: ifname.into(),
            queue,
            attempts: attempts.trim_end().into(),
        })
    }

    /// The mode that bound.
    pub fn mode(&self) -> BindMode {
        self.mode
    }

    /// The socket's fd, for the steering program's XSKMAP.
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.rx.fd().as_raw_fd()
    }

    /// The socket's fd, for `poll(2)` (POLLIN: the RX ring has frames). Valid as long as the
    /// port is: the borrow ties it to the port.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd belongs to this port's socket, which stays open while `self` lives
        // (it is closed only when the rings are dropped); the returned borrow cannot outlive
        // `self`.
        unsafe { BorrowedFd::borrow_raw(self.raw_fd()) }
    }

    /// Frames this port has handed to the kernel and not had back (on its fill, RX, TX or
    /// completion ring): what [`Port::close`] would recover.
    pub fn outstanding(&self) -> usize {
        self.owned.count()
    }

    /// Counters so far.
    pub fn stats(&self) -> PortStats {
        self.stats
    }

    /// Frames currently posted on the fill ring.
    pub fn posted(&self) -> u32 {
        self.posted
    }

    /// Receive up to `min(out.spare(), batch)` frames into `out`, then refill the fill ring
    /// from `pool` (kicking the kernel only if it asked). Returns frames received.
    pub fn rx_batch(
        &mut self,
        out: &mut DescBatch,
        pool: &mut FramePool,
    ) -> Result<usize, XskError> {
        let want = out.spare().min(self.batch);
        // SAFETY: the scratch descriptors are overwritten with frames the kernel hands back on
        // the RX ring; those frames belong to this port's UMEM and are now owned by userspace.
        let n = unsafe { self.rx.consume(&mut self.scratch[..want]) };
        for raw in &self.scratch[..n] {
            self.owned.clear(raw.addr());
            // `want <= out.spare()`, so this cannot fail; the Err arm is unreachable.
            let _ = out.push(Desc {
                raw: *raw,
                umem: self.umem,
            });
        }
        self.posted = self.posted.saturating_sub(n as u32);
        self.stats.rx += n as u64;
        self.refill(pool)?;
        Ok(n)
    }

    /// Post free frames to the fill ring up to the fill target; kick if need_wakeup is set.
    pub fn refill(&mut self, pool: &mut FramePool) -> Result<(), XskError> {
        let want = self.fill_target.saturating_sub(self.posted);
        if want == 0 {
            return Ok(());
        }
        let k = (want as usize).min(pool.len());
        if k == 0 {
            self.stats.fill_starved += 1;
        } else {
            let k = self.fq.nb_free(k as u32).min(k as u32) as usize;
            let start = pool.free.len() - k;
            // SAFETY: the frames at the tail of the pool are free (owned by no `Desc` and in no
            // ring) and belong to this port's UMEM; they are removed from the pool right after.
            let produced = unsafe { self.fq.produce(&pool.free[start..]) };
            // The ring reserves all `k` slots or none, so `produced` is 0 or `k`.
            for raw in &pool.free[start..start + produced] {
                self.owned.set(raw.addr());
            }
            pool.free.truncate(pool.free.len() - produced);
            self.posted += produced as u32;
        }
        if self.fq.needs_wakeup() {
            self.stats.fill_wakeups += 1;
            self.fq
                .wakeup(self.rx.fd_mut(), 0)
                .map_err(|source| XskError::Wakeup {
                    ring: "fill",
                    source,
                })?;
        }
        Ok(())
    }

    /// Submit frames from the front of `batch` to the TX ring (as many as fit, at most
    /// `batch` per call), removing them from `batch`. Kicks only when need_wakeup is set.
    /// Frames left in `batch` did not fit; retry or free them. Returns frames submitted.
    ///
    /// # Panics
    /// If a frame belongs to another UMEM.
    pub fn tx_batch(&mut self, batch: &mut DescBatch) -> Result<usize, XskError> {
        let want = batch.len().min(self.batch);
        let k = self.tx.nb_free(want as u32).min(want as u32) as usize;
        for (slot, d) in self.scratch.iter_mut().zip(batch.descs.iter()).take(k) {
            assert_eq!(
                d.umem, self.umem,
                "Desc from another UMEM given to tx_batch"
            );
            *slot = d.raw;
        }
        // SAFETY: the descriptors are owned frames of this UMEM (checked above) and are removed
        // from `batch` (their only owner) right after, so userspace cannot touch them until the
        // completion ring hands them back.
        let sent = unsafe { self.tx.produce(&self.scratch[..k]) };
        for raw in &self.scratch[..sent] {
            self.owned.set(raw.addr());
        }
        batch.descs.drain(..sent);
        self.stats.tx += sent as u64;
        if self.tx.needs_wakeup() {
            self.stats.tx_wakeups += 1;
            self.tx
                .wakeup()
                .map_err(|source| XskError::Wakeup { ring: "tx", source })?;
        }
        Ok(sent)
    }

    /// Move up to `batch` completed TX frames back to `pool`. Returns frames recycled.
    pub fn reap_completions(&mut self, pool: &mut FramePool) -> usize {
        // SAFETY: the completion ring returns frames of this UMEM that the kernel has finished
        // transmitting; userspace owns them again and they go straight to the free list.
        let n = unsafe { self.cq.consume(&mut self.scratch[..]) };
        for raw in &self.scratch[..n] {
            self.owned.clear(raw.addr());
            pool.free.push(*raw);
        }
        self.stats.completed += n as u64;
        n
    }

    /// Read the kernel's counters for this socket (a syscall: not for the per-packet path).
    pub fn kernel_stats(&self) -> Result<KernelStats, XskError> {
        let s = self
            .rx
            .fd()
            .xdp_statistics()
            .map_err(|source| XskError::Stats { source })?;
        Ok(KernelStats {
            rx_dropped: s.rx_dropped(),
            rx_invalid_descs: s.rx_invalid_descs(),
            tx_invalid_descs: s.tx_invalid_descs(),
            rx_ring_full: s.rx_ring_full(),
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs(),
            tx_ring_empty_descs: s.tx_ring_empty_descs(),
        })
    }

    /// Kick the TX ring unconditionally (e.g. after a period with frames outstanding but no
    /// new submissions, where copy mode needs a `sendto` to make progress).
    pub fn kick_tx(&mut self) -> Result<(), XskError> {
        self.stats.tx_wakeups += 1;
        self.tx
            .wakeup()
            .map_err(|source| XskError::Wakeup { ring: "tx", source })
    }

    /// Whether this is the UMEM's registration socket (the first opened while the UMEM had
    /// no other socket): [`Port::close`] cannot recover its fill and TX ring frames, and its
    /// `(ifname, queue)` cannot be bound again from this UMEM.
    pub fn is_registration_socket(&self) -> bool {
        self.registration
    }

    /// Close the socket and give back to `pool` every frame this port still held: first what
    /// waits on the RX and completion rings, then, once the socket is closed and the kernel
    /// can no longer touch them, the frames left on the fill and TX rings (from the
    /// ownership bitmap). Returns the frames returned to `pool`. Dropping a port instead
    /// loses those frames to the pool for the UMEM's lifetime.
    ///
    /// Frames received by this port and still held as [`Desc`]s (e.g. in another port's TX
    /// batch) are not this port's any more and are not touched.
    ///
    /// Known limit: the UMEM's registration socket ([`Port::is_registration_socket`]) is
    /// not closed by libxdp (it closes the UMEM's own fd only with the UMEM), so the kernel
    /// may still use the frames on its fill ring; for that port only the RX and completion
    /// rings are drained and the rest stays lost, as with a drop. A worker avoids it by
    /// opening first a socket it keeps for the UMEM's lifetime (the uplink).
    pub fn close(mut self, pool: &mut FramePool) -> usize {
        assert_eq!(
            pool.umem_id(),
            self.umem,
            "Port closed into the pool of another UMEM"
        );
        let mut returned = 0;
        // Bounded: each ring holds at most its size; a fresh arrival after the last pass is
        // still marked and recovered below.
        for _ in 0..=self.owned.capacity().div_ceil(self.batch.max(1)) {
            let want = self.scratch.len();
            // SAFETY: as in `rx_batch`: the kernel hands these frames of this UMEM back.
            let n = unsafe { self.rx.consume(&mut self.scratch[..want]) };
            for raw in &self.scratch[..n] {
                self.owned.clear(raw.addr());
                pool.free.push(*raw);
            }
            let c = self.reap_completions(pool);
            returned += n + c;
            if n == 0 && c == 0 {
                break;
            }
        }
        let self_registration = self.registration;
        let Port {
            tx,
            rx,
            fq,
            cq,
            owned,
            fresh,
            _bound: bound,
            ..
        } = self;
        // Dropping the rings deletes the socket (xsk_socket__delete closes its fd): from here
        // on the kernel neither fills nor transmits from this port's frames.
        drop((tx, rx, fq, cq));
        if self_registration {
            drop(bound);
            return returned;
        }
        for i in owned.indices() {
            if let Some(raw) = fresh.get(i) {
                pool.free.push(*raw);
                returned += 1;
            }
        }
        drop(bound);
        returned
    }
}

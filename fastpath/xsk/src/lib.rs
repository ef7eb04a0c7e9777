//! AF_XDP sockets for the fastpath: UMEM, rings, batched RX/TX, frame recycling.
//!
//! A thin, safe layer over `xsk-rs` (which drives libxdp). One [`Umem`] per worker is shared by
//! every [`Port`] of that worker (the uplink and each workload's host-side veth); each port has
//! its own fill/completion/RX/TX rings. Frames move as owned [`Desc`] values:
//!
//! ```text
//! FramePool --refill--> fill ring --kernel--> RX ring --rx_batch--> DescBatch (pipeline)
//!     ^                                                                  |
//!     +--reap_completions-- completion ring <--kernel-- TX ring <--tx_batch
//! ```
//!
//! The hot path ([`Port::rx_batch`], [`Port::tx_batch`], [`Port::reap_completions`]) does not
//! allocate, lock or log; its only syscalls are wakeups, made only when the kernel sets
//! `need_wakeup` on the ring. `unsafe` is confined to `umem`, `port` and `steer::bpf`.
//!
//! [`Port::close`] gives back to the pool every frame a closing socket still held (each port
//! tracks them in a per-frame bitmap), so a worker whose sockets come and go keeps its pool.
//!
//! [`Steering`] loads Tortie's own XDP program (`bpf/steer.bpf.c`) and attaches it to the
//! interfaces instead of libxdp's default one: on the uplink it redirects only the traffic the
//! fastpath owns ([`OwnedTraffic`]) and leaves the rest (ARP, BGP, SSH, the node's own
//! connections) to the kernel.
//!
//! See `docs/design/xsk.md` for the UMEM layout, headroom, modes and what is tested.

mod batch;
mod error;
mod owned;
mod port;
mod steer;
mod umem;

pub use batch::DescBatch;
pub use error::XskError;
pub use port::{BindMode, KernelStats, Port, PortConfig, PortStats};
pub use steer::{
    DryRun, MAX_INTERFACES, OwnedTraffic, QUEUES_PER_INTERFACE, SteerMode, SteerStats,
    SteerVerdict, Steering, xdp_program_id,
};
pub use umem::{Desc, FramePool, HEADROOM, Umem, UmemSpec};

#[cfg(test)]
mod tests {
    /// Workers create their ports on the control thread and move them to pinned threads.
    #[test]
    fn hot_path_types_are_send() {
        fn is_send<T: Send>() {}
        is_send::<crate::Port>();
        is_send::<crate::Umem>();
        is_send::<crate::FramePool>();
        is_send::<crate::DescBatch>();
    }
}

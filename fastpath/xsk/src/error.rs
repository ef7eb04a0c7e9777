//! The one error type of this crate.

use std::io;

/// Why an AF_XDP operation failed. Messages name the interface, queue or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// A configuration value was rejected before any syscall was made.
    #[error("invalid AF_XDP config field `{field}`: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The UMEM could not be registered (mmap or `XDP_UMEM_REG` failed).
    #[error("creating UMEM of {frames} frames failed: {detail}")]
    Umem {
        /// Frame count asked for.
        frames: u32,
        /// What xsk-rs / libxdp reported, including the errno.
        detail: String,
    },
    /// No bind mode worked for this interface and queue. `attempts` lists each mode tried
    /// with the error (and errno) it gave, in order.
    #[error("binding AF_XDP socket to {ifname} queue {queue} failed: {attempts}")]
    Bind {
        /// Interface name.
        ifname: String,
        /// Queue id.
        queue: u32,
        /// Every mode tried and its error.
        attempts: String,
    },
    /// The same UMEM is already bound to this interface and queue; a second socket there
    /// would have to share the first one's fill and completion rings, which `Port` does not do.
    #[error("UMEM already has a port on {ifname} queue {queue}")]
    AlreadyBound {
        /// Interface name.
        ifname: String,
        /// Queue id.
        queue: u32,
    },
    /// A length did not fit the frame's data segment.
    #[error("frame length {len} exceeds data capacity {capacity}")]
    FrameTooLong {
        /// Requested length.
        len: usize,
        /// Bytes available after the frame's headroom.
        capacity: usize,
    },
    /// A wakeup syscall (`sendto`/`poll`) failed with something other than a transient errno.
    #[error("AF_XDP wakeup on {ring} ring failed: {source}")]
    Wakeup {
        /// `fill` or `tx`.
        ring: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// `getsockopt(XDP_STATISTICS)` failed.
    #[error("reading AF_XDP statistics failed: {source}")]
    Stats {
        /// The OS error.
        source: io::Error,
    },
    /// Loading the steering program failed at `stage` (open, load/verify, finding a map).
    /// A verifier rejection's log is printed on stderr by libbpf.
    #[error("loading the XDP steering program failed at {stage}: {source}")]
    BpfLoad {
        /// The libbpf step that failed.
        stage: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The steering program could not be attached in any allowed XDP mode. `attempts` lists
    /// each mode with its error and, where one is there, the id of the program in the way.
    #[error("attaching the XDP steering program to if_index {if_index} failed: {attempts}")]
    XdpAttach {
        /// Interface index.
        if_index: u32,
        /// Every mode tried and its error.
        attempts: String,
    },
    /// Detaching the steering program failed.
    #[error("detaching the XDP steering program from if_index {if_index} failed: {source}")]
    XdpDetach {
        /// Interface index.
        if_index: u32,
        /// The OS error.
        source: io::Error,
    },
    /// Asking the kernel which XDP program an interface has failed.
    #[error("querying the XDP program of if_index {if_index} failed: {source}")]
    XdpQuery {
        /// Interface index.
        if_index: u32,
        /// The OS error.
        source: io::Error,
    },
    /// Writing or deleting an entry of one of the steering program's maps failed.
    #[error("updating map `{map}` at key {key} failed: {source}")]
    MapUpdate {
        /// The map's name in the program.
        map: &'static str,
        /// The key, as text.
        key: String,
        /// The OS error.
        source: io::Error,
    },
    /// `BPF_PROG_TEST_RUN` of the steering program failed (e.g. no such interface).
    #[error("dry run of the XDP steering program on if_index {if_index} failed: {source}")]
    DryRun {
        /// Interface index.
        if_index: u32,
        /// The OS error.
        source: io::Error,
    },
    /// A socket was registered for an interface the steering program is not attached to.
    #[error("the XDP steering program is not attached to if_index {if_index}")]
    NotAttached {
        /// Interface index.
        if_index: u32,
    },
}

//! Messages between the config thread and the workers (over `rtrb` rings).

use tortie_pipeline::Pipeline;
use tortie_xsk::{BindMode, PortConfig};

/// What the config thread asks a worker to do.
pub enum Command {
    /// Open a socket on `(name, queue)`.
    Attach {
        /// Interface index (what the pipeline's TX decisions name).
        if_index: u32,
        /// Interface name.
        name: String,
        /// Queue.
        queue: u32,
        /// Socket settings.
        config: PortConfig,
    },
    /// Close the socket on `if_index`.
    Detach {
        /// Interface index.
        if_index: u32,
    },
    /// Replace the pipeline (the SNAT addresses changed, which a pipeline fixes at build).
    Replace(Box<Pipeline>),
}

/// What a worker reports back.
pub enum Event {
    /// Result of an attach: the bind mode, or why it failed.
    Attached {
        /// Worker id.
        worker: usize,
        /// Interface index.
        if_index: u32,
        /// Bind mode or error text.
        result: Result<BindMode, String>,
    },
    /// The socket on `if_index` is closed.
    Detached {
        /// Worker id.
        worker: usize,
        /// Interface index.
        if_index: u32,
    },
    /// A replaced pipeline, to be freed off the worker.
    Retired(Box<Pipeline>),
    /// The worker could not start (UMEM registration failed).
    Failed {
        /// Worker id.
        worker: usize,
        /// Why.
        error: String,
    },
}

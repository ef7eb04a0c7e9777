//! tortie-fastpath: the AF_XDP dataplane daemon.
//!
//! ```text
//!  tortie-control --(shared-memory ring: tortie-abi snapshots and deltas)--> config thread
//!  config thread: State -> Generation::build -> swap::Publisher --rtrb--> workers (pinned)
//!                 interfaces named by the tables -> attach/detach commands --rtrb--> workers
//!  worker k: UMEM + FramePool, AF_XDP port per (interface, queue k)
//!            rx_batch -> Pipeline::process -> TX batch of the output port -> tx_batch
//! ```
//!
//! The parts are public so the integration tests (and readers) can use them; the binary
//! (`src/main.rs`) only parses arguments, sets up logging and calls [`daemon::run`].
//! Design notes: `docs/design/fastpath-daemon.md`.

pub mod attach;
pub mod backoff;
pub mod bypass;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod error;
pub mod ifaces;
pub mod latency;
pub mod metrics;
pub mod owned;
pub mod priority;
pub mod ratelimit;
pub mod stats;
pub mod status_file;
pub mod steer;
pub mod view;
pub mod worker;

pub use error::DaemonError;

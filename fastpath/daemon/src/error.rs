//! The daemon's one error type.

use std::path::PathBuf;

/// Why the daemon (or one of its parts) could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Logging could not be set up.
    #[error("setting up logging: {0}")]
    Logging(#[source] tortie_telemetry::TelemetryError),
    /// The metrics/health endpoint could not be served.
    #[error("serving metrics: {0}")]
    Metrics(#[source] tortie_telemetry::TelemetryError),
    /// A thread could not be started.
    #[error("starting thread {name}: {source}")]
    Thread {
        /// Thread name.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The signal mask could not be set.
    #[error("blocking SIGTERM/SIGINT: {0}")]
    Signals(#[source] nix::Error),
    /// The status file could not be written.
    #[error("writing status file {path}: {source}")]
    StatusFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An interface index has no name (it does not exist in this network namespace).
    #[error("interface index {if_index} does not exist in this network namespace")]
    NoSuchInterface {
        /// The index the tables named.
        if_index: u32,
    },
    /// XDP steering on an interface failed.
    #[error("XDP steering on {ifname}: {detail}")]
    Steering {
        /// Interface name.
        ifname: String,
        /// What failed.
        detail: String,
    },
}

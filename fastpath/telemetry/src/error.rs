//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong while setting up logging or the HTTP endpoints.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `--log-level` did not parse as a level or filter directive.
    #[error(
        "log level {value:?} is not valid: {reason} (use error, warn, info, debug, trace or a filter such as `info,tortie_ring=debug`)"
    )]
    LogLevel {
        /// The value given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The log file could not be opened for appending.
    #[error("cannot open log file {path}: {source}")]
    LogFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The syslog socket could not be reached.
    #[error("cannot connect to syslog at {path}: {source}")]
    Syslog {
        /// The socket path tried.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A global subscriber was already installed.
    #[error("logging is already initialised")]
    AlreadyInitialised,
    /// The metrics/health address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

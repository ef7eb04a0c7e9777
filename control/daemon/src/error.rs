//! The daemon's error type: every message names what was being done and on what.

use std::path::PathBuf;

/// Everything tortie-control can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A command-line or environment value is malformed.
    #[error("{option}: {reason}")]
    Config {
        /// The option or variable (`--ip`, `IP_AUTODETECTION_METHOD`, ...).
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A netlink request failed.
    #[error("netlink: {what}: {cause}")]
    Netlink {
        /// The step.
        what: String,
        /// The kernel's or the library's message.
        cause: String,
    },
    /// No address could be chosen for the node.
    #[error("IP autodetection ({method}): {reason}")]
    Autodetect {
        /// The method in use.
        method: String,
        /// Why nothing was found.
        reason: String,
    },
    /// The datastore failed.
    #[error("datastore: {0}")]
    Datastore(#[from] tortie_datastore::DatastoreError),
    /// A typed store call failed.
    #[error("store: {0}")]
    Store(#[from] tortie_store::StoreError),
    /// The ring could not be created or written.
    #[error("ring {path}: {cause}")]
    Ring {
        /// The ring file.
        path: PathBuf,
        /// What failed.
        cause: String,
    },
    /// A file or sysctl could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Metrics, health or logging could not start.
    #[error("telemetry: {0}")]
    Telemetry(#[from] tortie_telemetry::TelemetryError),
}

impl ControlError {
    /// A netlink error for step `what`.
    pub fn netlink(what: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        ControlError::Netlink {
            what: what.into(),
            cause: cause.to_string(),
        }
    }
}

//! The CLI's error type: every failure is printed as one line naming the file, document, line
//! and field path where there is one, and the process exits with status 1.

use tortie_datastore::DatastoreError;
use tortie_model::ModelError;
use tortie_store::StoreError;

use crate::config::ConfigError;
use crate::input::InputError;
use crate::output::OutputError;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad configuration (file, environment or flags).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A manifest could not be read.
    #[error("{0}")]
    Input(#[from] InputError),
    /// A manifest did not parse or validate (the model's message carries the location).
    #[error("{0}")]
    Parse(#[from] ModelError),
    /// The datastore could not be opened or reached.
    #[error("{0}")]
    Datastore(#[from] DatastoreError),
    /// A store call failed outside any input document.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A store call failed about a resource read from a document: `origin` is
    /// `file: document N (line L)`.
    #[error("{origin}: {detail}")]
    Located {
        /// Where the resource came from.
        origin: String,
        /// The store's message (field path included where the model gave one).
        detail: String,
        /// Whether part of the input stayed written (see [`CliError::may_have_written`]).
        partial: bool,
    },
    /// The policy engine refused the request (an unknown endpoint, a bad protocol).
    #[error("{0}")]
    Calc(#[from] tortie_calc::CalcError),
    /// IPAM failed.
    #[error("{0}")]
    Ipam(#[from] tortie_ipam::IpamError),
    /// A check found problems (the report was printed).
    #[error("{0}")]
    CheckFailed(String),
    /// Bad command-line usage.
    #[error("{0}")]
    Usage(String),
    /// Bad output format or column.
    #[error("{0}")]
    Output(#[from] OutputError),
    /// Writing output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl CliError {
    /// Whether the failed command may have written something (only a chunked write whose
    /// rollback did not complete).
    pub fn may_have_written(&self) -> bool {
        match self {
            CliError::Store(e) => matches!(e.innermost(), StoreError::PartiallyWritten { .. }),
            CliError::Located { partial, .. } => *partial,
            _ => false,
        }
    }
}

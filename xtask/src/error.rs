//! The one error type of the automation: every message names the command, file or namespace
//! that failed, so a broken lab says where it broke.

use std::path::PathBuf;

/// What went wrong in `cargo xtask lab|demo`.
#[derive(Debug, thiserror::Error)]
pub enum XtaskError {
    /// A program could not be started at all (not installed, not executable).
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A program ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status, in words.
        status: String,
        /// What it printed (stderr, else stdout), trimmed.
        output: String,
    },
    /// A file could not be read, written or removed.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The lab's state file does not parse.
    #[error("{}: not a lab state file: {message}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Entering a network namespace failed.
    #[error("cannot enter network namespace {namespace}: {message}")]
    Netns {
        /// The namespace.
        namespace: String,
        /// Why.
        message: String,
    },
    /// A bounded wait ran out.
    #[error("{what} not within {seconds:.1} s{detail}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        seconds: f64,
        /// Extra context (for example the tail of a daemon's log), starting with a separator.
        detail: String,
    },
    /// A lab exists where none was expected, or none where one was.
    #[error("{0}")]
    Lab(String),
    /// A command-line argument is wrong.
    #[error("{0}")]
    Usage(String),
}

/// Results of the automation.
pub type Result<T> = std::result::Result<T, XtaskError>;

impl XtaskError {
    /// A file error for `path`.
    pub fn file(path: impl Into<PathBuf>, source: std::io::Error) -> XtaskError {
        XtaskError::File {
            path: path.into(),
            source,
        }
    }
}

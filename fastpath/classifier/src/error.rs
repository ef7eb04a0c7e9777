//! Errors of the classifier crate.

use std::path::PathBuf;

/// Why a rule could not be inserted or removed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClassifierError {
    /// `u32::MAX` is reserved as "no match" inside the lookup.
    #[error("rule priority {priority} is reserved (priorities must be below u32::MAX)")]
    ReservedPriority {
        /// The offending priority.
        priority: u32,
    },
    /// A port range with `lo > hi`.
    #[error("rule priority {priority}: {field} range {lo}..={hi} is empty (lo > hi)")]
    EmptyPortRange {
        /// Priority of the rule.
        priority: u32,
        /// `src_ports`, `dst_ports` or their `not_` forms.
        field: &'static str,
        /// Range low bound.
        lo: u16,
        /// Range high bound.
        hi: u16,
    },
    /// One tuple table ran out of 24-bit entry indices.
    #[error("a tuple table is full ({limit} entries)")]
    TableFull {
        /// Entries one table can hold.
        limit: usize,
    },
    /// `remove` was given a rule that is not in the classifier.
    #[error("no rule with priority {priority} and these fields is in the classifier")]
    NotFound {
        /// Priority of the rule looked for.
        priority: u32,
    },
}

/// Why a ClassBench rule or trace file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClassBenchError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// What is wrong, naming the field.
        message: String,
    },
}

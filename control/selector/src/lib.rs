//! Calico label selectors: parser, evaluator and errors with the column.
//!
//! API contract (other crates build against it; its implementation is being written):
//! - [`Selector::parse`] parses a selector expression; [`ParseError`] names the column.
//! - [`Selector::matches`] evaluates it against a label map.
//! - [`Selector::to_string`] (via `Display`) prints a canonical form.

use std::collections::BTreeMap;
use std::fmt;

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector {
    source: String,
}

/// Why a selector did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based column (in characters) where the problem was found.
    pub column: usize,
    /// What was expected or found there.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Selector {
    /// Parses a selector expression.
    pub fn parse(source: &str) -> Result<Selector, ParseError> {
        Ok(Selector {
            source: source.trim().to_string(),
        })
    }

    /// Evaluates the selector against a set of labels.
    pub fn matches(&self, _labels: &BTreeMap<String, String>) -> bool {
        self.source.is_empty() || self.source == "all()"
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

//! Calico label selectors: parser, evaluator, canonical form, unique IDs and an incremental
//! selector/label index.
//!
//! A selector such as `app == 'web' && tier in {'fe', 'be'} && !has(quarantine)` picks the
//! endpoints (or network sets, namespaces, service accounts...) whose labels satisfy it. The
//! grammar, operator precedence and evaluation rules are Calico's (see `docs/reference/
//! selectors.md`); the canonical text and the unique ID are Calico's too, so the same selector is
//! de-duplicated the same way Felix does it.
//!
//! Layers:
//! - [`parser`](Selector::parse) turns text into a small tree (`ast`) whose label keys are hashed
//!   once ([`LabelKey`]); parse errors name the 1-based column and what was expected.
//! - Evaluation ([`Selector::matches_with`]) walks that tree against any [`Labels`] lookup
//!   without allocating; [`LabelMap`] probes with the pre-computed hashes, and [`Overlay`]
//!   layers an endpoint's labels over inherited ones without merging maps.
//! - [`Selector::label_restrictions`] and [`Selector::referenced_labels`] describe what the
//!   selector looks at, for indexing; [`index::SelectorIndex`] keeps the match relation between
//!   many selectors and many label sets up to date incrementally.
//!
//! ```
//! use std::collections::BTreeMap;
//! use tortie_selector::{LabelMap, Overlay, Selector};
//!
//! let selector = Selector::parse("app == 'web' && tier in {'fe', 'be'} && !has(quarantine)")?;
//! let labels: BTreeMap<String, String> = [("app", "web"), ("tier", "fe")]
//!     .into_iter()
//!     .map(|(k, v)| (k.to_string(), v.to_string()))
//!     .collect();
//! assert!(selector.matches(&labels));
//! assert_eq!(
//!     selector.to_string(),
//!     r#"(app == "web" && tier in {"be", "fe"} && !has(quarantine))"#
//! );
//!
//! // Own labels over inherited (profile / namespace) labels, without merging.
//! let own: LabelMap = [("app", "web"), ("tier", "be")].into_iter().collect();
//! let inherited: LabelMap = [("quarantine", "yes")].into_iter().collect();
//! assert!(!selector.matches_with(&Overlay { own: &own, inherited: &inherited }));
//!
//! let err = Selector::parse("app == web").unwrap_err();
//! assert_eq!(err.to_string(), "column 8: expected a quoted string after `==`, found `web`");
//! # Ok::<(), tortie_selector::ParseError>(())
//! ```

mod ast;
pub mod index;
mod labels;
mod parser;
mod restrictions;
mod unique_id;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub use ast::ValueOp;
pub use labels::{LabelKey, LabelMap, Labels, Overlay, hash_key};
pub use parser::{MAX_LABEL_LEN, MAX_NESTING};
pub use restrictions::{LabelRestriction, Restrictions};
pub use unique_id::selector_unique_id;

use ast::Node;

/// A parsed, compiled selector.
///
/// Equality and hashing compare the canonical text, so two selectors are equal when they are
/// the same up to spacing, quoting, parentheses, `!` runs and set member order.
#[derive(Clone)]
pub struct Selector {
    root: Node,
    canonical: Box<str>,
    keys: Box<[LabelKey]>,
    unique_id: Box<str>,
}

/// Why a selector did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// 1-based column (in characters) where the problem was found.
    pub column: usize,
    /// What was expected or found there.
    pub message: String,
}

/// One label test inside a selector, as listed by [`Selector::referenced_labels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelTerm<'a> {
    /// The label tested.
    pub key: &'a LabelKey,
    /// The test applied to it.
    pub test: LabelTest<'a>,
    /// Whether the term sits under an odd number of negations (`!`), so that the selector
    /// matches when the test fails.
    pub negated: bool,
}

/// The test a [`LabelTerm`] applies to its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelTest<'a> {
    /// `has(k)`.
    Has,
    /// `k <op> 'v'`.
    Value {
        /// The comparison.
        op: ValueOp,
        /// The literal compared with.
        value: &'a str,
    },
    /// `k in {..}` or, with `negated`, `k not in {..}`; members sorted and de-duplicated.
    Set {
        /// `not in` rather than `in`.
        negated: bool,
        /// The members.
        values: &'a [Box<str>],
    },
}

impl Selector {
    /// Parses a selector expression. Empty or blank text is `all()`.
    pub fn parse(source: &str) -> Result<Selector, ParseError> {
        parser::parse(source).map(Selector::from_root)
    }

    /// The selector that matches everything (`all()`, also the empty selector).
    pub fn all() -> Selector {
        Selector::from_root(Node::All)
    }

    fn from_root(root: Node) -> Selector {
        let mut canonical = String::new();
        // Writing into a String cannot fail.
        let _ = root.write_canonical(&mut canonical);
        let mut keys = Vec::new();
        root.walk(&mut |node| match node {
            Node::Has(key) | Node::Value { key, .. } | Node::Set { key, .. } => {
                keys.push(key.clone())
            }
            _ => {}
        });
        keys.sort_unstable();
        keys.dedup();
        let unique_id = selector_unique_id(&canonical).into_boxed_str();
        Selector {
            root,
            canonical: canonical.into_boxed_str(),
            keys: keys.into_boxed_slice(),
            unique_id,
        }
    }

    /// Evaluates the selector against a label map.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.root.evaluate(labels)
    }

    /// Evaluates the selector against any label lookup: a `HashMap`, a [`LabelMap`] (fastest:
    /// keys are probed with their pre-computed hash), or an [`Overlay`] of an endpoint's labels
    /// over inherited ones. Allocates nothing.
    #[inline]
    pub fn matches_with<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.root.evaluate(labels)
    }

    /// Whether this is `all()` (or the empty selector), which matches every label set.
    pub fn is_all(&self) -> bool {
        matches!(self.root, Node::All)
    }

    /// Whether the selector contains `global()`. `global()` evaluates as true; in an
    /// EntityRule's `namespaceSelector` it switches the rule's scope to non-namespaced objects
    /// (host endpoints, global network sets), which the caller must honour.
    pub fn uses_global(&self) -> bool {
        let mut found = false;
        self.root
            .walk(&mut |node| found |= matches!(node, Node::Global));
        found
    }

    /// The canonical text: single spaces around operators, double quotes unless the value holds
    /// one, `&&`/`||` groups parenthesised, set members sorted and de-duplicated, `!` runs
    /// folded. Parsing it gives back an equal selector.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// A stable ID, equal for equal selectors: Calico's `s:` + base64url(SHA-224) of the
    /// canonical text.
    pub fn unique_id(&self) -> &str {
        &self.unique_id
    }

    /// The distinct label keys the selector reads, sorted.
    pub fn label_keys(&self) -> &[LabelKey] {
        &self.keys
    }

    /// Every label test in the selector, in source order, with the values it compares against.
    pub fn referenced_labels(&self) -> impl Iterator<Item = LabelTerm<'_>> {
        let mut terms = Vec::new();
        collect_terms(&self.root, false, &mut terms);
        terms.into_iter()
    }

    /// Per-label necessary conditions for a match (see [`LabelRestriction`]).
    pub fn label_restrictions(&self) -> Restrictions<'_> {
        restrictions::restrictions(&self.root)
    }

    /// A copy with `prefix` prepended to every label name, as Calico does to evaluate a
    /// namespace selector against `pcns.`-prefixed namespace labels.
    pub fn with_prefix(&self, prefix: &str) -> Selector {
        let root = self
            .root
            .map_keys(&mut |key| LabelKey::new(&format!("{prefix}{key}")));
        Selector::from_root(root)
    }

    /// `(self) && (other)`, as parsing that text would give.
    pub fn and(&self, other: &Selector) -> Selector {
        Selector::from_root(Node::And(Box::new([self.root.clone(), other.root.clone()])))
    }
}

fn collect_terms<'a>(node: &'a Node, negated: bool, out: &mut Vec<LabelTerm<'a>>) {
    let (key, test) = match node {
        Node::All | Node::Global => return,
        Node::Has(key) => (key, LabelTest::Has),
        Node::Value { key, op, value } => (key, LabelTest::Value { op: *op, value }),
        Node::Set {
            key,
            negated: not_in,
            values,
        } => (
            key,
            LabelTest::Set {
                negated: *not_in,
                values,
            },
        ),
        Node::Not(inner) => return collect_terms(inner, !negated, out),
        Node::And(operands) | Node::Or(operands) => {
            for operand in operands.iter() {
                collect_terms(operand, negated, out);
            }
            return;
        }
    };
    out.push(LabelTerm { key, test, negated });
}

impl Default for Selector {
    fn default() -> Self {
        Selector::all()
    }
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for Selector {}

impl std::hash::Hash for Selector {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

impl PartialOrd for Selector {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Selector {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.canonical.cmp(&other.canonical)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Selector").field(&&*self.canonical).finish()
    }
}

#[cfg(test)]
mod tests;

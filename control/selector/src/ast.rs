//! The compiled form of a selector: a small tree whose leaves hold pre-hashed label keys and
//! owned literal values, evaluated with short-circuiting and without allocating; and its
//! canonical text.
//!
//! The tree mirrors Calico's parse tree (libcalico-go `selector/parser/ast.go`): a run of `&&`
//! (or `||`) operands at one parenthesis level is one node, parentheses themselves leave no node,
//! and a run of `!` folds to at most one [`Node::Not`]. Canonical text follows Calico's so the
//! same selector gets the same unique ID: `&&`/`||` groups are parenthesised, values use double
//! quotes unless they contain one, and set members are sorted and de-duplicated.

use std::fmt::{self, Write};

use crate::labels::{LabelKey, Labels};

/// A comparison of one label with one literal value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueOp {
    /// `k == 'v'`: present and equal.
    Eq,
    /// `k != 'v'`: absent, or present and different.
    Ne,
    /// `k contains 'v'`: present and containing the value.
    Contains,
    /// `k starts with 'v'`: present with the value as prefix.
    StartsWith,
    /// `k ends with 'v'`: present with the value as suffix.
    EndsWith,
}

impl ValueOp {
    /// The operator as printed in canonical form.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueOp::Eq => "==",
            ValueOp::Ne => "!=",
            ValueOp::Contains => "contains",
            ValueOp::StartsWith => "starts with",
            ValueOp::EndsWith => "ends with",
        }
    }

    /// Applies the operator to a label value (`None`: the label is absent).
    #[inline]
    pub fn apply(self, actual: Option<&str>, value: &str) -> bool {
        match (self, actual) {
            (ValueOp::Ne, None) => true,
            (_, None) => false,
            (ValueOp::Eq, Some(a)) => a == value,
            (ValueOp::Ne, Some(a)) => a != value,
            (ValueOp::Contains, Some(a)) => a.contains(value),
            (ValueOp::StartsWith, Some(a)) => a.starts_with(value),
            (ValueOp::EndsWith, Some(a)) => a.ends_with(value),
        }
    }
}

/// Set sizes up to which membership is a linear scan rather than a binary search.
const LINEAR_SET_MAX: usize = 8;

/// One node of a compiled selector.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// `all()`, and the empty selector.
    All,
    /// `global()`: true when evaluated; its scoping effect belongs to the caller.
    Global,
    /// `has(k)`.
    Has(LabelKey),
    /// `k <op> 'v'`.
    Value {
        key: LabelKey,
        op: ValueOp,
        value: Box<str>,
    },
    /// `k in {..}` (`negated: false`) or `k not in {..}`; `values` sorted and de-duplicated.
    Set {
        key: LabelKey,
        negated: bool,
        values: Box<[Box<str>]>,
    },
    /// `!x`; never directly wraps another `Not`.
    Not(Box<Node>),
    /// `a && b && ..`, two operands or more.
    And(Box<[Node]>),
    /// `a || b || ..`, two operands or more.
    Or(Box<[Node]>),
}

impl Node {
    /// `!node`, folding a double negation away.
    pub(crate) fn negate(self) -> Node {
        match self {
            Node::Not(inner) => *inner,
            other => Node::Not(Box::new(other)),
        }
    }

    /// A set node; sorts and de-duplicates the members.
    pub(crate) fn set(key: LabelKey, negated: bool, mut values: Vec<Box<str>>) -> Node {
        values.sort_unstable();
        values.dedup();
        Node::Set {
            key,
            negated,
            values: values.into_boxed_slice(),
        }
    }

    /// Evaluates the node. Allocates nothing; recursion depth is bounded by the parser's
    /// nesting limit.
    #[inline]
    pub(crate) fn evaluate<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Node::All | Node::Global => true,
            Node::Has(key) => labels.get_key(key).is_some(),
            Node::Value { key, op, value } => op.apply(labels.get_key(key), value),
            Node::Set {
                key,
                negated,
                values,
            } => match labels.get_key(key) {
                None => *negated,
                Some(actual) => set_contains(values, actual) != *negated,
            },
            Node::Not(inner) => !inner.evaluate(labels),
            Node::And(operands) => operands.iter().all(|n| n.evaluate(labels)),
            Node::Or(operands) => operands.iter().any(|n| n.evaluate(labels)),
        }
    }

    /// Visits every node, parents before children, operands in order.
    pub(crate) fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Node)) {
        visit(self);
        match self {
            Node::Not(inner) => inner.walk(visit),
            Node::And(operands) | Node::Or(operands) => {
                for operand in operands.iter() {
                    operand.walk(visit);
                }
            }
            _ => {}
        }
    }

    /// A copy with every label key rewritten by `rename`.
    pub(crate) fn map_keys(&self, rename: &mut impl FnMut(&LabelKey) -> LabelKey) -> Node {
        match self {
            Node::All => Node::All,
            Node::Global => Node::Global,
            Node::Has(key) => Node::Has(rename(key)),
            Node::Value { key, op, value } => Node::Value {
                key: rename(key),
                op: *op,
                value: value.clone(),
            },
            Node::Set {
                key,
                negated,
                values,
            } => Node::Set {
                key: rename(key),
                negated: *negated,
                values: values.clone(),
            },
            Node::Not(inner) => Node::Not(Box::new(inner.map_keys(rename))),
            Node::And(operands) => Node::And(operands.iter().map(|n| n.map_keys(rename)).collect()),
            Node::Or(operands) => Node::Or(operands.iter().map(|n| n.map_keys(rename)).collect()),
        }
    }

    /// Writes the canonical text of the node.
    pub(crate) fn write_canonical(&self, out: &mut impl Write) -> fmt::Result {
        match self {
            Node::All => out.write_str("all()"),
            Node::Global => out.write_str("global()"),
            Node::Has(key) => write!(out, "has({key})"),
            Node::Value { key, op, value } => {
                write!(out, "{key} {} ", op.as_str())?;
                write_quoted(out, value)
            }
            Node::Set {
                key,
                negated,
                values,
            } => {
                let op = if *negated { "not in" } else { "in" };
                write!(out, "{key} {op} {{")?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        out.write_str(", ")?;
                    }
                    write_quoted(out, value)?;
                }
                out.write_char('}')
            }
            Node::Not(inner) => {
                out.write_char('!')?;
                inner.write_canonical(out)
            }
            Node::And(operands) => write_group(out, operands, " && "),
            Node::Or(operands) => write_group(out, operands, " || "),
        }
    }
}

#[inline]
fn set_contains(values: &[Box<str>], actual: &str) -> bool {
    if values.len() <= LINEAR_SET_MAX {
        values.iter().any(|v| **v == *actual)
    } else {
        values.binary_search_by(|v| (**v).cmp(actual)).is_ok()
    }
}

fn write_group(out: &mut impl Write, operands: &[Node], separator: &str) -> fmt::Result {
    out.write_char('(')?;
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            out.write_str(separator)?;
        }
        operand.write_canonical(out)?;
    }
    out.write_char(')')
}

/// Literals have no escapes, so a value is quoted with whichever quote it does not contain
/// (double by default). A parsed value never contains both.
fn write_quoted(out: &mut impl Write, value: &str) -> fmt::Result {
    let quote = if value.contains('"') { '\'' } else { '"' };
    out.write_char(quote)?;
    out.write_str(value)?;
    out.write_char(quote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_ops_on_absent_labels() {
        for op in [
            ValueOp::Eq,
            ValueOp::Contains,
            ValueOp::StartsWith,
            ValueOp::EndsWith,
        ] {
            assert!(!op.apply(None, ""), "{op:?} on an absent label");
        }
        assert!(ValueOp::Ne.apply(None, "x"));
    }

    #[test]
    fn value_ops_on_present_labels() {
        assert!(ValueOp::Eq.apply(Some("web"), "web"));
        assert!(!ValueOp::Eq.apply(Some("web"), "Web"));
        assert!(ValueOp::Ne.apply(Some("web"), "db"));
        assert!(!ValueOp::Ne.apply(Some("web"), "web"));
        assert!(ValueOp::Contains.apply(Some("machine"), "ach"));
        assert!(ValueOp::Contains.apply(Some("x"), ""));
        assert!(ValueOp::StartsWith.apply(Some("prod-1"), "prod"));
        assert!(!ValueOp::StartsWith.apply(Some("eu-prod"), "prod"));
        assert!(ValueOp::EndsWith.apply(Some("a.local"), ".local"));
        assert!(!ValueOp::EndsWith.apply(Some("local"), ".local"));
    }

    #[test]
    fn large_sets_use_binary_search_correctly() {
        let values: Vec<Box<str>> = (0..40).map(|i| format!("v{i:02}").into()).collect();
        let node = Node::set(LabelKey::new("k"), false, values);
        let Node::Set { values, .. } = &node else {
            panic!("not a set node");
        };
        assert!(values.len() > LINEAR_SET_MAX);
        for i in 0..40 {
            assert!(set_contains(values, &format!("v{i:02}")));
        }
        assert!(!set_contains(values, "v40"));
        assert!(!set_contains(values, ""));
    }

    #[test]
    fn double_negation_folds() {
        let has = Node::Has(LabelKey::new("a"));
        let twice = has.clone().negate().negate();
        assert!(matches!(twice, Node::Has(_)));
        assert!(matches!(has.negate(), Node::Not(_)));
    }
}

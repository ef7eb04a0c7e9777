//! What a selector requires of individual labels, for indexing: which labels must be present,
//! which must be absent, and which values a label must take. A label index uses this to avoid
//! evaluating a selector against label sets that cannot match it (Calico's
//! `LabelRestrictions`, libcalico-go `selector/parser/ast.go`).
//!
//! The restrictions are necessary conditions only: a label set that satisfies them may still not
//! match, but one that violates them never does. `!=`, `not in`, `all()` and `global()` yield
//! none; a negation yields none except `!has(k)`, which requires `k` to be absent.

use std::collections::BTreeMap;

use crate::ast::{Node, ValueOp};

/// The constraints a selector places on one label.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelRestriction<'a> {
    /// The label must be present for the selector to match (`has(k)`, `k == 'v'`, ...).
    pub must_be_present: bool,
    /// The label must be absent for the selector to match (`!has(k)`).
    pub must_be_absent: bool,
    /// If set, the label's value must be one of these (sorted, de-duplicated). An empty list
    /// means no value can satisfy the selector (for example `k == 'a' && k == 'b'`).
    pub must_have_one_of: Option<Vec<&'a str>>,
}

impl LabelRestriction<'_> {
    /// Whether both presence and absence are required, or no value is allowed: no label set
    /// can satisfy this restriction.
    pub fn is_unsatisfiable(&self) -> bool {
        (self.must_be_present && self.must_be_absent)
            || self.must_have_one_of.as_ref().is_some_and(Vec::is_empty)
    }

    /// Whether a label set with `value` for this label (`None`: absent) satisfies the
    /// restriction.
    pub fn allows(&self, value: Option<&str>) -> bool {
        match value {
            None => !self.must_be_present,
            Some(v) => {
                !self.must_be_absent
                    && self
                        .must_have_one_of
                        .as_ref()
                        .is_none_or(|values| values.binary_search(&v).is_ok())
            }
        }
    }
}

/// Restrictions per label name, in name order.
pub type Restrictions<'a> = BTreeMap<&'a str, LabelRestriction<'a>>;

pub(crate) fn restrictions(node: &Node) -> Restrictions<'_> {
    match node {
        Node::All | Node::Global => Restrictions::new(),
        Node::Has(key) => single(key.as_str(), present(None)),
        Node::Value { key, op, value } => match op {
            ValueOp::Eq => single(key.as_str(), present(Some(vec![&**value]))),
            ValueOp::Ne => Restrictions::new(),
            ValueOp::Contains | ValueOp::StartsWith | ValueOp::EndsWith => {
                single(key.as_str(), present(None))
            }
        },
        Node::Set {
            key,
            negated,
            values,
        } => {
            if *negated {
                Restrictions::new()
            } else {
                let values = values.iter().map(|v| &**v).collect();
                single(key.as_str(), present(Some(values)))
            }
        }
        Node::Not(inner) => match &**inner {
            Node::Has(key) => single(
                key.as_str(),
                LabelRestriction {
                    must_be_absent: true,
                    ..LabelRestriction::default()
                },
            ),
            _ => Restrictions::new(),
        },
        Node::And(operands) => {
            let mut merged = Restrictions::new();
            for operand in operands.iter() {
                for (name, r) in restrictions(operand) {
                    let base = merged.entry(name).or_default();
                    base.must_be_present |= r.must_be_present;
                    base.must_be_absent |= r.must_be_absent;
                    base.must_have_one_of = match (base.must_have_one_of.take(), r.must_have_one_of)
                    {
                        (None, other) | (other, None) => other,
                        (Some(a), Some(b)) => Some(
                            a.into_iter()
                                .filter(|v| b.binary_search(v).is_ok())
                                .collect(),
                        ),
                    };
                }
            }
            merged
        }
        Node::Or(operands) => {
            let mut iter = operands.iter();
            let mut merged = iter.next().map(restrictions).unwrap_or_default();
            for operand in iter {
                let other = restrictions(operand);
                merged.retain(|name, r| {
                    let o = other.get(name).cloned().unwrap_or_default();
                    r.must_be_present = r.must_be_present && o.must_be_present;
                    r.must_be_absent = r.must_be_absent && o.must_be_absent;
                    r.must_have_one_of = if r.must_be_present {
                        match (r.must_have_one_of.take(), o.must_have_one_of) {
                            (Some(mut a), Some(b)) => {
                                a.extend(b);
                                a.sort_unstable();
                                a.dedup();
                                Some(a)
                            }
                            _ => None,
                        }
                    } else {
                        None
                    };
                    r.must_be_present || r.must_be_absent
                });
            }
            merged
        }
    }
}

fn present(values: Option<Vec<&str>>) -> LabelRestriction<'_> {
    LabelRestriction {
        must_be_present: true,
        must_be_absent: false,
        must_have_one_of: values,
    }
}

fn single<'a>(name: &'a str, r: LabelRestriction<'a>) -> Restrictions<'a> {
    let mut map = Restrictions::new();
    map.insert(name, r);
    map
}

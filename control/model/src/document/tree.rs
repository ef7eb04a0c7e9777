//! A YAML/JSON value tree in which every node remembers its line and column.
//!
//! serde's data model carries no positions, so the model parses the text into this tree first
//! (from the events of a YAML 1.2 parser: JSON is read through the same parser), then
//! deserializes the typed resources from the tree ([`super::de`]). Errors can then name the line
//! of the node where deserialization or validation failed.
//!
//! Plain (unquoted) scalars stay text until a type asks for them, so that `port: 80` reads as a
//! number and `name: 80` as a string, as with Calico's YAML-to-JSON conversion.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// Documents deeper than this are rejected (bounds recursion in the deserializer and in drop).
pub(crate) const MAX_DEPTH: usize = 128;
/// Alias expansion may not grow one document past this many nodes ("billion laughs").
pub(crate) const MAX_NODES: usize = 1_000_000;

/// A 1-based line and column in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub line: usize,
    pub column: usize,
}

impl Mark {
    fn from_span(span: &Span) -> Self {
        Mark {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tree {
    pub value: TreeValue,
    /// Where the node starts; `None` for trees built from another serde format.
    pub mark: Option<Mark>,
}

/// The node's content.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TreeValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    /// A quoted or block scalar: always a string.
    Str(String),
    /// A plain scalar: resolved by the YAML 1.2 core schema when a type is not imposed.
    Plain(String),
    Seq(Vec<Tree>),
    /// Entries in input order (keys are unique: duplicates are a parse error).
    Map(Vec<(Tree, Tree)>),
}

/// A plain scalar resolved by the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

/// Resolves a plain scalar (YAML 1.2.2 section 10.3.2, "Tag Resolution" of the core schema).
pub(crate) fn resolve_plain(text: &str) -> Resolved<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(v) = u64::from_str_radix(hex, 16)
    {
        return int_value(v);
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(v) = u64::from_str_radix(oct, 8)
    {
        return int_value(v);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = text.parse::<i64>() {
            return Resolved::Int(v);
        }
        if let Ok(v) = digits.parse::<u64>()
            && !text.starts_with('-')
        {
            return Resolved::UInt(v);
        }
        return Resolved::Str(text);
    }
    if looks_like_float(digits)
        && let Ok(v) = text.parse::<f64>()
    {
        return Resolved::Float(v);
    }
    Resolved::Str(text)
}

fn int_value(v: u64) -> Resolved<'static> {
    i64::try_from(v).map_or(Resolved::UInt(v), Resolved::Int)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn looks_like_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac_part {
        Some(frac) => {
            all_digits(int_part) && all_digits(frac) && !(int_part.is_empty() && frac.is_empty())
        }
        None => !int_part.is_empty() && all_digits(int_part),
    };
    let exponent_ok = match exponent {
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && all_digits(e)
        }
        None => true,
    };
    mantissa_ok && exponent_ok && (frac_part.is_some() || exponent.is_some())
}

impl Tree {
    /// A node without a position.
    pub fn unmarked(value: TreeValue) -> Self {
        Tree { value, mark: None }
    }

    /// The scalar's text if this is a string-like scalar (quoted or plain).
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            TreeValue::Str(s) | TreeValue::Plain(s) => Some(s),
            _ => None,
        }
    }

    /// The value for `key` if this is a mapping holding that (string) key.
    pub fn get(&self, key: &str) -> Option<&Tree> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value node for `key`.
    pub fn entry(&self, key: &str) -> Option<(&Tree, &Tree)> {
        match &self.value {
            TreeValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// Whether this node is a null (explicit `null`, `~`, or an empty plain scalar).
    pub fn is_null(&self) -> bool {
        match &self.value {
            TreeValue::Null => true,
            TreeValue::Plain(s) => resolve_plain(s) == Resolved::Null,
            _ => false,
        }
    }

    /// A short description of the node's type, for error messages.
    pub fn describe(&self) -> &'static str {
        match &self.value {
            TreeValue::Null => "null",
            TreeValue::Bool(_) => "a boolean",
            TreeValue::Int(_) | TreeValue::UInt(_) => "an integer",
            TreeValue::Float(_) => "a number",
            TreeValue::Str(_) => "a string",
            TreeValue::Plain(s) => match resolve_plain(s) {
                Resolved::Null => "null",
                Resolved::Bool(_) => "a boolean",
                Resolved::Int(_) | Resolved::UInt(_) => "an integer",
                Resolved::Float(_) => "a number",
                Resolved::Str(_) => "a string",
            },
            TreeValue::Seq(_) => "a list",
            TreeValue::Map(_) => "a mapping",
        }
    }

    fn count_nodes(&self) -> usize {
        1 + match &self.value {
            TreeValue::Seq(items) => items.iter().map(Tree::count_nodes).sum(),
            TreeValue::Map(entries) => entries
                .iter()
                .map(|(k, v)| k.count_nodes() + v.count_nodes())
                .sum(),
            _ => 0,
        }
    }
}

/// One YAML document of the stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document {
    /// 1-based index in the stream.
    pub index: usize,
    /// Line where the document starts.
    pub line: usize,
    /// The root node; `None` for an empty document (skipped, as calicoctl does).
    pub root: Option<Tree>,
}

/// A syntax or structure problem found while building the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeError {
    pub document: usize,
    pub mark: Mark,
    pub message: String,
}

enum Frame {
    Seq {
        items: Vec<Tree>,
        mark: Mark,
        anchor: usize,
    },
    Map {
        entries: Vec<(Tree, Tree)>,
        pending_key: Option<Tree>,
        mark: Mark,
        anchor: usize,
    },
}

/// Builds the documents of `text`.
pub(crate) fn parse_stream(text: &str) -> Result<Vec<Document>, TreeError> {
    let mut builder = Builder {
        documents: Vec::new(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        current: None,
    };
    for event in Parser::new_from_str(text) {
        let document = builder
            .current
            .as_ref()
            .map_or(builder.documents.len() + 1, |d| d.index);
        let (event, span) = event.map_err(|e| TreeError {
            document,
            mark: Mark {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        builder.event(event, &span)?;
    }
    Ok(builder.documents)
}

struct Builder {
    documents: Vec<Document>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Tree>,
    nodes: usize,
    current: Option<Document>,
}

impl Builder {
    fn error(&self, mark: Mark, message: impl Into<String>) -> TreeError {
        TreeError {
            document: self
                .current
                .as_ref()
                .map_or(self.documents.len() + 1, |d| d.index),
            mark,
            message: message.into(),
        }
    }

    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), TreeError> {
        let mark = Mark::from_span(span);
        match event {
            Event::DocumentStart(_) => {
                self.anchors.clear();
                self.nodes = 0;
                self.current = Some(Document {
                    index: self.documents.len() + 1,
                    line: mark.line,
                    root: None,
                });
            }
            Event::DocumentEnd => {
                if let Some(document) = self.current.take() {
                    self.documents.push(document);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let is_str_tag = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !is_str_tag {
                    TreeValue::Plain(text.into_owned())
                } else {
                    TreeValue::Str(text.into_owned())
                };
                self.complete(
                    Tree {
                        value,
                        mark: Some(mark),
                    },
                    anchor,
                )?;
            }
            Event::Alias(id) => {
                let tree = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| self.error(mark, "alias to an unknown anchor"))?;
                self.nodes += tree.count_nodes();
                if self.nodes > MAX_NODES {
                    return Err(self.error(mark, "document too large after expanding aliases"));
                }
                self.complete(tree, 0)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(
                    Frame::Seq {
                        items: Vec::new(),
                        mark,
                        anchor,
                    },
                    mark,
                )?;
            }
            Event::MappingStart(anchor, _) => {
                self.open(
                    Frame::Map {
                        entries: Vec::new(),
                        pending_key: None,
                        mark,
                        anchor,
                    },
                    mark,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (tree, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        items,
                        mark,
                        anchor,
                    }) => (
                        Tree {
                            value: TreeValue::Seq(items),
                            mark: Some(mark),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        entries,
                        mark,
                        anchor,
                        ..
                    }) => (
                        Tree {
                            value: TreeValue::Map(entries),
                            mark: Some(mark),
                        },
                        anchor,
                    ),
                    None => return Err(self.error(mark, "unbalanced end of collection")),
                };
                self.complete(tree, anchor)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, mark: Mark) -> Result<(), TreeError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(mark, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn complete(&mut self, tree: Tree, anchor: usize) -> Result<(), TreeError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            let mark = tree.mark.unwrap_or(Mark { line: 1, column: 1 });
            return Err(self.error(mark, "document too large"));
        }
        if anchor != 0 {
            self.anchors.insert(anchor, tree.clone());
        }
        match self.stack.last_mut() {
            Some(Frame::Seq { items, .. }) => items.push(tree),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    if matches!(tree.value, TreeValue::Seq(_) | TreeValue::Map(_)) {
                        let mark = tree.mark.unwrap_or(Mark { line: 1, column: 1 });
                        return Err(self.error(mark, "a mapping key must be a scalar"));
                    }
                    let text = tree.as_text().unwrap_or_default();
                    if entries.iter().any(|(k, _)| k.as_text() == Some(text)) {
                        let mark = tree.mark.unwrap_or(Mark { line: 1, column: 1 });
                        let message = format!("duplicate key {text:?}");
                        return Err(self.error(mark, message));
                    }
                    *pending_key = Some(tree);
                }
                Some(key) => entries.push((key, tree)),
            },
            None => {
                let mark = tree.mark.unwrap_or(Mark { line: 1, column: 1 });
                match self.current.as_mut() {
                    Some(document) => document.root = Some(tree),
                    None => return Err(self.error(mark, "content outside a document")),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_by_the_core_schema() {
        assert_eq!(resolve_plain("80"), Resolved::Int(80));
        assert_eq!(resolve_plain("-3"), Resolved::Int(-3));
        assert_eq!(resolve_plain("0x1F"), Resolved::Int(31));
        assert_eq!(resolve_plain("0o17"), Resolved::Int(15));
        assert_eq!(
            resolve_plain("18446744073709551615"),
            Resolved::UInt(u64::MAX)
        );
        assert_eq!(resolve_plain("1.5"), Resolved::Float(1.5));
        assert_eq!(resolve_plain("1e3"), Resolved::Float(1000.0));
        assert_eq!(resolve_plain("true"), Resolved::Bool(true));
        assert_eq!(resolve_plain("~"), Resolved::Null);
        assert_eq!(resolve_plain(""), Resolved::Null);
        assert_eq!(resolve_plain("80:90"), Resolved::Str("80:90"));
        assert_eq!(resolve_plain("1.2.3"), Resolved::Str("1.2.3"));
        assert_eq!(resolve_plain("yes"), Resolved::Str("yes"));
        assert_eq!(resolve_plain("."), Resolved::Str("."));
    }

    #[test]
    fn documents_carry_index_line_and_marks() {
        let docs = parse_stream("a: 1\n---\n# empty\n---\nb:\n  - x\n  - 'y'\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].index, 1);
        assert!(docs[1].root.as_ref().is_none_or(Tree::is_null));
        let root = docs[2].root.as_ref().unwrap();
        let list = root.get("b").unwrap();
        let TreeValue::Seq(items) = &list.value else {
            panic!("expected a list")
        };
        assert_eq!(items[0].value, TreeValue::Plain("x".into()));
        assert_eq!(items[1].value, TreeValue::Str("y".into()));
        assert_eq!(items[1].mark, Some(Mark { line: 7, column: 5 }));
    }

    #[test]
    fn json_with_tabs_parses() {
        let docs = parse_stream("{\n\t\"a\": [1, 2],\n\t\"b\": \"x\"\n}\n").unwrap();
        let root = docs[0].root.as_ref().unwrap();
        assert_eq!(root.get("b").unwrap().value, TreeValue::Str("x".into()));
    }

    #[test]
    fn duplicate_keys_are_rejected_with_their_line() {
        let err = parse_stream("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.mark.line, 3);
        assert!(
            err.message.contains("duplicate key \"a\""),
            "{}",
            err.message
        );
    }

    #[test]
    fn aliases_expand_and_are_bounded() {
        let docs = parse_stream("a: &x [1, 2]\nb: *x\n").unwrap();
        let root = docs[0].root.as_ref().unwrap();
        assert_eq!(root.get("a").unwrap().value, root.get("b").unwrap().value);
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = parse_stream(&bomb).unwrap_err();
        assert!(err.message.contains("too large"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let text = "[".repeat(MAX_DEPTH + 5);
        let err = parse_stream(&text).unwrap_err();
        assert!(err.message.contains("nesting"), "{}", err.message);
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse_stream("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.mark.line >= 1);
        assert!(!err.message.is_empty());
    }
}

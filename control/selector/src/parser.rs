//! Recursive-descent parser for Calico's selector grammar.
//!
//! Behaviour follows libcalico-go's tokenizer and parser (`selector/tokenizer/tokenizer.go`,
//! `selector/parser/parser.go`), reimplemented from their documented behaviour:
//!
//! - only space and tab separate tokens (a newline is an error);
//! - operator words (`in`, `not in`, `contains`, `starts with`, `ends with`) are recognised only
//!   right after a label, so `has`, `in` or `contains` are valid label names; `notin`,
//!   `startswith` and `endswith` need no space;
//! - `has(`, `all(` and `global(` must be written without a space before the parenthesis;
//! - a run of `!` applies to the single operation (or parenthesised group) after it;
//! - `&&` binds tighter than `||`; both are left-associative n-ary groups;
//! - string literals are `'..'` or `".."` with no escapes;
//! - label names are 1 to 512 characters of `[A-Za-z0-9_./-]`.
//!
//! Errors carry the 1-based character column of the offending token and say what was expected.

use crate::ParseError;
use crate::ast::{Node, ValueOp};
use crate::labels::LabelKey;

/// Longest label name the grammar accepts, in bytes (Calico's tokenizer limit).
pub const MAX_LABEL_LEN: usize = 512;

/// Deepest parenthesis nesting accepted. Calico has no limit, but real selectors (at most 1024
/// characters in the CRDs) stay far below it; the limit keeps parsing, evaluation, printing and
/// dropping of hostile input within a small, fixed stack depth.
pub const MAX_NESTING: usize = 64;

const EXPECTED_TERM: &str = "a label, `has(..)`, `all()`, `global()`, `!` or `(`";
const EXPECTED_OPERATOR: &str =
    "an operator (`==`, `!=`, `in`, `not in`, `contains`, `starts with` or `ends with`)";

/// Parses `source` into a node tree. Empty or blank input is `all()`.
pub(crate) fn parse(source: &str) -> Result<Node, ParseError> {
    let mut parser = Parser {
        src: source,
        bytes: source.as_bytes(),
        pos: 0,
        depth: 0,
    };
    parser.skip_ws();
    if parser.at_end() {
        return Ok(Node::All);
    }
    let node = parser.or_expr()?;
    parser.skip_ws();
    if !parser.at_end() {
        return Err(parser.error_here(format!(
            "expected `&&`, `||` or end of selector, found {}",
            parser.describe_here()
        )));
    }
    Ok(node)
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

impl<'a> Parser<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            column: self.src[..pos].chars().count() + 1,
            message: message.into(),
        }
    }

    fn error_here(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.pos, message)
    }

    /// Describes the token at the cursor for an error message.
    fn describe_here(&self) -> String {
        let rest = self.rest();
        match rest.chars().next() {
            None => "end of selector".to_string(),
            Some('\n') => "a newline (only spaces and tabs may separate tokens)".to_string(),
            Some('\'' | '"') => "a string literal".to_string(),
            Some(_) if is_label_byte(rest.as_bytes()[0]) => {
                let word: String = rest
                    .bytes()
                    .take_while(|b| is_label_byte(*b))
                    .take(40)
                    .map(char::from)
                    .collect();
                format!("`{word}`")
            }
            Some(c) if c.is_control() => format!("character {c:?}"),
            Some(c) => format!("`{c}`"),
        }
    }

    /// `or_expr := and_expr ( "||" and_expr )*`
    fn or_expr(&mut self) -> Result<Node, ParseError> {
        let mut operands = vec![self.and_expr()?];
        loop {
            self.skip_ws();
            if self.eat("||") {
                operands.push(self.and_expr()?);
            } else if self.peek() == Some(b'|') {
                return Err(self.error_here("expected `||`, found a single `|`"));
            } else {
                break;
            }
        }
        Ok(group(operands, Node::Or))
    }

    /// `and_expr := unary ( "&&" unary )*`
    fn and_expr(&mut self) -> Result<Node, ParseError> {
        let mut operands = vec![self.unary()?];
        loop {
            self.skip_ws();
            if self.eat("&&") {
                operands.push(self.unary()?);
            } else if self.peek() == Some(b'&') {
                return Err(self.error_here("expected `&&`, found a single `&`"));
            } else {
                break;
            }
        }
        Ok(group(operands, Node::And))
    }

    /// `unary := "!"* primary`, the run of `!` folded to at most one negation.
    fn unary(&mut self) -> Result<Node, ParseError> {
        let mut negated = false;
        loop {
            self.skip_ws();
            if self.rest().starts_with("!=") {
                return Err(self.error_here(format!("expected {EXPECTED_TERM}, found `!=`")));
            }
            if self.eat("!") {
                negated = !negated;
            } else {
                break;
            }
        }
        let node = self.primary()?;
        Ok(if negated { node.negate() } else { node })
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        self.skip_ws();
        let start = self.pos;
        if self.eat("(") {
            if self.depth >= MAX_NESTING {
                return Err(self.error_at(
                    start,
                    format!("parentheses nested deeper than {MAX_NESTING} levels"),
                ));
            }
            self.depth += 1;
            let inner = self.or_expr()?;
            self.depth -= 1;
            self.skip_ws();
            if !self.eat(")") {
                let open_column = self.src[..start].chars().count() + 1;
                return Err(self.error_here(format!(
                    "expected `)` to close the `(` at column {open_column}, found {}",
                    self.describe_here()
                )));
            }
            return Ok(inner);
        }
        if self.eat("has(") {
            self.skip_ws();
            let Some(key) = self.label()? else {
                return Err(self.error_here(format!(
                    "expected a label name inside `has(`, found {}",
                    self.describe_here()
                )));
            };
            self.skip_ws();
            if !self.eat(")") {
                return Err(self.error_here(format!(
                    "expected `)` to close `has(`, found {}",
                    self.describe_here()
                )));
            }
            return Ok(Node::Has(key));
        }
        for (word, node) in [("all(", Node::All), ("global(", Node::Global)] {
            if self.eat(word) {
                self.skip_ws();
                if !self.eat(")") {
                    return Err(self.error_here(format!(
                        "expected `)` to close `{word}`, found {}",
                        self.describe_here()
                    )));
                }
                return Ok(node);
            }
        }
        match self.label()? {
            Some(key) => self.operation(key),
            None => Err(self.error_here(format!(
                "expected {EXPECTED_TERM}, found {}",
                self.describe_here()
            ))),
        }
    }

    /// Reads a label name at the cursor, if one starts there.
    fn label(&mut self) -> Result<Option<LabelKey>, ParseError> {
        let start = self.pos;
        let len = self.bytes[start..]
            .iter()
            .take_while(|b| is_label_byte(**b))
            .count();
        if len == 0 {
            return Ok(None);
        }
        if len > MAX_LABEL_LEN {
            return Err(self.error_at(
                start + MAX_LABEL_LEN,
                format!("label name longer than {MAX_LABEL_LEN} characters"),
            ));
        }
        self.pos += len;
        Ok(Some(LabelKey::new(&self.src[start..self.pos])))
    }

    /// The operator and operand after a label.
    fn operation(&mut self, key: LabelKey) -> Result<Node, ParseError> {
        self.skip_ws();
        let op_start = self.pos;
        let value_op = if self.eat("==") {
            Some(ValueOp::Eq)
        } else if self.eat("!=") {
            Some(ValueOp::Ne)
        } else if self.keyword("contains")? {
            Some(ValueOp::Contains)
        } else if self.two_words("starts", "with")? {
            Some(ValueOp::StartsWith)
        } else if self.two_words("ends", "with")? {
            Some(ValueOp::EndsWith)
        } else {
            None
        };
        if let Some(op) = value_op {
            let value = self.string_literal(op.as_str())?;
            return Ok(Node::Value { key, op, value });
        }
        if self.two_words("not", "in")? {
            let values = self.set_literal("not in")?;
            return Ok(Node::set(key, true, values));
        }
        if self.keyword("in")? {
            let values = self.set_literal("in")?;
            return Ok(Node::set(key, false, values));
        }
        self.pos = op_start;
        let hint = if self.peek() == Some(b'=') {
            " (equality is `==`)"
        } else {
            ""
        };
        Err(self.error_here(format!(
            "expected {EXPECTED_OPERATOR} after label `{key}`, found {}{hint}",
            self.describe_here()
        )))
    }

    /// Consumes operator word `word` if it is next and ends at a word boundary. A longer word
    /// that merely starts with `word` is reported as an unknown operator.
    fn keyword(&mut self, word: &str) -> Result<bool, ParseError> {
        if !self.rest().starts_with(word) {
            return Ok(false);
        }
        let end = self.pos + word.len();
        if self.bytes.get(end).is_some_and(|b| is_label_byte(*b)) {
            return Err(self.error_here(format!(
                "expected {EXPECTED_OPERATOR}, found {}",
                self.describe_here()
            )));
        }
        self.pos = end;
        Ok(true)
    }

    /// Consumes a two-word operator such as `starts with`; any run of spaces and tabs (or none)
    /// may separate the words, and the second must end at a word boundary.
    fn two_words(&mut self, first: &str, second: &str) -> Result<bool, ParseError> {
        if !self.rest().starts_with(first) {
            return Ok(false);
        }
        self.pos += first.len();
        self.skip_ws();
        let end = self.pos + second.len();
        let complete = self.rest().starts_with(second)
            && !self.bytes.get(end).is_some_and(|b| is_label_byte(*b));
        if !complete {
            return Err(self.error_here(format!(
                "expected `{second}` after `{first}`, found {}",
                self.describe_here()
            )));
        }
        self.pos = end;
        Ok(true)
    }

    /// A quoted value after operator `op`.
    fn string_literal(&mut self, op: &str) -> Result<Box<str>, ParseError> {
        self.skip_ws();
        match self.quoted()? {
            Some(value) => Ok(value),
            None => Err(self.error_here(format!(
                "expected a quoted string after `{op}`, found {}",
                self.describe_here()
            ))),
        }
    }

    /// A `'..'` or `".."` literal at the cursor, if one starts there. No escapes: the literal
    /// ends at the next matching quote.
    fn quoted(&mut self) -> Result<Option<Box<str>>, ParseError> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Ok(None),
        };
        let start = self.pos;
        let body_start = start + 1;
        match self.bytes[body_start..].iter().position(|b| *b == quote) {
            Some(len) => {
                self.pos = body_start + len + 1;
                Ok(Some(self.src[body_start..body_start + len].into()))
            }
            None => Err(self.error_at(
                start,
                format!(
                    "unterminated string literal: no closing {} (there are no escapes)",
                    char::from(quote)
                ),
            )),
        }
    }

    /// `SET := "{" [ STRING ( "," STRING )* [","] ] "}"`
    fn set_literal(&mut self, op: &str) -> Result<Vec<Box<str>>, ParseError> {
        self.skip_ws();
        if !self.eat("{") {
            return Err(self.error_here(format!(
                "expected a set such as {{'a', 'b'}} after `{op}`, found {}",
                self.describe_here()
            )));
        }
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            if self.eat("}") {
                return Ok(values);
            }
            match self.quoted()? {
                Some(value) => values.push(value),
                None => {
                    return Err(self.error_here(format!(
                        "expected a quoted string or `}}` in set, found {}",
                        self.describe_here()
                    )));
                }
            }
            self.skip_ws();
            if self.eat("}") {
                return Ok(values);
            }
            if !self.eat(",") {
                return Err(self.error_here(format!(
                    "expected `,` or `}}` in set, found {}",
                    self.describe_here()
                )));
            }
        }
    }
}

/// One operand stays itself; several make an n-ary node.
fn group(mut operands: Vec<Node>, make: fn(Box<[Node]>) -> Node) -> Node {
    if operands.len() == 1 {
        operands.pop().unwrap_or(Node::All)
    } else {
        make(operands.into_boxed_slice())
    }
}

//! A small YAML emitter for JSON values (block style, keys in the value's order).
//!
//! Strings are written plain when the YAML 1.2 core schema would read them back as the same
//! string, and double-quoted (JSON escaping, which YAML accepts) otherwise.

use super::tree::{Resolved, resolve_plain};
use serde_json::Value;
use std::fmt::Write;

/// Renders `value` as a YAML document (without a `---` line).
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    for (key, value) in map {
        indent(out, level);
        out.push_str(&string_text(key));
        out.push(':');
        write_value(out, value, level);
    }
}

fn write_seq(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first key goes on the dash line; the rest align under it.
                let mut first = true;
                for (key, value) in map {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        indent(out, level + 1);
                    }
                    out.push_str(&string_text(key));
                    out.push(':');
                    write_value(out, value, level + 1);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, level + 1);
            }
            scalar => {
                out.push(' ');
                out.push_str(&scalar_text(scalar));
                out.push('\n');
            }
        }
    }
}

fn write_value(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, level + 1);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, level + 1);
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string_text(s),
        Value::Object(_) => "{}".to_string(),
        Value::Array(_) => "[]".to_string(),
    }
}

fn string_text(s: &str) -> String {
    if is_safe_plain(s) {
        return s.to_string();
    }
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{85}' || c == '\u{feff}' => {
                let _ = write!(quoted, "\\u{:04x}", c as u32);
            }
            c if ('\u{2028}'..='\u{2029}').contains(&c) => {
                let _ = write!(quoted, "\\u{:04x}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Characters allowed in a plain scalar we emit: printable, and no flow indicators.
fn is_plain_char(c: char) -> bool {
    if c.is_ascii() {
        return (c.is_ascii_graphic() || c == ' ') && !"{}[],".contains(c);
    }
    !c.is_control() && !c.is_whitespace() && c != '\u{feff}'
}

/// Whether `s` can be written as a plain scalar and read back as the same string.
fn is_safe_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if resolve_plain(s) != Resolved::Str(s) {
        return false;
    }
    // Words a YAML 1.1 reader would take as booleans.
    let lower = s.to_ascii_lowercase();
    if matches!(lower.as_str(), "y" | "n" | "yes" | "no" | "on" | "off") {
        return false;
    }
    if first.is_whitespace() || s.ends_with(char::is_whitespace) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`.".contains(first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    s.chars().all(is_plain_char)
}

#[cfg(test)]
mod tests {
    use super::super::tree::parse_stream;
    use super::*;

    #[test]
    fn risky_strings_are_quoted() {
        for s in [
            "80", "true", "yes", "", " x", "a: b", "- x", "null", "1.5", "#c", "x #y", "{a}",
            "a\nb", "*x",
        ] {
            assert!(
                string_text(s).starts_with('"'),
                "{s:?} -> {}",
                string_text(s)
            );
        }
        for s in [
            "web",
            "app.kubernetes.io/name",
            "role == 'db'",
            "10.0.0.0/8",
            "has(x)",
        ] {
            assert_eq!(string_text(s), s);
        }
    }

    #[test]
    fn emitted_yaml_parses_back_to_the_same_strings() {
        let value = serde_json::json!({
            "a": {"b": ["x", "80", {"c": "d", "e": [1, 2]}], "f": {}},
            "g": [],
            "h": "it's \"quoted\"\t",
        });
        let text = to_yaml(&value);
        let docs = parse_stream(&text).unwrap();
        let root = docs[0].root.as_ref().unwrap();
        let h = root.get("h").unwrap();
        assert_eq!(h.as_text(), Some("it's \"quoted\"\t"), "{text}");
        let b = root.get("a").unwrap().get("b").unwrap();
        let super::super::tree::TreeValue::Seq(items) = &b.value else {
            panic!("{text}")
        };
        assert_eq!(items[1].as_text(), Some("80"));
        assert_eq!(items[2].get("c").unwrap().as_text(), Some("d"));
    }
}

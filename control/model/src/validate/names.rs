//! Name, label, selector and small-format checks shared by the validators.

use crate::error::{FieldPath, ModelError, Result};
use std::collections::BTreeMap;
use tortie_selector::Selector;

/// Longest selector Calico's CRDs accept.
pub(crate) const MAX_SELECTOR_LEN: usize = 1024;
/// Maximum total size of a resource's annotations (keys plus values).
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

pub(crate) fn fail<T>(path: &FieldPath, message: impl Into<String>) -> Result<T> {
    Err(ModelError::invalid(path, message))
}

fn is_label_chars(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// RFC 1123 label as Kubernetes uses it: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub(crate) fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_label_chars(s)
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label_chars)
}

pub(crate) fn check_dns_label(path: &FieldPath, s: &str, what: &str) -> Result<()> {
    if is_dns_label(s) {
        return Ok(());
    }
    fail(
        path,
        format!(
            "invalid {what} {s:?}: must be at most 63 lower-case letters, digits or '-', starting and ending with a letter or digit"
        ),
    )
}

pub(crate) fn check_dns_subdomain(path: &FieldPath, s: &str, what: &str) -> Result<()> {
    if is_dns_subdomain(s) {
        return Ok(());
    }
    fail(
        path,
        format!(
            "invalid {what} {s:?}: must be at most 253 lower-case letters, digits, '-' or '.', each dot-separated part starting and ending with a letter or digit"
        ),
    )
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters (label names and values).
fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    s.len() <= 63
        && !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Kubernetes qualified name: `[prefix/]name`, prefix a DNS subdomain.
pub(crate) fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(s),
    }
}

/// Label values: empty, or a label name.
pub(crate) fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

pub(crate) fn check_labels(path: &FieldPath, labels: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in labels {
        let entry = path.key(key);
        if !is_qualified_name(key) {
            fail(
                &entry,
                format!(
                    "invalid label key {key:?}: must be [prefix/]name, name at most 63 letters, digits, '-', '_' or '.'"
                ),
            )?;
        }
        if !is_label_value(value) {
            fail(
                &entry,
                format!(
                    "invalid label value {value:?}: must be empty or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
                ),
            )?;
        }
    }
    Ok(())
}

pub(crate) fn check_annotations(
    path: &FieldPath,
    annotations: &BTreeMap<String, String>,
) -> Result<()> {
    let mut total = 0;
    for (key, value) in annotations {
        if !is_qualified_name(&key.to_ascii_lowercase()) {
            fail(&path.key(key), format!("invalid annotation key {key:?}"))?;
        }
        total += key.len() + value.len();
    }
    if total > MAX_ANNOTATIONS_BYTES {
        return fail(
            path,
            format!(
                "annotations total {total} bytes, more than the {MAX_ANNOTATIONS_BYTES} allowed"
            ),
        );
    }
    Ok(())
}

/// Kubernetes port names (IANA service names): at most 15 characters of `[a-z0-9-]`, at least
/// one letter, no leading, trailing or doubled '-'.
pub(crate) fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

pub(crate) fn check_port_name(path: &FieldPath, s: &str) -> Result<()> {
    if is_port_name(s) {
        return Ok(());
    }
    fail(
        path,
        format!(
            "invalid port name {s:?}: must be at most 15 lower-case letters, digits or single '-', with at least one letter"
        ),
    )
}

/// Linux interface names as Calico accepts them (`*` means every interface of the host).
pub(crate) fn check_interface_name(path: &FieldPath, s: &str, allow_star: bool) -> Result<()> {
    let ok = (allow_star && s == "*")
        || (!s.is_empty()
            && s.len() <= 15
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')));
    if ok {
        return Ok(());
    }
    fail(
        path,
        format!("invalid interface name {s:?}: at most 15 letters, digits, '_', '.' or '-'"),
    )
}

/// Where `global()` may appear in a selector field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    /// Not at all (every selector except an EntityRule `namespaceSelector`).
    Forbidden,
    /// Alone (an EntityRule `namespaceSelector`).
    AloneOnly,
}

/// Parses a selector and applies Calico's placement rules for `global()`.
pub(crate) fn check_selector(path: &FieldPath, text: &str, global: Global) -> Result<()> {
    if text.len() > MAX_SELECTOR_LEN {
        return fail(
            path,
            format!("selector longer than {MAX_SELECTOR_LEN} characters"),
        );
    }
    if let Err(e) = Selector::parse(text) {
        return fail(path, format!("invalid selector {text:?}: {e}"));
    }
    if mentions_global(text) {
        match global {
            Global::Forbidden => {
                return fail(
                    path,
                    "global() can only be used in an EntityRule namespaceSelector",
                );
            }
            Global::AloneOnly => {
                let bare: String = text
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '(' && *c != ')')
                    .collect();
                if bare != "global" {
                    return fail(path, "global() cannot be combined with other selectors");
                }
            }
        }
    }
    Ok(())
}

/// Whether `global(` appears as a function call outside string literals.
pub(crate) fn mentions_global(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if c == '"' || c == '\'' {
            quote = Some(c);
        } else if chars[i..].starts_with(&['g', 'l', 'o', 'b', 'a', 'l']) {
            let before_ok =
                i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || "_./-".contains(chars[i - 1]));
            let mut j = i + 6;
            while j < chars.len() && (chars[j] == ' ' || chars[j] == '\t') {
                j += 1;
            }
            if before_ok && chars.get(j) == Some(&'(') {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Go `time.Duration` text (`90s`, `1m30s`, `1.5h`, `300ms`), as Calico's duration fields use.
pub(crate) fn check_duration(path: &FieldPath, text: &str) -> Result<()> {
    let bad = || {
        fail(
            path,
            format!("invalid duration {text:?} (expected e.g. \"90s\", \"1m30s\")"),
        )
    };
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if body == "0" {
        return Ok(());
    }
    if body.is_empty() {
        return bad();
    }
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return bad();
        }
        rest = &rest[number_len..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return bad(),
        }
    }
    Ok(())
}

/// A MAC address in the forms Go's `net.ParseMAC` reads for 48-bit addresses.
pub(crate) fn is_mac(s: &str) -> bool {
    let groups: Vec<&str> = s.split([':', '-']).collect();
    if groups.len() == 6 {
        return groups
            .iter()
            .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let dotted: Vec<&str> = s.split('.').collect();
    dotted.len() == 3
        && dotted
            .iter()
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns_label("web-1"));
        assert!(!is_dns_label("Web"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a."));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("knp.default.allow-dns"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(!is_dns_subdomain(""));
        assert!(!is_dns_subdomain(&"a.".repeat(127)));
    }

    #[test]
    fn label_keys_and_values() {
        assert!(is_qualified_name("app.kubernetes.io/name"));
        assert!(is_qualified_name("Role_1"));
        assert!(!is_qualified_name("a/b/c"));
        assert!(!is_qualified_name("/x"));
        assert!(!is_qualified_name("bad key"));
        assert!(is_label_value(""));
        assert!(is_label_value("v1.2_x"));
        assert!(!is_label_value("-v"));
        assert!(!is_label_value(&"v".repeat(64)));
    }

    #[test]
    fn port_names_follow_kubernetes() {
        assert!(is_port_name("http"));
        assert!(is_port_name("metrics-9090"));
        assert!(!is_port_name("8080"));
        assert!(!is_port_name("a--b"));
        assert!(!is_port_name("-a"));
        assert!(!is_port_name("HTTP"));
        assert!(!is_port_name("a-very-long-port-name"));
    }

    #[test]
    fn global_is_found_outside_quotes_only() {
        assert!(mentions_global("global()"));
        assert!(mentions_global("a == 'x' && global ( )"));
        assert!(!mentions_global("a == 'global()'"));
        assert!(!mentions_global("myglobal == 'x'"));
        assert!(!mentions_global("global == 'x'"));
    }

    #[test]
    fn global_placement() {
        let p = FieldPath::root();
        assert!(check_selector(&p, "global()", Global::AloneOnly).is_ok());
        assert!(check_selector(&p, " global( ) ", Global::AloneOnly).is_ok());
        let err = check_selector(&p, "global() && a == 'b'", Global::AloneOnly).unwrap_err();
        assert!(err.message().contains("cannot be combined"));
        let err = check_selector(&p, "global()", Global::Forbidden).unwrap_err();
        assert!(
            err.message()
                .contains("only be used in an EntityRule namespaceSelector")
        );
        assert!(check_selector(&p, &"a".repeat(1025), Global::Forbidden).is_err());
    }

    #[test]
    fn durations_follow_go() {
        let p = FieldPath::root();
        for ok in ["0", "90s", "1m30s", "1.5h", "300ms", "2h45m"] {
            assert!(check_duration(&p, ok).is_ok(), "{ok}");
        }
        for bad in ["", "90", "s", "1x", "1..5s", "-"] {
            assert!(check_duration(&p, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn macs() {
        assert!(is_mac("ee:ee:ee:ee:ee:ee"));
        assert!(is_mac("00-1A-2b-3c-4d-5e"));
        assert!(is_mac("0000.5e00.5301"));
        assert!(!is_mac("ee:ee:ee:ee:ee"));
        assert!(!is_mac("zz:ee:ee:ee:ee:ee"));
    }
}

//! Property tests: random expressions are rendered as selector text with random spacing, quoting
//! and redundant parentheses, then parsed. The parsed selector must print the canonical text a
//! reference printer derives from the expression, survive a round trip through that text, and
//! evaluate like a naive reference evaluator on random label sets. Arbitrary text must never
//! make the parser panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tortie_selector::{LabelMap, Overlay, Selector};

const KEYS: &[&str] = &[
    "a",
    "b",
    "in",
    "has",
    "k8s.io/app",
    "projectcalico.org/namespace",
];
const VALUES: &[&str] = &["", "x", "xy", "yx", "y", "say \"hi\"", "it's", "a b"];

#[derive(Debug, Clone)]
enum Expr {
    All,
    Global,
    Has(usize),
    Cmp(usize, Cmp, usize),
    In(usize, bool, Vec<usize>),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Ne,
    Contains,
    StartsWith,
    EndsWith,
}

fn leaf() -> impl Strategy<Value = Expr> {
    let key = 0..KEYS.len();
    let value = 0..VALUES.len();
    let cmp = prop_oneof![
        Just(Cmp::Eq),
        Just(Cmp::Ne),
        Just(Cmp::Contains),
        Just(Cmp::StartsWith),
        Just(Cmp::EndsWith),
    ];
    prop_oneof![
        1 => Just(Expr::All),
        1 => Just(Expr::Global),
        3 => key.clone().prop_map(Expr::Has),
        6 => (key.clone(), cmp, value.clone()).prop_map(|(k, c, v)| Expr::Cmp(k, c, v)),
        4 => (key, any::<bool>(), prop::collection::vec(value, 0..4))
            .prop_map(|(k, n, vs)| Expr::In(k, n, vs)),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

fn label_set() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        (0..KEYS.len()).prop_map(|k| KEYS[k].to_string()),
        (0..VALUES.len()).prop_map(|v| VALUES[v].to_string()),
        0..5,
    )
}

/// The obvious evaluator, written from the semantics table rather than shared with the crate.
fn reference_eval(e: &Expr, labels: &BTreeMap<String, String>) -> bool {
    let get = |k: usize| labels.get(KEYS[k]).map(String::as_str);
    match e {
        Expr::All | Expr::Global => true,
        Expr::Has(k) => get(*k).is_some(),
        Expr::Cmp(k, cmp, v) => {
            let v = VALUES[*v];
            match (cmp, get(*k)) {
                (Cmp::Ne, None) => true,
                (_, None) => false,
                (Cmp::Eq, Some(a)) => a == v,
                (Cmp::Ne, Some(a)) => a != v,
                (Cmp::Contains, Some(a)) => a.contains(v),
                (Cmp::StartsWith, Some(a)) => a.starts_with(v),
                (Cmp::EndsWith, Some(a)) => a.ends_with(v),
            }
        }
        Expr::In(k, negated, vs) => match get(*k) {
            None => *negated,
            Some(a) => vs.iter().any(|v| VALUES[*v] == a) != *negated,
        },
        Expr::Not(inner) => !reference_eval(inner, labels),
        Expr::And(es) => es.iter().all(|e| reference_eval(e, labels)),
        Expr::Or(es) => es.iter().any(|e| reference_eval(e, labels)),
    }
}

/// Calico's canonical text, derived directly from the expression.
fn reference_canonical(e: &Expr) -> String {
    fn quote(v: &str) -> String {
        if v.contains('"') {
            format!("'{v}'")
        } else {
            format!("\"{v}\"")
        }
    }
    match e {
        Expr::All => "all()".into(),
        Expr::Global => "global()".into(),
        Expr::Has(k) => format!("has({})", KEYS[*k]),
        Expr::Cmp(k, cmp, v) => {
            let op = match cmp {
                Cmp::Eq => "==",
                Cmp::Ne => "!=",
                Cmp::Contains => "contains",
                Cmp::StartsWith => "starts with",
                Cmp::EndsWith => "ends with",
            };
            format!("{} {op} {}", KEYS[*k], quote(VALUES[*v]))
        }
        Expr::In(k, negated, vs) => {
            let mut values: Vec<&str> = vs.iter().map(|v| VALUES[*v]).collect();
            values.sort_unstable();
            values.dedup();
            let values: Vec<String> = values.into_iter().map(quote).collect();
            let op = if *negated { "not in" } else { "in" };
            format!("{} {op} {{{}}}", KEYS[*k], values.join(", "))
        }
        Expr::Not(inner) => match &**inner {
            Expr::Not(twice) => reference_canonical(twice),
            other => format!("!{}", reference_canonical(other)),
        },
        Expr::And(es) => format!(
            "({})",
            es.iter()
                .map(reference_canonical)
                .collect::<Vec<_>>()
                .join(" && ")
        ),
        Expr::Or(es) => format!(
            "({})",
            es.iter()
                .map(reference_canonical)
                .collect::<Vec<_>>()
                .join(" || ")
        ),
    }
}

/// Renders an expression as selector text, drawing spacing, quote and parenthesis choices from
/// `noise` (reused cyclically).
struct Renderer<'a> {
    noise: &'a [u8],
    at: usize,
}

impl Renderer<'_> {
    fn next(&mut self) -> u8 {
        let n = if self.noise.is_empty() {
            0
        } else {
            self.noise[self.at % self.noise.len()]
        };
        self.at += 1;
        n
    }

    /// Optional whitespace.
    fn ws(&mut self) -> &'static str {
        ["", "", " ", "\t", "  "][usize::from(self.next()) % 5]
    }

    /// Required whitespace.
    fn ws1(&mut self) -> &'static str {
        [" ", "\t", " \t "][usize::from(self.next()) % 3]
    }

    fn quote(&mut self, v: &str) -> String {
        let q = if v.contains('"') {
            '\''
        } else if v.contains('\'') || self.next().is_multiple_of(2) {
            '"'
        } else {
            '\''
        };
        format!("{q}{v}{q}")
    }

    fn render(&mut self, e: &Expr) -> String {
        let text = self.render_bare(e);
        if self.next().is_multiple_of(6) {
            let (a, b) = (self.ws(), self.ws());
            format!("({a}{text}{b})")
        } else {
            text
        }
    }

    fn render_bare(&mut self, e: &Expr) -> String {
        match e {
            Expr::All => format!("all({})", self.ws()),
            Expr::Global => format!("global({})", self.ws()),
            Expr::Has(k) => {
                let (a, b) = (self.ws(), self.ws());
                format!("has({a}{}{b})", KEYS[*k])
            }
            Expr::Cmp(k, cmp, v) => {
                let key = KEYS[*k];
                let value = self.quote(VALUES[*v]);
                let op = match cmp {
                    Cmp::Eq => format!("{}=={}", self.ws(), self.ws()),
                    Cmp::Ne => format!("{}!={}", self.ws(), self.ws()),
                    Cmp::Contains => format!("{}contains{}", self.ws1(), self.ws()),
                    Cmp::StartsWith => {
                        let between = if self.next().is_multiple_of(3) {
                            ""
                        } else {
                            self.ws1()
                        };
                        format!("{}starts{between}with{}", self.ws1(), self.ws())
                    }
                    Cmp::EndsWith => {
                        let between = if self.next().is_multiple_of(3) {
                            ""
                        } else {
                            self.ws1()
                        };
                        format!("{}ends{between}with{}", self.ws1(), self.ws())
                    }
                };
                format!("{key}{op}{value}")
            }
            Expr::In(k, negated, vs) => {
                let op = if *negated {
                    let between = if self.next().is_multiple_of(3) {
                        ""
                    } else {
                        self.ws1()
                    };
                    format!("not{between}in")
                } else {
                    "in".to_string()
                };
                let mut body = String::new();
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        body.push_str(self.ws());
                        body.push(',');
                    }
                    body.push_str(self.ws());
                    let quoted = self.quote(VALUES[*v]);
                    body.push_str(&quoted);
                }
                if !vs.is_empty() && self.next().is_multiple_of(4) {
                    body.push(',');
                }
                let (a, b, c) = (self.ws1(), self.ws(), self.ws());
                format!("{}{a}{op}{b}{{{body}{c}}}", KEYS[*k])
            }
            Expr::Not(inner) => {
                let operand = match &**inner {
                    Expr::And(_) | Expr::Or(_) => {
                        let text = self.render_bare(inner);
                        format!("({text})")
                    }
                    _ => self.render(inner),
                };
                format!("!{}{operand}", self.ws())
            }
            Expr::And(es) => {
                let parts: Vec<String> = es
                    .iter()
                    .map(|e| match e {
                        Expr::And(_) | Expr::Or(_) => format!("({})", self.render_bare(e)),
                        _ => self.render(e),
                    })
                    .collect();
                self.join(parts, "&&")
            }
            Expr::Or(es) => {
                let parts: Vec<String> = es
                    .iter()
                    .map(|e| match e {
                        Expr::Or(_) => format!("({})", self.render_bare(e)),
                        _ => self.render(e),
                    })
                    .collect();
                self.join(parts, "||")
            }
        }
    }

    fn join(&mut self, parts: Vec<String>, op: &str) -> String {
        let mut out = String::new();
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                out.push_str(self.ws());
                out.push_str(op);
                out.push_str(self.ws());
            }
            out.push_str(&part);
        }
        out
    }
}

fn render(e: &Expr, noise: &[u8]) -> String {
    let mut renderer = Renderer { noise, at: 0 };
    let body = renderer.render(e);
    let (a, b) = (renderer.ws(), renderer.ws());
    format!("{a}{body}{b}")
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn parses_to_the_reference_canonical_form(
        e in expr(),
        noise in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let text = render(&e, &noise);
        let parsed = Selector::parse(&text)
            .map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
        prop_assert_eq!(parsed.canonical(), reference_canonical(&e), "text {:?}", text);
    }

    #[test]
    fn round_trips_through_display(
        e in expr(),
        noise in prop::collection::vec(any::<u8>(), 1..64),
        label_sets in prop::collection::vec(label_set(), 1..6),
    ) {
        let text = render(&e, &noise);
        let parsed = Selector::parse(&text)
            .map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
        let printed = parsed.to_string();
        let again = Selector::parse(&printed)
            .map_err(|err| TestCaseError::fail(format!("{printed:?}: {err}")))?;
        prop_assert_eq!(&again, &parsed);
        prop_assert_eq!(again.to_string(), printed);
        prop_assert_eq!(again.unique_id(), parsed.unique_id());
        for labels in &label_sets {
            prop_assert_eq!(again.matches(labels), parsed.matches(labels));
        }
    }

    #[test]
    fn evaluates_like_the_reference(
        e in expr(),
        noise in prop::collection::vec(any::<u8>(), 1..64),
        label_sets in prop::collection::vec(label_set(), 1..8),
    ) {
        let text = render(&e, &noise);
        let parsed = Selector::parse(&text)
            .map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
        for labels in &label_sets {
            let expected = reference_eval(&e, labels);
            prop_assert_eq!(parsed.matches(labels), expected, "{:?} on {:?}", text, labels);
            let map: LabelMap = labels.iter().collect();
            prop_assert_eq!(parsed.matches_with(&map), expected);
            // Splitting the labels into own and inherited layers changes nothing.
            let (own, inherited): (BTreeMap<&str, &str>, BTreeMap<&str, &str>) = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .partition(|(k, _)| k.len() % 2 == 0);
            let layered = Overlay { own: &own, inherited: &inherited };
            prop_assert_eq!(parsed.matches_with(&layered), expected);
        }
    }

    #[test]
    fn restrictions_are_necessary_conditions(
        e in expr(),
        label_sets in prop::collection::vec(label_set(), 1..8),
    ) {
        let parsed = Selector::parse(&reference_canonical(&e)).expect("canonical parses");
        let restrictions = parsed.label_restrictions();
        for labels in &label_sets {
            if parsed.matches(labels) {
                for (name, r) in &restrictions {
                    prop_assert!(
                        r.allows(labels.get(*name).map(String::as_str)),
                        "{} matches {:?} but restriction {:?} on {} rejects it",
                        parsed, labels, r, name
                    );
                }
            }
        }
    }

    #[test]
    fn never_panics_on_arbitrary_text(text in ".{0,80}") {
        check_error(&text);
    }

    #[test]
    fn never_panics_on_selector_like_text(
        text in "[a-c ()!&|='\"{},\t\n.:/-]{0,40}|(has|all|global|in|not|contains|starts|ends|with|[ !()&|'\"{},a]){0,24}",
    ) {
        check_error(&text);
    }
}

/// Either parses, or fails with a column inside the input (or just past its end).
fn check_error(text: &str) {
    match Selector::parse(text) {
        Ok(selector) => {
            let again = Selector::parse(&selector.to_string()).expect("canonical text parses");
            assert_eq!(again, selector);
        }
        Err(e) => {
            assert!(
                e.column >= 1 && e.column <= text.chars().count() + 1,
                "{text:?}: {e}"
            );
            assert!(!e.message.is_empty());
        }
    }
}

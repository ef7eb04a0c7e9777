//! Unit tests of the public selector API: precedence, quoting, whitespace, canonical form,
//! unique IDs, error columns, label restrictions and term listing.

use std::collections::{BTreeMap, HashMap};

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn canon(s: &str) -> String {
    sel(s).to_string()
}

fn err(s: &str) -> ParseError {
    match Selector::parse(s) {
        Ok(parsed) => panic!("{s:?} should not parse, got {parsed}"),
        Err(e) => e,
    }
}

#[test]
fn and_binds_tighter_than_or() {
    assert_eq!(
        canon("a == '1' || b == '2' && c == '3'"),
        r#"(a == "1" || (b == "2" && c == "3"))"#
    );
    assert_eq!(
        canon("a == '1' && b == '2' || c == '3'"),
        r#"((a == "1" && b == "2") || c == "3")"#
    );
    let s = sel("a == '1' || b == '2' && c == '3'");
    assert!(s.matches(&labels(&[("a", "1")])));
    assert!(!s.matches(&labels(&[("b", "2")])));
    assert!(s.matches(&labels(&[("b", "2"), ("c", "3")])));
}

#[test]
fn not_applies_to_one_operation() {
    assert_eq!(canon("!a == 'x' && b == 'y'"), r#"(!a == "x" && b == "y")"#);
    assert_eq!(canon("!a in {'x'}"), r#"!a in {"x"}"#);
    let s = sel("!a == 'x' && b == 'y'");
    assert!(s.matches(&labels(&[("b", "y")])));
    assert!(!s.matches(&labels(&[("a", "x"), ("b", "y")])));
    assert!(!s.matches(&labels(&[])));
}

#[test]
fn not_runs_fold() {
    assert_eq!(canon("!!has(a)"), "has(a)");
    assert_eq!(canon("!!!has(a)"), "!has(a)");
    assert_eq!(canon("!! ! has(a)"), "!has(a)");
    assert_eq!(canon("! !!has(a)"), "!has(a)");
    assert_eq!(canon("!(!(has(a)))"), "has(a)");
    assert_eq!(canon("!(has(a) && has(b))"), "!(has(a) && has(b))");
}

#[test]
fn chains_are_left_to_right_groups_and_parens_nest() {
    assert_eq!(
        canon("has(a) && has(b) && has(c)"),
        "(has(a) && has(b) && has(c))"
    );
    assert_eq!(
        canon("(has(a) && has(b)) && has(c)"),
        "((has(a) && has(b)) && has(c))"
    );
    assert_eq!(canon("((has(a)))"), "has(a)");
}

#[test]
fn canonicalisation_matches_calico() {
    // Pairs from libcalico-go's parser canonicalisation table.
    for (input, expected) in [
        ("", "all()"),
        (" all() ", "all()"),
        (" (all() )", "all()"),
        ("! (has( b)||! has(a ))", "!(has(b) || !has(a))"),
        (r#"! (a == "b"&&! c != "d")"#, r#"!(a == "b" && !c != "d")"#),
        (r#"a == "'""#, r#"a == "'""#),
        (r#"a == '"'"#, r#"a == '"'"#),
        (r#"a contains '"'"#, r#"a contains '"'"#),
        (r#"a contains "'""#, r#"a contains "'""#),
        (r#"a startswith '"'"#, r#"a starts with '"'"#),
        (r#"a endswith "'""#, r#"a ends with "'""#),
        (r#"a!='"'"#, r#"a != '"'"#),
        (r#"a in {"d"}"#, r#"a in {"d"}"#),
        (r#"a in {"d", "a", "b"}"#, r#"a in {"a", "b", "d"}"#),
        (
            r#"a in {"z", "z", "x", "y", "x", "a"}"#,
            r#"a in {"a", "x", "y", "z"}"#,
        ),
        ("a notin {'b'}", r#"a not in {"b"}"#),
        ("a in {}", "a in {}"),
        ("a in {'x',}", r#"a in {"x"}"#),
        ("global( )", "global()"),
        (
            "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
            r#"!(!((k == "v" && has(t)) || all()) && a in {"b", "c"})"#,
        ),
    ] {
        let parsed = sel(input);
        assert_eq!(parsed.canonical(), expected, "canonical of {input:?}");
        let again = sel(expected);
        assert_eq!(again.canonical(), expected, "round trip of {expected:?}");
        assert_eq!(again.unique_id(), parsed.unique_id());
    }
}

#[test]
fn unique_ids_match_calico() {
    for (input, uid) in [
        ("", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"),
        (" (all() )", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"),
        (
            "! (has( b)||! has(a ))",
            "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q",
        ),
        (
            r#"! (a == "b"&&! c != "d")"#,
            "s:lh3haoY1ikTRkd4UZu0nWSaIBknYLPJLX16d-w",
        ),
    ] {
        assert_eq!(sel(input).unique_id(), uid, "{input:?}");
    }
    assert_ne!(sel("has(a)").unique_id(), sel("has(b)").unique_id());
}

#[test]
fn equality_is_canonical() {
    assert_eq!(sel("a in {'y','x'}"), sel("a   in{\"x\",'y','x'}"));
    assert_ne!(sel("has(a)"), sel("!has(a)"));
    let mut set = std::collections::HashSet::new();
    set.insert(sel("(a == 'b')"));
    assert!(set.contains(&sel("a==\"b\"")));
}

#[test]
fn whitespace_is_space_and_tab_only() {
    assert_eq!(canon("\tapp\t==\t'web'\t"), r#"app == "web""#);
    assert_eq!(canon("  \t "), "all()");
    assert_eq!(canon("a   starts \t with 'x'"), r#"a starts with "x""#);
    let e = err("a == 'x'\n&& has(b)");
    assert_eq!(e.column, 9);
    assert!(e.message.contains("newline"), "{e}");
    assert_eq!(err("\n").column, 1);
}

#[test]
fn quoting_has_no_escapes() {
    let s = sel(r#"msg == 'say "hi"'"#);
    assert!(s.matches(&labels(&[("msg", "say \"hi\"")])));
    assert_eq!(s.canonical(), r#"msg == 'say "hi"'"#);
    let backslash = sel(r#"p == 'a\b'"#);
    assert!(backslash.matches(&labels(&[("p", "a\\b")])));
    // The string ends at the next matching quote: `"a\"` then a stray `b"`.
    let e = err(r#"app == "a\"b""#);
    assert_eq!(e.column, 12);
    let quotes = sel(r#"q in {"'", '"'}"#);
    assert!(quotes.matches(&labels(&[("q", "'")])));
    assert!(quotes.matches(&labels(&[("q", "\"")])));
    assert_eq!(quotes.canonical(), r#"q in {'"', "'"}"#);
    let unicode = sel("v == 'héllo wörld'");
    assert!(unicode.matches(&labels(&[("v", "héllo wörld")])));
}

#[test]
fn keyword_like_label_names() {
    for (input, key) in [
        ("has == 'x'", "has"),
        ("in in {'a'}", "in"),
        ("contains contains 'y'", "contains"),
        ("not not in {'a'}", "not"),
        ("all == 'x'", "all"),
        ("global != 'x'", "global"),
        ("endswith ends with 'value'", "endswith"),
        ("starts starts with 's'", "starts"),
    ] {
        let s = sel(input);
        assert_eq!(s.label_keys().len(), 1, "{input:?}");
        assert_eq!(s.label_keys()[0].as_str(), key, "{input:?}");
    }
}

#[test]
fn label_names_with_prefixes() {
    let s = sel("projectcalico.org/namespace == 'kube-system' && k8s.io/x-y_z.w == '1'");
    assert_eq!(
        s.label_keys()
            .iter()
            .map(LabelKey::as_str)
            .collect::<Vec<_>>(),
        ["k8s.io/x-y_z.w", "projectcalico.org/namespace"]
    );
    assert!(s.matches(&labels(&[
        ("projectcalico.org/namespace", "kube-system"),
        ("k8s.io/x-y_z.w", "1")
    ])));
    let long = "a".repeat(MAX_LABEL_LEN);
    assert!(Selector::parse(&format!("has({long})")).is_ok());
    let e = err(&format!("has({long}b)"));
    assert_eq!(e.column, 5 + MAX_LABEL_LEN);
    assert!(e.message.contains("longer than 512"), "{e}");
}

#[test]
fn error_columns_and_messages() {
    for (input, column, needle) in [
        ("app", 4, "expected an operator"),
        (
            "app == web",
            8,
            "expected a quoted string after `==`, found `web`",
        ),
        ("'web' == app", 1, "found a string literal"),
        ("app = 'web'", 5, "equality is `==`"),
        ("app === 'web'", 7, "expected a quoted string"),
        ("app == 'web", 8, "unterminated string literal"),
        ("app == 'web' &", 14, "single `&`"),
        ("app == 'web' | has(x)", 14, "single `|`"),
        ("app == 'web' &&", 16, "found end of selector"),
        (
            "app == 'web' tier == 'fe'",
            14,
            "expected `&&`, `||` or end",
        ),
        (")", 1, "expected a label"),
        ("(app == 'web'", 14, "to close the `(` at column 1"),
        ("has(a b)", 7, "expected `)` to close `has(`"),
        ("has()", 5, "expected a label name inside `has(`"),
        ("all(", 5, "expected `)` to close `all(`"),
        ("global(x)", 8, "expected `)` to close `global(`"),
        ("env in {'a' 'b'}", 13, "expected `,` or `}`"),
        ("env in {'a', ||", 14, "expected a quoted string or `}`"),
        ("env in {,}", 9, "expected a quoted string or `}`"),
        ("env in 'a'", 8, "expected a set"),
        (
            "env ends withs 'x'",
            10,
            "expected `with` after `ends`, found `withs`",
        ),
        (
            "env startswithout 'x'",
            11,
            "expected `with` after `starts`, found `without`",
        ),
        ("env ends 'x'", 10, "expected `with` after `ends`"),
        ("env not 'x'", 9, "expected `in` after `not`"),
        ("env inside {'x'}", 5, "found `inside`"),
        ("a:b == 'x'", 2, "found `:`"),
        ("a == 'x' && %", 13, "found `%`"),
        ("!", 2, "found end of selector"),
        ("!= 'x'", 1, "found `!=`"),
        ("()", 2, "expected a label"),
        ("a and b", 3, "found `and`"),
        ("é == 'x'", 1, "found `é`"),
        ("x == 'é' && ?", 13, "found `?`"),
    ] {
        let e = err(input);
        assert_eq!(e.column, column, "column for {input:?}: {e}");
        assert!(e.message.contains(needle), "message for {input:?}: {e}");
        assert!(e.to_string().starts_with(&format!("column {column}: ")));
    }
}

#[test]
fn nesting_is_bounded() {
    let ok = format!(
        "{}has(a){}",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    assert_eq!(canon(&ok), "has(a)");
    let deep = format!(
        "{}has(a){}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    let e = err(&deep);
    assert_eq!(e.column, MAX_NESTING + 1);
    let many_nots = format!("{}has(a)", "!".repeat(10_001));
    assert_eq!(canon(&many_nots), "!has(a)");
}

#[test]
fn absent_label_semantics() {
    let empty = labels(&[]);
    for (s, expected) in [
        ("a == ''", false),
        ("a != 'x'", true),
        ("a in {'x'}", false),
        ("a not in {'x'}", true),
        ("a in {}", false),
        ("a not in {}", true),
        ("a contains ''", false),
        ("a starts with ''", false),
        ("a ends with ''", false),
        ("has(a)", false),
        ("!has(a)", true),
        ("all()", true),
        ("!all()", false),
        ("global()", true),
    ] {
        assert_eq!(sel(s).matches(&empty), expected, "{s:?}");
    }
}

#[test]
fn label_lookups_of_every_kind_agree() {
    let s = sel("app == 'web' && tier in {'a','b'} && has(env) && !has(pcns.quarantine)");
    let btree = labels(&[("app", "web"), ("tier", "b"), ("env", "prod")]);
    let hash: HashMap<&str, &str> = [("app", "web"), ("tier", "b"), ("env", "prod")]
        .into_iter()
        .collect();
    let map: LabelMap = btree.iter().collect();
    assert!(s.matches(&btree));
    assert!(s.matches_with(&hash));
    assert!(s.matches_with(&map));
    let own: LabelMap = [("app", "web")].into_iter().collect();
    let inherited: LabelMap = [("tier", "a"), ("env", "x"), ("app", "db")]
        .into_iter()
        .collect();
    assert!(s.matches_with(&Overlay {
        own: &own,
        inherited: &inherited
    }));
    let quarantined: LabelMap = [("pcns.quarantine", "yes")].into_iter().collect();
    let layered = Overlay {
        own: &map,
        inherited: &quarantined,
    };
    assert!(!s.matches_with(&layered));
}

#[test]
fn is_all_and_global() {
    assert!(sel("").is_all());
    assert!(sel(" all( ) ").is_all());
    assert!(sel("((all()))").is_all());
    assert!(!sel("!all()").is_all());
    assert!(!sel("has(a)").is_all());
    assert!(Selector::all().is_all());
    assert!(Selector::default().is_all());
    assert!(sel("global()").uses_global());
    assert!(sel("has(a) || !global()").uses_global());
    assert!(!sel("all()").uses_global());
}

#[test]
fn referenced_labels_list_every_term() {
    let s = sel("a == '1' && !(b in {'y','x'} || has(c)) && d not in {} && e starts with 'p'");
    let terms: Vec<LabelTerm<'_>> = s.referenced_labels().collect();
    let summary: Vec<(&str, bool)> = terms.iter().map(|t| (t.key.as_str(), t.negated)).collect();
    assert_eq!(
        summary,
        [
            ("a", false),
            ("b", true),
            ("c", true),
            ("d", false),
            ("e", false)
        ]
    );
    assert_eq!(
        terms[0].test,
        LabelTest::Value {
            op: ValueOp::Eq,
            value: "1"
        }
    );
    let LabelTest::Set { negated, values } = terms[1].test else {
        panic!("not a set: {:?}", terms[1]);
    };
    assert!(!negated);
    assert_eq!(values.iter().map(|v| &**v).collect::<Vec<_>>(), ["x", "y"]);
    assert_eq!(terms[2].test, LabelTest::Has);
    assert_eq!(
        s.label_keys()
            .iter()
            .map(LabelKey::as_str)
            .collect::<Vec<_>>(),
        ["a", "b", "c", "d", "e"]
    );
}

#[test]
fn restrictions_follow_calico() {
    let r = sel("a == 'x' && b in {'p','q'} && has(c) && !has(d) && e != 'z'");
    let r = r.label_restrictions();
    assert_eq!(r.len(), 4);
    assert_eq!(r["a"].must_have_one_of, Some(vec!["x"]));
    assert!(r["a"].must_be_present);
    assert_eq!(r["b"].must_have_one_of, Some(vec!["p", "q"]));
    assert!(r["c"].must_be_present && r["c"].must_have_one_of.is_none());
    assert!(r["d"].must_be_absent && !r["d"].must_be_present);
    assert!(!r.contains_key("e"));

    let conflicting = sel("a == 'x' && a == 'y'");
    let conflicting = conflicting.label_restrictions();
    assert_eq!(conflicting["a"].must_have_one_of, Some(vec![]));
    assert!(conflicting["a"].is_unsatisfiable());

    let union = sel("a == 'x' || a in {'y', 'z'}");
    let union = union.label_restrictions();
    assert_eq!(union["a"].must_have_one_of, Some(vec!["x", "y", "z"]));

    let loose = sel("a == 'x' || has(a)");
    let loose = loose.label_restrictions();
    assert!(loose["a"].must_be_present && loose["a"].must_have_one_of.is_none());

    let gone = sel("a == 'x' || b == 'y'");
    assert!(gone.label_restrictions().is_empty());
    assert!(sel("!(a == 'x')").label_restrictions().is_empty());
    assert!(sel("all()").label_restrictions().is_empty());
    assert!(sel("a not in {'x'}").label_restrictions().is_empty());

    let in_set = sel("a in {'x','y'}");
    let restriction = &in_set.label_restrictions()["a"];
    assert!(restriction.allows(Some("x")));
    assert!(!restriction.allows(Some("z")));
    assert!(!restriction.allows(None));
}

#[test]
fn prefix_and_combination() {
    let s = sel("k == 'v' && has(t) || !x in {'a'}");
    assert_eq!(
        s.with_prefix("pcns.").canonical(),
        r#"((pcns.k == "v" && has(pcns.t)) || !pcns.x in {"a"})"#
    );
    let ns = sel("team == 'blue'");
    let combined = ns.and(&s);
    assert_eq!(
        combined,
        sel(&format!("({}) && ({})", ns.canonical(), s.canonical()))
    );
    assert!(combined.matches(&labels(&[("team", "blue"), ("k", "v"), ("t", "")])));
    assert!(!combined.matches(&labels(&[("k", "v"), ("t", "")])));
}

#[test]
fn from_str_and_debug() {
    let s: Selector = "has(a)".parse().expect("parses");
    assert_eq!(format!("{s:?}"), r#"Selector("has(a)")"#);
    let e = "has(".parse::<Selector>().expect_err("does not parse");
    assert_eq!(e.column, 5);
}

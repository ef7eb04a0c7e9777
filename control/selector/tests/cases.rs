//! Runs every case of the shared selector test set (`tests/data/selector-cases.json`): each
//! selector either fails to parse or gives the expected answer for its labels, whichever label
//! lookup is used, and again after a round trip through its canonical text.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;
use tortie_selector::{LabelMap, Selector};

fn load_cases() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/selector-cases.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let parsed: Value = serde_json::from_str(&text).expect("selector-cases.json is JSON");
    parsed.as_array().expect("a JSON array of cases").clone()
}

#[test]
fn every_shared_case_behaves_as_recorded() {
    let cases = load_cases();
    assert_eq!(cases.len(), 81, "cases loaded");
    let mut parse_errors = 0;
    let mut evaluations = 0;
    for (i, case) in cases.iter().enumerate() {
        let source = case["selector"].as_str().expect("selector is a string");
        let context = format!("case {i} {source:?} ({})", case["note"]);
        if case["parse_error"].as_bool() == Some(true) {
            let err = Selector::parse(source).expect_err(&context);
            assert!(
                err.column >= 1 && err.column <= source.chars().count() + 1,
                "{context}: column {} outside the input",
                err.column
            );
            assert!(!err.message.is_empty(), "{context}");
            parse_errors += 1;
            continue;
        }
        let selector = Selector::parse(source).unwrap_or_else(|e| panic!("{context}: {e}"));
        let expected = case["matches"].as_bool().expect("matches is a bool");
        let labels: BTreeMap<String, String> = case["labels"]
            .as_object()
            .expect("labels is an object")
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().expect("label values are strings").to_string(),
                )
            })
            .collect();
        let hash: HashMap<&str, &str> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let map: LabelMap = labels.iter().collect();
        assert_eq!(selector.matches(&labels), expected, "{context}");
        assert_eq!(
            selector.matches_with(&hash),
            expected,
            "{context} (HashMap)"
        );
        assert_eq!(
            selector.matches_with(&map),
            expected,
            "{context} (LabelMap)"
        );

        let canonical = selector.to_string();
        let again = Selector::parse(&canonical)
            .unwrap_or_else(|e| panic!("{context}: canonical {canonical:?}: {e}"));
        assert_eq!(again, selector, "{context}: round trip");
        assert_eq!(
            again.to_string(),
            canonical,
            "{context}: canonical is stable"
        );
        assert_eq!(again.unique_id(), selector.unique_id(), "{context}");
        assert_eq!(
            again.matches(&labels),
            expected,
            "{context}: after round trip"
        );
        evaluations += 1;
    }
    assert_eq!(parse_errors, 25, "parse-error cases run");
    assert_eq!(evaluations, 56, "evaluation cases run");
}

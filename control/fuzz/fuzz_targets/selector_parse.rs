//! Fuzzes the selector parser: any input either parses or fails with a column inside the input;
//! a parsed selector's canonical text parses back to an equal selector that evaluates the same.
//!
//! Run from the repository root: `cargo +nightly fuzz run --fuzz-dir control/fuzz selector_parse`.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tortie_selector::{LabelMap, Selector};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Selector::parse(text) {
        Ok(selector) => {
            let canonical = selector.to_string();
            let again = Selector::parse(&canonical).expect("canonical text parses");
            assert_eq!(again, selector, "round trip of {text:?}");
            assert_eq!(again.unique_id(), selector.unique_id());
            // Evaluate against labels built from the keys the selector itself reads, so the
            // interesting branches run, and against an empty set.
            let mut labels = BTreeMap::new();
            for (i, key) in selector.label_keys().iter().enumerate() {
                if i % 3 != 2 {
                    labels.insert(key.as_str().to_string(), text.chars().take(i).collect());
                }
            }
            let map: LabelMap = labels.iter().collect();
            assert_eq!(selector.matches(&labels), again.matches(&labels));
            assert_eq!(selector.matches(&labels), selector.matches_with(&map));
            let empty = BTreeMap::new();
            assert_eq!(selector.matches(&empty), again.matches(&empty));
            let _ = selector.label_restrictions();
            let _ = selector.referenced_labels().count();
        }
        Err(e) => {
            assert!(
                e.column >= 1 && e.column <= text.chars().count() + 1,
                "{text:?}: {e}"
            );
            assert!(!e.message.is_empty());
        }
    }
});

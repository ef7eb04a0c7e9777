//! ClassBench samples (the first 400 rules of the acl1 and fw1 1K sets, 800 trace headers
//! each): the classifier must agree with a linear scan on every header, single and batched.

use std::path::{Path, PathBuf};

use tortie_classifier::classbench::{self, ClassBenchRule};
use tortie_classifier::{ClassBenchError, Classifier, IpSetTable, Key4};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn check_set(name: &str) {
    let cb: Vec<ClassBenchRule> = classbench::read_rules(&data(&format!("{name}.rules"))).unwrap();
    let trace: Vec<Key4> = classbench::read_trace(&data(&format!("{name}.trace"))).unwrap();
    assert_eq!(cb.len(), 400);
    assert_eq!(trace.len(), 800);
    let rules = classbench::to_rules(&cb);
    let classifier = Classifier::build(&rules).unwrap();
    let sets = IpSetTable::new();
    let mut batch = vec![None; trace.len()];
    classifier.classify4_batch(&trace, &sets, 0, &mut batch);
    let mut matched = 0;
    for (k, b) in trace.iter().zip(&batch) {
        let want = classbench::linear_first(&cb, k);
        let got = classifier.classify4(k, &sets).map(|m| m.priority as usize);
        assert_eq!(got, want, "{name}: header {k:?}");
        assert_eq!(
            b.map(|m| m.priority as usize),
            want,
            "{name}: batched header {k:?}"
        );
        matched += usize::from(want.is_some());
    }
    // The trace was generated from these rules: most headers must hit one.
    assert!(
        matched > trace.len() / 4,
        "{name}: only {matched} headers matched"
    );

    // Delete every other rule, then put them back: answers follow the linear scan throughout.
    let mut c = classifier.clone();
    for r in rules.iter().step_by(2) {
        c.remove(r).unwrap();
    }
    let odd: Vec<(usize, ClassBenchRule)> = cb
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .collect();
    for k in &trace {
        let want = odd.iter().find(|(_, r)| r.matches(k)).map(|(i, _)| *i);
        assert_eq!(
            c.classify4(k, &sets).map(|m| m.priority as usize),
            want,
            "{name}: after removals {k:?}"
        );
    }
    for r in rules.iter().step_by(2) {
        c.insert(r).unwrap();
    }
    for k in &trace {
        assert_eq!(
            c.classify4(k, &sets).map(|m| m.priority as usize),
            classbench::linear_first(&cb, k)
        );
    }
}

#[test]
fn acl1_sample_matches_linear_scan() {
    check_set("acl1_sample");
}

#[test]
fn fw1_sample_matches_linear_scan() {
    check_set("fw1_sample");
}

#[test]
fn missing_file_names_the_path() {
    let err = classbench::read_rules(Path::new("/nonexistent/x.rules")).unwrap_err();
    assert!(matches!(err, ClassBenchError::Io { .. }));
    assert!(
        err.to_string().starts_with("/nonexistent/x.rules: "),
        "{err}"
    );
}

#[test]
fn malformed_rule_names_file_and_line() {
    let text = "@1.2.3.4/32\t0.0.0.0/0\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000\n@1.2.3.4/32\t0.0.0.0/0\t0 : 65535\t80 : 80\n";
    let err = classbench::parse_rules(Path::new("set.rules"), text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "set.rules:2: expected at least 5 tab-separated fields, found 4"
    );
}

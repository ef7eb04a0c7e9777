//! `tortie-perf classify` end to end on the classifier crate's ClassBench sample.

use std::path::PathBuf;
use std::process::Command;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fastpath/classifier/tests/data")
        .join(name)
}

fn classify(rules: &PathBuf, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tortie-perf"))
        .arg("classify")
        .arg("--rules")
        .arg(rules)
        .arg("--trace")
        .arg(sample("fw1_sample.trace"))
        .args(["--round-ms", "1", "--updates", "10"])
        .args(extra)
        .output()
        .expect("run tortie-perf")
}

#[test]
fn json_report_has_exactly_the_documented_keys() {
    let out = classify(&sample("fw1_sample.rules"), &["-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let obj = v.as_object().expect("an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "build_ms",
            "memory_bytes",
            "mismatches",
            "mpps",
            "packets",
            "rules"
        ]
    );
    assert_eq!(obj["rules"], 400);
    assert_eq!(obj["packets"], 800);
    assert_eq!(obj["mismatches"], 0);
    assert!(obj["mpps"].as_f64().is_some_and(|m| m > 0.0));
    assert!(obj["memory_bytes"].as_u64().is_some_and(|m| m > 400 * 32));
}

#[test]
fn table_report_is_the_default() {
    let out = classify(&sample("fw1_sample.rules"), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mismatches    0"), "{text}");
    assert!(text.contains("insert_us"), "{text}");
}

#[test]
fn malformed_rule_file_fails_naming_file_and_line() {
    let dir = std::env::temp_dir().join(format!("tortie-perf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.rules");
    std::fs::write(&bad, "@1.2.3.4/32\t0.0.0.0/0\t0 : 65535\t80 : 80\t0x06/0xFF\n@1.2.3.4/40\t0.0.0.0/0\t0 : 1\t0 : 1\t0x06/0xFF\n").unwrap();
    let out = classify(&bad, &[]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.rules:2: source: prefix length 40 exceeds 32"),
        "{err}"
    );
}

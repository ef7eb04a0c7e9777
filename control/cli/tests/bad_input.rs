//! Every bad-input case: one clear line naming file, document, line and field path, exit
//! status 1, and nothing written.

mod common;

use common::{Session, policy, pool};

/// Applies `bad` on top of a store holding one policy and one pool, and checks the failure.
fn rejected(bad: &str, must_contain: &[&str]) -> String {
    let session = Session::new();
    let good = session.file(
        "good.yaml",
        &format!(
            "{}---\n{}",
            policy("prod", "keep"),
            pool("keep", "10.0.0.0/16")
        ),
    );
    session.run(&["apply", "-f", &good]).ok();
    let before = session.snapshot();
    assert_eq!(before.len(), 2);
    let path = session.file("bad.yaml", bad);
    let stderr = session.run(&["apply", "-f", &path]).fails();
    assert!(stderr.contains(&path), "names the file: {stderr}");
    for needle in must_contain {
        assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    }
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert_eq!(session.snapshot(), before, "nothing written");
    stderr
}

#[test]
fn unknown_api_version() {
    let bad = format!(
        "{}---\napiVersion: projectcalico.org/v2\nkind: NetworkPolicy\nmetadata:\n  name: x\n",
        policy("prod", "ok")
    );
    rejected(
        &bad,
        &[
            "document 2",
            "line 11",
            "apiVersion",
            "projectcalico.org/v2",
        ],
    );
}

#[test]
fn unknown_kind() {
    let bad = "apiVersion: projectcalico.org/v3\nkind: NetworkPolice\nmetadata:\n  name: x\n";
    rejected(bad, &["document 1", "line 2", "kind", "NetworkPolice"]);
}

#[test]
fn mistyped_field() {
    let bad = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: x\nspec:\n  selectr: all()\n";
    rejected(bad, &["document 1", "line 6", "spec.selectr"]);
}

#[test]
fn wrongly_typed_field() {
    let bad = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: x\nspec:\n  order: first\n";
    rejected(bad, &["document 1", "line 6", "spec.order"]);
}

#[test]
fn bad_selector() {
    let bad = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: x\nspec:\n  selector: app == \n";
    rejected(bad, &["document 1", "line 6", "spec.selector"]);
}

#[test]
fn bad_cidr() {
    let bad = format!(
        "{}---\n{}",
        pool("ok", "10.1.0.0/16"),
        pool("bad", "10.2.0.0/33")
    );
    rejected(&bad, &["document 2", "line 13", "10.2.0.0/33"]);
    let unmasked = format!(
        "{}---\n{}",
        pool("ok", "10.1.0.0/16"),
        pool("bad", "10.2.0.1/16")
    );
    rejected(
        &unmasked,
        &["document 2", "line 13", "spec.cidr", "strictly masked"],
    );
}

#[test]
fn duplicate_in_one_file() {
    let bad = format!(
        "{}---\n{}",
        policy("prod", "twice"),
        policy("prod", "twice")
    );
    rejected(
        &bad,
        &["document 2", "line 14", "metadata.name", "duplicate"],
    );
}

#[test]
fn change_to_immutable_field() {
    // The stored pool "keep" is 10.0.0.0/16; the CIDR of a pool cannot change.
    let bad = format!(
        "{}---\n{}",
        policy("prod", "new"),
        pool("keep", "10.5.0.0/16")
    );
    rejected(
        &bad,
        &[
            "document 2",
            "line 11",
            "spec.cidr",
            "IPPool(keep)",
            "immutable",
        ],
    );
}

#[test]
fn overlapping_pool_against_the_store() {
    let bad = pool("other", "10.0.128.0/17");
    rejected(
        &bad,
        &["document 1", "line 1", "IPPool(other)", "spec.cidr"],
    );
}

#[test]
fn namespace_mismatch_with_flag() {
    let session = Session::new();
    let path = session.file("p.yaml", &policy("prod", "p"));
    let stderr = session.run(&["apply", "-n", "dev", "-f", &path]).fails();
    assert!(
        stderr.contains("document 1") && stderr.contains("metadata.namespace"),
        "{stderr}"
    );
    assert!(session.snapshot().is_empty());
}

#[test]
fn create_of_existing_resource() {
    let session = Session::new();
    let path = session.file(
        "p.yaml",
        &format!("{}---\n{}", policy("prod", "a"), policy("prod", "b")),
    );
    session
        .run(&[
            "create",
            "-f",
            &session.file("a.yaml", &policy("prod", "b")),
        ])
        .ok();
    let before = session.snapshot();
    let stderr = session.run(&["create", "-f", &path]).fails();
    assert!(
        stderr.contains("document 2") && stderr.contains("already exists"),
        "{stderr}"
    );
    assert_eq!(session.snapshot(), before);
    let out = session.run(&["create", "--skip-exists", "-f", &path]).ok();
    assert!(out.contains("skipped 1"), "{out}");
}

#[test]
fn replace_of_missing_resource() {
    let session = Session::new();
    let path = session.file("p.yaml", &policy("prod", "a"));
    let stderr = session.run(&["replace", "-f", &path]).fails();
    assert!(
        stderr.contains("document 1") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(session.snapshot().is_empty());
}

#[test]
fn delete_of_absent_resource() {
    let session = Session::new();
    let path = session.file("p.yaml", &policy("prod", "a"));
    session.run(&["apply", "-f", &path]).ok();
    let before = session.snapshot();
    let stderr = session
        .run(&["delete", "policy", "a", "absent", "-n", "prod"])
        .fails();
    assert!(
        stderr.contains("NetworkPolicy(prod/absent)") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert_eq!(session.snapshot(), before);
    let both = session.file(
        "both.yaml",
        &format!("{}---\n{}", policy("prod", "a"), policy("prod", "gone")),
    );
    let stderr = session.run(&["delete", "-f", &both]).fails();
    assert!(stderr.contains("both.yaml: document 2"), "{stderr}");
    assert_eq!(session.snapshot(), before);
    let out = session.run(&["delete", "-s", "-f", &both]).ok();
    assert!(
        out.contains("Successfully deleted 1") && out.contains("1 did not exist"),
        "{out}"
    );
    assert!(session.snapshot().is_empty());
}

#[test]
fn unreachable_etcd() {
    let session = Session::new();
    let path = session.file("p.yaml", &policy("prod", "a"));
    // Port 9 on loopback (discard) has no etcd: connecting fails.
    let run = session.run_with(
        &["apply", "-f", &path],
        &[
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_ENDPOINTS", "http://127.0.0.1:9"),
        ],
        None,
    );
    let stderr = run.fails();
    assert!(
        stderr.contains("127.0.0.1:9") && stderr.contains("unavailable"),
        "{stderr}"
    );
}

#[test]
fn syntax_error_names_line() {
    let bad = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: [x\n";
    rejected(bad, &["document 1", "syntax error"]);
}

//! tortiectl against a real etcd: the SQLite -> etcd -> SQLite migration round trip, and inputs
//! larger than one etcd transaction. A missing etcd binary fails the tests.

mod common;

use common::{Etcd, Session, examples, policy};

#[test]
fn migrate_sqlite_to_etcd_and_back() {
    let Some(etcd) = Etcd::start() else { return };
    let first = Session::new();
    first
        .run(&[
            "apply",
            "-f",
            examples().join("demo-manifests").to_str().unwrap(),
        ])
        .ok();
    let export1 = first.dir.path().join("1.json");
    first
        .run(&[
            "datastore",
            "migrate",
            "export",
            "-o",
            export1.to_str().unwrap(),
        ])
        .ok();

    let out = first
        .run_with(
            &[
                "datastore",
                "migrate",
                "import",
                "-f",
                export1.to_str().unwrap(),
            ],
            &etcd.env(),
            None,
        )
        .ok();
    assert!(out.contains("Imported 6 resources"), "{out}");
    let on_etcd = first
        .run_with(&["get", "gnp", "-o", "wide"], &etcd.env(), None)
        .ok();
    assert!(on_etcd.contains("security.quarantine"), "{on_etcd}");
    let export2 = first.dir.path().join("2.json");
    first
        .run_with(
            &[
                "datastore",
                "migrate",
                "export",
                "-o",
                export2.to_str().unwrap(),
            ],
            &etcd.env(),
            None,
        )
        .ok();

    let last = Session::new();
    last.run(&[
        "datastore",
        "migrate",
        "import",
        "-f",
        export2.to_str().unwrap(),
    ])
    .ok();
    let export3 = last.dir.path().join("3.json");
    last.run(&[
        "datastore",
        "migrate",
        "export",
        "-o",
        export3.to_str().unwrap(),
    ])
    .ok();
    let body = |path: &std::path::Path| {
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let object = value.as_object_mut().unwrap();
        object.remove("source");
        object.remove("revision");
        value
    };
    assert_eq!(
        body(&export1),
        body(&export3),
        "SQLite -> etcd -> SQLite changes nothing"
    );
}

#[test]
fn inputs_larger_than_one_etcd_transaction() {
    let Some(etcd) = Etcd::start() else { return };
    let session = Session::new();
    let docs: Vec<String> = (0..300).map(|i| policy("bulk", &format!("p{i}"))).collect();
    let path = session.file("bulk.yaml", &docs.join("---\n"));
    let stderr = session
        .run_with(&["apply", "--single-txn", "-f", &path], &etcd.env(), None)
        .fails();
    assert!(
        stderr.contains("128 operations") && stderr.contains("nothing was written"),
        "{stderr}"
    );
    let empty = session
        .run_with(&["get", "policy", "-A"], &etcd.env(), None)
        .ok();
    assert_eq!(empty.lines().count(), 1, "{empty}");
    let out = session
        .run_with(&["apply", "-f", &path], &etcd.env(), None)
        .ok();
    assert_eq!(
        out.trim(),
        "Successfully applied 300 'NetworkPolicy' resource(s)"
    );
    let listed = session
        .run_with(&["get", "policy", "-n", "bulk"], &etcd.env(), None)
        .ok();
    assert_eq!(listed.lines().count(), 301);
    let out = session
        .run_with(&["delete", "-f", &path], &etcd.env(), None)
        .ok();
    assert!(out.contains("Successfully deleted 300"), "{out}");
}

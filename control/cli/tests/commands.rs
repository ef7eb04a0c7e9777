//! The commands end to end: the built binary against a temporary SQLite file (and etcd where
//! installed).

mod common;

use common::{Session, examples, policy, pool};

#[test]
fn demo_manifests_apply_and_list_in_every_format() {
    let session = Session::new();
    let dir = examples().join("demo-manifests");
    let out = session.run(&["apply", "-f", dir.to_str().unwrap()]).ok();
    assert_eq!(out.trim(), "Successfully applied 6 resource(s)");
    assert_eq!(session.snapshot().len(), 6);

    let table = session.run(&["get", "ippools"]).ok();
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "CIDR", "SELECTOR"]
    );
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["demo-ipv4-pool", "198.18.0.0/16", "all()"]
    );

    let wide = session.run(&["get", "ipp", "-o", "wide"]).ok();
    assert!(wide.lines().next().unwrap().contains("IPIPMODE"), "{wide}");
    assert!(wide.contains("Always"), "{wide}");

    // Namespaced kinds: the default namespace is empty, -n and -A find the policy.
    assert_eq!(
        session.run(&["get", "networkpolicy"]).ok().lines().count(),
        1
    );
    let shop = session.run(&["get", "np", "-n", "shop"]).ok();
    assert!(shop.contains("allow-http-to-frontend"), "{shop}");
    let all = session.run(&["get", "policies", "-A"]).ok();
    assert!(all.starts_with("NAMESPACE"), "{all}");
    assert!(all.contains("shop"), "{all}");

    let custom = session
        .run(&[
            "get",
            "hep",
            "-o",
            "custom-columns=NAME,NODE,IFACE:.spec.interfaceName",
        ])
        .ok();
    assert_eq!(
        custom
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["node-1-eth0", "node-1", "eth0"]
    );

    let yaml = session
        .run(&["get", "gnp", "security.quarantine", "-o", "yaml"])
        .ok();
    assert!(
        yaml.contains("kind: GlobalNetworkPolicy") && yaml.contains("resourceVersion"),
        "{yaml}"
    );
    let json = session.run(&["get", "tiers", "-o", "json"]).ok();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["kind"], "TierList");
    assert_eq!(value["items"][0]["metadata"]["name"], "security");

    let missing = session.run(&["get", "ippool", "nope"]).fails();
    assert!(
        missing.contains("IPPool(nope)") && missing.contains("does not exist"),
        "{missing}"
    );
    let unknown = session.run(&["get", "ippol"]).fails();
    assert!(unknown.contains("ippol"), "{unknown}");
}

#[test]
fn yaml_output_reapplies_unchanged() {
    let session = Session::new();
    let dir = examples().join("demo-manifests");
    session.run(&["apply", "-f", dir.to_str().unwrap()]).ok();
    let before = session.snapshot();
    let exported = session
        .run(&["get", "networksets", "-A", "-o", "yaml"])
        .ok();
    let path = session.file("exported.yaml", &exported);
    // The output carries resourceVersions: re-applying is a compare-and-swap that succeeds.
    session.run(&["apply", "-f", &path]).ok();
    let after = session.snapshot();
    assert_eq!(before.len(), after.len());
    let plain = session
        .run(&["get", "networksets", "-A", "-o", "yaml", "--export"])
        .ok();
    assert!(
        !plain.contains("resourceVersion") && !plain.contains("uid"),
        "{plain}"
    );
}

#[test]
fn stale_resource_version_is_a_conflict() {
    let session = Session::new();
    let path = session.file("p.yaml", &pool("p", "10.0.0.0/16"));
    session.run(&["apply", "-f", &path]).ok();
    let yaml = session.run(&["get", "ippool", "p", "-o", "yaml"]).ok();
    let saved = session.file("saved.yaml", &yaml);
    session.run(&["label", "ippool", "p", "team=net"]).ok();
    let stderr = session.run(&["apply", "-f", &saved]).fails();
    assert!(
        stderr.contains("saved.yaml: document 1") && stderr.contains("conflict"),
        "{stderr}"
    );
}

#[test]
fn stdin_json_and_lists() {
    let session = Session::new();
    let json = r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPoolList","items":[
        {"metadata":{"name":"a"},"spec":{"cidr":"10.1.0.0/16"}},
        {"metadata":{"name":"b"},"spec":{"cidr":"10.2.0.0/16"}}]}"#;
    let out = session
        .run_with(&["create", "-f", "-"], &[], Some(json))
        .ok();
    assert_eq!(out.trim(), "Successfully created 2 'IPPool' resource(s)");
    let bad = r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPoolList","items":[
        {"metadata":{"name":"c"},"spec":{"cidr":"10.3.0.0/16"}},
        {"metadata":{"name":"d"},"spec":{"cidr":"10.2.1.0/24"}}]}"#;
    let stderr = session
        .run_with(&["create", "-f", "-"], &[], Some(bad))
        .fails();
    assert!(
        stderr.contains("stdin: document 1") && stderr.contains("items[1]"),
        "{stderr}"
    );
    assert_eq!(session.snapshot().len(), 2);
    let empty = session.file("empty.yaml", "# nothing\n");
    session.run(&["apply", "-f", &empty]).fails();
    session.run(&["apply", "--skip-empty", "-f", &empty]).ok();
}

#[test]
fn patch_and_label() {
    let session = Session::new();
    session
        .run(&[
            "apply",
            "-f",
            &session.file("p.yaml", &policy("prod", "web")),
        ])
        .ok();
    let out = session
        .run(&[
            "patch",
            "policy",
            "web",
            "-n",
            "prod",
            "-p",
            r#"{"spec":{"order":5}}"#,
        ])
        .ok();
    assert!(out.contains("Successfully patched"), "{out}");
    let got = session
        .run(&["get", "policy", "web", "-n", "prod", "-o", "json"])
        .ok();
    let value: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(value["spec"]["order"], 5.0);
    let out = session
        .run(&[
            "patch",
            "policy",
            "web",
            "-n",
            "prod",
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/spec/order","value":6}]"#,
        ])
        .ok();
    assert!(out.contains("Successfully patched"), "{out}");
    let stderr = session
        .run(&[
            "patch",
            "policy",
            "web",
            "-n",
            "prod",
            "-p",
            r#"{"spec":{"ordr":5}}"#,
        ])
        .fails();
    assert!(stderr.contains("ordr"), "{stderr}");

    session
        .run(&["label", "policy", "web", "-n", "prod", "team=blue"])
        .ok();
    let stderr = session
        .run(&["label", "policy", "web", "-n", "prod", "team=red"])
        .fails();
    assert!(stderr.contains("--overwrite"), "{stderr}");
    session
        .run(&[
            "label",
            "policy",
            "web",
            "-n",
            "prod",
            "team=red",
            "--overwrite",
        ])
        .ok();
    let labels = session
        .run(&[
            "get",
            "policy",
            "web",
            "-n",
            "prod",
            "-o",
            "custom-columns=L:.metadata.labels",
        ])
        .ok();
    assert!(labels.contains("team=red"), "{labels}");
    session
        .run(&["label", "policy", "web", "-n", "prod", "team", "--remove"])
        .ok();
    session
        .run(&["label", "policy", "web", "-n", "prod", "team", "--remove"])
        .fails();
}

#[test]
fn version_names_the_datastore() {
    let session = Session::new();
    let out = session.run(&["version"]).ok();
    assert!(
        out.contains("Client Version:") && out.contains("Datastore Type:    sqlite"),
        "{out}"
    );
    let out = session.run_with(
        &["version"],
        &[("SQLITE_PATH", "/proc/no/such/dir/x.db")],
        None,
    );
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("Client Version:"), "{}", out.stdout);
}

#[test]
fn config_from_environment_and_flags() {
    let session = Session::new();
    let other = session.dir.path().join("other.db");
    let path = session.file("p.yaml", &pool("p", "10.0.0.0/16"));
    session
        .run_with(
            &["apply", "-f", &path],
            &[("SQLITE_PATH", other.to_str().unwrap())],
            None,
        )
        .ok();
    assert!(other.exists() && session.snapshot().is_empty());
    let flag_db = session.dir.path().join("flag.db");
    session
        .run(&[
            "apply",
            "-f",
            &path,
            "--sqlite-path",
            flag_db.to_str().unwrap(),
        ])
        .ok();
    assert!(flag_db.exists());
    let bad = session
        .run_with(&["get", "ippools"], &[("DATASTORE_TYPE", "consul")], None)
        .fails();
    assert!(
        bad.contains("DATASTORE_TYPE") && bad.contains("consul"),
        "{bad}"
    );
}

#[test]
fn migrate_export_import_round_trip_sqlite() {
    let source = Session::new();
    source
        .run(&[
            "apply",
            "-f",
            examples().join("demo-manifests").to_str().unwrap(),
        ])
        .ok();
    let export = source.dir.path().join("export.json");
    source
        .run(&[
            "datastore",
            "migrate",
            "export",
            "-o",
            export.to_str().unwrap(),
        ])
        .ok();
    let target = Session::new();
    let out = target
        .run(&[
            "datastore",
            "migrate",
            "import",
            "-f",
            export.to_str().unwrap(),
        ])
        .ok();
    assert!(out.contains("Imported 6 resources"), "{out}");
    let a = source.run(&["get", "gnp", "-o", "yaml"]).ok();
    let b = target.run(&["get", "gnp", "-o", "yaml"]).ok();
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("resourceVersion"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&a), strip(&b));
    // Importing twice is refused: the target is no longer empty.
    let stderr = target
        .run(&[
            "datastore",
            "migrate",
            "import",
            "-f",
            export.to_str().unwrap(),
        ])
        .fails();
    assert!(stderr.contains("not empty"), "{stderr}");
}

//! Error messages name the source, the document, the line (and column) and the field path.

use tortie_model::{ModelError, parse_documents};

fn error(text: &str, source: &str) -> ModelError {
    match parse_documents(text, source) {
        Ok(r) => panic!("expected an error, parsed {} resources", r.len()),
        Err(e) => e,
    }
}

const FIRST: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: blocked
spec:
  nets: [203.0.113.0/24]
";

#[test]
fn unknown_protocol_names_document_line_column_and_path() {
    let text = format!(
        "{FIRST}---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: allow-web
  namespace: shop
spec:
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TPC
"
    );
    let err = error(&text, "policy.yaml");
    assert_eq!(
        err.to_string(),
        "policy.yaml: document 2 (line 17, column 15): spec.ingress[0].protocol: unknown protocol \"TPC\" (expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255)"
    );
    let location = err.location().unwrap();
    assert_eq!(
        (location.document, location.line, location.column),
        (2, 17, Some(15))
    );
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let text = "apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool
spec:
  cidr: 10.0.0.0/16
  natOutgoin: true
";
    assert_eq!(
        error(text, "pool.yaml").to_string(),
        "pool.yaml: document 1 (line 7, column 3): spec.natOutgoin: unknown field `natOutgoin`, expected one of `cidr`, `vxlanMode`, `ipipMode`, `natOutgoing`, `disabled`, `disableBGPExport`, `blockSize`, `nodeSelector`, `namespaceSelector`, `allowedUses`, `assignmentMode`"
    );
    let nested = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: g
spec:
  egress:
  - action: Allow
    destination:
      port: [53]
";
    let err = error(nested, "g.yaml");
    assert_eq!(
        err.path().unwrap().to_string(),
        "spec.egress[0].destination.port"
    );
    assert_eq!(err.location().unwrap().line, 9);
    let top = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: t\nspecs: {}\n";
    assert_eq!(
        error(top, "t.yaml").to_string(),
        "t.yaml: document 1 (line 5, column 1): specs: unknown field \"specs\" (expected apiVersion, kind, metadata, spec or status)"
    );
}

#[test]
fn validation_errors_point_at_the_offending_line() {
    let text = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: icmp
spec:
  ingress:
  - action: Allow
    protocol: ICMP
    icmp:
      code: 3
";
    assert_eq!(
        error(text, "icmp.yaml").to_string(),
        "icmp.yaml: document 1 (line 10, column 13): spec.ingress[0].icmp.code: ICMP code specified without an ICMP type"
    );
}

#[test]
fn selector_errors_carry_the_selector_column() {
    let text = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: bad-selector
spec:
  selector: app == 'web' &&
";
    let err = error(text, "sel.yaml");
    let shown = err.to_string();
    assert!(shown.starts_with("sel.yaml: document 1 (line 6, column 13): spec.selector: invalid selector \"app == 'web' &&\": column "), "{shown}");
}

#[test]
fn unknown_api_version_and_kind_are_clear() {
    let text = "apiVersion: projectcalico.org/v2\nkind: IPPool\nmetadata:\n  name: p\n";
    assert_eq!(
        error(text, "p.yaml").to_string(),
        "p.yaml: document 1 (line 1, column 13): apiVersion: unknown apiVersion \"projectcalico.org/v2\" (expected projectcalico.org/v3, or networking.k8s.io/v1 / v1 for Kubernetes inputs)"
    );
    let text = "apiVersion: projectcalico.org/v3\nkind: IpPool\nmetadata:\n  name: p\n";
    assert_eq!(
        error(text, "p.yaml").to_string(),
        "p.yaml: document 1 (line 2, column 7): kind: unknown kind \"IpPool\" for apiVersion projectcalico.org/v3 (did you mean kind \"IPPool\" with apiVersion projectcalico.org/v3?)"
    );
    let text = "apiVersion: projectcalico.org/v3\nkind: Widget\n";
    assert_eq!(
        error(text, "w.yaml").to_string(),
        "w.yaml: document 1 (line 2, column 7): kind: unknown kind \"Widget\" for apiVersion projectcalico.org/v3"
    );
    let text = "kind: IPPool\nmetadata:\n  name: p\n";
    assert_eq!(
        error(text, "x.yaml").to_string(),
        "x.yaml: document 1 (line 1, column 1): apiVersion: missing apiVersion"
    );
}

#[test]
fn duplicates_within_one_input_are_errors() {
    let text = format!("{FIRST}---\n{FIRST}");
    assert_eq!(
        error(&text, "dup.yaml").to_string(),
        "dup.yaml: document 2 (line 11, column 9): metadata.name: duplicate GlobalNetworkSet \"blocked\": already defined in document 1 (line 1)"
    );
    let np = |ns: &str| {
        format!("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\n{ns}")
    };
    let text = format!("{}---\n{}", np(""), np("  namespace: default\n"));
    let err = error(&text, "np.yaml");
    assert!(
        err.message()
            .contains("duplicate NetworkPolicy \"default/p\""),
        "{err}"
    );
    let text = format!("{}---\n{}", np("  namespace: a\n"), np("  namespace: b\n"));
    assert_eq!(parse_documents(&text, "np.yaml").unwrap().len(), 2);
}

#[test]
fn syntax_errors_name_the_position() {
    let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: [unclosed\n";
    let err = error(text, "broken.yaml");
    let ModelError::Syntax { location, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(location.source, "broken.yaml");
    assert!(location.line >= 4, "{err}");
    assert!(err.to_string().contains("syntax error"), "{err}");
    let json = "{\"apiVersion\": \"projectcalico.org/v3\",\n \"kind\": \"IPPool\",\n \"metadata\": {\"name\": \"p\"},,\n}";
    let err = error(json, "p.json");
    assert!(matches!(err, ModelError::Syntax { .. }), "{err}");
    assert_eq!(err.location().unwrap().line, 3, "{err}");
}

#[test]
fn json_errors_have_lines_too() {
    let json = r#"{
  "apiVersion": "projectcalico.org/v3",
  "kind": "IPPool",
  "metadata": {"name": "p"},
  "spec": {
    "cidr": "10.0.0.0/16",
    "blockSize": "26"
  }
}"#;
    let err = error(json, "p.json");
    assert_eq!(err.path().unwrap().to_string(), "spec.blockSize");
    assert_eq!(err.location().unwrap().line, 7);
    assert!(
        err.message()
            .contains("invalid type: string \"26\", expected u8"),
        "{err}"
    );
}

#[test]
fn list_items_and_arrays_carry_their_index_in_the_path() {
    let list = r#"{"apiVersion": "projectcalico.org/v3", "kind": "IPPoolList", "items": [
  {"metadata": {"name": "a"}, "spec": {"cidr": "10.0.0.0/16"}},
  {"metadata": {"name": "b"}, "spec": {"cidr": "10.1.0.1/16"}}
]}"#;
    assert_eq!(
        error(list, "pools.json").to_string(),
        "pools.json: document 1 (line 3, column 48): items[1].spec.cidr: IP pool CIDR 10.1.0.1/16 is not strictly masked (did you mean 10.1.0.0/16?)"
    );
    let array = "- apiVersion: projectcalico.org/v3\n  kind: Tier\n  metadata: {name: a}\n- apiVersion: projectcalico.org/v3\n  kind: Tier\n  metadata: {name: B}\n";
    let err = error(array, "tiers.yaml");
    assert_eq!(err.path().unwrap().to_string(), "[1].metadata.name");
    assert_eq!(err.location().unwrap().line, 6);
    let bad_list = "apiVersion: projectcalico.org/v3\nkind: TierList\nitems: 3\n";
    assert!(
        error(bad_list, "l.yaml")
            .to_string()
            .contains("items: items must be a list")
    );
}

#[test]
fn empty_documents_are_skipped_and_scalars_rejected() {
    assert!(parse_documents("", "e.yaml").unwrap().is_empty());
    assert!(
        parse_documents("---\n---\n# nothing\n", "e.yaml")
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        error("just text\n", "s.yaml").to_string(),
        "s.yaml: document 1 (line 1, column 1): expected a resource (a mapping) or a list of resources, found a string"
    );
}

#[test]
fn felix_knob_errors_point_at_the_knob() {
    let text = "apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  bpfEnabled: false
  ipv6Support: maybe
";
    assert_eq!(
        error(text, "felix.yaml").to_string(),
        "felix.yaml: document 1 (line 7, column 16): spec.ipv6Support: invalid type: a string, expected a boolean"
    );
    let typo = text.replace("ipv6Support: maybe", "ipv6Suport: true");
    assert_eq!(
        error(&typo, "felix.yaml").to_string(),
        "felix.yaml: document 1 (line 7, column 15): spec.ipv6Suport: unknown field \"ipv6Suport\" in a FelixConfiguration"
    );
}

#[test]
fn windows_line_endings_and_byte_order_marks_are_accepted() {
    let text = "\u{feff}apiVersion: projectcalico.org/v3\r\nkind: Tier\r\nmetadata:\r\n  name: ops\r\nspec:\r\n  order: 50\r\n---\r\napiVersion: projectcalico.org/v3\r\nkind: Tier\r\nmetadata:\r\n  name: Bad\r\n";
    let err = error(text, "crlf.yaml");
    assert_eq!(err.location().unwrap().line, 11, "{err}");
    let good = text.replace("Bad", "dev");
    assert_eq!(parse_documents(&good, "crlf.yaml").unwrap().len(), 2);
}

#[test]
fn apply_time_errors_are_placed_on_their_document() {
    use tortie_model::{Resource, check_pool_overlap, parse_documents_with_origin};
    let text = "apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: a
spec:
  cidr: 10.0.0.0/16
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: b
spec:
  cidr: 10.0.128.0/24
  blockSize: 26
";
    let docs = parse_documents_with_origin(text, "pools.yaml").unwrap();
    let pools: Vec<_> = docs
        .iter()
        .map(|d| match &d.resource {
            Resource::IpPool(p) => p.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let err = check_pool_overlap(&pools[1], &pools[..1]).unwrap_err();
    assert_eq!(
        docs[1].locate(err).to_string(),
        "pools.yaml: document 2 (line 8, column 1): spec.cidr: IP pool 10.0.128.0/24 overlaps IP pool \"a\" (10.0.0.0/16)"
    );
}

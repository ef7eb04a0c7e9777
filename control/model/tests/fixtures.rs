//! Real-world manifests: they parse, validate, and survive JSON and YAML round trips unchanged.

use tortie_model::{Kind, Resource, parse_documents, parse_documents_with_origin};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse_fixture(name: &str) -> Vec<Resource> {
    parse_documents(&fixture(name), name).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_round_trips(resources: &[Resource]) {
    for r in resources {
        let json = r.to_json();
        let back = Resource::from_json(&json).unwrap_or_else(|e| panic!("{e}\n{json}"));
        assert_eq!(&back, r, "JSON round trip of {}", r.key());
        let yaml = r.to_yaml();
        let parsed =
            parse_documents(&yaml, "emitted.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(parsed.len(), 1);
        assert_eq!(&parsed[0], r, "YAML round trip of {}:\n{yaml}", r.key());
        let mut defaulted = r.clone();
        defaulted.apply_defaults();
        defaulted
            .validate()
            .unwrap_or_else(|e| panic!("{} after defaults: {e}", r.key()));
    }
}

#[test]
fn policy_manifests() {
    let resources = parse_fixture("policies.yaml");
    let kinds: Vec<Kind> = resources.iter().map(Resource::kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Tier,
            Kind::GlobalNetworkPolicy,
            Kind::GlobalNetworkPolicy,
            Kind::NetworkPolicy,
            Kind::GlobalNetworkPolicy,
            Kind::GlobalNetworkPolicy,
            Kind::GlobalNetworkSet,
            Kind::NetworkSet,
            Kind::Profile,
        ]
    );
    let Resource::NetworkPolicy(np) = &resources[3] else {
        panic!()
    };
    assert_eq!(np.metadata.namespace, "shop");
    assert_eq!(np.spec.ingress.len(), 4);
    assert_eq!(np.spec.ingress[1].destination.ports.len(), 2);
    assert_round_trips(&resources);
}

#[test]
fn ipam_manifests() {
    let resources = parse_fixture("ipam.yaml");
    assert_eq!(resources.len(), 5);
    assert_round_trips(&resources);
}

#[test]
fn bgp_manifests() {
    let resources = parse_fixture("bgp.yaml");
    assert_eq!(resources.len(), 5);
    let Resource::Node(node) = &resources[4] else {
        panic!()
    };
    assert_eq!(node.metadata.labels["route-reflector"], "true");
    assert_round_trips(&resources);
}

#[test]
fn endpoint_manifests() {
    let resources = parse_fixture("endpoints.yaml");
    assert_eq!(resources[1].key().namespace, "shop");
    assert_round_trips(&resources);
}

#[test]
fn felix_and_cluster_information() {
    let resources = parse_fixture("felix.yaml");
    let Resource::FelixConfiguration(felix) = &resources[0] else {
        panic!()
    };
    assert_eq!(felix.spec.ipv6_support, Some(true));
    assert!(felix.spec.other.contains_key("routeTableRanges"));
    assert_round_trips(&resources);
}

#[test]
fn kubernetes_inputs() {
    let resources = parse_fixture("k8s.yaml");
    assert_eq!(resources[0].kind(), Kind::KubernetesNamespace);
    assert_eq!(resources[1].kind(), Kind::KubernetesNetworkPolicy);
    assert!(
        resources[1]
            .to_json()
            .contains("\"apiVersion\":\"networking.k8s.io/v1\"")
    );
    assert_round_trips(&resources);
}

#[test]
fn calicoctl_list_output_reads_back_with_item_paths() {
    let parsed = parse_documents_with_origin(&fixture("list.json"), "list.json").unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[1].path.to_string(), "items[1]");
    assert_eq!(parsed[1].origin.line, 26);
    let original: serde_json::Value = serde_json::from_str(&fixture("list.json")).unwrap();
    for (i, doc) in parsed.iter().enumerate() {
        let ours = serde_json::to_value(&doc.resource).unwrap();
        assert_eq!(
            ours, original["items"][i],
            "item {i} keeps Calico's exact shape"
        );
    }
}

#[test]
fn etcd_values_write_back_byte_for_byte() {
    let text = fixture("etcd-values.json");
    let values: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    for (line, value) in text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .zip(values)
    {
        let stored = line.trim().trim_end_matches(',');
        let resource = Resource::from_json(stored).unwrap();
        assert_eq!(resource.to_json(), stored);
        assert_eq!(serde_json::to_value(&resource).unwrap(), value);
    }
    let resources = parse_documents(&text, "etcd-values.json").unwrap();
    assert_eq!(resources.len(), 2);
}

#[test]
fn all_fixtures_in_one_stream_have_no_duplicates() {
    let mut all = String::new();
    for name in [
        "policies.yaml",
        "ipam.yaml",
        "bgp.yaml",
        "endpoints.yaml",
        "felix.yaml",
        "k8s.yaml",
    ] {
        all.push_str("---\n");
        all.push_str(&fixture(name));
    }
    let resources = parse_documents(&all, "all.yaml").unwrap();
    assert_eq!(resources.len(), 9 + 5 + 5 + 2 + 2 + 2);
}

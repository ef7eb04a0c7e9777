//! Property tests: any resource the types can hold survives JSON and YAML round trips, and no
//! input makes the reader panic.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use std::collections::BTreeMap;
use tortie_model::types::*;
use tortie_model::{Object, ObjectMeta, Resource, parse_documents, read_documents};

fn cidr() -> impl Strategy<Value = Cidr> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32)
            .prop_map(|(a, p)| Cidr(ipnet::IpNet::new(a.into(), p).unwrap())),
        (any::<[u8; 16]>(), 0u8..=128)
            .prop_map(|(a, p)| Cidr(ipnet::IpNet::new(a.into(), p).unwrap())),
    ]
}

fn port() -> impl Strategy<Value = Port> {
    prop_oneof![
        (1u16..).prop_map(Port::Number),
        (1u16.., 1u16..).prop_map(|(a, b)| Port::range(a.min(b), a.max(b))),
        "[a-z][a-z0-9]{0,8}".prop_map(Port::Named),
    ]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Icmp),
        Just(Protocol::IcmpV6),
        Just(Protocol::Sctp),
        Just(Protocol::UdpLite),
        (1u8..).prop_map(Protocol::Number),
    ]
}

/// Any text at all, to exercise quoting in the YAML writer.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.-]{0,12}",
        "\\PC{0,16}",
        ".{0,8}",
        Just("true".to_string()),
        Just("80".to_string())
    ]
}

fn selector() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("all()".to_string()),
        Just("app == 'web' && has(tier)".to_string()),
        Just("!has(x) || role in {'a', 'b'}".to_string()),
        "[a-z]{1,8}".prop_map(|k| format!("{k} != \"v\"")),
    ]
}

fn icmp() -> impl Strategy<Value = IcmpFields> {
    (option::of(0u16..=254), option::of(0u16..=255))
        .prop_map(|(icmp_type, code)| IcmpFields { icmp_type, code })
}

fn entity() -> impl Strategy<Value = EntityRule> {
    (
        vec(cidr(), 0..3),
        selector(),
        selector(),
        vec(port(), 0..3),
        vec(cidr(), 0..2),
        selector(),
        vec(port(), 0..2),
    )
        .prop_map(
            |(nets, selector, namespace_selector, ports, not_nets, not_selector, not_ports)| {
                EntityRule {
                    nets,
                    selector,
                    namespace_selector,
                    services: None,
                    ports,
                    not_nets,
                    not_selector,
                    not_ports,
                    service_accounts: None,
                }
            },
        )
}

fn rule() -> impl Strategy<Value = Rule> {
    let action = prop_oneof![
        Just(Action::Allow),
        Just(Action::Deny),
        Just(Action::Log),
        Just(Action::Pass)
    ];
    let version = option::of(prop_oneof![Just(IpVersion::V4), Just(IpVersion::V6)]);
    let annotations = option::of(
        btree_map(text(), text(), 0..3).prop_map(|annotations| RuleMetadata { annotations }),
    );
    (
        action,
        version,
        option::of(protocol()),
        option::of(icmp()),
        option::of(protocol()),
        entity(),
        entity(),
        annotations,
    )
        .prop_map(
            |(action, ip_version, protocol, icmp, not_protocol, source, destination, metadata)| {
                Rule {
                    action,
                    ip_version,
                    protocol,
                    icmp,
                    not_protocol,
                    not_icmp: None,
                    source,
                    destination,
                    http: None,
                    metadata,
                }
            },
        )
}

fn types() -> impl Strategy<Value = Vec<PolicyType>> {
    prop_oneof![
        Just(vec![]),
        Just(vec![PolicyType::Ingress]),
        Just(vec![PolicyType::Egress]),
        Just(vec![PolicyType::Ingress, PolicyType::Egress]),
    ]
}

fn order() -> impl Strategy<Value = Option<f64>> {
    option::of(prop_oneof![
        (-1_000_000i32..1_000_000).prop_map(f64::from),
        -1e9f64..1e9
    ])
}

fn metadata(namespaced: bool) -> impl Strategy<Value = ObjectMeta> {
    let namespace = if namespaced {
        "[a-z]{0,6}".boxed()
    } else {
        Just(String::new()).boxed()
    };
    (
        "[a-z][a-z0-9-]{0,10}",
        namespace,
        btree_map("[a-z]{1,5}", text(), 0..3),
        btree_map(text(), text(), 0..2),
        option::of(0i64..100),
    )
        .prop_map(
            |(name, namespace, labels, annotations, generation)| ObjectMeta {
                name,
                namespace,
                labels,
                annotations,
                generation,
                ..ObjectMeta::default()
            },
        )
}

fn resource() -> impl Strategy<Value = Resource> {
    let np = (
        metadata(true),
        order(),
        vec(rule(), 0..3),
        vec(rule(), 0..3),
        selector(),
        types(),
    )
        .prop_map(|(meta, order, ingress, egress, selector, types)| {
            Resource::NetworkPolicy(Object::new(
                meta,
                NetworkPolicySpec {
                    tier: String::new(),
                    order,
                    ingress,
                    egress,
                    selector,
                    types,
                    service_account_selector: String::new(),
                    performance_hints: vec![],
                },
            ))
        });
    let gnp = (
        metadata(false),
        order(),
        vec(rule(), 0..3),
        any::<[bool; 3]>(),
        selector(),
    )
        .prop_map(|(meta, order, ingress, flags, namespace_selector)| {
            Resource::GlobalNetworkPolicy(Object::new(
                meta,
                GlobalNetworkPolicySpec {
                    order,
                    ingress,
                    do_not_track: flags[0],
                    pre_dnat: flags[1],
                    apply_on_forward: flags[2],
                    namespace_selector,
                    ..GlobalNetworkPolicySpec::default()
                },
            ))
        });
    let encap = option::of(prop_oneof![
        Just(EncapMode::Always),
        Just(EncapMode::CrossSubnet),
        Just(EncapMode::Never)
    ]);
    let pool = (
        metadata(false),
        cidr(),
        encap.clone(),
        encap,
        any::<[bool; 3]>(),
        option::of(any::<u8>()),
        selector(),
    )
        .prop_map(
            |(meta, cidr, ipip_mode, vxlan_mode, flags, block_size, node_selector)| {
                let mut spec = IpPoolSpec::new(cidr);
                spec.ipip_mode = ipip_mode;
                spec.vxlan_mode = vxlan_mode;
                spec.nat_outgoing = flags[0];
                spec.disabled = flags[1];
                spec.disable_bgp_export = flags[2];
                spec.block_size = block_size;
                spec.node_selector = node_selector;
                Resource::IpPool(Object::new(meta, spec))
            },
        );
    let profile = (
        metadata(false),
        vec(rule(), 0..2),
        btree_map(text(), text(), 0..3),
    )
        .prop_map(|(meta, egress, labels_to_apply)| {
            Resource::Profile(Object::new(
                meta,
                ProfileSpec {
                    ingress: vec![],
                    egress,
                    labels_to_apply,
                },
            ))
        });
    prop_oneof![np, gnp, pool, profile]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_round_trip(r in resource()) {
        let json = r.to_json();
        prop_assert_eq!(Resource::from_json(&json).unwrap(), r);
    }

    #[test]
    fn yaml_round_trip(r in resource()) {
        let yaml = r.to_yaml();
        let read = read_documents(&yaml, "gen.yaml").map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(read.len(), 1);
        prop_assert_eq!(&read[0].resource, &r, "{}", yaml);
    }

    #[test]
    fn defaults_are_idempotent(r in resource()) {
        let mut once = r.clone();
        once.apply_defaults();
        let mut twice = once.clone();
        twice.apply_defaults();
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse_documents(&text, "fuzz.yaml");
    }

    #[test]
    fn mutated_manifests_never_panic(cut in 0usize..600, insert in "[ :\\-\\[\\]{}'\"#&*!|>%@`,\\n]{0,4}") {
        let base = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: shop\nspec:\n  selector: app == 'web'\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source:\n      nets: [10.0.0.0/8]\n    destination:\n      ports: [80, '8000:8080', http]\n  - action: Deny\n    protocol: ICMP\n    icmp: {type: 8, code: 0}\n";
        let at = base.char_indices().map(|(i, _)| i).nth(cut % base.len()).unwrap_or(base.len());
        let mut text = base.to_string();
        text.insert_str(at, &insert);
        let _ = parse_documents(&text, "fuzz.yaml");
    }
}

#[test]
fn generated_labels_keep_their_types() {
    let mut labels = BTreeMap::new();
    labels.insert("port".to_string(), "80".to_string());
    labels.insert("flag".to_string(), "yes".to_string());
    let r = Resource::GlobalNetworkSet(Object::new(
        ObjectMeta {
            name: "s".into(),
            labels,
            ..ObjectMeta::default()
        },
        NetworkSetSpec::default(),
    ));
    let back = &read_documents(&r.to_yaml(), "x").unwrap()[0].resource;
    assert_eq!(back, &r);
}

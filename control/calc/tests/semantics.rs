//! One test per rule of Calico's policy semantics, each checked through `explain`.

mod common;
use common::*;

fn with(extra: &[String]) -> tortie_calc::CalcGraph {
    let mut docs = base();
    docs.extend_from_slice(extra);
    graph(&docs)
}

#[test]
fn no_policy_means_profiles_decide_and_kns_allows() {
    let g = with(&[]);
    assert_eq!(verdict(&g, "ns1/a", "ns2/c", "TCP", Some(80)), "Allow");
    let e = explain_conn(&g, "ns1/a", "ns2/c", "TCP", Some(80));
    assert!(e.to_text().contains("profile kns.ns2"), "{}", e.to_text());
}

#[test]
fn endpoint_without_profiles_drops() {
    let mut docs = base();
    docs.push(pod_with_profiles(
        "ns1",
        "lonely",
        "10.0.1.9/32",
        &[("app", "x")],
        &[],
    ));
    let g = graph(&docs);
    let e = explain_conn(&g, "ns1/a", "ns1/lonely", "TCP", Some(80));
    assert_eq!(format!("{:?}", e.ingress.verdict), "Deny");
    assert_eq!(format!("{:?}", e.egress.verdict), "Allow");
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(
        json["ingress"]["steps"].as_array().unwrap().last().unwrap()["stage"],
        "noProfile"
    );
}

#[test]
fn policy_selecting_endpoint_without_matching_rule_hits_tier_default_deny() {
    // An Ingress policy with no rules isolates the pod; egress is untouched.
    let g = with(&[np(
        "ns1",
        "isolate-b",
        "  selector: app == 'b'\n  types: [Ingress]\n",
    )]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Deny");
    assert_eq!(verdict(&g, "ns1/b", "ns1/a", "TCP", Some(80)), "Allow");
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    let json = serde_json::to_value(&e).unwrap();
    let step = &json["ingress"]["steps"][0];
    assert_eq!(step["stage"], "tierDefault");
    assert_eq!(step["tier"], "default");
    assert_eq!(step["action"], "Deny");
}

#[test]
fn allow_ends_evaluation() {
    let spec = "  selector: app == 'b'\n  ingress:\n  - action: Allow\n  - action: Deny\n";
    let g = with(&[np("ns1", "p", spec)]);
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    assert_eq!(format!("{:?}", e.verdict), "Allow");
    assert_eq!(e.ingress.steps.len(), 1);
    assert_eq!(e.ingress.steps[0].rule, Some(0));
    assert_eq!(e.ingress.steps[0].policy.as_deref(), Some("ns1/p"));
}

#[test]
fn deny_ends_evaluation_even_if_later_policy_allows() {
    let g = with(&[
        np(
            "ns1",
            "p1",
            "  order: 10\n  selector: app == 'b'\n  ingress:\n  - action: Deny\n",
        ),
        np(
            "ns1",
            "p2",
            "  order: 20\n  selector: app == 'b'\n  ingress:\n  - action: Allow\n",
        ),
    ]);
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    assert_eq!(format!("{:?}", e.verdict), "Deny");
    assert_eq!(e.ingress.steps.len(), 1);
}

#[test]
fn log_continues_and_log_only_policy_ends_in_tier_default_deny() {
    let g = with(&[np(
        "ns1",
        "debug",
        "  selector: app == 'b'\n  ingress:\n  - action: Log\n",
    )]);
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    assert_eq!(format!("{:?}", e.verdict), "Deny");
    let stages: Vec<String> = e
        .ingress
        .steps
        .iter()
        .map(|s| format!("{:?}/{:?}", s.stage, s.action))
        .collect();
    assert_eq!(stages, ["Rule/Some(Log)", "TierDefault/Some(Deny)"]);
    let g = with(&[np(
        "ns1",
        "debug",
        "  selector: app == 'b'\n  ingress:\n  - action: Log\n  - action: Allow\n",
    )]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Allow");
}

#[test]
fn policies_sort_by_order_then_name_and_unset_order_is_last() {
    // Same order: name decides (ns1/aaa before ns1/zzz). Unset order runs after ordered ones.
    let g = with(&[
        np(
            "ns1",
            "zzz",
            "  order: 5\n  selector: app == 'b'\n  ingress:\n  - action: Allow\n",
        ),
        np(
            "ns1",
            "aaa",
            "  order: 5\n  selector: app == 'b'\n  ingress:\n  - action: Deny\n",
        ),
        np(
            "ns1",
            "first",
            "  selector: app == 'b'\n  ingress:\n  - action: Allow\n",
        ),
    ]);
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    assert_eq!(e.ingress.steps[0].policy.as_deref(), Some("ns1/aaa"));
    assert_eq!(format!("{:?}", e.verdict), "Deny");
}

#[test]
fn tiers_run_by_order_and_pass_jumps_to_next_tier() {
    let g = with(&[
        tier("security", 100.0, "Deny"),
        tier("platform", 200.0, "Deny"),
        gnp(
            "security.pass-all",
            "  tier: security\n  selector: all()\n  ingress:\n  - action: Pass\n  - action: Deny\n",
        ),
        gnp(
            "platform.deny-b",
            "  tier: platform\n  selector: app == 'b'\n  ingress:\n  - action: Deny\n",
        ),
        np(
            "ns1",
            "allow-b",
            "  selector: app == 'b'\n  ingress:\n  - action: Allow\n",
        ),
    ]);
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    let trail: Vec<(Option<String>, Option<String>)> = e
        .ingress
        .steps
        .iter()
        .map(|s| (s.tier.clone(), s.policy.clone()))
        .collect();
    assert_eq!(
        trail,
        [
            (Some("security".into()), Some("security.pass-all".into())),
            (Some("platform".into()), Some("platform.deny-b".into())),
        ]
    );
    assert_eq!(format!("{:?}", e.verdict), "Deny");
}

#[test]
fn pass_from_last_tier_goes_to_profiles() {
    let g = with(&[np(
        "ns1",
        "pass",
        "  selector: app == 'b'\n  ingress:\n  - action: Pass\n",
    )]);
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    assert_eq!(format!("{:?}", e.verdict), "Allow");
    assert_eq!(
        e.ingress.steps.last().unwrap().profile.as_deref(),
        Some("kns.ns1")
    );
}

#[test]
fn tier_default_action_pass_continues_to_next_tier() {
    let g = with(&[
        tier("soft", 10.0, "Pass"),
        gnp(
            "soft.nothing",
            "  tier: soft\n  selector: all()\n  types: [Ingress]\n",
        ),
    ]);
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    assert_eq!(format!("{:?}", e.verdict), "Allow");
    let json = serde_json::to_value(&e.ingress).unwrap();
    assert_eq!(json["steps"][0]["stage"], "tierDefault");
    assert_eq!(json["steps"][0]["action"], "Pass");
}

#[test]
fn ingress_and_egress_are_independent() {
    let g = with(&[np(
        "ns1",
        "egress-only",
        "  selector: app == 'a'\n  types: [Egress]\n",
    )]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Deny");
    assert_eq!(verdict(&g, "ns1/b", "ns1/a", "TCP", Some(80)), "Allow");
}

fn allow_b_if(rule: &str) -> tortie_calc::CalcGraph {
    with(&[np(
        "ns1",
        "cond",
        &format!("  selector: app == 'b'\n  ingress:\n  - action: Allow\n{rule}"),
    )])
}

#[test]
fn not_nets_excludes_sources() {
    let g = allow_b_if("    source:\n      notNets: [10.0.1.1/32]\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Deny");
    let mut docs = base();
    docs.push(pod("ns1", "d", "10.0.1.4/32", &[("app", "d")]));
    docs.push(np("ns1", "cond", "  selector: app == 'b'\n  ingress:\n  - action: Allow\n    source:\n      notNets: [10.0.1.1/32]\n"));
    assert_eq!(
        verdict(&graph(&docs), "ns1/d", "ns1/b", "TCP", Some(80)),
        "Allow"
    );
}

#[test]
fn not_selector_excludes_matching_endpoints_only() {
    let g = allow_b_if("    source:\n      notSelector: app == 'a'\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Deny");
    // In a namespaced policy a lone notSelector still scopes the source to the namespace:
    // c (ns2) is not excluded by the notSelector but is outside ns1.
    assert_eq!(verdict(&g, "ns2/c", "ns1/b", "TCP", Some(80)), "Deny");
}

#[test]
fn not_ports_excludes_ports() {
    let g =
        allow_b_if("    protocol: TCP\n    destination:\n      notPorts: [22, \"8000:8100\"]\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(22)), "Deny");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(8050)), "Deny");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Allow");
}

#[test]
fn not_protocol_excludes_protocol() {
    let g = allow_b_if("    notProtocol: UDP\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "UDP", Some(53)), "Deny");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(53)), "Allow");
}

fn icmp_verdict(g: &tortie_calc::CalcGraph, icmp_type: u8, code: u8) -> String {
    let mut req = tortie_calc::ExplainRequest::new(
        tortie_calc::Peer::parse_endpoint("ns1/a").unwrap(),
        tortie_calc::Peer::parse_endpoint("ns1/b").unwrap(),
        1,
        None,
    );
    req.icmp_type = Some(icmp_type);
    req.icmp_code = Some(code);
    format!(
        "{:?}",
        tortie_calc::explain::explain(g, &req).unwrap().verdict
    )
}

#[test]
fn icmp_type_and_code_match() {
    let g = allow_b_if("    protocol: ICMP\n    icmp: {type: 8, code: 0}\n");
    assert_eq!(icmp_verdict(&g, 8, 0), "Allow");
    assert_eq!(icmp_verdict(&g, 8, 1), "Deny");
    assert_eq!(icmp_verdict(&g, 0, 0), "Deny");
    let g = allow_b_if("    protocol: ICMP\n    icmp: {type: 8}\n");
    assert_eq!(icmp_verdict(&g, 8, 5), "Allow");
}

#[test]
fn not_icmp_excludes_type() {
    let g = allow_b_if("    protocol: ICMP\n    notICMP: {type: 5}\n");
    assert_eq!(icmp_verdict(&g, 5, 0), "Deny");
    assert_eq!(icmp_verdict(&g, 8, 0), "Allow");
}

#[test]
fn ip_version_restricts_family() {
    let g = allow_b_if("    ipVersion: 6\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Deny");
    let g = allow_b_if("    ipVersion: 4\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Allow");
}

#[test]
fn numbered_protocols_match_by_number_and_name() {
    let g = allow_b_if("    protocol: 47\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "47", None), "Allow");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Deny");
    let g = allow_b_if("    protocol: 6\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "tcp", Some(80)), "Allow");
}

#[test]
fn port_ranges_are_inclusive() {
    let g = allow_b_if("    protocol: TCP\n    destination:\n      ports: [\"6040:6050\", 80]\n");
    for (port, expect) in [
        (6039, "Deny"),
        (6040, "Allow"),
        (6050, "Allow"),
        (6051, "Deny"),
        (80, "Allow"),
    ] {
        assert_eq!(
            verdict(&g, "ns1/a", "ns1/b", "TCP", Some(port)),
            expect,
            "port {port}"
        );
    }
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "UDP", Some(80)), "Deny");
}

#[test]
fn named_ports_resolve_per_destination_endpoint() {
    // Every fixture pod declares http = TCP 8080.
    let g = allow_b_if("    destination:\n      ports: [http]\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(8080)), "Allow");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Deny");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "UDP", Some(8080)), "Deny");
    // An unknown port name is accepted and matches nothing.
    let g = allow_b_if("    destination:\n      ports: [nosuchport]\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(8080)), "Deny");
}

#[test]
fn selectors_are_namespace_scoped_in_namespaced_policy() {
    let g = allow_b_if("    source:\n      selector: all()\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Allow");
    assert_eq!(verdict(&g, "ns2/c", "ns1/b", "TCP", Some(80)), "Deny");
    let g = allow_b_if("    source:\n      namespaceSelector: team == 'two'\n");
    assert_eq!(verdict(&g, "ns2/c", "ns1/b", "TCP", Some(80)), "Allow");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Deny");
}

#[test]
fn selector_matching_nothing_is_accepted_and_matches_nothing() {
    let g = allow_b_if("    source:\n      selector: app == 'ghost'\n");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Deny");
}

#[test]
fn policy_in_missing_tier_applies_after_every_existing_tier_with_end_of_tier_deny() {
    // Felix keeps it in an invalid tier sorted after every valid one, with the end-of-tier
    // drop: a policy selecting b without a matching rule denies.
    let g = with(&[gnp(
        "nosuch.deny",
        "  tier: nosuch\n  selector: all()\n  ingress:\n  - action: Allow\n    protocol: UDP\n",
    )]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "UDP", Some(53)), "Allow");
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    assert_eq!(format!("{:?}", e.verdict), "Deny");
    let json = serde_json::to_value(&e).unwrap();
    let last = json["ingress"]["steps"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["stage"], "tierDefault");
    assert_eq!(last["tier"], "nosuch");
    // It runs after the existing tiers: the default tier's Allow wins first...
    let g = with(&[
        gnp(
            "nosuch.deny",
            "  tier: nosuch\n  selector: all()\n  ingress:\n  - action: Deny\n",
        ),
        gnp(
            "allow-b",
            "  selector: app == 'b'\n  ingress:\n  - action: Allow\n",
        ),
    ]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Allow");
    // ...even a tier with a larger order and one with no order.
    let g = with(&[
        tier("late", 1e9, "Pass"),
        gnp(
            "nosuch.deny",
            "  tier: nosuch\n  selector: all()\n  ingress:\n  - action: Deny\n",
        ),
        gnp(
            "late.allow",
            "  tier: late\n  selector: all()\n  ingress:\n  - action: Allow\n",
        ),
    ]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Allow");
    // Once the tier exists, its own order and default action apply.
    let g = with(&[
        tier("nosuch", 1.0, "Pass"),
        gnp(
            "nosuch.deny",
            "  tier: nosuch\n  selector: all()\n  ingress:\n  - action: Allow\n    protocol: UDP\n",
        ),
    ]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Allow");
}

#[test]
fn missing_profile_is_skipped_and_the_next_decides() {
    let mut docs = base();
    docs.push(pod_with_profiles(
        "ns1",
        "p",
        "10.0.1.7/32",
        &[("app", "p")],
        &["ghost", "kns.ns1"],
    ));
    let g = graph(&docs);
    let e = explain_conn(&g, "ns1/a", "ns1/p", "TCP", Some(80));
    assert_eq!(format!("{:?}", e.verdict), "Allow");
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["ingress"]["steps"][1]["stage"], "missingProfile");
    assert_eq!(json["ingress"]["steps"][1]["profile"], "ghost");
    // Only missing profiles: nothing allows, so it drops.
    let mut docs = base();
    docs.push(pod_with_profiles(
        "ns1",
        "q",
        "10.0.1.8/32",
        &[],
        &["ghost"],
    ));
    let g = graph(&docs);
    assert_eq!(verdict(&g, "ns1/a", "ns1/q", "TCP", Some(80)), "Deny");
}

fn profile(name: &str, ingress: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: {name}\nspec:\n  ingress:\n{ingress}"
    )
}

#[test]
fn pass_in_a_profile_ends_that_profile_and_the_next_one_decides() {
    let mut docs = base();
    docs.push(profile(
        "passer",
        "  - action: Pass\n    protocol: TCP\n  - action: Deny\n",
    ));
    docs.push(profile("denier", "  - action: Deny\n"));
    docs.push(pod_with_profiles(
        "ns1",
        "p",
        "10.0.1.7/32",
        &[],
        &["passer", "kns.ns1"],
    ));
    docs.push(pod_with_profiles(
        "ns1",
        "q",
        "10.0.1.8/32",
        &[],
        &["passer", "denier"],
    ));
    let g = graph(&docs);
    // TCP passes out of `passer` (its Deny is not reached); kns.ns1 allows.
    assert_eq!(verdict(&g, "ns1/a", "ns1/p", "TCP", Some(80)), "Allow");
    // UDP is not passed: `passer` denies.
    assert_eq!(verdict(&g, "ns1/a", "ns1/p", "UDP", Some(53)), "Deny");
    // Passed on to a profile that denies.
    assert_eq!(verdict(&g, "ns1/a", "ns1/q", "TCP", Some(80)), "Deny");
}

#[test]
fn named_port_no_endpoint_declares_matches_nothing() {
    let g = with(&[np(
        "ns1",
        "web",
        "  selector: app == 'b'\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [nosuchport]\n",
    )]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(8080)), "Deny");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Deny");
    // In notPorts it excludes nothing.
    let g = with(&[np(
        "ns1",
        "web",
        "  selector: app == 'b'\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      notPorts: [nosuchport]\n",
    )]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(8080)), "Allow");
}

#[test]
fn policy_whose_selector_matches_nothing_changes_nothing() {
    let g = with(&[gnp(
        "deny-ghosts",
        "  selector: app == 'ghost'\n  ingress:\n  - action: Deny\n  egress:\n  - action: Deny\n",
    )]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Allow");
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["ingress"]["steps"][0]["stage"], "noPolicy");
}

#[test]
fn unknown_endpoint_is_a_clear_error() {
    let g = with(&[]);
    let req = tortie_calc::ExplainRequest::new(
        tortie_calc::Peer::parse_endpoint("ns1/nope").unwrap(),
        tortie_calc::Peer::parse_endpoint("ns1/b").unwrap(),
        6,
        Some(80),
    );
    let err = tortie_calc::explain::explain(&g, &req).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown endpoint \"ns1/nope\": no WorkloadEndpoint with that metadata.name or spec.workload (and no HostEndpoint with that name)"
    );
}

#[test]
fn endpoint_found_by_metadata_name_or_workload() {
    let g = with(&[]);
    assert_eq!(
        verdict(&g, "ns1/node1-k8s-a-eth0", "ns1/b", "TCP", Some(80)),
        "Allow"
    );
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Allow");
}

#[test]
fn external_source_skips_egress() {
    let g = with(&[np(
        "ns1",
        "web",
        "  selector: app == 'b'\n  ingress:\n  - action: Allow\n    source:\n      nets: [192.0.2.0/24]\n",
    )]);
    let req = tortie_calc::ExplainRequest::new(
        tortie_calc::Peer::Ip("192.0.2.7".parse().unwrap()),
        tortie_calc::Peer::parse_endpoint("ns1/b").unwrap(),
        6,
        Some(443),
    );
    let e = tortie_calc::explain::explain(&g, &req).unwrap();
    assert_eq!(format!("{:?}", e.verdict), "Allow");
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["egress"]["steps"][0]["stage"], "external");
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["egress", "ingress", "verdict"]);
}

#[test]
fn host_endpoint_failsafe_ports_stay_open_under_deny_all() {
    let hep = "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: node1-eth0\n  labels: {role: host}\nspec:\n  node: node1\n  interfaceName: eth0\n  expectedIPs: [\"10.0.0.10\"]\n".to_string();
    let g = with(&[
        hep,
        gnp(
            "deny-host",
            "  selector: role == 'host'\n  ingress:\n  - action: Deny\n",
        ),
    ]);
    // From outside the cluster (a workload of the same node would meet
    // defaultEndpointToHostAction instead: the host endpoint's interface is not on its path).
    let from_outside = |port: u16| {
        let req = tortie_calc::ExplainRequest::new(
            tortie_calc::Peer::Ip("192.0.2.9".parse().unwrap()),
            tortie_calc::Peer::parse_endpoint("node1-eth0").unwrap(),
            6,
            Some(port),
        );
        format!(
            "{:?}",
            tortie_calc::explain::explain(&g, &req).unwrap().verdict
        )
    };
    assert_eq!(from_outside(22), "Allow");
    assert_eq!(from_outside(80), "Deny");
}

#[test]
fn plain_output_reads_like_a_sentence() {
    let g = with(&[np(
        "ns1",
        "isolate-b",
        "  selector: app == 'b'\n  types: [Ingress]\n",
    )]);
    let text = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80)).to_text();
    assert!(text.starts_with("TCP 10.0.1.1 -> 10.0.1.2 port 80 from workload endpoint ns1/node1-k8s-a-eth0 to workload endpoint ns1/node1-k8s-b-eth0 is denied."), "{text}");
    assert!(
        text.contains(
            "tier default selected the endpoint but no rule decided: tier default action Deny"
        ),
        "{text}"
    );
}

#[test]
fn kubernetes_network_policy_is_enforced_as_knp_default() {
    let knp = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: web\n  namespace: ns1\nspec:\n  podSelector:\n    matchLabels: {app: b}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {app: a}}\n    - namespaceSelector: {matchLabels: {team: two}}\n    ports:\n    - {port: 80}\n".to_string();
    let g = with(&[knp]);
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(80)), "Allow");
    assert_eq!(verdict(&g, "ns2/c", "ns1/b", "TCP", Some(80)), "Allow");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "TCP", Some(81)), "Deny");
    assert_eq!(verdict(&g, "ns1/a", "ns1/b", "UDP", Some(80)), "Deny");
    let e = explain_conn(&g, "ns1/a", "ns1/b", "TCP", Some(80));
    assert_eq!(
        e.ingress.steps[0].policy.as_deref(),
        Some("ns1/knp.default.web")
    );
}

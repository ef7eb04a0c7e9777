//! One good and one bad case (at least) for every validation rule.

use crate::document::tree::parse_stream;
use crate::error::FieldPath;
use crate::resource::{Resource, resource_from_tree};

fn parse(yaml: &str) -> Resource {
    let docs = parse_stream(yaml).expect("test YAML parses");
    let root = docs[0].root.as_ref().expect("a document");
    resource_from_tree(root, &FieldPath::root(), None).unwrap_or_else(|e| panic!("{e}"))
}

fn valid(yaml: &str) {
    let r = parse(yaml);
    if let Err(e) = r.validate() {
        panic!("expected valid, got {e}\n{yaml}");
    }
    let mut defaulted = r.clone();
    defaulted.apply_defaults();
    if let Err(e) = defaulted.validate() {
        panic!("expected valid after defaults, got {e}\n{yaml}");
    }
}

fn invalid(yaml: &str, path: &str, fragment: &str) {
    let r = parse(yaml);
    match r.validate() {
        Ok(()) => panic!("expected {path}: {fragment}, but it validated\n{yaml}"),
        Err(e) => {
            assert_eq!(
                e.path().map(ToString::to_string).as_deref(),
                Some(path),
                "{e}"
            );
            assert!(
                e.message().contains(fragment),
                "{e} should mention {fragment:?}"
            );
        }
    }
}

fn np(spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: ns\nspec:\n{spec}"
    )
}

fn gnp(spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: g\nspec:\n{spec}"
    )
}

fn ingress(rule: &str) -> String {
    np(&format!("  ingress:\n  - action: Allow\n{rule}"))
}

fn pool(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

fn kind(kind: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

#[test]
fn names_follow_dns_rules() {
    valid(&kind(
        "GlobalNetworkSet",
        "nets.example-1",
        "  nets: [10.0.0.0/8]\n",
    ));
    invalid(
        &kind("GlobalNetworkSet", "Nets", "  nets: []\n"),
        "metadata.name",
        "invalid name \"Nets\"",
    );
    invalid(
        &kind("GlobalNetworkSet", "a_b", "  nets: []\n"),
        "metadata.name",
        "invalid name",
    );
    invalid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {}\n",
        "metadata.name",
        "needs a name",
    );
    valid("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels:\n    team: a\n");
    invalid(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a.b\n",
        "metadata.name",
        "invalid name",
    );
}

#[test]
fn namespaces_only_on_namespaced_kinds() {
    invalid(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\n  namespace: x\nspec:\n  cidr: 10.0.0.0/16\n",
        "metadata.namespace",
        "cluster-wide",
    );
    invalid(
        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata:\n  name: s\n  namespace: Bad_NS\n",
        "metadata.namespace",
        "invalid namespace",
    );
    valid(
        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata:\n  name: s\nspec:\n  nets: [192.0.2.0/24]\n",
    );
}

#[test]
fn labels_and_annotations_are_checked() {
    valid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: s\n  labels:\n    app.kubernetes.io/name: web\n    empty: ''\n  annotations:\n    example.com/note: anything at all\n",
    );
    invalid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: s\n  labels:\n    bad key: x\n",
        "metadata.labels[\"bad key\"]",
        "invalid label key",
    );
    invalid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: s\n  labels:\n    app: -web\n",
        "metadata.labels.app",
        "invalid label value",
    );
    invalid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: s\n  annotations:\n    a/b/c: x\n",
        "metadata.annotations[\"a/b/c\"]",
        "invalid annotation key",
    );
    invalid(
        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata:\n  name: s\n  labels:\n    projectcalico.org/namespace: x\n",
        "metadata.labels[\"projectcalico.org/namespace\"]",
        "reserved",
    );
}

#[test]
fn policy_names_and_tier_prefix() {
    valid(&np("  tier: default\n"));
    valid(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: knp.default.allow-dns\n",
    );
    valid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: security.deny-all\nspec:\n  tier: security\n",
    );
    valid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: default.allow\n",
    );
    invalid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: deny-all\nspec:\n  tier: security\n",
        "metadata.name",
        "must start with \"security.\"",
    );
    invalid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: other.deny\n",
        "metadata.name",
        "not its tier",
    );
    invalid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: knp.default.x\n",
        "metadata.name",
        "not its tier",
    );
    invalid(&np("  tier: Bad\n"), "spec.tier", "invalid tier name");
}

#[test]
fn policy_selectors_parse_and_global_placement() {
    valid(&np(
        "  selector: role == 'db' && has(app)\n  serviceAccountSelector: team == 'a'\n",
    ));
    invalid(
        &np("  selector: role == \n"),
        "spec.selector",
        "invalid selector",
    );
    invalid(
        &np("  selector: global()\n"),
        "spec.selector",
        "only be used in an EntityRule namespaceSelector",
    );
    invalid(
        &gnp("  namespaceSelector: global()\n"),
        "spec.namespaceSelector",
        "only be used",
    );
    invalid(
        &gnp("  serviceAccountSelector: global()\n"),
        "spec.serviceAccountSelector",
        "only be used",
    );
    valid(&ingress(
        "    source:\n      namespaceSelector: global()\n      selector: type == 'hep'\n",
    ));
    invalid(
        &ingress("    source:\n      namespaceSelector: global() || a == 'b'\n"),
        "spec.ingress[0].source.namespaceSelector",
        "cannot be combined",
    );
    invalid(
        &ingress("    source:\n      selector: global()\n"),
        "spec.ingress[0].source.selector",
        "only be used",
    );
    invalid(
        &ingress("    destination:\n      notSelector: \"a in {'x'\"\n"),
        "spec.ingress[0].destination.notSelector",
        "column",
    );
}

#[test]
fn types_must_be_unique() {
    valid(&np("  types: [Ingress, Egress]\n"));
    invalid(
        &np("  types: [Ingress, Ingress]\n"),
        "spec.types[1]",
        "more than once",
    );
    invalid(
        &np("  performanceHints: [AssumeNeededOnEveryNode, AssumeNeededOnEveryNode]\n"),
        "spec.performanceHints[1]",
        "more than once",
    );
}

#[test]
fn numeric_ports_need_a_port_protocol_but_named_ports_do_not() {
    valid(&ingress(
        "    protocol: TCP\n    destination:\n      ports: [80, '8000:8080', http]\n",
    ));
    valid(&ingress(
        "    protocol: 132\n    destination:\n      ports: [9000]\n",
    ));
    valid(&ingress("    destination:\n      ports: [http, metrics]\n"));
    invalid(
        &ingress("    destination:\n      ports: [80]\n"),
        "spec.ingress[0].destination.ports",
        "must set protocol to TCP, UDP or SCTP",
    );
    invalid(
        &ingress("    protocol: ICMP\n    source:\n      notPorts: [80]\n"),
        "spec.ingress[0].source.notPorts",
        "TCP, UDP or SCTP",
    );
    invalid(
        &ingress("    protocol: ICMP\n    destination:\n      ports: [http]\n"),
        "spec.ingress[0].destination.ports",
        "TCP, UDP or SCTP",
    );
    invalid(
        &ingress("    destination:\n      ports: [Bad_Name]\n"),
        "spec.ingress[0].destination.ports[0]",
        "invalid port name",
    );
    let many: Vec<String> = (1..=51).map(|p| p.to_string()).collect();
    invalid(
        &ingress(&format!(
            "    protocol: TCP\n    destination:\n      ports: [{}]\n",
            many.join(", ")
        )),
        "spec.ingress[0].destination.ports",
        "more than the 50 allowed",
    );
}

#[test]
fn icmp_rules() {
    valid(&ingress(
        "    protocol: ICMP\n    icmp:\n      type: 8\n      code: 0\n",
    ));
    valid(&ingress(
        "    protocol: ICMPv6\n    ipVersion: 6\n    notICMP:\n      type: 128\n",
    ));
    valid(&ingress("    protocol: 1\n    icmp:\n      type: 254\n"));
    invalid(
        &ingress("    protocol: ICMP\n    icmp:\n      type: 255\n"),
        "spec.ingress[0].icmp.type",
        "out of range (0-254)",
    );
    invalid(
        &ingress("    protocol: ICMP\n    icmp:\n      type: 3\n      code: 256\n"),
        "spec.ingress[0].icmp.code",
        "out of range (0-255)",
    );
    invalid(
        &ingress("    protocol: ICMP\n    icmp:\n      code: 1\n"),
        "spec.ingress[0].icmp.code",
        "without an ICMP type",
    );
    invalid(
        &ingress("    protocol: TCP\n    icmp:\n      type: 8\n"),
        "spec.ingress[0].icmp",
        "require protocol ICMP or ICMPv6",
    );
    invalid(
        &ingress("    notICMP:\n      type: 8\n"),
        "spec.ingress[0].notICMP",
        "require protocol",
    );
    invalid(
        &ingress("    protocol: ICMP\n    ipVersion: 6\n"),
        "spec.ingress[0].protocol",
        "requires ipVersion 4",
    );
    invalid(
        &ingress("    notProtocol: ICMPv6\n    ipVersion: 4\n"),
        "spec.ingress[0].notProtocol",
        "requires ipVersion 6",
    );
}

#[test]
fn rule_networks_agree_on_a_family() {
    valid(&ingress(
        "    ipVersion: 4\n    source:\n      nets: [10.0.0.0/8]\n    destination:\n      notNets: [10.1.0.0/16]\n",
    ));
    valid(&ingress("    source:\n      nets: ['2001:db8::/32']\n"));
    invalid(
        &ingress("    source:\n      nets: [10.0.0.0/8, '2001:db8::/32']\n"),
        "spec.ingress[0].source.nets[1]",
        "both IPv4 and IPv6",
    );
    invalid(
        &ingress("    ipVersion: 6\n    destination:\n      nets: [10.0.0.0/8]\n"),
        "spec.ingress[0].destination.nets[0]",
        "does not match the rule's ipVersion",
    );
    invalid(
        &ingress("    source:\n      notNets: [0.0.0.0/0]\n"),
        "spec.ingress[0].source.notNets[0]",
        "excludes every address",
    );
}

#[test]
fn services_rules() {
    valid(&np(
        "  egress:\n  - action: Allow\n    destination:\n      services:\n        name: kube-dns\n        namespace: kube-system\n",
    ));
    valid(&np(
        "  ingress:\n  - action: Allow\n    protocol: TCP\n    source:\n      services:\n        name: frontend\n    destination:\n      ports: [80]\n",
    ));
    invalid(
        &np(
            "  egress:\n  - action: Allow\n    destination:\n      services:\n        name: db\n      selector: a == 'b'\n",
        ),
        "spec.egress[0].destination.services",
        "selector/notSelector",
    );
    invalid(
        &np(
            "  egress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      services:\n        name: db\n      ports: [5432]\n",
        ),
        "spec.egress[0].destination.ports",
        "cannot be specified with destination services",
    );
    invalid(
        &np("  egress:\n  - action: Allow\n    source:\n      services:\n        name: db\n"),
        "spec.egress[0].source.services",
        "egress rule's source",
    );
    invalid(
        &np("  ingress:\n  - action: Allow\n    destination:\n      services:\n        name: db\n"),
        "spec.ingress[0].destination.services",
        "ingress rule's destination",
    );
    invalid(
        &np(
            "  egress:\n  - action: Allow\n    destination:\n      services:\n        namespace: x\n",
        ),
        "spec.egress[0].destination.services.name",
        "must name a service",
    );
    invalid(
        &gnp("  egress:\n  - action: Allow\n    destination:\n      services:\n        name: db\n"),
        "spec.egress[0].destination.services.namespace",
        "must name a namespace",
    );
}

#[test]
fn http_rules() {
    valid(&ingress(
        "    http:\n      methods: [GET]\n      paths:\n      - exact: /health\n      - prefix: /api\n",
    ));
    invalid(
        &np("  ingress:\n  - action: Deny\n    http:\n      methods: [GET]\n"),
        "spec.ingress[0].http",
        "only valid on Allow rules",
    );
    invalid(
        &ingress("    protocol: UDP\n    http:\n      methods: [GET]\n"),
        "spec.ingress[0].http",
        "protocol TCP",
    );
    invalid(
        &ingress("    http:\n      paths:\n      - exact: /a\n        prefix: /b\n"),
        "spec.ingress[0].http.paths[0]",
        "exactly one",
    );
    invalid(
        &np("  egress:\n  - action: Allow\n    http:\n      methods: [GET]\n"),
        "spec.egress[0].http",
        "not allowed in egress",
    );
}

#[test]
fn global_policy_mode_combinations() {
    valid(&gnp(
        "  preDNAT: true\n  applyOnForward: true\n  ingress:\n  - action: Deny\n",
    ));
    valid(&gnp(
        "  doNotTrack: true\n  applyOnForward: true\n  egress:\n  - action: Allow\n",
    ));
    invalid(
        &gnp("  preDNAT: true\n  doNotTrack: true\n  applyOnForward: true\n"),
        "spec.preDNAT",
        "cannot both be true",
    );
    invalid(
        &gnp("  preDNAT: true\n"),
        "spec.applyOnForward",
        "must be true",
    );
    invalid(
        &gnp("  doNotTrack: true\n"),
        "spec.applyOnForward",
        "must be true",
    );
    invalid(
        &gnp("  preDNAT: true\n  applyOnForward: true\n  egress:\n  - action: Allow\n"),
        "spec.egress",
        "cannot have egress rules",
    );
    invalid(
        &gnp("  preDNAT: true\n  applyOnForward: true\n  types: [Ingress, Egress]\n"),
        "spec.types[1]",
        "Egress type",
    );
}

#[test]
fn tiers() {
    valid(&kind(
        "Tier",
        "security",
        "  order: 100\n  defaultAction: Pass\n",
    ));
    valid(&kind("Tier", "default", "  order: 1000000\n"));
    invalid(
        &kind("Tier", "sec.ops", "  order: 1\n"),
        "metadata.name",
        "invalid tier name",
    );
    invalid(
        &kind("Tier", "default", "  order: 5\n"),
        "spec.order",
        "must be 1000000",
    );
    invalid(
        &kind("Tier", "kube-admin", "  defaultAction: Deny\n"),
        "spec.defaultAction",
        "must be Pass",
    );
    invalid(
        &kind("Tier", "t", "  order: .nan\n"),
        "spec.order",
        "finite",
    );
}

#[test]
fn profiles() {
    valid(&kind(
        "Profile",
        "kns.default",
        "  ingress:\n  - action: Allow\n  labelsToApply:\n    pcns.projectcalico.org/name: default\n",
    ));
    invalid(
        &kind("Profile", "p", "  labelsToApply:\n    'a b': c\n"),
        "spec.labelsToApply[\"a b\"]",
        "invalid label key",
    );
    invalid(
        &kind(
            "Profile",
            "p",
            "  egress:\n  - action: Allow\n    destination:\n      ports: [80]\n",
        ),
        "spec.egress[0].destination.ports",
        "protocol",
    );
}

#[test]
fn ip_pools() {
    valid(&pool(
        "p",
        "  cidr: 10.244.0.0/16\n  ipipMode: Always\n  natOutgoing: true\n",
    ));
    valid(&pool(
        "p",
        "  cidr: 2001:db8::/48\n  vxlanMode: Always\n  blockSize: 116\n",
    ));
    valid(&pool("p", "  cidr: 10.0.0.0/28\n  blockSize: 28\n"));
    valid(&pool("p", "  cidr: 10.0.0.0/28\n  disabled: true\n"));
    invalid(
        &pool("p", "  cidr: 10.244.1.0/16\n"),
        "spec.cidr",
        "not strictly masked",
    );
    invalid(
        &pool("p", "  cidr: 169.254.0.0/24\n"),
        "spec.cidr",
        "link-local",
    );
    invalid(&pool("p", "  cidr: fe80::/64\n"), "spec.cidr", "link-local");
    invalid(
        &pool("p", "  cidr: 10.0.0.0/16\n  blockSize: 19\n"),
        "spec.blockSize",
        "out of range for an IPv4 pool (20-32)",
    );
    invalid(
        &pool("p", "  cidr: 10.0.0.0/16\n  blockSize: 33\n"),
        "spec.blockSize",
        "20-32",
    );
    invalid(
        &pool("p", "  cidr: 2001:db8::/48\n  blockSize: 26\n"),
        "spec.blockSize",
        "116-128",
    );
    invalid(
        &pool("p", "  cidr: 10.0.0.0/28\n"),
        "spec.cidr",
        "smaller than one block (/26)",
    );
    invalid(
        &pool("p", "  cidr: 2001:db8::/48\n  ipipMode: CrossSubnet\n"),
        "spec.ipipMode",
        "IPv6",
    );
    invalid(
        &pool(
            "p",
            "  cidr: 10.0.0.0/16\n  ipipMode: Always\n  vxlanMode: CrossSubnet\n",
        ),
        "spec.ipipMode",
        "cannot both be enabled",
    );
    invalid(
        &pool("p", "  cidr: 10.0.0.0/16\n  nodeSelector: 'a =='\n"),
        "spec.nodeSelector",
        "invalid selector",
    );
    invalid(
        &pool(
            "p",
            "  cidr: 10.0.0.0/16\n  allowedUses: [Workload, Workload]\n",
        ),
        "spec.allowedUses[1]",
        "more than once",
    );
    invalid(
        &pool(
            "p",
            "  cidr: 10.0.0.0/16\n  allowedUses: [LoadBalancer, Tunnel]\n",
        ),
        "spec.allowedUses",
        "cannot be combined",
    );
    invalid(
        &pool(
            "p",
            "  cidr: 10.0.0.0/16\n  allowedUses: [LoadBalancer]\n  vxlanMode: Always\n",
        ),
        "spec.allowedUses",
        "IP-in-IP or VXLAN",
    );
    invalid(
        &pool(
            "p",
            "  cidr: 10.0.0.0/16\n  allowedUses: [LoadBalancer]\n  nodeSelector: a == 'b'\n",
        ),
        "spec.nodeSelector",
        "all()",
    );
    valid(&pool(
        "p",
        "  cidr: 10.0.0.0/16\n  allowedUses: [LoadBalancer]\n  nodeSelector: all()\n",
    ));
}

#[test]
fn ipam_configuration() {
    valid(&kind(
        "IPAMConfiguration",
        "default",
        "  strictAffinity: true\n  autoAllocateBlocks: false\n  maxBlocksPerHost: 4\n",
    ));
    invalid(
        &kind("IPAMConfiguration", "other", "  strictAffinity: true\n"),
        "metadata.name",
        "named \"default\"",
    );
    invalid(
        &kind(
            "IPAMConfiguration",
            "default",
            "  strictAffinity: false\n  autoAllocateBlocks: false\n",
        ),
        "spec.autoAllocateBlocks",
        "strictAffinity is false",
    );
    invalid(
        &kind(
            "IPAMConfiguration",
            "default",
            "  ipCooldownSeconds: 1201\n",
        ),
        "spec.ipCooldownSeconds",
        "0-1200",
    );
}

#[test]
fn bgp_configuration() {
    valid(&kind(
        "BGPConfiguration",
        "default",
        "  asNumber: 65000\n  nodeToNodeMeshEnabled: false\n  serviceClusterIPs:\n  - cidr: 10.96.0.0/12\n  communities:\n  - name: bgp-large-community\n    value: 63400:300:100\n  prefixAdvertisements:\n  - cidr: 172.218.4.0/26\n    communities: [bgp-large-community, '63400:120']\n",
    ));
    valid(&kind(
        "BGPConfiguration",
        "default",
        "  nodeMeshMaxRestartTime: 120s\n  nodeMeshPassword:\n    secretKeyRef:\n      name: bgp-secrets\n      key: mesh\n",
    ));
    invalid(
        &kind(
            "BGPConfiguration",
            "default",
            "  communities:\n  - name: c\n    value: '70000:1'\n",
        ),
        "spec.communities[0].value",
        "invalid community",
    );
    invalid(
        &kind(
            "BGPConfiguration",
            "default",
            "  prefixAdvertisements:\n  - cidr: 10.0.0.0/8\n    communities: [missing]\n",
        ),
        "spec.prefixAdvertisements[0].communities[0]",
        "neither defined",
    );
    invalid(
        &kind(
            "BGPConfiguration",
            "node.a",
            "  nodeMeshMaxRestartTime: 120s\n",
        ),
        "spec.nodeMeshMaxRestartTime",
        "only be set on the \"default\"",
    );
    invalid(
        &kind(
            "BGPConfiguration",
            "default",
            "  nodeToNodeMeshEnabled: false\n  nodeMeshMaxRestartTime: 120s\n",
        ),
        "spec.nodeMeshMaxRestartTime",
        "requires nodeToNodeMeshEnabled",
    );
    invalid(
        &kind(
            "BGPConfiguration",
            "default",
            "  nodeMeshMaxRestartTime: 2 minutes\n",
        ),
        "spec.nodeMeshMaxRestartTime",
        "invalid duration",
    );
    invalid(
        &kind("BGPConfiguration", "default", "  listenPort: 0\n"),
        "spec.listenPort",
        "1-65535",
    );
    invalid(
        &kind(
            "BGPConfiguration",
            "default",
            "  localWorkloadPeeringIPV4: '2001:db8::1'\n",
        ),
        "spec.localWorkloadPeeringIPV4",
        "not an IPv4",
    );
}

#[test]
fn bgp_peers() {
    valid(&kind(
        "BGPPeer",
        "rack1-tor",
        "  peerIP: 192.0.2.1\n  asNumber: 64567\n  node: rack1-host1\n",
    ));
    valid(&kind(
        "BGPPeer",
        "rr-mesh",
        "  nodeSelector: all()\n  peerSelector: route-reflector == 'true'\n",
    ));
    valid(&kind(
        "BGPPeer",
        "v6",
        "  peerIP: '[2001:db8::1]:1179'\n  asNumber: '1.10'\n  keepaliveTime: 30s\n  numAllowedLocalASNumbers: 1\n",
    ));
    invalid(
        &kind("BGPPeer", "x", "  node: a\n  nodeSelector: all()\n"),
        "spec.node",
        "nodeSelector",
    );
    invalid(
        &kind(
            "BGPPeer",
            "x",
            "  peerIP: 192.0.2.1\n  peerSelector: all()\n",
        ),
        "spec.peerIP",
        "peerSelector",
    );
    invalid(
        &kind("BGPPeer", "x", "  asNumber: 65000\n  peerSelector: all()\n"),
        "spec.asNumber",
        "peerSelector",
    );
    invalid(
        &kind("BGPPeer", "x", "  peerIP: tor-1\n"),
        "spec.peerIP",
        "invalid peerIP",
    );
    invalid(
        &kind("BGPPeer", "x", "  reachableBy: 10.0.0.1\n"),
        "spec.reachableBy",
        "requires peerIP",
    );
    invalid(
        &kind("BGPPeer", "x", "  localWorkloadSelector: a == 'b'\n"),
        "spec.asNumber",
        "requires asNumber",
    );
    invalid(
        &kind(
            "BGPPeer",
            "x",
            "  peerIP: 192.0.2.1\n  maxRestartTime: soon\n",
        ),
        "spec.maxRestartTime",
        "invalid duration",
    );
    invalid(
        &kind(
            "BGPPeer",
            "x",
            "  peerIP: 192.0.2.1\n  password:\n    secretKeyRef:\n      name: ''\n      key: k\n",
        ),
        "spec.password.secretKeyRef.name",
        "required",
    );
}

#[test]
fn nodes() {
    valid(&kind(
        "Node",
        "node1",
        "  bgp:\n    ipv4Address: 10.0.0.5/24\n    ipv6Address: 2001:db8::5/64\n    routeReflectorClusterID: 224.0.0.1\n  ipv4VXLANTunnelAddr: 10.244.0.1\n  vxlanTunnelMACAddr: 66:c2:e3:11:22:33\n",
    ));
    invalid(
        &kind("Node", "node1", "  bgp: {}\n"),
        "spec.bgp",
        "must not be empty",
    );
    invalid(
        &kind("Node", "node1", "  bgp:\n    ipv4Address: 2001:db8::5/64\n"),
        "spec.bgp.ipv4Address",
        "not an IPv4",
    );
    invalid(
        &kind(
            "Node",
            "node1",
            "  bgp:\n    routeReflectorClusterID: rr1\n",
        ),
        "spec.bgp.routeReflectorClusterID",
        "IPv4 form",
    );
    invalid(
        &kind("Node", "node1", "  vxlanTunnelMACAddr: nope\n"),
        "spec.vxlanTunnelMACAddr",
        "invalid MAC",
    );
}

#[test]
fn host_endpoints() {
    valid(&kind(
        "HostEndpoint",
        "node1-eth0",
        "  node: node1\n  interfaceName: eth0\n  expectedIPs: [192.0.2.10]\n  ports:\n  - name: ssh\n    protocol: TCP\n    port: 22\n",
    ));
    valid(&kind(
        "HostEndpoint",
        "node1-all",
        "  node: node1\n  interfaceName: '*'\n",
    ));
    invalid(
        &kind("HostEndpoint", "h", "  interfaceName: eth0\n"),
        "spec.node",
        "needs its node",
    );
    invalid(
        &kind("HostEndpoint", "h", "  node: n\n"),
        "spec.interfaceName",
        "expectedIPs",
    );
    invalid(
        &kind(
            "HostEndpoint",
            "h",
            "  node: n\n  interfaceName: a-very-long-interface\n",
        ),
        "spec.interfaceName",
        "invalid interface name",
    );
    invalid(
        &kind(
            "HostEndpoint",
            "h",
            "  node: n\n  interfaceName: eth0\n  ports:\n  - name: ping\n    protocol: ICMP\n    port: 1\n",
        ),
        "spec.ports[0].protocol",
        "has no ports",
    );
}

#[test]
fn workload_endpoints() {
    let wep = |spec: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: node1-k8s-web--0-eth0\n  namespace: prod\nspec:\n  node: node1\n{spec}"
        )
    };
    valid(&wep(
        "  orchestrator: k8s\n  pod: web-0\n  endpoint: eth0\n  containerID: abc123\n  ipNetworks: [10.244.1.5/32, 'fd00::5/128']\n  ipNATs:\n  - internalIP: 10.244.1.5\n    externalIP: 192.0.2.50\n  interfaceName: cali0123456789a\n  mac: ee:ee:ee:ee:ee:ee\n  profiles: [kns.prod]\n  ports:\n  - name: http\n    protocol: TCP\n    port: 8080\n",
    ));
    invalid(
        &wep("  ipNetworks: [10.244.1.0/24]\n"),
        "spec.ipNetworks[0]",
        "/32 or /128",
    );
    invalid(
        &wep(
            "  ipNetworks: [10.244.1.5/32]\n  ipNATs:\n  - internalIP: 10.244.1.6\n    externalIP: 192.0.2.50\n",
        ),
        "spec.ipNATs[0].internalIP",
        "not one of",
    );
    invalid(
        &wep("  ipv4Gateway: 'fd00::1'\n"),
        "spec.ipv4Gateway",
        "not an IPv4",
    );
    invalid(
        &wep("  containerID: 'abc/123'\n"),
        "spec.containerID",
        "invalid container ID",
    );
    invalid(
        &wep("  ports:\n  - protocol: UDP\n    port: 53\n"),
        "spec.ports[0].name",
        "needs a name",
    );
    valid(&wep(
        "  ports:\n  - protocol: UDP\n    port: 53\n    hostPort: 5353\n",
    ));
    valid(&wep(
        "  orchestrator: k8s\n  pod: web-0\n  endpoint: eth0\n",
    ));
    invalid(
        &wep("  orchestrator: k8s\n  pod: web-1\n  endpoint: eth0\n"),
        "metadata.name",
        "expected \"node1-k8s-web--1-eth0\"",
    );
    invalid(
        &wep("  orchestrator: openstack\n  workload: vm-1\n  endpoint: tap0\n"),
        "metadata.name",
        "expected \"node1-openstack-vm--1-tap0\"",
    );
}

#[test]
fn felix_configuration() {
    valid(&kind(
        "FelixConfiguration",
        "default",
        "  ipv6Support: false\n  logSeverityScreen: Info\n  bpfEnabled: false\n  iptablesBackend: Auto\n  failsafeInboundHostPorts:\n  - protocol: TCP\n    port: 22\n  kubeNodePortRanges: ['30000:32767']\n",
    ));
    invalid(
        &kind("FelixConfiguration", "default", "  ipv6Suport: false\n"),
        "spec.ipv6Suport",
        "unknown field",
    );
    invalid(
        &kind(
            "FelixConfiguration",
            "default",
            "  failsafeInboundHostPorts:\n  - protocol: ICMP\n    port: 1\n",
        ),
        "spec.failsafeInboundHostPorts[0].protocol",
        "has no ports",
    );
    invalid(
        &kind(
            "FelixConfiguration",
            "default",
            "  kubeNodePortRanges: [http]\n",
        ),
        "spec.kubeNodePortRanges[0]",
        "named",
    );
    invalid(
        &kind(
            "FelixConfiguration",
            "default",
            "  natOutgoingAddress: '2001:db8::1'\n",
        ),
        "spec.natOutgoingAddress",
        "IPv4",
    );
}

#[test]
fn cluster_information_is_a_singleton() {
    valid(&kind(
        "ClusterInformation",
        "default",
        "  clusterGUID: abc\n  datastoreReady: true\n",
    ));
    invalid(
        &kind("ClusterInformation", "x", "  clusterGUID: abc\n"),
        "metadata.name",
        "named \"default\"",
    );
}

#[test]
fn kubernetes_network_policies() {
    let knp = |spec: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: allow\n  namespace: prod\nspec:\n{spec}"
        )
    };
    valid(&knp(
        "  podSelector:\n    matchLabels:\n      app: web\n  policyTypes: [Ingress, Egress]\n  ingress:\n  - from:\n    - namespaceSelector: {}\n      podSelector:\n        matchExpressions:\n        - key: role\n          operator: In\n          values: [fe]\n    - ipBlock:\n        cidr: 10.0.0.0/8\n        except: [10.1.0.0/16]\n    ports:\n    - protocol: TCP\n      port: 80\n      endPort: 90\n    - port: http\n  egress:\n  - to: []\n",
    ));
    invalid(
        &knp(
            "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/8\n      podSelector: {}\n",
        ),
        "spec.ingress[0].from[0]",
        "cannot be combined",
    );
    invalid(
        &knp("  podSelector: {}\n  ingress:\n  - from:\n    - {}\n"),
        "spec.ingress[0].from[0]",
        "needs podSelector",
    );
    invalid(
        &knp(
            "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock:\n        cidr: 10.0.0.0/8\n        except: [192.168.0.0/16]\n",
        ),
        "spec.egress[0].to[0].ipBlock.except[0]",
        "strictly inside",
    );
    invalid(
        &knp("  podSelector: {}\n  ingress:\n  - ports:\n    - port: 90\n      endPort: 80\n"),
        "spec.ingress[0].ports[0].endPort",
        "between port 90",
    );
    invalid(
        &knp("  podSelector: {}\n  ingress:\n  - ports:\n    - port: http\n      endPort: 80\n"),
        "spec.ingress[0].ports[0].endPort",
        "numeric port",
    );
    invalid(
        &knp("  podSelector: {}\n  ingress:\n  - ports:\n    - port: 0\n"),
        "spec.ingress[0].ports[0].port",
        "out of range",
    );
    invalid(
        &knp(
            "  podSelector:\n    matchExpressions:\n    - key: a\n      operator: Exists\n      values: [x]\n",
        ),
        "spec.podSelector.matchExpressions[0].values",
        "takes no values",
    );
    invalid(
        &knp("  podSelector:\n    matchExpressions:\n    - key: a\n      operator: In\n"),
        "spec.podSelector.matchExpressions[0].values",
        "needs values",
    );
    invalid(
        &knp("  podSelector: {}\n  policyTypes: [Egress, Egress]\n"),
        "spec.policyTypes[1]",
        "more than once",
    );
}

#[test]
fn bgp_filters() {
    let good = kind(
        "BGPFilter",
        "tor-only",
        "  exportV4:\n  - action: Accept\n    matchOperator: In\n    cidr: 198.19.0.0/16\n    prefixLength:\n      min: 24\n      max: 26\n  - action: Reject\n    source: RemotePeers\n  importV4:\n  - action: Reject\n    matchOperator: Equal\n    cidr: 0.0.0.0/0\n  exportV6:\n  - action: Reject\n    interface: 'eth*'\n  importV6:\n  - action: Accept\n    matchOperator: NotIn\n    cidr: 2001:db8::/32\n",
    );
    valid(&good);
    // Round trip: JSON and YAML forms parse back to the same resource.
    let r = parse(&good);
    let Resource::BgpFilter(f) = &r else {
        panic!("not a BGPFilter: {r:?}")
    };
    assert_eq!(f.spec.export_v4.len(), 2);
    assert_eq!(
        f.spec.export_v4[0].prefix_length,
        Some(crate::types::BgpFilterPrefixLength {
            min: Some(24),
            max: Some(26)
        })
    );
    assert_eq!(Resource::from_json(&r.to_json()).unwrap(), r);
    assert_eq!(parse(&r.to_yaml()), r);
    invalid(
        &kind(
            "BGPFilter",
            "x",
            "  exportV4:\n  - action: Accept\n    cidr: 198.19.0.0/16\n",
        ),
        "spec.exportV4[0].matchOperator",
        "required",
    );
    invalid(
        &kind(
            "BGPFilter",
            "x",
            "  importV4:\n  - action: Accept\n    matchOperator: In\n",
        ),
        "spec.importV4[0].cidr",
        "required",
    );
    invalid(
        &kind(
            "BGPFilter",
            "x",
            "  exportV6:\n  - action: Accept\n    matchOperator: In\n    cidr: 198.19.0.0/16\n",
        ),
        "spec.exportV6[0].cidr",
        "IPv6",
    );
    invalid(
        &kind(
            "BGPFilter",
            "x",
            "  exportV4:\n  - action: Accept\n    matchOperator: In\n    cidr: 198.19.0.0/16\n    prefixLength:\n      min: 33\n",
        ),
        "spec.exportV4[0].prefixLength.min",
        "beyond 32",
    );
    invalid(
        &kind(
            "BGPFilter",
            "x",
            "  exportV4:\n  - action: Accept\n    matchOperator: In\n    cidr: 198.19.0.0/16\n    prefixLength:\n      min: 28\n      max: 24\n",
        ),
        "spec.exportV4[0].prefixLength",
        "greater than max",
    );
    invalid(
        &kind(
            "BGPFilter",
            "x",
            "  exportV4:\n  - action: Accept\n    prefixLength:\n      max: 24\n",
        ),
        "spec.exportV4[0].prefixLength",
        "requires cidr",
    );
}

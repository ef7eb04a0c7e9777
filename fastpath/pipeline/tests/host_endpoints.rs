//! Host endpoint policy on new flows, with Calico's semantics: normal programs police only
//! the host's own traffic, `applyOnForward` programs police forwarded traffic (and allow
//! when absent), workloads keep their own programs, and flows the host opens to a local
//! workload skip the workload's ingress program.

mod common;

use std::net::Ipv4Addr;

use common::*;
use tortie_abi::*;
use tortie_classifier as cls;
use tortie_pipeline::compile::CompiledProgram;
use tortie_pipeline::{Disposition, DropReason};

const HEP: u32 = 9;
const PROG_DENY_ALL: ProgramId = ProgramId(60);
const PROG_DENY_TCP80: ProgramId = ProgramId(61);
const OUTSIDE2: Ipv4Addr = Ipv4Addr::new(198, 18, 201, 1);

fn drop_of(o: &Out) -> Option<DropReason> {
    match o.disposition {
        Disposition::Drop(r) => Some(r),
        Disposition::Tx(_) => None,
    }
}

/// Denies TCP port 80 and allows the rest (rules 600, 601).
fn deny_tcp80() -> PolicyProgram {
    PolicyProgram {
        id: PROG_DENY_TCP80,
        tiers: vec![Tier {
            default_action: TierDefault::Deny,
            policies: vec![Policy {
                rules: vec![
                    Rule {
                        id: RuleId(600),
                        action: Action::Deny,
                        matches: RuleMatch {
                            protocol: Some(6),
                            dst_ports: PortMatch {
                                ranges: vec![PortRange { lo: 80, hi: 80 }],
                                not_ranges: vec![],
                            },
                            ..RuleMatch::default()
                        },
                    },
                    allow_rule(601),
                ],
            }],
        }],
        profiles: vec![],
    }
}

/// The standard tables plus a host endpoint on the uplink whose normal programs are
/// `ingress` / `egress` and whose forward programs are `fwd_in` / `fwd_out`.
fn with_hep(
    ingress: ProgramId,
    egress: ProgramId,
    fwd_in: Option<ProgramId>,
    fwd_out: Option<ProgramId>,
) -> Tables {
    let mut t = tables();
    t.programs.push(PolicyProgram {
        id: PROG_DENY_ALL,
        tiers: vec![],
        profiles: vec![],
    });
    t.programs.push(deny_tcp80());
    t.endpoints.push(Endpoint {
        id: EndpointId(HEP),
        if_index: UPLINK,
        kind: EndpointKind::Host,
        mac: UPLINK_MAC,
        addrs: vec![prefix(NODE, 32)],
        ingress: Some(ingress),
        egress: Some(egress),
        untracked_ingress: None,
        untracked_egress: None,
        pre_dnat: None,
        forward_ingress: fwd_in,
        forward_egress: fwd_out,
    });
    t
}

fn syn(src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, sp: u16, dp: u16) -> Vec<u8> {
    tcp4(src_mac, src, dst, sp, dp, "S", 64)
}

#[test]
fn normal_host_endpoint_programs_police_only_the_hosts_own_traffic() {
    let mut h = Harness::new(&with_hep(PROG_DENY_ALL, PROG_DENY_ALL, None, None));
    // Forwarded, no applyOnForward policy: allowed both ways, though the normal programs
    // deny everything.
    let o = h.one(IF_A, syn(MAC_A, A, OUTSIDE, 40000, 443));
    assert_eq!(o.tx_if(), Some(UPLINK), "{o:?}");
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, B, 40001, 443));
    assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
    // To the host: the normal ingress program.
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, NODE, 40002, 8080));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
    // From the host out of the uplink: the normal egress program.
    let o = h.one(HOST_IF, syn([2, 0, 0, 0, 9, 9], NODE, OUTSIDE, 40003, 443));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
}

#[test]
fn host_traffic_passes_normal_programs_that_allow_and_ignores_forward_ones() {
    // Normal programs allow; forward programs deny everything: the host's own flows pass.
    let mut h = Harness::new(&with_hep(
        PROG_ALLOW,
        PROG_ALLOW,
        Some(PROG_DENY_ALL),
        Some(PROG_DENY_ALL),
    ));
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, NODE, 40010, 8080));
    assert_eq!(o.tx_if(), Some(HOST_IF), "{o:?}");
    let o = h.one(HOST_IF, syn([2, 0, 0, 0, 9, 9], NODE, OUTSIDE, 40011, 443));
    assert_eq!(o.tx_if(), Some(UPLINK), "{o:?}");
    // ...while forwarded flows meet the deny-all forward programs.
    let o = h.one(IF_A, syn(MAC_A, A, OUTSIDE, 40012, 443));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, B, 40013, 443));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
}

#[test]
fn forward_egress_polices_workload_traffic_leaving_by_the_uplink() {
    let mut h = Harness::new(&with_hep(
        PROG_DENY_ALL,
        PROG_DENY_ALL,
        None,
        Some(PROG_DENY_TCP80),
    ));
    let o = h.one(IF_A, syn(MAC_A, A, OUTSIDE, 40020, 80));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
    let o = h.one(IF_A, syn(MAC_A, A, OUTSIDE, 40021, 443));
    assert_eq!(o.tx_if(), Some(UPLINK), "{o:?}");
    // To another node's workload: also out of the uplink, also forwarded.
    let o = h.one(IF_A, syn(MAC_A, A, REMOTE_SAME_SUBNET, 40022, 80));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
    let o = h.one(IF_A, syn(MAC_A, A, REMOTE_SAME_SUBNET, 40023, 443));
    assert_eq!(o.tx_if(), Some(UPLINK), "{o:?}");
    // Between local workloads no host endpoint is involved.
    let o = h.one(IF_A, syn(MAC_A, A, B, 40024, 80));
    assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
}

#[test]
fn forward_ingress_polices_traffic_to_workloads_which_keep_their_own_policy() {
    let mut h = Harness::new(&with_hep(
        PROG_DENY_ALL,
        PROG_DENY_ALL,
        Some(PROG_DENY_TCP80),
        None,
    ));
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, B, 40030, 80));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
    // The host endpoint allows port 23, B's own ingress denies it.
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, B, 40031, 23));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, B, 40032, 443));
    assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
    // A floating IP is forwarded too: the forward program sees the internal address.
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, FLOATING, 40033, 80));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
}

#[test]
fn host_endpoint_to_host_endpoint_forwarding_uses_both_forward_programs() {
    // In by the uplink, routed back out of it: forward ingress, then forward egress.
    let mut h = Harness::new(&with_hep(
        PROG_DENY_ALL,
        PROG_DENY_ALL,
        None,
        Some(PROG_DENY_TCP80),
    ));
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE2, OUTSIDE, 40040, 80));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE2, OUTSIDE, 40041, 443));
    assert_eq!(o.tx_if(), Some(UPLINK), "{o:?}");
    let mut h = Harness::new(&with_hep(
        PROG_DENY_ALL,
        PROG_DENY_ALL,
        Some(PROG_DENY_TCP80),
        None,
    ));
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE2, OUTSIDE, 40042, 80));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
}

#[test]
fn host_originated_flows_skip_the_workloads_ingress_program() {
    for t in [tables(), with_hep(PROG_DENY_ALL, PROG_DENY_ALL, None, None)] {
        let mut h = Harness::new(&t);
        // B's ingress denies TCP 23, but the host opened the flow (a health probe).
        let o = h.one(HOST_IF, syn([2, 0, 0, 0, 9, 9], NODE, B, 40050, 23));
        assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
        // The same port from outside is denied by B's ingress.
        let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, B, 40051, 23));
        assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
        // And from a workload.
        let o = h.one(IF_A, syn(MAC_A, A, B, 40052, 23));
        assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
    }
}

#[test]
fn a_table_endpoint_on_the_host_interface_keeps_its_programs() {
    // If control ever puts an endpoint on the host interface, the fastpath does not
    // replace it with its own host-interface entry.
    let mut t = tables();
    t.programs.push(PolicyProgram {
        id: PROG_DENY_ALL,
        tiers: vec![],
        profiles: vec![],
    });
    t.endpoints.push(Endpoint {
        id: EndpointId(20),
        if_index: HOST_IF,
        kind: EndpointKind::Host,
        mac: [2, 0, 0, 0, 9, 9],
        addrs: vec![],
        ingress: Some(PROG_DENY_ALL),
        egress: Some(PROG_DENY_ALL),
        untracked_ingress: None,
        untracked_egress: None,
        pre_dnat: None,
        forward_ingress: Some(PROG_DENY_ALL),
        forward_egress: None,
    });
    let mut h = Harness::new(&t);
    let o = h.one(HOST_IF, syn([2, 0, 0, 0, 9, 9], NODE, B, 40060, 443));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
}

fn rule(id: u32, action: Action) -> Rule {
    Rule {
        id: RuleId(id),
        action,
        matches: RuleMatch::default(),
    }
}

fn decide(profiles: Vec<Vec<Rule>>) -> (bool, Option<u32>, Vec<u32>) {
    let program = PolicyProgram {
        id: ProgramId(1),
        tiers: vec![],
        profiles: profiles.into_iter().map(|rules| Policy { rules }).collect(),
    };
    let compiled = CompiledProgram::compile(&program, |r| r.0).unwrap();
    let key = cls::Key::V4(cls::Key4 {
        src: Ipv4Addr::new(198, 19, 0, 2).into(),
        dst: Ipv4Addr::new(198, 19, 0, 3).into(),
        src_port: 1000,
        dst_port: 80,
        proto: 6,
    });
    let mut hits = Vec::new();
    let d = compiled.evaluate(&key, &cls::IpSetTable::new(), |s| hits.push(s));
    (d.allow, d.rule_slot, hits)
}

#[test]
fn pass_in_a_profile_ends_that_profile_only() {
    // Pass skips the rest of its profile (rule 2 never runs); the next profile allows.
    let (allow, slot, hits) = decide(vec![
        vec![rule(1, Action::Pass), rule(2, Action::Deny)],
        vec![rule(3, Action::Allow)],
    ]);
    assert!(allow);
    assert_eq!(slot, Some(3));
    assert_eq!(hits, vec![1, 3]);
    // Pass in the last profile: nothing is left to allow.
    let (allow, slot, _) = decide(vec![vec![rule(1, Action::Pass), rule(2, Action::Allow)]]);
    assert!(!allow);
    assert_eq!(slot, None);
    // A profile with no match moves on to the next; Log continues within the profile.
    let (allow, slot, hits) = decide(vec![
        vec![],
        vec![rule(4, Action::Log), rule(5, Action::Deny)],
        vec![rule(6, Action::Allow)],
    ]);
    assert!(!allow);
    assert_eq!(slot, Some(5));
    assert_eq!(hits, vec![4, 5]);
}

#[test]
fn a_pre_dnat_allow_skips_the_host_endpoints_ingress_programs_not_the_workloads() {
    // preDNAT allows TCP 80 and 23 (tier default Pass: anything else continues).
    let mut t = with_hep(PROG_DENY_ALL, PROG_DENY_ALL, Some(PROG_DENY_ALL), None);
    let allow_port = |id: u32, port: u16| Rule {
        id: RuleId(id),
        action: Action::Allow,
        matches: RuleMatch {
            protocol: Some(6),
            dst_ports: PortMatch {
                ranges: vec![PortRange { lo: port, hi: port }],
                not_ranges: vec![],
            },
            ..RuleMatch::default()
        },
    };
    t.programs.push(PolicyProgram {
        id: ProgramId(62),
        tiers: vec![Tier {
            default_action: TierDefault::Pass,
            policies: vec![Policy {
                rules: vec![allow_port(620, 80), allow_port(621, 23)],
            }],
        }],
        profiles: vec![],
    });
    let hep = t
        .endpoints
        .iter_mut()
        .find(|e| e.id == EndpointId(HEP))
        .unwrap();
    hep.pre_dnat = Some(ProgramId(62));
    let mut h = Harness::new(&t);
    // Allowed by preDNAT: the deny-all forward ingress is skipped.
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, B, 40070, 80));
    assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
    // ...and so is the deny-all normal ingress for the host.
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, NODE, 40071, 80));
    assert_eq!(o.tx_if(), Some(HOST_IF), "{o:?}");
    // B's own ingress still runs.
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, B, 40072, 23));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
    // Not matched by preDNAT: the forward ingress program decides.
    let o = h.one(UPLINK, syn(GATEWAY_MAC, OUTSIDE, B, 40073, 443));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny));
}

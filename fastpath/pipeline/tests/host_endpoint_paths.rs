//! Host endpoint semantics on the paths that bypass the usual new-flow order: packets a
//! doNotTrack rule allowed (no conntrack, yet the far side's program still runs on every
//! packet), IP-in-IP from other nodes (arrives on the tunnel, not the uplink, so the uplink
//! host endpoint's programs do not apply), and replies to flows the host opened to a
//! floating IP (translated back before the kernel sees them).

mod common;

use std::net::Ipv4Addr;

use common::*;
use etherparse::PacketBuilder;
use tortie_abi::*;
use tortie_pipeline::{Disposition, DropReason};

const HEP: u32 = 9;
const PROG_DENY_ALL: ProgramId = ProgramId(60);
const PROG_DENY_TCP80: ProgramId = ProgramId(61);
const PROG_UNTRACKED: ProgramId = ProgramId(62);
const PROG_DENY_RULE: ProgramId = ProgramId(63);
const OUTSIDE2: Ipv4Addr = Ipv4Addr::new(198, 18, 201, 1);
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 9, 9];

fn drop_of(o: &Out) -> Option<DropReason> {
    match o.disposition {
        Disposition::Drop(r) => Some(r),
        Disposition::Tx(_) => None,
    }
}

fn tcp_rule(id: u32, action: Action, port: Option<u16>) -> Rule {
    Rule {
        id: RuleId(id),
        action,
        matches: RuleMatch {
            protocol: Some(6),
            dst_ports: PortMatch {
                ranges: port
                    .map(|p| vec![PortRange { lo: p, hi: p }])
                    .unwrap_or_default(),
                not_ranges: vec![],
            },
            ..RuleMatch::default()
        },
    }
}

/// A one-tier program of `rules` with the tier default `default`.
fn program(id: ProgramId, default: TierDefault, rules: Vec<Rule>) -> PolicyProgram {
    PolicyProgram {
        id,
        tiers: vec![Tier {
            default_action: default,
            policies: vec![Policy { rules }],
        }],
        profiles: vec![],
    }
}

/// The standard tables plus a host endpoint on the uplink whose normal programs and
/// forward ingress deny everything and whose forward egress denies TCP 80; `edit` sets
/// its doNotTrack and preDNAT programs. Programs: deny-all, deny TCP 80, a doNotTrack
/// program allowing TCP 23, 80 and 443 (default Pass), one denying all TCP by a rule
/// (default Pass).
fn with_hep(edit: impl FnOnce(&mut Endpoint)) -> Tables {
    let mut t = tables();
    t.programs.push(PolicyProgram {
        id: PROG_DENY_ALL,
        tiers: vec![],
        profiles: vec![],
    });
    t.programs.push(program(
        PROG_DENY_TCP80,
        TierDefault::Deny,
        vec![tcp_rule(610, Action::Deny, Some(80)), allow_rule(611)],
    ));
    t.programs.push(program(
        PROG_UNTRACKED,
        TierDefault::Pass,
        vec![
            tcp_rule(620, Action::Allow, Some(23)),
            tcp_rule(621, Action::Allow, Some(80)),
            tcp_rule(622, Action::Allow, Some(443)),
        ],
    ));
    t.programs.push(program(
        PROG_DENY_RULE,
        TierDefault::Pass,
        vec![tcp_rule(630, Action::Deny, None)],
    ));
    let mut hep = Endpoint {
        id: EndpointId(HEP),
        if_index: UPLINK,
        kind: EndpointKind::Host,
        mac: UPLINK_MAC,
        addrs: vec![prefix(NODE, 32)],
        ingress: Some(PROG_DENY_ALL),
        egress: Some(PROG_DENY_ALL),
        untracked_ingress: None,
        untracked_egress: None,
        pre_dnat: None,
        forward_ingress: Some(PROG_DENY_ALL),
        forward_egress: Some(PROG_DENY_TCP80),
    };
    edit(&mut hep);
    t.endpoints.push(hep);
    t
}

/// Hits counted for `rule` in the current generation.
fn hits(h: &Harness, rule: RuleId) -> u64 {
    let g = h.pipeline.generation();
    let hits = h.pipeline.counters().rule_hits();
    (0..g.rule_slots())
        .filter(|&slot| g.rule_id(slot as u32) == Some(rule))
        .map(|slot| hits[slot])
        .sum()
}

fn from_outside(src: Ipv4Addr, dst: Ipv4Addr, sp: u16, dp: u16, flags: &str) -> Vec<u8> {
    tcp4(GATEWAY_MAC, src, dst, sp, dp, flags, 64)
}

/// `inner` (an Ethernet frame) inside IP-in-IP from `outer_src` to this node.
fn ipip(outer_src: Ipv4Addr, inner: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(NODE3_MAC, UPLINK_MAC)
        .ipv4(outer_src.octets(), NODE.octets(), 64)
        .write(&mut f, etherparse::IpNumber(4), &inner[14..])
        .unwrap();
    f
}

#[test]
fn an_untracked_allow_still_runs_the_workloads_ingress_on_every_packet() {
    let mut h = Harness::new(&with_hep(|e| e.untracked_ingress = Some(PROG_UNTRACKED)));
    let flows = h.pipeline.counters().flows_created;
    // Allowed untracked: the deny-all forward ingress is skipped, B's ingress allows 443.
    let o = h.one(UPLINK, from_outside(OUTSIDE, B, 40100, 443, "S"));
    assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
    // No conntrack: a packet with no SYN passes too (it would be not-initial if tracked).
    let o = h.one(UPLINK, from_outside(OUTSIDE, B, 40100, 443, "A"));
    assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
    // B's ingress denies 23, on every packet: there is no flow to cache a verdict in.
    for flags in ["S", "A", "A"] {
        let o = h.one(UPLINK, from_outside(OUTSIDE, B, 40101, 23, flags));
        assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny), "{flags}: {o:?}");
    }
    let c = h.pipeline.counters();
    assert_eq!(c.untracked, 5);
    assert_eq!(c.flows_created, flows, "untracked packets create no flow");
    assert_eq!(c.drops(DropReason::PolicyDeny), 3);
    // Each packet was judged on its own: B's deny rule counted three hits, the doNotTrack
    // rules five.
    assert_eq!(hits(&h, RULE_DENY_23), 3);
    assert_eq!(hits(&h, RuleId(620)) + hits(&h, RuleId(622)), 5);
    // Not matched by the doNotTrack program: tracked, and the forward ingress denies.
    let o = h.one(UPLINK, from_outside(OUTSIDE, B, 40102, 8080, "S"));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny), "{o:?}");
}

#[test]
fn an_untracked_allow_to_the_uplink_or_the_host() {
    let mut h = Harness::new(&with_hep(|e| e.untracked_ingress = Some(PROG_UNTRACKED)));
    // Routed back out of the uplink: the forward egress still runs (denies TCP 80).
    let o = h.one(UPLINK, from_outside(OUTSIDE2, OUTSIDE, 40110, 80, "S"));
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny), "{o:?}");
    let o = h.one(UPLINK, from_outside(OUTSIDE2, OUTSIDE, 40111, 443, "S"));
    assert_eq!(o.tx_if(), Some(UPLINK), "{o:?}");
    // To the host: accepted, though the normal ingress denies everything.
    let o = h.one(UPLINK, from_outside(OUTSIDE, NODE, 40112, 443, "S"));
    assert_eq!(o.tx_if(), Some(HOST_IF), "{o:?}");
    // Untracked packets are not NAT'd: a floating IP is not mapped (Linux NATs only
    // tracked packets), so the packet is routed on its own destination.
    let o = h.one(UPLINK, from_outside(OUTSIDE, FLOATING, 40113, 443, "S"));
    assert_eq!(o.tx_if(), Some(UPLINK), "{o:?}");
    assert_eq!(check(&o.bytes).dst, v4(FLOATING));
}

#[test]
fn ipip_from_a_remote_node_skips_the_uplink_host_endpoints_forward_ingress() {
    let mut h = Harness::new(&with_hep(|_| {}));
    // Unencapsulated from the same remote workload: the deny-all forward ingress applies.
    let direct = from_outside(REMOTE_CROSS_SUBNET, B, 40120, 443, "S");
    let o = h.one(UPLINK, direct.clone());
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny), "{o:?}");
    // Through the tunnel it arrives on the tunnel: only B's own ingress applies.
    let o = h.one(UPLINK, ipip(NODE3, &direct));
    assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
    let s = check(&o.bytes);
    assert_eq!((s.src, s.dst), (v4(REMOTE_CROSS_SUBNET), v4(B)));
    let o = h.one(
        UPLINK,
        ipip(NODE3, &from_outside(REMOTE_CROSS_SUBNET, B, 40121, 23, "S")),
    );
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny), "{o:?}");
    // To the host through the tunnel: no normal ingress either.
    let o = h.one(
        UPLINK,
        ipip(
            NODE3,
            &from_outside(REMOTE_CROSS_SUBNET, NODE, 40122, 8080, "S"),
        ),
    );
    assert_eq!(o.tx_if(), Some(HOST_IF), "{o:?}");
    // Decapsulated and routed back out of the uplink: leaving by the uplink, it meets
    // the forward egress (denies TCP 80).
    let o = h.one(
        UPLINK,
        ipip(
            NODE3,
            &from_outside(REMOTE_CROSS_SUBNET, OUTSIDE, 40123, 80, "S"),
        ),
    );
    assert_eq!(drop_of(&o), Some(DropReason::PolicyDeny), "{o:?}");
}

#[test]
fn ipip_skips_the_uplink_host_endpoints_do_not_track_and_pre_dnat_programs() {
    let inner = from_outside(REMOTE_CROSS_SUBNET, B, 40130, 443, "S");
    type Edit = fn(&mut Endpoint);
    let cases: [(Edit, DropReason); 2] = [
        (
            |e| e.untracked_ingress = Some(PROG_DENY_RULE),
            DropReason::UntrackedDeny,
        ),
        (
            |e| e.pre_dnat = Some(PROG_DENY_RULE),
            DropReason::PreDnatDeny,
        ),
    ];
    for (edit, reason) in cases {
        let mut h = Harness::new(&with_hep(|e| {
            edit(e);
            e.forward_ingress = None;
        }));
        let o = h.one(UPLINK, inner.clone());
        assert_eq!(drop_of(&o), Some(reason), "{o:?}");
        let o = h.one(UPLINK, ipip(NODE3, &inner));
        assert_eq!(o.tx_if(), Some(IF_B), "{reason:?}: {o:?}");
        assert_eq!(h.pipeline.counters().untracked, 0);
    }
}

#[test]
fn replies_to_a_host_flow_to_a_floating_ip_reach_the_kernel_translated_back() {
    for t in [tables(), with_hep(|_| {})] {
        let mut h = Harness::new(&t);
        // The host opens a flow to B's floating IP: DNAT'd to B.
        let o = h.one(HOST_IF, tcp4(HOST_MAC, NODE, FLOATING, 40140, 443, "S", 64));
        assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
        assert_eq!(check(&o.bytes).dst, v4(B));
        // B's answer reaches the kernel from the floating IP, checksums intact (checked by
        // `check`), addressed to the kernel's end of the host veth.
        let o = h.one(IF_B, tcp4(MAC_B, B, NODE, 443, 40140, "SA", 64));
        assert_eq!(o.tx_if(), Some(HOST_IF), "{o:?}");
        let s = check(&o.bytes);
        assert_eq!(
            (s.src, s.dst, s.ports, s.dst_mac),
            (v4(FLOATING), v4(NODE), Some((443, 40140)), GW)
        );
        // A flow the host opens to B's own address is not translated: sent as received.
        let o = h.one(HOST_IF, tcp4(HOST_MAC, NODE, B, 40141, 443, "S", 64));
        assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
        let reply = tcp4(MAC_B, B, NODE, 443, 40141, "SA", 64);
        let o = h.one(IF_B, reply.clone());
        assert_eq!(o.tx_if(), Some(HOST_IF), "{o:?}");
        assert_eq!(o.bytes, reply);
    }
}

#[test]
fn an_icmp_error_about_a_host_flow_to_a_floating_ip_is_translated_back() {
    let mut h = Harness::new(&tables());
    let o = h.one(HOST_IF, {
        let mut f = udp4(HOST_MAC, NODE, FLOATING, 40150, 53, &[1; 8]);
        f[22] = 64;
        fix_ipv4_checksum(&mut f);
        f
    });
    assert_eq!(o.tx_if(), Some(IF_B), "{o:?}");
    let delivered = o.bytes.clone();
    // B answers the packet it received (to B) with port unreachable.
    let mut err = Vec::new();
    PacketBuilder::ethernet2(MAC_B, GW)
        .ipv4(B.octets(), NODE.octets(), 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut err, &delivered[14..])
        .unwrap();
    let o = h.one(IF_B, err);
    assert_eq!(o.tx_if(), Some(HOST_IF), "{o:?}");
    let s = check(&o.bytes);
    assert_eq!((s.src, s.dst, s.proto), (v4(FLOATING), v4(NODE), 1));
    // The quoted packet is the one the host sent, to the floating IP.
    let quoted = etherparse::SlicedPacket::from_ip(&o.bytes[42..]).unwrap();
    let etherparse::NetSlice::Ipv4(ip) = quoted.net.unwrap() else {
        panic!("quoted IPv4")
    };
    let q = ip.header().to_header();
    assert_eq!(
        (Ipv4Addr::from(q.source), Ipv4Addr::from(q.destination)),
        (NODE, FLOATING)
    );
}

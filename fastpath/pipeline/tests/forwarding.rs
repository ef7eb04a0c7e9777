//! End-to-end behaviour of the pipeline on the standard test topology; every transmitted
//! frame is re-parsed with etherparse (lengths, checksums, IP-in-IP layout).

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use etherparse::PacketBuilder;
use tortie_pipeline::{Disposition, DropReason};

fn drop_of(o: &Out) -> DropReason {
    match o.disposition {
        Disposition::Drop(r) => r,
        Disposition::Tx(i) => panic!("sent on {i}, expected a drop"),
    }
}

#[test]
fn arp_for_any_target_is_answered_with_the_gateway_mac() {
    let mut h = Harness::standard();
    for target in [[169, 254, 1, 1], [198, 19, 0, 3], [198, 18, 200, 9]] {
        let mut f = vec![0u8; 42];
        tortie_wire::ethernet::write_header(&mut f, [0xff; 6], MAC_A, 0x0806).unwrap();
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[22..28].copy_from_slice(&MAC_A);
        f[28..32].copy_from_slice(&A.octets());
        f[38..42].copy_from_slice(&target);
        let o = h.one(IF_A, f);
        assert_eq!(o.tx_if(), Some(IF_A));
        let arp = etherparse::ArpPacketSlice::from_slice(&o.bytes[14..]).unwrap();
        assert_eq!(arp.operation(), etherparse::ArpOperation::REPLY);
        assert_eq!(arp.sender_hw_addr(), &GW);
        assert_eq!(arp.sender_protocol_addr(), &target);
        assert_eq!(arp.target_hw_addr(), &MAC_A);
        assert_eq!(&o.bytes[..6], &MAC_A);
        assert_eq!(&o.bytes[6..12], &GW);
    }
    assert_eq!(h.pipeline.counters().neighbor_replies, 3);
}

#[test]
fn neighbor_solicitation_gets_an_advertisement_with_a_valid_checksum() {
    let mut h = Harness::standard();
    let target = std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    let mut payload = Vec::new();
    payload.extend_from_slice(&target.octets());
    payload.extend_from_slice(&[1, 1]);
    payload.extend_from_slice(&MAC_A);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, [0x33, 0x33, 0xff, 0, 0, 1])
        .ipv6(
            A6.octets(),
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1],
            255,
        )
        .icmpv6_raw(135, 0, [0; 4])
        .write(&mut f, &payload)
        .unwrap();
    let o = h.one(IF_A, f);
    assert_eq!(o.tx_if(), Some(IF_A));
    let seen = check(&o.bytes);
    assert_eq!(seen.src, IpAddr::V6(target));
    assert_eq!(seen.dst, IpAddr::V6(A6));
    assert_eq!(seen.ttl, 255);
    let icmp = &o.bytes[54..];
    assert_eq!(icmp[0], 136);
    assert_eq!(&icmp[8..24], &target.octets());
    assert_eq!(&icmp[26..32], &GW);
}

#[test]
fn dad_probe_and_arp_reply_are_not_answered() {
    let mut h = Harness::standard();
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, [0x33; 6])
        .ipv6(
            [0; 16],
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2],
            255,
        )
        .icmpv6_raw(135, 0, [0; 4])
        .write(&mut f, &A6.octets())
        .unwrap();
    assert_eq!(drop_of(&h.one(IF_A, f)), DropReason::NeighborIgnored);
}

#[test]
fn tcp_between_local_workloads_both_directions() {
    let mut h = Harness::standard();
    let o = h.one(IF_A, tcp4(MAC_A, A, B, 40000, 80, "S", 64));
    assert_eq!(o.tx_if(), Some(IF_B));
    let s = check(&o.bytes);
    assert_eq!(
        (s.src, s.dst, s.ttl, s.ports),
        (v4(A), v4(B), 63, Some((40000, 80)))
    );
    assert_eq!((s.src_mac, s.dst_mac), (GW, MAC_B));
    let o = h.one(IF_B, tcp4(MAC_B, B, A, 80, 40000, "SA", 64));
    assert_eq!(o.tx_if(), Some(IF_A));
    assert_eq!(check(&o.bytes).dst_mac, MAC_A);
    let o = h.one(IF_A, tcp4(MAC_A, A, B, 40000, 80, "A", 64));
    assert_eq!(o.tx_if(), Some(IF_B));
    assert_eq!(h.pipeline.counters().flows_created, 1);
    assert_eq!(h.pipeline.conntrack().len(), 1);
}

#[test]
fn ipv6_between_local_workloads() {
    let mut h = Harness::standard();
    let o = h.one(IF_A, tcp6(MAC_A, A6, B6, 40000, 443, "S", 64));
    assert_eq!(o.tx_if(), Some(IF_B));
    let s = check(&o.bytes);
    assert_eq!(s.ttl, 63);
}

#[test]
fn spoofed_source_is_dropped() {
    let mut h = Harness::standard();
    let o = h.one(IF_A, tcp4(MAC_A, B, A, 1, 80, "S", 64));
    assert_eq!(drop_of(&o), DropReason::Spoofed);
    assert_eq!(h.pipeline.counters().drops(DropReason::Spoofed), 1);
}

#[test]
fn ingress_policy_denies_and_counts_rule_hits() {
    let mut h = Harness::standard();
    let o = h.one(IF_A, tcp4(MAC_A, A, B, 40000, 23, "S", 64));
    assert_eq!(drop_of(&o), DropReason::PolicyDeny);
    let o = h.one(IF_A, tcp4(MAC_A, A, B, 40001, 22, "S", 64));
    assert_eq!(o.tx_if(), Some(IF_B));
    let g = h.pipeline.generation().clone();
    let hits: Vec<_> = h
        .pipeline
        .counters()
        .rule_hits()
        .iter()
        .enumerate()
        .map(|(slot, n)| (g.rule_id(slot as u32).unwrap(), *n))
        .collect();
    assert!(hits.contains(&(RULE_DENY_23, 1)), "{hits:?}");
    assert!(hits.contains(&(RULE_ALLOW_ALL, 1)), "{hits:?}");
    // A denied flow leaves no conntrack entry: a retry is classified again.
    let o = h.one(IF_A, tcp4(MAC_A, A, B, 40000, 23, "S", 64));
    assert_eq!(drop_of(&o), DropReason::PolicyDeny);
}

#[test]
fn tcp_without_syn_is_picked_up_but_rst_closes() {
    let mut h = Harness::standard();
    // Loose pickup: a mid-stream ACK opens a flow (survives a fastpath restart).
    assert_eq!(
        h.one(IF_A, tcp4(MAC_A, A, B, 5000, 80, "A", 64)).tx_if(),
        Some(IF_B)
    );
    assert_eq!(
        h.one(IF_B, tcp4(MAC_B, B, A, 80, 5000, "R", 64)).tx_if(),
        Some(IF_A)
    );
}

#[test]
fn snat_to_outside_and_reverse_translation() {
    let mut h = Harness::standard();
    let o = h.one(IF_A, tcp4(MAC_A, A, OUTSIDE, 40000, 443, "S", 64));
    assert_eq!(o.tx_if(), Some(UPLINK));
    let s = check(&o.bytes);
    assert_eq!(s.src, v4(NODE));
    assert_eq!(s.dst, v4(OUTSIDE));
    assert_eq!((s.src_mac, s.dst_mac), (UPLINK_MAC, GATEWAY_MAC));
    let (sport, dport) = s.ports.unwrap();
    assert_eq!(dport, 443);
    assert!((20000..=29999).contains(&sport), "{sport}");
    // The reply comes back to the node address and port.
    let o = h.one(
        UPLINK,
        tcp4(GATEWAY_MAC, OUTSIDE, NODE, 443, sport, "SA", 60),
    );
    assert_eq!(o.tx_if(), Some(IF_A));
    let s = check(&o.bytes);
    assert_eq!(
        (s.src, s.dst, s.ports),
        (v4(OUTSIDE), v4(A), Some((443, 40000)))
    );
}

#[test]
fn snat_udp_and_icmp_echo() {
    let mut h = Harness::standard();
    let o = h.one(IF_A, udp4(MAC_A, A, OUTSIDE, 5353, 53, &[1, 2, 3, 4, 5]));
    let s = check(&o.bytes);
    assert_eq!(s.src, v4(NODE));
    let mut ping = Vec::new();
    PacketBuilder::ethernet2(MAC_A, GW)
        .ipv4(A.octets(), OUTSIDE.octets(), 64)
        .icmpv4_echo_request(77, 1)
        .write(&mut ping, &[9; 8])
        .unwrap();
    let o = h.one(IF_A, ping);
    let s = check(&o.bytes);
    assert_eq!(s.src, v4(NODE));
    let id = u16::from_be_bytes([o.bytes[38], o.bytes[39]]);
    let mut pong = Vec::new();
    PacketBuilder::ethernet2(GATEWAY_MAC, UPLINK_MAC)
        .ipv4(OUTSIDE.octets(), NODE.octets(), 64)
        .icmpv4_echo_reply(id, 1)
        .write(&mut pong, &[9; 8])
        .unwrap();
    let o = h.one(UPLINK, pong);
    assert_eq!(o.tx_if(), Some(IF_A));
    let s = check(&o.bytes);
    assert_eq!(s.dst, v4(A));
    assert_eq!(u16::from_be_bytes([o.bytes[38], o.bytes[39]]), 77);
}

#[test]
fn no_snat_inside_the_pools() {
    let mut h = Harness::standard();
    let o = h.one(IF_A, tcp4(MAC_A, A, REMOTE_SAME_SUBNET, 40000, 80, "S", 64));
    let s = check(&o.bytes);
    assert_eq!(s.src, v4(A));
}

#[test]
fn dnat_floating_ip_and_reply() {
    let mut h = Harness::standard();
    let o = h.one(
        UPLINK,
        tcp4(GATEWAY_MAC, OUTSIDE, FLOATING, 50000, 8080, "S", 64),
    );
    assert_eq!(o.tx_if(), Some(IF_B));
    let s = check(&o.bytes);
    assert_eq!((s.src, s.dst), (v4(OUTSIDE), v4(B)));
    let o = h.one(IF_B, tcp4(MAC_B, B, OUTSIDE, 8080, 50000, "SA", 64));
    assert_eq!(o.tx_if(), Some(UPLINK));
    let s = check(&o.bytes);
    assert_eq!(
        (s.src, s.dst, s.ports),
        (v4(FLOATING), v4(OUTSIDE), Some((8080, 50000)))
    );
}

#[test]
fn cross_subnet_encapsulates_and_same_subnet_does_not() {
    let mut h = Harness::standard();
    let o = h.one(
        IF_A,
        tcp4(MAC_A, A, REMOTE_CROSS_SUBNET, 40000, 80, "S", 64),
    );
    assert_eq!(o.tx_if(), Some(UPLINK));
    let s = check(&o.bytes);
    assert_eq!((s.src, s.dst, s.proto, s.ttl), (v4(NODE), v4(NODE3), 4, 64));
    assert_eq!(s.dst_mac, NODE3_MAC);
    let inner = s.inner.unwrap();
    assert_eq!(
        (inner.src, inner.dst, inner.ttl, inner.ports),
        (v4(A), v4(REMOTE_CROSS_SUBNET), 63, Some((40000, 80)))
    );
    let o = h.one(IF_A, tcp4(MAC_A, A, REMOTE_SAME_SUBNET, 40000, 80, "S", 64));
    let s = check(&o.bytes);
    assert_eq!(
        (s.dst, s.proto, s.dst_mac),
        (v4(REMOTE_SAME_SUBNET), 6, NODE2_MAC)
    );
}

fn ipip(outer_src: Ipv4Addr, outer_dst: Ipv4Addr, inner: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(NODE3_MAC, UPLINK_MAC)
        .ipv4(outer_src.octets(), outer_dst.octets(), 64)
        .write(&mut f, etherparse::IpNumber(4), &inner[14..])
        .unwrap();
    f
}

#[test]
fn decap_from_known_node_only() {
    let mut h = Harness::standard();
    let inner = tcp4(NODE3_MAC, REMOTE_CROSS_SUBNET, A, 1234, 80, "S", 63);
    let o = h.one(UPLINK, ipip(NODE3, NODE, &inner));
    assert_eq!(o.tx_if(), Some(IF_A));
    let s = check(&o.bytes);
    assert_eq!(
        (s.src, s.dst, s.proto, s.ttl),
        (v4(REMOTE_CROSS_SUBNET), v4(A), 6, 62)
    );
    assert_eq!(o.bytes.len(), inner.len());
    let o = h.one(UPLINK, ipip(OUTSIDE, NODE, &inner));
    assert_eq!(drop_of(&o), DropReason::DecapUnknownSource);
}

#[test]
fn ttl_expiry_sends_time_exceeded() {
    let mut h = Harness::standard();
    let sent = tcp4(MAC_A, A, OUTSIDE, 40000, 80, "S", 1);
    let o = h.one(IF_A, sent.clone());
    assert_eq!(o.tx_if(), Some(IF_A));
    let s = check(&o.bytes);
    assert_eq!((s.src, s.dst, s.proto), (v4(NODE), v4(A), 1));
    assert_eq!(s.dst_mac, MAC_A);
    assert_eq!(&o.bytes[34..36], &[11, 0]);
    // The quote is the offending packet as received.
    assert_eq!(&o.bytes[42..], &sent[14..]);
    assert_eq!(h.pipeline.counters().icmp_errors, 1);
}

#[test]
fn hop_limit_expiry_sends_icmpv6_time_exceeded() {
    let mut h = Harness::standard();
    let o = h.one(IF_A, tcp6(MAC_A, A6, B6, 40000, 80, "S", 1));
    assert_eq!(o.tx_if(), Some(IF_A));
    let s = check(&o.bytes);
    assert_eq!(
        (s.src, s.dst, s.proto),
        (IpAddr::V6(NODE6), IpAddr::V6(A6), 58)
    );
    assert_eq!(o.bytes[54], 3);
}

#[test]
fn mtu_exceeded_with_df_gets_fragmentation_needed() {
    let mut h = Harness::standard();
    // 1490 bytes of IP: fits the uplink, not the tunnel (1500 - 20).
    let mut f = udp4(MAC_A, A, REMOTE_CROSS_SUBNET, 1, 2, &vec![0u8; 1490 - 28]);
    set_df(&mut f);
    let o = h.one(IF_A, f.clone());
    assert_eq!(o.tx_if(), Some(IF_A));
    let s = check(&o.bytes);
    assert_eq!(s.proto, 1);
    assert_eq!(&o.bytes[34..36], &[3, 4]);
    assert_eq!(u16::from_be_bytes([o.bytes[40], o.bytes[41]]), 1480);
    assert!(o.bytes.len() <= 14 + 576);
    // Without DF the fastpath does not fragment: dropped and counted.
    let mut g = udp4(MAC_A, A, REMOTE_CROSS_SUBNET, 1, 3, &vec![0u8; 1490 - 28]);
    g[20] &= !0x40;
    fix_ipv4_checksum(&mut g);
    assert_eq!(drop_of(&h.one(IF_A, g)), DropReason::MtuExceeded);
    // Same size natively to the same-subnet node fits.
    let mut f2 = udp4(MAC_A, A, REMOTE_SAME_SUBNET, 1, 2, &vec![0u8; 1490 - 28]);
    set_df(&mut f2);
    assert_eq!(h.one(IF_A, f2).tx_if(), Some(UPLINK));
}

#[test]
fn ipv6_too_big_gets_packet_too_big() {
    let mut h = Harness::standard();
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, GW)
        .ipv6(A6.octets(), common::OUTSIDE6.octets(), 64)
        .udp(1, 2)
        .write(&mut f, &vec![0u8; 1500])
        .unwrap();
    let o = h.one(IF_A, f);
    assert_eq!(o.tx_if(), Some(IF_A));
    let s = check(&o.bytes);
    assert_eq!(s.proto, 58);
    assert_eq!(o.bytes[54], 2);
    assert_eq!(
        u32::from_be_bytes([o.bytes[58], o.bytes[59], o.bytes[60], o.bytes[61]]),
        1500
    );
    assert!(o.bytes.len() - 14 <= 1280);
}

fn fragment(f: &mut [u8], offset_units: u16, more: bool, ident: u16) {
    f[18..20].copy_from_slice(&ident.to_be_bytes());
    let v = (offset_units & 0x1fff) | if more { 0x2000 } else { 0 };
    f[20..22].copy_from_slice(&v.to_be_bytes());
    fix_ipv4_checksum(f);
}

#[test]
fn later_fragments_follow_their_first_fragment_and_never_bypass_policy() {
    let mut h = Harness::standard();
    let mut first = udp4(MAC_A, A, B, 7000, 7001, &[1; 16]);
    fragment(&mut first, 0, true, 42);
    let mut later = udp4(MAC_A, A, B, 0, 0, &[2; 16]);
    later[23] = 17;
    fragment(&mut later, 3, false, 42);
    let out = h.send(&[(IF_A, first), (IF_A, later.clone())]);
    assert_eq!(out[0].tx_if(), Some(IF_B));
    assert_eq!(out[1].tx_if(), Some(IF_B));
    // A later fragment of an unknown datagram is dropped, not let through unpoliced.
    let mut orphan = later;
    fragment(&mut orphan, 3, false, 43);
    assert_eq!(drop_of(&h.one(IF_A, orphan)), DropReason::FragmentNoState);
    // A first fragment denied by policy leaves no state for its later fragments.
    let mut denied = tcp4(MAC_A, A, B, 7002, 23, "S", 64);
    fragment(&mut denied, 0, true, 44);
    let mut denied_later = udp4(MAC_A, A, B, 0, 0, &[2; 16]);
    denied_later[23] = 6;
    fragment(&mut denied_later, 3, false, 44);
    let out = h.send(&[(IF_A, denied), (IF_A, denied_later)]);
    assert_eq!(drop_of(&out[0]), DropReason::PolicyDeny);
    assert_eq!(drop_of(&out[1]), DropReason::FragmentNoState);
}

#[test]
fn icmp_error_related_to_a_flow_passes_and_unrelated_is_dropped() {
    let mut h = Harness::standard();
    let sent = udp4(MAC_A, A, B, 6000, 53, &[0; 8]);
    assert_eq!(h.one(IF_A, sent.clone()).tx_if(), Some(IF_B));
    let mut err = Vec::new();
    PacketBuilder::ethernet2(MAC_B, GW)
        .ipv4(B.octets(), A.octets(), 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut err, &sent[14..])
        .unwrap();
    assert_eq!(h.one(IF_B, err).tx_if(), Some(IF_A));
    let other = udp4(MAC_A, A, B, 6001, 53, &[0; 8]);
    let mut err = Vec::new();
    PacketBuilder::ethernet2(MAC_B, GW)
        .ipv4(B.octets(), A.octets(), 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut err, &other[14..])
        .unwrap();
    assert_eq!(drop_of(&h.one(IF_B, err)), DropReason::IcmpErrorUnrelated);
}

#[test]
fn blackhole_and_endpoint_to_host() {
    let mut h = Harness::standard();
    assert_eq!(
        drop_of(&h.one(IF_A, tcp4(MAC_A, A, BLACKHOLED, 1, 2, "S", 64))),
        DropReason::Blackhole
    );
    assert_eq!(
        drop_of(&h.one(IF_A, tcp4(MAC_A, A, NODE, 1, 22, "S", 64))),
        DropReason::EndpointToHost
    );
    let mut t = tables();
    t.settings.default_endpoint_to_host = tortie_abi::HostAction::Accept;
    let mut h = Harness::new(&t);
    assert_eq!(
        h.one(IF_A, tcp4(MAC_A, A, NODE, 1, 22, "S", 64)).tx_if(),
        Some(HOST_IF)
    );
    // Traffic from the uplink to the node goes to the host.
    assert_eq!(
        h.one(UPLINK, tcp4(GATEWAY_MAC, OUTSIDE, NODE, 1, 22, "S", 64))
            .tx_if(),
        Some(HOST_IF)
    );
}

#[test]
fn malformed_and_foreign_frames_are_counted() {
    let mut h = Harness::standard();
    let mut bad_sum = tcp4(MAC_A, A, B, 1, 2, "S", 64);
    bad_sum[24] ^= 0xff;
    let mut short = tcp4(MAC_A, A, B, 1, 2, "S", 64);
    short.truncate(40);
    let mut foreign = vec![0u8; 60];
    foreign[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
    let out = h.send(&[
        (IF_A, vec![1, 2, 3]),
        (IF_A, bad_sum),
        (IF_A, short),
        (IF_A, foreign),
        (99, tcp4(MAC_A, A, B, 1, 2, "S", 64)),
    ]);
    let reasons: Vec<_> = out.iter().map(drop_of).collect();
    assert_eq!(
        reasons,
        [
            DropReason::EthernetTruncated,
            DropReason::Ipv4BadChecksum,
            DropReason::Ipv4BadLength,
            DropReason::NotIp,
            DropReason::UnknownInterface
        ]
    );
    assert_eq!(h.pipeline.counters().total_drops(), 5);
    assert_eq!(h.pipeline.counters().interface(IF_A).rx_packets, 4);
}

#[test]
fn trace_records_each_node_decision() {
    use tortie_pipeline::graph::NodeKind;
    use tortie_pipeline::trace::Event;
    let mut h = Harness::standard();
    h.pipeline.trace().arm(1, Some(IF_A), 64);
    let out = h.send(&[
        (IF_B, tcp4(MAC_B, B, A, 1, 2, "S", 64)),
        (IF_A, tcp4(MAC_A, A, OUTSIDE, 40000, 443, "S", 64)),
    ]);
    assert!(out.iter().all(|o| o.tx_if().is_some()));
    let recs = h.pipeline.trace().records().to_vec();
    assert!(
        recs.iter().all(|r| r.packet == 1),
        "only the selected packet is traced"
    );
    let nodes: Vec<_> = recs.iter().map(|r| (r.node, r.event)).collect();
    assert!(nodes.contains(&(NodeKind::Conntrack, Event::ConntrackMiss)));
    assert!(nodes.contains(&(NodeKind::Rewrite, Event::Nat)));
    assert!(matches!(recs.last().unwrap().event, Event::Tx(UPLINK)));
    // Only one packet was armed.
    h.send(&[(IF_A, tcp4(MAC_A, A, B, 3, 4, "S", 64))]);
    assert_eq!(h.pipeline.trace().records().len(), recs.len());
}

#[test]
fn untracked_policy_bypasses_conntrack_and_pre_dnat_denies() {
    use tortie_abi::*;
    let mut t = tables();
    t.programs.push(PolicyProgram {
        id: ProgramId(50),
        tiers: vec![Tier {
            default_action: TierDefault::Pass,
            policies: vec![Policy {
                rules: vec![Rule {
                    id: RuleId(500),
                    action: Action::Allow,
                    matches: RuleMatch {
                        protocol: Some(17),
                        ..RuleMatch::default()
                    },
                }],
            }],
        }],
        profiles: vec![],
    });
    t.programs.push(PolicyProgram {
        id: ProgramId(51),
        tiers: vec![Tier {
            default_action: TierDefault::Pass,
            policies: vec![Policy {
                rules: vec![Rule {
                    id: RuleId(510),
                    action: Action::Deny,
                    matches: RuleMatch {
                        dst_ports: PortMatch {
                            ranges: vec![PortRange { lo: 9999, hi: 9999 }],
                            not_ranges: vec![],
                        },
                        ..RuleMatch::default()
                    },
                }],
            }],
        }],
        profiles: vec![],
    });
    t.endpoints.push(Endpoint {
        id: EndpointId(9),
        if_index: UPLINK,
        kind: EndpointKind::Host,
        mac: UPLINK_MAC,
        addrs: vec![],
        ingress: None,
        egress: None,
        untracked_ingress: Some(ProgramId(50)),
        untracked_egress: None,
        pre_dnat: Some(ProgramId(51)),
        forward_ingress: None,
        forward_egress: None,
    });
    let mut h = Harness::new(&t);
    let o = h.one(UPLINK, udp4(GATEWAY_MAC, OUTSIDE, B, 53, 5353, &[1; 4]));
    assert_eq!(o.tx_if(), Some(IF_B));
    assert_eq!(h.pipeline.conntrack().len(), 0);
    assert_eq!(h.pipeline.counters().untracked, 1);
    let o = h.one(
        UPLINK,
        tcp4(GATEWAY_MAC, OUTSIDE, FLOATING, 1, 9999, "S", 64),
    );
    assert_eq!(drop_of(&o), DropReason::PreDnatDeny);
    let o = h.one(UPLINK, tcp4(GATEWAY_MAC, OUTSIDE, FLOATING, 1, 80, "S", 64));
    assert_eq!(o.tx_if(), Some(IF_B));
}

#[test]
fn dangling_references_fail_closed() {
    let mut t = tables();
    t.endpoints[1].ingress = Some(tortie_abi::ProgramId(77));
    t.routes.push(tortie_abi::Route {
        prefix: prefix(Ipv4Addr::new(198, 19, 3, 0), 24),
        target: tortie_abi::RouteTarget::Local(tortie_abi::EndpointId(99)),
    });
    let mut h = Harness::new(&t);
    assert_eq!(
        drop_of(&h.one(IF_A, tcp4(MAC_A, A, B, 1, 80, "S", 64))),
        DropReason::PolicyDeny
    );
    let o = h.one(
        IF_A,
        tcp4(MAC_A, A, Ipv4Addr::new(198, 19, 3, 1), 1, 80, "S", 64),
    );
    assert_eq!(drop_of(&o), DropReason::DanglingRoute);
}

#[test]
fn a_batch_of_identical_syns_opens_one_flow_and_forwards_all() {
    let mut h = Harness::standard();
    let syn = tcp4(MAC_A, A, B, 40000, 80, "S", 64);
    let out = h.send(&[(IF_A, syn.clone()), (IF_A, syn.clone()), (IF_A, syn)]);
    for o in &out {
        assert_eq!(o.tx_if(), Some(IF_B), "{:?}", o.disposition);
    }
    assert_eq!(h.pipeline.conntrack().len(), 1);
}

#[test]
fn handshake_in_one_batch_is_tracked() {
    let mut h = Harness::standard();
    let out = h.send(&[
        (IF_A, tcp4(MAC_A, A, B, 41000, 80, "S", 64)),
        (IF_B, tcp4(MAC_B, B, A, 80, 41000, "SA", 64)),
        (IF_A, tcp4(MAC_A, A, B, 41000, 80, "A", 64)),
    ]);
    assert_eq!(
        out.iter().map(Out::tx_if).collect::<Vec<_>>(),
        [Some(IF_B), Some(IF_A), Some(IF_B)]
    );
    assert_eq!(h.pipeline.counters().flows_created, 1);
    assert_eq!(h.pipeline.conntrack().len(), 1);
}

#[test]
fn strict_pickup_handshake_in_one_batch_joins_the_flow_the_syn_opened() {
    // Without loose pickup only a SYN opens a flow: the SYN-ACK and ACK that follow it in
    // the same batch missed the batch lookup, cannot open a flow themselves, and must still
    // be accounted to the flow the SYN created; an ACK of no flow is dropped.
    let g = std::sync::Arc::new(
        tortie_pipeline::Generation::build(tortie_abi::Generation(1), &tables()).unwrap(),
    );
    let config = tortie_pipeline::PipelineConfig {
        conntrack_capacity: 4096,
        hash_seed: Some(7),
        tcp_loose_pickup: false,
        ..tortie_pipeline::PipelineConfig::default()
    };
    let mut h = Harness::standard();
    h.pipeline = tortie_pipeline::Pipeline::new(g, &config);
    let out = h.send(&[
        (IF_A, tcp4(MAC_A, A, B, 42000, 80, "S", 64)),
        (IF_B, tcp4(MAC_B, B, A, 80, 42000, "SA", 64)),
        (IF_A, tcp4(MAC_A, A, B, 42000, 80, "A", 64)),
        (IF_A, tcp4(MAC_A, A, B, 42001, 80, "A", 64)),
    ]);
    assert_eq!(
        out[..3].iter().map(Out::tx_if).collect::<Vec<_>>(),
        [Some(IF_B), Some(IF_A), Some(IF_B)]
    );
    assert_eq!(drop_of(&out[3]), DropReason::CtNotInitial);
    assert_eq!(h.pipeline.counters().flows_created, 1);
    assert_eq!(h.pipeline.conntrack().len(), 1);
}

#[test]
fn icmp_error_about_a_snat_flow_is_translated_back() {
    let mut h = Harness::standard();
    let o = h.one(IF_A, udp4(MAC_A, A, OUTSIDE, 40000, 53, &[1; 8]));
    let sent = o.bytes.clone();
    let s = check(&sent);
    assert_eq!(s.src, v4(NODE));
    // A router on the way answers the translated packet with fragmentation needed.
    let router = Ipv4Addr::new(198, 18, 200, 1);
    let mut err = Vec::new();
    PacketBuilder::ethernet2(GATEWAY_MAC, UPLINK_MAC)
        .ipv4(router.octets(), NODE.octets(), 64)
        .icmpv4_raw(3, 4, [0, 0, 5, 0xdc])
        .write(&mut err, &sent[14..])
        .unwrap();
    let o = h.one(UPLINK, err);
    assert_eq!(o.tx_if(), Some(IF_A));
    let s = check(&o.bytes);
    assert_eq!((s.src, s.dst, s.proto), (v4(router), v4(A), 1));
    // The quoted packet is the one A sent, as A sent it.
    let quoted = etherparse::SlicedPacket::from_ip(&o.bytes[42..]).unwrap();
    let etherparse::NetSlice::Ipv4(ip) = quoted.net.unwrap() else {
        panic!("quoted IPv4")
    };
    let h4 = ip.header().to_header();
    assert_eq!(
        (Ipv4Addr::from(h4.source), Ipv4Addr::from(h4.destination)),
        (A, OUTSIDE)
    );
    assert_eq!(h4.header_checksum, h4.calc_header_checksum());
    assert_eq!(&o.bytes[42 + 20..42 + 24], &[0x9c, 0x40, 0, 53]);
}

/// The route node reuses the previous packet's lookup for the same destination and the
/// driver walks each node's packets in batch order: a batch that interleaves destinations
/// (local, remote node, outside, blackhole, IPv6) must route every packet on its own, and
/// the TX queues must keep the batch's order.
#[test]
fn interleaved_destinations_in_one_batch_route_independently() {
    let mut h = Harness::standard();
    let dsts = [
        B,
        B,
        OUTSIDE,
        B,
        REMOTE_SAME_SUBNET,
        REMOTE_SAME_SUBNET,
        BLACKHOLED,
        B,
    ];
    let mut frames: Vec<(u32, Vec<u8>)> = dsts
        .iter()
        .enumerate()
        .map(|(i, d)| (IF_A, tcp4(MAC_A, A, *d, 40000 + i as u16, 80, "S", 64)))
        .collect();
    frames.insert(3, (IF_A, tcp6(MAC_A, A6, B6, 40100, 80, "S", 64)));
    let out = h.send(&frames);
    let got: Vec<Option<u32>> = out.iter().map(Out::tx_if).collect();
    assert_eq!(
        got,
        vec![
            Some(IF_B),
            Some(IF_B),
            Some(UPLINK),
            Some(IF_B),
            Some(IF_B),
            Some(UPLINK),
            Some(UPLINK),
            None,
            Some(IF_B),
        ]
    );
    assert_eq!(drop_of(&out[7]), DropReason::Blackhole);
    // Destination MACs follow each packet's own route.
    assert_eq!(&out[2].bytes[..6], &GATEWAY_MAC);
    assert_eq!(&out[5].bytes[..6], &NODE2_MAC);
    assert_eq!(&out[6].bytes[..6], &NODE2_MAC);
    assert_eq!(&out[4].bytes[..6], &MAC_B);
    // Queued in batch order.
    assert_eq!(h.out.for_interface(IF_B), &[0, 1, 3, 4, 8]);
    assert_eq!(h.out.for_interface(UPLINK), &[2, 5, 6]);
}

/// Batches longer than one 64-packet word of the driver's per-node sets: every packet keeps
/// its own fate across word boundaries, and a full batch of 256 is handled in one call.
#[test]
fn long_batches_cross_the_driver_word_boundaries() {
    let mut h = Harness::standard();
    for len in [63usize, 64, 65, 200, 256] {
        let frames: Vec<(u32, Vec<u8>)> = (0..len)
            .map(|i| {
                // Every third packet claims a source A does not own.
                let src = if i % 3 == 0 { OUTSIDE } else { A };
                (IF_A, udp4(MAC_A, src, B, 1000 + i as u16, 53, &[0; 4]))
            })
            .collect();
        let out = h.send(&frames);
        for (i, o) in out.iter().enumerate() {
            if i % 3 == 0 {
                assert_eq!(drop_of(o), DropReason::Spoofed, "len {len} packet {i}");
            } else {
                assert_eq!(o.tx_if(), Some(IF_B), "len {len} packet {i}");
            }
        }
        let expect: Vec<u16> = (0..len as u16).filter(|i| i % 3 != 0).collect();
        assert_eq!(h.out.for_interface(IF_B), expect.as_slice(), "len {len}");
    }
}

//! Round trips of every message shape and robustness against corrupt input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use tortie_abi::*;

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn arb_prefix() -> impl Strategy<Value = Prefix> {
    (arb_ip(), any::<u8>()).prop_map(|(ip, len)| match ip {
        IpAddr::V4(a) => {
            let len = len % 33;
            Prefix::new(IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(len))), len).unwrap()
        }
        IpAddr::V6(a) => {
            let len = len % 129;
            Prefix::new(
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(len))),
                len,
            )
            .unwrap()
        }
    })
}

fn arb_ports() -> impl Strategy<Value = PortMatch> {
    let range = (any::<u16>(), any::<u16>()).prop_map(|(a, b)| PortRange {
        lo: a.min(b),
        hi: a.max(b),
    });
    (
        prop::collection::vec(range.clone(), 0..3),
        prop::collection::vec(range, 0..2),
    )
        .prop_map(|(ranges, not_ranges)| PortMatch { ranges, not_ranges })
}

fn arb_addrs() -> impl Strategy<Value = AddrMatch> {
    (
        prop::collection::vec(arb_prefix(), 0..3),
        prop::collection::vec(arb_prefix(), 0..2),
        prop::collection::vec(any::<u32>().prop_map(IpSetId), 0..2),
        prop::collection::vec(any::<u32>().prop_map(IpSetId), 0..2),
    )
        .prop_map(|(nets, not_nets, sets, not_sets)| AddrMatch {
            nets,
            not_nets,
            sets,
            not_sets,
        })
}

fn arb_icmp() -> impl Strategy<Value = Option<IcmpMatch>> {
    proptest::option::of(
        (any::<u8>(), proptest::option::of(any::<u8>())).prop_map(|(t, c)| IcmpMatch {
            icmp_type: t,
            code: c,
        }),
    )
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    (
        any::<u32>(),
        prop_oneof![
            Just(Action::Allow),
            Just(Action::Deny),
            Just(Action::Pass),
            Just(Action::Log)
        ],
        proptest::option::of(prop_oneof![Just(IpVersion::V4), Just(IpVersion::V6)]),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u8>()),
        (arb_addrs(), arb_addrs()),
        (arb_ports(), arb_ports()),
        (arb_icmp(), arb_icmp()),
    )
        .prop_map(
            |(
                id,
                action,
                ip_version,
                protocol,
                not_protocol,
                (src, dst),
                (sp, dp),
                (icmp, not_icmp),
            )| Rule {
                id: RuleId(id),
                action,
                matches: RuleMatch {
                    ip_version,
                    protocol,
                    not_protocol,
                    src,
                    dst,
                    src_ports: sp,
                    dst_ports: dp,
                    icmp,
                    not_icmp,
                },
            },
        )
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    prop::collection::vec(arb_rule(), 0..3).prop_map(|rules| Policy { rules })
}

fn arb_program() -> impl Strategy<Value = PolicyProgram> {
    (
        any::<u32>(),
        prop::collection::vec(
            (any::<bool>(), prop::collection::vec(arb_policy(), 0..3)).prop_map(
                |(pass, policies)| Tier {
                    default_action: if pass {
                        TierDefault::Pass
                    } else {
                        TierDefault::Deny
                    },
                    policies,
                },
            ),
            0..3,
        ),
        prop::collection::vec(arb_policy(), 0..2),
    )
        .prop_map(|(id, tiers, profiles)| PolicyProgram {
            id: ProgramId(id),
            tiers,
            profiles,
        })
}

fn arb_opt_prog() -> impl Strategy<Value = Option<ProgramId>> {
    proptest::option::of(any::<u32>().prop_map(ProgramId))
}

fn arb_endpoint() -> impl Strategy<Value = Endpoint> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        any::<[u8; 6]>(),
        prop::collection::vec(arb_prefix(), 0..3),
        (
            arb_opt_prog(),
            arb_opt_prog(),
            arb_opt_prog(),
            arb_opt_prog(),
            arb_opt_prog(),
        ),
        (arb_opt_prog(), arb_opt_prog()),
    )
        .prop_map(
            |(id, ifx, host, mac, addrs, (i, e, ui, ue, pd), (fi, fe))| Endpoint {
                id: EndpointId(id),
                if_index: ifx,
                kind: if host {
                    EndpointKind::Host
                } else {
                    EndpointKind::Workload
                },
                mac,
                addrs,
                ingress: i,
                egress: e,
                untracked_ingress: ui,
                untracked_egress: ue,
                pre_dnat: pd,
                forward_ingress: fi,
                forward_egress: fe,
            },
        )
}

fn arb_ipip() -> impl Strategy<Value = IpipMode> {
    prop_oneof![
        Just(IpipMode::Never),
        Just(IpipMode::Always),
        Just(IpipMode::CrossSubnet)
    ]
}

fn arb_route() -> impl Strategy<Value = Route> {
    let target = prop_oneof![
        any::<u32>().prop_map(|e| RouteTarget::Local(EndpointId(e))),
        (any::<u32>(), proptest::option::of(arb_ipip())).prop_map(|(n, encap)| RouteTarget::Node {
            node: NodeId(n),
            encap
        }),
        Just(RouteTarget::Uplink),
        Just(RouteTarget::Host),
        Just(RouteTarget::Blackhole),
    ];
    (arb_prefix(), target).prop_map(|(prefix, target)| Route { prefix, target })
}

fn arb_nat() -> impl Strategy<Value = Nat> {
    (
        prop::collection::vec((any::<u32>(), any::<u32>()), 0..3),
        prop::collection::vec(arb_prefix(), 0..3),
        prop::collection::vec(arb_prefix(), 0..3),
        proptest::option::of(arb_ip()),
        proptest::option::of(arb_ip()),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(d, snat_pools, all_pools, snat_v4, snat_v6, a, b)| Nat {
            dnat: d
                .into_iter()
                .map(|(e, i)| DnatEntry {
                    external: IpAddr::V4(Ipv4Addr::from(e)),
                    internal: IpAddr::V4(Ipv4Addr::from(i)),
                })
                .collect(),
            snat_pools,
            all_pools,
            snat_v4,
            snat_v6,
            port_lo: a.min(b),
            port_hi: a.max(b),
        })
}

fn arb_node() -> impl Strategy<Value = Node> {
    (
        any::<u32>(),
        arb_ip(),
        any::<[u8; 6]>(),
        prop::collection::vec(arb_ip(), 0..3),
    )
        .prop_map(|(id, addr, mac, tunnel_allowed)| Node {
            id: NodeId(id),
            addr,
            mac,
            tunnel_allowed,
        })
}

fn arb_settings() -> impl Strategy<Value = Settings> {
    (
        any::<u16>(),
        prop_oneof![
            Just(HostAction::Drop),
            Just(HostAction::Accept),
            Just(HostAction::Return)
        ],
        arb_ipip(),
        proptest::option::of((any::<u32>(), 0u8..=32)),
        (
            any::<u32>(),
            any::<[u8; 6]>(),
            any::<[u8; 6]>(),
            any::<u32>(),
        ),
        any::<[u32; 4]>(),
    )
        .prop_map(
            |(mtu, act, ipip, v4, (uplink_if, uplink_mac, gateway_mac, host_if), t)| Settings {
                mtu,
                default_endpoint_to_host: act,
                ipip_mode: ipip,
                node_v4: v4.map(|(a, l)| SubnetAddr {
                    addr: IpAddr::V4(Ipv4Addr::from(a)),
                    subnet_len: l,
                }),
                node_v6: None,
                uplink_if,
                uplink_mac,
                gateway_mac,
                host_if,
                tcp_established_timeout_s: t[0],
                tcp_transitory_timeout_s: t[1],
                udp_timeout_s: t[2],
                icmp_timeout_s: t[3],
            },
        )
}

fn arb_tables() -> impl Strategy<Value = Tables> {
    (
        arb_settings(),
        prop::collection::vec(arb_endpoint(), 0..3),
        prop::collection::vec(arb_program(), 0..3),
        prop::collection::vec(
            (any::<u32>(), prop::collection::vec(arb_prefix(), 0..4)).prop_map(|(id, members)| {
                IpSet {
                    id: IpSetId(id),
                    members,
                }
            }),
            0..3,
        ),
        prop::collection::vec(arb_route(), 0..4),
        arb_nat(),
        prop::collection::vec(arb_node(), 0..3),
    )
        .prop_map(
            |(settings, endpoints, programs, ip_sets, routes, nat, nodes)| Tables {
                settings,
                endpoints,
                programs,
                ip_sets,
                routes,
                nat,
                nodes,
            },
        )
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        arb_settings().prop_map(Op::Settings),
        arb_endpoint().prop_map(Op::UpsertEndpoint),
        any::<u32>().prop_map(|i| Op::RemoveEndpoint(EndpointId(i))),
        arb_program().prop_map(Op::UpsertProgram),
        any::<u32>().prop_map(|i| Op::RemoveProgram(ProgramId(i))),
        (any::<u32>(), prop::collection::vec(arb_prefix(), 0..3)).prop_map(|(id, members)| {
            Op::UpsertIpSet(IpSet {
                id: IpSetId(id),
                members,
            })
        }),
        any::<u32>().prop_map(|i| Op::RemoveIpSet(IpSetId(i))),
        arb_route().prop_map(Op::UpsertRoute),
        arb_prefix().prop_map(Op::RemoveRoute),
        arb_nat().prop_map(Op::Nat),
        arb_node().prop_map(Op::UpsertNode),
        any::<u32>().prop_map(|i| Op::RemoveNode(NodeId(i))),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u64>(), arb_tables()).prop_map(|(g, tables)| Message::Snapshot {
            generation: Generation(g),
            tables
        }),
        (
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(arb_op(), 0..6)
        )
            .prop_map(|(b, g, ops)| Message::Delta {
                base: Generation(b),
                generation: Generation(g),
                ops
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_trip(msg in arb_message()) {
        let bytes = msg.encode();
        let (back, used) = Message::decode(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn consecutive_frames(a in arb_message(), b in arb_message()) {
        let mut buf = a.encode();
        b.encode_into(&mut buf);
        let (x, n) = Message::decode(&buf).unwrap();
        let (y, m) = Message::decode(&buf[n..]).unwrap();
        prop_assert_eq!((x, y), (a, b));
        prop_assert_eq!(n + m, buf.len());
    }

    /// Corrupting any byte yields an error or a (different but valid) message; never a panic.
    #[test]
    fn corrupt_bytes_never_panic(msg in arb_message(), idx in any::<usize>(), val in any::<u8>()) {
        let mut bytes = msg.encode();
        let i = idx % bytes.len();
        bytes[i] = val;
        let _ = Message::decode(&bytes);
        let _ = Message::decode(&bytes[..i]);
    }

    /// Corrupt bodies with a correct checksum exercise every decoder path.
    #[test]
    fn corrupt_bodies_with_valid_checksum(msg in arb_message(), idx in any::<usize>(), val in any::<u8>()) {
        let mut bytes = msg.encode();
        if bytes.len() > HEADER_LEN {
            let i = HEADER_LEN + idx % (bytes.len() - HEADER_LEN);
            bytes[i] = val;
            let sum = fnv(&bytes[HEADER_LEN..]);
            bytes[12..16].copy_from_slice(&sum.to_le_bytes());
            let _ = Message::decode(&bytes);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Message::decode(&bytes);
    }

    /// Applying a delta op by op equals replacing the tables with the result.
    #[test]
    fn deltas_apply_in_order(t in arb_tables(), ops in prop::collection::vec(arb_op(), 0..8)) {
        let mut state = State::default();
        state.apply(Message::Snapshot { generation: Generation(5), tables: t.clone() }).unwrap();
        let mut expected = t;
        for op in ops.clone() {
            expected.apply(op);
        }
        state.apply(Message::Delta { base: Generation(5), generation: Generation(6), ops }).unwrap();
        prop_assert_eq!(state.generation, Generation(6));
        prop_assert_eq!(state.tables, expected);
    }
}

fn fnv(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[test]
fn header_errors_name_the_problem() {
    let msg = Message::Delta {
        base: Generation(1),
        generation: Generation(2),
        ops: vec![],
    };
    let good = msg.encode();
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(Message::decode(&bad).unwrap_err(), AbiError::BadMagic);
    let mut bad = good.clone();
    bad[4] = 9;
    assert_eq!(
        Message::decode(&bad).unwrap_err(),
        AbiError::UnsupportedVersion {
            found: 9,
            expected: FORMAT_VERSION
        }
    );
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert!(matches!(
        Message::decode(&bad).unwrap_err(),
        AbiError::Checksum { .. }
    ));
    assert!(matches!(
        Message::decode(&good[..10]).unwrap_err(),
        AbiError::Truncated {
            field: "body length",
            ..
        }
    ));
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        Message::decode(&bad).unwrap_err(),
        AbiError::TooLarge { len: u32::MAX }
    );
    let err = Message::decode(&good[..good.len() - 1]).unwrap_err();
    assert!(err.to_string().contains("body"), "{err}");
}

#[test]
fn huge_count_is_rejected_without_allocating() {
    let msg = Message::Delta {
        base: Generation(1),
        generation: Generation(2),
        ops: vec![],
    };
    let mut bytes = msg.encode();
    // The ops count sits right after the two generations.
    let at = HEADER_LEN + 16;
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let sum = fnv(&bytes[HEADER_LEN..]);
    bytes[12..16].copy_from_slice(&sum.to_le_bytes());
    assert_eq!(
        Message::decode(&bytes).unwrap_err(),
        AbiError::BadCount {
            field: "ops",
            count: u32::MAX,
            offset: at
        }
    );
}

#[test]
fn non_canonical_prefix_is_rejected() {
    let p = Prefix {
        addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
        len: 24,
    };
    let msg = Message::Delta {
        base: Generation(1),
        generation: Generation(2),
        ops: vec![Op::RemoveRoute(p)],
    };
    let err = Message::decode(&msg.encode()).unwrap_err();
    assert!(
        matches!(
            err,
            AbiError::BadValue {
                field: "route prefix",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn delta_on_wrong_generation_changes_nothing() {
    let mut s = State::default();
    s.apply(Message::Snapshot {
        generation: Generation(3),
        tables: Tables::default(),
    })
    .unwrap();
    let err = s
        .apply(Message::Delta {
            base: Generation(2),
            generation: Generation(4),
            ops: vec![Op::RemoveNode(NodeId(1))],
        })
        .unwrap_err();
    assert_eq!(
        err,
        AbiError::GenerationMismatch {
            base: Generation(2),
            current: Generation(3)
        }
    );
    assert_eq!(s.generation, Generation(3));
}

fn host_endpoint_with_forward() -> Endpoint {
    Endpoint {
        id: EndpointId(7),
        if_index: 2,
        kind: EndpointKind::Host,
        mac: [2, 0, 0, 0, 0, 7],
        addrs: vec![],
        ingress: Some(ProgramId(1)),
        egress: Some(ProgramId(2)),
        untracked_ingress: None,
        untracked_egress: None,
        pre_dnat: None,
        forward_ingress: Some(ProgramId(3)),
        forward_egress: None,
    }
}

#[test]
fn forward_programs_round_trip_and_truncation_names_them() {
    let msg = Message::Delta {
        base: Generation(1),
        generation: Generation(2),
        ops: vec![Op::UpsertEndpoint(host_endpoint_with_forward())],
    };
    let bytes = msg.encode();
    let (back, _) = Message::decode(&bytes).unwrap();
    assert_eq!(back, msg);
    let Message::Delta { ops, .. } = back else {
        panic!("a delta decodes as a delta");
    };
    let Op::UpsertEndpoint(e) = &ops[0] else {
        panic!("the op survives");
    };
    assert_eq!(e.forward_ingress, Some(ProgramId(3)));
    assert_eq!(e.forward_egress, None);

    // Drop the last byte (forward_egress's "absent" flag) and fix the header: the error
    // names the field.
    let mut short = bytes[..bytes.len() - 1].to_vec();
    let body = short[HEADER_LEN..].to_vec();
    short[8..12].copy_from_slice(&(body.len() as u32).to_le_bytes());
    short[12..16].copy_from_slice(&fnv(&body).to_le_bytes());
    assert!(matches!(
        Message::decode(&short).unwrap_err(),
        AbiError::Truncated {
            field: "endpoint forward_egress",
            ..
        }
    ));
}

#[test]
fn frames_of_the_first_layout_are_rejected() {
    // Version 1 endpoints had no forward programs: a fastpath must not read them as v2.
    assert_eq!(FORMAT_VERSION, 2);
    let mut bytes = Message::Delta {
        base: Generation(1),
        generation: Generation(2),
        ops: vec![],
    }
    .encode();
    bytes[4..6].copy_from_slice(&1u16.to_le_bytes());
    assert_eq!(
        Message::decode(&bytes).unwrap_err(),
        AbiError::UnsupportedVersion {
            found: 1,
            expected: 2
        }
    );
}

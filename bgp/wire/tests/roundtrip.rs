//! Property tests: every message the encoder can produce decodes back to itself, and no byte
//! string makes the decoder panic.

use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tortie_bgp_wire::attrs::{
    Aggregator, AsPath, AsSegment, AsSegmentType, LargeCommunity, Origin, PathAttributes,
    RawAttribute,
};
use tortie_bgp_wire::{
    AddPathMode, Afi, Capability, Context, Decoded, Family, GrFamily, GracefulRestartCap, Message,
    MpReach, MpUnreach, NextHop, Nlri, Notification, Open, Prefix, RefreshSubtype, RouteRefresh,
    Safi, Update,
};

fn prefix4() -> impl Strategy<Value = Prefix> {
    (any::<u32>(), 0u8..=32)
        .prop_map(|(a, l)| Prefix::new(IpAddr::V4(Ipv4Addr::from(a)), l).unwrap())
}

fn prefix6() -> impl Strategy<Value = Prefix> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| Prefix::new(IpAddr::V6(Ipv6Addr::from(a)), l).unwrap())
}

fn nlri(p: impl Strategy<Value = Prefix>, add_path: bool) -> impl Strategy<Value = Nlri> {
    (p, any::<u32>()).prop_map(move |(prefix, id)| Nlri {
        prefix,
        path_id: if add_path { id } else { 0 },
    })
}

fn as_path(four: bool) -> impl Strategy<Value = AsPath> {
    let asn = if four {
        any::<u32>().boxed()
    } else {
        (0u32..=65535).boxed()
    };
    let kind = prop_oneof![Just(AsSegmentType::Sequence), Just(AsSegmentType::Set)];
    prop::collection::vec((kind, prop::collection::vec(asn, 1..6)), 0..4).prop_map(|segs| {
        let mut p = AsPath {
            segments: segs
                .into_iter()
                .map(|(kind, asns)| AsSegment { kind, asns })
                .collect(),
        };
        p.normalize();
        p
    })
}

fn attrs(four: bool) -> impl Strategy<Value = PathAttributes> {
    (
        (
            prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ],
            as_path(four),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<bool>(),
        ),
        (
            proptest::option::of((any::<u32>(), any::<u32>()).prop_map(move |(asn, id)| {
                Aggregator {
                    asn: if four { asn } else { asn & 0xffff },
                    id: Ipv4Addr::from(id),
                }
            })),
            prop::collection::vec(any::<u32>(), 0..5),
            prop::collection::vec(
                any::<(u32, u32, u32)>().prop_map(|(global, local1, local2)| LargeCommunity {
                    global,
                    local1,
                    local2,
                }),
                0..3,
            ),
            proptest::option::of(any::<u32>().prop_map(Ipv4Addr::from)),
            prop::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), 0..4),
            prop::collection::vec(
                (100u8..=120, prop::collection::vec(any::<u8>(), 0..8)),
                0..2,
            ),
        ),
    )
        .prop_map(
            |(
                (origin, as_path, med, local_pref, atomic_aggregate),
                (aggregator, communities, large_communities, originator_id, cluster_list, unknown),
            )| PathAttributes {
                origin,
                as_path,
                next_hop: None,
                med,
                local_pref,
                atomic_aggregate,
                aggregator,
                communities,
                large_communities,
                originator_id,
                cluster_list,
                unknown: unknown
                    .into_iter()
                    .map(|(t, value)| RawAttribute {
                        flags: 0xe0,
                        type_code: t,
                        value,
                    })
                    .collect(),
            },
        )
}

fn next_hop6() -> impl Strategy<Value = NextHop> {
    (any::<u128>(), proptest::option::of(any::<u128>())).prop_map(|(g, ll)| NextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    })
}

fn update(ctx: Context) -> impl Strategy<Value = Update> {
    let ap4 = ctx.add_path[0];
    let ap6 = ctx.add_path[1];
    (
        prop::collection::vec(nlri(prefix4(), ap4), 0..10),
        attrs(ctx.four_octet_as),
        any::<u32>().prop_filter("usable next hop", |a| {
            let a = Ipv4Addr::from(*a);
            !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast()
        }),
        prop::collection::vec(nlri(prefix4(), ap4), 0..10),
        proptest::option::of((
            next_hop6(),
            prop::collection::vec(nlri(prefix6(), ap6), 0..10),
        )),
        proptest::option::of(prop::collection::vec(nlri(prefix6(), ap6), 0..10)),
    )
        .prop_map(|(withdrawn, mut attrs, nh, nlri, reach, unreach)| {
            if nlri.is_empty() && reach.is_none() {
                // Attributes are not sent without something to announce.
                attrs = PathAttributes::default();
            } else if !nlri.is_empty() {
                attrs.next_hop = Some(Ipv4Addr::from(nh));
            }
            Update {
                withdrawn,
                attrs,
                mp_reach: reach.map(|(next_hop, nlri)| MpReach {
                    family: Family::Ipv6Unicast,
                    next_hop,
                    nlri,
                }),
                mp_unreach: unreach.map(|withdrawn| MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn,
                }),
                nlri,
            }
        })
}

fn ctx() -> impl Strategy<Value = Context> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(four_octet_as, a, b)| Context {
        four_octet_as,
        add_path: [a, b],
    })
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Capability::Multiprotocol {
            afi: Afi(a),
            safi: Safi(s)
        }),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            prop::collection::vec((any::<u16>(), any::<u8>(), any::<bool>()), 0..3)
        )
            .prop_map(|(r, n, t, f)| {
                Capability::GracefulRestart(GracefulRestartCap {
                    restarting: r,
                    notification: n,
                    restart_time: t,
                    families: f
                        .into_iter()
                        .map(|(a, s, fp)| GrFamily {
                            afi: Afi(a),
                            safi: Safi(s),
                            forwarding_preserved: fp,
                        })
                        .collect(),
                })
            }),
        prop::collection::vec(
            (
                any::<u16>(),
                any::<u8>(),
                prop_oneof![
                    Just(AddPathMode::Receive),
                    Just(AddPathMode::Send),
                    Just(AddPathMode::Both)
                ]
            ),
            1..3
        )
        .prop_map(|v| Capability::AddPath(
            v.into_iter()
                .map(|(a, s, m)| (Afi(a), Safi(s), m))
                .collect()
        )),
        (200u8..=250, prop::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn decode(b: &[u8], ctx: &Context) -> Message {
    match Message::decode(b, ctx).expect("decodes") {
        Decoded::Update(u) => {
            assert!(u.issues.is_empty(), "issues: {:?}", u.issues);
            Message::Update(u.update)
        }
        Decoded::Other(m) => m,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn update_round_trip(ctx in ctx(), u in ctx().prop_flat_map(update)) {
        // The strategy draws its own add-path choice; encode and decode with the same one.
        let ctx = Context { four_octet_as: ctx.four_octet_as, add_path: [u.nlri.iter().chain(&u.withdrawn).any(|n| n.path_id != 0), u.mp_reach.iter().flat_map(|r| &r.nlri).chain(u.mp_unreach.iter().flat_map(|r| &r.withdrawn)).any(|n| n.path_id != 0)] };
        let m = Message::Update(u);
        let b = m.to_bytes(&ctx);
        prop_assume!(b.len() <= 4096);
        prop_assert_eq!(decode(&b, &ctx), m);
    }

    #[test]
    fn update_round_trip_two_octet(u in update(Context { four_octet_as: false, add_path: [false; 2] })) {
        let ctx = Context { four_octet_as: false, add_path: [false; 2] };
        let m = Message::Update(u);
        prop_assert_eq!(decode(&m.to_bytes(&ctx), &ctx), m);
    }

    #[test]
    fn update_as4_through_two_octet_session(u in update(Context::modern())) {
        // 4-octet paths and aggregators survive a 2-octet session thanks to AS_TRANS with
        // AS4_PATH / AS4_AGGREGATOR (RFC 6793 §4.2).
        let ctx = Context { four_octet_as: false, add_path: [false; 2] };
        let mut u = u;
        for n in u.nlri.iter_mut().chain(u.withdrawn.iter_mut()) { n.path_id = 0; }
        if let Some(r) = u.mp_reach.as_mut() { r.nlri.iter_mut().for_each(|n| n.path_id = 0); }
        if let Some(r) = u.mp_unreach.as_mut() { r.withdrawn.iter_mut().for_each(|n| n.path_id = 0); }
        let m = Message::Update(u);
        let b = m.to_bytes(&ctx);
        prop_assume!(b.len() <= 4096);
        prop_assert_eq!(decode(&b, &ctx), m);
    }

    #[test]
    fn open_round_trip(my_as in any::<u16>(), hold in prop_oneof![Just(0u16), 3u16..], id in 1u32.., caps in prop::collection::vec(capability(), 0..8)) {
        let m = Message::Open(Open { my_as, hold_time: hold, bgp_id: Ipv4Addr::from(id), capabilities: caps });
        prop_assert_eq!(decode(&m.to_bytes(&Context::modern()), &Context::modern()), m);
    }

    #[test]
    fn small_messages_round_trip(code in any::<u8>(), sub in any::<u8>(), data in prop::collection::vec(any::<u8>(), 0..40), afi in any::<u16>(), safi in any::<u8>(), st in 0u8..3) {
        let ctx = Context::modern();
        for m in [
            Message::Keepalive,
            Message::Notification(Notification { code, subcode: sub, data: data.clone() }),
            Message::RouteRefresh(RouteRefresh { afi: Afi(afi), safi: Safi(safi), subtype: [RefreshSubtype::Request, RefreshSubtype::Begin, RefreshSubtype::End][usize::from(st)] }),
        ] {
            prop_assert_eq!(decode(&m.to_bytes(&ctx), &ctx), m);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(ctx in ctx(), ty in 1u8..=5, body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut b = vec![0xff; 16];
        b.extend_from_slice(&u16::try_from(19 + body.len()).unwrap().to_be_bytes());
        b.push(ty);
        b.extend_from_slice(&body);
        let _ = Message::decode(&b, &ctx);
    }

    #[test]
    fn mutated_updates_never_panic(ctx in ctx(), u in update(Context::modern()), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut b = Message::Update(u).to_bytes(&ctx);
        for (i, v) in flips {
            let i = i.index(b.len() - 19) + 19;
            b[i] = v;
        }
        let _ = Message::decode(&b, &ctx);
    }
}

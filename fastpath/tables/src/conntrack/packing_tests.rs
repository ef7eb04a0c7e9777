//! The 64-byte entry's packed NAT binding: property tests that the translated tuple rebuilt
//! from the entry (and, for IPv6, the side table) is the one the insert computed, for IPv4
//! and IPv6, SNAT, DNAT and both, and that removal gives back side-table slots and ports.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::entry::{Entry, V6Nat};
use super::*;
use crate::flow::proto;
use crate::nat::snat::{PortRange, SnatConfig};

const NODE_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const NODE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const PORTS: PortRange = PortRange {
    first: 1024,
    last: 1100,
};

fn any_proto() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(proto::TCP),
        Just(proto::UDP),
        Just(proto::ICMP),
        Just(proto::ICMPV6),
        Just(47u8),
    ]
}

/// A key of either family (ICMP keys use the identifier as both ports, like the pipeline's).
/// The protocol list names ICMP twice so that both families draw it equally often.
fn any_key() -> impl Strategy<Value = FlowKey> {
    (
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u16>(),
        any_proto(),
    )
        .prop_map(|(v6, s, d, sp, dp, p)| {
            // ICMP of the key's family (SNAT pools exist per family's ICMP protocol).
            let p = match p {
                proto::ICMP | proto::ICMPV6 if v6 => proto::ICMPV6,
                proto::ICMP | proto::ICMPV6 => proto::ICMP,
                other => other,
            };
            let (sp, dp) = match p {
                proto::ICMP | proto::ICMPV6 => (sp, sp),
                47 => (0, 0),
                _ => (sp, dp),
            };
            if v6 {
                FlowKey::v6(s.into(), d.into(), sp, dp, p)
            } else {
                let s4 = Ipv4Addr::new(s[0], s[1], s[2], s[3]);
                let d4 = Ipv4Addr::new(d[0], d[1], d[2], d[3]);
                FlowKey::v4(s4, d4, sp, dp, p)
            }
        })
}

/// A NAT request of the key's family: none, SNAT to the node, DNAT (with or without a new
/// port), or both.
fn any_nat(v6: bool) -> impl Strategy<Value = NatRequest> {
    (
        0u8..4,
        any::<[u8; 16]>(),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(move |(kind, addr, port)| {
            let (node, to): (IpAddr, IpAddr) = if v6 {
                (NODE_V6.into(), Ipv6Addr::from(addr).into())
            } else {
                (
                    NODE_V4.into(),
                    Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).into(),
                )
            };
            NatRequest {
                dnat: (kind & 1 != 0).then_some((to, port)),
                snat: (kind & 2 != 0).then_some(node),
            }
        })
}

fn table(ipv6_nat: usize) -> Conntrack {
    Conntrack::new(&ConntrackConfig {
        capacity: 64,
        hash_seed: 3,
        snat: SnatConfig {
            addresses: vec![NODE_V4.into(), NODE_V6.into()],
            port_range: PORTS,
        },
        ipv6_nat_capacity: Some(ipv6_nat),
        ..ConntrackConfig::default()
    })
}

/// What the insert must have produced, SNAT port aside (the pool picks it).
fn expected_translation(key: &FlowKey, nat: &NatRequest) -> FlowKey {
    let mut t = *key;
    if let Some((addr, port)) = nat.dnat {
        t = t.with_dst(addr, port.unwrap_or(key.dst_port())).unwrap();
    }
    if let Some(addr) = nat.snat {
        t = t.with_src(addr, t.src_port()).unwrap();
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Entry level: whatever the translated tuple of the key's family and protocol, the entry
    /// gives it back, recognises its reverse as the reply and nothing else.
    #[test]
    fn entry_rebuilds_any_translation(
        key in any_key(),
        other in any_key(),
        src in any::<[u8; 16]>(),
        dst in any::<[u8; 16]>(),
        ports in any::<(u16, u16)>(),
        flags in 0u8..8,
        verdict in 0u8..4,
    ) {
        let mut translated = key;
        if key.is_ipv6() {
            translated.src = src;
            translated.dst = dst;
        } else {
            translated.src[..4].copy_from_slice(&src[..4]);
            translated.dst[..4].copy_from_slice(&dst[..4]);
        }
        (translated.sport, translated.dport) = ports;
        // An IPv6 entry without a NAT flag has no side slot: its addresses are the key's.
        let nat = flags & (entry::FLAG_SNAT | entry::FLAG_DNAT) != 0;
        if key.is_ipv6() && !nat {
            translated.src = key.src;
            translated.dst = key.dst;
        }
        let side = [V6Nat::ZERO, V6Nat { src: translated.src, dst: translated.dst }];
        let slot = (key.is_ipv6() && nat).then_some(1);
        let mut e = Entry::new(key, &translated, slot, 1, flags);
        e.set_verdict(Verdict(verdict));
        prop_assert_eq!(e.translated(&side), translated);
        prop_assert_eq!(e.flags(), flags);
        prop_assert_eq!(e.verdict(), Verdict(verdict));
        prop_assert!(e.is_reply(&translated.reversed(), &side));
        prop_assert_eq!(e.is_reply(&other, &side), other == translated.reversed());
        let view = Conn::new(&e, &side);
        prop_assert_eq!(*view.original(), key);
        prop_assert_eq!(view.reply_key(), translated.reversed());
        prop_assert_eq!(view.rewrite_for(Direction::Original).is_some(), nat);
    }

    /// Table level: insert with any NAT of the key's family, find both directions, rebuild
    /// the translation, remove, and get the side slot and the SNAT port back.
    #[test]
    fn table_round_trips_nat_bindings(
        key in any_key(),
        nat_v4 in any_nat(false),
        nat_v6 in any_nat(true),
    ) {
        let nat = if key.is_ipv6() { nat_v6 } else { nat_v4 };
        let mut ct = table(2);
        let flags = TcpFlags(TcpFlags::SYN);
        let r = match ct.insert(key, 5, flags, Verdict::ALLOW, 9, nat) {
            Ok(r) => r,
            // A DNAT that maps a flow onto its own reverse is refused; nothing to check.
            Err(InsertError::ReplyCollision) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("insert: {e}"))),
        };
        let want = expected_translation(&key, &nat);
        let c = ct.get(r.id).unwrap();
        let t = c.translated();
        prop_assert_eq!(*c.original(), key);
        prop_assert_eq!((c.is_snat(), c.is_dnat()), (nat.snat.is_some(), nat.dnat.is_some()));
        prop_assert_eq!((c.policy_epoch(), c.last_seen(), c.verdict()), (9, 5, Verdict::ALLOW));
        if nat.snat.is_some() && key.has_ports() {
            prop_assert!(PORTS.contains(t.src_port()));
            let mut w = want;
            w.sport = t.sport;
            if key.is_icmp() {
                w.dport = t.sport;
            }
            prop_assert_eq!(t, w);
        } else {
            prop_assert_eq!(t, want);
        }
        prop_assert_eq!(c.rewrite_for(Direction::Reply).is_some(), nat != NatRequest::NONE);
        prop_assert_eq!(ct.lookup(&key), Some(r));
        let mut batch = [None; 2];
        ct.lookup_batch(&[key, t.reversed()], &mut batch);
        prop_assert_eq!(batch, [ct.lookup(&key), ct.lookup(&t.reversed())]);
        let back = ct.lookup(&t.reversed()).unwrap();
        prop_assert_eq!(back.id, r.id);
        if t.reversed() != key {
            prop_assert_eq!(back.dir, Direction::Reply);
        }
        let side_used = usize::from(key.is_ipv6() && nat != NatRequest::NONE);
        prop_assert_eq!(ct.v6_free.len(), 2 - side_used);
        let snat_free = |ct: &Conntrack| {
            nat.snat.and_then(|a| ct.snat_ports().available(a, key.proto()))
        };
        let ports_before = snat_free(&ct);
        prop_assert!(ct.remove(r.id));
        prop_assert_eq!(ct.v6_free.len(), 2);
        prop_assert!(ct.lookup(&key).is_none());
        prop_assert!(ct.lookup(&t.reversed()).is_none());
        if nat.snat.is_some() && key.has_ports() {
            prop_assert_eq!(snat_free(&ct), ports_before.map(|n| n + 1));
        }
    }
}

#[test]
fn ipv6_nat_side_table_full_refuses_and_recovers() {
    let mut ct = table(1);
    let k = |sport| {
        FlowKey::v6(
            "2001:db8:1::2".parse().unwrap(),
            "2001:db8:2::3".parse().unwrap(),
            sport,
            443,
            proto::TCP,
        )
    };
    let syn = TcpFlags(TcpFlags::SYN);
    let snat = NatRequest::snat(NODE_V6.into());
    let a = ct.insert(k(1), 1, syn, Verdict::ALLOW, 0, snat).unwrap();
    let ports = ct.snat_ports().available(NODE_V6.into(), proto::TCP);
    assert_eq!(
        ct.insert(k(2), 1, syn, Verdict::ALLOW, 0, snat),
        Err(InsertError::Ipv6NatFull)
    );
    // Refused before a port was taken, and IPv6 flows without NAT and IPv4 NAT still fit.
    assert_eq!(ct.snat_ports().available(NODE_V6.into(), proto::TCP), ports);
    assert!(
        ct.insert(k(3), 1, syn, Verdict::ALLOW, 0, NatRequest::NONE)
            .is_ok()
    );
    let v4 = FlowKey::v4([10, 0, 0, 1].into(), [1, 1, 1, 1].into(), 5, 80, proto::TCP);
    assert!(
        ct.insert(
            v4,
            1,
            syn,
            Verdict::ALLOW,
            0,
            NatRequest::snat(NODE_V4.into())
        )
        .is_ok()
    );
    // Expiry frees the side slot like removal does.
    let late = 1
        + ct.timeouts()
            .for_state(proto::TCP, ConnState::Tcp(TcpState::SynSent))
        + 1;
    assert_eq!(ct.track(a, late, syn), Tracked::Expired);
    assert!(ct.insert(k(2), late, syn, Verdict::ALLOW, 0, snat).is_ok());
}

#[test]
fn verdict_keeps_its_two_bits_beside_the_flags() {
    let mut ct = table(1);
    let k = FlowKey::v4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 1, 2, proto::UDP);
    let r = ct
        .insert(
            k,
            1,
            TcpFlags::NONE,
            Verdict::ALLOW_ORIGINAL,
            0,
            NatRequest::NONE,
        )
        .unwrap();
    let reply = ct.lookup(&k.reversed()).unwrap();
    assert_eq!(ct.track(reply, 2, TcpFlags::NONE), Tracked::Valid);
    let c = ct.get(r.id).unwrap();
    assert!(c.seen_reply() && !c.is_snat() && !c.is_dnat());
    assert_eq!(c.verdict(), Verdict::ALLOW_ORIGINAL);
    assert!(ct.set_verdict(r.id, Verdict::ALLOW_REPLY, 7));
    let c = ct.get(r.id).unwrap();
    assert_eq!((c.verdict(), c.policy_epoch()), (Verdict::ALLOW_REPLY, 7));
    assert!(c.seen_reply(), "setting the verdict keeps the flags");
}

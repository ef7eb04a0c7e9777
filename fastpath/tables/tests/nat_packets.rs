//! End-to-end NAT on real packet bytes: conntrack decides the translation, the checksum
//! helpers rewrite the packet, and the result must be byte-identical to the packet that
//! etherparse builds from scratch for the translated tuple (an independent checksum check).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::PacketBuilder;
use tortie_tables::checksum::{Endpoint, locate_l4, rewrite_addr, rewrite_port};
use tortie_tables::{
    Conntrack, ConntrackConfig, Direction, DnatMap, FlowKey, NatRequest, SnatConfig, TcpFlags,
    Tracked, Verdict, proto,
};

const NODE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const POD: Ipv4Addr = Ipv4Addr::new(10, 65, 0, 2);
const WEB: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 9);

fn v4_addr(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("expected IPv4"),
    }
}

fn tcp_v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, syn_ack: bool) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, 1000, 64000);
    let b = if syn_ack { b.syn().ack(77) } else { b.syn() };
    let mut out = Vec::new();
    b.write(&mut out, b"hello").expect("write to Vec");
    out
}

/// Apply the rewrite of `target` to `packet` (whose current tuple is `current`).
fn apply(packet: &mut [u8], current: &FlowKey, target: &FlowKey) {
    let l4 = locate_l4(packet)
        .expect("valid IP")
        .expect("transport header");
    if current.src_ip() != target.src_ip() {
        rewrite_addr(packet, Endpoint::Source, target.src_ip(), Some(l4)).expect("rewrite");
    }
    if current.dst_ip() != target.dst_ip() {
        rewrite_addr(packet, Endpoint::Destination, target.dst_ip(), Some(l4)).expect("rewrite");
    }
    if current.src_port() != target.src_port() {
        rewrite_port(packet, Endpoint::Source, target.src_port(), l4).expect("rewrite");
    }
    if current.dst_port() != target.dst_port() {
        rewrite_port(packet, Endpoint::Destination, target.dst_port(), l4).expect("rewrite");
    }
}

#[test]
fn snat_tcp_round_trip_matches_freshly_built_packets() {
    let mut ct = Conntrack::new(&ConntrackConfig {
        capacity: 64,
        snat: SnatConfig {
            addresses: vec![NODE.into()],
            ..Default::default()
        },
        ..Default::default()
    });
    // Pod -> web SYN, masqueraded.
    let key = FlowKey::v4(POD, WEB, 40000, 443, proto::TCP);
    let mut syn = tcp_v4(POD.octets(), WEB.octets(), 40000, 443, false);
    let conn = ct
        .insert(
            key,
            1,
            TcpFlags(TcpFlags::SYN),
            Verdict::ALLOW,
            0,
            NatRequest::snat(NODE.into()),
        )
        .unwrap();
    let out = ct
        .get(conn.id)
        .unwrap()
        .rewrite_for(Direction::Original)
        .unwrap();
    apply(&mut syn, &key, &out);
    assert_eq!(
        syn,
        tcp_v4(NODE.octets(), WEB.octets(), out.src_port(), 443, false)
    );

    // Web -> node SYN-ACK, found as the reply and translated back to the pod.
    let reply_key = FlowKey::v4(WEB, NODE, 443, out.src_port(), proto::TCP);
    let mut syn_ack = tcp_v4(WEB.octets(), NODE.octets(), 443, out.src_port(), true);
    let hit = ct.lookup(&reply_key).unwrap();
    assert_eq!(hit.dir, Direction::Reply);
    assert_eq!(
        ct.track(hit, 2, TcpFlags(TcpFlags::SYN | TcpFlags::ACK)),
        Tracked::Valid
    );
    let back = ct.get(hit.id).unwrap().rewrite_for(hit.dir).unwrap();
    apply(&mut syn_ack, &reply_key, &back);
    assert_eq!(
        syn_ack,
        tcp_v4(WEB.octets(), POD.octets(), 443, 40000, true)
    );
}

#[test]
fn floating_ip_dnat_udp_v4_and_v6() {
    let mut dnat = DnatMap::new();
    let floating = IpAddr::from([198, 18, 7, 7]);
    dnat.insert(floating, POD.into()).unwrap();
    let mut ct = Conntrack::new(&ConntrackConfig {
        capacity: 64,
        ..Default::default()
    });

    let key = FlowKey::v4(WEB, Ipv4Addr::new(198, 18, 7, 7), 5353, 53, proto::UDP);
    let internal = dnat.internal_for(key.dst_ip()).unwrap();
    let conn = ct
        .insert(
            key,
            1,
            TcpFlags::NONE,
            Verdict::ALLOW,
            0,
            NatRequest::dnat(internal, None),
        )
        .unwrap();
    let target = ct
        .get(conn.id)
        .unwrap()
        .rewrite_for(Direction::Original)
        .unwrap();
    let build = |src: [u8; 4], dst: [u8; 4], sport, dport| {
        let mut v = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut v, b"query")
            .unwrap();
        v
    };
    let mut pkt = build(WEB.octets(), [198, 18, 7, 7], 5353, 53);
    apply(&mut pkt, &key, &target);
    assert_eq!(pkt, build(WEB.octets(), v4_addr(internal), 5353, 53));

    // IPv6 flow through a v6 floating IP.
    let f6: Ipv6Addr = "2001:db8:f::7".parse().unwrap();
    let w6: Ipv6Addr = "2001:db8:a::2".parse().unwrap();
    let c6: Ipv6Addr = "2001:db8:c::9".parse().unwrap();
    dnat.insert(f6.into(), w6.into()).unwrap();
    let key6 = FlowKey::v6(c6, f6, 6000, 80, proto::UDP);
    let conn6 = ct
        .insert(
            key6,
            1,
            TcpFlags::NONE,
            Verdict::ALLOW,
            0,
            NatRequest::dnat(dnat.internal_for(f6.into()).unwrap(), Some(8080)),
        )
        .unwrap();
    let target6 = ct
        .get(conn6.id)
        .unwrap()
        .rewrite_for(Direction::Original)
        .unwrap();
    let build6 = |dst: Ipv6Addr, dport| {
        let mut v = Vec::new();
        PacketBuilder::ipv6(c6.octets(), dst.octets(), 64)
            .udp(6000, dport)
            .write(&mut v, b"GET")
            .unwrap();
        v
    };
    let mut p6 = build6(f6, 80);
    apply(&mut p6, &key6, &target6);
    assert_eq!(p6, build6(w6, 8080));
    // The workload's answer is found as the reply of the same connection.
    let answer = FlowKey::v6(w6, c6, 8080, 6000, proto::UDP);
    assert_eq!(
        ct.lookup(&answer).map(|r| (r.id, r.dir)),
        Some((conn6.id, Direction::Reply))
    );
}

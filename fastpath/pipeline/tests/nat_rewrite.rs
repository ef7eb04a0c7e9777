//! `rewrite::apply_nat` against full recomputation: random IPv4 / IPv6 TCP and UDP packets
//! and ICMP echoes with valid checksums are translated to random tuples of their family;
//! the result must carry the new addresses and ports and exactly the checksums etherparse
//! computes from scratch (the incremental updates are summed and applied once per field).

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use tortie_pipeline::rewrite::{apply_nat, apply_nat_and_decrement_ttl, decrement_ttl};
use tortie_tables::FlowKey;
use tortie_wire::parse_frame;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

#[derive(Clone, Debug)]
enum Kind {
    Tcp,
    Udp,
    Echo,
}

fn build(
    kind: &Kind,
    v6: bool,
    src: [u8; 16],
    dst: [u8; 16],
    sp: u16,
    dp: u16,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(MAC, MAC);
    let mut out = Vec::new();
    match (kind, v6) {
        (Kind::Tcp, false) => {
            let b = eth
                .ipv4(
                    src[..4].try_into().unwrap(),
                    dst[..4].try_into().unwrap(),
                    64,
                )
                .tcp(sp, dp, 1, 1000)
                .ack(7);
            b.write(&mut out, payload).unwrap();
        }
        (Kind::Udp, false) => {
            eth.ipv4(
                src[..4].try_into().unwrap(),
                dst[..4].try_into().unwrap(),
                64,
            )
            .udp(sp, dp)
            .write(&mut out, payload)
            .unwrap();
        }
        (Kind::Echo, false) => {
            eth.ipv4(
                src[..4].try_into().unwrap(),
                dst[..4].try_into().unwrap(),
                64,
            )
            .icmpv4_echo_request(sp, 1)
            .write(&mut out, payload)
            .unwrap();
        }
        (Kind::Tcp, true) => {
            eth.ipv6(src, dst, 64)
                .tcp(sp, dp, 1, 1000)
                .ack(7)
                .write(&mut out, payload)
                .unwrap();
        }
        (Kind::Udp, true) => {
            eth.ipv6(src, dst, 64)
                .udp(sp, dp)
                .write(&mut out, payload)
                .unwrap();
        }
        (Kind::Echo, true) => {
            eth.ipv6(src, dst, 64)
                .icmpv6_echo_request(sp, 1)
                .write(&mut out, payload)
                .unwrap();
        }
    }
    out
}

fn key(v6: bool, src: [u8; 16], dst: [u8; 16], sp: u16, dp: u16, proto: u8) -> FlowKey {
    if v6 {
        FlowKey::v6(Ipv6Addr::from(src), Ipv6Addr::from(dst), sp, dp, proto)
    } else {
        let s = Ipv4Addr::new(src[0], src[1], src[2], src[3]);
        let d = Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]);
        FlowKey::v4(s, d, sp, dp, proto)
    }
}

fn check(frame: &[u8], v6: bool, to: &FlowKey) {
    let sliced = SlicedPacket::from_ethernet(frame).unwrap();
    match sliced.net.unwrap() {
        etherparse::NetSlice::Ipv4(ip) => {
            assert!(!v6);
            let h = ip.header().to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            assert_eq!(std::net::IpAddr::from(h.source), to.src_ip());
            assert_eq!(std::net::IpAddr::from(h.destination), to.dst_ip());
            let payload = ip.payload().payload;
            match sliced.transport.unwrap() {
                TransportSlice::Tcp(t) => {
                    let th = t.to_header();
                    assert_eq!(
                        (th.source_port, th.destination_port),
                        (to.src_port(), to.dst_port())
                    );
                    let want = th
                        .calc_checksum_ipv4_raw(h.source, h.destination, t.payload())
                        .unwrap();
                    assert_eq!(th.checksum, want, "TCP checksum");
                }
                TransportSlice::Udp(u) => {
                    let uh = u.to_header();
                    assert_eq!(
                        (uh.source_port, uh.destination_port),
                        (to.src_port(), to.dst_port())
                    );
                    if uh.checksum != 0 {
                        let want = uh
                            .calc_checksum_ipv4_raw(h.source, h.destination, u.payload())
                            .unwrap();
                        assert_eq!(uh.checksum, want, "UDP checksum");
                    }
                }
                TransportSlice::Icmpv4(i) => {
                    assert_eq!(u16::from_be_bytes([payload[4], payload[5]]), to.src_port());
                    let want = i.header().icmp_type.calc_checksum(i.payload());
                    assert_eq!(i.checksum(), want, "ICMP checksum");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        etherparse::NetSlice::Ipv6(ip) => {
            assert!(v6);
            let h = ip.header().to_header();
            assert_eq!(std::net::IpAddr::from(h.source), to.src_ip());
            assert_eq!(std::net::IpAddr::from(h.destination), to.dst_ip());
            match sliced.transport.unwrap() {
                TransportSlice::Tcp(t) => {
                    let th = t.to_header();
                    assert_eq!(
                        (th.source_port, th.destination_port),
                        (to.src_port(), to.dst_port())
                    );
                    let want = th
                        .calc_checksum_ipv6_raw(h.source, h.destination, t.payload())
                        .unwrap();
                    assert_eq!(th.checksum, want, "TCP checksum");
                }
                TransportSlice::Udp(u) => {
                    let uh = u.to_header();
                    assert_eq!(
                        (uh.source_port, uh.destination_port),
                        (to.src_port(), to.dst_port())
                    );
                    let want = uh
                        .calc_checksum_ipv6_raw(h.source, h.destination, u.payload())
                        .unwrap();
                    assert_eq!(uh.checksum, want, "UDP checksum");
                }
                TransportSlice::Icmpv6(i) => {
                    let hdr = i.header();
                    let want = hdr
                        .icmp_type
                        .calc_checksum(h.source, h.destination, i.payload())
                        .unwrap();
                    assert_eq!(i.checksum(), want, "ICMPv6 checksum");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        other => panic!("unexpected {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn translated_packets_carry_exact_checksums(
        kind in prop_oneof![Just(Kind::Tcp), Just(Kind::Udp), Just(Kind::Echo)],
        v6 in any::<bool>(),
        addrs in any::<([u8; 16], [u8; 16], [u8; 16], [u8; 16])>(),
        ports in any::<(u16, u16, u16, u16)>(),
        keep in any::<(bool, bool, bool, bool)>(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let (src, dst, mut nsrc, mut ndst) = addrs;
        let (sp, dp, mut nsp, mut ndp) = ports;
        // Often leave a field as it was, as SNAT and DNAT each change one side.
        if keep.0 { nsrc = src; }
        if keep.1 { ndst = dst; }
        if keep.2 { nsp = sp; }
        if keep.3 { ndp = dp; }
        let (sp, dp, nsp, ndp, proto) = match kind {
            Kind::Echo => (sp, sp, nsp, nsp, if v6 { 58 } else { 1 }),
            Kind::Tcp => (sp, dp, nsp, ndp, 6),
            Kind::Udp => (sp, dp, nsp, ndp, 17),
        };
        let mut frame = build(&kind, v6, src, dst, sp, dp, &payload);
        let p = parse_frame(&frame).unwrap();
        let to = key(v6, nsrc, ndst, nsp, ndp, proto);
        apply_nat(&mut frame, &p, &to);
        check(&frame, v6, &to);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The merged rewrite of a forwarded NAT'd packet writes exactly the bytes of the NAT
    /// followed by the TTL decrement, whatever the TTL (zero included) and whatever the
    /// header checksum field held; and the TTL decrement alone writes exactly what
    /// `tortie_wire::ipv4::decrement_ttl` writes.
    #[test]
    fn merged_nat_and_ttl_equal_the_two_steps(
        kind in prop_oneof![Just(Kind::Tcp), Just(Kind::Udp), Just(Kind::Echo)],
        v6 in any::<bool>(),
        addrs in any::<([u8; 16], [u8; 16], [u8; 16], [u8; 16])>(),
        ports in any::<(u16, u16, u16, u16)>(),
        keep in any::<(bool, bool)>(),
        ttl in prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
        header_sum in proptest::option::of(prop_oneof![Just(0u16), Just(0xffff_u16), any::<u16>()]),
    ) {
        let (src, dst, mut nsrc, ndst) = addrs;
        let (sp, dp, nsp, ndp) = ports;
        if keep.0 { nsrc = src; }
        let ndst = if keep.1 { dst } else { ndst };
        let (sp, dp, nsp, ndp, proto) = match kind {
            Kind::Echo => (sp, sp, nsp, nsp, if v6 { 58 } else { 1 }),
            Kind::Tcp => (sp, dp, nsp, ndp, 6),
            Kind::Udp => (sp, dp, nsp, ndp, 17),
        };
        let mut frame = build(&kind, v6, src, dst, sp, dp, &[1, 2, 3]);
        if v6 {
            frame[14 + 7] = ttl;
        } else {
            frame[14 + 8] = ttl;
            if let Some(c) = header_sum {
                frame[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
            }
        }
        let p = parse_frame_unchecked(&frame);
        let to = key(v6, nsrc, ndst, nsp, ndp, proto);
        let mut merged = frame.clone();
        apply_nat_and_decrement_ttl(&mut merged, &p, &to);
        let mut steps = frame.clone();
        apply_nat(&mut steps, &p, &to);
        decrement_ttl(&mut steps, &p);
        prop_assert_eq!(&merged, &steps);
        if !v6 {
            let mut fast = frame.clone();
            decrement_ttl(&mut fast, &p);
            let mut wire = frame;
            tortie_wire::ipv4::decrement_ttl(&mut wire[14..]);
            prop_assert_eq!(fast, wire);
        }
    }
}

/// The summary of a frame whose IPv4 header checksum may have been overwritten: parsed
/// with the checksum repaired, which changes none of the summary's fields.
fn parse_frame_unchecked(frame: &[u8]) -> tortie_wire::Parsed {
    let mut copy = frame.to_vec();
    if copy[12..14] == [0x08, 0x00] {
        copy[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
        let c = tortie_wire::checksum::checksum(&copy[14..14 + 20]);
        copy[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    }
    parse_frame(&copy).unwrap()
}

/// An IPv4 UDP datagram sent without a checksum (zero, RFC 768) keeps none after NAT.
#[test]
fn udp_without_checksum_stays_without() {
    let src = [198, 19, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let dst = [198, 18, 200, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut frame = build(&Kind::Udp, false, src, dst, 1000, 53, &[1, 2, 3]);
    let at = 14 + 20 + 6;
    frame[at..at + 2].copy_from_slice(&[0, 0]);
    let p = parse_frame(&frame).unwrap();
    let to = FlowKey::v4(
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 18, 200, 9),
        2000,
        53,
        17,
    );
    apply_nat(&mut frame, &p, &to);
    assert_eq!(&frame[at..at + 2], &[0, 0]);
    assert_eq!(&frame[14 + 12..14 + 16], &[198, 18, 0, 1]);
    assert_eq!(&frame[14 + 20..14 + 22], &2000u16.to_be_bytes());
    check(&frame, false, &to);
}

use super::*;
use etherparse::PacketBuilder;
use proptest::prelude::*;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn fix_ipv4_checksum(f: &mut [u8], l3: usize) {
    f[l3 + 10] = 0;
    f[l3 + 11] = 0;
    let ihl = usize::from(f[l3] & 0x0f) * 4;
    let c = crate::checksum::checksum(&f[l3..l3 + ihl]);
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn tcp_over_ipv4() {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .tcp(1000, 80, 1, 1024)
        .syn();
    let mut f = Vec::new();
    b.write(&mut f, &[1, 2, 3]).unwrap();
    let p = parse_frame(&f).unwrap();
    assert_eq!(p.l3, L3::Ipv4);
    assert_eq!((p.src, p.dst), (v4([198, 18, 0, 1]), v4([198, 18, 0, 2])));
    assert_eq!((p.proto, p.src_port, p.dst_port), (6, 1000, 80));
    assert_eq!(
        p.tcp_flags & crate::l4::tcp_flags::SYN,
        crate::l4::tcp_flags::SYN
    );
    assert_eq!((p.l3_offset, p.l4_offset, p.ip_len), (14, 34, 43));
    assert_eq!(p.ttl, 64);
}

#[test]
fn udp_over_vlan_ipv6() {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(etherparse::VlanId::try_new(100).unwrap())
        .ipv6(V6_A, V6_B, 5)
        .udp(53, 5353);
    let mut f = Vec::new();
    b.write(&mut f, &[0; 4]).unwrap();
    let p = parse_frame(&f).unwrap();
    assert_eq!(p.l3, L3::Ipv6);
    assert_eq!(p.vlan, Some(100));
    assert_eq!((p.proto, p.src_port, p.dst_port, p.ttl), (17, 53, 5353, 5));
    assert_eq!((p.l3_offset, p.l4_offset), (18, 58));
}

#[test]
fn icmp_error_quotes_flow() {
    let inner = PacketBuilder::ipv4([198, 18, 0, 1], [198, 19, 0, 9], 1).udp(4000, 53);
    let mut quoted = Vec::new();
    inner.write(&mut quoted, &[]).unwrap();
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([198, 18, 0, 254], [198, 18, 0, 1], 64)
        .icmpv4_raw(11, 0, [0; 4]);
    let mut f = Vec::new();
    b.write(&mut f, &quoted).unwrap();
    let p = parse_frame(&f).unwrap();
    assert_eq!((p.icmp_type, p.icmp_code), (11, 0));
    let e = p.embedded.unwrap();
    assert_eq!((e.src, e.dst), (v4([198, 18, 0, 1]), v4([198, 19, 0, 9])));
    assert_eq!((e.proto, e.src_port, e.dst_port), (17, 4000, 53));
}

#[test]
fn icmpv6_error_quotes_flow() {
    let inner = PacketBuilder::ipv6(V6_A, V6_B, 1).tcp(4000, 443, 0, 0);
    let mut quoted = Vec::new();
    inner.write(&mut quoted, &[]).unwrap();
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(V6_B, V6_A, 64)
        .icmpv6_raw(3, 0, [0; 4]);
    let mut f = Vec::new();
    b.write(&mut f, &quoted).unwrap();
    let p = parse_frame(&f).unwrap();
    let e = p.embedded.unwrap();
    assert_eq!((e.proto, e.src_port, e.dst_port), (6, 4000, 443));
}

#[test]
fn echo_uses_identifier_as_ports() {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .icmpv4_echo_request(77, 1);
    let mut f = Vec::new();
    b.write(&mut f, &[]).unwrap();
    let p = parse_frame(&f).unwrap();
    assert_eq!(
        (p.proto, p.icmp_type, p.src_port, p.dst_port),
        (1, 8, 77, 77)
    );
}

#[test]
fn later_fragment_has_no_ports() {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(1, 2);
    let mut f = Vec::new();
    b.write(&mut f, &[0; 16]).unwrap();
    f[14 + 6] = 0;
    f[14 + 7] = 2;
    fix_ipv4_checksum(&mut f, 14);
    let p = parse_frame(&f).unwrap();
    assert_eq!(p.fragment, Fragment::Later);
    assert_eq!((p.src_port, p.dst_port), (0, 0));
    f[14 + 6] = 0x20;
    f[14 + 7] = 0;
    fix_ipv4_checksum(&mut f, 14);
    let p = parse_frame(&f).unwrap();
    assert_eq!(p.fragment, Fragment::First);
    assert_eq!((p.src_port, p.dst_port), (1, 2));
}

#[test]
fn arp_request() {
    let mut f = vec![0u8; 42];
    crate::ethernet::write_header(&mut f, [0xff; 6], MAC_A, ethertype::ARP).unwrap();
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&MAC_A);
    f[28..32].copy_from_slice(&[198, 18, 0, 1]);
    f[38..42].copy_from_slice(&[169, 254, 1, 1]);
    let p = parse_frame(&f).unwrap();
    assert_eq!(p.l3, L3::Arp);
    assert_eq!(p.arp_op, 1);
    assert_eq!(p.dst, v4([169, 254, 1, 1]));
}

#[test]
fn truncated_tcp_is_an_error() {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .tcp(1, 2, 0, 0);
    let mut f = Vec::new();
    b.write(&mut f, &[]).unwrap();
    f[16..18].copy_from_slice(&30u16.to_be_bytes());
    fix_ipv4_checksum(&mut f, 14);
    assert_eq!(parse_frame(&f).unwrap_err(), WireError::TcpMalformed);
}

fn arb_frame() -> impl Strategy<Value = (Vec<u8>, u8, u16, u16)> {
    (
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
        ),
        any::<bool>(),
        0u8..3,
        any::<u16>(),
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        1u8..=255,
    )
        .prop_map(|((s4, d4, s6, d6), v6, l4, sp, dp, payload, ttl)| {
            let eth = PacketBuilder::ethernet2(MAC_A, MAC_B);
            let mut f = Vec::new();
            let proto = match (v6, l4) {
                (false, 0) => {
                    eth.ipv4(s4, d4, ttl)
                        .tcp(sp, dp, 9, 100)
                        .write(&mut f, &payload)
                        .unwrap();
                    6
                }
                (false, 1) => {
                    eth.ipv4(s4, d4, ttl)
                        .udp(sp, dp)
                        .write(&mut f, &payload)
                        .unwrap();
                    17
                }
                (false, _) => {
                    let b = eth.ipv4(s4, d4, ttl).icmpv4_echo_request(sp, dp);
                    b.write(&mut f, &payload).unwrap();
                    1
                }
                (true, 0) => {
                    eth.ipv6(s6, d6, ttl)
                        .tcp(sp, dp, 9, 100)
                        .write(&mut f, &payload)
                        .unwrap();
                    6
                }
                (true, 1) => {
                    eth.ipv6(s6, d6, ttl)
                        .udp(sp, dp)
                        .write(&mut f, &payload)
                        .unwrap();
                    17
                }
                (true, _) => {
                    let b = eth.ipv6(s6, d6, ttl).icmpv6_echo_request(sp, dp);
                    b.write(&mut f, &payload).unwrap();
                    58
                }
            };
            let (sp, dp) = if proto == 1 || proto == 58 {
                (sp, sp)
            } else {
                (sp, dp)
            };
            (f, proto, sp, dp)
        })
}

proptest! {
    /// Any byte string either decodes or yields an error; it never panics.
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_frame(&bytes);
    }

    /// Decoding in place over a summary left by an earlier, different frame gives exactly
    /// what decoding afresh gives: nothing of the earlier frame survives.
    #[test]
    fn decoding_in_place_matches_decoding_afresh(
        (first, _, _, _) in arb_frame(),
        (second, _, _, _) in arb_frame(),
        cut in any::<usize>(),
    ) {
        let mut p = parse_frame(&first).unwrap();
        let second = &second[..second.len() - cut % 8.min(second.len())];
        match parse_frame(second) {
            Ok(want) => {
                prop_assert!(parse_frame_into(second, &mut p).is_ok());
                prop_assert_eq!(p, want);
            }
            Err(e) => prop_assert_eq!(parse_frame_into(second, &mut p), Err(e)),
        }
    }

    /// Mutating a byte of a valid frame, or cutting it short, never panics.
    #[test]
    fn mutations_never_panic((f, _, _, _) in arb_frame(), idx in any::<usize>(), val in any::<u8>()) {
        let mut f = f;
        let i = idx % f.len();
        f[i] = val;
        let _ = parse_frame(&f);
        let _ = parse_frame(&f[..i]);
    }

    /// The decoder agrees with etherparse on every generated frame.
    #[test]
    fn agrees_with_etherparse((f, proto, sp, dp) in arb_frame()) {
        let p = parse_frame(&f).unwrap();
        let sliced = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        match sliced.net.unwrap() {
            etherparse::NetSlice::Ipv4(ip) => {
                prop_assert_eq!(p.src, IpAddr::V4(ip.header().source_addr()));
                prop_assert_eq!(p.dst, IpAddr::V4(ip.header().destination_addr()));
                prop_assert_eq!(p.ttl, ip.header().ttl());
            }
            etherparse::NetSlice::Ipv6(ip) => {
                prop_assert_eq!(p.src, IpAddr::V6(ip.header().source_addr()));
                prop_assert_eq!(p.dst, IpAddr::V6(ip.header().destination_addr()));
                prop_assert_eq!(p.ttl, ip.header().hop_limit());
            }
            _ => prop_assert!(false, "unexpected net slice"),
        }
        prop_assert_eq!(p.proto, proto);
        prop_assert_eq!((p.src_port, p.dst_port), (sp, dp));
        prop_assert_eq!(usize::from(p.l3_offset) + usize::from(p.ip_len), f.len());
    }
}

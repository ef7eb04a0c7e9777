//! Incremental updates checked against full recomputation.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

/// Build an IPv4 packet (20-byte header) with a transport header of `proto` and `payload`,
/// with every checksum filled in by full computation.
fn ipv4_packet(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let l4_len = match proto {
        proto::TCP => 20,
        _ => 8,
    };
    let total = 20 + l4_len + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    match proto {
        proto::TCP => {
            p[20..22].copy_from_slice(&ports.0.to_be_bytes());
            p[22..24].copy_from_slice(&ports.1.to_be_bytes());
            p[32] = 5 << 4;
        }
        proto::UDP => {
            p[20..22].copy_from_slice(&ports.0.to_be_bytes());
            p[22..24].copy_from_slice(&ports.1.to_be_bytes());
            p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        }
        _ => {
            p[20] = 8; // echo request
            p[24..26].copy_from_slice(&ports.0.to_be_bytes());
        }
    }
    p[20 + l4_len..].copy_from_slice(payload);
    fill_checksums(&mut p);
    p
}

fn ipv6_packet(
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let l4_len = if proto == proto::TCP { 20 } else { 8 };
    let mut p = vec![0u8; 40 + l4_len + payload.len()];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((l4_len + payload.len()) as u16).to_be_bytes());
    p[6] = proto;
    p[7] = 64;
    p[8..24].copy_from_slice(&src);
    p[24..40].copy_from_slice(&dst);
    match proto {
        proto::TCP | proto::UDP => {
            p[40..42].copy_from_slice(&ports.0.to_be_bytes());
            p[42..44].copy_from_slice(&ports.1.to_be_bytes());
            if proto == proto::TCP {
                p[52] = 5 << 4;
            } else {
                p[44..46].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            }
        }
        _ => {
            p[40] = 128;
            p[44..46].copy_from_slice(&ports.0.to_be_bytes());
        }
    }
    p[40 + l4_len..].copy_from_slice(payload);
    fill_checksums(&mut p);
    p
}

fn csum_field(proto: u8) -> usize {
    match proto {
        proto::TCP => 16,
        proto::UDP => 6,
        _ => 2,
    }
}

/// Recompute every checksum from scratch.
fn fill_checksums(p: &mut [u8]) {
    let l4 = locate_l4(p).unwrap().unwrap();
    let at = l4.offset + csum_field(l4.proto);
    p[at..at + 2].fill(0);
    let mut c = transport_checksum(p, l4).unwrap();
    if l4.proto == proto::UDP && c == 0 {
        c = 0xffff;
    }
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
    if p[0] >> 4 == 4 {
        p[10..12].fill(0);
        let h = checksum(&p[..20]);
        p[10..12].copy_from_slice(&h.to_be_bytes());
    }
}

/// True when every checksum verifies (the sum over the covered data is all ones).
fn verifies(p: &[u8]) -> bool {
    let l4 = locate_l4(p).unwrap().unwrap();
    let ip_ok = p[0] >> 4 != 4 || ones_complement_sum(&p[..20], 0) == 0xffff;
    // Verifying = the full checksum with the field included folds to zero.
    let mut q = p.to_vec();
    let at = l4.offset + csum_field(l4.proto);
    let stored = u16::from_be_bytes([q[at], q[at + 1]]);
    q[at..at + 2].fill(0);
    let full = transport_checksum(&q, l4).unwrap();
    let l4_ok =
        stored == full || (stored == 0xffff && full == 0) || (stored == 0 && full == 0xffff);
    ip_ok && l4_ok
}

#[test]
fn rfc1624_example() {
    // RFC 1624 section 4: HC = 0xDD2F, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
    assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
}

#[test]
fn errors_leave_the_packet_alone() {
    let mut p = ipv4_packet([10, 0, 0, 1], [10, 0, 0, 2], proto::TCP, (1, 2), b"x");
    let before = p.clone();
    let l4 = locate_l4(&p).unwrap();
    assert_eq!(
        rewrite_addr(&mut p, Endpoint::Source, "::1".parse().unwrap(), l4),
        Err(RewriteError::Version { found: 4 })
    );
    let short = L4Location {
        offset: p.len() - 4,
        proto: proto::TCP,
    };
    assert!(matches!(
        rewrite_addr(
            &mut p,
            Endpoint::Source,
            IpAddr::from([1, 2, 3, 4]),
            Some(short)
        ),
        Err(RewriteError::Truncated { .. })
    ));
    assert_eq!(
        rewrite_port(
            &mut p,
            Endpoint::Source,
            9,
            L4Location {
                offset: 20,
                proto: 47
            }
        ),
        Err(RewriteError::NoPorts(47))
    );
    assert_eq!(p, before);
    assert!(matches!(
        locate_l4(&[0x45; 10]),
        Err(RewriteError::Truncated { need: 20, have: 10 })
    ));
    assert_eq!(locate_l4(&[0x10]), Err(RewriteError::Version { found: 1 }));
}

#[test]
fn fragments_and_zero_udp_checksums() {
    let mut p = ipv4_packet([10, 0, 0, 1], [10, 0, 0, 2], proto::UDP, (1, 2), b"abc");
    p[6] = 0x00;
    p[7] = 0x10; // fragment offset 16: no transport header here
    assert_eq!(locate_l4(&p).unwrap(), None);
    let mut q = ipv4_packet([10, 0, 0, 1], [10, 0, 0, 2], proto::UDP, (1, 2), b"abc");
    q[26..28].fill(0); // UDP checksum disabled
    let l4 = locate_l4(&q).unwrap();
    rewrite_addr(&mut q, Endpoint::Source, IpAddr::from([192, 0, 2, 1]), l4).unwrap();
    rewrite_port(&mut q, Endpoint::Source, 999, l4.unwrap()).unwrap();
    assert_eq!(
        &q[26..28],
        &[0, 0],
        "a disabled UDP checksum stays disabled"
    );
    assert_eq!(ones_complement_sum(&q[..20], 0), 0xffff);
}

fn transport() -> impl Strategy<Value = u8> {
    prop_oneof![Just(proto::TCP), Just(proto::UDP), Just(proto::ICMP)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn update_u16_matches_recomputation(data in prop::collection::vec(any::<u16>(), 1..40), i in any::<prop::sample::Index>(), new in any::<u16>()) {
        let bytes: Vec<u8> = data.iter().flat_map(|w| w.to_be_bytes()).collect();
        let c = checksum(&bytes);
        let k = i.index(data.len());
        let mut changed = bytes.clone();
        changed[2 * k..2 * k + 2].copy_from_slice(&new.to_be_bytes());
        let full = checksum(&changed);
        let inc = update_u16(c, data[k], new);
        // Equal, or the two encodings of zero in one's complement.
        prop_assert!(inc == full || (inc ^ full == 0xffff && (inc == 0 || full == 0)), "inc {inc:#x} full {full:#x}");
    }

    #[test]
    fn ipv4_nat_rewrites_keep_checksums_valid(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), new_addr in any::<[u8; 4]>(),
        ports in any::<(u16, u16)>(), new_port in any::<u16>(), proto in transport(),
        payload in prop::collection::vec(any::<u8>(), 0..64), source in any::<bool>(),
    ) {
        let which = if source { Endpoint::Source } else { Endpoint::Destination };
        let mut p = ipv4_packet(src, dst, proto, ports, &payload);
        let l4 = locate_l4(&p).unwrap();
        rewrite_addr(&mut p, which, Ipv4Addr::from(new_addr).into(), l4).unwrap();
        rewrite_port(&mut p, which, new_port, l4.unwrap()).unwrap();
        prop_assert!(verifies(&p));
        let mut expected = p.clone();
        fill_checksums(&mut expected);
        prop_assert!(verifies(&expected));
        // Same bytes as a full recomputation, up to the one's-complement zero ambiguity.
        let at = 20 + csum_field(proto);
        prop_assert_eq!(&p[..10], &expected[..10]);
        prop_assert_eq!(&p[12..at], &expected[12..at]);
        prop_assert_eq!(&p[at + 2..], &expected[at + 2..]);
    }

    #[test]
    fn ipv6_nat_rewrites_keep_checksums_valid(
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), new_addr in any::<[u8; 16]>(),
        ports in any::<(u16, u16)>(), new_port in any::<u16>(),
        proto in prop_oneof![Just(proto::TCP), Just(proto::UDP), Just(proto::ICMPV6)],
        payload in prop::collection::vec(any::<u8>(), 0..64), source in any::<bool>(),
    ) {
        let which = if source { Endpoint::Source } else { Endpoint::Destination };
        let mut p = ipv6_packet(src, dst, proto, ports, &payload);
        let l4 = locate_l4(&p).unwrap();
        rewrite_addr(&mut p, which, Ipv6Addr::from(new_addr).into(), l4).unwrap();
        rewrite_port(&mut p, which, new_port, l4.unwrap()).unwrap();
        prop_assert!(verifies(&p));
    }
}

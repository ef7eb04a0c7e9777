//! Byte-level tests of the RFC 4271 / RFC 7606 error treatments.

use super::*;
use crate::attrs::{AsPath, Origin, PathAttributes};
use crate::error::IssueAction;
use crate::nlri::{Nlri, Prefix};
use crate::types::{Family, NextHop};
use crate::update::MpReach;
use std::net::Ipv4Addr;

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

/// Builds an UPDATE from a raw attribute section and IPv4 NLRI bytes.
fn raw_update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&[0, 0, 2]);
    v.extend_from_slice(&u16::try_from(withdrawn.len()).unwrap().to_be_bytes());
    v.extend_from_slice(withdrawn);
    v.extend_from_slice(&u16::try_from(attrs.len()).unwrap().to_be_bytes());
    v.extend_from_slice(attrs);
    v.extend_from_slice(nlri);
    let l = u16::try_from(v.len()).unwrap().to_be_bytes();
    v[16..18].copy_from_slice(&l);
    v
}

const ORIGIN_IGP: [u8; 4] = [0x40, 1, 1, 0];
const AS_PATH_EMPTY: [u8; 3] = [0x40, 2, 0];
const NEXT_HOP: [u8; 7] = [0x40, 3, 4, 198, 18, 0, 1];
const NLRI_24: [u8; 4] = [24, 198, 18, 10];

fn good_attrs() -> Vec<u8> {
    [&ORIGIN_IGP[..], &AS_PATH_EMPTY, &NEXT_HOP].concat()
}

fn decode_update(b: &[u8]) -> Result<crate::DecodedUpdate, MessageError> {
    match Message::decode(b, &Context::modern())? {
        Decoded::Update(u) => Ok(u),
        Decoded::Other(m) => panic!("not an update: {m:?}"),
    }
}

#[test]
fn well_formed_update_decodes() {
    let u = decode_update(&raw_update(&[], &good_attrs(), &NLRI_24)).unwrap();
    assert!(u.issues.is_empty());
    assert_eq!(u.update.nlri, vec![Nlri::new(p("198.18.10.0/24"))]);
    assert_eq!(u.update.attrs.next_hop, Some(Ipv4Addr::new(198, 18, 0, 1)));
}

#[test]
fn bad_origin_value_is_treat_as_withdraw_with_offset() {
    let attrs = [&[0x40, 1, 1, 7][..], &AS_PATH_EMPTY, &NEXT_HOP].concat();
    let u = decode_update(&raw_update(&[], &attrs, &NLRI_24)).unwrap();
    assert!(u.treat_as_withdraw());
    assert_eq!(u.issues[0].attr_type, 1);
    assert_eq!(
        u.issues[0].offset,
        19 + 2 + 2,
        "offset of the ORIGIN flags byte"
    );
}

#[test]
fn missing_next_hop_is_treat_as_withdraw() {
    let attrs = [&ORIGIN_IGP[..], &AS_PATH_EMPTY].concat();
    let u = decode_update(&raw_update(&[], &attrs, &NLRI_24)).unwrap();
    assert!(u.treat_as_withdraw());
    assert_eq!(u.issues[0].attr_type, 3);
}

#[test]
fn withdraw_only_update_needs_no_mandatory_attributes() {
    let u = decode_update(&raw_update(&NLRI_24, &[], &[])).unwrap();
    assert!(u.issues.is_empty());
    assert_eq!(u.update.withdrawn.len(), 1);
}

#[test]
fn bad_aggregator_length_is_attribute_discard() {
    let attrs = [&good_attrs()[..], &[0xc0, 7, 3, 1, 2, 3]].concat();
    let u = decode_update(&raw_update(&[], &attrs, &NLRI_24)).unwrap();
    assert!(!u.treat_as_withdraw());
    assert_eq!(u.issues[0].action, IssueAction::AttributeDiscard);
    assert_eq!(u.update.attrs.aggregator, None);
}

#[test]
fn wrong_flags_on_well_known_is_malformed() {
    // ORIGIN marked optional.
    let attrs = [&[0xc0, 1, 1, 0][..], &AS_PATH_EMPTY, &NEXT_HOP].concat();
    let u = decode_update(&raw_update(&[], &attrs, &NLRI_24)).unwrap();
    assert!(u.treat_as_withdraw());
}

#[test]
fn repeated_attribute_keeps_the_first() {
    let attrs = [
        &good_attrs()[..],
        &[0x80, 4, 4, 0, 0, 0, 5],
        &[0x80, 4, 4, 0, 0, 0, 9],
    ]
    .concat();
    let u = decode_update(&raw_update(&[], &attrs, &NLRI_24)).unwrap();
    assert_eq!(u.update.attrs.med, Some(5));
    assert_eq!(u.issues[0].action, IssueAction::AttributeDiscard);
}

#[test]
fn attribute_length_overrun_is_treat_as_withdraw() {
    let attrs = [&good_attrs()[..], &[0x80, 4, 9, 0, 0]].concat();
    let u = decode_update(&raw_update(&[], &attrs, &NLRI_24)).unwrap();
    assert!(u.treat_as_withdraw());
}

#[test]
fn total_attribute_length_overrun_resets() {
    let mut b = raw_update(&[], &good_attrs(), &[]);
    // Claim 200 bytes of attributes.
    b[21..23].copy_from_slice(&200u16.to_be_bytes());
    let e = decode_update(&b).unwrap_err();
    assert_eq!(
        (e.notification.code, e.notification.subcode, e.offset),
        (3, 1, 21)
    );
}

#[test]
fn unrecognized_well_known_resets_with_attribute_as_data() {
    let attrs = [&good_attrs()[..], &[0x40, 99, 1, 42]].concat();
    let e = decode_update(&raw_update(&[], &attrs, &NLRI_24)).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (3, 2));
    assert_eq!(e.notification.data, vec![0x40, 99, 1, 42]);
}

#[test]
fn unknown_optional_transitive_is_kept_partial() {
    let attrs = [&good_attrs()[..], &[0xc0, 99, 1, 42]].concat();
    let u = decode_update(&raw_update(&[], &attrs, &NLRI_24)).unwrap();
    assert_eq!(u.update.attrs.unknown[0].flags, 0xe0);
    let attrs = [&good_attrs()[..], &[0x80, 99, 1, 42]].concat();
    let u = decode_update(&raw_update(&[], &attrs, &NLRI_24)).unwrap();
    assert!(
        u.update.attrs.unknown.is_empty(),
        "unknown non-transitive attributes are dropped"
    );
}

#[test]
fn repeated_mp_reach_resets() {
    let mp = [
        0x80, 14, 21, 0, 2, 1, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
    ];
    let attrs = [&good_attrs()[..], &mp, &mp].concat();
    let e = decode_update(&raw_update(&[], &attrs, &[])).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (3, 1));
}

#[test]
fn mp_reach_with_bad_next_hop_length_resets() {
    let mp = [0x80, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0];
    let attrs = [&good_attrs()[..], &mp].concat();
    let e = decode_update(&raw_update(&[], &attrs, &[])).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (3, 9));
    assert_eq!(
        e.offset,
        19 + 4 + good_attrs().len() + 3 + 4,
        "points at the next-hop bytes"
    );
}

#[test]
fn ipv6_next_hop_of_32_bytes_decodes() {
    let mut mp = vec![0x80, 14, 0, 0, 2, 1, 32];
    mp.extend_from_slice(
        &"2001:db8:ffff::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    mp.extend_from_slice(&"fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    mp.push(0);
    mp.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 0x30]);
    mp[2] = u8::try_from(mp.len() - 3).unwrap();
    let attrs = [&ORIGIN_IGP[..], &AS_PATH_EMPTY, &mp].concat();
    let u = decode_update(&raw_update(&[], &attrs, &[])).unwrap();
    let r = u.update.mp_reach.unwrap();
    assert_eq!(r.family, Family::Ipv6Unicast);
    assert!(matches!(
        r.next_hop,
        NextHop::V6 {
            link_local: Some(_),
            ..
        }
    ));
    assert_eq!(r.nlri, vec![Nlri::new(p("2001:db8:30::/48"))]);
}

#[test]
fn bad_nlri_length_resets_with_offset() {
    let e = decode_update(&raw_update(&[], &good_attrs(), &[33, 1, 2, 3, 4, 5])).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (3, 10));
    assert_eq!(e.offset, 19 + 4 + good_attrs().len());
}

#[test]
fn as4_path_is_merged_on_two_octet_sessions() {
    // AS_PATH 64512 23456, AS4_PATH 4200000001.
    let as_path = [0x40, 2, 6, 2, 2, 0xfc, 0x00, 0x5b, 0xa0];
    let as4 = [0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x01];
    let attrs = [&ORIGIN_IGP[..], &as_path, &NEXT_HOP, &as4].concat();
    let b = raw_update(&[], &attrs, &NLRI_24);
    let ctx = Context {
        four_octet_as: false,
        add_path: [false; 2],
    };
    let Decoded::Update(u) = Message::decode(&b, &ctx).unwrap() else {
        panic!()
    };
    assert_eq!(
        u.update.attrs.as_path,
        AsPath::sequence(vec![64512, 4_200_000_001])
    );
    // The same bytes on a 4-octet session: the AS_PATH is read with 4-octet ASNs and is
    // malformed (6 bytes is not a whole segment), so treat-as-withdraw.
    let u = decode_update(&b).unwrap();
    assert!(u.treat_as_withdraw());
}

#[test]
fn two_octet_encoding_uses_as_trans_and_as4_path() {
    let attrs = PathAttributes {
        origin: Origin::Igp,
        as_path: AsPath::sequence(vec![64512, 4_200_000_001]),
        next_hop: Some(Ipv4Addr::new(198, 18, 0, 3)),
        ..Default::default()
    };
    let u = Update {
        attrs: attrs.clone(),
        nlri: vec![Nlri::new(p("203.0.113.0/24"))],
        ..Default::default()
    };
    let ctx = Context {
        four_octet_as: false,
        add_path: [false; 2],
    };
    let b = Message::Update(u.clone()).to_bytes(&ctx);
    assert!(
        b.windows(2).any(|w| w == 23456u16.to_be_bytes()),
        "AS_TRANS in AS_PATH"
    );
    let Decoded::Update(d) = Message::decode(&b, &ctx).unwrap() else {
        panic!()
    };
    assert_eq!(d.update, u);
}

#[test]
fn end_of_rib_markers() {
    for f in Family::ALL {
        let b = Message::Update(Update::end_of_rib(f)).to_bytes(&Context::modern());
        let d = decode_update(&b).unwrap();
        assert_eq!(d.update.end_of_rib_family(), Some(f));
    }
    assert_eq!(
        Message::Update(Update::end_of_rib(Family::Ipv4Unicast))
            .to_bytes(&Context::modern())
            .len(),
        23
    );
}

#[test]
fn pack_announcements_splits_at_4096() {
    let prefixes: Vec<Nlri> = (0..3000u32)
        .map(|i| {
            Nlri::new(
                Prefix::new(
                    std::net::IpAddr::V4(Ipv4Addr::from(0xc612_0000 + (i << 8))),
                    24,
                )
                .unwrap(),
            )
        })
        .collect();
    let attrs = PathAttributes {
        as_path: AsPath::sequence(vec![64512]),
        ..Default::default()
    };
    let mut out = Vec::new();
    assert!(crate::pack_announcements(
        Family::Ipv4Unicast,
        &attrs,
        NextHop::V4(Ipv4Addr::new(198, 18, 0, 5)),
        &prefixes,
        &Context::modern(),
        &mut out
    ));
    let mut got = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let len = crate::frame_length(rest).unwrap().unwrap();
        assert!(len <= 4096);
        let d = decode_update(&rest[..len]).unwrap();
        assert!(d.issues.is_empty());
        got.extend(d.update.nlri);
        rest = &rest[len..];
    }
    assert_eq!(got, prefixes);
    let mut out = Vec::new();
    crate::pack_withdrawals(
        Family::Ipv6Unicast,
        &[Nlri::new(p("2001:db8::/32"))],
        &Context::modern(),
        &mut out,
    );
    let d = decode_update(&out).unwrap();
    assert_eq!(d.update.mp_unreach.unwrap().withdrawn.len(), 1);
    let _ = MpReach {
        family: Family::Ipv6Unicast,
        next_hop: NextHop::V4(Ipv4Addr::LOCALHOST),
        nlri: vec![],
    };
}

#[test]
fn open_errors() {
    let open = crate::Open {
        my_as: 64512,
        hold_time: 9,
        bgp_id: Ipv4Addr::new(198, 18, 0, 5),
        capabilities: vec![],
    };
    let mut b = Message::Open(open).to_bytes(&Context::modern());
    b[19] = 3;
    let e = Message::decode(&b, &Context::modern()).unwrap_err();
    assert_eq!(
        (e.notification.code, e.notification.subcode, e.offset),
        (2, 1, 19)
    );
    b[19] = 4;
    b[22..24].copy_from_slice(&2u16.to_be_bytes());
    let e = Message::decode(&b, &Context::modern()).unwrap_err();
    assert_eq!((e.notification.subcode, e.offset), (6, 22));
    b[22..24].copy_from_slice(&9u16.to_be_bytes());
    b[24..28].copy_from_slice(&[0; 4]);
    let e = Message::decode(&b, &Context::modern()).unwrap_err();
    assert_eq!(e.notification.subcode, 3);
}

#[test]
fn route_refresh_bad_length() {
    let mut b = vec![0xff; 16];
    b.extend_from_slice(&[0, 24, 5, 0, 1, 0, 1, 9]);
    let e = Message::decode(&b, &Context::modern()).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (7, 1));
}

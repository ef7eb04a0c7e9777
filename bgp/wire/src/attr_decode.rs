//! Path-attribute decoding with the per-attribute error treatments of RFC 7606 §7.
//!
//! The attribute section is walked once. Each recognised attribute is checked for its flags
//! (RFC 7606 §3 c), its length and its value; a malformed one gets the action its RFC 7606
//! subsection names, recorded as an [`UpdateIssue`] with the attribute's byte offset. Only
//! the cases RFC 7606 leaves no softer choice for (a repeated or unparsable MP_REACH /
//! MP_UNREACH, an unrecognised well-known attribute) end the session.

use crate::attrs::{
    Aggregator, AsPath, AsSegment, AsSegmentType, LargeCommunity, Origin, PathAttributes,
    RawAttribute, attr_type as at, flag,
};
use crate::error::{IssueAction, MessageError, UpdateIssue, code, subcode};
use crate::message::Context;
use crate::nlri::{self, Nlri};
use crate::reader::Reader;
use crate::types::{AS_TRANS, Afi, Family, NextHop, Safi};
use crate::update::{MpReach, MpUnreach};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Everything the attribute section yielded.
#[derive(Debug, Default)]
pub(crate) struct AttrSection {
    pub attrs: PathAttributes,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub issues: Vec<UpdateIssue>,
    /// Bit `t` set when attribute type `t` (< 64) was seen and kept.
    pub seen: u64,
    /// MP_REACH / MP_UNREACH for families this codec does not carry (ignored, RFC 4760 §7).
    pub unsupported_mp: Vec<(Afi, Safi)>,
}

impl AttrSection {
    pub(crate) fn has(&self, t: u8) -> bool {
        t < 64 && self.seen & (1u64 << t) != 0
    }
}

/// Expected (optional, transitive) flag bits of the attributes we interpret.
fn expected_flags(t: u8) -> Option<u8> {
    Some(match t {
        at::ORIGIN | at::AS_PATH | at::NEXT_HOP | at::LOCAL_PREF | at::ATOMIC_AGGREGATE => {
            flag::TRANSITIVE
        }
        at::MED
        | at::ORIGINATOR_ID
        | at::CLUSTER_LIST
        | at::MP_REACH_NLRI
        | at::MP_UNREACH_NLRI => flag::OPTIONAL,
        at::AGGREGATOR
        | at::COMMUNITIES
        | at::AS4_PATH
        | at::AS4_AGGREGATOR
        | at::LARGE_COMMUNITY => flag::OPTIONAL | flag::TRANSITIVE,
        _ => return None,
    })
}

/// The RFC 7606 §7 action for a malformed instance of attribute `t`.
fn malformed_action(t: u8) -> IssueAction {
    match t {
        at::ATOMIC_AGGREGATE | at::AGGREGATOR | at::AS4_PATH | at::AS4_AGGREGATOR => {
            IssueAction::AttributeDiscard
        }
        _ => IssueAction::TreatAsWithdraw,
    }
}

/// Decodes the path-attribute section `r` (its offsets are absolute within the message).
pub(crate) fn decode_attrs(mut r: Reader<'_>, ctx: &Context) -> Result<AttrSection, MessageError> {
    let mut s = AttrSection::default();
    let mut as4_path: Option<AsPath> = None;
    let mut as4_aggregator: Option<Aggregator> = None;
    while !r.is_empty() {
        let a_at = r.offset();
        let hdr = (|| {
            let flags = r.u8()?;
            let t = r.u8()?;
            let len = if flags & flag::EXTENDED != 0 {
                usize::from(r.u16()?)
            } else {
                usize::from(r.u8()?)
            };
            Some((flags, t, len))
        })();
        let Some((flags, t, len)) = hdr else {
            // RFC 7606 §4: an attribute header that overruns the section: treat-as-withdraw.
            s.issues.push(issue(
                a_at,
                0,
                "attribute header overruns the attribute section",
                IssueAction::TreatAsWithdraw,
            ));
            break;
        };
        let Some(mut v) = r.sub(len) else {
            s.issues.push(issue(
                a_at,
                t,
                "attribute length overruns the attribute section",
                IssueAction::TreatAsWithdraw,
            ));
            break;
        };
        let is_mp = t == at::MP_REACH_NLRI || t == at::MP_UNREACH_NLRI;
        if t < 64 && s.seen & (1u64 << t) != 0 {
            if is_mp {
                // RFC 7606 §3 g: a repeated MP_REACH/MP_UNREACH resets the session.
                return Err(MessageError::new(
                    a_at,
                    "MP_REACH_NLRI or MP_UNREACH_NLRI appears twice",
                    code::UPDATE,
                    subcode::MALFORMED_ATTR_LIST,
                    vec![],
                ));
            }
            // RFC 7606 §3 g: keep the first, discard the others.
            s.issues.push(issue(
                a_at,
                t,
                "repeated attribute",
                IssueAction::AttributeDiscard,
            ));
            continue;
        }
        let Some(expected) = expected_flags(t) else {
            if flags & flag::OPTIONAL == 0 {
                // RFC 4271 §6.3: unrecognized well-known attribute.
                let data = r_slice_with_header(flags, t, v.rest());
                return Err(MessageError::new(
                    a_at,
                    "unrecognized well-known attribute",
                    code::UPDATE,
                    subcode::UNRECOGNIZED_WELL_KNOWN,
                    data,
                ));
            }
            if flags & flag::TRANSITIVE != 0 {
                // RFC 4271 §5: pass unknown optional transitive attributes on, marked Partial.
                s.attrs.unknown.push(RawAttribute {
                    flags: (flags | flag::PARTIAL) & !flag::EXTENDED,
                    type_code: t,
                    value: v.rest().to_vec(),
                });
            }
            continue;
        };
        let flags_ok = flags & (flag::OPTIONAL | flag::TRANSITIVE) == expected;
        if !flags_ok && is_mp {
            return Err(MessageError::new(
                a_at,
                "MP attribute with wrong flags",
                code::UPDATE,
                subcode::ATTR_FLAGS,
                vec![],
            ));
        }
        let ok = if flags_ok {
            match t {
                at::MP_REACH_NLRI => {
                    decode_mp_reach(&mut v, ctx, &mut s, a_at)?;
                    true
                }
                at::MP_UNREACH_NLRI => {
                    decode_mp_unreach(&mut v, ctx, &mut s, a_at)?;
                    true
                }
                at::AS4_PATH => match decode_as_path(&mut v, true) {
                    // RFC 6793 §4.1: a NEW speaker ignores AS4_PATH from another NEW speaker.
                    Some(p) if !ctx.four_octet_as => {
                        as4_path = Some(p);
                        true
                    }
                    Some(_) => true,
                    None => false,
                },
                at::AS4_AGGREGATOR => match (v.u32(), v.array::<4>(), v.is_empty()) {
                    (Some(asn), Some(id), true) => {
                        if !ctx.four_octet_as {
                            as4_aggregator = Some(Aggregator {
                                asn,
                                id: Ipv4Addr::from(id),
                            });
                        }
                        true
                    }
                    _ => false,
                },
                _ => decode_one(t, &mut v, ctx, &mut s.attrs),
            }
        } else {
            false
        };
        if ok {
            if t < 64 {
                s.seen |= 1u64 << t;
            }
        } else {
            s.issues.push(issue(
                a_at,
                t,
                if flags_ok {
                    "malformed attribute"
                } else {
                    "attribute flags conflict with its type"
                },
                malformed_action(t),
            ));
        }
    }
    // RFC 6793 §4.2.3: merge AS4_PATH / AS4_AGGREGATOR received over a 2-octet session.
    if let Some(p4) = as4_path {
        let use_as4 = match s.attrs.aggregator {
            Some(a) => a.asn == u32::from(AS_TRANS) || as4_aggregator.is_none(),
            None => true,
        };
        if use_as4 {
            s.attrs.as_path = AsPath::merge_as4(&s.attrs.as_path, &p4);
        }
    }
    if let (Some(a), Some(a4)) = (s.attrs.aggregator, as4_aggregator)
        && a.asn == u32::from(AS_TRANS)
    {
        s.attrs.aggregator = Some(a4);
    }
    Ok(s)
}

fn r_slice_with_header(flags: u8, t: u8, value: &[u8]) -> Vec<u8> {
    let mut d = vec![flags, t];
    if flags & flag::EXTENDED != 0 {
        d.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
    } else {
        d.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
    }
    d.extend_from_slice(value);
    d
}

fn issue(offset: usize, attr_type: u8, what: &'static str, action: IssueAction) -> UpdateIssue {
    UpdateIssue {
        offset,
        attr_type,
        what,
        action,
    }
}

/// Decodes one of the simple attributes into `a`; false when malformed.
fn decode_one(t: u8, v: &mut Reader<'_>, ctx: &Context, a: &mut PathAttributes) -> bool {
    let len = v.remaining();
    match t {
        at::ORIGIN => match (len, v.u8().and_then(Origin::from_u8)) {
            (1, Some(o)) => a.origin = o,
            _ => return false,
        },
        at::AS_PATH => match decode_as_path(v, ctx.four_octet_as) {
            Some(p) => a.as_path = p,
            None => return false,
        },
        at::NEXT_HOP => match (len, v.array::<4>()) {
            (4, Some(b)) => {
                let nh = Ipv4Addr::from(b);
                // RFC 4271 §6.3 / RFC 7606 §7.3: a semantically impossible next hop.
                if nh.is_unspecified() || nh.is_multicast() || nh.is_broadcast() {
                    return false;
                }
                a.next_hop = Some(nh);
            }
            _ => return false,
        },
        at::MED => match (len, v.u32()) {
            (4, Some(m)) => a.med = Some(m),
            _ => return false,
        },
        at::LOCAL_PREF => match (len, v.u32()) {
            (4, Some(m)) => a.local_pref = Some(m),
            _ => return false,
        },
        at::ATOMIC_AGGREGATE => {
            if len != 0 {
                return false;
            }
            a.atomic_aggregate = true;
        }
        at::AGGREGATOR => {
            let want = if ctx.four_octet_as { 8 } else { 6 };
            if len != want {
                return false;
            }
            let asn = if ctx.four_octet_as {
                v.u32()
            } else {
                v.u16().map(u32::from)
            };
            match (asn, v.array::<4>()) {
                (Some(asn), Some(id)) => {
                    a.aggregator = Some(Aggregator {
                        asn,
                        id: Ipv4Addr::from(id),
                    })
                }
                _ => return false,
            }
        }
        at::COMMUNITIES => {
            if len == 0 || !len.is_multiple_of(4) {
                return false;
            }
            a.communities = (0..len / 4).filter_map(|_| v.u32()).collect();
        }
        at::LARGE_COMMUNITY => {
            if len == 0 || !len.is_multiple_of(12) {
                return false;
            }
            a.large_communities = (0..len / 12)
                .filter_map(|_| {
                    Some(LargeCommunity {
                        global: v.u32()?,
                        local1: v.u32()?,
                        local2: v.u32()?,
                    })
                })
                .collect();
        }
        at::ORIGINATOR_ID => match (len, v.array::<4>()) {
            (4, Some(b)) => a.originator_id = Some(Ipv4Addr::from(b)),
            _ => return false,
        },
        at::CLUSTER_LIST => {
            if len == 0 || !len.is_multiple_of(4) {
                return false;
            }
            a.cluster_list = (0..len / 4)
                .filter_map(|_| v.array::<4>().map(Ipv4Addr::from))
                .collect();
        }
        _ => return false,
    }
    true
}

/// RFC 4271 §4.3 / RFC 7606 §7.2: segments must be well-typed, non-empty and fill the value.
pub(crate) fn decode_as_path(v: &mut Reader<'_>, four: bool) -> Option<AsPath> {
    let mut p = AsPath::default();
    while !v.is_empty() {
        let kind = AsSegmentType::from_u8(v.u8()?)?;
        let n = usize::from(v.u8()?);
        if n == 0 {
            return None;
        }
        let mut asns = Vec::with_capacity(n);
        for _ in 0..n {
            asns.push(if four { v.u32()? } else { u32::from(v.u16()?) });
        }
        p.segments.push(AsSegment { kind, asns });
    }
    Some(p)
}

fn mp_error(offset: usize, what: &'static str) -> MessageError {
    MessageError::new(offset, what, code::UPDATE, subcode::OPTIONAL_ATTR, vec![])
}

/// RFC 4760 §3 MP_REACH_NLRI. Errors reset the session (RFC 7606 §7.11).
fn decode_mp_reach(
    v: &mut Reader<'_>,
    ctx: &Context,
    s: &mut AttrSection,
    a_at: usize,
) -> Result<(), MessageError> {
    let short = || mp_error(a_at, "MP_REACH_NLRI too short");
    let afi = Afi(v.u16().ok_or_else(short)?);
    let safi = Safi(v.u8().ok_or_else(short)?);
    let nh_len = usize::from(v.u8().ok_or_else(short)?);
    let nh_at = v.offset();
    let nh = v.take(nh_len).ok_or_else(short)?;
    v.u8().ok_or_else(short)?; // reserved (was SNPA count): ignored
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        s.unsupported_mp.push((afi, safi));
        s.issues.push(issue(
            a_at,
            at::MP_REACH_NLRI,
            "MP_REACH_NLRI for an unsupported AFI/SAFI ignored",
            IssueAction::AttributeDiscard,
        ));
        return Ok(());
    };
    let next_hop = match (family, nh_len) {
        (Family::Ipv4Unicast, 4) => NextHop::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(nh).map_err(|_| short())?,
        )),
        (Family::Ipv6Unicast, 16 | 32) => {
            let g = <[u8; 16]>::try_from(&nh[..16]).map_err(|_| short())?;
            let ll = if nh_len == 32 {
                Some(Ipv6Addr::from(
                    <[u8; 16]>::try_from(&nh[16..]).map_err(|_| short())?,
                ))
            } else {
                None
            };
            NextHop::V6 {
                global: Ipv6Addr::from(g),
                link_local: ll,
            }
        }
        _ => {
            return Err(mp_error(
                nh_at,
                "MP_REACH_NLRI next-hop length does not fit the address family",
            ));
        }
    };
    let body_at = v.offset();
    let mut nlri = Vec::new();
    nlri::decode_all(family, ctx.add_path[family.index()], v.rest(), &mut nlri)
        .map_err(|o| mp_error(body_at + o, "MP_REACH_NLRI prefix malformed"))?;
    s.mp_reach = Some(MpReach {
        family,
        next_hop,
        nlri,
    });
    Ok(())
}

/// RFC 4760 §4 MP_UNREACH_NLRI.
fn decode_mp_unreach(
    v: &mut Reader<'_>,
    ctx: &Context,
    s: &mut AttrSection,
    a_at: usize,
) -> Result<(), MessageError> {
    let short = || mp_error(a_at, "MP_UNREACH_NLRI too short");
    let afi = Afi(v.u16().ok_or_else(short)?);
    let safi = Safi(v.u8().ok_or_else(short)?);
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        s.unsupported_mp.push((afi, safi));
        s.issues.push(issue(
            a_at,
            at::MP_UNREACH_NLRI,
            "MP_UNREACH_NLRI for an unsupported AFI/SAFI ignored",
            IssueAction::AttributeDiscard,
        ));
        return Ok(());
    };
    let body_at = v.offset();
    let mut withdrawn: Vec<Nlri> = Vec::new();
    nlri::decode_all(
        family,
        ctx.add_path[family.index()],
        v.rest(),
        &mut withdrawn,
    )
    .map_err(|o| mp_error(body_at + o, "MP_UNREACH_NLRI prefix malformed"))?;
    s.mp_unreach = Some(MpUnreach { family, withdrawn });
    Ok(())
}

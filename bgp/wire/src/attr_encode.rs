//! Path-attribute encoding, including the 2-octet AS form with AS4_PATH (RFC 6793 §4.2.2).

use crate::attrs::{AsPath, PathAttributes, attr_type as at, flag};
use crate::message::Context;
use crate::types::{AS_TRANS, NextHop};
use crate::update::{MpReach, MpUnreach};

/// Appends one attribute with the extended-length bit chosen from the value's size.
pub(crate) fn put_attr(out: &mut Vec<u8>, flags: u8, t: u8, value: impl FnOnce(&mut Vec<u8>)) {
    let at_hdr = out.len();
    out.extend_from_slice(&[flags | flag::EXTENDED, t, 0, 0]);
    value(out);
    let len = out.len() - at_hdr - 4;
    if len <= 255 {
        // Short form: one length octet; move the value back by one.
        out[at_hdr] = flags & !flag::EXTENDED;
        out[at_hdr + 2] = u8::try_from(len).unwrap_or(u8::MAX);
        out.remove(at_hdr + 3);
    } else {
        let l = u16::try_from(len).unwrap_or(u16::MAX);
        out[at_hdr + 2..at_hdr + 4].copy_from_slice(&l.to_be_bytes());
    }
}

fn put_as_path(out: &mut Vec<u8>, p: &AsPath, four: bool, skip_confed: bool) {
    for s in &p.segments {
        if skip_confed
            && !matches!(
                s.kind,
                crate::attrs::AsSegmentType::Sequence | crate::attrs::AsSegmentType::Set
            )
        {
            continue;
        }
        for chunk in s.asns.chunks(255) {
            out.push(s.kind.to_u8());
            out.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
            for &a in chunk {
                if four {
                    out.extend_from_slice(&a.to_be_bytes());
                } else {
                    out.extend_from_slice(&u16::try_from(a).unwrap_or(AS_TRANS).to_be_bytes());
                }
            }
        }
    }
}

/// Appends MP_REACH_NLRI for `r` (RFC 4760 §3).
pub(crate) fn put_mp_reach(out: &mut Vec<u8>, r: &MpReach, ctx: &Context) {
    let add_path = ctx.add_path[r.family.index()];
    put_attr(out, flag::OPTIONAL, at::MP_REACH_NLRI, |o| {
        o.extend_from_slice(&r.family.afi().0.to_be_bytes());
        o.push(r.family.safi().0);
        o.push(u8::try_from(r.next_hop.wire_len()).unwrap_or(0));
        match r.next_hop {
            NextHop::V4(a) => o.extend_from_slice(&a.octets()),
            NextHop::V6 { global, link_local } => {
                o.extend_from_slice(&global.octets());
                if let Some(ll) = link_local {
                    o.extend_from_slice(&ll.octets());
                }
            }
        }
        o.push(0);
        for n in &r.nlri {
            n.encode(add_path, o);
        }
    });
}

/// Appends MP_UNREACH_NLRI for `u` (RFC 4760 §4).
pub(crate) fn put_mp_unreach(out: &mut Vec<u8>, u: &MpUnreach, ctx: &Context) {
    let add_path = ctx.add_path[u.family.index()];
    put_attr(out, flag::OPTIONAL, at::MP_UNREACH_NLRI, |o| {
        o.extend_from_slice(&u.family.afi().0.to_be_bytes());
        o.push(u.family.safi().0);
        for n in &u.withdrawn {
            n.encode(add_path, o);
        }
    });
}

/// Appends every attribute of `a` in type-code order. MP attributes are written by the caller
/// first, as RFC 7606 §5.1 recommends.
pub(crate) fn put_attrs(out: &mut Vec<u8>, a: &PathAttributes, ctx: &Context) {
    let wk = flag::TRANSITIVE;
    let ot = flag::OPTIONAL | flag::TRANSITIVE;
    let on = flag::OPTIONAL;
    put_attr(out, wk, at::ORIGIN, |o| o.push(a.origin.to_u8()));
    put_attr(out, wk, at::AS_PATH, |o| {
        put_as_path(o, &a.as_path, ctx.four_octet_as, false)
    });
    if let Some(nh) = a.next_hop {
        put_attr(out, wk, at::NEXT_HOP, |o| o.extend_from_slice(&nh.octets()));
    }
    if let Some(m) = a.med {
        put_attr(out, on, at::MED, |o| o.extend_from_slice(&m.to_be_bytes()));
    }
    if let Some(lp) = a.local_pref {
        put_attr(out, wk, at::LOCAL_PREF, |o| {
            o.extend_from_slice(&lp.to_be_bytes())
        });
    }
    if a.atomic_aggregate {
        put_attr(out, wk, at::ATOMIC_AGGREGATE, |_| {});
    }
    if let Some(ag) = a.aggregator {
        put_attr(out, ot, at::AGGREGATOR, |o| {
            if ctx.four_octet_as {
                o.extend_from_slice(&ag.asn.to_be_bytes());
            } else {
                o.extend_from_slice(&u16::try_from(ag.asn).unwrap_or(AS_TRANS).to_be_bytes());
            }
            o.extend_from_slice(&ag.id.octets());
        });
    }
    if !a.communities.is_empty() {
        put_attr(out, ot, at::COMMUNITIES, |o| {
            a.communities
                .iter()
                .for_each(|c| o.extend_from_slice(&c.to_be_bytes()))
        });
    }
    if let Some(id) = a.originator_id {
        put_attr(out, on, at::ORIGINATOR_ID, |o| {
            o.extend_from_slice(&id.octets())
        });
    }
    if !a.cluster_list.is_empty() {
        put_attr(out, on, at::CLUSTER_LIST, |o| {
            a.cluster_list
                .iter()
                .for_each(|c| o.extend_from_slice(&c.octets()))
        });
    }
    if !ctx.four_octet_as && a.as_path.needs_as4() {
        // RFC 6793 §4.2.2: the true path travels in AS4_PATH (without confederation segments).
        put_attr(out, ot, at::AS4_PATH, |o| {
            put_as_path(o, &a.as_path, true, true)
        });
    }
    if let Some(ag) = a.aggregator
        && !ctx.four_octet_as
        && ag.asn > u32::from(u16::MAX)
    {
        put_attr(out, ot, at::AS4_AGGREGATOR, |o| {
            o.extend_from_slice(&ag.asn.to_be_bytes());
            o.extend_from_slice(&ag.id.octets());
        });
    }
    if !a.large_communities.is_empty() {
        put_attr(out, ot, at::LARGE_COMMUNITY, |o| {
            for c in &a.large_communities {
                o.extend_from_slice(&c.global.to_be_bytes());
                o.extend_from_slice(&c.local1.to_be_bytes());
                o.extend_from_slice(&c.local2.to_be_bytes());
            }
        });
    }
    for u in &a.unknown {
        put_attr(out, u.flags & !flag::EXTENDED, u.type_code, |o| {
            o.extend_from_slice(&u.value)
        });
    }
}

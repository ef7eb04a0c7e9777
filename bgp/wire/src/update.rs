//! UPDATE (RFC 4271 §4.3) with MP_REACH/MP_UNREACH (RFC 4760) and End-of-RIB (RFC 4724 §2).

use crate::attr_decode::decode_attrs;
use crate::attr_encode::{put_attrs, put_mp_reach, put_mp_unreach};
use crate::attrs::{PathAttributes, attr_type as at};
use crate::error::{IssueAction, MessageError, UpdateIssue, code, subcode};
use crate::header::{self, HEADER_LEN, MAX_MESSAGE_LEN, MessageType};
use crate::message::Context;
use crate::nlri::{self, Nlri};
use crate::reader::Reader;
use crate::types::{Family, NextHop};

/// MP_REACH_NLRI contents for a supported family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    /// Family of the NLRI.
    pub family: Family,
    /// Next hop for every NLRI in this attribute.
    pub next_hop: NextHop,
    /// Reachable prefixes.
    pub nlri: Vec<Nlri>,
}

/// MP_UNREACH_NLRI contents for a supported family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    /// Family of the withdrawn prefixes.
    pub family: Family,
    /// Withdrawn prefixes.
    pub withdrawn: Vec<Nlri>,
}

/// An UPDATE message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// IPv4 prefixes withdrawn in the classic field.
    pub withdrawn: Vec<Nlri>,
    /// Path attributes (meaningful when something is announced).
    pub attrs: PathAttributes,
    /// MP_REACH_NLRI, if present.
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI, if present.
    pub mp_unreach: Option<MpUnreach>,
    /// IPv4 prefixes announced in the classic field (next hop in `attrs.next_hop`).
    pub nlri: Vec<Nlri>,
}

/// An UPDATE that decoded, with any RFC 7606 treatments applied on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedUpdate {
    /// The message. When [`DecodedUpdate::treat_as_withdraw`] is true, its announced prefixes
    /// must be handled as withdrawals (RFC 7606 §2) and its attributes ignored.
    pub update: Update,
    /// Non-fatal problems, each with its offset and treatment.
    pub issues: Vec<UpdateIssue>,
}

impl DecodedUpdate {
    /// Whether any issue demands treat-as-withdraw.
    pub fn treat_as_withdraw(&self) -> bool {
        self.issues
            .iter()
            .any(|i| i.action == IssueAction::TreatAsWithdraw)
    }
}

impl Update {
    /// An End-of-RIB marker for `family` (RFC 4724 §2).
    pub fn end_of_rib(family: Family) -> Update {
        match family {
            Family::Ipv4Unicast => Update::default(),
            _ => Update {
                mp_unreach: Some(MpUnreach {
                    family,
                    withdrawn: vec![],
                }),
                ..Default::default()
            },
        }
    }

    /// If this UPDATE is an End-of-RIB marker, the family it ends.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || self.mp_reach.is_some() {
            return None;
        }
        match &self.mp_unreach {
            None if self.attrs == PathAttributes::default() => Some(Family::Ipv4Unicast),
            Some(u) if u.withdrawn.is_empty() => Some(u.family),
            _ => None,
        }
    }

    /// Number of prefixes announced (classic and MP).
    pub fn announced_len(&self) -> usize {
        self.nlri.len() + self.mp_reach.as_ref().map_or(0, |r| r.nlri.len())
    }

    /// Decodes an UPDATE body; `r` covers the bytes after the header (offsets absolute).
    pub(crate) fn decode_body(
        mut r: Reader<'_>,
        ctx: &Context,
    ) -> Result<DecodedUpdate, MessageError> {
        let len_err = |o, what| {
            MessageError::new(o, what, code::UPDATE, subcode::MALFORMED_ATTR_LIST, vec![])
        };
        let wl_at = r.offset();
        let wlen = usize::from(r.u16().ok_or_else(|| len_err(wl_at, "UPDATE too short"))?);
        let mut w = r
            .sub(wlen)
            .ok_or_else(|| len_err(wl_at, "withdrawn routes length overruns the UPDATE"))?;
        let al_at = r.offset();
        let alen = usize::from(r.u16().ok_or_else(|| len_err(al_at, "UPDATE too short"))?);
        let attr_r = r
            .sub(alen)
            .ok_or_else(|| len_err(al_at, "total path attribute length overruns the UPDATE"))?;
        let v4_add_path = ctx.add_path[Family::Ipv4Unicast.index()];
        let mut withdrawn = Vec::new();
        let w_at = w.offset();
        nlri::decode_all(Family::Ipv4Unicast, v4_add_path, w.rest(), &mut withdrawn).map_err(
            |o| {
                MessageError::new(
                    w_at + o,
                    "withdrawn prefix malformed",
                    code::UPDATE,
                    subcode::INVALID_NETWORK,
                    vec![],
                )
            },
        )?;
        let section = decode_attrs(attr_r, ctx)?;
        let n_at = r.offset();
        let mut nlri = Vec::new();
        nlri::decode_all(Family::Ipv4Unicast, v4_add_path, r.rest(), &mut nlri).map_err(|o| {
            MessageError::new(
                n_at + o,
                "NLRI prefix malformed",
                code::UPDATE,
                subcode::INVALID_NETWORK,
                vec![],
            )
        })?;
        let mut issues = section.issues.clone();
        // RFC 7606 §3 d: missing well-known mandatory attributes → treat-as-withdraw.
        let announces = !nlri.is_empty()
            || section
                .mp_reach
                .as_ref()
                .is_some_and(|m| !m.nlri.is_empty());
        if announces {
            let mut missing = |t, what| {
                if !section.has(t) && !issues.iter().any(|i: &UpdateIssue| i.attr_type == t) {
                    issues.push(UpdateIssue {
                        offset: al_at,
                        attr_type: t,
                        what,
                        action: IssueAction::TreatAsWithdraw,
                    });
                }
            };
            missing(at::ORIGIN, "ORIGIN missing");
            missing(at::AS_PATH, "AS_PATH missing");
            if !nlri.is_empty() {
                missing(at::NEXT_HOP, "NEXT_HOP missing");
            }
        }
        let update = Update {
            withdrawn,
            attrs: section.attrs,
            mp_reach: section.mp_reach,
            mp_unreach: section.mp_unreach,
            nlri,
        };
        Ok(DecodedUpdate { update, issues })
    }

    /// Appends the encoded message. The caller keeps it within 4096 bytes; see
    /// [`Update::encoded_len`] and [`pack_announcements`] / [`pack_withdrawals`].
    pub fn encode(&self, ctx: &Context, out: &mut Vec<u8>) {
        let v4_add_path = ctx.add_path[Family::Ipv4Unicast.index()];
        let at0 = header::start(out, MessageType::Update);
        let wl_at = out.len();
        out.extend_from_slice(&[0, 0]);
        for n in &self.withdrawn {
            n.encode(v4_add_path, out);
        }
        let wl = u16::try_from(out.len() - wl_at - 2).unwrap_or(u16::MAX);
        out[wl_at..wl_at + 2].copy_from_slice(&wl.to_be_bytes());
        let al_at = out.len();
        out.extend_from_slice(&[0, 0]);
        if let Some(u) = &self.mp_unreach {
            put_mp_unreach(out, u, ctx);
        }
        if let Some(r) = &self.mp_reach {
            put_mp_reach(out, r, ctx);
        }
        if !self.nlri.is_empty() || self.mp_reach.is_some() {
            put_attrs(out, &self.attrs, ctx);
        }
        let al = u16::try_from(out.len() - al_at - 2).unwrap_or(u16::MAX);
        out[al_at..al_at + 2].copy_from_slice(&al.to_be_bytes());
        for n in &self.nlri {
            n.encode(v4_add_path, out);
        }
        header::finish(out, at0);
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self, ctx: &Context) -> usize {
        let mut v = Vec::with_capacity(256);
        self.encode(ctx, &mut v);
        v.len()
    }
}

/// Encodes announcements of `prefixes` (all of one family) sharing `attrs` and `next_hop`,
/// split into as many UPDATEs of at most 4096 bytes as needed. IPv4 goes in the classic NLRI
/// field with NEXT_HOP; IPv6 in MP_REACH_NLRI. The messages are appended back to back.
///
/// Returns false, writing nothing, when the attributes alone leave no room for a prefix in a
/// 4096-byte message (the caller must then not announce these routes to this peer).
pub fn pack_announcements(
    family: Family,
    attrs: &PathAttributes,
    next_hop: NextHop,
    prefixes: &[Nlri],
    ctx: &Context,
    out: &mut Vec<u8>,
) -> bool {
    let mut base = Update {
        attrs: attrs.clone(),
        ..Default::default()
    };
    match (family, next_hop) {
        (Family::Ipv4Unicast, NextHop::V4(nh)) => base.attrs.next_hop = Some(nh),
        _ => {
            base.attrs.next_hop = None;
            base.mp_reach = Some(MpReach {
                family,
                next_hop,
                nlri: vec![],
            });
        }
    }
    // Size of the message with no NLRI; the +1 covers a classic NLRI-free IPv4 layout.
    let mut probe = base.clone();
    if family == Family::Ipv4Unicast {
        probe.nlri.push(Nlri::new(crate::Prefix::V4(
            std::net::Ipv4Addr::UNSPECIFIED,
            0,
        )));
    }
    let fixed = probe.encoded_len(ctx) - if family == Family::Ipv4Unicast { 1 } else { 0 };
    let add_path = ctx.add_path[family.index()];
    let room = MAX_MESSAGE_LEN.saturating_sub(fixed);
    if room < 1 + 16 + 4 {
        return false;
    }
    let mut start = 0;
    while start < prefixes.len() {
        let mut used = 0;
        let mut end = start;
        while end < prefixes.len() && used + prefixes[end].wire_len(add_path) <= room {
            used += prefixes[end].wire_len(add_path);
            end += 1;
        }
        let chunk = prefixes[start..end.max(start + 1)].to_vec();
        let mut u = base.clone();
        match &mut u.mp_reach {
            Some(r) => r.nlri = chunk,
            None => u.nlri = chunk,
        }
        u.encode(ctx, out);
        start = end.max(start + 1);
    }
    true
}

/// Encodes withdrawals of `prefixes` (all of one family), split into UPDATEs of at most 4096
/// bytes, appended to `out`.
pub fn pack_withdrawals(family: Family, prefixes: &[Nlri], ctx: &Context, out: &mut Vec<u8>) {
    let add_path = ctx.add_path[family.index()];
    // header + 2 + 2 (+ MP_UNREACH header of 3 + afi/safi 3)
    let room = MAX_MESSAGE_LEN - HEADER_LEN - 4 - 7;
    let mut start = 0;
    while start < prefixes.len() {
        let mut used = 0;
        let mut end = start;
        while end < prefixes.len() && used + prefixes[end].wire_len(add_path) <= room {
            used += prefixes[end].wire_len(add_path);
            end += 1;
        }
        let chunk = prefixes[start..end].to_vec();
        let u = match family {
            Family::Ipv4Unicast => Update {
                withdrawn: chunk,
                ..Default::default()
            },
            _ => Update {
                mp_unreach: Some(MpUnreach {
                    family,
                    withdrawn: chunk,
                }),
                ..Default::default()
            },
        };
        u.encode(ctx, out);
        start = end;
    }
}

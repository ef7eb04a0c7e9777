//! The path-attribute model (RFC 4271 §5, RFC 1997, RFC 4456, RFC 8092).
//!
//! One [`PathAttributes`] describes everything an UPDATE says about its routes except the
//! NLRI and the multiprotocol reach/unreach data, which live on [`crate::Update`]. AS numbers
//! are always 4-octet here: the codec converts to and from the 2-octet form with AS4_PATH on
//! old sessions (RFC 6793 §4.2).

use std::net::Ipv4Addr;

/// Attribute type codes (IANA).
pub mod attr_type {
    /// ORIGIN (well-known mandatory).
    pub const ORIGIN: u8 = 1;
    /// AS_PATH (well-known mandatory).
    pub const AS_PATH: u8 = 2;
    /// NEXT_HOP (well-known mandatory for IPv4 NLRI).
    pub const NEXT_HOP: u8 = 3;
    /// MULTI_EXIT_DISC (optional non-transitive).
    pub const MED: u8 = 4;
    /// LOCAL_PREF (well-known, iBGP).
    pub const LOCAL_PREF: u8 = 5;
    /// ATOMIC_AGGREGATE (well-known discretionary).
    pub const ATOMIC_AGGREGATE: u8 = 6;
    /// AGGREGATOR (optional transitive).
    pub const AGGREGATOR: u8 = 7;
    /// COMMUNITIES (RFC 1997, optional transitive).
    pub const COMMUNITIES: u8 = 8;
    /// ORIGINATOR_ID (RFC 4456, optional non-transitive).
    pub const ORIGINATOR_ID: u8 = 9;
    /// CLUSTER_LIST (RFC 4456, optional non-transitive).
    pub const CLUSTER_LIST: u8 = 10;
    /// MP_REACH_NLRI (RFC 4760, optional non-transitive).
    pub const MP_REACH_NLRI: u8 = 14;
    /// MP_UNREACH_NLRI (RFC 4760, optional non-transitive).
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// AS4_PATH (RFC 6793, optional transitive).
    pub const AS4_PATH: u8 = 17;
    /// AS4_AGGREGATOR (RFC 6793, optional transitive).
    pub const AS4_AGGREGATOR: u8 = 18;
    /// LARGE_COMMUNITY (RFC 8092, optional transitive).
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flag {
    /// Optional.
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive.
    pub const TRANSITIVE: u8 = 0x40;
    /// Partial.
    pub const PARTIAL: u8 = 0x20;
    /// Extended length (2-octet length field).
    pub const EXTENDED: u8 = 0x10;
}

/// Well-known communities (RFC 1997 §2).
pub mod community {
    /// NO_EXPORT: do not advertise outside the AS.
    pub const NO_EXPORT: u32 = 0xffff_ff01;
    /// NO_ADVERTISE: do not advertise to any peer.
    pub const NO_ADVERTISE: u32 = 0xffff_ff02;
    /// NO_EXPORT_SUBCONFED: treated as NO_EXPORT (no confederations here).
    pub const NO_EXPORT_SUBCONFED: u32 = 0xffff_ff03;
}

/// ORIGIN values; lower is preferred in best-path selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Origin {
    /// 0: learned from an IGP / network statement.
    #[default]
    Igp,
    /// 1: learned from EGP.
    Egp,
    /// 2: learned some other way (redistribution).
    Incomplete,
}

impl Origin {
    /// Parses the ORIGIN octet.
    pub fn from_u8(v: u8) -> Option<Origin> {
        match v {
            0 => Some(Origin::Igp),
            1 => Some(Origin::Egp),
            2 => Some(Origin::Incomplete),
            _ => None,
        }
    }

    /// The ORIGIN octet.
    pub fn to_u8(self) -> u8 {
        match self {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        }
    }
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsSegmentType {
    /// 1: unordered set (counts as one hop).
    Set,
    /// 2: ordered sequence.
    Sequence,
    /// 3: confederation sequence (does not count towards path length).
    ConfedSequence,
    /// 4: confederation set (does not count towards path length).
    ConfedSet,
}

impl AsSegmentType {
    /// Parses the segment type octet.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(AsSegmentType::Set),
            2 => Some(AsSegmentType::Sequence),
            3 => Some(AsSegmentType::ConfedSequence),
            4 => Some(AsSegmentType::ConfedSet),
            _ => None,
        }
    }

    /// The segment type octet.
    pub fn to_u8(self) -> u8 {
        match self {
            AsSegmentType::Set => 1,
            AsSegmentType::Sequence => 2,
            AsSegmentType::ConfedSequence => 3,
            AsSegmentType::ConfedSet => 4,
        }
    }

    fn is_confed(self) -> bool {
        matches!(
            self,
            AsSegmentType::ConfedSequence | AsSegmentType::ConfedSet
        )
    }
}

/// One AS_PATH segment (1..=255 AS numbers on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsSegment {
    /// Segment type.
    pub kind: AsSegmentType,
    /// AS numbers, 4-octet.
    pub asns: Vec<u32>,
}

/// An AS_PATH with 4-octet AS numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AsPath {
    /// Segments in wire order (the first is the most recently prepended).
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE.
    pub fn sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: AsSegmentType::Sequence,
                asns,
            }],
        }
    }

    /// Path length for best-path selection (RFC 4271 §9.1.2.2 a): an AS_SET counts as 1,
    /// confederation segments count 0.
    pub fn hop_count(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                AsSegmentType::Sequence => s.asns.len(),
                AsSegmentType::Set => 1,
                _ => 0,
            })
            .sum()
    }

    /// Whether `asn` appears anywhere in the path (eBGP loop detection, RFC 4271 §9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// The neighbouring AS (first AS of the first AS_SEQUENCE), used to group MEDs.
    pub fn first_as(&self) -> Option<u32> {
        match self.segments.first() {
            Some(s) if s.kind == AsSegmentType::Sequence => s.asns.first().copied(),
            _ => None,
        }
    }

    /// Prepends `asn` (RFC 4271 §5.1.2 when advertising to an external peer).
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(s) if s.kind == AsSegmentType::Sequence && s.asns.len() < 255 => {
                s.asns.insert(0, asn)
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: AsSegmentType::Sequence,
                    asns: vec![asn],
                },
            ),
        }
    }

    /// Whether any AS number needs 4 octets.
    pub fn needs_as4(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > u32::from(u16::MAX)))
    }

    /// RFC 6793 §4.2.3: rebuild the real path from a 2-octet AS_PATH and an AS4_PATH.
    ///
    /// If AS_PATH holds fewer ASes than AS4_PATH, AS4_PATH is ignored. Otherwise the leading
    /// ASes of AS_PATH that AS4_PATH does not cover are kept, and AS4_PATH is appended.
    /// Confederation segments are skipped in the count and kept from AS_PATH.
    pub fn merge_as4(as_path: &AsPath, as4_path: &AsPath) -> AsPath {
        let count = |p: &AsPath| -> usize {
            p.segments
                .iter()
                .filter(|s| !s.kind.is_confed())
                .map(|s| {
                    if s.kind == AsSegmentType::Set {
                        1
                    } else {
                        s.asns.len()
                    }
                })
                .sum()
        };
        let n2 = count(as_path);
        let n4 = count(as4_path);
        if n2 < n4 {
            return as_path.clone();
        }
        let mut keep = n2 - n4;
        let mut out = AsPath::default();
        for s in &as_path.segments {
            if s.kind.is_confed() {
                out.segments.push(s.clone());
                continue;
            }
            if keep == 0 {
                break;
            }
            match s.kind {
                AsSegmentType::Set => {
                    out.segments.push(s.clone());
                    keep -= 1;
                }
                _ => {
                    let take = keep.min(s.asns.len());
                    out.segments.push(AsSegment {
                        kind: s.kind,
                        asns: s.asns[..take].to_vec(),
                    });
                    keep -= take;
                }
            }
        }
        out.segments.extend(
            as4_path
                .segments
                .iter()
                .filter(|s| !s.kind.is_confed())
                .cloned(),
        );
        out.normalize();
        out
    }

    /// Joins adjacent AS_SEQUENCEs and drops empty segments so equal paths compare equal.
    pub fn normalize(&mut self) {
        let mut out: Vec<AsSegment> = Vec::with_capacity(self.segments.len());
        for s in self.segments.drain(..) {
            if s.asns.is_empty() {
                continue;
            }
            if let Some(last) = out.last_mut()
                && last.kind == AsSegmentType::Sequence
                && s.kind == AsSegmentType::Sequence
                && last.asns.len() + s.asns.len() <= 255
            {
                last.asns.extend_from_slice(&s.asns);
                continue;
            }
            out.push(s);
        }
        self.segments = out;
    }
}

/// AGGREGATOR: the AS and BGP Identifier of the speaker that aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    /// AS number (4-octet).
    pub asn: u32,
    /// BGP Identifier.
    pub id: Ipv4Addr,
}

/// RFC 8092 large community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    /// Global administrator (usually an AS).
    pub global: u32,
    /// First local data part.
    pub local1: u32,
    /// Second local data part.
    pub local2: u32,
}

/// An attribute this codec does not interpret, kept so optional transitive ones can be passed
/// on with the Partial bit set (RFC 4271 §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// Flags as received (the extended-length bit is recomputed on encode).
    pub flags: u8,
    /// Type code.
    pub type_code: u8,
    /// Value bytes.
    pub value: Vec<u8>,
}

/// Path attributes of an UPDATE, minus MP_REACH/MP_UNREACH.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PathAttributes {
    /// ORIGIN.
    pub origin: Origin,
    /// AS_PATH, with AS4_PATH already merged in.
    pub as_path: AsPath,
    /// NEXT_HOP (IPv4 NLRI only; MP next hops are on the MP_REACH).
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE present.
    pub atomic_aggregate: bool,
    /// AGGREGATOR, with AS4_AGGREGATOR already merged in.
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES, in received order.
    pub communities: Vec<u32>,
    /// LARGE_COMMUNITY values, in received order.
    pub large_communities: Vec<LargeCommunity>,
    /// ORIGINATOR_ID (RFC 4456).
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST (RFC 4456), most recent reflector first.
    pub cluster_list: Vec<Ipv4Addr>,
    /// Attributes kept uninterpreted (unknown optional ones).
    pub unknown: Vec<RawAttribute>,
}

impl PathAttributes {
    /// Whether the route carries a community.
    pub fn has_community(&self, c: u32) -> bool {
        self.communities.contains(&c)
    }
}

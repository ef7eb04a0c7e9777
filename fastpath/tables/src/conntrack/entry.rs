//! One tracked connection ([`Conn`]) and the small handles that name it.

use super::timeouts::{CODE_FREE, ConnState};
use crate::flow::{FAMILY_V6, FlowKey};

/// Which way a packet travels relative to the packet that created the connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Direction {
    /// Same direction as the first packet.
    Original,
    /// The answering direction.
    Reply,
}

impl Direction {
    /// The other direction.
    #[inline]
    #[must_use]
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Original => Direction::Reply,
            Direction::Reply => Direction::Original,
        }
    }
}

/// Index of a connection in its table. Stable while the connection lives; reused afterwards,
/// so do not keep one across batches without re-looking the key up.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct ConnId(pub(crate) u32);

impl ConnId {
    /// The slot number (0..capacity), for side tables the pipeline may keep per connection.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A lookup hit: the connection and the direction the looked-up packet travels in.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct ConnRef {
    /// The connection.
    pub id: ConnId,
    /// The packet's direction.
    pub dir: Direction,
}

/// The cached policy verdict of a connection, one bit per direction.
///
/// Calico evaluates policy on the first packet of a flow; replies of an allowed flow are then
/// allowed (`ALLOW`). A verdict that allows only the original direction is possible for
/// pipelines that want replies re-checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Default)]
pub struct Verdict(pub u8);

impl Verdict {
    /// Nothing allowed (a cached deny).
    pub const DENY: Verdict = Verdict(0);
    /// Packets in the original direction are allowed.
    pub const ALLOW_ORIGINAL: Verdict = Verdict(1);
    /// Packets in the reply direction are allowed.
    pub const ALLOW_REPLY: Verdict = Verdict(2);
    /// Both directions are allowed: the usual stateful "allow".
    pub const ALLOW: Verdict = Verdict(3);

    /// True when a packet in `dir` is allowed.
    #[inline]
    pub fn allows(self, dir: Direction) -> bool {
        let bit = match dir {
            Direction::Original => Self::ALLOW_ORIGINAL.0,
            Direction::Reply => Self::ALLOW_REPLY.0,
        };
        self.0 & bit != 0
    }
}

pub(crate) const FLAG_SEEN_REPLY: u8 = 1;
pub(crate) const FLAG_SNAT: u8 = 2;
pub(crate) const FLAG_DNAT: u8 = 4;
const FLAGS_MASK: u8 = 7;
const VERDICT_SHIFT: u32 = 3;

/// One slab slot: a tracked connection in exactly one 64-byte cache line.
///
/// Beside the original tuple it stores the NAT binding packed in 12 bytes: for IPv4 the
/// translated source and destination addresses and ports (equal to the original without
/// NAT); for IPv6 the translated ports and, for a NAT'd flow, the index of its two translated
/// addresses in the table's IPv6 binding side table ([`V6Nat`]). The public view of a slot
/// is [`Conn`], which rebuilds the translated tuple by value.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Entry {
    pub(crate) last_seen: u64,
    pub(crate) policy_epoch: u32,
    pub(crate) key: FlowKey,
    /// IPv4: translated source address. IPv6 with NAT: side-table index (little endian).
    nat_src: [u8; 4],
    /// IPv4: translated destination address. IPv6: unused (zero).
    nat_dst: [u8; 4],
    nat_sport: u16,
    nat_dport: u16,
    pub(crate) state: u8,
    /// Bits 0-2: `FLAG_*`; bits 3-4: the cached [`Verdict`].
    bits: u8,
}

/// The translated addresses of an IPv6 NAT'd connection, kept outside the 64-byte entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct V6Nat {
    pub(crate) src: [u8; 16],
    pub(crate) dst: [u8; 16],
}

impl V6Nat {
    pub(crate) const ZERO: V6Nat = V6Nat {
        src: [0; 16],
        dst: [0; 16],
    };
}

impl Entry {
    pub(crate) const FREE: Entry = Entry {
        last_seen: 0,
        policy_epoch: 0,
        key: FlowKey::ZERO,
        nat_src: [0; 4],
        nat_dst: [0; 4],
        nat_sport: 0,
        nat_dport: 0,
        state: CODE_FREE,
        bits: 0,
    };

    /// A live entry for `key` translated to `translated`, with `last_seen`, policy epoch and
    /// verdict zero (set them next). `flags` are `FLAG_*` bits; an IPv6 flow with NAT passes
    /// the side-table slot holding `translated`'s addresses in `v6_slot` (ignored for IPv4,
    /// whose addresses fit in the entry).
    pub(crate) fn new(
        key: FlowKey,
        translated: &FlowKey,
        v6_slot: Option<u32>,
        state: u8,
        flags: u8,
    ) -> Entry {
        let (nat_src, nat_dst) = if key.family == FAMILY_V6 {
            (v6_slot.unwrap_or(0).to_le_bytes(), [0; 4])
        } else {
            (first4(&translated.src), first4(&translated.dst))
        };
        let mut e = Entry {
            last_seen: 0,
            policy_epoch: 0,
            key,
            nat_src,
            nat_dst,
            nat_sport: translated.sport,
            nat_dport: translated.dport,
            state,
            bits: 0,
        };
        e.set_flags(flags);
        e
    }

    #[inline]
    pub(crate) fn is_free(&self) -> bool {
        self.state == CODE_FREE
    }

    #[inline]
    pub(crate) fn flags(&self) -> u8 {
        self.bits & FLAGS_MASK
    }

    #[inline]
    pub(crate) fn set_flags(&mut self, flags: u8) {
        self.bits = (self.bits & !FLAGS_MASK) | (flags & FLAGS_MASK);
    }

    #[inline]
    pub(crate) fn verdict(&self) -> Verdict {
        Verdict((self.bits >> VERDICT_SHIFT) & Verdict::ALLOW.0)
    }

    /// Stores the two direction bits of `v` (the only bits a [`Verdict`] defines).
    #[inline]
    pub(crate) fn set_verdict(&mut self, v: Verdict) {
        self.bits = self.flags() | ((v.0 & Verdict::ALLOW.0) << VERDICT_SHIFT);
    }

    #[inline]
    pub(crate) fn has_nat(&self) -> bool {
        self.bits & (FLAG_SNAT | FLAG_DNAT) != 0
    }

    /// The side-table slot of an IPv6 NAT'd entry.
    #[inline]
    pub(crate) fn v6_slot(&self) -> Option<u32> {
        (self.key.family == FAMILY_V6 && self.has_nat()).then(|| u32::from_le_bytes(self.nat_src))
    }

    /// The original tuple after NAT, rebuilt from the packed binding.
    #[inline]
    pub(crate) fn translated(&self, v6_nat: &[V6Nat]) -> FlowKey {
        let (src, dst) = if self.key.family == FAMILY_V6 {
            match self.v6_slot() {
                // A slot out of range cannot happen (the table sets both together); fall
                // back to the original addresses rather than panic.
                Some(i) => v6_nat
                    .get(i as usize)
                    .map_or((self.key.src, self.key.dst), |b| (b.src, b.dst)),
                None => (self.key.src, self.key.dst),
            }
        } else {
            (pad4(self.nat_src), pad4(self.nat_dst))
        };
        FlowKey {
            src,
            dst,
            sport: self.nat_sport,
            dport: self.nat_dport,
            proto: self.key.proto,
            family: self.key.family,
        }
    }

    /// True when `key` is this connection's reply tuple (the translated tuple reversed).
    /// The IPv4 and un-NAT'd IPv6 cases compare in place, without the side table.
    #[inline]
    pub(crate) fn is_reply(&self, key: &FlowKey, v6_nat: &[V6Nat]) -> bool {
        if key.proto != self.key.proto
            || key.family != self.key.family
            || key.sport != self.nat_dport
            || key.dport != self.nat_sport
        {
            return false;
        }
        if self.key.family == FAMILY_V6 {
            let (src, dst) = match self.v6_slot() {
                Some(i) => match v6_nat.get(i as usize) {
                    Some(b) => (&b.src, &b.dst),
                    None => return false,
                },
                None => (&self.key.src, &self.key.dst),
            };
            key.src == *dst && key.dst == *src
        } else {
            key.src == pad4(self.nat_dst) && key.dst == pad4(self.nat_src)
        }
    }
}

#[inline]
fn first4(a: &[u8; 16]) -> [u8; 4] {
    [a[0], a[1], a[2], a[3]]
}

#[inline]
fn pad4(a: [u8; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&a);
    out
}

/// A tracked connection as the table hands it out: a view of its 64-byte slab entry (plus,
/// for IPv6 NAT, its side-table binding). `Copy`; borrow it only within a batch.
///
/// The original tuple is the key of the first packet. [`Conn::translated`] is the same tuple
/// after NAT (equal to the original without NAT), rebuilt by value from the packed binding;
/// the reply direction is found under `translated().reversed()`, so reverse translation of a
/// reply is one lookup plus a copy.
#[derive(Clone, Copy)]
pub struct Conn<'a> {
    entry: &'a Entry,
    v6_nat: &'a [V6Nat],
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("original", self.original())
            .field("translated", &self.translated())
            .field("state", &self.state())
            .field("last_seen", &self.last_seen())
            .field("verdict", &self.verdict())
            .finish()
    }
}

impl<'a> Conn<'a> {
    #[inline]
    pub(crate) fn new(entry: &'a Entry, v6_nat: &'a [V6Nat]) -> Self {
        Conn { entry, v6_nat }
    }

    /// The tuple of the packet that created the connection.
    #[inline]
    pub fn original(&self) -> &'a FlowKey {
        &self.entry.key
    }

    /// The original tuple after NAT (what left the node in the original direction), rebuilt
    /// by value from the entry's packed NAT binding.
    #[inline]
    pub fn translated(&self) -> FlowKey {
        self.entry.translated(self.v6_nat)
    }

    /// The tuple that reply packets carry on arrival: the translated tuple reversed.
    #[inline]
    pub fn reply_key(&self) -> FlowKey {
        self.translated().reversed()
    }

    /// The key a packet in `dir` carries on arrival.
    #[inline]
    pub fn key_for(&self, dir: Direction) -> FlowKey {
        match dir {
            Direction::Original => self.entry.key,
            Direction::Reply => self.reply_key(),
        }
    }

    /// For a NAT'd connection, the tuple a packet travelling in `dir` must be rewritten to
    /// (original direction: the translated tuple; reply: the original tuple reversed).
    /// `None` when the connection has no NAT. Compare the fields with the packet's to see
    /// which of source and destination change, and fix checksums with [`crate::checksum`].
    #[inline]
    pub fn rewrite_for(&self, dir: Direction) -> Option<FlowKey> {
        if !self.entry.has_nat() {
            return None;
        }
        Some(match dir {
            Direction::Original => self.translated(),
            Direction::Reply => self.entry.key.reversed(),
        })
    }

    /// The tracking state.
    #[inline]
    pub fn state(&self) -> ConnState {
        // A live entry always holds a valid code; fall back to `New` rather than panic.
        ConnState::from_code(self.entry.state).unwrap_or(ConnState::New)
    }

    /// The `now` of the last packet that refreshed the connection.
    #[inline]
    pub fn last_seen(&self) -> u64 {
        self.entry.last_seen
    }

    /// The cached policy verdict (its two direction bits).
    #[inline]
    pub fn verdict(&self) -> Verdict {
        self.entry.verdict()
    }

    /// The policy epoch stored with the verdict (pipeline-defined: e.g. the policy table
    /// generation, so that a generation swap can trigger re-classification).
    #[inline]
    pub fn policy_epoch(&self) -> u32 {
        self.entry.policy_epoch
    }

    /// True once a packet in the reply direction was accepted.
    #[inline]
    pub fn seen_reply(&self) -> bool {
        self.entry.flags() & FLAG_SEEN_REPLY != 0
    }

    /// True when the source was translated (SNAT / natOutgoing).
    #[inline]
    pub fn is_snat(&self) -> bool {
        self.entry.flags() & FLAG_SNAT != 0
    }

    /// True when the destination was translated (DNAT / floating IP).
    #[inline]
    pub fn is_dnat(&self) -> bool {
        self.entry.flags() & FLAG_DNAT != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_one_cache_line() {
        // 64 bytes of entry + ~23 bytes of index per connection stays under 128 bytes.
        assert_eq!(std::mem::size_of::<Entry>(), 64);
        assert_eq!(std::mem::align_of::<Entry>(), 64);
    }

    #[test]
    fn verdict_bits() {
        assert!(
            Verdict::ALLOW.allows(Direction::Original) && Verdict::ALLOW.allows(Direction::Reply)
        );
        assert!(!Verdict::ALLOW_ORIGINAL.allows(Direction::Reply));
        assert!(!Verdict::DENY.allows(Direction::Original));
        assert_eq!(Direction::Reply.opposite(), Direction::Original);
    }
}

//! One tracked connection ([`Conn`]) and the small handles that name it.

use super::timeouts::{CODE_FREE, ConnState};
use crate::flow::FlowKey;

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

/// A tracked connection: 96 bytes, stored inline in the table's preallocated slab.
///
/// The original tuple is the key of the first packet. `translated` is the same tuple after
/// NAT (equal to the original without NAT); the reply direction is found under
/// `translated.reversed()`, so reverse translation of a reply is one lookup plus a copy.
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    pub(crate) last_seen: u64,
    pub(crate) policy_epoch: u32,
    pub(crate) key: FlowKey,
    pub(crate) translated: FlowKey,
    pub(crate) state: u8,
    pub(crate) flags: u8,
    pub(crate) verdict: Verdict,
}

impl Conn {
    pub(crate) const FREE: Conn = Conn {
        last_seen: 0,
        policy_epoch: 0,
        key: FlowKey::ZERO,
        translated: FlowKey::ZERO,
        state: CODE_FREE,
        flags: 0,
        verdict: Verdict::DENY,
    };

    #[inline]
    pub(crate) fn is_free(&self) -> bool {
        self.state == CODE_FREE
    }

    /// The tuple of the packet that created the connection.
    #[inline]
    pub fn original(&self) -> &FlowKey {
        &self.key
    }

    /// The original tuple after NAT (what left the node in the original direction).
    #[inline]
    pub fn translated(&self) -> &FlowKey {
        &self.translated
    }

    /// The tuple that reply packets carry on arrival: the translated tuple reversed.
    #[inline]
    pub fn reply_key(&self) -> FlowKey {
        self.translated.reversed()
    }

    /// The key a packet in `dir` carries on arrival.
    #[inline]
    pub fn key_for(&self, dir: Direction) -> FlowKey {
        match dir {
            Direction::Original => self.key,
            Direction::Reply => self.reply_key(),
        }
    }

    /// For a NAT'd connection, the tuple a packet travelling in `dir` must be rewritten to
    /// (original direction: the translated tuple; reply: the original tuple reversed).
    /// `None` when the connection has no NAT. Compare the fields with the packet's to see
    /// which of source and destination change, and fix checksums with [`crate::checksum`].
    #[inline]
    pub fn rewrite_for(&self, dir: Direction) -> Option<FlowKey> {
        if self.flags & (FLAG_SNAT | FLAG_DNAT) == 0 {
            return None;
        }
        Some(match dir {
            Direction::Original => self.translated,
            Direction::Reply => self.key.reversed(),
        })
    }

    /// The tracking state.
    #[inline]
    pub fn state(&self) -> ConnState {
        // A live entry always holds a valid code; fall back to `New` rather than panic.
        ConnState::from_code(self.state).unwrap_or(ConnState::New)
    }

    /// The `now` of the last packet that refreshed the connection.
    #[inline]
    pub fn last_seen(&self) -> u64 {
        self.last_seen
    }

    /// The cached policy verdict.
    #[inline]
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The policy epoch stored with the verdict (pipeline-defined: e.g. the policy table
    /// generation, so that a generation swap can trigger re-classification).
    #[inline]
    pub fn policy_epoch(&self) -> u32 {
        self.policy_epoch
    }

    /// True once a packet in the reply direction was accepted.
    #[inline]
    pub fn seen_reply(&self) -> bool {
        self.flags & FLAG_SEEN_REPLY != 0
    }

    /// True when the source was translated (SNAT / natOutgoing).
    #[inline]
    pub fn is_snat(&self) -> bool {
        self.flags & FLAG_SNAT != 0
    }

    /// True when the destination was translated (DNAT / floating IP).
    #[inline]
    pub fn is_dnat(&self) -> bool {
        self.flags & FLAG_DNAT != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_fits_the_memory_budget() {
        // 96 bytes of entry + ~23 bytes of index per connection stays under 128 bytes.
        assert_eq!(std::mem::size_of::<Conn>(), 96);
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

//! The indexed form of a rule: one entry per (source net, destination net, source range,
//! destination range) combination, stored inline in a tuple table.

use crate::addr::Addr;
use crate::rule::KeyT;

/// End of a chain / free list.
pub(crate) const NIL: u32 = u32::MAX;
/// The entry matches one protocol exactly (otherwise any protocol).
pub(crate) const F_PROTO: u8 = 1;
/// The entry carries a predicate (sets, negations, or a field too wide to expand):
/// `payload` then indexes the classifier's predicate table instead of holding the action.
pub(crate) const F_EXTRA: u8 = 2;

/// One indexed entry. For IPv4 it is exactly 32 bytes (two per cache line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Entry<A> {
    /// Source network address (host bits zero).
    pub src: A,
    /// Destination network address (host bits zero).
    pub dst: A,
    pub sp_lo: u16,
    pub sp_hi: u16,
    pub dp_lo: u16,
    pub dp_hi: u16,
    pub src_len: u8,
    pub dst_len: u8,
    /// Protocol number when `F_PROTO` is set, else 0.
    pub proto: u8,
    pub flags: u8,
    /// Rule priority (lower wins).
    pub prio: u32,
    /// The action, or with `F_EXTRA` the predicate index.
    pub payload: u32,
    /// Next entry of the same key in priority order, or the free-list link.
    pub next: u32,
}

/// Prefix lengths an entry (or table) indexes per field. Ports use the length of the common
/// prefix of the range bounds, so every port of the range shares the indexed bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Tuple {
    pub src: u8,
    pub dst: u8,
    pub sp: u8,
    pub dp: u8,
    pub proto: u8,
}

impl Tuple {
    /// Whether an entry whose natural tuple is `nat` can live in a table with tuple `self`:
    /// the table must not index more bits of any field than the entry fixes.
    #[inline]
    pub fn fits(&self, nat: &Tuple) -> bool {
        self.src <= nat.src
            && self.dst <= nat.dst
            && self.sp <= nat.sp
            && self.dp <= nat.dp
            && self.proto <= nat.proto
    }

    /// Total indexed bits: a table with more is more selective.
    pub fn weight(&self) -> u32 {
        u32::from(self.src)
            + u32::from(self.dst)
            + u32::from(self.sp)
            + u32::from(self.dp)
            + u32::from(self.proto)
    }

    pub fn get(&self, dim: usize) -> u8 {
        [self.src, self.dst, self.sp, self.dp, self.proto][dim]
    }

    pub fn set(&mut self, dim: usize, v: u8) {
        match dim {
            0 => self.src = v,
            1 => self.dst = v,
            2 => self.sp = v,
            3 => self.dp = v,
            _ => self.proto = v,
        }
    }

    /// Mask of the 16-bit port prefix of length `len`.
    #[inline]
    pub fn port_mask(len: u8) -> u64 {
        u64::from((0xFFFF_u32 << (16 - u32::from(len))) as u16)
    }
}

/// Length of the common prefix of a range's bounds: the port bits every member shares.
#[inline]
pub(crate) fn range_prefix_len(lo: u16, hi: u16) -> u8 {
    (lo ^ hi).leading_zeros() as u8
}

impl<A: Addr> Entry<A> {
    /// The tuple this entry would use if it had a table of its own.
    pub fn natural_tuple(&self) -> Tuple {
        Tuple {
            src: self.src_len,
            dst: self.dst_len,
            sp: range_prefix_len(self.sp_lo, self.sp_hi),
            dp: range_prefix_len(self.dp_lo, self.dp_hi),
            proto: if self.flags & F_PROTO != 0 { 8 } else { 0 },
        }
    }

    /// Ports and protocol packed like [`KeyT::port_word`], using the range low bounds.
    #[inline(always)]
    pub fn port_word(&self) -> u64 {
        u64::from(self.sp_lo) | (u64::from(self.dp_lo) << 16) | (u64::from(self.proto) << 32)
    }

    /// Whether the key satisfies every indexed field of the entry (predicates excluded).
    #[inline(always)]
    pub fn matches(&self, k: &KeyT<A>) -> bool {
        // `&` rather than `&&`: every term is cheap, and one combined branch predicts better
        // than seven.
        (((k.src ^ self.src) & A::mask(self.src_len)) == A::ZERO)
            & (((k.dst ^ self.dst) & A::mask(self.dst_len)) == A::ZERO)
            & (k.src_port.wrapping_sub(self.sp_lo) <= self.sp_hi.wrapping_sub(self.sp_lo))
            & (k.dst_port.wrapping_sub(self.dp_lo) <= self.dp_hi.wrapping_sub(self.dp_lo))
            & ((self.flags & F_PROTO == 0) | (self.proto == k.proto))
    }

    /// Equality of everything but the chain link and, for predicate entries, the predicate
    /// index (which the remover does not know): identifies an entry for removal.
    pub fn same_rule(&self, other: &Self) -> bool {
        let norm = |e: &Self| Self {
            next: 0,
            payload: if e.flags & F_EXTRA != 0 { 0 } else { e.payload },
            ..*e
        };
        norm(self) == norm(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_entry_is_half_a_cache_line() {
        assert_eq!(core::mem::size_of::<Entry<u32>>(), 32);
    }

    #[test]
    fn port_masks() {
        assert_eq!(Tuple::port_mask(0), 0);
        assert_eq!(Tuple::port_mask(16), 0xFFFF);
        assert_eq!(Tuple::port_mask(6), 0xFC00);
    }

    #[test]
    fn range_prefixes() {
        assert_eq!(range_prefix_len(80, 80), 16);
        assert_eq!(range_prefix_len(0, 65535), 0);
        assert_eq!(range_prefix_len(0, 1023), 6);
        assert_eq!(range_prefix_len(1024, 65535), 0);
    }

    #[test]
    fn tuple_fit_is_componentwise() {
        let t = Tuple {
            src: 8,
            dst: 16,
            sp: 0,
            dp: 16,
            proto: 0,
        };
        assert!(t.fits(&Tuple {
            src: 24,
            dst: 16,
            sp: 0,
            dp: 16,
            proto: 8
        }));
        assert!(!t.fits(&Tuple {
            src: 24,
            dst: 15,
            sp: 0,
            dp: 16,
            proto: 8
        }));
    }
}

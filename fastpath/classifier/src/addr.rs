//! Address widths the engine is generic over: IPv4 as `u32`, IPv6 as `u128`.
//!
//! Keeping one engine per family (rather than widening IPv4 to 128 bits) keeps the IPv4 hash
//! key in two machine words and the IPv4 entry in half a cache line.

use core::fmt::Debug;
use core::hash::Hash;
use core::ops::{BitAnd, BitXor};

use ipnet::IpNet;

/// Multiplier constants for the folded-multiply hash (odd, high-entropy 64-bit values).
const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const K3: u64 = 0x1656_67B1_9E37_79F9;
const K4: u64 = 0x27D4_EB2F_1656_67C5;

/// The folded multiply: full 128-bit product of two words, high half XOR low half. Every
/// output bit depends on every input bit, which is all a table index needs.
#[inline(always)]
pub(crate) fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// An address of one family, as an unsigned integer in network bit order (most significant bit
/// first), so that a prefix of length `n` is the top `n` bits.
pub(crate) trait Addr:
    Copy + Eq + Ord + Hash + Default + Debug + BitAnd<Output = Self> + BitXor<Output = Self> + 'static
{
    /// Address width in bits (32 or 128).
    const BITS: u8;
    /// The all-zero address.
    const ZERO: Self;
    /// The mask whose top `len` bits are set; `len` is at most `BITS`.
    fn mask(len: u8) -> Self;
    /// The lowest and highest address of `addr/len`.
    fn prefix_bounds(addr: Self, len: u8) -> (Self, Self);
    /// Mixes a (source, destination) pair into one 64-bit word for hashing.
    fn mix_pair(src: Self, dst: Self) -> u64;
    /// Converts a network of this family into (address, length), or `None` for the other family.
    fn from_net(net: &IpNet) -> Option<(Self, u8)>;
    /// Whether `addr` lies inside `net` (false when `net` is of the other family).
    #[inline]
    fn in_net(addr: Self, net: &IpNet) -> bool {
        match Self::from_net(net) {
            Some((base, len)) => (addr ^ base) & Self::mask(len) == Self::ZERO,
            None => false,
        }
    }
}

impl Addr for u32 {
    const BITS: u8 = 32;
    const ZERO: Self = 0;

    #[inline(always)]
    fn mask(len: u8) -> Self {
        // A 64-bit shift by 32 is defined and yields zero in the low half: no branch for /0.
        (u64::MAX << (32 - u32::from(len))) as u32
    }

    #[inline]
    fn prefix_bounds(addr: Self, len: u8) -> (Self, Self) {
        let m = Self::mask(len);
        (addr & m, (addr & m) | !m)
    }

    #[inline(always)]
    fn mix_pair(src: Self, dst: Self) -> u64 {
        (u64::from(src) << 32) | u64::from(dst)
    }

    fn from_net(net: &IpNet) -> Option<(Self, u8)> {
        match net {
            IpNet::V4(n) => Some((u32::from(n.network()), n.prefix_len())),
            IpNet::V6(_) => None,
        }
    }
}

impl Addr for u128 {
    const BITS: u8 = 128;
    const ZERO: Self = 0;

    #[inline(always)]
    fn mask(len: u8) -> Self {
        u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
    }

    #[inline]
    fn prefix_bounds(addr: Self, len: u8) -> (Self, Self) {
        let m = Self::mask(len);
        (addr & m, (addr & m) | !m)
    }

    #[inline(always)]
    fn mix_pair(src: Self, dst: Self) -> u64 {
        let s = fold_mul((src as u64) ^ K1, ((src >> 64) as u64) ^ K2);
        let d = fold_mul((dst as u64) ^ K3, ((dst >> 64) as u64) ^ K4);
        s ^ d.rotate_left(29)
    }

    fn from_net(net: &IpNet) -> Option<(Self, u8)> {
        match net {
            IpNet::V6(n) => Some((u128::from(n.network()), n.prefix_len())),
            IpNet::V4(_) => None,
        }
    }
}

/// Hash of a masked (address pair, port/protocol word) key.
#[inline(always)]
pub(crate) fn key_hash<A: Addr>(src: A, dst: A, ports: u64) -> u64 {
    fold_mul(A::mix_pair(src, dst) ^ K1, ports ^ K2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_masks_cover_every_length() {
        assert_eq!(<u32 as Addr>::mask(0), 0);
        assert_eq!(<u32 as Addr>::mask(8), 0xFF00_0000);
        assert_eq!(<u32 as Addr>::mask(32), u32::MAX);
        for len in 0..=32u8 {
            assert_eq!(<u32 as Addr>::mask(len).count_ones(), u32::from(len));
        }
    }

    #[test]
    fn v6_masks_cover_every_length() {
        assert_eq!(<u128 as Addr>::mask(0), 0);
        assert_eq!(<u128 as Addr>::mask(128), u128::MAX);
        for len in 0..=128u8 {
            assert_eq!(<u128 as Addr>::mask(len).count_ones(), u32::from(len));
        }
    }

    #[test]
    fn prefix_bounds_span_the_prefix() {
        assert_eq!(
            <u32 as Addr>::prefix_bounds(0x0A01_0203, 16),
            (0x0A01_0000, 0x0A01_FFFF)
        );
        assert_eq!(<u32 as Addr>::prefix_bounds(7, 0), (0, u32::MAX));
    }

    #[test]
    fn in_net_respects_family() {
        let v4: IpNet = "10.0.0.0/8".parse().unwrap();
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(<u32 as Addr>::in_net(0x0A63_0001, &v4));
        assert!(!<u32 as Addr>::in_net(0x0B00_0001, &v4));
        assert!(!<u32 as Addr>::in_net(0x0A00_0001, &v6));
        assert!(<u128 as Addr>::in_net(0x2001_0db8_u128 << 96 | 5, &v6));
        assert!(!<u128 as Addr>::in_net(0x2001_0db8_u128 << 96, &v4));
    }
}

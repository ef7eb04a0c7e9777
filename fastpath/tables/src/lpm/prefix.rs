//! Address families and prefixes for the LPM tables.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::LpmError;

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::net::Ipv4Addr {}
    impl Sealed for std::net::Ipv6Addr {}
}

/// An address family usable as an LPM key: [`Ipv4Addr`] or [`Ipv6Addr`].
///
/// Internally every address is also seen as a `u128` aligned to the most significant bit
/// (IPv4 in the top 32 bits, zeros below), which lets one build routine serve both families.
pub trait Address:
    sealed::Sealed + Copy + Eq + std::hash::Hash + fmt::Debug + fmt::Display + FromStr + 'static
{
    /// Address width in bits.
    const BITS: u8;
    /// Bits resolved by the direct-pointing array of the trie (18 for IPv4, 16 for IPv6).
    const DIRECT_BITS: u8;
    /// The address as a left-aligned `u128`.
    fn to_left(self) -> u128;
    /// The inverse of [`Address::to_left`] (low bits beyond `BITS` are ignored).
    fn from_left(bits: u128) -> Self;
    /// Index into the direct-pointing array: the top `DIRECT_BITS` bits.
    fn direct_index(self) -> usize;
    /// The 6 bits starting `offset` bits from the top (bits past the end read as zero).
    fn chunk(self, offset: u32) -> u32;
    /// The `width` bits (1..=60) starting `offset` bits from the top, right-aligned
    /// (`offset + width` must not exceed `BITS`).
    fn bits(self, offset: u32, width: u32) -> u64;
}

impl Address for Ipv4Addr {
    const BITS: u8 = 32;
    const DIRECT_BITS: u8 = 18;

    #[inline]
    fn to_left(self) -> u128 {
        u128::from(u32::from(self)) << 96
    }

    #[inline]
    fn from_left(bits: u128) -> Self {
        Ipv4Addr::from((bits >> 96) as u32)
    }

    #[inline]
    fn direct_index(self) -> usize {
        (u32::from(self) >> (32 - Self::DIRECT_BITS)) as usize
    }

    #[inline]
    fn chunk(self, offset: u32) -> u32 {
        // offset <= 30 for IPv4 (18, 24, 30), so the shift stays below 64.
        ((u64::from(u32::from(self)) << (32 + offset)) >> 58) as u32
    }

    #[inline]
    fn bits(self, offset: u32, width: u32) -> u64 {
        ((u64::from(u32::from(self)) << 32) << offset) >> (64 - width)
    }
}

impl Address for Ipv6Addr {
    const BITS: u8 = 128;
    const DIRECT_BITS: u8 = 16;

    #[inline]
    fn to_left(self) -> u128 {
        u128::from(self)
    }

    #[inline]
    fn from_left(bits: u128) -> Self {
        Ipv6Addr::from(bits)
    }

    #[inline]
    fn direct_index(self) -> usize {
        (u128::from(self) >> (128 - Self::DIRECT_BITS)) as usize
    }

    #[inline]
    fn chunk(self, offset: u32) -> u32 {
        // offset <= 124 for IPv6 (16, 22, ..., 124).
        ((u128::from(self) << offset) >> 122) as u32
    }

    #[inline]
    fn bits(self, offset: u32, width: u32) -> u64 {
        ((u128::from(self) << offset) >> (128 - width)) as u64
    }
}

/// Mask keeping the top `len` bits of a left-aligned address.
#[inline]
pub(crate) fn left_mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// A network prefix: address with host bits cleared, and length.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix<A: Address> {
    addr: A,
    len: u8,
}

/// An IPv4 prefix.
pub type Ipv4Prefix = Prefix<Ipv4Addr>;
/// An IPv6 prefix.
pub type Ipv6Prefix = Prefix<Ipv6Addr>;

impl<A: Address> Prefix<A> {
    /// A prefix of `len` bits; host bits of `addr` are cleared (10.1.2.3/8 becomes 10.0.0.0/8).
    pub fn new(addr: A, len: u8) -> Result<Self, LpmError> {
        if len > A::BITS {
            return Err(LpmError::PrefixLength { len, max: A::BITS });
        }
        Ok(Prefix {
            addr: A::from_left(addr.to_left() & left_mask(len)),
            len,
        })
    }

    /// The network address.
    pub fn addr(&self) -> A {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True for the zero-length (default) prefix.
    pub fn is_default(&self) -> bool {
        self.len == 0
    }

    /// True when `addr` lies inside the prefix.
    pub fn contains(&self, addr: A) -> bool {
        addr.to_left() & left_mask(self.len) == self.addr.to_left()
    }

    pub(crate) fn left(&self) -> u128 {
        self.addr.to_left()
    }
}

impl<A: Address> fmt::Display for Prefix<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<A: Address> fmt::Debug for Prefix<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<A: Address> FromStr for Prefix<A> {
    type Err = LpmError;

    /// Parse `addr/len` (or a bare address, taken as a host prefix).
    fn from_str(s: &str) -> Result<Self, LpmError> {
        let bad = || LpmError::Parse(s.chars().take(64).collect());
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().map_err(|_| bad())?),
            None => (s, A::BITS),
        };
        let addr = a.parse::<A>().map_err(|_| bad())?;
        Prefix::new(addr, l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_are_cleared_and_lengths_checked() {
        let p: Ipv4Prefix = "10.1.2.3/8".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert!(p.contains("10.255.0.1".parse().unwrap()));
        assert!(!p.contains("11.0.0.1".parse().unwrap()));
        assert_eq!(
            Ipv4Prefix::new(Ipv4Addr::LOCALHOST, 33),
            Err(LpmError::PrefixLength { len: 33, max: 32 })
        );
        assert!("10.0.0.0/x".parse::<Ipv4Prefix>().is_err());
        assert!("2001:db8::/129".parse::<Ipv6Prefix>().is_err());
        let h: Ipv6Prefix = "2001:db8::1".parse().unwrap();
        assert_eq!(h.prefix_len(), 128);
        let d: Ipv6Prefix = "::/0".parse().unwrap();
        assert!(d.is_default() && d.contains(Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn chunks_read_six_bits_and_zero_past_the_end() {
        let a = Ipv4Addr::from(0xffff_ffff);
        assert_eq!(a.direct_index(), (1 << 18) - 1);
        assert_eq!(a.chunk(18), 63);
        assert_eq!(a.chunk(30), 0b110000);
        let b = Ipv6Addr::from(u128::MAX);
        assert_eq!(b.chunk(124), 0b111100);
        assert_eq!(b.direct_index(), 0xffff);
        assert_eq!(
            Ipv4Addr::from_left(Ipv4Addr::new(1, 2, 3, 4).to_left()),
            Ipv4Addr::new(1, 2, 3, 4)
        );
    }
}

//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are kept as `u32` accumulators of 16-bit big-endian words and folded at the end, so a
//! pseudo-header and a payload can be summed in separate calls.

/// Adds the bytes of `data` (as big-endian 16-bit words, odd trailing byte padded with zero) to
/// the running one's-complement accumulator `acc` (RFC 1071 section 4.1).
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([pair[0], pair[1]])));
        // Fold early now and then so the accumulator never overflows on jumbo payloads.
        if acc > 0xffff_0000 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Folds the carries of an accumulator into 16 bits and returns the one's complement: the
/// value to store in a checksum field.
#[inline]
pub fn finish(acc: u32) -> u16 {
    // Two folds always suffice: the first leaves at most 0x1fffe, the second at most 0xffff.
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    !(acc as u16)
}

/// The checksum of `data` alone.
///
/// Sums 64 bits at a time: each 8-byte chunk adds its two big-endian 32-bit halves to a
/// 64-bit accumulator, and the end-around-carry fold at the end reduces it to 16 bits. The
/// result equals `finish(sum(0, data))` (2^16 is 1 modulo 0xffff, so 32-bit words sum to the
/// same one's-complement value as their 16-bit halves, and a sum is zero only when every
/// byte is), for a quarter of the additions. An option-less IPv4 header (20 bytes, the
/// check on every received packet) takes a straight-line path of five 32-bit words.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    if let Ok(header) = <&[u8; 20]>::try_from(data) {
        return !fold64(sum20(header));
    }
    let mut chunks = data.chunks_exact(8);
    let mut acc: u64 = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_be_bytes(word);
        // Each half is below 2^32: 2^31 chunks (16 GiB) could not overflow the accumulator.
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    if let [a, b, c, d, tail @ ..] = rest {
        acc += u64::from(u32::from_be_bytes([*a, *b, *c, *d]));
        rest = tail;
    }
    if let [a, b, tail @ ..] = rest {
        acc += u64::from(u16::from_be_bytes([*a, *b]));
        rest = tail;
    }
    if let [last] = rest {
        acc += u64::from(*last) << 8;
    }
    !fold64(acc)
}

/// The sum of a 20-byte block as five big-endian 32-bit words (below 5 * 2^32).
#[inline]
fn sum20(h: &[u8; 20]) -> u64 {
    let word = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    word(0) + word(4) + word(8) + word(12) + word(16)
}

/// Folds a 64-bit accumulator of big-endian words into 16 bits with end-around carry
/// (RFC 1071 section 4.1), in a fixed number of steps.
#[inline]
fn fold64(acc: u64) -> u16 {
    // Four 16-bit quarters: the sum is below 2^18.
    let s = (acc & 0xffff) + ((acc >> 16) & 0xffff) + ((acc >> 32) & 0xffff) + (acc >> 48);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Whether an option-less IPv4 header (or any 20-byte block carrying its own checksum)
/// sums to 0xffff, that is, its checksum verifies (RFC 1071 section 1(3)).
#[inline]
pub fn verify20(h: &[u8; 20]) -> bool {
    fold64(sum20(h)) == 0xffff
}

/// Updates checksum `old_sum` after a 16-bit word of the covered data changed from `old` to
/// `new`: HC' = ~(~HC + ~m + m') (RFC 1624 section 3, equation 3).
#[inline]
pub fn update16(old_sum: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!old_sum) + u32::from(!old) + u32::from(new);
    finish(acc)
}

/// Updates checksum `old_sum` after a 32-bit value (an IPv4 address) changed.
pub fn update32(old_sum: u16, old: u32, new: u32) -> u16 {
    let acc = u32::from(!old_sum)
        + u32::from(!((old >> 16) as u16))
        + u32::from(!(old as u16))
        + u32::from((new >> 16) as u16)
        + u32::from(new as u16);
    finish(acc)
}

/// Updates checksum `old_sum` after a 128-bit value (an IPv6 address) changed.
pub fn update128(old_sum: u16, old: u128, new: u128) -> u16 {
    let mut acc = u32::from(!old_sum);
    for i in 0..8 {
        let shift = 112 - 16 * i;
        acc += u32::from(!((old >> shift) as u16)) + u32::from((new >> shift) as u16);
    }
    finish(acc)
}

/// The IPv4 pseudo-header sum for TCP/UDP/ICMP-less protocols (RFC 793 section 3.1,
/// RFC 768).
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u32 {
    let acc = sum(0, &src);
    let acc = sum(acc, &dst);
    acc + u32::from(proto) + u32::from(len)
}

/// The IPv6 pseudo-header sum (RFC 8200 section 8.1).
pub fn pseudo_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, len: u32) -> u32 {
    let acc = sum(0, &src);
    let acc = sum(acc, &dst);
    acc + (len >> 16) + (len & 0xffff) + u32::from(next_header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 worked example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0xab]), checksum(&[0xab, 0x00]));
    }

    proptest! {
        #[test]
        fn wide_checksum_matches_word_sum(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(checksum(&data), finish(sum(0, &data)));
        }

        #[test]
        fn twenty_byte_path_matches_word_sum(data in proptest::array::uniform20(any::<u8>())) {
            prop_assert_eq!(checksum(&data), finish(sum(0, &data)));
            prop_assert_eq!(verify20(&data), finish(sum(0, &data)) == 0);
        }

        #[test]
        fn wide_checksum_matches_on_extreme_bytes(len in 0usize..200, fill in prop_oneof![Just(0u8), Just(0xffu8)]) {
            let data = vec![fill; len];
            prop_assert_eq!(checksum(&data), finish(sum(0, &data)));
        }

        #[test]
        fn incremental_16_matches_full(mut data in proptest::collection::vec(any::<u8>(), 2..64), idx in 0usize..31, new in any::<u16>()) {
            let idx = (idx * 2) % (data.len() & !1);
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[idx], data[idx + 1]]);
            data[idx..idx + 2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let inc = update16(before, old, new);
            // 0x0000 and 0xffff are the same value in one's complement arithmetic.
            prop_assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff));
        }

        #[test]
        fn incremental_32_matches_full(mut data in proptest::collection::vec(any::<u8>(), 4..64), new in any::<u32>()) {
            let before = checksum(&data);
            let old = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            data[..4].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let inc = update32(before, old, new);
            prop_assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff));
        }

        #[test]
        fn incremental_128_matches_full(mut data in proptest::collection::vec(any::<u8>(), 16..64), new in any::<u128>()) {
            let before = checksum(&data);
            let mut old = [0u8; 16];
            old.copy_from_slice(&data[..16]);
            data[..16].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let inc = update128(before, u128::from_be_bytes(old), new);
            prop_assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff));
        }
    }
}

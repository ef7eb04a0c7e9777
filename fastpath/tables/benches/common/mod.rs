//! Deterministic inputs shared by the benches (no `rand` dependency needed).

#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use tortie_tables::{FlowKey, Ipv4Prefix, Ipv6Prefix, Prefix, proto};

/// SplitMix64: a tiny, fast, well-distributed generator for bench inputs.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `n` distinct-ish random flows: 3/4 IPv4 TCP/UDP, 1/4 IPv6 TCP.
pub fn flows(n: usize, seed: u64) -> Vec<FlowKey> {
    let mut r = SplitMix(seed);
    (0..n)
        .map(|i| {
            let x = r.next_u64();
            let y = r.next_u64();
            if i % 4 == 3 {
                FlowKey::v6(
                    Ipv6Addr::from((0x2001_0db8u128 << 96) | u128::from(x)),
                    Ipv6Addr::from((0x2001_0db9u128 << 96) | u128::from(y)),
                    (x >> 48) as u16,
                    443,
                    proto::TCP,
                )
            } else {
                let p = if i % 2 == 0 { proto::TCP } else { proto::UDP };
                FlowKey::v4(
                    Ipv4Addr::from(x as u32),
                    Ipv4Addr::from(y as u32),
                    (x >> 32) as u16,
                    (y >> 32) as u16,
                    p,
                )
            }
        })
        .collect()
}

/// A BGP-like IPv4 table: ~60 % /24, the rest spread over /8../32.
pub fn v4_prefixes(n: usize, seed: u64) -> Vec<(Ipv4Prefix, u32)> {
    let mut r = SplitMix(seed);
    (0..n)
        .map(|i| {
            let x = r.next_u64();
            let len = if x % 10 < 6 {
                24
            } else {
                8 + ((x >> 8) % 25) as u8
            };
            (
                Prefix::new(Ipv4Addr::from((x >> 32) as u32), len).expect("len <= 32"),
                i as u32 % 4096,
            )
        })
        .collect()
}

/// An IPv6 table: prefixes /20../64 under a handful of /16s, plus some /128 hosts.
pub fn v6_prefixes(n: usize, seed: u64) -> Vec<(Ipv6Prefix, u32)> {
    let mut r = SplitMix(seed);
    (0..n)
        .map(|i| {
            let x = r.next_u64();
            let top = [0x2001u128, 0x2400, 0x2600, 0x2a00, 0x2c0f][(x % 5) as usize];
            let addr = (top << 112) | (u128::from(r.next_u64()) << 48);
            let len = match x % 10 {
                0 => 128,
                1..=5 => 48,
                6..=7 => 32,
                _ => 20 + ((x >> 8) % 45) as u8,
            };
            (
                Prefix::new(Ipv6Addr::from(addr), len).expect("len <= 128"),
                i as u32 % 4096,
            )
        })
        .collect()
}

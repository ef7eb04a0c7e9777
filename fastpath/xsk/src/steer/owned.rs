//! What the steering program redirects on an interface in [`SteerMode::Owned`], and its
//! translation into the program's map keys and values (byte layouts of `bpf/steer.bpf.c`).
//!
//! Kept free of `unsafe` and syscalls so that the translation is tested without root.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::XskError;

/// Which frames of an interface go to its AF_XDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SteerMode {
    /// Every frame (workload veths, `tortie-host`): the fastpath is the only consumer.
    All,
    /// Only the traffic described by the [`OwnedTraffic`] set (the uplink): everything else,
    /// ARP, BGP, SSH and the node's own connections included, stays with the kernel.
    Owned,
}

impl SteerMode {
    /// The `mode` word of the program's `ifaces` map.
    pub(crate) fn wire(self) -> u32 {
        match self {
            SteerMode::All => 0,
            SteerMode::Owned => 1,
        }
    }
}

/// The traffic the fastpath owns on its uplink (node.md, "Interfaces the fastpath attaches
/// to"). The fastpath computes it from the tables on every generation and hands the whole set to
/// [`crate::Steering::set_owned`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTraffic {
    /// IPv4 destinations owned: local workload routes and DNAT external addresses.
    /// Host bits beyond the prefix length are ignored.
    pub v4_prefixes: Vec<(Ipv4Addr, u8)>,
    /// IPv6 destinations owned, as for `v4_prefixes`.
    pub v6_prefixes: Vec<(Ipv6Addr, u8)>,
    /// Outer IPv4 sources whose IP-in-IP (protocol 4) frames are owned, whatever their
    /// destination: the other nodes' tunnel addresses.
    pub tunnel_sources: Vec<Ipv4Addr>,
    /// The node's IPv4 address (SNAT source); `None` owns no SNAT return traffic for IPv4.
    pub node_v4: Option<Ipv4Addr>,
    /// The node's IPv6 address, as for `node_v4`.
    pub node_v6: Option<Ipv6Addr>,
    /// Inclusive range of TCP/UDP destination ports and ICMP echo-reply identifiers, to the
    /// node address, that are SNAT return traffic. An empty range (`lo > hi`) owns none.
    pub snat_ports: (u16, u16),
}

impl Default for OwnedTraffic {
    /// Nothing owned (the SNAT range is the empty `(1, 0)`).
    fn default() -> Self {
        Self {
            v4_prefixes: Vec::new(),
            v6_prefixes: Vec::new(),
            tunnel_sources: Vec::new(),
            node_v4: None,
            node_v6: None,
            snat_ports: (1, 0),
        }
    }
}

/// Size of `struct steer_cfg` (the `config` map's value).
pub(crate) const CONFIG_LEN: usize = 28;
/// Most IPv4 / IPv6 prefixes and tunnel sources the maps hold (`MAX_*` in the program).
pub(crate) const MAX_V4_PREFIXES: usize = 65536;
/// See [`MAX_V4_PREFIXES`].
pub(crate) const MAX_V6_PREFIXES: usize = 65536;
/// See [`MAX_V4_PREFIXES`].
pub(crate) const MAX_TUNNEL_SOURCES: usize = 4096;

/// An `owned_v4` key: prefix length (host order) then the masked address (network order).
pub(crate) type V4Key = [u8; 8];
/// An `owned_v6` key, as `V4Key`.
pub(crate) type V6Key = [u8; 20];
/// A `tunnel_srcs` key: the address in network order.
pub(crate) type TunnelKey = [u8; 4];

/// The map contents for one [`OwnedTraffic`]: sorted, deduplicated keys (so that replacing a
/// set is a set difference), and the `config` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedEntries {
    pub v4: BTreeSet<V4Key>,
    pub v6: BTreeSet<V6Key>,
    pub tunnels: BTreeSet<TunnelKey>,
    pub config: [u8; CONFIG_LEN],
}

impl Default for OwnedEntries {
    /// What a freshly loaded program's maps hold: nothing, and a zeroed `config`.
    fn default() -> Self {
        Self {
            v4: BTreeSet::new(),
            v6: BTreeSet::new(),
            tunnels: BTreeSet::new(),
            config: [0; CONFIG_LEN],
        }
    }
}

/// `addr` with the bits past `len` cleared (an LPM trie key must not differ by host bits).
fn masked<const N: usize>(mut addr: [u8; N], len: u8) -> [u8; N] {
    let len = usize::from(len);
    for (i, byte) in addr.iter_mut().enumerate() {
        let keep = len.saturating_sub(i * 8).min(8);
        *byte &= !(0xFFu8.checked_shr(keep as u32).unwrap_or(0));
    }
    addr
}

fn lpm_key<const N: usize, const K: usize>(addr: [u8; N], len: u8) -> [u8; K] {
    let mut key = [0u8; K];
    key[..4].copy_from_slice(&u32::from(len).to_ne_bytes());
    key[4..].copy_from_slice(&masked(addr, len));
    key
}

fn too_many(field: &'static str, got: usize, max: usize) -> XskError {
    XskError::Config {
        field,
        reason: format!("{got} entries, the program's map holds {max}"),
    }
}

impl OwnedEntries {
    /// Validate `owned` and translate it. Errors name the field and the offending entry.
    pub(crate) fn from_owned(owned: &OwnedTraffic) -> Result<OwnedEntries, XskError> {
        let mut v4 = BTreeSet::new();
        for &(addr, len) in &owned.v4_prefixes {
            if len > 32 {
                return Err(XskError::Config {
                    field: "v4_prefixes",
                    reason: format!("{addr}/{len}: prefix length above 32"),
                });
            }
            v4.insert(lpm_key::<4, 8>(addr.octets(), len));
        }
        let mut v6 = BTreeSet::new();
        for &(addr, len) in &owned.v6_prefixes {
            if len > 128 {
                return Err(XskError::Config {
                    field: "v6_prefixes",
                    reason: format!("{addr}/{len}: prefix length above 128"),
                });
            }
            v6.insert(lpm_key::<16, 20>(addr.octets(), len));
        }
        let tunnels: BTreeSet<TunnelKey> =
            owned.tunnel_sources.iter().map(|a| a.octets()).collect();
        if v4.len() > MAX_V4_PREFIXES {
            return Err(too_many("v4_prefixes", v4.len(), MAX_V4_PREFIXES));
        }
        if v6.len() > MAX_V6_PREFIXES {
            return Err(too_many("v6_prefixes", v6.len(), MAX_V6_PREFIXES));
        }
        if tunnels.len() > MAX_TUNNEL_SOURCES {
            return Err(too_many(
                "tunnel_sources",
                tunnels.len(),
                MAX_TUNNEL_SOURCES,
            ));
        }
        let mut config = [0u8; CONFIG_LEN];
        if let Some(a) = owned.node_v4 {
            config[0..4].copy_from_slice(&a.octets());
            config[24] = 1;
        }
        if let Some(a) = owned.node_v6 {
            config[4..20].copy_from_slice(&a.octets());
            config[25] = 1;
        }
        config[20..22].copy_from_slice(&owned.snat_ports.0.to_ne_bytes());
        config[22..24].copy_from_slice(&owned.snat_ports.1.to_ne_bytes());
        Ok(OwnedEntries {
            v4,
            v6,
            tunnels,
            config,
        })
    }
}

/// The `ifaces` value: first XSKMAP slot and mode, both host order (`struct iface_cfg`).
pub(crate) fn iface_value(slot_base: u32, mode: SteerMode) -> [u8; 8] {
    let mut v = [0u8; 8];
    v[..4].copy_from_slice(&slot_base.to_ne_bytes());
    v[4..].copy_from_slice(&mode.wire().to_ne_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4], len: u8) -> V4Key {
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&u32::from(len).to_ne_bytes());
        k[4..].copy_from_slice(&a);
        k
    }

    #[test]
    fn v4_prefixes_become_masked_lpm_keys_without_duplicates() {
        let owned = OwnedTraffic {
            v4_prefixes: vec![
                (Ipv4Addr::new(198, 19, 0, 4), 32),
                (Ipv4Addr::new(198, 19, 0, 77), 26), // host bits set
                (Ipv4Addr::new(198, 19, 0, 64), 26), // same prefix once masked
                (Ipv4Addr::new(198, 18, 255, 255), 15),
                (Ipv4Addr::new(10, 1, 2, 3), 0),
            ],
            ..OwnedTraffic::default()
        };
        let e = OwnedEntries::from_owned(&owned).expect("valid");
        let want: BTreeSet<V4Key> = [
            v4([198, 19, 0, 4], 32),
            v4([198, 19, 0, 64], 26),
            v4([198, 18, 0, 0], 15),
            v4([0, 0, 0, 0], 0),
        ]
        .into_iter()
        .collect();
        assert_eq!(e.v4, want);
    }

    #[test]
    fn v6_prefix_is_masked_at_a_non_byte_boundary() {
        let addr: Ipv6Addr = "2001:db8:1::ffff".parse().expect("addr");
        let owned = OwnedTraffic {
            v6_prefixes: vec![(addr, 113)],
            ..OwnedTraffic::default()
        };
        let e = OwnedEntries::from_owned(&owned).expect("valid");
        let key = e.v6.iter().next().copied().expect("one key");
        assert_eq!(key[..4], 113u32.to_ne_bytes());
        let want: Ipv6Addr = "2001:db8:1::8000".parse().expect("addr");
        assert_eq!(key[4..], want.octets());
        assert_eq!(e.v6.len(), 1);
    }

    #[test]
    fn prefix_length_out_of_range_names_the_field_and_entry() {
        let owned = OwnedTraffic {
            v4_prefixes: vec![(Ipv4Addr::new(198, 19, 0, 0), 33)],
            ..OwnedTraffic::default()
        };
        let err = OwnedEntries::from_owned(&owned)
            .expect_err("33 > 32")
            .to_string();
        assert!(
            err.contains("v4_prefixes") && err.contains("198.19.0.0/33"),
            "{err}"
        );
        let owned = OwnedTraffic {
            v6_prefixes: vec![("2001:db8::".parse().expect("addr"), 129)],
            ..OwnedTraffic::default()
        };
        let err = OwnedEntries::from_owned(&owned)
            .expect_err("129 > 128")
            .to_string();
        assert!(
            err.contains("v6_prefixes") && err.contains("2001:db8::/129"),
            "{err}"
        );
    }

    #[test]
    fn config_value_matches_the_programs_struct_layout() {
        let owned = OwnedTraffic {
            tunnel_sources: vec![Ipv4Addr::new(198, 18, 1, 12), Ipv4Addr::new(198, 18, 1, 12)],
            node_v4: Some(Ipv4Addr::new(198, 18, 1, 11)),
            node_v6: Some("2001:db8::b".parse().expect("addr")),
            snat_ports: (61000, 65535),
            ..OwnedTraffic::default()
        };
        let e = OwnedEntries::from_owned(&owned).expect("valid");
        assert_eq!(e.tunnels.len(), 1, "duplicate tunnel source kept once");
        assert!(e.tunnels.contains(&[198, 18, 1, 12]));
        let c = e.config;
        assert_eq!(c[0..4], [198, 18, 1, 11], "node_v4 in network order at 0");
        assert_eq!(
            c[4..20],
            "2001:db8::b".parse::<Ipv6Addr>().expect("addr").octets()
        );
        assert_eq!(
            c[20..22],
            61000u16.to_ne_bytes(),
            "port_lo host order at 20"
        );
        assert_eq!(
            c[22..24],
            65535u16.to_ne_bytes(),
            "port_hi host order at 22"
        );
        assert_eq!(c[24..28], [1, 1, 0, 0], "has_v4, has_v6, padding");
    }

    #[test]
    fn default_owns_nothing() {
        let e = OwnedEntries::from_owned(&OwnedTraffic::default()).expect("valid");
        assert!(e.v4.is_empty() && e.v6.is_empty() && e.tunnels.is_empty());
        assert_eq!(e.config[24..26], [0, 0], "no node address");
        let lo = u16::from_ne_bytes([e.config[20], e.config[21]]);
        let hi = u16::from_ne_bytes([e.config[22], e.config[23]]);
        assert!(lo > hi, "SNAT range empty");
    }

    proptest::proptest! {
        /// A key keeps exactly the first `len` bits of the address: equal prefixes give equal
        /// keys (so the mirror's set difference matches the trie's notion of an entry), and no
        /// bit past the prefix survives.
        #[test]
        fn v6_key_keeps_exactly_the_prefix_bits(a: u128, b: u128, len in 0u8..=128) {
            let key = |x: u128| lpm_key::<16, 20>(x.to_be_bytes(), len);
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            let ka = key(a);
            proptest::prop_assert_eq!(ka[..4].to_vec(), u32::from(len).to_ne_bytes().to_vec());
            let addr = u128::from_be_bytes(ka[4..].try_into().expect("16 bytes"));
            proptest::prop_assert_eq!(addr, a & mask);
            proptest::prop_assert_eq!(ka == key(b), (a & mask) == (b & mask));
        }
    }

    #[test]
    fn iface_value_layout() {
        let v = iface_value(128, SteerMode::Owned);
        assert_eq!(v[..4], 128u32.to_ne_bytes());
        assert_eq!(v[4..], 1u32.to_ne_bytes());
        assert_eq!(iface_value(0, SteerMode::All)[4..], 0u32.to_ne_bytes());
    }
}

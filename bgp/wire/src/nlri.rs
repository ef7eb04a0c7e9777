//! Prefixes and their NLRI encoding (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3).

use crate::types::Family;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 prefix whose host bits are zero.
///
/// 18 bytes with alignment 1, so RIB tables keyed by it stay compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// IPv4 address and length (0..=32).
    V4(Ipv4Addr, u8),
    /// IPv6 address and length (0..=128).
    V6(Ipv6Addr, u8),
}

impl Prefix {
    /// Builds a prefix, clearing host bits. Returns `None` for a length beyond the address size.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        match addr {
            IpAddr::V4(a) if len <= 32 => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len))
                };
                Some(Prefix::V4(Ipv4Addr::from(u32::from(a) & mask), len))
            }
            IpAddr::V6(a) if len <= 128 => {
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(len))
                };
                Some(Prefix::V6(Ipv6Addr::from(u128::from(a) & mask), len))
            }
            _ => None,
        }
    }

    /// The family this prefix belongs to.
    pub fn family(&self) -> Family {
        match self {
            Prefix::V4(..) => Family::Ipv4Unicast,
            Prefix::V6(..) => Family::Ipv6Unicast,
        }
    }

    /// Network address.
    pub fn addr(&self) -> IpAddr {
        match self {
            Prefix::V4(a, _) => IpAddr::V4(*a),
            Prefix::V6(a, _) => IpAddr::V6(*a),
        }
    }

    /// Prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        match self {
            Prefix::V4(_, l) | Prefix::V6(_, l) => *l,
        }
    }

    /// True for the default route (length 0).
    pub fn is_default(&self) -> bool {
        self.prefix_len() == 0
    }

    /// Encoded size of the NLRI (without a path identifier).
    pub fn wire_len(&self) -> usize {
        1 + usize::from(self.prefix_len()).div_ceil(8)
    }

    /// Appends length octet and the significant address octets.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let n = usize::from(self.prefix_len()).div_ceil(8);
        out.push(self.prefix_len());
        match self {
            Prefix::V4(a, _) => out.extend_from_slice(&a.octets()[..n]),
            Prefix::V6(a, _) => out.extend_from_slice(&a.octets()[..n]),
        }
    }

    /// Decodes one prefix of `family` from the front of `buf`; returns it and the bytes used.
    /// `None` when the length is too large for the family or the bytes run out.
    pub fn decode(family: Family, buf: &[u8]) -> Option<(Prefix, usize)> {
        let len = *buf.first()?;
        let n = usize::from(len).div_ceil(8);
        let bytes = buf.get(1..1 + n)?;
        let p = match family {
            Family::Ipv4Unicast => {
                if len > 32 {
                    return None;
                }
                let mut o = [0u8; 4];
                o[..n].copy_from_slice(bytes);
                Prefix::new(IpAddr::V4(Ipv4Addr::from(o)), len)?
            }
            Family::Ipv6Unicast => {
                if len > 128 {
                    return None;
                }
                let mut o = [0u8; 16];
                o[..n].copy_from_slice(bytes);
                Prefix::new(IpAddr::V6(Ipv6Addr::from(o)), len)?
            }
        };
        Some((p, 1 + n))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.prefix_len())
    }
}

/// Error from [`Prefix::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid prefix {0:?}: expected ADDRESS/LENGTH")]
pub struct PrefixParseError(pub String);

impl FromStr for Prefix {
    type Err = PrefixParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PrefixParseError(s.to_string());
        let (a, l) = s.split_once('/').ok_or_else(err)?;
        let addr: IpAddr = a.parse().map_err(|_| err())?;
        let len: u8 = l.parse().map_err(|_| err())?;
        Prefix::new(addr, len).ok_or_else(err)
    }
}

/// A prefix with its ADD-PATH path identifier (0 when ADD-PATH is not in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    /// The prefix.
    pub prefix: Prefix,
    /// RFC 7911 path identifier; 0 on sessions without ADD-PATH for this family.
    pub path_id: u32,
}

impl Nlri {
    /// An NLRI without a path identifier.
    pub fn new(prefix: Prefix) -> Self {
        Nlri { prefix, path_id: 0 }
    }

    /// Encoded size, with or without the 4-byte path identifier.
    pub fn wire_len(&self, add_path: bool) -> usize {
        self.prefix.wire_len() + if add_path { 4 } else { 0 }
    }

    /// Appends the NLRI, with the path identifier when `add_path`.
    pub fn encode(&self, add_path: bool, out: &mut Vec<u8>) {
        if add_path {
            out.extend_from_slice(&self.path_id.to_be_bytes());
        }
        self.prefix.encode(out);
    }
}

/// Decodes a whole NLRI field. On error, returns the offset within `buf` of the bad entry.
pub(crate) fn decode_all(
    family: Family,
    add_path: bool,
    buf: &[u8],
    out: &mut Vec<Nlri>,
) -> Result<(), usize> {
    let mut pos = 0;
    while pos < buf.len() {
        let mut path_id = 0;
        if add_path {
            let b = buf.get(pos..pos + 4).ok_or(pos)?;
            path_id = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            pos += 4;
        }
        let (prefix, used) = Prefix::decode(family, &buf[pos..]).ok_or(pos)?;
        out.push(Nlri { prefix, path_id });
        pos += used;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_are_cleared() {
        let p: Prefix = "198.18.10.77/26".parse().unwrap();
        assert_eq!(p.to_string(), "198.18.10.64/26");
        assert_eq!(std::mem::size_of::<Prefix>(), 18);
    }

    #[test]
    fn decode_rejects_overlong_length() {
        assert!(Prefix::decode(Family::Ipv4Unicast, &[33, 1, 2, 3, 4, 5]).is_none());
        assert!(
            Prefix::decode(Family::Ipv6Unicast, &[64, 1, 2]).is_none(),
            "bytes run out"
        );
    }

    #[test]
    fn add_path_nlri_round_trip() {
        let n = Nlri {
            prefix: "2001:db8:10::/122".parse().unwrap(),
            path_id: 7,
        };
        let mut b = Vec::new();
        n.encode(true, &mut b);
        let mut v = Vec::new();
        decode_all(Family::Ipv6Unicast, true, &b, &mut v).unwrap();
        assert_eq!(v, vec![n]);
        assert_eq!(b.len(), n.wire_len(true));
    }
}

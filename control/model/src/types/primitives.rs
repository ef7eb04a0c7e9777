//! Calico's "number or string" values (protocols, ports, AS numbers), IP versions and CIDRs.
//!
//! Each parses the forms Calico accepts and prints the form Calico writes back, so a value read
//! from Calico's datastore and written again is unchanged.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An IP protocol: one of Calico's names or a number 1-255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1).
    Icmp,
    /// ICMPv6 (58).
    IcmpV6,
    /// SCTP (132).
    Sctp,
    /// UDP-Lite (136).
    UdpLite,
    /// Any other protocol by number (1-255).
    Number(u8),
}

impl Protocol {
    /// The IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::IcmpV6 => 58,
            Protocol::Sctp => 132,
            Protocol::UdpLite => 136,
            Protocol::Number(n) => n,
        }
    }

    /// Whether the protocol carries ports (TCP, UDP, SCTP; by name or number), so that a rule
    /// may match numeric ports with it.
    pub fn supports_ports(self) -> bool {
        matches!(self.number(), 6 | 17 | 132)
    }

    /// Whether this is ICMP (v4), by name or number.
    pub fn is_icmp(self) -> bool {
        self.number() == 1
    }

    /// Whether this is ICMPv6, by name or number.
    pub fn is_icmpv6(self) -> bool {
        self.number() == 58
    }

    /// Reads a name (case-insensitive) or a decimal number.
    pub fn parse(text: &str) -> Result<Protocol, String> {
        let protocol = match text.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "icmp" => Protocol::Icmp,
            "icmpv6" => Protocol::IcmpV6,
            "sctp" => Protocol::Sctp,
            "udplite" => Protocol::UdpLite,
            _ => match text.parse::<i64>() {
                Ok(n) => return Protocol::from_number(n),
                Err(_) => {
                    return Err(format!(
                        "unknown protocol {text:?} (expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255)"
                    ));
                }
            },
        };
        Ok(protocol)
    }

    /// A protocol from its number (1-255).
    pub fn from_number(n: i64) -> Result<Protocol, String> {
        if !(1..=255).contains(&n) {
            return Err(format!("protocol number {n} out of range (1-255)"));
        }
        Ok(Protocol::Number(n as u8))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("TCP"),
            Protocol::Udp => f.write_str("UDP"),
            Protocol::Icmp => f.write_str("ICMP"),
            Protocol::IcmpV6 => f.write_str("ICMPv6"),
            Protocol::Sctp => f.write_str("SCTP"),
            Protocol::UdpLite => f.write_str("UDPLite"),
            Protocol::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Number(n) => s.serialize_u8(*n),
            named => s.collect_str(named),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumOrStrVisitor {
            expecting: "a protocol name or number",
            from_int: Protocol::from_number,
            from_str: Protocol::parse,
        })
    }
}

/// A port match: one port, an inclusive range, or a named port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Port {
    /// A single port (written as a number).
    Number(u16),
    /// An inclusive range `first:last` with `first < last` (an equal pair reads as a number).
    Range {
        /// Lowest port in the range.
        first: u16,
        /// Highest port in the range.
        last: u16,
    },
    /// A named port, resolved per endpoint from its `ports` list.
    Named(String),
}

impl Port {
    /// Reads `80`, `"80"`, `"6040:6050"` or a port name. Numbers must be 1-65535.
    pub fn parse(text: &str) -> Result<Port, String> {
        if let Some((a, b)) = text.split_once(':') {
            let first = parse_port_number(a, text)?;
            let last = parse_port_number(b, text)?;
            if first > last {
                return Err(format!(
                    "port range {text:?} is reversed (first port above last)"
                ));
            }
            return Ok(Port::range(first, last));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
            return parse_port_number(text, text).map(Port::Number);
        }
        if text.is_empty() {
            return Err("empty port".to_string());
        }
        Ok(Port::Named(text.to_string()))
    }

    /// A range, folded to a single port when both ends are equal (as Calico prints it).
    pub fn range(first: u16, last: u16) -> Port {
        if first == last {
            Port::Number(first)
        } else {
            Port::Range { first, last }
        }
    }

    /// The numeric bounds, or `None` for a named port.
    pub fn bounds(&self) -> Option<(u16, u16)> {
        match self {
            Port::Number(p) => Some((*p, *p)),
            Port::Range { first, last } => Some((*first, *last)),
            Port::Named(_) => None,
        }
    }

    fn from_int(n: i64) -> Result<Port, String> {
        match u16::try_from(n) {
            Ok(p) if p >= 1 => Ok(Port::Number(p)),
            _ => Err(format!("port {n} out of range (1-65535)")),
        }
    }
}

fn parse_port_number(part: &str, whole: &str) -> Result<u16, String> {
    let n: u64 = part
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range {whole:?} (expected \"first:last\")"))?;
    match u16::try_from(n) {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(format!("port {n} out of range (1-65535)")),
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Number(p) => write!(f, "{p}"),
            Port::Range { first, last } => write!(f, "{first}:{last}"),
            Port::Named(name) => f.write_str(name),
        }
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Port::Number(p) => s.serialize_u16(*p),
            other => s.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumOrStrVisitor {
            expecting: "a port number, a \"first:last\" range or a port name",
            from_int: Port::from_int,
            from_str: Port::parse,
        })
    }
}

/// A BGP AS number, written as a number or in "asdot" form (`"1.10"` = 65546).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsNumber(pub u32);

impl AsNumber {
    /// Reads `64512` or `"1.10"`.
    pub fn parse(text: &str) -> Result<AsNumber, String> {
        let bad = || format!("invalid AS number {text:?} (expected 0-4294967295 or \"high.low\")");
        if let Some((high, low)) = text.split_once('.') {
            let high: u16 = high.parse().map_err(|_| bad())?;
            let low: u16 = low.parse().map_err(|_| bad())?;
            return Ok(AsNumber((u32::from(high) << 16) | u32::from(low)));
        }
        text.parse::<u32>().map(AsNumber).map_err(|_| bad())
    }

    fn from_int(n: i64) -> Result<AsNumber, String> {
        u32::try_from(n)
            .map(AsNumber)
            .map_err(|_| format!("AS number {n} out of range (0-4294967295)"))
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for AsNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumOrStrVisitor {
            expecting: "an AS number (quote the dotted form, e.g. \"1.10\")",
            from_int: AsNumber::from_int,
            from_str: AsNumber::parse,
        })
    }
}

/// Visitor shared by the number-or-string types: integers and strings go through the type's own
/// parsers, so messages read the same whichever form the user wrote.
struct NumOrStrVisitor<T> {
    expecting: &'static str,
    from_int: fn(i64) -> Result<T, String>,
    from_str: fn(&str) -> Result<T, String>,
}

impl<T> Visitor<'_> for NumOrStrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        (self.from_int)(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.from_int)(i64::try_from(v).unwrap_or(i64::MAX)).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            return (self.from_int)(v as i64).map_err(E::custom);
        }
        Err(E::custom(format_args!(
            "expected {}, found {v}",
            self.expecting
        )))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.from_str)(v).map_err(E::custom)
    }
}

/// The IP family a rule is restricted to (`ipVersion: 4` or `6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpVersion {
    /// 4 or 6.
    pub fn number(self) -> u8 {
        match self {
            IpVersion::V4 => 4,
            IpVersion::V6 => 6,
        }
    }

    /// The family of a network.
    pub fn of(net: &ipnet::IpNet) -> IpVersion {
        match net {
            ipnet::IpNet::V4(_) => IpVersion::V4,
            ipnet::IpNet::V6(_) => IpVersion::V6,
        }
    }
}

impl Serialize for IpVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for IpVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fn from_int(n: i64) -> Result<IpVersion, String> {
            match n {
                4 => Ok(IpVersion::V4),
                6 => Ok(IpVersion::V6),
                _ => Err(format!("ipVersion must be 4 or 6, not {n}")),
            }
        }
        fn from_str(s: &str) -> Result<IpVersion, String> {
            s.parse::<i64>()
                .map_err(|_| format!("ipVersion must be 4 or 6, not {s:?}"))
                .and_then(from_int)
        }
        d.deserialize_any(NumOrStrVisitor {
            expecting: "4 or 6",
            from_int,
            from_str,
        })
    }
}

/// An IP network as written by the user: `10.0.0.0/8`, or a bare address meaning a host route.
///
/// The address is kept as written (host bits included) so validators can insist on a strictly
/// masked CIDR where Calico does (IP pools); use [`Cidr::network`] for the masked network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr(pub ipnet::IpNet);

impl Cidr {
    /// The masked network (`10.1.2.3/8` becomes `10.0.0.0/8`).
    pub fn network(&self) -> ipnet::IpNet {
        self.0.trunc()
    }

    /// Whether the address has no bits set beyond the prefix.
    pub fn is_strictly_masked(&self) -> bool {
        self.0.trunc() == self.0
    }

    /// The network's family.
    pub fn version(&self) -> IpVersion {
        IpVersion::of(&self.0)
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(Cidr(net));
        }
        if let Ok(addr) = text.parse::<std::net::IpAddr>() {
            return Ok(Cidr(ipnet::IpNet::from(addr)));
        }
        Err(format!("invalid CIDR {text:?}"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_names_case_insensitively_and_numbers_in_range() {
        assert_eq!(Protocol::parse("tcp"), Ok(Protocol::Tcp));
        assert_eq!(Protocol::parse("IcMpV6"), Ok(Protocol::IcmpV6));
        assert_eq!(Protocol::parse("UDPLite"), Ok(Protocol::UdpLite));
        assert_eq!(Protocol::parse("47"), Ok(Protocol::Number(47)));
        assert!(Protocol::parse("0").is_err());
        assert!(Protocol::parse("256").is_err());
        let err = Protocol::parse("TPC").unwrap_err();
        assert!(err.starts_with("unknown protocol \"TPC\""), "{err}");
        assert!(Protocol::Number(6).supports_ports());
        assert!(Protocol::Sctp.supports_ports());
        assert!(!Protocol::Icmp.supports_ports());
        assert!(Protocol::Number(58).is_icmpv6());
    }

    #[test]
    fn protocols_serialize_as_calico_writes_them() {
        assert_eq!(
            serde_json::to_string(&Protocol::IcmpV6).unwrap(),
            "\"ICMPv6\""
        );
        assert_eq!(serde_json::to_string(&Protocol::Number(47)).unwrap(), "47");
        assert_eq!(
            serde_json::from_str::<Protocol>("\"udp\"").unwrap(),
            Protocol::Udp
        );
        assert_eq!(
            serde_json::from_str::<Protocol>("132").unwrap(),
            Protocol::Number(132)
        );
    }

    #[test]
    fn ports_parse_numbers_ranges_and_names() {
        assert_eq!(Port::parse("80"), Ok(Port::Number(80)));
        assert_eq!(
            Port::parse("6040:6050"),
            Ok(Port::Range {
                first: 6040,
                last: 6050
            })
        );
        assert_eq!(Port::parse("80:80"), Ok(Port::Number(80)));
        assert_eq!(Port::parse("http"), Ok(Port::Named("http".into())));
        assert!(Port::parse("90:80").is_err());
        assert!(Port::parse("0").is_err());
        assert!(Port::parse("1:70000").is_err());
        assert!(Port::parse("a:b").is_err());
        assert!(Port::parse("").is_err());
        assert!(serde_json::from_str::<Port>("0").is_err());
        assert!(serde_json::from_str::<Port>("65536").is_err());
        assert_eq!(serde_json::to_string(&Port::Number(443)).unwrap(), "443");
        assert_eq!(
            serde_json::to_string(&Port::range(1, 2)).unwrap(),
            "\"1:2\""
        );
    }

    #[test]
    fn as_numbers_accept_plain_and_dotted_forms() {
        assert_eq!(AsNumber::parse("64512"), Ok(AsNumber(64512)));
        assert_eq!(AsNumber::parse("1.10"), Ok(AsNumber(65546)));
        assert!(AsNumber::parse("1.70000").is_err());
        assert!(AsNumber::parse("x").is_err());
        assert!(serde_json::from_str::<AsNumber>("-1").is_err());
        assert_eq!(
            serde_json::from_str::<AsNumber>("4294967295").unwrap(),
            AsNumber(u32::MAX)
        );
    }

    #[test]
    fn ip_versions_are_4_or_6() {
        assert_eq!(
            serde_json::from_str::<IpVersion>("4").unwrap(),
            IpVersion::V4
        );
        assert_eq!(
            serde_json::from_str::<IpVersion>("6").unwrap(),
            IpVersion::V6
        );
        assert!(serde_json::from_str::<IpVersion>("5").is_err());
    }

    #[test]
    fn cidrs_accept_bare_addresses_and_keep_host_bits() {
        let host: Cidr = "10.1.2.3".parse().unwrap();
        assert_eq!(host.to_string(), "10.1.2.3/32");
        let loose: Cidr = "10.1.2.3/8".parse().unwrap();
        assert!(!loose.is_strictly_masked());
        assert_eq!(loose.network().to_string(), "10.0.0.0/8");
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert_eq!(v6.version(), IpVersion::V6);
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }
}

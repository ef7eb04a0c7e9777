//! Choosing the node's address as Calico's `IP_AUTODETECTION_METHOD` does.
//!
//! The choice itself is pure ([`choose`]): it takes the host's interfaces (as netlink lists
//! them, in index order, addresses in the kernel's order) and, for `can-reach`, the source
//! address the kernel's route lookup picked. Methods:
//!
//! - `first-found`: the first global unicast address on an interface that is up and whose
//!   name matches none of Calico's default exclusions ([`DEFAULT_EXCLUDES`], plus Tortie's
//!   own interfaces);
//! - `interface=REGEX[,REGEX]`: the first such address on an interface whose name matches one
//!   of the expressions (unanchored, as Go's `MatchString`);
//! - `skip-interface=REGEX[,REGEX]`: first-found, skipping interfaces that match instead of
//!   the default exclusions;
//! - `can-reach=DEST`: the address the kernel would use as source towards DEST (the prefix
//!   length comes from the interface holding it);
//! - `cidr=CIDR[,CIDR]`: the first address inside one of the networks.

use std::net::IpAddr;

use ipnet::IpNet;
use regex::Regex;

use crate::error::ControlError;

/// Calico's default interface exclusions for `first-found`
/// (`node/pkg/lifecycle/startup/autodetection`), plus Tortie's host veth pair (`tortie-`)
/// and the host side of workload veths (`tor` + 11 hex digits).
pub const DEFAULT_EXCLUDES: &[&str] = &[
    "^docker.*",
    "^cbr.*",
    "^dummy.*",
    "^virbr.*",
    "^lxcbr.*",
    "^veth.*",
    "^lo",
    "^cali.*",
    "^tunl.*",
    "^flannel.*",
    "^kube-ipvs.*",
    "^cni.*",
    "^vxlan\\.calico.*",
    "^vxlan-v6\\.calico.*",
    "^wireguard\\.cali.*",
    "^wg-v6\\.cali.*",
    "^nodelocaldns.*",
    "^tortie-.*",
    "^tor[0-9a-f]{11}$",
];

/// How to choose an address automatically.
#[derive(Debug, Clone)]
pub enum Method {
    /// The first usable address outside the default exclusions.
    FirstFound,
    /// The first usable address on an interface matching one of these.
    Interface(Vec<Regex>),
    /// The first usable address on an interface matching none of these.
    SkipInterface(Vec<Regex>),
    /// The source address towards this destination (an address or a host name).
    CanReach(String),
    /// The first usable address inside one of these networks.
    Cidr(Vec<IpNet>),
}

/// What `--ip` / `IP` asks for.
#[derive(Debug, Clone)]
pub enum AddressChoice {
    /// No address of this family.
    None,
    /// This address with its prefix length.
    Fixed(IpNet),
    /// Autodetect with a method.
    Autodetect(Method),
}

/// One host interface as autodetection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInterface {
    /// Its name.
    pub name: String,
    /// Its index.
    pub index: u32,
    /// Whether it is administratively up.
    pub up: bool,
    /// Its addresses with their prefix lengths (host bits kept).
    pub addrs: Vec<IpNet>,
}

/// The chosen address and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The address with its subnet length, as `spec.bgp.ipv4Address` stores it.
    pub addr: IpNet,
    /// The interface holding it.
    pub interface: String,
}

fn regexes(list: &str, option: &'static str) -> Result<Vec<Regex>, ControlError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Regex::new(s).map_err(|e| ControlError::Config {
                option,
                reason: format!("bad regular expression {s:?}: {e}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|v| {
            if v.is_empty() {
                Err(ControlError::Config {
                    option,
                    reason: "no regular expression given".into(),
                })
            } else {
                Ok(v)
            }
        })
}

impl Method {
    /// Parses Calico's syntax (`first-found`, `interface=eth.*`, `can-reach=8.8.8.8`, ...).
    pub fn parse(text: &str) -> Result<Method, ControlError> {
        const OPTION: &str = "--ip-autodetection-method";
        let text = text.trim();
        if text.is_empty() || text == "first-found" {
            return Ok(Method::FirstFound);
        }
        let Some((name, value)) = text.split_once('=') else {
            return Err(ControlError::Config {
                option: OPTION,
                reason: format!(
                    "unknown method {text:?} (first-found, interface=, skip-interface=, can-reach=, cidr=)"
                ),
            });
        };
        match name {
            "interface" => Ok(Method::Interface(regexes(value, OPTION)?)),
            "skip-interface" => Ok(Method::SkipInterface(regexes(value, OPTION)?)),
            "can-reach" if !value.trim().is_empty() => Ok(Method::CanReach(value.trim().into())),
            "cidr" => value
                .split(',')
                .map(|c| {
                    c.trim().parse::<IpNet>().map_err(|_| ControlError::Config {
                        option: OPTION,
                        reason: format!("{c:?} is not a CIDR"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Method::Cidr),
            _ => Err(ControlError::Config {
                option: OPTION,
                reason: format!("unknown or empty method {text:?}"),
            }),
        }
    }

    /// The method as written on the command line (for messages and status).
    pub fn describe(&self) -> String {
        let join = |v: &[Regex]| v.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",");
        match self {
            Method::FirstFound => "first-found".into(),
            Method::Interface(v) => format!("interface={}", join(v)),
            Method::SkipInterface(v) => format!("skip-interface={}", join(v)),
            Method::CanReach(d) => format!("can-reach={d}"),
            Method::Cidr(v) => format!(
                "cidr={}",
                v.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// Whether an address can identify a node: global unicast of the wanted family (no loopback,
/// link-local, multicast or unspecified address).
pub fn usable(addr: IpAddr, v6: bool) -> bool {
    match addr {
        IpAddr::V4(a) if !v6 => {
            !(a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_unspecified()
                || a.is_broadcast())
        }
        IpAddr::V6(a) if v6 => {
            let link_local = (a.segments()[0] & 0xffc0) == 0xfe80;
            !(a.is_loopback() || link_local || a.is_multicast() || a.is_unspecified())
        }
        _ => false,
    }
}

fn default_excludes() -> Vec<Regex> {
    DEFAULT_EXCLUDES
        .iter()
        .filter_map(|s| Regex::new(s).ok())
        .collect()
}

fn first_on(
    ifaces: &[HostInterface],
    v6: bool,
    take_iface: impl Fn(&HostInterface) -> bool,
    take_addr: impl Fn(&IpNet) -> bool,
) -> Option<Detected> {
    ifaces
        .iter()
        .filter(|i| i.up && take_iface(i))
        .find_map(|i| {
            i.addrs
                .iter()
                .find(|a| usable(a.addr(), v6) && take_addr(a))
                .map(|a| Detected {
                    addr: *a,
                    interface: i.name.clone(),
                })
        })
}

/// Chooses an address. `reach_source` is the kernel's source address towards the
/// `can-reach` destination (ignored by the other methods).
pub fn choose(
    method: &Method,
    ifaces: &[HostInterface],
    v6: bool,
    reach_source: Option<IpAddr>,
) -> Result<Detected, String> {
    let found = match method {
        Method::FirstFound => {
            let excludes = default_excludes();
            first_on(
                ifaces,
                v6,
                |i| !excludes.iter().any(|r| r.is_match(&i.name)),
                |_| true,
            )
        }
        Method::Interface(include) => first_on(
            ifaces,
            v6,
            |i| include.iter().any(|r| r.is_match(&i.name)),
            |_| true,
        ),
        Method::SkipInterface(skip) => first_on(
            ifaces,
            v6,
            |i| !skip.iter().any(|r| r.is_match(&i.name)),
            |_| true,
        ),
        Method::Cidr(nets) => first_on(
            ifaces,
            v6,
            |_| true,
            |a| nets.iter().any(|n| n.contains(&a.addr())),
        ),
        Method::CanReach(dest) => {
            let Some(source) = reach_source else {
                return Err(format!("no route to {dest}"));
            };
            // The interface holding the source gives its prefix length; it need not be up
            // in our sense (the kernel chose it), and exclusions do not apply, as in Calico.
            ifaces.iter().find_map(|i| {
                i.addrs
                    .iter()
                    .find(|a| a.addr() == source)
                    .map(|a| Detected {
                        addr: *a,
                        interface: i.name.clone(),
                    })
            })
        }
    };
    found.ok_or_else(|| {
        format!(
            "no usable IPv{} address found on {} interface(s)",
            if v6 { 6 } else { 4 },
            ifaces.len()
        )
    })
}

/// The source address the kernel's route lookup picks towards `dest` (an address, or a host
/// name resolved by the system resolver): a UDP socket is connected (no packet is sent) and
/// its local address read, as Calico's `can-reach` does.
pub fn source_towards(dest: &str, v6: bool) -> std::io::Result<IpAddr> {
    use std::net::{ToSocketAddrs, UdpSocket};
    let target = match dest.parse::<IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, 9),
        Err(_) => (dest, 9)
            .to_socket_addrs()?
            .find(|a| a.is_ipv6() == v6)
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "{dest} has no IPv{} address",
                    if v6 { 6 } else { 4 }
                ))
            })?,
    };
    let bind: std::net::SocketAddr = if v6 {
        "[::]:0".parse().map_err(std::io::Error::other)?
    } else {
        "0.0.0.0:0".parse().map_err(std::io::Error::other)?
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(target)?;
    Ok(socket.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, index: u32, up: bool, addrs: &[&str]) -> HostInterface {
        HostInterface {
            name: name.into(),
            index,
            up,
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn host() -> Vec<HostInterface> {
        vec![
            iface("lo", 1, true, &["127.0.0.1/8", "::1/128"]),
            iface("docker0", 2, true, &["198.18.9.1/24"]),
            iface("eth0", 3, false, &["198.18.5.5/24"]),
            iface("cali1234567", 4, true, &["198.18.7.1/32"]),
            iface("tortie-hostk", 5, true, &["198.18.8.1/32"]),
            iface("tor0123456789a", 6, true, &["198.18.6.1/32"]),
            iface(
                "ens3",
                7,
                true,
                &[
                    "fe80::1/64",
                    "169.254.3.3/16",
                    "198.18.1.11/24",
                    "2001:db8::11/64",
                ],
            ),
            iface("ens4", 8, true, &["198.18.2.13/24"]),
        ]
    }

    #[test]
    fn first_found_skips_excluded_down_and_link_local() {
        let d = choose(&Method::FirstFound, &host(), false, None).unwrap();
        assert_eq!(d.addr.to_string(), "198.18.1.11/24");
        assert_eq!(d.interface, "ens3");
        let d6 = choose(&Method::FirstFound, &host(), true, None).unwrap();
        assert_eq!(d6.addr.to_string(), "2001:db8::11/64");
    }

    #[test]
    fn interface_regex_is_unanchored_and_listed() {
        let m = Method::parse("interface=ens4,eth9").unwrap();
        assert_eq!(choose(&m, &host(), false, None).unwrap().interface, "ens4");
        let m = Method::parse("interface=ns4").unwrap();
        assert_eq!(choose(&m, &host(), false, None).unwrap().interface, "ens4");
        // A matching interface that is down is not used.
        let m = Method::parse("interface=eth0").unwrap();
        assert!(choose(&m, &host(), false, None).is_err());
    }

    #[test]
    fn skip_interface_replaces_the_default_exclusions() {
        let m = Method::parse("skip-interface=lo,ens.*").unwrap();
        assert_eq!(
            choose(&m, &host(), false, None).unwrap().interface,
            "docker0"
        );
    }

    #[test]
    fn cidr_and_can_reach() {
        let m = Method::parse("cidr=198.18.2.0/24").unwrap();
        assert_eq!(
            choose(&m, &host(), false, None).unwrap().addr.to_string(),
            "198.18.2.13/24"
        );
        let m = Method::parse("can-reach=198.18.2.1").unwrap();
        let d = choose(&m, &host(), false, Some("198.18.2.13".parse().unwrap())).unwrap();
        assert_eq!(d.addr.to_string(), "198.18.2.13/24");
        assert!(choose(&m, &host(), false, None).is_err());
    }

    #[test]
    fn bad_methods_are_errors_naming_the_option() {
        for bad in [
            "interface=",
            "interface=(",
            "sideways",
            "cidr=1.2.3",
            "can-reach=",
        ] {
            let err = Method::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("--ip-autodetection-method"), "{bad}: {err}");
        }
        assert_eq!(
            Method::parse("interface=a,b").unwrap().describe(),
            "interface=a,b"
        );
    }

    #[test]
    fn address_choice() {
        assert!(matches!(
            AddressChoice::parse("198.18.1.11/24", "first-found", false, "--ip").unwrap(),
            AddressChoice::Fixed(n) if n.to_string() == "198.18.1.11/24"
        ));
        assert!(matches!(
            AddressChoice::parse("none", "", false, "--ip").unwrap(),
            AddressChoice::None
        ));
        assert!(AddressChoice::parse("2001:db8::1/64", "", false, "--ip").is_err());
        assert!(AddressChoice::parse("banana", "", false, "--ip").is_err());
    }
}

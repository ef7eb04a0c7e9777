//! The command line (`tortie-control --node NAME ...`), with Calico's environment names.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::autodetect::{AddressChoice, Method};
use crate::error::ControlError;

/// Default ring file shared with tortie-fastpath.
pub const DEFAULT_RING: &str = "/run/tortie/ring";
/// Default status file tortie-fastpath writes every second.
pub const DEFAULT_FASTPATH_STATUS: &str = "/run/tortie/fastpath-status.json";
/// Default metrics and health address.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9099";

/// tortie-control: syncs the datastore, registers the node, compiles policy and routes and
/// sends them to tortie-fastpath over the shared-memory ring.
#[derive(Debug, Clone, Parser)]
#[command(name = "tortie-control", version, about, long_about = None)]
pub struct Options {
    /// This node's name (the Node resource and `spec.node` of its endpoints).
    #[arg(long, env = "NODENAME")]
    pub node: String,
    /// The ring file tortie-fastpath reads.
    #[arg(long, default_value = DEFAULT_RING)]
    pub ring: PathBuf,
    /// The uplink interface; default: the interface holding the node address.
    #[arg(long)]
    pub uplink: Option<String>,
    /// The node's IPv4 address: `autodetect`, `none`, or ADDR/LEN.
    #[arg(long, env = "IP", default_value = "autodetect")]
    pub ip: String,
    /// The node's IPv6 address: `autodetect`, `none` (the default), or ADDR/LEN.
    #[arg(long, env = "IP6", default_value = "none")]
    pub ip6: String,
    /// How `autodetect` chooses: first-found, interface=REGEX, skip-interface=REGEX,
    /// can-reach=DEST or cidr=CIDR[,CIDR].
    #[arg(long, env = "IP_AUTODETECTION_METHOD", default_value = "first-found")]
    pub ip_autodetection_method: String,
    /// The same for IPv6.
    #[arg(long, env = "IP6_AUTODETECTION_METHOD", default_value = "first-found")]
    pub ip6_autodetection_method: String,
    /// The status file tortie-fastpath writes.
    #[arg(long, default_value = DEFAULT_FASTPATH_STATUS)]
    pub fastpath_status: PathBuf,
    /// Metrics and health endpoint.
    #[arg(long, default_value = DEFAULT_METRICS)]
    pub metrics: SocketAddr,
    /// Logging: `--log-level`, `--log-file`, `--syslog`, `--json-logs`.
    #[command(flatten)]
    pub log: tortie_telemetry::LogOptions,
    /// Run the node's BGP speaker: `on` or `off`. The environment variable takes Calico's
    /// `CALICO_NETWORKING_BACKEND` values too: `bird` means on, `none` and `vxlan` off.
    #[arg(long, env = "CALICO_NETWORKING_BACKEND", default_value = "on")]
    pub bgp: String,
    /// Where BGP passwords are read: `DIR/<secret name>/<key>` files (a Kubernetes secret
    /// mounted as a volume). Without it, `secretKeyRef` passwords are reported missing and
    /// those sessions run without TCP-MD5.
    #[arg(long, env = "BGP_SECRETS_DIR")]
    pub bgp_secrets_dir: Option<PathBuf>,
    /// With BGP on: route other nodes' blocks and borrowed addresses from the datastore's
    /// IPAM affinities too (`true`), or only as BGP learns them (`false`, as Calico with
    /// BIRD does). Ignored with `--bgp off`.
    #[arg(long, env = "ROUTES_FROM_IPAM", default_value_t = true, action = clap::ArgAction::Set)]
    pub routes_from_ipam: bool,
}

impl Options {
    /// The IPv4 address choice.
    pub fn v4_choice(&self) -> Result<AddressChoice, ControlError> {
        AddressChoice::parse(&self.ip, &self.ip_autodetection_method, false, "--ip")
    }

    /// Whether the BGP speaker runs (`--bgp`, or `CALICO_NETWORKING_BACKEND`).
    pub fn bgp_enabled(&self) -> Result<bool, ControlError> {
        match self.bgp.trim().to_ascii_lowercase().as_str() {
            "on" | "bird" | "" => Ok(true),
            "off" | "none" | "vxlan" => Ok(false),
            other => Err(ControlError::Config {
                option: "--bgp",
                reason: format!("{other:?} is not on, off, bird, none or vxlan"),
            }),
        }
    }

    /// The IPv6 address choice.
    pub fn v6_choice(&self) -> Result<AddressChoice, ControlError> {
        AddressChoice::parse(&self.ip6, &self.ip6_autodetection_method, true, "--ip6")
    }
}

impl AddressChoice {
    /// Parses `--ip` with its method; `v6` selects the family an explicit address must have.
    pub fn parse(
        ip: &str,
        method: &str,
        v6: bool,
        option: &'static str,
    ) -> Result<AddressChoice, ControlError> {
        match ip.trim() {
            "" | "autodetect" => Ok(AddressChoice::Autodetect(Method::parse(method)?)),
            "none" => Ok(AddressChoice::None),
            text => {
                let net: ipnet::IpNet = text
                    .parse()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ControlError::Config {
                        option,
                        reason: format!("{text:?} is not autodetect, none or ADDR/LEN"),
                    })?;
                if net.addr().is_ipv6() != v6 {
                    return Err(ControlError::Config {
                        option,
                        reason: format!("{text:?} is not an IPv{} address", if v6 { 6 } else { 4 }),
                    });
                }
                Ok(AddressChoice::Fixed(net))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        let mut full = vec!["tortie-control", "--node", "n1"];
        full.extend_from_slice(args);
        Options::try_parse_from(full).unwrap()
    }

    #[test]
    fn bgp_follows_calico_backend_names() {
        assert!(
            parse(&[]).bgp_enabled().unwrap()
                || std::env::var_os("CALICO_NETWORKING_BACKEND").is_some()
        );
        for (value, on) in [
            ("on", true),
            ("bird", true),
            ("off", false),
            ("none", false),
            ("vxlan", false),
        ] {
            assert_eq!(
                parse(&["--bgp", value]).bgp_enabled().unwrap(),
                on,
                "{value}"
            );
        }
        assert!(parse(&[]).routes_from_ipam || std::env::var_os("ROUTES_FROM_IPAM").is_some());
        assert!(!parse(&["--routes-from-ipam=false"]).routes_from_ipam);
        let err = parse(&["--bgp", "maybe"]).bgp_enabled().unwrap_err();
        assert!(err.to_string().contains("--bgp"), "{err}");
    }
}

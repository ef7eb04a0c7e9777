//! The success result (CNI spec 1.1.0, "Success"), and its conversion for older callers: 0.3.x
//! and 0.4.0 results carry `"version": "4"|"6"` on each IP; 1.0.0 and later drop it.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::version;

/// An interface the plugin created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its MAC address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Its MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The netns path for container interfaces, absent for host interfaces.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

/// An assigned address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// `"4"` or `"6"`: only in 0.3.x / 0.4.0 results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The address with its prefix length.
    pub address: IpNet,
    /// The gateway, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<std::net::IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination.
    pub dst: IpNet,
    /// Next hop, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<std::net::IpAddr>,
}

/// DNS settings (passed through; Tortie sets none of its own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        self == &Dns::default()
    }
}

/// A success result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    /// The version the result is written in.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Interfaces (absent in an IPAM plugin's result).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Addresses.
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    /// Routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS.
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

impl CniResult {
    /// The result written in `cni_version`: pre-1.0 results get the per-IP `version` field.
    pub fn for_version(mut self, cni_version: &str) -> CniResult {
        self.cni_version = cni_version.to_string();
        let with_version = version::ips_carry_version(cni_version);
        for ip in &mut self.ips {
            ip.version = with_version.then(|| match ip.address {
                IpNet::V4(_) => "4".to_string(),
                IpNet::V6(_) => "6".to_string(),
            });
        }
        self
    }

    /// The JSON text for stdout.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            cni_version: "1.1.0".into(),
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: "02:00:00:00:00:01".into(),
                mtu: None,
                sandbox: "/run/netns/x".into(),
            }],
            ips: vec![IpConfig {
                version: None,
                address: "198.18.0.5/32".parse().unwrap(),
                gateway: None,
                interface: Some(0),
            }],
            routes: vec![Route {
                dst: "0.0.0.0/0".parse().unwrap(),
                gw: Some("169.254.1.1".parse().unwrap()),
            }],
            dns: Dns::default(),
        }
    }

    #[test]
    fn old_versions_carry_ip_version() {
        let json: serde_json::Value =
            serde_json::from_str(&sample().for_version("0.3.1").to_json()).unwrap();
        assert_eq!(json["cniVersion"], "0.3.1");
        assert_eq!(json["ips"][0]["version"], "4");
        let json: serde_json::Value =
            serde_json::from_str(&sample().for_version("1.0.0").to_json()).unwrap();
        assert!(json["ips"][0].get("version").is_none());
        assert_eq!(json["routes"][0]["gw"], "169.254.1.1");
        assert!(json.get("dns").is_none());
    }

    #[test]
    fn parses_a_prev_result() {
        let text = r#"{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/x"}],
            "ips":[{"version":"4","address":"198.18.0.5/32","interface":0}],"dns":{}}"#;
        let parsed: CniResult = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.ips[0].address.to_string(), "198.18.0.5/32");
    }
}

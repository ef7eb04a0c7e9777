//! The network configuration on stdin, shaped like Calico's (`"type": "tortie"`), with the
//! Kubernetes-related keys Calico accepts. Unknown keys are ignored as Calico ignores them;
//! a known key of the wrong type is error 7 naming it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use tortie_datastore::{Datastore, DatastoreConfig};

use crate::spec::{CniError, CniResult, Code, version};

/// Default MTU of workload interfaces: 1500 less the 20 bytes of an IP-in-IP header.
pub const DEFAULT_MTU: u32 = 1480;

/// The longest `endpoint_ready_timeout_secs` accepted: an hour, far beyond any runtime's own
/// CNI timeout. Without a bound, a value such as `1e300` would not fit a [`Duration`].
pub const MAX_ENDPOINT_READY_TIMEOUT_SECS: f64 = 3600.0;

/// Default node name source when neither the config nor `NODENAME` says.
pub const HOSTNAME_FILE: &str = "/etc/hostname";

/// The IPAM section.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpamConf {
    /// The IPAM plugin (`tortie-ipam`; another type is delegated to).
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// Assign an IPv4 address (default true).
    #[serde(default, deserialize_with = "bool_or_string")]
    pub assign_ipv4: Option<bool>,
    /// Assign an IPv6 address (default false).
    #[serde(default, deserialize_with = "bool_or_string")]
    pub assign_ipv6: Option<bool>,
    /// IPv4 pools to use, by name or CIDR (default: every enabled pool).
    #[serde(default)]
    pub ipv4_pools: Vec<String>,
    /// IPv6 pools to use, by name or CIDR.
    #[serde(default)]
    pub ipv6_pools: Vec<String>,
}

impl IpamConf {
    /// Whether IPv4 is wanted.
    pub fn wants_v4(&self) -> bool {
        self.assign_ipv4.unwrap_or(true)
    }

    /// Whether IPv6 is wanted.
    pub fn wants_v6(&self) -> bool {
        self.assign_ipv6.unwrap_or(false)
    }
}

/// `runtimeConfig` keys Tortie reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuntimeConfig {
    /// Workload labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Requested addresses (the `ips` capability).
    #[serde(default)]
    pub ips: Vec<String>,
}

/// One valid attachment in a GC request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    /// The container.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// The interface.
    #[serde(default)]
    pub ifname: String,
}

/// The whole network configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct NetConf {
    /// The version the caller speaks.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// The network name (part of every IPAM handle).
    #[serde(default)]
    pub name: String,
    /// `tortie` or `tortie-ipam`.
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// MTU of the workload interface.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// IPAM section.
    #[serde(default)]
    pub ipam: IpamConf,
    /// `error`, `warning`, `info`, `debug`.
    #[serde(default)]
    pub log_level: Option<String>,
    /// Where logs go (stderr when absent).
    #[serde(default)]
    pub log_file_path: Option<String>,
    /// `sqlite` or `etcdv3` (else `DATASTORE_TYPE`).
    #[serde(default)]
    pub datastore_type: Option<String>,
    /// etcd endpoints (else `ETCD_ENDPOINTS`).
    #[serde(default)]
    pub etcd_endpoints: Option<String>,
    /// etcd CA file.
    #[serde(default)]
    pub etcd_ca_cert_file: Option<String>,
    /// etcd client certificate.
    #[serde(default)]
    pub etcd_cert_file: Option<String>,
    /// etcd client key.
    #[serde(default)]
    pub etcd_key_file: Option<String>,
    /// SQLite file (else `SQLITE_PATH`).
    #[serde(default)]
    pub sqlite_path: Option<String>,
    /// This node's name (else `NODENAME`, else the hostname).
    #[serde(default)]
    pub nodename: Option<String>,
    /// Seconds to wait for tortie-control to report the endpoint programmed (0 = no wait).
    #[serde(default)]
    pub endpoint_ready_timeout_secs: Option<f64>,
    /// Accepted for compatibility with Calico configurations.
    #[serde(default)]
    pub kubernetes: Option<serde_json::Value>,
    /// Accepted for compatibility with Calico configurations.
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
    /// The result of the previous plugin (DEL, CHECK, chained ADD).
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<CniResult>,
    /// Capabilities passed by the runtime.
    #[serde(rename = "runtimeConfig", default)]
    pub runtime_config: RuntimeConfig,
    /// `args.cni.labels` / `args.cni.ips` (CNI conventions).
    #[serde(default)]
    pub args: Option<serde_json::Value>,
    /// GC: the attachments still valid (both key names libcni sends).
    #[serde(
        rename = "cni.dev/valid-attachments",
        alias = "cni.dev/attachments",
        default
    )]
    pub valid_attachments: Option<Vec<Attachment>>,
}

fn bool_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Bool(bool),
        Text(String),
    }
    match Option::<Either>::deserialize(d)? {
        None => Ok(None),
        Some(Either::Bool(b)) => Ok(Some(b)),
        Some(Either::Text(t)) => match t.as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            other => Err(serde::de::Error::custom(format!(
                "expected \"true\" or \"false\", found {other:?}"
            ))),
        },
    }
}

impl NetConf {
    /// Parses stdin: not JSON is error 6, a known key of the wrong type error 7, an unsupported
    /// cniVersion error 1.
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        let value: serde_json::Value = serde_json::from_slice(stdin).map_err(|err| {
            CniError::new(
                Code::DecodingFailure,
                "network configuration on stdin is not JSON",
                err.to_string(),
            )
        })?;
        if value.get("cniVersion").is_none() {
            return Err(CniError::new(
                Code::InvalidNetworkConfig,
                "network configuration: missing field cniVersion",
                "",
            ));
        }
        let conf: NetConf = serde_json::from_value(value).map_err(|err| {
            CniError::new(
                Code::InvalidNetworkConfig,
                "invalid network configuration",
                err.to_string(),
            )
        })?;
        version::check(&conf.cni_version)?;
        if let Some(mtu) = conf.mtu
            && !(68..=65535).contains(&mtu)
        {
            return Err(CniError::new(
                Code::InvalidNetworkConfig,
                format!("mtu: {mtu} is outside 68..65535"),
                "",
            ));
        }
        if let Some(secs) = conf.endpoint_ready_timeout_secs
            && (secs.is_nan() || secs > MAX_ENDPOINT_READY_TIMEOUT_SECS)
        {
            return Err(CniError::new(
                Code::InvalidNetworkConfig,
                format!(
                    "endpoint_ready_timeout_secs: {secs} is above {MAX_ENDPOINT_READY_TIMEOUT_SECS}"
                ),
                "",
            ));
        }
        Ok(conf)
    }

    /// Labels from `runtimeConfig.labels` and `args.cni.labels` (the latter wins).
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.runtime_config.labels.clone();
        let listed = self
            .args
            .as_ref()
            .and_then(|a| a.pointer("/cni/labels"))
            .and_then(|l| l.as_array())
            .cloned()
            .unwrap_or_default();
        for entry in listed {
            if let (Some(k), Some(v)) = (
                entry.get("key").and_then(|k| k.as_str()),
                entry.get("value").and_then(|v| v.as_str()),
            ) {
                labels.insert(k.to_string(), v.to_string());
            }
        }
        labels
    }

    /// Requested addresses from `runtimeConfig.ips` and `args.cni.ips`.
    pub fn requested_ips(&self) -> Vec<String> {
        let mut ips = self.runtime_config.ips.clone();
        if let Some(list) = self
            .args
            .as_ref()
            .and_then(|a| a.pointer("/cni/ips"))
            .and_then(|l| l.as_array())
        {
            ips.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
        ips
    }

    /// How long ADD waits for tortie-control to report the endpoint programmed; `None` (no
    /// wait) for an absent, zero or negative setting. Never panics, even on a configuration
    /// built without [`NetConf::parse`]: a value no [`Duration`] can hold means no wait.
    pub fn endpoint_ready_timeout(&self) -> Option<Duration> {
        self.endpoint_ready_timeout_secs
            .filter(|s| *s > 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }

    /// The workload MTU.
    pub fn mtu(&self) -> u32 {
        self.mtu.unwrap_or(DEFAULT_MTU)
    }

    /// This node's name: the config, else `NODENAME`, else the hostname.
    pub fn node_name(&self) -> String {
        if let Some(name) = self.nodename.as_ref().filter(|n| !n.is_empty()) {
            return name.clone();
        }
        if let Ok(name) = std::env::var("NODENAME")
            && !name.is_empty()
        {
            return name;
        }
        std::fs::read_to_string(HOSTNAME_FILE)
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    }

    /// The datastore settings: config keys first, then the environment (as tortiectl reads it).
    pub fn datastore_config(&self) -> Result<DatastoreConfig, CniError> {
        let overrides: BTreeMap<&str, Option<&String>> = BTreeMap::from([
            ("DATASTORE_TYPE", self.datastore_type.as_ref()),
            ("ETCD_ENDPOINTS", self.etcd_endpoints.as_ref()),
            ("ETCD_CA_CERT_FILE", self.etcd_ca_cert_file.as_ref()),
            ("ETCD_CERT_FILE", self.etcd_cert_file.as_ref()),
            ("ETCD_KEY_FILE", self.etcd_key_file.as_ref()),
            ("SQLITE_PATH", self.sqlite_path.as_ref()),
        ]);
        DatastoreConfig::from_lookup(|name| match overrides.get(name) {
            Some(Some(value)) => Some((*value).clone()),
            _ => std::env::var(name).ok(),
        })
        .map_err(|err| {
            CniError::new(
                Code::InvalidNetworkConfig,
                "invalid datastore settings",
                err.to_string(),
            )
        })
    }

    /// Opens the datastore.
    pub fn open_datastore(&self) -> Result<Arc<dyn Datastore>, CniError> {
        let config = self.datastore_config()?;
        tortie_datastore::open(&config).map_err(|err| {
            CniError::new(
                Code::Datastore,
                "cannot open the datastore",
                err.to_string(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_calico_shaped_config() {
        let conf = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"tortie","mtu":1400,
                "log_level":"info","datastore_type":"sqlite","sqlite_path":"/tmp/x.db","nodename":"node-a",
                "ipam":{"type":"tortie-ipam","assign_ipv4":"true","assign_ipv6":"false","ipv4_pools":["default-ipv4-ippool"]},
                "kubernetes":{"kubeconfig":"/etc/cni/net.d/tortie-kubeconfig"},"policy":{"type":"k8s"},
                "args":{"cni":{"labels":[{"key":"app","value":"web"}]}},
                "somethingElse":1}"#,
        )
        .unwrap();
        assert_eq!(conf.mtu(), 1400);
        assert!(conf.ipam.wants_v4() && !conf.ipam.wants_v6());
        assert_eq!(conf.node_name(), "node-a");
        assert_eq!(conf.labels().get("app").map(String::as_str), Some("web"));
    }

    #[test]
    fn errors_have_the_spec_codes() {
        assert_eq!(
            NetConf::parse(b"{not json").unwrap_err().code,
            Code::DecodingFailure
        );
        assert_eq!(
            NetConf::parse(br#"{"cniVersion":"9.9.9","name":"n","type":"tortie"}"#)
                .unwrap_err()
                .code,
            Code::IncompatibleVersion
        );
        let err =
            NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"tortie","mtu":"big"}"#)
                .unwrap_err();
        assert_eq!(err.code, Code::InvalidNetworkConfig);
        assert!(
            err.details.contains("mtu") || err.details.contains("invalid type"),
            "{err}"
        );
        let err = NetConf::parse(br#"{"cniVersion":"1.0.0","ipam":{"assign_ipv4":"maybe"}}"#)
            .unwrap_err();
        assert!(err.details.contains("maybe"), "{err}");
        assert_eq!(
            NetConf::parse(br#"{"name":"n"}"#).unwrap_err().code,
            Code::InvalidNetworkConfig
        );
    }

    /// Found while writing the `cni_stdin` fuzz target: a timeout too large for a `Duration`
    /// made ADD panic in `Duration::from_secs_f64` instead of failing with error 7.
    #[test]
    fn huge_endpoint_ready_timeout_is_error_7() {
        let err = NetConf::parse(br#"{"cniVersion":"1.0.0","endpoint_ready_timeout_secs":1e300}"#)
            .unwrap_err();
        assert_eq!(err.code, Code::InvalidNetworkConfig);
        assert!(err.msg.contains("endpoint_ready_timeout_secs"), "{err}");
        let conf = NetConf::parse(br#"{"cniVersion":"1.0.0","endpoint_ready_timeout_secs":3600}"#)
            .unwrap();
        assert_eq!(
            conf.endpoint_ready_timeout(),
            Some(Duration::from_secs(3600))
        );
        let conf =
            NetConf::parse(br#"{"cniVersion":"1.0.0","endpoint_ready_timeout_secs":-1}"#).unwrap();
        assert_eq!(conf.endpoint_ready_timeout(), None);
        let unchecked = NetConf {
            endpoint_ready_timeout_secs: Some(1e300),
            ..conf
        };
        assert_eq!(unchecked.endpoint_ready_timeout(), None);
    }

    #[test]
    fn gc_accepts_both_attachment_keys() {
        for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
            let text = format!(
                r#"{{"cniVersion":"1.1.0","name":"n","type":"tortie","{key}":[{{"containerID":"c1","ifname":"eth0"}}]}}"#
            );
            let conf = NetConf::parse(text.as_bytes()).unwrap();
            assert_eq!(conf.valid_attachments.unwrap()[0].container_id, "c1");
        }
    }
}

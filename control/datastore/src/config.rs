//! Choosing and opening a backend from Calico-style environment variables.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DATASTORE_TYPE` | `sqlite` or `etcdv3` | `sqlite` |
//! | `SQLITE_PATH` | the SQLite database file | `/var/lib/tortie/tortie.db` |
//! | `ETCD_ENDPOINTS` | comma-separated URLs, e.g. `https://10.0.0.1:2379,https://10.0.0.2:2379` | required for `etcdv3` |
//! | `ETCD_CA_CERT_FILE` | PEM CA bundle that signed the etcd server certificates | none |
//! | `ETCD_CERT_FILE`, `ETCD_KEY_FILE` | PEM client certificate and key (both or neither) | none |
//!
//! The names and the `etcdv3` value are Calico's (calicoctl, calico-node, the CNI plugin), so
//! an existing Calico environment file works unchanged.

use std::path::PathBuf;
use std::sync::Arc;

use crate::Datastore;
use crate::error::{DatastoreError, Result};
use crate::etcd::EtcdStore;
use crate::sqlite::SqliteStore;

/// Where [`DatastoreKind::Sqlite`] lives when `SQLITE_PATH` is not set.
pub const DEFAULT_SQLITE_PATH: &str = "/var/lib/tortie/tortie.db";

/// Which backend, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatastoreKind {
    /// The embedded default: one SQLite file shared by every process on the host.
    Sqlite {
        /// The database file (created with its parent directory if missing).
        path: PathBuf,
    },
    /// An etcd v3 cluster, possibly one Calico already uses.
    EtcdV3 {
        /// Client URLs (`http://` or `https://`).
        endpoints: Vec<String>,
        /// CA bundle for verifying the servers (`ETCD_CA_CERT_FILE`).
        ca_cert: Option<PathBuf>,
        /// Client certificate (`ETCD_CERT_FILE`).
        cert: Option<PathBuf>,
        /// Client key (`ETCD_KEY_FILE`).
        key: Option<PathBuf>,
    },
}

/// The datastore configuration of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatastoreConfig {
    /// The backend.
    pub kind: DatastoreKind,
}

impl DatastoreConfig {
    /// A SQLite configuration for `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        DatastoreConfig {
            kind: DatastoreKind::Sqlite { path: path.into() },
        }
    }

    /// A plain-text etcd configuration (no TLS).
    pub fn etcd(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        DatastoreConfig {
            kind: DatastoreKind::EtcdV3 {
                endpoints: endpoints.into_iter().map(Into::into).collect(),
                ca_cert: None,
                cert: None,
                key: None,
            },
        }
    }

    /// Reads the configuration from the process environment (see the module docs).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, a config file, a test map).
    /// Empty values count as unset, as in Calico.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let kind = get("DATASTORE_TYPE").unwrap_or_else(|| "sqlite".to_owned());
        match kind.as_str() {
            "sqlite" => Ok(Self::sqlite(
                get("SQLITE_PATH").unwrap_or_else(|| DEFAULT_SQLITE_PATH.to_owned()),
            )),
            "etcdv3" => {
                let endpoints: Vec<String> = get("ETCD_ENDPOINTS")
                    .ok_or(DatastoreError::Config {
                        variable: "ETCD_ENDPOINTS",
                        reason: "required when DATASTORE_TYPE=etcdv3".into(),
                    })?
                    .split(',')
                    .map(|e| e.trim().to_owned())
                    .filter(|e| !e.is_empty())
                    .collect();
                for endpoint in &endpoints {
                    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                        return Err(DatastoreError::Config {
                            variable: "ETCD_ENDPOINTS",
                            reason: format!("{endpoint:?} is not an http:// or https:// URL"),
                        });
                    }
                }
                if endpoints.is_empty() {
                    return Err(DatastoreError::Config {
                        variable: "ETCD_ENDPOINTS",
                        reason: "no endpoint given".into(),
                    });
                }
                let cert = get("ETCD_CERT_FILE").map(PathBuf::from);
                let key = get("ETCD_KEY_FILE").map(PathBuf::from);
                if cert.is_some() != key.is_some() {
                    return Err(DatastoreError::Config {
                        variable: if cert.is_some() { "ETCD_KEY_FILE" } else { "ETCD_CERT_FILE" },
                        reason: "ETCD_CERT_FILE and ETCD_KEY_FILE must be given together".into(),
                    });
                }
                Ok(DatastoreConfig {
                    kind: DatastoreKind::EtcdV3 {
                        endpoints,
                        ca_cert: get("ETCD_CA_CERT_FILE").map(PathBuf::from),
                        cert,
                        key,
                    },
                })
            }
            "kubernetes" => Err(DatastoreError::Config {
                variable: "DATASTORE_TYPE",
                reason: "the kubernetes datastore is not served by tortie-datastore; use sqlite or etcdv3".into(),
            }),
            other => Err(DatastoreError::Config {
                variable: "DATASTORE_TYPE",
                reason: format!("unknown datastore type {other:?}; expected sqlite or etcdv3"),
            }),
        }
    }
}

/// Opens the configured backend. For etcd this connects and checks the cluster answers
/// within a few seconds, so a wrong endpoint fails here with [`DatastoreError::Unavailable`].
pub fn open(config: &DatastoreConfig) -> Result<Arc<dyn Datastore>> {
    match &config.kind {
        DatastoreKind::Sqlite { path } => Ok(Arc::new(SqliteStore::open(path)?)),
        DatastoreKind::EtcdV3 { .. } => Ok(Arc::new(EtcdStore::connect(config)?)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<DatastoreConfig> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        DatastoreConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_to_sqlite_at_the_standard_path() {
        assert_eq!(
            from(&[]).unwrap(),
            DatastoreConfig::sqlite(DEFAULT_SQLITE_PATH)
        );
        assert_eq!(
            from(&[("DATASTORE_TYPE", "sqlite"), ("SQLITE_PATH", "/tmp/x.db")]).unwrap(),
            DatastoreConfig::sqlite("/tmp/x.db")
        );
    }

    #[test]
    fn reads_calicos_etcd_variables() {
        let config = from(&[
            ("DATASTORE_TYPE", "etcdv3"),
            (
                "ETCD_ENDPOINTS",
                "https://10.0.0.1:2379, https://10.0.0.2:2379",
            ),
            ("ETCD_CA_CERT_FILE", "/etc/calico/ca.pem"),
            ("ETCD_CERT_FILE", "/etc/calico/cert.pem"),
            ("ETCD_KEY_FILE", "/etc/calico/key.pem"),
        ])
        .unwrap();
        assert_eq!(
            config.kind,
            DatastoreKind::EtcdV3 {
                endpoints: vec![
                    "https://10.0.0.1:2379".into(),
                    "https://10.0.0.2:2379".into()
                ],
                ca_cert: Some("/etc/calico/ca.pem".into()),
                cert: Some("/etc/calico/cert.pem".into()),
                key: Some("/etc/calico/key.pem".into()),
            }
        );
    }

    #[test]
    fn rejects_bad_configuration_naming_the_variable() {
        let err = from(&[("DATASTORE_TYPE", "etcdv3")]).unwrap_err();
        assert!(matches!(
            err,
            DatastoreError::Config {
                variable: "ETCD_ENDPOINTS",
                ..
            }
        ));
        let err = from(&[
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_ENDPOINTS", "10.0.0.1:2379"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("ETCD_ENDPOINTS"), "{err}");
        let err = from(&[
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_ENDPOINTS", "http://127.0.0.1:2379"),
            ("ETCD_CERT_FILE", "/c.pem"),
        ])
        .unwrap_err();
        assert!(matches!(
            err,
            DatastoreError::Config {
                variable: "ETCD_KEY_FILE",
                ..
            }
        ));
        let err = from(&[("DATASTORE_TYPE", "kubernetes")]).unwrap_err();
        assert!(matches!(
            err,
            DatastoreError::Config {
                variable: "DATASTORE_TYPE",
                ..
            }
        ));
        let err = from(&[("DATASTORE_TYPE", "consul")]).unwrap_err();
        assert!(err.to_string().contains("consul"), "{err}");
    }
}

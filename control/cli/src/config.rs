//! Client configuration: the `tortiectl.cfg` file (calicoctl.cfg shape), the environment and
//! command-line flags.
//!
//! Precedence, lowest first: built-in defaults, the config file, the environment, flags. (calicoctl
//! reads either the file or the environment; merging them field by field lets an operator keep
//! TLS file paths in the file and point one command at another endpoint with `ETCD_ENDPOINTS`.)

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tortie_datastore::{DatastoreConfig, DatastoreError};

/// Where the config file is looked for when `-c/--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tortie/tortiectl.cfg";

/// Which backend the client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatastoreType {
    /// The embedded SQLite store (the default).
    Sqlite,
    /// An etcd v3 cluster.
    Etcdv3,
}

impl DatastoreType {
    /// Parses the names calicoctl and Tortie accept (`sqlite`, `etcdv3`, `etcd`).
    pub fn parse(text: &str) -> Option<DatastoreType> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Some(DatastoreType::Sqlite),
            "etcdv3" | "etcd" => Some(DatastoreType::Etcdv3),
            _ => None,
        }
    }

    /// The canonical name, as printed by `tortiectl version`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatastoreType::Sqlite => "sqlite",
            DatastoreType::Etcdv3 => "etcdv3",
        }
    }
}

/// The merged client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Backend kind.
    pub datastore_type: DatastoreType,
    /// SQLite database file (SQLite only).
    pub sqlite_path: Option<PathBuf>,
    /// etcd client URLs (etcd only).
    pub etcd_endpoints: Vec<String>,
    /// CA bundle used to verify etcd's certificate.
    pub etcd_ca_cert_file: Option<PathBuf>,
    /// Client certificate for etcd.
    pub etcd_cert_file: Option<PathBuf>,
    /// Client key for etcd.
    pub etcd_key_file: Option<PathBuf>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            datastore_type: DatastoreType::Sqlite,
            sqlite_path: None,
            etcd_endpoints: Vec::new(),
            etcd_ca_cert_file: None,
            etcd_cert_file: None,
            etcd_key_file: None,
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `-c` is missing or unreadable.
    #[error("config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid CalicoAPIConfig document.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with line and column where known.
        message: String,
    },
    /// A datastore type that is neither `sqlite` nor `etcdv3`.
    #[error("{origin}: unknown datastore type {value:?} (expected \"sqlite\" or \"etcdv3\")")]
    DatastoreType {
        /// Where the value came from (file, variable or flag).
        origin: String,
        /// The value given.
        value: String,
    },
}

impl ClientConfig {
    /// The datastore configuration, checked as the datastore crate checks its environment
    /// (etcd needs `http://` or `https://` endpoints, cert and key go together).
    pub fn datastore_config(&self) -> Result<DatastoreConfig, DatastoreError> {
        let mut vars: Vec<(&str, String)> =
            vec![("DATASTORE_TYPE", self.datastore_type.as_str().into())];
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        if let Some(p) = path(&self.sqlite_path) {
            vars.push(("SQLITE_PATH", p));
        }
        if !self.etcd_endpoints.is_empty() {
            vars.push(("ETCD_ENDPOINTS", self.etcd_endpoints.join(",")));
        }
        for (name, value) in [
            ("ETCD_CA_CERT_FILE", path(&self.etcd_ca_cert_file)),
            ("ETCD_CERT_FILE", path(&self.etcd_cert_file)),
            ("ETCD_KEY_FILE", path(&self.etcd_key_file)),
        ] {
            if let Some(value) = value {
                vars.push((name, value));
            }
        }
        DatastoreConfig::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
    }
}

/// Overrides given on the command line (all optional).
#[derive(Debug, Clone, Default)]
pub struct FlagOverrides {
    /// `-c/--config`: an explicit file must exist.
    pub config_file: Option<PathBuf>,
    /// `--datastore-type`.
    pub datastore_type: Option<String>,
    /// `--sqlite-path`.
    pub sqlite_path: Option<PathBuf>,
    /// `--etcd-endpoints` (comma-separated).
    pub etcd_endpoints: Option<String>,
}

/// The on-disk file: `apiVersion: projectcalico.org/v3`, `kind: CalicoAPIConfig`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigFile {
    api_version: String,
    kind: String,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_yaml::Value>,
    #[serde(default)]
    spec: ConfigSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigSpec {
    datastore_type: Option<String>,
    sqlite_path: Option<PathBuf>,
    etcd_endpoints: Option<String>,
    #[serde(rename = "etcdCACertFile")]
    etcd_ca_cert_file: Option<PathBuf>,
    etcd_cert_file: Option<PathBuf>,
    etcd_key_file: Option<PathBuf>,
}

/// Loads the configuration: file (if present), then `env`, then `flags`.
///
/// `env` is a lookup function so tests need not touch the process environment.
pub fn load(
    flags: &FlagOverrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ClientConfig, ConfigError> {
    let mut config = ClientConfig::default();
    let (path, explicit) = match &flags.config_file {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
    };
    if explicit || path.exists() {
        apply_file(&mut config, &path)?;
    }
    apply_env(&mut config, env)?;
    apply_flags(&mut config, flags)?;
    Ok(config)
}

fn apply_file(config: &mut ClientConfig, path: &Path) -> Result<(), ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let file: ConfigFile = serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    if file.api_version != "projectcalico.org/v3" {
        return Err(ConfigError::Parse {
            path: shown,
            message: format!(
                "apiVersion: expected \"projectcalico.org/v3\", found {:?}",
                file.api_version
            ),
        });
    }
    if file.kind != "CalicoAPIConfig" {
        return Err(ConfigError::Parse {
            path: shown,
            message: format!("kind: expected \"CalicoAPIConfig\", found {:?}", file.kind),
        });
    }
    let spec = file.spec;
    if let Some(value) = spec.datastore_type {
        config.datastore_type = parse_type(&value, &format!("{shown}: spec.datastoreType"))?;
    }
    if spec.sqlite_path.is_some() {
        config.sqlite_path = spec.sqlite_path;
    }
    if let Some(endpoints) = spec.etcd_endpoints {
        config.etcd_endpoints = split_endpoints(&endpoints);
    }
    if spec.etcd_ca_cert_file.is_some() {
        config.etcd_ca_cert_file = spec.etcd_ca_cert_file;
    }
    if spec.etcd_cert_file.is_some() {
        config.etcd_cert_file = spec.etcd_cert_file;
    }
    if spec.etcd_key_file.is_some() {
        config.etcd_key_file = spec.etcd_key_file;
    }
    Ok(())
}

fn apply_env(
    config: &mut ClientConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(value) = get("DATASTORE_TYPE") {
        config.datastore_type = parse_type(&value, "environment variable DATASTORE_TYPE")?;
    }
    if let Some(value) = get("SQLITE_PATH") {
        config.sqlite_path = Some(PathBuf::from(value));
    }
    if let Some(value) = get("ETCD_ENDPOINTS") {
        config.etcd_endpoints = split_endpoints(&value);
    }
    if let Some(value) = get("ETCD_CA_CERT_FILE") {
        config.etcd_ca_cert_file = Some(PathBuf::from(value));
    }
    if let Some(value) = get("ETCD_CERT_FILE") {
        config.etcd_cert_file = Some(PathBuf::from(value));
    }
    if let Some(value) = get("ETCD_KEY_FILE") {
        config.etcd_key_file = Some(PathBuf::from(value));
    }
    Ok(())
}

fn apply_flags(config: &mut ClientConfig, flags: &FlagOverrides) -> Result<(), ConfigError> {
    if let Some(value) = &flags.datastore_type {
        config.datastore_type = parse_type(value, "flag --datastore-type")?;
    }
    if let Some(path) = &flags.sqlite_path {
        config.sqlite_path = Some(path.clone());
    }
    if let Some(value) = &flags.etcd_endpoints {
        config.etcd_endpoints = split_endpoints(value);
    }
    Ok(())
}

fn parse_type(value: &str, origin: &str) -> Result<DatastoreType, ConfigError> {
    DatastoreType::parse(value).ok_or_else(|| ConfigError::DatastoreType {
        origin: origin.to_string(),
        value: value.to_string(),
    })
}

fn split_endpoints(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn write_cfg(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn file_then_env_then_flags() {
        let cfg = write_cfg(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  \
             datastoreType: etcdv3\n  etcdEndpoints: http://127.0.0.1:2379, http://127.0.0.2:2379\n  \
             etcdCACertFile: /ca.pem\n  sqlitePath: /file.db\n",
        );
        let mut flags = FlagOverrides {
            config_file: Some(cfg.path().to_path_buf()),
            ..FlagOverrides::default()
        };
        let config = load(&flags, &env_of(&[])).unwrap();
        assert_eq!(config.datastore_type, DatastoreType::Etcdv3);
        assert_eq!(
            config.etcd_endpoints,
            vec!["http://127.0.0.1:2379", "http://127.0.0.2:2379"]
        );
        assert_eq!(config.etcd_ca_cert_file, Some(PathBuf::from("/ca.pem")));

        let env = env_of(&[("DATASTORE_TYPE", "sqlite"), ("SQLITE_PATH", "/env.db")]);
        let config = load(&flags, &env).unwrap();
        assert_eq!(config.datastore_type, DatastoreType::Sqlite);
        assert_eq!(config.sqlite_path, Some(PathBuf::from("/env.db")));

        flags.sqlite_path = Some(PathBuf::from("/flag.db"));
        let config = load(&flags, &env).unwrap();
        assert_eq!(config.sqlite_path, Some(PathBuf::from("/flag.db")));
    }

    #[test]
    fn typo_in_file_names_the_field() {
        let cfg = write_cfg(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  etcdEndpoint: x\n",
        );
        let flags = FlagOverrides {
            config_file: Some(cfg.path().to_path_buf()),
            ..FlagOverrides::default()
        };
        let err = load(&flags, &env_of(&[])).unwrap_err().to_string();
        assert!(err.contains("etcdEndpoint"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn wrong_kind_and_bad_type_are_errors() {
        let cfg = write_cfg("apiVersion: projectcalico.org/v3\nkind: IPPool\n");
        let flags = FlagOverrides {
            config_file: Some(cfg.path().to_path_buf()),
            ..FlagOverrides::default()
        };
        assert!(
            load(&flags, &env_of(&[]))
                .unwrap_err()
                .to_string()
                .contains("CalicoAPIConfig")
        );
        let err = load(
            &FlagOverrides::default(),
            &env_of(&[("DATASTORE_TYPE", "kdd")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("DATASTORE_TYPE") && err.contains("kdd"),
            "{err}"
        );
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let flags = FlagOverrides {
            config_file: Some(PathBuf::from("/nonexistent/tortiectl.cfg")),
            ..FlagOverrides::default()
        };
        assert!(matches!(
            load(&flags, &env_of(&[])),
            Err(ConfigError::Read { .. })
        ));
    }
}

//! The `CNI_*` environment variables (CNI spec 1.1.0, "Parameters").

use std::collections::BTreeMap;

use super::error::{CniError, Code};

/// The operation asked for by `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach the container to the network.
    Add,
    /// Detach it (idempotent).
    Del,
    /// Verify the attachment.
    Check,
    /// Report supported versions.
    Version,
    /// Report readiness (1.1.0).
    Status,
    /// Release what no valid attachment holds (1.1.0).
    Gc,
}

/// The parsed environment of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniEnv {
    /// The command.
    pub command: Command,
    /// `CNI_CONTAINERID` (required for ADD, DEL and CHECK).
    pub container_id: String,
    /// `CNI_NETNS`: a path to the network namespace (optional for DEL).
    pub netns: Option<String>,
    /// `CNI_IFNAME`: the interface name inside the container.
    pub ifname: String,
    /// `CNI_ARGS` as key/value pairs (`IgnoreUnknown=1;K8S_POD_NAME=x`).
    pub args: BTreeMap<String, String>,
    /// `CNI_PATH`.
    pub path: String,
}

impl CniEnv {
    /// Reads the environment through `get` (the process environment in the binaries, a map
    /// in tests). Missing variables are error code 4, naming every missing variable.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<CniEnv, CniError> {
        let command = match get("CNI_COMMAND").as_deref() {
            Some("ADD") => Command::Add,
            Some("DEL") => Command::Del,
            Some("CHECK") => Command::Check,
            Some("VERSION") => Command::Version,
            Some("STATUS") => Command::Status,
            Some("GC") => Command::Gc,
            Some(other) => {
                return Err(CniError::new(
                    Code::InvalidEnvironment,
                    format!("unknown CNI_COMMAND {other:?}"),
                    "expected ADD, DEL, CHECK, VERSION, STATUS or GC",
                ));
            }
            None => {
                return Err(CniError::new(
                    Code::InvalidEnvironment,
                    "missing environment variable CNI_COMMAND",
                    "",
                ));
            }
        };
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty());
        let required: &[&str] = match command {
            Command::Add | Command::Check => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME"],
            Command::Version | Command::Status | Command::Gc => &[],
        };
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|n| non_empty(n).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(CniError::new(
                Code::InvalidEnvironment,
                format!("missing environment variables: {}", missing.join(", ")),
                format!(
                    "required for CNI_COMMAND={}",
                    get("CNI_COMMAND").unwrap_or_default()
                ),
            ));
        }
        let args = parse_args(&get("CNI_ARGS").unwrap_or_default())?;
        Ok(CniEnv {
            command,
            container_id: non_empty("CNI_CONTAINERID").unwrap_or_default(),
            netns: non_empty("CNI_NETNS"),
            ifname: non_empty("CNI_IFNAME").unwrap_or_default(),
            args,
            path: get("CNI_PATH").unwrap_or_default(),
        })
    }
}

/// Parses `CNI_ARGS` (`K1=V1;K2=V2`).
fn parse_args(raw: &str) -> Result<BTreeMap<String, String>, CniError> {
    let mut args = BTreeMap::new();
    for pair in raw.split(';').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CniError::new(
                Code::InvalidEnvironment,
                format!("CNI_ARGS: {pair:?} is not KEY=VALUE"),
                raw.to_string(),
            ));
        };
        args.insert(key.to_string(), value.to_string());
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn add_needs_container_netns_and_ifname() {
        let err =
            CniEnv::parse(env(&[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")])).unwrap_err();
        assert_eq!(err.code, Code::InvalidEnvironment);
        assert!(
            err.msg.contains("CNI_CONTAINERID") && err.msg.contains("CNI_NETNS"),
            "{}",
            err.msg
        );
    }

    #[test]
    fn del_works_without_netns() {
        let parsed = CniEnv::parse(env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", ""),
            ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web"),
        ]))
        .unwrap();
        assert_eq!(parsed.command, Command::Del);
        assert_eq!(parsed.netns, None);
        assert_eq!(
            parsed.args.get("K8S_POD_NAME").map(String::as_str),
            Some("web")
        );
    }

    #[test]
    fn bad_command_and_args() {
        assert!(CniEnv::parse(env(&[("CNI_COMMAND", "FROB")])).is_err());
        assert!(CniEnv::parse(env(&[])).is_err());
        let err =
            CniEnv::parse(env(&[("CNI_COMMAND", "VERSION"), ("CNI_ARGS", "novalue")])).unwrap_err();
        assert!(err.msg.contains("novalue"));
    }
}

//! Delegating IPAM to another plugin (for example `host-local`) when the configuration's
//! `ipam.type` is not `tortie-ipam`, as Calico does: the delegate runs with the same environment
//! and configuration, found on `CNI_PATH`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::spec::{CniEnv, CniError, CniResult, Code};

fn find(plugin: &str, env: &CniEnv) -> Result<PathBuf, CniError> {
    if plugin.contains('/') {
        return Err(CniError::new(
            Code::InvalidNetworkConfig,
            format!("ipam.type {plugin:?} must be a plain name"),
            "",
        ));
    }
    env.path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::new(
                Code::InvalidNetworkConfig,
                format!("IPAM plugin {plugin:?} not found on CNI_PATH"),
                env.path.clone(),
            )
        })
}

/// Runs the delegate with `command` and the original stdin; returns its parsed result for ADD.
pub fn run(
    plugin: &str,
    command: &str,
    env: &CniEnv,
    stdin: &[u8],
) -> Result<Option<CniResult>, CniError> {
    let path = find(plugin, env)?;
    let mut child = Command::new(&path)
        .env("CNI_COMMAND", command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| {
            CniError::new(
                Code::IoFailure,
                format!("cannot run IPAM plugin {}", path.display()),
                err.to_string(),
            )
        })?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).map_err(|err| {
            CniError::new(
                Code::IoFailure,
                "cannot write to the IPAM plugin",
                err.to_string(),
            )
        })?;
    }
    let output = child.wait_with_output().map_err(|err| {
        CniError::new(
            Code::IoFailure,
            "IPAM plugin failed to run",
            err.to_string(),
        )
    })?;
    if !output.status.success() {
        return Err(CniError::new(
            Code::Ipam,
            format!("IPAM plugin {plugin} failed ({})", output.status),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ));
    }
    if command != "ADD" {
        return Ok(None);
    }
    serde_json::from_slice(&output.stdout)
        .map(Some)
        .map_err(|err| {
            CniError::new(
                Code::DecodingFailure,
                format!("IPAM plugin {plugin} returned an unreadable result"),
                err.to_string(),
            )
        })
}

//! Project automation behind `cargo xtask`: installing what a fresh machine lacks, building,
//! and the lab of network namespaces that the demo and the node tests run Tortie in.
//!
//! The library half exists so the integration tests in `tests/` drive the same lab code the
//! `cargo xtask lab|demo` commands use.

pub mod demo;
pub mod error;
pub mod exec;
pub mod interrupt;
pub mod lab;
pub mod lab_command;
pub mod matrix;
pub mod netns;
pub mod packages;
pub mod policy_latency;
pub mod probe;

use std::path::PathBuf;
use std::process::Command;

pub use error::{Result, XtaskError};

/// The workspace root: xtask's manifest lives one folder below it.
pub fn workspace_root() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The folder cargo puts binaries of `profile` (`debug` or `release`) in.
pub fn bin_dir(profile: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join(profile)
}

/// Runs cargo from the workspace root with `args` then `extra`, failing on a non-zero exit.
pub fn cargo(args: &[&str], extra: &[String]) -> std::result::Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(args)
        .args(extra)
        .status()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed with {status}", args.join(" ")))
    }
}

/// Builds what a lab runs (`tortiectl`, the CNI plugins and, with `daemons`, tortie-control and
/// tortie-fastpath); returns the folder holding them.
pub fn build_lab_binaries(daemons: bool, release: bool) -> Result<PathBuf> {
    let mut args = vec!["build", "--bins", "-p", "tortie-cli", "-p", "tortie-cni"];
    if daemons {
        args.extend(["-p", "tortie-control", "-p", "tortie-fastpath"]);
    }
    if release {
        args.push("--release");
    }
    cargo(&args, &[]).map_err(|message| {
        XtaskError::Lab(if daemons {
            format!("{message} (`--no-daemons` runs the lab on kernel forwarding without them)")
        } else {
            message
        })
    })?;
    Ok(bin_dir(if release { "release" } else { "debug" }))
}

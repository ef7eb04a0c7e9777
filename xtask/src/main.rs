//! `cargo xtask <command>`: the project's automation.
//!
//! - `test`: installs missing Debian packages, then runs the whole test suite.
//! - `demo`: installs missing packages, builds, and runs the demo (the README's main command).
//! - `bench`: runs the criterion benchmarks.

mod demo;
mod packages;

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <test|demo|bench> [args...]

  test    install missing Debian packages, then run every test in the workspace
  demo    install missing Debian packages, build, and run the Tortie demo
  bench   run the criterion benchmarks (extra args go to cargo bench)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "test" => test(rest),
        "demo" => demo::run(rest),
        "bench" => bench(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    packages::ensure(packages::BUILD)?;
    packages::ensure(packages::TEST_PEERS)?;
    cargo(&["test", "--workspace", "--all-targets"], extra)?;
    cargo(&["test", "--workspace", "--doc"], &[])
}

fn bench(extra: &[String]) -> Result<(), String> {
    packages::ensure(packages::BUILD)?;
    cargo(&["bench", "--workspace"], extra)
}

/// Runs cargo from the workspace root with `args` then `extra`, failing on a non-zero exit.
pub fn cargo(args: &[&str], extra: &[String]) -> Result<(), String> {
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

/// The workspace root: xtask's manifest lives one folder below it.
pub fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

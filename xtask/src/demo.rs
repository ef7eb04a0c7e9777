//! `cargo xtask demo`: the README's main command.

use crate::packages;

/// Builds the workspace and runs the demo.
pub fn run(extra: &[String]) -> Result<(), String> {
    packages::ensure(packages::BUILD)?;
    crate::cargo(&["build", "--workspace", "--release", "--bins"], extra)?;
    println!("demo: the workspace is built; the datastore demo arrives with tortiectl");
    Ok(())
}

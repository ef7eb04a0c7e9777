//! `tortie-perf`: Tortie's performance harness.

use clap::Parser;

/// Tortie's performance harness.
#[derive(Debug, Parser)]
#[command(name = "tortie-perf", version)]
enum Command {}

fn main() {
    let _ = Command::parse();
}

//! `tortie-perf`: Tortie's performance harness.

mod classify;
mod pktgen;

use clap::Parser;

/// Tortie's performance harness.
#[derive(Debug, Parser)]
#[command(name = "tortie-perf", version)]
enum Command {
    /// Classifier throughput, memory, build and update times on a ClassBench rule set and trace,
    /// checked packet by packet against a linear scan.
    Classify(classify::ClassifyArgs),
    /// AF_XDP traffic generator and receiver: UDP/TCP/ICMP over IPv4/IPv6, fixed sizes or IMIX,
    /// N flows, rate limiting, loss and one-way latency percentiles.
    Pktgen(pktgen::PktgenArgs),
}

fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Classify(args) => classify::run(&args),
        Command::Pktgen(args) => pktgen::run(&args),
    }
}

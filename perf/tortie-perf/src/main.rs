//! `tortie-perf`: Tortie's performance harness.

mod classify;
mod compare;
mod connrate;
mod dut;
mod pktgen;
mod rfc2544;
mod scaling;

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
    /// RFC 2544 throughput (binary search for the highest rate within a loss tolerance) and
    /// latency through a device under test built in network namespaces.
    Rfc2544(rfc2544::Rfc2544Args),
    /// tortie-fastpath, its bypassed forwarder and the kernel (plain, conntrack + ipset,
    /// linear iptables) side by side, trials interleaved; medians, ratios, JSON and SVG plots.
    Compare(compare::CompareArgs),
    /// New TCP connections per second through a device under test (kernel sockets in the
    /// generator and sink namespaces), systems interleaved.
    Connrate(connrate::ConnrateArgs),
    /// Forwarding rate against the number of workers (multi-queue veths, `tortie-fastpath
    /// --workers N`, one generator thread per queue), systems and counts interleaved.
    Scaling(scaling::ScalingArgs),
    /// Run a program inside a named network namespace (internal helper of the harness).
    #[command(hide = true)]
    NetnsExec(tortie_perf::netns::exec::NetnsExecArgs),
}

fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Classify(args) => classify::run(&args),
        Command::Pktgen(args) => pktgen::run(&args),
        Command::Rfc2544(args) => rfc2544::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Connrate(args) => connrate::run(&args),
        Command::Scaling(args) => scaling::run(&args),
        // Before any thread starts: it may unshare its mount namespace.
        Command::NetnsExec(args) => Ok(tortie_perf::netns::exec::run(&args)?),
    }
}

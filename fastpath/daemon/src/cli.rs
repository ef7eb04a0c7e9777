//! Command line of `tortie-fastpath` (names fixed by the node contract; see
//! `docs/design/fastpath-daemon.md`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// How a worker waits when a pass over its sockets found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoopMode {
    /// Spin on the rings: lowest latency, one full core per worker.
    Busy,
    /// Spin briefly, then back off with short sleeps (bounded, see `crate::backoff::Backoff`):
    /// a small machine running several nodes stays usable.
    Adaptive,
}

impl LoopMode {
    /// The name used in the status file.
    pub fn name(self) -> &'static str {
        match self {
            LoopMode::Busy => "busy",
            LoopMode::Adaptive => "adaptive",
        }
    }
}

/// AF_XDP attach mode asked for on every interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BindArg {
    /// Zero-copy, then driver mode, then generic (SKB) mode: the first that binds.
    Auto,
    /// Native (driver) XDP, copy mode.
    Driver,
    /// Generic (SKB) XDP.
    Skb,
}

impl BindArg {
    /// The tortie-xsk mode.
    pub fn mode(self) -> tortie_xsk::BindMode {
        match self {
            BindArg::Auto => tortie_xsk::BindMode::Auto,
            BindArg::Driver => tortie_xsk::BindMode::DriverCopy,
            BindArg::Skb => tortie_xsk::BindMode::Skb,
        }
    }
}

/// The dataplane daemon: reads compiled tables from tortie-control over a shared-memory ring
/// and forwards packets with pinned AF_XDP workers.
#[derive(Clone, Debug, Parser)]
#[command(name = "tortie-fastpath", version, about)]
pub struct Args {
    /// The ring tortie-control writes (waited for if it does not exist yet).
    #[arg(long, env = "TORTIE_RING", default_value = "/run/tortie/ring")]
    pub ring: PathBuf,
    /// Status file, rewritten every second (write + rename).
    #[arg(
        long,
        env = "TORTIE_FASTPATH_STATUS",
        default_value = "/run/tortie/fastpath-status.json"
    )]
    pub status_file: PathBuf,
    /// Worker threads; worker k serves queue k of every interface that has it.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// Cores to pin the workers to, in order (default: cores 1, 2, ... wrapping).
    #[arg(long, value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// Busy polling or adaptive back-off when idle.
    #[arg(long, value_enum, default_value_t = LoopMode::Adaptive)]
    pub mode: LoopMode,
    /// Run the worker threads under SCHED_FIFO at this priority (1-99), so a worker woken by
    /// a frame pre-empts other tasks on its core, as the kernel's softirq does. Off by
    /// default; for adaptive workers on shared cores (see `crate::priority`). Needs
    /// CAP_SYS_NICE and `chrt` (util-linux).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=99))]
    pub worker_rt_priority: Option<u8>,
    /// AF_XDP bind mode.
    #[arg(long, value_enum, default_value_t = BindArg::Auto)]
    pub bind: BindArg,
    /// Conntrack capacity (flows) of each worker.
    #[arg(long, default_value_t = 1 << 16)]
    pub conntrack_capacity: usize,
    /// Metrics and health endpoint.
    #[arg(
        long,
        env = "TORTIE_FASTPATH_METRICS",
        default_value = "127.0.0.1:9098"
    )]
    pub metrics: SocketAddr,
    /// Logging: `--log-level`, `--log-file`, `--syslog`, `--json-logs`.
    #[command(flatten)]
    pub log: tortie_telemetry::LogOptions,
    /// Measurement aid, not for production: forward without the pipeline (no policy,
    /// conntrack, routing or NAT), a layer-2 cross-connect between the uplink and the first
    /// workload interface, so a benchmark can compare the full pipeline with the bare AF_XDP
    /// forwarder of the same binary.
    #[arg(long)]
    pub bypass: bool,
}

impl Args {
    /// The core worker `k` is pinned to: `--cores[k % len]`, else `1 + k` wrapped over the
    /// machine's cores (core 0 is left to the kernel and the config thread).
    pub fn core_for(&self, k: usize, available: usize) -> usize {
        if !self.cores.is_empty() {
            return self.cores[k % self.cores.len()];
        }
        let n = available.max(1);
        (1 + k) % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let a = Args::try_parse_from(["tortie-fastpath"]).unwrap();
        assert_eq!(a.ring, PathBuf::from("/run/tortie/ring"));
        assert_eq!(
            a.status_file,
            PathBuf::from("/run/tortie/fastpath-status.json")
        );
        assert_eq!(a.workers, 1);
        assert_eq!(a.mode, LoopMode::Adaptive);
        assert_eq!(a.metrics, "127.0.0.1:9098".parse().unwrap());
        assert_eq!(a.worker_rt_priority, None, "ordinary tasks unless asked");
    }

    #[test]
    fn worker_rt_priority_is_a_real_time_priority() {
        let a = Args::try_parse_from(["tortie-fastpath", "--worker-rt-priority", "1"]).unwrap();
        assert_eq!(a.worker_rt_priority, Some(1));
        let a = Args::try_parse_from(["tortie-fastpath", "--worker-rt-priority=99"]).unwrap();
        assert_eq!(a.worker_rt_priority, Some(99));
        for bad in ["0", "100", "-1", "x"] {
            assert!(
                Args::try_parse_from(["tortie-fastpath", "--worker-rt-priority", bad]).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn cores_and_modes_parse() {
        let a = Args::try_parse_from([
            "tortie-fastpath",
            "--workers",
            "3",
            "--cores",
            "2,5",
            "--mode",
            "busy",
            "--bind",
            "skb",
        ])
        .unwrap();
        assert_eq!(a.mode, LoopMode::Busy);
        assert_eq!(a.bind.mode(), tortie_xsk::BindMode::Skb);
        assert_eq!(
            (a.core_for(0, 8), a.core_for(1, 8), a.core_for(2, 8)),
            (2, 5, 2)
        );
        let b = Args::try_parse_from(["tortie-fastpath"]).unwrap();
        assert_eq!((b.core_for(0, 4), b.core_for(3, 4)), (1, 0));
        assert!(Args::try_parse_from(["tortie-fastpath", "--workers", "0"]).is_err());
        assert!(Args::try_parse_from(["tortie-fastpath", "--mode", "lazy"]).is_err());
    }
}

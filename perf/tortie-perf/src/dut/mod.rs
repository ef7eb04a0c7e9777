//! Devices under test: the systems `rfc2544` and `compare` measure, each in its own
//! generator → DUT → sink namespace topology ([`topology`]), and one measured trial through
//! one of them ([`trial`]).

pub mod kernel;
pub mod topology;
pub mod tortie;
pub mod trial;

use std::path::PathBuf;

use clap::ValueEnum;
use serde::Serialize;

use kernel::KernelConfig;
use topology::Topology;
use tortie::{Fastpath, FastpathOptions};

/// Why building or driving a device under test failed. Messages name the command, file or
/// condition.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A command could not be started.
    #[error("starting `{command}`: {reason}")]
    Spawn {
        /// The command line.
        command: String,
        /// What the OS said.
        reason: String,
    },
    /// A command exited with a failure.
    #[error("`{command}` exited with status {status}: {stderr}")]
    Command {
        /// The command line (shortened).
        command: String,
        /// Its exit status (-1: killed by a signal).
        status: i32,
        /// Its standard error.
        stderr: String,
    },
    /// A file operation failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// The system cannot be measured here (missing binary or flag); reported, not fatal.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A trial failed.
    #[error("trial: {0}")]
    Trial(String),
    /// A namespace or netlink step failed.
    #[error(transparent)]
    Netns(#[from] tortie_perf::netns::NetnsError),
}

/// A system under test. The names are those of the JSON reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// tortie-fastpath with the full pipeline (policy, conntrack, routing).
    Tortie,
    /// The same binary with the pipeline bypassed (`--bypass`), if it has that flag.
    TortieBypass,
    /// Kernel IP forwarding.
    Kernel,
    /// Kernel forwarding, conntrack on, one iptables rule matching an ipset of `rules`
    /// entries.
    KernelCtIpset,
    /// Kernel forwarding through `rules` linear iptables (legacy) rules.
    KernelIptables,
    /// Kernel forwarding through `rules` linear nftables rules.
    KernelNftables,
    /// Kernel forwarding with conntrack (established flows accepted first) and `rules`
    /// linear iptables rules for new flows: the usual stateful firewall.
    KernelCtIptables,
}

impl System {
    /// The report name (`kernel-ct-ipset`, ...).
    pub fn name(self) -> &'static str {
        match self {
            System::Tortie => "tortie",
            System::TortieBypass => "tortie-bypass",
            System::Kernel => "kernel",
            System::KernelCtIpset => "kernel-ct-ipset",
            System::KernelIptables => "kernel-iptables",
            System::KernelNftables => "kernel-nftables",
            System::KernelCtIptables => "kernel-ct-iptables",
        }
    }

    /// Whether the rule count changes anything for this system.
    pub fn uses_rules(self) -> bool {
        !matches!(self, System::Kernel | System::TortieBypass)
    }
}

/// One system with its rule count: what a trial runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Scenario {
    /// The system.
    pub system: System,
    /// Policy rules (tortie), linear rules (iptables/nftables) or ipset entries; 0 where it
    /// does not apply.
    pub rules: usize,
}

impl Scenario {
    /// `system` or `system@rules` for progress lines.
    pub fn label(&self) -> String {
        if self.system.uses_rules() {
            format!("{}@{}", self.system.name(), self.rules)
        } else {
            self.system.name().to_string()
        }
    }
}

/// Options for building tortie devices.
#[derive(Debug, Clone, Default)]
pub struct DutOptions {
    /// `tortie-fastpath` binary; found next to this executable or on `PATH` when absent.
    pub fastpath_bin: Option<PathBuf>,
    /// Fastpath `--mode`.
    pub fastpath_mode: String,
    /// Fastpath workers (`--workers`); every veth of the topology gets this many queues, so
    /// worker k serves queue k of each (0 counts as 1).
    pub workers: usize,
    /// Further tortie-fastpath flags (e.g. `--conntrack-capacity N`).
    pub fastpath_extra: Vec<String>,
}

impl DutOptions {
    /// Queues per veth (and fastpath workers): `workers`, at least 1, at most 64.
    pub fn queues(&self) -> u32 {
        u32::try_from(self.workers.clamp(1, 64)).unwrap_or(1)
    }
}

/// A built device under test, ready for trials; dropping it tears it down (the fastpath
/// first, then the namespaces).
#[derive(Debug)]
pub struct Dut {
    /// What it is.
    pub scenario: Scenario,
    // Field order is drop order: the daemon stops before its namespace goes.
    fastpath: Option<Fastpath>,
    /// Its topology.
    pub topo: Topology,
}

impl Dut {
    /// Build the topology for `scenario` and configure it; `tag` makes namespace names unique
    /// within this process. [`HarnessError::Unavailable`] means the system cannot run here.
    pub fn build(scenario: Scenario, tag: &str, opts: &DutOptions) -> Result<Dut, HarnessError> {
        // Check a tortie binary before building anything.
        let fastpath_opts = match scenario.system {
            System::Tortie | System::TortieBypass => Some(fastpath_options(scenario.system, opts)?),
            _ => None,
        };
        let topo = Topology::build(tag, opts.queues())?;
        let fastpath = match (scenario.system, fastpath_opts) {
            (System::Kernel, _) => {
                kernel::configure(&topo, KernelConfig::Plain)?;
                None
            }
            (System::KernelCtIpset, _) => {
                kernel::configure(&topo, KernelConfig::CtIpset(scenario.rules))?;
                None
            }
            (System::KernelIptables, _) => {
                kernel::configure(&topo, KernelConfig::Iptables(scenario.rules))?;
                None
            }
            (System::KernelCtIptables, _) => {
                kernel::configure(&topo, KernelConfig::CtIptables(scenario.rules))?;
                None
            }
            (System::KernelNftables, _) => {
                kernel::configure(&topo, KernelConfig::Nftables(scenario.rules))?;
                None
            }
            (_, Some(fo)) => Some(Fastpath::start(&topo, scenario.rules, &fo)?),
            (_, None) => None,
        };
        Ok(Dut {
            scenario,
            fastpath,
            topo,
        })
    }

    /// Pause the device between its trials (stops an idle fastpath taking CPU from other
    /// systems' trials); the kernel systems have nothing to pause.
    pub fn pause(&self) {
        if let Some(f) = &self.fastpath {
            // Let it drain what is still queued first: stale frames forwarded in the next
            // trial would count there, with old stamps.
            std::thread::sleep(std::time::Duration::from_millis(200));
            f.pause();
        }
    }

    /// Resume the device before a trial and give a fastpath a moment to poll again.
    pub fn resume(&self) {
        if let Some(f) = &self.fastpath {
            f.resume();
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// The fastpath's per-worker counters and drops by reason from its status file (tortie
    /// systems only).
    pub fn fastpath_counters(&self) -> Option<serde_json::Value> {
        let st = self.fastpath.as_ref()?.status()?;
        Some(serde_json::json!({
            "workers": st["workers"],
            "drops_by_reason": st["drops_by_reason"],
        }))
    }
}

fn fastpath_options(system: System, opts: &DutOptions) -> Result<FastpathOptions, HarnessError> {
    let bin = tortie::locate_binary(opts.fastpath_bin.as_deref()).ok_or_else(|| {
        HarnessError::Unavailable(
            "no tortie-fastpath binary (next to tortie-perf, on PATH, or --fastpath-bin)".into(),
        )
    })?;
    let has_bypass = tortie::help_lists(&bin, "--bypass")?;
    let mut extra = opts.fastpath_extra.clone();
    if system == System::TortieBypass {
        if !has_bypass {
            return Err(HarnessError::Unavailable(
                "tortie-fastpath has no --bypass flag: the pipeline cannot be bypassed".into(),
            ));
        }
        extra.push("--bypass".to_string());
    }
    Ok(FastpathOptions {
        workers: opts.queues(),
        bin,
        mode: if opts.fastpath_mode.is_empty() {
            "adaptive".into()
        } else {
            opts.fastpath_mode.clone()
        },
        extra,
    })
}

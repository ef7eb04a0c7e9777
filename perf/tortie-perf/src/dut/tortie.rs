//! tortie-fastpath as device under test: the harness plays tortie-control's part. It creates
//! the ring (`tortie_ring::Producer`), writes one tortie-abi `Snapshot` whose tables make
//! generator → sink forwarding work, and runs `tortie-fastpath --ring PATH` inside the DUT
//! namespace until the harness is done.
//!
//! Tables: the generator-facing `rtr0` is the uplink; the sink-facing `rtr1` is a workload
//! endpoint owning the destination prefix, with an ingress policy program of N rules (N − 1
//! that miss on the destination port, then an allow), so every new flow is classified
//! against the whole rule set and established packets ride conntrack. A `tortie-host` /
//! `tortie-hostk` veth pair stands in for the host interface, as tortie-control creates it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tortie_abi::{
    Action, AddrMatch, Endpoint, EndpointId, EndpointKind, Generation, HostAction, IpVersion,
    Message, Nat, Policy, PolicyProgram, PortMatch, PortRange, Prefix, ProgramId, Route,
    RouteTarget, Rule, RuleId, RuleMatch, Settings, SubnetAddr, Tables, Tier, TierDefault,
};

use super::HarnessError;
use super::topology::{DUT_IN_IF, DUT_IN_MAC, DUT_OUT_IF, GEN_MAC, SINK_MAC, Topology, helper};
use tortie_perf::netns::{self, link, link::VethEnd};

/// Ring data capacity the harness creates (a 10,000-rule snapshot is well under 2 MiB).
const RING_CAPACITY: u64 = 16 << 20;
/// How long the fastpath may take to report `ready` with the snapshot applied.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Interface indexes (inside the DUT namespace) the tables refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DutIfs {
    /// `rtr0`, the uplink.
    pub uplink: u32,
    /// `rtr1`, the workload endpoint toward the sink.
    pub workload: u32,
    /// `tortie-host`.
    pub host: u32,
}

fn v4(a: [u8; 4], len: u8) -> Prefix {
    Prefix {
        addr: IpAddr::V4(Ipv4Addr::from(a)),
        len,
    }
}

/// The ingress program: `rules − 1` UDP rules to the destination prefix that miss on the
/// destination port (10000, 10001, ...; test traffic uses port 9), then allow everything from
/// 198.18.0.0/15 to the prefix. At least one
/// rule (the allow) is always present.
pub fn policy_program(rules: usize) -> PolicyProgram {
    let dest = v4([198, 18, 100, 0], 24);
    let udp_to_dest = |dports: Vec<PortRange>| RuleMatch {
        ip_version: Some(IpVersion::V4),
        protocol: Some(17),
        src: AddrMatch {
            nets: vec![v4([198, 18, 0, 0], 15)],
            ..AddrMatch::default()
        },
        dst: AddrMatch {
            nets: vec![dest],
            ..AddrMatch::default()
        },
        dst_ports: PortMatch {
            ranges: dports,
            ..PortMatch::default()
        },
        ..RuleMatch::default()
    };
    let mut list: Vec<Rule> = (0..rules.saturating_sub(1))
        .map(|i| {
            let port = 10_000 + (i % 50_000) as u16;
            Rule {
                id: RuleId(i as u32 + 1),
                action: Action::Deny,
                matches: udp_to_dest(vec![PortRange { lo: port, hi: port }]),
            }
        })
        .collect();
    // The allow takes any protocol, so TCP (`connrate`) passes too.
    let mut allow = udp_to_dest(Vec::new());
    allow.protocol = None;
    list.push(Rule {
        id: RuleId(rules.max(1) as u32),
        action: Action::Allow,
        matches: allow,
    });
    PolicyProgram {
        id: ProgramId(1),
        tiers: vec![Tier {
            default_action: TierDefault::Deny,
            policies: vec![Policy { rules: list }],
        }],
        profiles: Vec::new(),
    }
}

/// The tables for the topology with a policy of `rules` rules.
pub fn tables(ifs: DutIfs, rules: usize) -> Tables {
    let endpoint = EndpointId(1);
    Tables {
        settings: Settings {
            default_endpoint_to_host: HostAction::Accept,
            node_v4: Some(SubnetAddr {
                addr: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
                subnet_len: 24,
            }),
            uplink_if: ifs.uplink,
            uplink_mac: DUT_IN_MAC,
            gateway_mac: GEN_MAC,
            host_if: ifs.host,
            ..Settings::default()
        },
        endpoints: vec![Endpoint {
            id: endpoint,
            if_index: ifs.workload,
            kind: EndpointKind::Workload,
            mac: SINK_MAC,
            addrs: vec![v4([198, 18, 100, 0], 24)],
            ingress: Some(ProgramId(1)),
            egress: None,
            untracked_ingress: None,
            untracked_egress: None,
            pre_dnat: None,
            forward_ingress: None,
            forward_egress: None,
        }],
        programs: vec![policy_program(rules)],
        ip_sets: Vec::new(),
        routes: vec![
            Route {
                prefix: v4([198, 18, 100, 0], 24),
                target: RouteTarget::Local(endpoint),
            },
            Route {
                prefix: v4([198, 18, 1, 0], 24),
                target: RouteTarget::Uplink,
            },
        ],
        nat: Nat {
            port_lo: 61_000,
            port_hi: 65_535,
            ..Nat::default()
        },
        nodes: Vec::new(),
    }
}

/// Where the `tortie-fastpath` binary is: `explicit`, else next to this executable (a cargo
/// target directory), else on `PATH`.
pub fn locate_binary(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return p.is_file().then(|| p.to_path_buf());
    }
    let sibling = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        // Integration tests run from target/<profile>/deps.
        [
            dir.join("tortie-fastpath"),
            dir.parent()?.join("tortie-fastpath"),
        ]
        .into_iter()
        .find(|p| p.is_file())
    });
    sibling.or_else(|| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| Path::new(d).join("tortie-fastpath"))
            .find(|p| p.is_file())
    })
}

/// Whether `bin --help` lists `flag` (so a mode that needs it can be offered or marked
/// unavailable), and whether the binary answers `--help` at all.
pub fn help_lists(bin: &Path, flag: &str) -> Result<bool, HarnessError> {
    let out = Command::new(bin)
        .arg("--help")
        .output()
        .map_err(|e| HarnessError::Spawn {
            command: format!("{} --help", bin.display()),
            reason: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    if !text.contains("--ring") {
        return Err(HarnessError::Unavailable(
            "tortie-fastpath does not take --ring yet (its --help does not list it)".into(),
        ));
    }
    Ok(text.contains(flag))
}

/// A running tortie-fastpath in the DUT namespace with its ring. Dropping it stops the
/// daemon (SIGTERM, then SIGKILL after 5 s) and removes the ring and status files.
pub struct Fastpath {
    child: Option<Child>,
    dir: PathBuf,
    status: PathBuf,
    // Kept open so the ring file is not reopened as a restart while the daemon runs.
    _producer: tortie_ring::Producer,
}

impl std::fmt::Debug for Fastpath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fastpath").field("dir", &self.dir).finish()
    }
}

/// Options of the fastpath under test.
#[derive(Debug, Clone)]
pub struct FastpathOptions {
    /// The binary.
    pub bin: PathBuf,
    /// `--mode`.
    pub mode: String,
    /// Extra flags (e.g. `--bypass`).
    pub extra: Vec<String>,
    /// `--workers` (one per queue of each veth).
    pub workers: u32,
}

impl Fastpath {
    /// Create the host veth pair, the ring with the snapshot, start the daemon and wait until
    /// its status file says it is ready with generation 1 applied.
    pub fn start(
        topo: &Topology,
        rules: usize,
        opts: &FastpathOptions,
    ) -> Result<Fastpath, HarnessError> {
        // The host-facing veth pair the daemon needs (its host interface and the kernel's).
        netns::netlink(Some(&topo.dut_ns), async |h| {
            let host = VethEnd {
                name: "tortie-host",
                mac: [0x02, 0, 0, 0, 0xee, 1],
            };
            let hostk = VethEnd {
                name: "tortie-hostk",
                mac: [0xee; 6],
            };
            link::add_veth(&h, host, hostk, None, 1).await?;
            for dev in ["tortie-host", "tortie-hostk"] {
                link::set_up(&h, dev).await?;
            }
            Ok(())
        })?;
        // The fastpath owns forwarding: the kernel must not forward a second copy.
        topo.dut_sysctl("net.ipv4.ip_forward", "0")?;
        let ifs = DutIfs {
            uplink: topo.dut_ifindex(DUT_IN_IF)?,
            workload: topo.dut_ifindex(DUT_OUT_IF)?,
            host: topo.dut_ifindex("tortie-host")?,
        };
        let dir = std::env::temp_dir().join(format!("{}-fastpath", topo.dut_ns));
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::Io {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let ring = dir.join("ring");
        let status = dir.join("status.json");
        let mut producer = tortie_ring::Producer::create_or_open(&ring, RING_CAPACITY)
            .map_err(|e| HarnessError::Unavailable(format!("creating the ring: {e}")))?;
        let msg = Message::Snapshot {
            generation: Generation(1),
            tables: tables(ifs, rules),
        };
        producer
            .try_send(tortie_ring::MessageKind::SNAPSHOT, 1, &msg.encode())
            .map_err(|e| HarnessError::Unavailable(format!("writing the snapshot: {e:?}")))?;
        let log = dir.join("fastpath.log");
        let log_file = std::fs::File::create(&log).map_err(|e| HarnessError::Io {
            path: log.clone(),
            reason: e.to_string(),
        })?;
        // With the namespace's own /sys, where the daemon looks interface names up.
        let child = netns::exec::command(&helper()?, &topo.dut_ns, true, &opts.bin)
            .arg("--ring")
            .arg(&ring)
            .arg("--status-file")
            .arg(&status)
            .arg("--workers")
            .arg(opts.workers.max(1).to_string())
            .args(["--mode", &opts.mode])
            .args(&opts.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| HarnessError::Spawn {
                command: format!("{} --ring ...", opts.bin.display()),
                reason: e.to_string(),
            })?;
        let mut fp = Fastpath {
            child: Some(child),
            dir,
            status,
            _producer: producer,
        };
        fp.wait_ready(&log)?;
        Ok(fp)
    }

    fn wait_ready(&mut self, log: &Path) -> Result<(), HarnessError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(st)) = child.try_wait()
            {
                return Err(HarnessError::Unavailable(format!(
                    "tortie-fastpath exited ({st}) before it was ready: {}",
                    log_tail(log)
                )));
            }
            if let Ok(text) = std::fs::read_to_string(&self.status)
                && status_ready(&text)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let status = std::fs::read_to_string(&self.status)
                    .unwrap_or_else(|e| format!("(no status file: {e})"));
                return Err(HarnessError::Unavailable(format!(
                    "tortie-fastpath did not report ready with generation 1 within \
                     {READY_TIMEOUT:?}; status: {}; log: {}",
                    status.trim(),
                    log_tail(log)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The last lines of the daemon's log, for error messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut lines: Vec<&str> = text.lines().rev().take(8).collect();
    lines.reverse();
    lines.join(" | ")
}

/// Whether a status file (the node contract's JSON) says ready with generation ≥ 1 applied.
pub fn status_ready(text: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    v["ready"] == true && v["generation"].as_u64().is_some_and(|g| g >= 1)
}

impl Fastpath {
    fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    }

    /// Stop the daemon's process (SIGSTOP) while other systems are measured, so its idle
    /// polling takes no CPU from them.
    pub fn pause(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    /// Let it run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    /// The daemon's status file (the node contract's JSON), waiting (at most 3 s) for one
    /// written after this call: it is rewritten once a second, so an older one can miss the
    /// last trial's packets. The last one read when none is newer; `None` if unreadable.
    pub fn status(&self) -> Option<serde_json::Value> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let v: Option<serde_json::Value> = std::fs::read_to_string(&self.status)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            let fresh = v
                .as_ref()
                .and_then(|v| v["updated_unix"].as_u64())
                .is_some_and(|u| u > now);
            if fresh || Instant::now() >= deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Fastpath {
    fn drop(&mut self) {
        // A stopped process would not act on SIGTERM.
        self.resume();
        self.signal(nix::sys::signal::Signal::SIGTERM);
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_has_misses_then_one_allow() {
        let p = policy_program(1000);
        let rules: Vec<&Rule> = p.rules().collect();
        assert_eq!(rules.len(), 1000);
        assert!(
            rules[..999]
                .iter()
                .all(|r| r.action == Action::Deny && r.matches.dst_ports.ranges[0].lo >= 10_000)
        );
        assert_eq!(rules[999].action, Action::Allow);
        assert!(rules[999].matches.dst_ports.ranges.is_empty());
        assert_eq!(rules[999].matches.protocol, None, "TCP is allowed too");
        let ids: std::collections::HashSet<_> = rules.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), 1000, "rule ids are unique");
        assert_eq!(policy_program(0).rules().count(), 1);
    }

    #[test]
    fn snapshot_round_trips_through_the_abi() {
        let ifs = DutIfs {
            uplink: 5,
            workload: 7,
            host: 9,
        };
        let msg = Message::Snapshot {
            generation: Generation(1),
            tables: tables(ifs, 10_000),
        };
        let bytes = msg.encode();
        let (back, used) = Message::decode(&bytes).expect("decodes");
        assert_eq!(used, bytes.len());
        assert_eq!(back, msg);
        assert!(
            (bytes.len() as u64) < RING_CAPACITY / 4,
            "{} bytes",
            bytes.len()
        );
    }

    #[test]
    fn readiness_needs_ready_and_a_generation() {
        assert!(status_ready(r#"{"ready":true,"generation":1}"#));
        assert!(!status_ready(r#"{"ready":false,"generation":1}"#));
        assert!(!status_ready(r#"{"ready":true,"generation":0}"#));
        assert!(!status_ready("{not json"));
    }
}

//! The three-namespace test topology every device under test sits in:
//!
//! ```text
//!  generator ns              DUT ns                       sink ns
//!  [gen0 198.18.1.1/24] ⇄ [rtr0 198.18.1.2 | rtr1 198.18.2.2] ⇄ [sink0 198.18.2.1/24]
//! ```
//!
//! Test traffic goes from 198.18.1.1 to 198.18.100.1 (a prefix routed via the sink), so the DUT
//! must forward it. Addresses are all inside 198.18.0.0/15 (RFC 2544 appendix C.2.2, the
//! benchmarking range). MACs are fixed and neighbour entries permanent, so no ARP happens
//! during a run. Interface names repeat across topologies (each lives in its own namespaces);
//! namespace names carry a per-process tag. Everything is deleted on drop.
//!
//! Built through netlink ([`tortie_perf::netns`]); no `ip` binary is needed. Each veth gets
//! as many queues as the topology is built with, one per fastpath worker.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use tortie_perf::netns::{self, link, link::VethEnd};

use super::HarnessError;

/// Generator-side interface name (in the generator namespace).
pub const GEN_IF: &str = "gen0";
/// DUT interface facing the generator.
pub const DUT_IN_IF: &str = "rtr0";
/// DUT interface facing the sink.
pub const DUT_OUT_IF: &str = "rtr1";
/// Sink-side interface name (in the sink namespace).
pub const SINK_IF: &str = "sink0";
/// MAC of `gen0`.
pub const GEN_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 1];
/// MAC of `rtr0`.
pub const DUT_IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 2];
/// MAC of `rtr1`.
pub const DUT_OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 2, 2];
/// MAC of `sink0`.
pub const SINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 2, 1];
/// Generator address.
pub const GEN_ADDR: &str = "198.18.1.1";
/// Further client addresses of the smoltcp connection-rate client (permanent neighbours of
/// the DUT, like the generator's own address), so source tuples repeat late.
pub const CLIENT_ADDRS: [&str; 7] = [
    "198.18.1.10",
    "198.18.1.11",
    "198.18.1.12",
    "198.18.1.13",
    "198.18.1.14",
    "198.18.1.15",
    "198.18.1.16",
];
/// DUT address on the generator side.
pub const DUT_IN_ADDR: &str = "198.18.1.2";
/// DUT address on the sink side.
pub const DUT_OUT_ADDR: &str = "198.18.2.2";
/// Sink address.
pub const SINK_ADDR: &str = "198.18.2.1";
/// The generator's subnet.
pub const GEN_NET: &str = "198.18.1.0/24";
/// The routed destination prefix test traffic is sent to.
pub const DEST_NET: &str = "198.18.100.0/24";
/// First destination address of test traffic.
pub const DEST_ADDR: &str = "198.18.100.1";

/// `aa:bb:..` text of a MAC.
pub fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The `tortie-perf` binary that runs programs inside namespaces (`netns-exec` mode): this
/// executable.
pub fn helper() -> Result<PathBuf, HarnessError> {
    std::env::current_exe().map_err(|e| HarnessError::Io {
        path: PathBuf::from("/proc/self/exe"),
        reason: e.to_string(),
    })
}

/// Run `program args` (optionally inside network namespace `ns`, through this binary's
/// `netns-exec` mode), feeding `stdin`; an error names the command and its stderr.
pub fn exec(
    ns: Option<&str>,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, HarnessError> {
    let mut cmd = match ns {
        Some(ns) => netns::exec::command(&helper()?, ns, false, program),
        None => Command::new(program),
    };
    cmd.args(args);
    run_command(cmd, &format!("{program} {}", args.join(" ")), stdin)
}

/// Run a prepared command to completion, feeding `stdin`; `text` names it in errors.
pub fn run_command(
    mut cmd: Command,
    text: &str,
    stdin: Option<&str>,
) -> Result<String, HarnessError> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let text = text.to_string();
    let mut child = cmd.spawn().map_err(|e| HarnessError::Spawn {
        command: text.clone(),
        reason: e.to_string(),
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Input is small (rule sets of at most tens of thousands of lines); a failed write
        // shows up as the command's own error below.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| HarnessError::Spawn {
        command: text.clone(),
        reason: e.to_string(),
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HarnessError::Command {
            command: if text.len() > 200 {
                format!("{}...", &text[..200])
            } else {
                text
            },
            status: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// One generator → DUT → sink topology. Dropping it deletes its namespaces (and with them
/// the veths).
#[derive(Debug)]
pub struct Topology {
    /// Generator namespace name.
    pub gen_ns: String,
    /// DUT namespace name.
    pub dut_ns: String,
    /// Sink namespace name.
    pub sink_ns: String,
    /// Transmit and receive queues of every veth.
    pub queues: u32,
}

impl Topology {
    /// Build the namespaces, veths, addresses, routes and neighbours. `tag` keeps names
    /// distinct between topologies of one process (at most 8 characters are used).
    /// Every veth gets `queues` transmit and receive queues (1 to 64).
    pub fn build(tag: &str, queues: u32) -> Result<Topology, HarnessError> {
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(remove_stale);
        let pid = std::process::id();
        let tag: String = tag
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        let t = Topology {
            gen_ns: format!("tperf-{pid}-{tag}-gen"),
            dut_ns: format!("tperf-{pid}-{tag}-dut"),
            sink_ns: format!("tperf-{pid}-{tag}-sink"),
            queues,
        };
        // From here on, a failure drops `t`, which deletes whatever was created.
        t.create(queues)?;
        Ok(t)
    }

    /// `/run/netns/NAME` of a namespace.
    pub fn ns_path(name: &str) -> PathBuf {
        PathBuf::from(format!("/run/netns/{name}"))
    }

    fn create(&self, queues: u32) -> Result<(), HarnessError> {
        let (g, d, s) = (
            self.gen_ns.clone(),
            self.dut_ns.clone(),
            self.sink_ns.clone(),
        );
        for ns in [&g, &d, &s] {
            netns::create(ns)?;
        }
        let v4 = |a: &str| -> Ipv4Addr { a.parse().unwrap_or(Ipv4Addr::UNSPECIFIED) };
        let (gen_a, dut_in, dut_out, sink_a, dest) = (
            v4(GEN_ADDR),
            v4(DUT_IN_ADDR),
            v4(DUT_OUT_ADDR),
            v4(SINK_ADDR),
            v4(DEST_ADDR),
        );
        let clients: Vec<Ipv4Addr> = CLIENT_ADDRS.iter().map(|a| v4(a)).collect();
        let net = |n: &str| -> (Ipv4Addr, u8) {
            let (a, l) = n.split_once('/').unwrap_or((n, "32"));
            (v4(a), l.parse().unwrap_or(32))
        };
        let ((gen_net, gen_len), (dest_net, dest_len)) = (net(GEN_NET), net(DEST_NET));
        // Generator side: gen0 here, rtr0 straight into the DUT; routes toward the sink.
        let dut = d.clone();
        netns::netlink(Some(&g), async move |h| {
            let gen_end = VethEnd {
                name: GEN_IF,
                mac: GEN_MAC,
            };
            let dut_end = VethEnd {
                name: DUT_IN_IF,
                mac: DUT_IN_MAC,
            };
            link::add_veth(&h, gen_end, dut_end, Some(&dut), queues).await?;
            link::add_address(&h, GEN_IF, IpAddr::V4(gen_a), 24).await?;
            link::set_up(&h, GEN_IF).await?;
            // No ARP during a run: every next hop is a permanent neighbour.
            link::add_neighbour(&h, GEN_IF, IpAddr::V4(dut_in), DUT_IN_MAC).await?;
            link::add_route_v4(&h, dest_net, dest_len, dut_in, GEN_IF).await
        })?;
        // DUT: rtr1 here, sink0 straight into the sink namespace.
        let sink = s.clone();
        netns::netlink(Some(&d), async move |h| {
            let out_end = VethEnd {
                name: DUT_OUT_IF,
                mac: DUT_OUT_MAC,
            };
            let sink_end = VethEnd {
                name: SINK_IF,
                mac: SINK_MAC,
            };
            link::add_veth(&h, out_end, sink_end, Some(&sink), queues).await?;
            link::add_address(&h, DUT_IN_IF, IpAddr::V4(dut_in), 24).await?;
            link::add_address(&h, DUT_OUT_IF, IpAddr::V4(dut_out), 24).await?;
            for dev in [DUT_IN_IF, DUT_OUT_IF] {
                link::set_up(&h, dev).await?;
            }
            link::add_neighbour(&h, DUT_IN_IF, IpAddr::V4(gen_a), GEN_MAC).await?;
            for c in clients {
                link::add_neighbour(&h, DUT_IN_IF, IpAddr::V4(c), GEN_MAC).await?;
            }
            link::add_neighbour(&h, DUT_OUT_IF, IpAddr::V4(sink_a), SINK_MAC).await?;
            link::add_route_v4(&h, dest_net, dest_len, sink_a, DUT_OUT_IF).await
        })?;
        // Sink: it owns the first destination address (for TCP in `connrate`) and routes
        // replies back through the DUT.
        netns::netlink(Some(&s), async move |h| {
            link::add_address(&h, SINK_IF, IpAddr::V4(sink_a), 24).await?;
            link::add_address(&h, SINK_IF, IpAddr::V4(dest), 32).await?;
            link::set_up(&h, SINK_IF).await?;
            link::add_neighbour(&h, SINK_IF, IpAddr::V4(dut_out), DUT_OUT_MAC).await?;
            link::add_route_v4(&h, gen_net, gen_len, dut_out, SINK_IF).await
        })?;
        Ok(())
    }

    /// Make the end hosts' kernels put full checksums in what they send (`ethtool -K DEV tx
    /// off` on `gen0` and `sink0`): an AF_XDP forwarder gets the bare frame, without the
    /// skb's "checksum left to hardware" mark, and would pass on a partial checksum. Only the
    /// kernel-socket mode of `connrate` needs it (the generator's frames and the smoltcp
    /// endpoints carry full checksums); it uses the `ethtool` binary.
    pub fn end_hosts_full_checksums(&self) -> Result<(), HarnessError> {
        exec(
            Some(&self.gen_ns),
            "ethtool",
            &["-K", GEN_IF, "tx", "off"],
            None,
        )?;
        exec(
            Some(&self.sink_ns),
            "ethtool",
            &["-K", SINK_IF, "tx", "off"],
            None,
        )?;
        Ok(())
    }

    /// Interface index of `dev` inside the DUT namespace.
    pub fn dut_ifindex(&self, dev: &str) -> Result<u32, HarnessError> {
        let dev = dev.to_string();
        Ok(netns::netlink(Some(&self.dut_ns), async move |h| {
            link::ifindex(&h, &dev).await
        })?)
    }

    /// Set a sysctl inside the DUT namespace (`/proc/sys/net` follows the writer's namespace).
    pub fn dut_sysctl(&self, key: &str, value: &str) -> Result<(), HarnessError> {
        Ok(netns::sysctl(Some(&self.dut_ns), key, value)?)
    }
}

/// The process id in a namespace name this harness made (`tperf-PID-...`).
pub fn owner_pid(ns: &str) -> Option<u32> {
    ns.strip_prefix("tperf-")?.split('-').next()?.parse().ok()
}

/// Delete namespaces (and fastpath temporary directories) left by a harness process that no
/// longer runs (one killed by a signal cannot run its destructors).
fn remove_stale() {
    for name in netns::list() {
        if let Some(pid) = owner_pid(&name)
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = netns::delete(&name);
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("{name}-fastpath")));
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.gen_ns, &self.dut_ns, &self.sink_ns] {
            let _ = netns::delete(ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_only_our_names() {
        assert_eq!(owner_pid("tperf-1234-c0-dut"), Some(1234));
        assert_eq!(owner_pid("tperf-x-c0-dut"), None);
        assert_eq!(owner_pid("tortie-lab-node1"), None);
        assert_eq!(mac_text([2, 0, 0, 0, 1, 0xab]), "02:00:00:00:01:ab");
    }
}

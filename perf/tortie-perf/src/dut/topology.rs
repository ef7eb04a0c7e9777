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
//! Built with the `ip` binary (iproute2).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use std::io::Write as _;

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

/// Run `program args` (optionally inside network namespace `ns`, via `nsenter`, which keeps
/// the mounts as they are), feeding `stdin`; an error names the command and its stderr.
pub fn exec(
    ns: Option<&str>,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, HarnessError> {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/run/netns/{ns}")).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let text = format!("{program} {}", args.join(" "));
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

fn ip(args: &[&str]) -> Result<(), HarnessError> {
    exec(None, "ip", args, None).map(drop)
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
}

impl Topology {
    /// Build the namespaces, veths, addresses, routes and neighbours. `tag` keeps names
    /// distinct between topologies of one process (at most 8 characters are used).
    pub fn build(tag: &str) -> Result<Topology, HarnessError> {
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
        };
        // From here on, a failure drops `t`, which deletes whatever was created.
        t.create()?;
        Ok(t)
    }

    /// `/run/netns/NAME` of a namespace.
    pub fn ns_path(name: &str) -> PathBuf {
        PathBuf::from(format!("/run/netns/{name}"))
    }

    fn create(&self) -> Result<(), HarnessError> {
        let (g, d, s) = (
            self.gen_ns.as_str(),
            self.dut_ns.as_str(),
            self.sink_ns.as_str(),
        );
        for ns in [g, d, s] {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&[
            "link", "add", GEN_IF, "netns", g, "type", "veth", "peer", "name", DUT_IN_IF, "netns",
            d,
        ])?;
        ip(&[
            "link", "add", DUT_OUT_IF, "netns", d, "type", "veth", "peer", "name", SINK_IF,
            "netns", s,
        ])?;
        let ifs = [
            (g, GEN_IF, GEN_MAC, GEN_ADDR),
            (d, DUT_IN_IF, DUT_IN_MAC, DUT_IN_ADDR),
            (d, DUT_OUT_IF, DUT_OUT_MAC, DUT_OUT_ADDR),
            (s, SINK_IF, SINK_MAC, SINK_ADDR),
        ];
        for (ns, dev, mac, addr) in ifs {
            ip(&["-n", ns, "link", "set", dev, "address", &mac_text(mac)])?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        // No ARP during a run: every next hop is a permanent neighbour.
        let neigh = [
            (g, GEN_IF, DUT_IN_ADDR, DUT_IN_MAC),
            (d, DUT_IN_IF, GEN_ADDR, GEN_MAC),
            (d, DUT_OUT_IF, SINK_ADDR, SINK_MAC),
            (s, SINK_IF, DUT_OUT_ADDR, DUT_OUT_MAC),
        ];
        for (ns, dev, addr, mac) in neigh {
            ip(&[
                "-n",
                ns,
                "neigh",
                "replace",
                addr,
                "lladdr",
                &mac_text(mac),
                "nud",
                "permanent",
                "dev",
                dev,
            ])?;
        }
        ip(&[
            "-n", d, "route", "add", DEST_NET, "via", SINK_ADDR, "dev", DUT_OUT_IF,
        ])?;
        ip(&[
            "-n",
            g,
            "route",
            "add",
            DEST_NET,
            "via",
            DUT_IN_ADDR,
            "dev",
            GEN_IF,
        ])?;
        // The end hosts' kernels must put full checksums in what they send: an AF_XDP
        // forwarder gets the bare frame, without the skb's "checksum left to hardware" mark,
        // and would pass on a partial checksum. (The generator's AF_XDP frames carry full
        // checksums anyway; this matters for the kernel TCP of `connrate`.)
        exec(Some(g), "ethtool", &["-K", GEN_IF, "tx", "off"], None)?;
        exec(Some(s), "ethtool", &["-K", SINK_IF, "tx", "off"], None)?;
        // The sink owns the first destination address (for TCP in `connrate`) and routes
        // replies back through the DUT.
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{DEST_ADDR}/32"),
            "dev",
            SINK_IF,
        ])?;
        ip(&[
            "-n",
            s,
            "route",
            "add",
            GEN_NET,
            "via",
            DUT_OUT_ADDR,
            "dev",
            SINK_IF,
        ])?;
        Ok(())
    }

    /// Interface index of `dev` inside the DUT namespace.
    pub fn dut_ifindex(&self, dev: &str) -> Result<u32, HarnessError> {
        let out = exec(
            None,
            "ip",
            &["-n", &self.dut_ns, "-o", "link", "show", dev],
            None,
        )?;
        out.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| HarnessError::Parse {
                what: format!("ifindex of {dev} in `ip -o link show` output"),
                text: out.clone(),
            })
    }

    /// Set a sysctl inside the DUT namespace (`/proc/sys/net` follows the writer's namespace).
    pub fn dut_sysctl(&self, key: &str, value: &str) -> Result<(), HarnessError> {
        exec(
            Some(&self.dut_ns),
            "sysctl",
            &["-q", "-w", &format!("{key}={value}")],
            None,
        )
        .map(drop)
    }
}

/// The process id in a namespace name this harness made (`tperf-PID-...`).
pub fn owner_pid(ns: &str) -> Option<u32> {
    ns.strip_prefix("tperf-")?.split('-').next()?.parse().ok()
}

/// Delete namespaces (and fastpath temporary directories) left by a harness process that no
/// longer runs (one killed by a signal cannot run its destructors).
fn remove_stale() {
    let Ok(list) = exec(None, "ip", &["netns", "list"], None) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        if let Some(pid) = owner_pid(name)
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = ip(&["netns", "del", name]);
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("{name}-fastpath")));
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.gen_ns, &self.dut_ns, &self.sink_ns] {
            let _ = ip(&["netns", "del", ns]);
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

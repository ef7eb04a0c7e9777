//! The kernel as device under test: plain IP forwarding, forwarding with conntrack and one
//! iptables rule matching an ipset, forwarding through N linear iptables rules, and the same N
//! rules as an nftables chain.
//!
//! Rules are loaded in one transaction (`iptables-legacy-restore`, `ipset restore`, `nft -f -`)
//! so 10,000 of them take well under a second. Linear rules follow the reference method: every
//! rule's addresses contain the test flow and only its destination port misses, so each packet
//! walks all of them before the final accept.

use super::HarnessError;
use super::topology::{DEST_NET, DUT_IN_IF, GEN_ADDR, Topology, exec, helper, run_command};
use tortie_perf::netns::exec::write_command;

/// First destination port of the non-matching linear rules (test traffic goes to port 9).
const MISS_PORT_BASE: u32 = 10_000;

/// `iptables-legacy-restore` input: `rules` non-matching FORWARD rules, then accept.
pub fn iptables_rules(rules: usize) -> String {
    let mut s =
        String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for i in 0..rules {
        let port = MISS_PORT_BASE + (i as u32 % 50_000);
        s.push_str(&format!(
            "-A FORWARD -s 198.18.0.0/15 -d {DEST_NET} -p udp -m udp --dport {port} -j DROP\n"
        ));
    }
    s.push_str("-A FORWARD -j ACCEPT\nCOMMIT\n");
    s
}

/// `ipset restore` input: a `hash:net` set of `entries` networks, one of which (the
/// generator's /24) matches the test traffic's source.
pub fn ipset_entries(name: &str, entries: usize) -> String {
    let mut s = format!("create {name} hash:net family inet hashsize 4096 maxelem 1000000\n");
    s.push_str(&format!("add {name} {GEN_ADDR}/24\n"));
    for i in 1..entries {
        // 198.19.x.y/32: inside the benchmarking range, never the test traffic's source.
        s.push_str(&format!(
            "add {name} 198.19.{}.{}/32\n",
            (i / 250) % 256,
            i % 250 + 1
        ));
    }
    s
}

/// `iptables-legacy-restore` input for conntrack + ipset: conntrack is forced on for every
/// packet (`--ctstate INVALID` needs the lookup) and established flows are accepted first,
/// as a stateful firewall does; unidirectional UDP stays NEW, so test traffic never takes
/// that shortcut and every packet reaches the set match.
pub fn ct_ipset_rules(set: &str) -> String {
    format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A FORWARD -m conntrack --ctstate INVALID -j DROP\n\
         -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
         -A FORWARD -m set --match-set {set} src -j ACCEPT\nCOMMIT\n"
    )
}

/// `iptables-legacy-restore` input for conntrack + linear rules: established flows accepted
/// first, then `rules` non-matching rules that every new flow (and every packet of
/// unidirectional UDP, which stays NEW) walks, then accept.
pub fn ct_iptables_rules(rules: usize) -> String {
    iptables_rules(rules).replacen(
        ":OUTPUT ACCEPT [0:0]\n",
        ":OUTPUT ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\n\
         -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n",
        1,
    )
}

/// `nft -f -` input: the linear rules as one nftables chain.
pub fn nft_rules(rules: usize) -> String {
    let mut s = String::from(
        "table ip tperf {\n chain forward {\n  type filter hook forward priority 0; policy drop;\n",
    );
    for i in 0..rules {
        let port = MISS_PORT_BASE + (i as u32 % 50_000);
        s.push_str(&format!(
            "  ip saddr 198.18.0.0/15 ip daddr {DEST_NET} udp dport {port} drop\n"
        ));
    }
    s.push_str("  accept\n }\n}\n");
    s
}

/// How the kernel is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelConfig {
    /// IP forwarding only.
    Plain,
    /// Conntrack plus one rule matching an ipset of this many entries.
    CtIpset(usize),
    /// This many linear iptables (legacy) rules.
    Iptables(usize),
    /// Conntrack, established flows accepted first, then this many linear rules.
    CtIptables(usize),
    /// This many linear nftables rules.
    Nftables(usize),
}

/// RPS mask (hex) that steers the DUT's receive processing to the last CPU, away from the
/// generator (pinned to CPU 0); `None` on a single CPU.
pub fn rps_mask(cpus: usize) -> Option<String> {
    (cpus >= 2).then(|| {
        let last = cpus - 1;
        // sysfs takes comma-separated 32-bit hex words, most significant first.
        let mut words = vec![0u32; last / 32 + 1];
        words[last / 32] = 1 << (last % 32);
        words
            .iter()
            .rev()
            .map(|w| format!("{w:x}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Turn on forwarding in the DUT namespace and load the rules for `config`.
///
/// The generator's AF_XDP transmit on veth runs the peer's receive path in its own syscall
/// unless RPS moves it: without RPS the kernel would forward on the generator's CPU and
/// throttle it. So the DUT's generator-facing interface gets RPS to the last CPU, as in the
/// project's reference method (written through this binary's `netns-exec` mode, which mounts
/// the namespace's own sysfs).
pub fn configure(topo: &Topology, config: KernelConfig) -> Result<(), HarnessError> {
    topo.dut_sysctl("net.ipv4.ip_forward", "1")?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if let Some(mask) = rps_mask(cpus) {
        let writes: Vec<(String, String)> = (0..topo.queues)
            .map(|q| {
                (
                    format!("/sys/class/net/{DUT_IN_IF}/queues/rx-{q}/rps_cpus"),
                    mask.clone(),
                )
            })
            .collect();
        let cmd = write_command(&helper()?, &topo.dut_ns, &writes);
        run_command(cmd, &format!("write rps_cpus of {DUT_IN_IF}"), None)?;
    }
    for dev in ["all", "default", "rtr0", "rtr1"] {
        topo.dut_sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "0")?;
    }
    let ns = Some(topo.dut_ns.as_str());
    match config {
        KernelConfig::Plain => Ok(()),
        KernelConfig::CtIpset(entries) => {
            exec(
                ns,
                "ipset",
                &["restore"],
                Some(&ipset_entries("tperf", entries)),
            )?;
            exec(
                ns,
                "iptables-legacy-restore",
                &[],
                Some(&ct_ipset_rules("tperf")),
            )?;
            Ok(())
        }
        KernelConfig::Iptables(n) => {
            exec(ns, "iptables-legacy-restore", &[], Some(&iptables_rules(n))).map(drop)
        }
        KernelConfig::CtIptables(n) => exec(
            ns,
            "iptables-legacy-restore",
            &[],
            Some(&ct_iptables_rules(n)),
        )
        .map(drop),
        KernelConfig::Nftables(n) => exec(ns, "nft", &["-f", "-"], Some(&nft_rules(n))).map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_rules_all_miss_before_the_accept() {
        let r = iptables_rules(1000);
        let lines: Vec<&str> = r.lines().filter(|l| l.starts_with("-A FORWARD")).collect();
        assert_eq!(lines.len(), 1001);
        assert_eq!(lines[1000], "-A FORWARD -j ACCEPT");
        // Test traffic goes to port 9: no DROP rule may name it.
        assert!(
            lines[..1000]
                .iter()
                .all(|l| l.contains("--dport 1") && !l.contains("--dport 9 "))
        );
        assert!(r.ends_with("COMMIT\n"));
        let n = nft_rules(10);
        assert_eq!(n.matches(" drop\n").count(), 10);
        assert!(n.contains("policy drop;") && n.contains("  accept\n"));
    }

    #[test]
    fn rps_mask_picks_the_last_cpu() {
        assert_eq!(rps_mask(1), None);
        assert_eq!(rps_mask(2).as_deref(), Some("2"));
        assert_eq!(rps_mask(16).as_deref(), Some("8000"));
        assert_eq!(rps_mask(33).as_deref(), Some("1,0"));
    }

    #[test]
    fn ipset_holds_the_source_net_and_distinct_fillers() {
        let s = ipset_entries("x", 1000);
        let adds: Vec<&str> = s.lines().filter(|l| l.starts_with("add x ")).collect();
        assert_eq!(adds.len(), 1000);
        assert_eq!(adds[0], "add x 198.18.1.1/24");
        let uniq: std::collections::HashSet<_> = adds.iter().collect();
        assert_eq!(uniq.len(), 1000);
        assert!(ct_ipset_rules("x").contains("--match-set x src -j ACCEPT"));
        let ct = ct_iptables_rules(10);
        let lines: Vec<&str> = ct.lines().filter(|l| l.starts_with("-A FORWARD")).collect();
        assert_eq!(lines.len(), 13);
        assert!(lines[1].contains("ESTABLISHED,RELATED -j ACCEPT"), "{ct}");
        assert_eq!(lines[12], "-A FORWARD -j ACCEPT");
    }
}

//! The lab's datastore: an embedded SQLite file in the run directory, written through
//! `tortiectl` like an operator would, with the pool, the nodes and one profile per
//! Kubernetes-style namespace.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Result;
use crate::exec::{run, run_with_stdin};

use super::plan::{
    NODES, POOL_BLOCK_SIZE, POOL_CIDR, POOL_NAME, POOL6_BLOCK_SIZE, POOL6_CIDR, POOL6_NAME,
};

/// `tortiectl` bound to one datastore.
#[derive(Debug, Clone)]
pub struct Tortiectl {
    /// The binary.
    pub program: PathBuf,
    /// The SQLite datastore file.
    pub datastore: PathBuf,
}

impl Tortiectl {
    /// `tortiectl` from `bin_dir` on the SQLite file `datastore`.
    pub fn new(bin_dir: &Path, datastore: &Path) -> Tortiectl {
        Tortiectl {
            program: bin_dir.join("tortiectl"),
            datastore: datastore.to_path_buf(),
        }
    }

    /// The environment every datastore client of the lab gets.
    pub fn env(&self) -> Vec<(String, String)> {
        datastore_env(&self.datastore)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.envs(self.env());
        command
    }

    /// Runs `tortiectl ARGS` and returns its standard output.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let output = run(self.command().args(args))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `tortiectl ARGS` and returns its output and whether it succeeded (for commands
    /// whose failure is itself worth showing).
    pub fn try_run(&self, args: &[&str]) -> Result<(bool, String)> {
        let output = crate::exec::output_with_stdin(self.command().args(args), None)?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Ok((output.status.success(), text))
    }

    /// `tortiectl apply -f -` with `manifest` on standard input.
    pub fn apply(&self, manifest: &str) -> Result<String> {
        let output = run_with_stdin(self.command().args(["apply", "-f", "-"]), Some(manifest))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `tortiectl delete -f -` with `manifest` on standard input, ignoring what is absent.
    pub fn delete(&self, manifest: &str) -> Result<String> {
        let output = run_with_stdin(
            self.command()
                .args(["delete", "--skip-not-exists", "-f", "-"]),
            Some(manifest),
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// The Calico-style variables that point a client (tortiectl, tortie-control) at the lab's
/// datastore.
pub fn datastore_env(datastore: &Path) -> Vec<(String, String)> {
    vec![
        ("DATASTORE_TYPE".into(), "sqlite".into()),
        ("SQLITE_PATH".into(), datastore.display().to_string()),
    ]
}

/// The lab's IPv4 pool: CrossSubnet IP-in-IP (native between node1 and node2, encapsulated to
/// node3), with outgoing NAT.
pub fn pool_manifest() -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: {POOL_NAME}
spec:
  cidr: {POOL_CIDR}
  blockSize: {POOL_BLOCK_SIZE}
  ipipMode: CrossSubnet
  vxlanMode: Never
  natOutgoing: true
  nodeSelector: all()
"
    )
}

/// The lab's IPv6 pool (`lab up --ipv6`): native routing (IP-in-IP carries IPv4 only), NAT
/// toward the outside.
pub fn pool6_manifest() -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: {POOL6_NAME}
spec:
  cidr: {POOL6_CIDR}
  blockSize: {POOL6_BLOCK_SIZE}
  ipipMode: Never
  vxlanMode: Never
  natOutgoing: true
  nodeSelector: all()
"
    )
}

/// Node resources with each node's uplink address and subnet (what IP-in-IP CrossSubnet
/// decisions are made from), as a node agent registers them.
pub fn nodes_manifest(ipv6: bool) -> String {
    NODES
        .iter()
        .map(|node| {
            format!(
                "apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: {}
spec:
  bgp:
    ipv4Address: {}
{}",
                node.name,
                node.addr_cidr(),
                if ipv6 {
                    format!("    ipv6Address: {}\n", node.addr6_cidr())
                } else {
                    String::new()
                }
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The profile Calico's Kubernetes controllers create for a namespace: allow everything (policy
/// narrows it), and label endpoints with their namespace's name.
pub fn namespace_profile_manifest(namespace: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: kns.{namespace}
spec:
  ingress:
  - action: Allow
  egress:
  - action: Allow
  labelsToApply:
    pcns.projectcalico.org/name: {namespace}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_carry_the_lab_settings() {
        let pool = pool_manifest();
        assert!(pool.contains("cidr: 198.19.0.0/20"));
        assert!(pool.contains("blockSize: 26"));
        assert!(pool.contains("ipipMode: CrossSubnet"));
        assert!(pool.contains("natOutgoing: true"));
        let nodes = nodes_manifest(false);
        assert_eq!(nodes.matches("kind: Node").count(), 3);
        assert!(nodes.contains("ipv4Address: 198.18.2.13/24"));
        assert!(!nodes.contains("ipv6Address"));
        assert!(nodes_manifest(true).contains("    ipv6Address: 2001:db8:0:2::13/64\n"));
        assert!(pool6_manifest().contains("cidr: 2001:db8:1::/112"));
        assert!(namespace_profile_manifest("ns-a").contains("name: kns.ns-a"));
    }
}

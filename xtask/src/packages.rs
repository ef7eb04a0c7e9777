//! Debian packages that the builds and the tests need, installed when missing.

use std::process::Command;

/// Packages needed to build the workspace (xsk-rs builds libxdp; etcd-client runs protoc).
pub const BUILD: &[&str] = &[
    "clang",
    "llvm",
    "libelf-dev",
    "zlib1g-dev",
    "libpcap-dev",
    "pkg-config",
    "m4",
    "protobuf-compiler",
    "iproute2",
];

/// Real peers that the integration tests start: etcd for the datastore conformance suite;
/// podman, runc, containerd and a static busybox (for a local image) as CNI clients; BIRD 2,
/// GoBGP, FRR and ExaBGP as BGP peers; `nsenter`/`unshare` (util-linux) and `sysctl` (procps)
/// for the namespace tests; tcpdump to see what the lab's nodes put on the wire.
pub const TEST_PEERS: &[&str] = &[
    "tcpdump",
    "util-linux",
    "procps",
    "etcd-server",
    "podman",
    "runc",
    "containerd",
    "busybox-static",
    "containernetworking-plugins",
    "openssl",
    "bird2",
    "gobgpd",
    "frr",
    "exabgp",
    // The side-by-side forwarding comparisons of tortie-perf (kernel + conntrack + ipset,
    // kernel + 1,000 iptables rules, nftables) and its end hosts' offload settings.
    "iptables",
    "ipset",
    "nftables",
    "ethtool",
];

/// What the demo needs beyond the build: `ip`, `nsenter` and busybox's `nc` for its TCP check.
pub const DEMO: &[&str] = &["iproute2", "util-linux", "busybox-static"];

/// Returns the packages of `wanted` that dpkg does not report as installed.
pub fn missing(wanted: &[&str]) -> Vec<String> {
    wanted
        .iter()
        .filter(|name| !is_installed(name))
        .map(|name| name.to_string())
        .collect()
}

fn is_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs whatever of `wanted` is missing with apt-get. Without root it says what to install
/// and returns an error, since the tests would fail later for a less obvious reason.
pub fn ensure(wanted: &[&str]) -> Result<(), String> {
    let missing = missing(wanted);
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "missing Debian packages: {} (run as root, or: sudo apt-get install -y {})",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    run_apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing.iter().map(String::as_str));
    run_apt(&args)
}

fn run_apt(args: &[&str]) -> Result<(), String> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|err| format!("cannot run apt-get: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed with {status}", args.join(" ")))
    }
}

/// Whether this process runs as root (installing packages and building namespaces need it).
pub fn is_root() -> bool {
    crate::exec::is_root()
}

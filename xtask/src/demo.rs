//! `cargo xtask demo`: the README's main command.
//!
//! A Tortie session on the embedded SQLite datastore:
//! 1. resources: `tortiectl` applies Calico manifests (a tier, a pool, policies, a network set, a
//!    host endpoint), shows them, and rejects a file with a mistake as a whole;
//! 2. workloads (as root): a node made of a network namespace, two workloads attached to it by
//!    the `tortie` CNI plugin with addresses from the pool, their WorkloadEndpoints, a TCP
//!    connection between them, and their removal with the addresses released.
//!
//! Everything lives in a temporary directory and in namespaces named `tortie-demo-*`, removed at
//! the end even when a step fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::packages;

const NODE: &str = "tortie-demo-node";
const WORKLOADS: [(&str, &str); 2] = [("web", "tortie-demo-web"), ("db", "tortie-demo-db")];

/// Builds the binaries the demo needs and runs it.
pub fn run(extra: &[String]) -> Result<(), String> {
    packages::ensure(packages::BUILD)?;
    packages::ensure(packages::DEMO)?;
    crate::cargo(
        &["build", "-p", "tortie-cli", "-p", "tortie-cni", "--bins"],
        extra,
    )?;
    let root = crate::workspace_root();
    let bin = root.join("target/debug");
    let dir = TempDir::new()?;
    let db = dir.0.join("tortie.db");
    let tortiectl = Tool {
        path: bin.join("tortiectl"),
        db: db.clone(),
    };
    let manifests = root.join("control/cli/examples/demo-manifests");

    banner("1. Calico resources in the embedded datastore");
    tortiectl.run(&["version"])?;
    tortiectl.run(&["apply", "-f", path_str(&manifests)])?;
    tortiectl.run(&["get", "ippools", "-o", "wide"])?;
    tortiectl.run(&["get", "globalnetworkpolicies", "-o", "wide"])?;
    tortiectl.run(&["get", "networkpolicies", "-A"])?;
    println!(
        "\n# A file with a mistake is rejected as a whole, with the file, document, line and field:"
    );
    let bad = root.join("control/cli/examples/demo-bad/bad-policy.yaml");
    if tortiectl.run(&["apply", "-f", path_str(&bad)]).is_ok() {
        return Err("the bad file was accepted".into());
    }

    banner("2. Workloads attached by the tortie CNI plugin");
    if !crate::packages::is_root() {
        println!("(skipped: creating network namespaces needs root; run `sudo cargo xtask demo`)");
        return Ok(());
    }
    let lab = Lab::create()?;
    let conf = format!(
        r#"{{"cniVersion":"1.0.0","name":"demo-net","type":"tortie","nodename":"node-1","mtu":1480,
            "datastore_type":"sqlite","sqlite_path":"{}","ipam":{{"type":"tortie-ipam"}}}}"#,
        db.display()
    );
    let mut addresses = Vec::new();
    for (name, ns) in WORKLOADS {
        let out = lab.cni(&bin.join("tortie"), "ADD", name, ns, &conf)?;
        let result: String = out.chars().filter(|c| !c.is_whitespace()).collect();
        let address = result
            .split("\"address\":\"")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .ok_or_else(|| format!("no address in the ADD result: {out}"))?
            .to_string();
        println!("ADD {name}: eth0 {address}/32, default via 169.254.1.1");
        addresses.push(address);
    }
    tortiectl.run(&["get", "workloadendpoints", "-A", "-o", "wide"])?;
    tortiectl.run(&["ipam", "show", "--show-blocks"])?;
    println!(
        "\n# What policy says about web -> db (the demo namespace has no kns.demo profile yet, so"
    );
    println!("# an endpoint with no profile that no policy allows is denied, as in Calico):");
    tortiectl.run(&[
        "policy",
        "explain",
        "--from",
        "demo/web",
        "--to",
        "demo/db",
        "--protocol",
        "TCP",
        "--port",
        "8080",
    ])?;
    println!(
        "\n# web -> db over TCP, through the node (the kernel forwards until the fastpath attaches):"
    );
    let reply = lab.tcp_exchange(WORKLOADS[1].1, WORKLOADS[0].1, &addresses[1])?;
    println!(
        "web sent \"hello\" to {}:8080, db answered {reply:?}",
        addresses[1]
    );
    for (name, ns) in WORKLOADS {
        lab.cni(&bin.join("tortie"), "DEL", name, ns, &conf)?;
        println!("DEL {name}: interface, endpoint and address removed");
    }
    tortiectl.run(&["get", "workloadendpoints", "-A"])?;
    tortiectl.run(&["ipam", "check"])?;
    println!("\nDemo complete.");
    Ok(())
}

fn banner(title: &str) {
    println!("\n==== {title} ====");
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

/// `tortiectl` against the demo's datastore; echoes each command before running it.
struct Tool {
    path: PathBuf,
    db: PathBuf,
}

impl Tool {
    fn run(&self, args: &[&str]) -> Result<(), String> {
        println!("\n$ tortiectl {}", args.join(" "));
        let status = Command::new(&self.path)
            .args(args)
            .env("DATASTORE_TYPE", "sqlite")
            .env("SQLITE_PATH", &self.db)
            .status()
            .map_err(|err| format!("cannot run tortiectl: {err}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("tortiectl {} failed with {status}", args.join(" ")))
        }
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let dir = std::env::temp_dir().join(format!("tortie-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The node and workload namespaces, removed on drop.
struct Lab;

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|err| format!("cannot run ip: {err}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Lab {
    fn create() -> Result<Lab, String> {
        let lab = Lab;
        lab.remove();
        ip(&["netns", "add", NODE])?;
        for (_, ns) in WORKLOADS {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        // The node: loopback, forwarding, and an uplink with a default route, as a host has
        // (proxy ARP answers for the workloads' gateway only when the node can route it).
        ip(&["-n", NODE, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            NODE,
            "link",
            "add",
            "uplink0",
            "type",
            "veth",
            "peer",
            "name",
            "uplink0-peer",
        ])?;
        ip(&["-n", NODE, "link", "set", "uplink0", "up"])?;
        ip(&["-n", NODE, "link", "set", "uplink0-peer", "up"])?;
        ip(&[
            "-n",
            NODE,
            "addr",
            "add",
            "198.18.255.1/24",
            "dev",
            "uplink0",
        ])?;
        ip(&[
            "-n",
            NODE,
            "route",
            "add",
            "default",
            "via",
            "198.18.255.254",
        ])?;
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                NODE,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ])
            .output()
            .map_err(|err| err.to_string())?;
        if !out.status.success() {
            return Err("cannot enable forwarding in the node namespace".into());
        }
        Ok(lab)
    }

    fn remove(&self) {
        for ns in [NODE, WORKLOADS[0].1, WORKLOADS[1].1] {
            let _ = Command::new("ip")
                .args(["netns", "delete", ns])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Runs the CNI plugin in the node namespace for one workload; returns its stdout.
    fn cni(
        &self,
        plugin: &Path,
        command: &str,
        name: &str,
        ns: &str,
        conf: &str,
    ) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{NODE}"))
            .arg(plugin)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", format!("demo-{name}"))
            .env("CNI_NETNS", format!("/run/netns/{ns}"))
            .env("CNI_IFNAME", "eth0")
            .env(
                "CNI_ARGS",
                format!("K8S_POD_NAMESPACE=demo;K8S_POD_NAME={name}"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot run the CNI plugin: {err}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(conf.as_bytes())
                .map_err(|err| err.to_string())?;
        }
        let out = child.wait_with_output().map_err(|err| err.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!("CNI {command} {name} failed: {stdout}"))
        }
    }

    /// A TCP exchange with busybox nc: a server in `server_ns` answers "world" to "hello".
    fn tcp_exchange(
        &self,
        server_ns: &str,
        client_ns: &str,
        server_ip: &str,
    ) -> Result<String, String> {
        let mut server = Command::new("ip")
            .args([
                "netns",
                "exec",
                server_ns,
                "sh",
                "-c",
                "echo world | timeout 10 busybox nc -l -p 8080",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| err.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let reply = loop {
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    client_ns,
                    "sh",
                    "-c",
                    &format!("echo hello | timeout 3 busybox nc {server_ip} 8080"),
                ])
                .output()
                .map_err(|err| err.to_string())?;
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !text.is_empty() {
                break Ok(text);
            }
            if Instant::now() > deadline {
                break Err("no TCP answer from db within 10 s".to_string());
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let _ = server.kill();
        let _ = server.wait();
        reply
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.remove();
    }
}

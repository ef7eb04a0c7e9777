//! Test support: temporary datastores with pools, network namespaces that remove themselves,
//! and running the plugin binaries the way a runtime does (environment + stdin).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use tortie_datastore::{Datastore, SqliteStore, keys};

/// A SQLite datastore in a temporary directory.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TestStore {
    pub fn new() -> TestStore {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tortie.db");
        TestStore { dir, path }
    }

    pub fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path).expect("open sqlite")
    }

    /// Stores an IPPool resource.
    pub fn add_pool(&self, name: &str, cidr: &str, block_size: u8) {
        let doc = serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
            "metadata": {"name": name},
            "spec": {"cidr": cidr, "blockSize": block_size, "ipipMode": "Never", "natOutgoing": false, "nodeSelector": "all()"}
        });
        let key = keys::resource_key("ippools", None, name).unwrap();
        self.open().put(&key, doc.to_string().as_bytes()).unwrap();
    }
}

/// The network configuration for the `tortie` plugin over this store.
pub fn tortie_conf(store: &TestStore, version: &str, node: &str, extra: &str) -> String {
    format!(
        r#"{{"cniVersion":"{version}","name":"testnet","type":"tortie","mtu":1400,"nodename":"{node}",
            "datastore_type":"sqlite","sqlite_path":"{}","log_level":"debug",
            "log_file_path":"{}",
            "ipam":{{"type":"tortie-ipam","assign_ipv4":"true"}}{extra}}}"#,
        store.path.display(),
        store.dir.path().join("cni.log").display()
    )
}

/// The network configuration for the `tortie-ipam` plugin over this store.
pub fn ipam_conf(store: &TestStore, node: &str) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"testnet","type":"tortie-ipam","nodename":"{node}",
            "datastore_type":"sqlite","sqlite_path":"{}","ipam":{{"type":"tortie-ipam"}}}}"#,
        store.path.display()
    )
}

/// Runs a plugin binary with `env` and `stdin`; `netns` runs it inside that namespace
/// (so the "host" side of the attachment is a namespace the test owns).
pub fn run_plugin(
    binary: &str,
    env: &[(&str, &str)],
    stdin: &str,
    host_netns: Option<&str>,
) -> Output {
    let mut command = match host_netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, binary]);
            c
        }
        None => Command::new(binary),
    };
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plugin");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("plugin output")
}

pub fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}): {:?} / stderr {:?}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace removed on drop (even when the test fails).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!(
            "tcni-{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(status.success(), "ip netns add {name}");
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs a command inside the namespace and returns its output.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    pub fn exec_stdout(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.exec(args).stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// Whether this process may create network namespaces.
pub fn is_root() -> bool {
    nix_uid() == 0
}

fn nix_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

pub fn path_exists(p: &str) -> bool {
    Path::new(p).exists()
}

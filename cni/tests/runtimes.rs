//! Real container runtimes as CNI clients (root): podman with the CNI network backend and
//! containerd's `ctr run --cni` start containers that get their address from a Tortie pool.
//! Each runtime runs inside a network namespace of the test's own (the "node"), with its own
//! storage and configuration in a temporary directory, so nothing on the machine changes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Netns, TestStore, is_root};
use tortie_ipam::Ipam;

const TORTIE: &str = env!("CARGO_BIN_EXE_tortie");
const TORTIE_IPAM: &str = env!("CARGO_BIN_EXE_tortie-ipam");

fn require(binary: &str) {
    assert!(
        Command::new("sh")
            .args(["-c", &format!("command -v {binary}")])
            .output()
            .is_ok_and(|o| o.status.success()),
        "{binary} is missing: `cargo xtask test` installs podman, runc, containerd and busybox-static"
    );
}

/// A busybox root filesystem as a tar archive.
fn busybox_tar(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static installed");
    for applet in ["sh", "ip", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let tar = dir.join("busybox.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    tar
}

/// A directory holding the plugin binaries and a conflist naming `tortie`.
fn cni_dirs(dir: &Path, store: &TestStore) -> (PathBuf, PathBuf) {
    let bin = dir.join("cni-bin");
    let netd = dir.join("net.d");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&netd).unwrap();
    std::fs::copy(TORTIE, bin.join("tortie")).unwrap();
    std::fs::copy(TORTIE_IPAM, bin.join("tortie-ipam")).unwrap();
    let conflist = format!(
        r#"{{"cniVersion":"1.0.0","name":"tortienet","plugins":[{{"type":"tortie","nodename":"node-a",
            "datastore_type":"sqlite","sqlite_path":"{}","mtu":1400,"log_level":"debug",
            "log_file_path":"{}","ipam":{{"type":"tortie-ipam"}}}}]}}"#,
        store.path.display(),
        dir.join("cni.log").display()
    );
    std::fs::write(netd.join("10-tortienet.conflist"), conflist).unwrap();
    (bin, netd)
}

/// Runs `program` in the node's network namespace only (`ip netns exec` would also remount
/// /sys and hide the cgroup mounts the runtimes need).
fn in_node(node: &Netns, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net={}", node.path()))
        .arg(program)
        .args(args);
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().expect("run in node namespace")
}

fn assert_pool_address(output: &Output, prefix: &str) {
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "container failed: {text} / {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains(prefix),
        "no address from the Tortie pool in: {text}"
    );
    assert!(
        text.contains("default via 169.254.1.1"),
        "no default route via the gateway in: {text}"
    );
}

#[test]
fn podman_containers_get_tortie_addresses() {
    assert!(
        is_root(),
        "this test needs root (cargo xtask test runs as root)"
    );
    require("podman");
    require("runc");
    require("nsenter");
    let store = TestStore::new();
    store.add_pool("pool-podman", "198.18.70.0/24", 26);
    let dir = store.dir.path().to_path_buf();
    let tar = busybox_tar(&dir);
    let (bin, netd) = cni_dirs(&dir, &store);
    let conf = dir.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n\
             [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\", \"/usr/lib/cni\"]\nnetwork_config_dir = \"{}\"\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
            bin.display(),
            netd.display()
        ),
    )
    .unwrap();
    let root = dir.join("storage");
    let runroot = dir.join("run");
    let base = [
        "--root",
        root.to_str().unwrap(),
        "--runroot",
        runroot.to_str().unwrap(),
    ];
    let envs = [("CONTAINERS_CONF", conf.to_str().unwrap())];
    let node = Netns::new("podman");
    let import = [
        &base[..],
        &[
            "import",
            "--change",
            "CMD [\"/bin/sh\"]",
            tar.to_str().unwrap(),
            "localhost/tortie-bb:latest",
        ],
    ]
    .concat();
    let out = in_node(&node, "podman", &import, &envs);
    assert!(
        out.status.success(),
        "podman import: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let run = [
        &base[..],
        &[
            "run",
            "--rm",
            "--network",
            "tortienet",
            "localhost/tortie-bb:latest",
            "sh",
            "-c",
            "ip -o addr show eth0; ip route",
        ],
    ]
    .concat();
    for _ in 0..2 {
        let out = in_node(&node, "podman", &run, &envs);
        assert_pool_address(&out, "198.18.70.");
    }
    // `--rm` ran DEL: nothing stays allocated.
    let ds = store.open();
    let report = Ipam::new(&ds).check(None).unwrap();
    assert!(report.is_clean() && report.allocations == 0, "{report}");
    let _ = in_node(
        &node,
        "podman",
        &[&base[..], &["system", "reset", "--force"]].concat(),
        &envs,
    );
}

/// containerd running with its own root, state and socket, stopped by PID on drop.
struct Containerd {
    child: Child,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn containerd_ctr_run_cni_gets_tortie_addresses() {
    assert!(
        is_root(),
        "this test needs root (cargo xtask test runs as root)"
    );
    require("containerd");
    require("ctr");
    require("podman");
    require("unshare");
    require("nsenter");
    let store = TestStore::new();
    store.add_pool("pool-containerd", "198.18.71.0/24", 26);
    let dir = store.dir.path().to_path_buf();
    let (bin, netd) = cni_dirs(&dir, &store);
    let socket = dir.join("containerd.sock");
    let config = dir.join("containerd.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\naddress = \"{}\"\n",
            dir.join("ctrd-root").display(),
            dir.join("ctrd-state").display(),
            socket.display()
        ),
    )
    .unwrap();
    let node = Netns::new("ctrd");
    let child = Command::new("nsenter")
        .arg(format!("--net={}", node.path()))
        .args(["containerd", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("containerd.log")).unwrap(),
        ))
        .spawn()
        .expect("start containerd");
    let _containerd = Containerd { child };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "containerd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    // An image archive made by podman from a busybox rootfs.
    let tar = busybox_tar(&dir);
    let podman = |args: &[&str]| {
        Command::new("podman")
            .args([
                "--root",
                dir.join("pm-root").to_str().unwrap(),
                "--runroot",
                dir.join("pm-run").to_str().unwrap(),
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let out = podman(&[
        "import",
        "--change",
        "CMD [\"/bin/sh\"]",
        tar.to_str().unwrap(),
        "localhost/tortie-bb:latest",
    ]);
    assert!(out.status.success(), "{out:?}");
    let archive = dir.join("image.tar");
    let out = podman(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        archive.to_str().unwrap(),
        "localhost/tortie-bb:latest",
    ]);
    assert!(out.status.success(), "{out:?}");
    let addr = socket.to_str().unwrap().to_string();
    let out = Command::new("ctr")
        .args(["-a", &addr, "images", "import", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "ctr import: {out:?}");

    // ctr reads the first conflist in /etc/cni/net.d and plugins from /opt/cni/bin: give it ours
    // in a private mount namespace, so the machine's directories are untouched.
    let script = format!(
        "set -e; mkdir -p /etc/cni/net.d /opt/cni/bin; mount --bind {netd} /etc/cni/net.d; mount --bind {bin} /opt/cni/bin; \
         ctr -a {addr} run --rm --cni localhost/tortie-bb:latest tortie-c1 sh -c 'ip -o addr show eth0; ip route'",
        netd = netd.display(),
        bin = bin.display(),
    );
    let created: Vec<&str> = ["/etc/cni/net.d", "/etc/cni", "/opt/cni/bin", "/opt/cni"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    let out = Command::new("nsenter")
        .arg(format!("--net={}", node.path()))
        .args([
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    for path in created {
        let _ = std::fs::remove_dir(path);
    }
    assert_pool_address(&out, "198.18.71.");
    let ds = store.open();
    let report = Ipam::new(&ds).check(None).unwrap();
    assert!(
        report.is_clean() && report.allocations == 0,
        "ctr ran DEL without a netns: {report}"
    );
}

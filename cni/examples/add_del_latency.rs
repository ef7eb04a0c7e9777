//! Measures CNI ADD and DEL latency (p50 / p99, the plugin binary spawned as a runtime spawns it,
//! without the dataplane wait) and IPAM allocations per second under concurrency.
//!
//! ```text
//! cargo build --release -p tortie-cni --bins --examples
//! sudo target/release/examples/add_del_latency [--iterations N] [--concurrency C] [--etcd yes]
//! ```
//! The datastore is a SQLite file in a temporary directory, or with `--etcd yes` a Debian etcd
//! started for the run. Everything (etcd, the plugins) runs inside a network namespace made for
//! the run (the node); workloads are a second namespace; both are removed at the end.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tortie_datastore::{DatastoreConfig, keys};

struct Args {
    iterations: usize,
    concurrency: usize,
    etcd: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        iterations: 200,
        concurrency: 16,
        etcd: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--iterations" => args.iterations = value.parse().expect("--iterations N"),
            "--concurrency" => args.concurrency = value.parse().expect("--concurrency N"),
            "--etcd" => args.etcd = value == "yes",
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let name = format!("{name}-{}", std::process::id());
        assert!(
            Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .unwrap()
                .success()
        );
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn plugin(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} missing: build with `cargo build --release -p tortie-cni --bins`",
        path.display()
    );
    path
}

fn run(binary: &Path, env: &[(&str, &str)], conf: &str) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn main() {
    let args = parse_args();
    let node = Netns::new("tcni-bench-node");
    let node_path = format!("/run/netns/{}", node.0);
    // Everything below runs in the node's namespace; processes it starts inherit it.
    let table = tortie_cni::netlink::in_netns(&node_path, move || Ok(measure(&args)))
        .expect("enter node namespace");
    println!("{table}");
}

fn measure(args: &Args) -> String {
    let _ = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    let bin_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let tortie = plugin(&bin_dir, "tortie");
    let tortie_ipam = plugin(&bin_dir, "tortie-ipam");
    let dir = tempfile::tempdir().unwrap();
    // Started from this thread, so etcd runs in the node's namespace with the plugins.
    let etcd = args.etcd.then(tortie_testkit::etcd::EtcdServer::start);
    let (config, datastore_keys, label) = match &etcd {
        Some(etcd) => (
            DatastoreConfig::etcd([etcd.endpoint.clone()]),
            format!(
                r#""datastore_type":"etcdv3","etcd_endpoints":"{}""#,
                etcd.endpoint
            ),
            "etcd",
        ),
        None => {
            let path = dir.path().join("tortie.db");
            (
                DatastoreConfig::sqlite(&path),
                format!(
                    r#""datastore_type":"sqlite","sqlite_path":"{}""#,
                    path.display()
                ),
                "sqlite",
            )
        }
    };
    let ds = tortie_datastore::open(&config).expect("open datastore");
    let pool = r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"bench"},"spec":{"cidr":"198.18.128.0/17","blockSize":26}}"#;
    ds.put(
        &keys::resource_key("ippools", None, "bench").unwrap(),
        pool.as_bytes(),
    )
    .unwrap();

    let workload = Netns::new("tcni-bench-wl");
    let netns_path = format!("/run/netns/{}", workload.0);
    let conf = format!(
        r#"{{"cniVersion":"1.0.0","name":"bench","type":"tortie","nodename":"node-a",{datastore_keys},"ipam":{{"type":"tortie-ipam"}}}}"#
    );
    let mut adds = Vec::new();
    let mut dels = Vec::new();
    for i in 0..args.iterations {
        let id = format!("bench{i}");
        let env = |cmd| {
            vec![
                ("CNI_COMMAND", cmd),
                ("CNI_CONTAINERID", id.as_str()),
                ("CNI_NETNS", netns_path.as_str()),
                ("CNI_IFNAME", "eth0"),
            ]
        };
        adds.push(run(&tortie, &env("ADD"), &conf));
        dels.push(run(&tortie, &env("DEL"), &conf));
        if (i + 1) % 50 == 0 {
            eprintln!("{label}: {} / {} ADD+DEL pairs", i + 1, args.iterations);
        }
    }
    adds.sort();
    dels.sort();

    let ipam_conf = format!(
        r#"{{"cniVersion":"1.0.0","name":"bench-ipam","type":"tortie-ipam","nodename":"node-a",{datastore_keys},"ipam":{{"type":"tortie-ipam"}}}}"#
    );
    let total = args.iterations;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..args.concurrency {
            let (tortie_ipam, ipam_conf) = (&tortie_ipam, &ipam_conf);
            scope.spawn(move || {
                for i in (worker..total).step_by(args.concurrency) {
                    let id = format!("alloc{i}");
                    let env = [
                        ("CNI_COMMAND", "ADD"),
                        ("CNI_CONTAINERID", id.as_str()),
                        ("CNI_NETNS", "/nonexistent"),
                        ("CNI_IFNAME", "eth0"),
                    ];
                    run(tortie_ipam, &env, ipam_conf);
                }
            });
        }
    });
    let rate = total as f64 / start.elapsed().as_secs_f64();

    format!(
        "| datastore | ADD p50 ms | ADD p99 ms | DEL p50 ms | DEL p99 ms | allocations/s ({} concurrent) |\n\
         |---|---|---|---|---|---|\n\
         | {label} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
        args.concurrency,
        percentile(&adds, 0.5),
        percentile(&adds, 0.99),
        percentile(&dels, 0.5),
        percentile(&dels, 0.99),
        rate
    )
}

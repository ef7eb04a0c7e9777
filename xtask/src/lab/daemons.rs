//! The two daemons of a node, started with the contract's command lines inside the node's
//! namespace: tortie-control (creates the ring, writes the tables) first, tortie-fastpath
//! (reads the ring, attaches AF_XDP) once the ring exists, then both must answer `/readyz`.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::error::{Result, XtaskError};

use super::datastore::datastore_env;
use super::health::{self, CONTROL_METRICS, FASTPATH_METRICS};
use super::plan::{Node, UPLINK};
use super::process::{self, Children, Launch, tail};
use super::state::{LabState, ProcessRecord};

/// Where one node keeps its ring, status file and logs.
pub fn node_dir(run_dir: &Path, node: &Node) -> PathBuf {
    run_dir.join(node.name)
}

/// The node's ring.
pub fn ring_path(run_dir: &Path, node: &Node) -> PathBuf {
    node_dir(run_dir, node).join("ring")
}

/// The node's fastpath status file.
pub fn status_path(run_dir: &Path, node: &Node) -> PathBuf {
    node_dir(run_dir, node).join("fastpath-status.json")
}

/// The log file of `role` on the node.
pub fn log_path(run_dir: &Path, node: &Node, role: &str) -> PathBuf {
    node_dir(run_dir, node).join(format!("{role}.log"))
}

/// Where `role`'s stdout and stderr go (panics, messages before logging starts).
pub fn output_path(run_dir: &Path, node: &Node, role: &str) -> PathBuf {
    node_dir(run_dir, node).join(format!("{role}.out"))
}

/// tortie-control's log filter in the lab: info, plus one debug line per change and per
/// cycle with the time of each stage (`bench policy-latency` reads them).
pub const CONTROL_LOG_LEVEL: &str =
    "info,tortie_control::engine=debug,tortie_control::daemon=debug";

/// The arguments of `role` (`control` or `fastpath`) for `node`.
pub fn arguments(state: &LabState, node: &Node, role: &str) -> Vec<String> {
    let (run_dir, ipv6) = (state.run_dir.as_path(), state.ipv6);
    let ring = ring_path(run_dir, node).display().to_string();
    let status = status_path(run_dir, node).display().to_string();
    let log = log_path(run_dir, node, role).display().to_string();
    let args: Vec<&str> = match role {
        "control" => vec![
            "--node",
            node.name,
            "--ring",
            &ring,
            "--uplink",
            UPLINK,
            "--fastpath-status",
            &status,
            "--metrics",
            CONTROL_METRICS,
            "--log-level",
            CONTROL_LOG_LEVEL,
            "--log-file",
            &log,
        ],
        _ => vec![
            "--ring",
            &ring,
            "--status-file",
            &status,
            "--workers",
            "1",
            "--mode",
            "adaptive",
            "--metrics",
            FASTPATH_METRICS,
            "--log-level",
            "info",
            "--log-file",
            &log,
        ],
    };
    let mut args: Vec<String> = args.into_iter().map(str::to_string).collect();
    if role == "control" {
        args.extend(["--ip".to_string(), node.addr_cidr()]);
        if ipv6 {
            args.extend(["--ip6".to_string(), node.addr6_cidr()]);
        }
        if state.routes_from_bgp {
            args.push("--routes-from-ipam=false".to_string());
        }
    }
    args
}

/// The binary of `role`.
pub fn program(bin_dir: &Path, role: &str) -> PathBuf {
    bin_dir.join(format!("tortie-{role}"))
}

/// The allocator setting tortie-fastpath runs with: glibc (>= 2.35) advises `MADV_HUGEPAGE`
/// on its large `mmap` chunks, which puts the conntrack slab and index on 2 MiB pages where
/// the host's THP mode is `madvise` (docs/design/tables.md). A `GLIBC_TUNABLES` already in
/// the environment is left as it is.
fn fastpath_allocator_env() -> Option<(String, String)> {
    match std::env::var_os("GLIBC_TUNABLES") {
        Some(_) => None,
        None => Some(("GLIBC_TUNABLES".into(), "glibc.malloc.hugetlb=1".into())),
    }
}

/// Starts `role` on `node`; returns its record (the child is kept in `children`).
pub fn start(
    state: &LabState,
    node: &Node,
    role: &str,
    children: &mut Children,
) -> Result<ProcessRecord> {
    let dir = node_dir(&state.run_dir, node);
    std::fs::create_dir_all(&dir).map_err(|err| XtaskError::file(&dir, err))?;
    let program = program(&state.bin_dir, role);
    let log = log_path(&state.run_dir, node, role);
    let output = output_path(&state.run_dir, node, role);
    let mut env = datastore_env(&state.datastore);
    env.push(("NODENAME".into(), node.name.into()));
    if role == "fastpath" {
        env.extend(fastpath_allocator_env());
    }
    let (record, child): (ProcessRecord, Child) = process::start(&Launch {
        node: node.name,
        role,
        netns: node.namespace,
        program: &program,
        args: arguments(state, node, role),
        env,
        log: &log,
        output: &output,
    })?;
    children.adopt(child);
    Ok(record)
}

/// A check for waits: fails with the daemon's last log lines once it is no longer running.
pub fn alive_check<'a>(
    record: &'a ProcessRecord,
    children: &'a mut Children,
    run_dir: &'a Path,
    node: &'a Node,
) -> impl FnMut() -> std::result::Result<(), String> + 'a {
    move || {
        let status = children.reap(record.pid);
        if process::is_running(record) {
            return Ok(());
        }
        Err(format!(
            "tortie-{} on {} exited ({}); last lines of its output:\n{}\n{}",
            record.role,
            record.node,
            status.unwrap_or_else(|| "status unknown".into()),
            tail(&output_path(run_dir, node, &record.role), 15),
            tail(&record.log, 15),
        ))
    }
}

/// Waits (bounded) until tortie-control has created the node's ring.
pub fn wait_for_ring(
    state: &LabState,
    node: &Node,
    control: &ProcessRecord,
    children: &mut Children,
    bound: Duration,
) -> Result<()> {
    let ring = ring_path(&state.run_dir, node);
    let deadline = Instant::now() + bound;
    let mut alive = alive_check(control, children, &state.run_dir, node);
    while !ring.exists() {
        alive().map_err(XtaskError::Lab)?;
        if Instant::now() >= deadline {
            return Err(XtaskError::Timeout {
                what: format!("{}: tortie-control creating {}", node.name, ring.display()),
                seconds: bound.as_secs_f64(),
                detail: format!(
                    "; its log ends:\n{}",
                    tail(&log_path(&state.run_dir, node, "control"), 15)
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Waits (bounded) until `record` answers 200 on `/readyz`; the error carries its log's tail.
pub fn wait_ready(
    state: &LabState,
    node: &Node,
    record: &ProcessRecord,
    children: &mut Children,
    bound: Duration,
) -> Result<()> {
    let addr = if record.role == "control" {
        CONTROL_METRICS
    } else {
        FASTPATH_METRICS
    };
    let alive = alive_check(record, children, &state.run_dir, node);
    health::wait_ready(node.namespace, addr, bound, alive).map_err(|err| match err {
        XtaskError::Timeout {
            what,
            seconds,
            detail,
        } => XtaskError::Timeout {
            what,
            seconds,
            detail: format!("{detail}; its log ends:\n{}", tail(&record.log, 15)),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::plan::NODES;

    fn state(ipv6: bool, routes_from_bgp: bool) -> LabState {
        LabState {
            run_dir: "/run/tortie-lab".into(),
            bin_dir: "/src/target/debug".into(),
            datastore: "/run/tortie-lab/datastore.db".into(),
            daemons: true,
            ipv6,
            routes_from_bgp,
            processes: Vec::new(),
            workloads: Vec::new(),
        }
    }

    #[test]
    fn command_lines_follow_the_contract() {
        let control = arguments(&state(false, false), &NODES[0], "control").join(" ");
        assert!(!control.contains("--ip6"));
        assert!(!control.contains("--routes-from-ipam"));
        assert!(
            arguments(&state(true, false), &NODES[0], "control")
                .join(" ")
                .contains("--ip6 2001:db8:0:1::11/64")
        );
        assert!(
            arguments(&state(false, true), &NODES[0], "control")
                .join(" ")
                .ends_with("--routes-from-ipam=false")
        );
        assert!(control.starts_with("--node node1 --ring /run/tortie-lab/node1/ring"));
        assert!(control.contains("--uplink eth0"));
        assert!(control.contains("--ip 198.18.1.11/24"));
        assert!(control.contains("--fastpath-status /run/tortie-lab/node1/fastpath-status.json"));
        let fastpath = arguments(&state(true, true), &NODES[2], "fastpath").join(" ");
        assert!(fastpath.starts_with("--ring /run/tortie-lab/node3/ring"));
        assert!(fastpath.contains("--status-file /run/tortie-lab/node3/fastpath-status.json"));
        assert!(fastpath.contains("--metrics 127.0.0.1:9098"));
        assert!(fastpath.contains("--log-file /run/tortie-lab/node3/fastpath.log"));
        assert!(!fastpath.contains("--routes-from-ipam"));
    }
}

//! `cargo xtask lab up|status|down`: three Tortie nodes on two segments behind a router, in
//! network namespaces of this machine, sharing one SQLite datastore.
//!
//! [`Lab::up`] builds the topology of [`plan`], writes the pool and nodes with `tortiectl`,
//! starts tortie-control and tortie-fastpath in every node (unless asked to leave forwarding to
//! the kernel) and waits for them to be ready; [`Lab::add_workload`] attaches workloads with the
//! CNI plugin; [`Lab::down`] stops exactly the daemons it started and removes everything.

pub mod daemons;
pub mod datastore;
pub mod health;
pub mod plan;
pub mod process;
pub mod state;
pub mod status;
pub mod topology;
pub mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Result, XtaskError};

use datastore::Tortiectl;
use plan::NODES;
use process::{Children, Stopped, TERM_GRACE};
use state::{LabState, ProcessRecord, WorkloadRecord};
use workload::WorkloadSpec;

/// How to bring a lab up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The run directory (datastore, rings, logs, state).
    pub run_dir: PathBuf,
    /// Where the built binaries are.
    pub bin_dir: PathBuf,
    /// Start tortie-control and tortie-fastpath; without them the kernel forwards.
    pub daemons: bool,
    /// How long each daemon gets to become ready.
    pub ready_timeout: Duration,
    /// Add IPv6: addresses on every segment, an IPv6 pool, workloads with both families.
    pub ipv6: bool,
    /// Route other nodes' blocks only from what BGP learned (tortie-control
    /// `--routes-from-ipam=false`), as Calico with BIRD does.
    pub routes_from_bgp: bool,
    /// Leave a lab that failed to come up in place for inspection (`lab down` removes it).
    pub keep_on_failure: bool,
}

/// A running lab, as this process knows it.
#[derive(Debug)]
pub struct Lab {
    /// What is recorded in the state file.
    pub state: LabState,
    children: Children,
}

/// What [`Lab::down`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DownReport {
    /// `role@node: how it stopped`.
    pub stopped: Vec<String>,
    /// Workloads detached with CNI DEL (and failures, in words).
    pub workloads: Vec<String>,
    /// Namespaces removed.
    pub namespaces: Vec<String>,
}

impl Lab {
    /// Brings the lab up. Fails when one exists; on any other failure removes what it made.
    pub fn up(options: &UpOptions) -> Result<Lab> {
        if LabState::load(&options.run_dir)?.is_some() || topology::exists() {
            return Err(XtaskError::Lab(format!(
                "a lab is already up (state in {}); `cargo xtask lab down` removes it",
                options.run_dir.display()
            )));
        }
        std::fs::create_dir_all(&options.run_dir)
            .map_err(|err| XtaskError::file(&options.run_dir, err))?;
        let mut lab = Lab {
            state: LabState {
                run_dir: options.run_dir.clone(),
                bin_dir: options.bin_dir.clone(),
                datastore: options.run_dir.join("datastore.db"),
                daemons: options.daemons,
                ipv6: options.ipv6,
                routes_from_bgp: options.routes_from_bgp,
                processes: Vec::new(),
                workloads: Vec::new(),
            },
            children: Children::default(),
        };
        lab.state.save()?;
        match lab.build(options) {
            Ok(()) => Ok(lab),
            Err(err) => {
                if !options.keep_on_failure {
                    let _ = lab.down();
                }
                Err(err)
            }
        }
    }

    fn build(&mut self, options: &UpOptions) -> Result<()> {
        topology::create()?;
        topology::disable_tx_checksum(&self.state.bin_dir.join("tortie"))?;
        let tortiectl = self.tortiectl();
        tortiectl.apply(&datastore::pool_manifest())?;
        tortiectl.apply(&datastore::nodes_manifest(options.ipv6))?;
        if options.ipv6 {
            topology::add_ipv6()?;
            tortiectl.apply(&datastore::pool6_manifest())?;
        }
        if !options.daemons {
            return Ok(());
        }
        for node in NODES.iter() {
            let control = self.start_daemon(node.name, "control")?;
            daemons::wait_for_ring(
                &self.state,
                node,
                &control,
                &mut self.children,
                options.ready_timeout,
            )?;
            self.start_daemon(node.name, "fastpath")?;
        }
        for record in self.state.processes.clone() {
            let node = plan::node(&record.node).unwrap_or(&NODES[0]);
            daemons::wait_ready(
                &self.state,
                node,
                &record,
                &mut self.children,
                options.ready_timeout,
            )?;
        }
        Ok(())
    }

    /// The lab recorded in `run_dir`, if one is up.
    pub fn attach(run_dir: &Path) -> Result<Option<Lab>> {
        Ok(LabState::load(run_dir)?.map(|state| Lab {
            state,
            children: Children::default(),
        }))
    }

    /// `tortiectl` on the lab's datastore.
    pub fn tortiectl(&self) -> Tortiectl {
        Tortiectl::new(&self.state.bin_dir, &self.state.datastore)
    }

    /// Starts `role` (`control` or `fastpath`) on `node` and records it.
    pub fn start_daemon(&mut self, node: &str, role: &str) -> Result<ProcessRecord> {
        let spec = plan::node(node).ok_or_else(|| XtaskError::Usage(format!("no node {node}")))?;
        let record = daemons::start(&self.state, spec, role, &mut self.children)?;
        self.state
            .processes
            .retain(|p| !(p.node == node && p.role == role));
        self.state.processes.push(record.clone());
        self.state.save()?;
        Ok(record)
    }

    /// Waits (bounded) until `role` on `node` answers `/readyz` with 200.
    pub fn wait_ready(&mut self, node: &str, role: &str, bound: Duration) -> Result<()> {
        let record = self
            .process(node, role)
            .cloned()
            .ok_or_else(|| XtaskError::Usage(format!("no {role} on {node}")))?;
        let spec = plan::node(node).unwrap_or(&NODES[0]);
        daemons::wait_ready(&self.state, spec, &record, &mut self.children, bound)
    }

    /// The recorded daemon `role` of `node`.
    pub fn process(&self, node: &str, role: &str) -> Option<&ProcessRecord> {
        self.state
            .processes
            .iter()
            .find(|p| p.node == node && p.role == role)
    }

    /// Kills `role` on `node` with SIGKILL (a crash); true when it was running and is gone.
    pub fn crash_daemon(&mut self, node: &str, role: &str) -> bool {
        match self.process(node, role).cloned() {
            Some(record) => self.children.crash(&record),
            None => false,
        }
    }

    /// Attaches a workload (creating its namespace's profile first, as Calico's Kubernetes
    /// controllers do for every namespace) and records it.
    pub fn add_workload(&mut self, spec: &WorkloadSpec) -> Result<WorkloadRecord> {
        self.tortiectl()
            .apply(&datastore::namespace_profile_manifest(&spec.namespace))?;
        let record = workload::add(&self.state, spec)?;
        self.state.workloads.push(record.clone());
        self.state.save()?;
        Ok(record)
    }

    /// Detaches the workload called `name`.
    pub fn remove_workload(&mut self, name: &str) -> Result<()> {
        let Some(index) = self.state.workloads.iter().position(|w| w.name == name) else {
            return Err(XtaskError::Usage(format!("no workload {name}")));
        };
        let record = self.state.workloads.remove(index);
        self.state.save()?;
        workload::del(&self.state, &record)
    }

    /// The workload called `name`.
    pub fn workload(&self, name: &str) -> Option<&WorkloadRecord> {
        self.state.workloads.iter().find(|w| w.name == name)
    }

    /// Detaches every workload, stops the daemons (SIGTERM, SIGKILL after a bound), removes
    /// the namespaces and the run directory.
    pub fn down(mut self) -> Result<DownReport> {
        let mut report = DownReport::default();
        for record in std::mem::take(&mut self.state.workloads) {
            let outcome = match workload::del(&self.state, &record) {
                Ok(()) => "detached".to_string(),
                Err(err) => format!("DEL failed: {err}"),
            };
            report.workloads.push(format!("{}: {outcome}", record.name));
        }
        report.stopped = stop_all(&mut self.children, &self.state.processes);
        report.namespaces = topology::remove();
        let run_dir = &self.state.run_dir;
        match std::fs::remove_dir_all(run_dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(XtaskError::file(run_dir, err));
            }
            _ => {}
        }
        Ok(report)
    }
}

/// Sends SIGTERM to every running daemon at once, then waits for each (SIGKILL after the
/// grace period), so a lab of six daemons stops in about one grace period, not six.
fn stop_all(children: &mut Children, processes: &[ProcessRecord]) -> Vec<String> {
    let running: Vec<bool> = processes
        .iter()
        .map(|record| {
            children.reap(record.pid);
            process::is_running(record)
        })
        .collect();
    processes
        .iter()
        .zip(&running)
        .filter(|(_, running)| **running)
        .for_each(|(record, _)| process::terminate(record));
    processes
        .iter()
        .zip(running)
        .map(|(record, was_running)| {
            let how = if !was_running {
                "was not running"
            } else {
                match children.finish(record, TERM_GRACE) {
                    Stopped::Killed => "killed with SIGKILL (ignored SIGTERM)",
                    Stopped::Terminated | Stopped::AlreadyGone => "exited after SIGTERM",
                }
            };
            format!(
                "tortie-{}@{} (pid {}): {how}",
                record.role, record.node, record.pid
            )
        })
        .collect()
}

/// Takes down whatever lab `run_dir` records, or removes leftovers (namespaces named
/// `tortie-lab-*`) of one whose state is lost. `None` when there was nothing at all.
pub fn down(run_dir: &Path) -> Result<Option<DownReport>> {
    if let Some(lab) = Lab::attach(run_dir)? {
        return lab.down().map(Some);
    }
    let namespaces = topology::remove();
    if namespaces.is_empty() {
        return Ok(None);
    }
    let _ = std::fs::remove_dir_all(run_dir);
    Ok(Some(DownReport {
        namespaces,
        ..DownReport::default()
    }))
}

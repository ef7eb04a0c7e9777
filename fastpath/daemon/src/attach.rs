//! Interfaces served: attach what a generation names, detach what it no longer names.
//!
//! Each interface gets one socket per queue `q < min(queues, workers)`, opened by worker `q`
//! (its frame pool lives there). A veth has one queue, so worker 0 serves every veth; more
//! workers only help on a multi-queue uplink, and a frame a worker `k > 0` receives for an
//! interface it has no socket on is dropped (`tx-no-port`): sockets of one UMEM are the only
//! zero-copy path between interfaces.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tortie_xsk::{BindMode, PortConfig};

use crate::ifaces::{self, Role};
use crate::steer::SteerHandle;
use crate::view::IfaceView;
use crate::worker::Command;

/// First delay before re-attaching an interface none of whose sockets bound.
pub const RETRY_FIRST: Duration = Duration::from_millis(200);
/// Longest delay between attach attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(10);

/// One served interface.
#[derive(Debug)]
struct Served {
    name: String,
    role: Role,
    /// Workers asked to open a socket (queue = worker id).
    workers: Vec<usize>,
    /// Workers whose socket is open, with the mode.
    bound: BTreeMap<usize, BindMode>,
    /// Workers still closing their socket (detach in progress).
    closing: BTreeSet<usize>,
    error: Option<String>,
}

/// The config thread's interface table.
#[derive(Debug)]
pub struct Interfaces {
    sys: PathBuf,
    served: BTreeMap<u32, Served>,
    /// Named by the tables but absent from the namespace (retried; logged once).
    missing: BTreeSet<u32>,
    /// Interfaces whose sockets all failed to bind: when to try again, and the attempts.
    retry: BTreeMap<u32, (Instant, u32)>,
    port_config: PortConfig,
    steer: SteerHandle,
}

impl Interfaces {
    /// No interface served yet; sockets will use `port_config`.
    pub fn new(sys: PathBuf, port_config: PortConfig, steer: SteerHandle) -> Self {
        Self {
            sys,
            served: BTreeMap::new(),
            missing: BTreeSet::new(),
            retry: BTreeMap::new(),
            port_config,
            steer,
        }
    }

    /// Brings the served set to `wanted`: sends attach and detach commands. A command that
    /// does not fit a worker's ring is retried on the next call.
    /// `send(worker, command)` returns whether the command was queued.
    pub fn reconcile(
        &mut self,
        wanted: &BTreeMap<u32, Role>,
        workers: usize,
        mut send: impl FnMut(usize, Command) -> bool,
    ) {
        // Uplink, then host, then workloads: a worker's first socket is its UMEM's
        // registration socket, which cannot give its frames back or be bound again once
        // closed (tortie-xsk `Port::close`), so it should be one that stays (the uplink).
        let mut order: Vec<(u32, Role)> = wanted.iter().map(|(&i, &r)| (i, r)).collect();
        order.sort_by_key(|&(i, r)| (r, i));
        for (if_index, role) in order {
            if self.served.contains_key(&if_index)
                || self
                    .retry
                    .get(&if_index)
                    .is_some_and(|(at, _)| Instant::now() < *at)
            {
                continue;
            }
            let Some(name) = ifaces::name_of(if_index) else {
                if self.missing.insert(if_index) {
                    tracing::warn!(
                        if_index,
                        role = role.name(),
                        "interface named by the tables does not exist (yet)"
                    );
                }
                continue;
            };
            self.missing.remove(&if_index);
            let queues = ifaces::queue_count(&self.sys, &name, if_index) as usize;
            if queues > workers {
                tracing::warn!(%name, queues, workers, "more queues than workers: queues beyond the workers are not served");
            }
            let attach = {
                let mut s = self.steer.lock().unwrap_or_else(|p| p.into_inner());
                s.attach(if_index, &name, role, self.port_config)
            };
            let (config, error) = match attach {
                Ok(c) => (c, None),
                Err(e) => {
                    tracing::error!(%name, if_index, error = %e, "XDP attach failed");
                    (self.port_config, Some(e.to_string()))
                }
            };
            let mut served = Served {
                name: name.clone(),
                role,
                workers: Vec::new(),
                bound: BTreeMap::new(),
                closing: BTreeSet::new(),
                error,
            };
            for w in 0..queues.min(workers) {
                let cmd = Command::Attach {
                    if_index,
                    name: name.clone(),
                    queue: w as u32,
                    config,
                };
                if send(w, cmd) {
                    served.workers.push(w);
                }
            }
            tracing::info!(%name, if_index, role = role.name(), queues = served.workers.len(), "attaching interface");
            self.served.insert(if_index, served);
        }
        self.missing.retain(|i| wanted.contains_key(i));
        self.retry.retain(|i, _| wanted.contains_key(i));
        // Interfaces that vanished under their sockets (a workload's veth deleted before
        // control removed it from the tables): detached like those the tables dropped, then
        // waited for as missing. Frames routed to them meanwhile count as `tx-no-port`.
        let present = ifaces::present_indexes();
        let mut gone: Vec<u32> = Vec::new();
        for (&if_index, s) in &self.served {
            if !wanted.contains_key(&if_index) {
                gone.push(if_index);
            } else if s.closing.is_empty()
                && present.as_ref().is_some_and(|p| !p.contains(&if_index))
            {
                tracing::warn!(name = %s.name, if_index, role = s.role.name(), "interface vanished; detaching its sockets");
                gone.push(if_index);
            }
        }
        for if_index in gone {
            let Some(s) = self.served.get_mut(&if_index) else {
                continue;
            };
            if !s.closing.is_empty() {
                continue;
            }
            for &w in &s.workers {
                if send(w, Command::Detach { if_index }) {
                    s.closing.insert(w);
                }
            }
            tracing::info!(name = %s.name, if_index, "detaching interface");
            if s.workers.is_empty() {
                self.finish_detach(if_index);
            }
        }
    }

    /// A worker's attach result.
    pub fn attached(&mut self, worker: usize, if_index: u32, result: Result<BindMode, String>) {
        let Some(s) = self.served.get_mut(&if_index) else {
            return;
        };
        match result {
            Ok(mode) => {
                tracing::info!(name = %s.name, if_index, worker, ?mode, "socket bound");
                s.bound.insert(worker, mode);
                self.retry.remove(&if_index);
            }
            Err(e) => {
                s.workers.retain(|w| *w != worker);
                s.error = Some(e.clone());
                if s.workers.is_empty() {
                    // Nothing bound: detach and try again later (a socket closed just before
                    // is released by the kernel asynchronously and blocks the queue meanwhile).
                    let attempts = self.retry.get(&if_index).map_or(0, |r| r.1) + 1;
                    let delay = RETRY_FIRST * 2u32.pow(attempts.min(5) - 1);
                    let delay = delay.min(RETRY_MAX);
                    tracing::warn!(name = %s.name, if_index, worker, error = %e, attempts, retry_in_ms = delay.as_millis() as u64, "socket failed to bind");
                    self.retry
                        .insert(if_index, (Instant::now() + delay, attempts));
                    self.finish_detach(if_index);
                } else {
                    tracing::error!(name = %s.name, if_index, worker, error = %e, "socket failed to bind; queue not served");
                }
            }
        }
    }

    /// A worker closed its socket on `if_index`; the last one detaches the program.
    pub fn detached(&mut self, worker: usize, if_index: u32) {
        let Some(s) = self.served.get_mut(&if_index) else {
            return;
        };
        s.closing.remove(&worker);
        s.bound.remove(&worker);
        s.workers.retain(|w| *w != worker);
        if s.workers.is_empty() {
            self.finish_detach(if_index);
        }
    }

    fn finish_detach(&mut self, if_index: u32) {
        if let Some(s) = self.served.remove(&if_index) {
            self.steer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .detach(if_index);
            tracing::info!(name = %s.name, if_index, "interface detached");
        }
    }

    /// Whether `if_index` has at least one bound socket.
    pub fn is_bound(&self, if_index: u32) -> bool {
        self.served
            .get(&if_index)
            .is_some_and(|s| !s.bound.is_empty())
    }

    /// Status rows.
    pub fn views(&self) -> Vec<IfaceView> {
        self.served
            .iter()
            .map(|(&if_index, s)| IfaceView {
                name: s.name.clone(),
                if_index,
                role: s.role.name(),
                bind_mode: s.bound.values().next().map(|m| format!("{m:?}")),
                queues: s.bound.len() as u32,
                error: s.error.clone(),
            })
            .collect()
    }

    /// Interface names served by each of `workers` workers.
    pub fn per_worker(&self, workers: usize) -> Vec<Vec<String>> {
        let mut out = vec![Vec::new(); workers];
        for s in self.served.values() {
            for w in s.bound.keys() {
                if let Some(v) = out.get_mut(*w) {
                    v.push(s.name.clone());
                }
            }
        }
        out
    }
}

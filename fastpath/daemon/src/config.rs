//! The config thread: ring -> tortie-abi state -> compiled generations -> workers.
//!
//! Each tick (every [`TICK`], or at once when tortie-control rings the ring's doorbell
//! after writing a message): make sure the ring is open (waiting, with a log line every
//! [`WAIT_LOG_EVERY`], for control to create it; reopening it when control retired the
//! file), drain up to [`MAX_MESSAGES_PER_TICK`] messages into the [`State`], compile the
//! newest state once into a [`Generation`] and hand it to every worker; attach and detach
//! interfaces; push the owned traffic into the steering program; collect worker events;
//! refresh the shared view. The status file is written from that view by its own thread
//! ([`crate::status_file`]), so writing it never delays a message.
//!
//! Nothing here can stop forwarding: a corrupt or undecodable message, a delta on the wrong
//! base or a table set that does not compile is counted and logged (at most once per
//! [`crate::ratelimit::LOG_EVERY`] per kind) and the workers keep the generation they run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tortie_abi::{Message as AbiMessage, State, Tables};
use tortie_pipeline::swap::Publisher;
use tortie_pipeline::{Generation, Pipeline, PipelineConfig};
use tortie_ring::{Consumer, RingError};
use tortie_telemetry::{Health, Liveness};

use crate::attach::Interfaces;
use crate::ifaces;
use crate::owned::owned_traffic;
use crate::ratelimit::Limited;
use crate::steer::SteerHandle;
use crate::view::{Shared, route_views, unix_now};
use crate::worker::{Command, Event};

/// Config thread period.
pub const TICK: Duration = Duration::from_millis(5);
/// How often "waiting for the ring" is logged.
pub const WAIT_LOG_EVERY: Duration = Duration::from_secs(10);
/// How often the served interfaces are compared with the tables without a new generation
/// (interfaces created after the tables named them; attach retries).
pub const RECONCILE_EVERY: Duration = Duration::from_millis(100);
/// Messages applied per tick before compiling (a burst of deltas compiles once).
pub const MAX_MESSAGES_PER_TICK: usize = 256;

/// The config thread's end of one worker.
pub struct WorkerLink {
    /// Generation publisher.
    pub publisher: Publisher,
    /// Commands.
    pub commands: rtrb::Producer<Command>,
    /// Events.
    pub events: rtrb::Consumer<Event>,
}

/// What the config thread starts with.
pub struct ConfigSetup {
    /// Ring path.
    pub ring: PathBuf,
    /// Status file.
    pub status_file: PathBuf,
    /// Workers.
    pub workers: Vec<WorkerLink>,
    /// Interfaces (sockets settings, steering).
    pub interfaces: Interfaces,
    /// Pipeline settings (for rebuilt pipelines).
    pub pipeline: PipelineConfig,
    /// Shared view.
    pub shared: Arc<Shared>,
    /// Readiness.
    pub health: Health,
    /// Heartbeat.
    pub liveness: Liveness,
    /// Steering program.
    pub steer: SteerHandle,
    /// Stop flag.
    pub stop: Arc<AtomicBool>,
}

/// The SNAT settings a pipeline fixes when built.
fn snat_key(
    g: &Generation,
) -> (
    Option<std::net::IpAddr>,
    Option<std::net::IpAddr>,
    (u16, u16),
) {
    (g.snat_v4, g.snat_v6, g.snat_ports)
}

/// The generation every worker starts on: empty tables (nothing served, nothing routed).
pub fn empty_generation() -> Arc<Generation> {
    // Empty tables always compile; fall back to a default-settings build error-free path.
    Arc::new(
        Generation::build(tortie_abi::Generation(0), &Tables::default())
            .unwrap_or_else(|e| panic!("empty tables must compile: {e}")),
    )
}

struct ConfigThread {
    s: ConfigSetup,
    consumer: Option<Consumer>,
    state: State,
    have_snapshot: bool,
    current: Arc<Generation>,
    pipeline_snat: (
        Option<std::net::IpAddr>,
        Option<std::net::IpAddr>,
        (u16, u16),
    ),
    pending: Vec<Option<Arc<Generation>>>,
    buf: Vec<u8>,
    waiting_since: Option<Instant>,
    last_wait_log: Option<Instant>,
    decode_log: Limited,
    mismatch_log: Limited,
    ring_log: Limited,
    compile_log: Limited,
    decode_errors: u64,
    skipped_deltas: u64,
    compile_errors: u64,
    last_status: Option<Instant>,
    last_reconcile: Instant,
    /// When the tick that is reading the ring started (the wake-up).
    tick_started: Instant,
    latency: crate::latency::LatencyWindow,
}

/// Runs the config thread until the stop flag is set.
pub fn run(setup: ConfigSetup) {
    let mut status_writer = None;
    let n = setup.workers.len();
    let current = empty_generation();
    let mut t = ConfigThread {
        pipeline_snat: snat_key(&current),
        current,
        s: setup,
        consumer: None,
        state: State::default(),
        have_snapshot: false,
        pending: vec![None; n],
        buf: Vec::new(),
        waiting_since: None,
        last_wait_log: None,
        decode_log: Limited::default(),
        mismatch_log: Limited::default(),
        ring_log: Limited::default(),
        compile_log: Limited::default(),
        decode_errors: 0,
        skipped_deltas: 0,
        compile_errors: 0,
        last_status: None,
        last_reconcile: Instant::now(),
        tick_started: Instant::now(),
        latency: crate::latency::LatencyWindow::default(),
    };
    while !t.s.stop.load(Ordering::Relaxed) {
        t.tick();
        if status_writer.is_none() {
            // Started after the first tick, so its first document shows the view that tick
            // set up (awaiting the ring, not ready).
            let writer = crate::status_file::spawn(
                t.s.shared.clone(),
                t.s.status_file.clone(),
                t.s.stop.clone(),
            );
            if let Err(e) = &writer {
                tracing::error!(error = %e, "starting the status file writer failed; the status file is written only at exit");
            }
            status_writer = Some(writer);
        }
        t.s.liveness.beat();
        // The producer rings the ring's doorbell after each message: a new generation is
        // picked up at once rather than at the next tick.
        match &t.consumer {
            Some(c) => {
                c.wait(TICK);
            }
            None => std::thread::sleep(TICK),
        }
    }
    if let Some(Ok(writer)) = status_writer {
        let _joined = writer.join();
    }
    t.write_status();
}

impl ConfigThread {
    fn tick(&mut self) {
        self.tick_started = Instant::now();
        let (changed, snapshot) = self.read_ring();
        if changed {
            self.compile_and_publish(snapshot);
        }
        self.retry_pending();
        self.collect_events();
        if changed || self.last_reconcile.elapsed() >= RECONCILE_EVERY {
            self.last_reconcile = Instant::now();
            if self.have_snapshot {
                let wanted = ifaces::wanted(&self.state.tables);
                let links = &mut self.s.workers;
                let n = links.len();
                self.s
                    .interfaces
                    .reconcile(&wanted, n, |w, cmd| links[w].commands.push(cmd).is_ok());
            }
        }
        self.refresh_view();
        if self
            .last_status
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_status = Some(Instant::now());
            let steer = self
                .s
                .steer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .stats();
            self.s.shared.update(|v| v.steer = steer);
        }
    }

    fn open_ring(&mut self) -> bool {
        if self.consumer.is_some() {
            return true;
        }
        match Consumer::open(&self.s.ring) {
            Ok(c) => {
                tracing::info!(ring = %self.s.ring.display(), "ring opened");
                self.consumer = Some(c);
                self.waiting_since = None;
                true
            }
            Err(e) => {
                let since = *self.waiting_since.get_or_insert_with(Instant::now);
                if self
                    .last_wait_log
                    .is_none_or(|t| t.elapsed() >= WAIT_LOG_EVERY)
                {
                    self.last_wait_log = Some(Instant::now());
                    tracing::info!(ring = %self.s.ring.display(), waited_s = since.elapsed().as_secs(), error = %e, "waiting for tortie-control to create the ring");
                }
                false
            }
        }
    }

    /// Applies what the ring holds; returns whether the state changed, and whether a
    /// snapshot was applied.
    fn read_ring(&mut self) -> (bool, bool) {
        if !self.open_ring() {
            return (false, false);
        }
        let mut changed = false;
        let mut snapshot = false;
        for _ in 0..MAX_MESSAGES_PER_TICK {
            let Some(c) = self.consumer.as_mut() else {
                break;
            };
            match c.try_recv(&mut self.buf) {
                Ok(None) => break,
                Ok(Some(m)) => {
                    if c.take_producer_restarted() {
                        tracing::info!("tortie-control restarted; awaiting its snapshot");
                    }
                    let payload = &self.buf[..m.len.min(self.buf.len())];
                    match AbiMessage::decode(payload) {
                        Err(e) => {
                            self.decode_errors += 1;
                            if let Some(sup) = self.decode_log.allow() {
                                tracing::warn!(generation = m.generation, error = %e, suppressed = sup, "ring message does not decode; keeping the current generation");
                            }
                        }
                        Ok((msg, _)) => {
                            let is_snapshot = matches!(msg, AbiMessage::Snapshot { .. });
                            let applied = self.apply(msg);
                            changed |= applied;
                            snapshot |= applied && is_snapshot;
                        }
                    }
                }
                Err(RingError::Retired) => {
                    tracing::info!("ring retired by tortie-control; reopening");
                    self.consumer = None;
                    break;
                }
                Err(e @ RingError::Corrupt { .. }) => {
                    // The ring counted it, resynchronised and asked for a snapshot.
                    if let Some(sup) = self.ring_log.allow() {
                        tracing::warn!(error = %e, suppressed = sup, "corrupt ring record; awaiting a snapshot");
                    }
                    break;
                }
                Err(e) => {
                    if let Some(sup) = self.ring_log.allow() {
                        tracing::warn!(error = %e, suppressed = sup, "ring error; reopening");
                    }
                    self.consumer = None;
                    break;
                }
            }
        }
        (changed, snapshot)
    }

    fn apply(&mut self, msg: AbiMessage) -> bool {
        let is_snapshot = matches!(msg, AbiMessage::Snapshot { .. });
        if !is_snapshot && !self.have_snapshot {
            self.skipped_deltas += 1;
            return false;
        }
        match self.state.apply(msg) {
            Ok(()) => {
                self.have_snapshot |= is_snapshot;
                true
            }
            Err(e) => {
                self.skipped_deltas += 1;
                if let Some(sup) = self.mismatch_log.allow() {
                    tracing::info!(error = %e, suppressed = sup, "delta skipped; awaiting a snapshot");
                }
                false
            }
        }
    }

    fn compile_and_publish(&mut self, snapshot: bool) {
        let g = match Generation::build(self.state.generation, &self.state.tables) {
            Ok(g) => Arc::new(g),
            Err(e) => {
                self.compile_errors += 1;
                if let Some(sup) = self.compile_log.allow() {
                    tracing::error!(generation = self.state.generation.0, error = %e, suppressed = sup, "tables do not compile; keeping the current generation");
                }
                return;
            }
        };
        let snat = snat_key(&g);
        let rebuild = snat != self.pipeline_snat;
        for (w, link) in self.s.workers.iter_mut().enumerate() {
            if rebuild {
                let p = Box::new(Pipeline::new(g.clone(), &self.s.pipeline));
                if link.commands.push(Command::Replace(p)).is_ok() {
                    self.pending[w] = None;
                    continue;
                }
            }
            if let Err(back) = link.publisher.publish(g.clone()) {
                self.pending[w] = Some(back);
            } else {
                self.pending[w] = None;
            }
        }
        if rebuild {
            tracing::info!(snat_v4 = ?snat.0, snat_v6 = ?snat.1, "pipelines rebuilt for new SNAT settings (conntrack restarted)");
        }
        self.pipeline_snat = snat;
        // Every worker has the generation (or a pending retry): the ring-to-workers stage
        // ends here; what follows (steering maps, views) does not delay forwarding.
        let took = self.tick_started.elapsed();
        self.latency.record(took);
        {
            let mut steer = self.s.steer.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = steer.set_owned(&owned_traffic(&self.state.tables)) {
                tracing::error!(error = %e, "updating the uplink's owned traffic failed");
            }
        }
        // `apply_us` per generation, and whether a snapshot was among the messages, so that
        // a latency measurement can tell the changes it made from full snapshots.
        tracing::info!(
            generation = g.id.0,
            routes = self.state.tables.routes.len(),
            endpoints = self.state.tables.endpoints.len(),
            snapshot,
            apply_us = took.as_micros() as u64,
            "generation applied"
        );
        let rule_ids = (0..g.rule_slots() as u32)
            .map(|s| g.rule_id(s).map(|r| r.0))
            .collect();
        let routes = route_views(&self.state.tables);
        self.current = g;
        self.s.shared.update(|v| {
            v.generation = self.state.generation.0;
            v.applied_unix = Some(unix_now());
            v.applied_at = Some(Instant::now());
            v.rule_ids = rule_ids;
            v.routes = routes;
            v.apply_latency = self.latency.summary();
        });
    }

    fn retry_pending(&mut self) {
        for (w, link) in self.s.workers.iter_mut().enumerate() {
            link.publisher.reclaim();
            if let Some(g) = self.pending[w].take()
                && let Err(back) = link.publisher.publish(g)
            {
                self.pending[w] = Some(back);
            }
        }
    }

    fn collect_events(&mut self) {
        for link in &mut self.s.workers {
            while let Ok(ev) = link.events.pop() {
                match ev {
                    Event::Attached {
                        worker,
                        if_index,
                        result,
                    } => self.s.interfaces.attached(worker, if_index, result),
                    Event::Detached { worker, if_index } => {
                        self.s.interfaces.detached(worker, if_index)
                    }
                    Event::Retired(p) => drop(p),
                    Event::Failed { worker, error } => {
                        tracing::error!(worker, %error, "worker failed to start");
                    }
                }
            }
        }
    }

    fn refresh_view(&mut self) {
        let uplink = self.state.tables.settings.uplink_if;
        let ready = self.have_snapshot && (uplink == 0 || self.s.interfaces.is_bound(uplink));
        let reason = if !self.have_snapshot {
            "awaiting the first snapshot from tortie-control".to_string()
        } else if !ready {
            format!("uplink (if_index {uplink}) not attached yet")
        } else {
            format!("generation {} applied", self.state.generation.0)
        };
        self.s.health.set_ready(ready, reason);
        let (ring, awaiting) = match &self.consumer {
            Some(c) => (c.stats(), c.awaiting_snapshot()),
            None => (Default::default(), true),
        };
        let ifs = self.s.interfaces.views();
        let per_worker = self.s.interfaces.per_worker(self.s.workers.len());
        let (de, sd, ce) = (self.decode_errors, self.skipped_deltas, self.compile_errors);
        self.s.shared.update(|v| {
            v.ready = ready;
            v.ring = ring;
            v.awaiting_snapshot = awaiting || !self.have_snapshot;
            v.decode_errors = de;
            v.skipped_deltas = sd;
            v.compile_errors = ce;
            v.interfaces = ifs;
            v.worker_interfaces = per_worker;
        });
    }

    fn write_status(&self) {
        if let Err(e) = self.s.shared.write_status(&self.s.status_file) {
            tracing::warn!(path = %self.s.status_file.display(), error = %e, "writing the status file failed");
        }
    }
}

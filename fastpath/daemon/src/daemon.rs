//! Starting and stopping the daemon: threads, telemetry, signals.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use tortie_pipeline::{Pipeline, PipelineConfig, swap};
use tortie_telemetry::{Health, StatusFn};
use tortie_xsk::{PortConfig, UmemSpec};

use crate::attach::Interfaces;
use crate::cli::Args;
use crate::config::{self, ConfigSetup, WorkerLink, empty_generation};
use crate::error::DaemonError;
use crate::ifaces::SYS_CLASS_NET;
use crate::stats::WorkerStats;
use crate::steer::Steer;
use crate::view::{Shared, View, unix_now};
use crate::worker::{self, WorkerSetup};

/// Command ring depth per worker.
const COMMAND_DEPTH: usize = 256;
/// Generations in flight per worker.
const GENERATION_DEPTH: usize = 4;
/// A worker that has not finished a loop pass for this long makes `/livez` fail.
const WORKER_DEADLINE: Duration = Duration::from_secs(5);

/// UMEM per worker: 32768 frames of 2048 bytes (64 MiB), room for the packet, the
/// pipeline's headroom and 1500-byte MTU frames; with 1024 frames posted per socket, about 30
/// interfaces per worker before the pool runs short.
pub fn umem_spec() -> UmemSpec {
    UmemSpec {
        frames: 32 * 1024,
        frame_size: 2048,
        ring_size: 2048,
    }
}

/// Socket settings: 1024 frames posted per socket (about 1 ms of a busy interface at 1 Mpps,
/// what a descheduled worker on a shared core needs), RX/TX rings of 2048.
pub fn port_config(args: &Args) -> PortConfig {
    PortConfig {
        mode: args.bind.mode(),
        ring_size: 2048,
        batch: worker::RX_BATCH,
        fill_target: 1024,
        external_program: false,
    }
}

/// Sets up logging from the arguments.
pub fn init_logging(args: &Args) -> Result<(), DaemonError> {
    tortie_telemetry::init_logging(&args.log).map_err(DaemonError::Logging)
}

fn spawn(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, DaemonError> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .map_err(|source| DaemonError::Thread { name, source })
}

/// Blocks SIGTERM and SIGINT in the calling thread. Call it first thing in `main`, before
/// any thread starts, so every thread inherits the mask and only [`run`]'s wait receives
/// them (a thread without the mask would take the default action: exit without cleanup).
pub fn block_signals() -> Result<SigSet, DaemonError> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block().map_err(DaemonError::Signals)?;
    Ok(signals)
}

/// Runs until SIGTERM or SIGINT; then stops the workers, detaches XDP and returns.
/// `signals` comes from [`block_signals`].
pub fn run(args: Args, signals: SigSet) -> Result<(), DaemonError> {
    let available = core_affinity::get_core_ids().map_or(1, |c| c.len());
    let workers = args.workers as usize;
    let stats: Vec<Arc<WorkerStats>> = (0..workers)
        .map(|k| Arc::new(WorkerStats::new(k, args.core_for(k, available))))
        .collect();
    let shared = Arc::new(Shared {
        workers: stats.clone(),
        view: Mutex::new(View::default()),
        pid: std::process::id(),
        started_unix: unix_now(),
        mode: args.mode.name(),
    });
    let health = Health::new();
    let registry = Arc::new(crate::metrics::registry(shared.clone()));
    let status_shared = shared.clone();
    let status: StatusFn = Arc::new(move || status_shared.status_json().to_string());
    let server = tortie_telemetry::serve(args.metrics, registry, health.clone(), Some(status))
        .map_err(DaemonError::Metrics)?;
    tracing::info!(
        ring = %args.ring.display(),
        workers,
        mode = args.mode.name(),
        metrics = %server.local_addr(),
        "tortie-fastpath starting"
    );
    if args.bypass {
        tracing::warn!(
            "--bypass: forwarding without the pipeline (no policy, conntrack, routing or NAT); a measurement aid only"
        );
    }

    let steer = Steer::load();
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline_config = PipelineConfig {
        conntrack_capacity: args.conntrack_capacity,
        ..PipelineConfig::default()
    };
    let initial = empty_generation();
    let mut links = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers + 1);
    for (k, st) in stats.iter().enumerate() {
        let (publisher, generations) = swap::channel(GENERATION_DEPTH);
        let (cmd_tx, cmd_rx) = rtrb::RingBuffer::new(COMMAND_DEPTH);
        let (ev_tx, ev_rx) = rtrb::RingBuffer::new(COMMAND_DEPTH);
        links.push(WorkerLink {
            publisher,
            commands: cmd_tx,
            events: ev_rx,
        });
        let setup = WorkerSetup {
            id: k,
            core: st.core,
            mode: args.mode,
            rt_priority: args.worker_rt_priority,
            bypass: args.bypass,
            umem: umem_spec(),
            pipeline: Pipeline::new(initial.clone(), &pipeline_config),
            generations,
            commands: cmd_rx,
            events: ev_tx,
            stats: st.clone(),
            liveness: health.liveness(&format!("worker-{k}"), WORKER_DEADLINE),
            stop: stop.clone(),
            steer: steer.clone(),
        };
        handles.push(spawn(format!("fp-worker-{k}"), move || worker::run(setup))?);
    }
    let config_setup = ConfigSetup {
        ring: args.ring.clone(),
        status_file: args.status_file.clone(),
        workers: links,
        interfaces: Interfaces::new(
            PathBuf::from(SYS_CLASS_NET),
            port_config(&args),
            steer.clone(),
        ),
        pipeline: pipeline_config,
        shared: shared.clone(),
        health: health.clone(),
        liveness: health.liveness("config", Duration::from_secs(10)),
        steer: steer.clone(),
        stop: stop.clone(),
    };
    let config = spawn("fp-config".into(), move || config::run(config_setup))?;

    let sig = signals.wait().map_err(DaemonError::Signals)?;
    tracing::info!(signal = ?sig, "stopping");
    health.set_ready(false, "stopping");
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let _ = config.join();
    steer.lock().unwrap_or_else(|p| p.into_inner()).detach_all();
    drop(server);
    tracing::info!("tortie-fastpath stopped");
    Ok(())
}

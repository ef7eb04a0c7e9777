//! Start-up, the main loop and shut-down.
//!
//! Start: open netlink, keep the kernel's ephemeral ports below the SNAT range, create the
//! host veth pair, choose the node's addresses and register the Node, find the uplink and
//! its gateway, open the ring, list the datastore and send the first snapshot, then route
//! the kernel's traffic for local workloads through the host pair ([`crate::host_routes`]).
//!
//! Loop (one thread; every wait bounded): a datastore change starts a cycle; the changes
//! already delivered join it (the rest of one transaction, or what arrived while the last
//! cycle ran: a burst batches itself without any wait); the cycle writes one message, and the kernel's
//! host-to-workload routes follow the local workloads in it. Between changes,
//! every [`TICK`]: a snapshot the ring asks for is sent; links and neighbours are refreshed
//! (every second while something is unresolved, else every [`SLOW_REFRESH`]); the status is
//! published every [`STATUS_EVERY`] and on a new generation (at most once a second);
//! the BGP speaker is re-planned when one of its inputs changed, and its learned-route
//! changes make the tables dirty (so they leave as a delta within a tick);
//! endpoints the fastpath applied are reported up; SQLite history is compacted now and then.
//!
//! SIGTERM/SIGINT end the loop; the workloads' on-link routes are put back, the host veth
//! pair is deleted and the process exits 0.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tortie_telemetry::Health;

use crate::cluster::NodeAddrs;
use crate::engine::{Engine, HostFacts};
use crate::error::ControlError;
use crate::host::{self, HOST_IF, HOST_KERNEL_IF, LinkCache, Neighbours};
use crate::host_routes::{self, HostRoutes};
use crate::metrics::Metrics;
use crate::netlink::Netlink;
use crate::options::Options;
use crate::publisher::Publisher;
use crate::register::{register, resolve};
use crate::report::{LoopState, StatusWrite, status_writer};
use crate::status::{node_status_key, now_unix};
use crate::sync::Syncer;

/// The loop's longest wait.
pub const TICK: Duration = Duration::from_millis(50);
/// Refresh period of links and neighbours when nothing is unresolved.
pub const SLOW_REFRESH: Duration = Duration::from_secs(10);
/// Status publication period.
pub const STATUS_EVERY: Duration = Duration::from_secs(5);
/// SQLite history kept when compacting (revisions).
const HISTORY_KEPT: i64 = 10_000;

/// Installs SIGTERM/SIGINT handlers that set the returned flag.
pub fn stop_flag() -> Result<Arc<AtomicBool>, ControlError> {
    use tokio::signal::unix::{SignalKind, signal};
    let flag = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| ControlError::Io {
            path: "signal runtime".into(),
            source: e,
        })?;
    let (mut term, mut int) = {
        let _guard = runtime.enter();
        let io = |e| ControlError::Io {
            path: "signal handler".into(),
            source: e,
        };
        (
            signal(SignalKind::terminate()).map_err(io)?,
            signal(SignalKind::interrupt()).map_err(io)?,
        )
    };
    let set = flag.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            });
            set.store(true, Ordering::SeqCst);
        })
        .map_err(|e| ControlError::Io {
            path: "signal thread".into(),
            source: e,
        })?;
    Ok(flag)
}

/// Runs the daemon until `stop` is set.
pub fn run(opts: Options, stop: Arc<AtomicBool>) -> Result<(), ControlError> {
    tortie_telemetry::init_logging(&opts.log)?;
    let started = now_unix();
    let v4_choice = opts.v4_choice()?;
    let v6_choice = opts.v6_choice()?;
    let bgp_on = opts.bgp_enabled()?;
    let config = tortie_datastore::DatastoreConfig::from_env()?;
    let ds = tortie_datastore::open(&config)?;
    tracing::info!(node = %opts.node, datastore = %ds.describe(), "tortie-control starting");

    let health = Health::new();
    health.set_ready(false, "starting");
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let last_status = Arc::new(Mutex::new(String::from("{}")));
    let status_fn: tortie_telemetry::StatusFn = {
        let s = last_status.clone();
        Arc::new(move || s.lock().map(|g| g.clone()).unwrap_or_default())
    };
    let _server = tortie_telemetry::serve(
        opts.metrics,
        Arc::new(registry),
        health.clone(),
        Some(status_fn),
    )?;
    let liveness = health.liveness("control-loop", Duration::from_secs(30));

    let nl = Netlink::open()?;
    match host::fix_port_range() {
        Ok((lo, hi)) => tracing::info!(lo, hi, "kernel ephemeral port range"),
        Err(err) => tracing::warn!(%err, "could not check the ephemeral port range"),
    }
    let host_link = host::create_host_pair(&nl)?;
    tracing::info!(
        host_if = HOST_IF,
        index = host_link.index,
        "host veth pair created"
    );

    let kernel_end = nl.link(HOST_KERNEL_IF)?.ok_or_else(|| {
        ControlError::netlink(format!("find {HOST_KERNEL_IF}"), "vanished after creation")
    })?;
    let host_mac = host_link.mac;

    let ifaces = nl.interfaces()?;
    let v4 = resolve(&v4_choice, &ifaces, false)?;
    let v6 = resolve(&v6_choice, &ifaces, true)?;
    let my = NodeAddrs {
        v4: v4.as_ref().map(|d| d.addr),
        v6: v6.as_ref().map(|d| d.addr),
    };
    register(ds.as_ref(), &opts.node, &my)?;
    tracing::info!(v4 = ?my.v4, v6 = ?my.v6, "node registered");

    let uplink_name = opts
        .uplink
        .clone()
        .or_else(|| v4.as_ref().or(v6.as_ref()).map(|d| d.interface.clone()))
        .filter(|n| !n.is_empty());
    let uplink = match &uplink_name {
        Some(name) => Some(nl.link(name)?.ok_or_else(|| ControlError::Config {
            option: "--uplink",
            reason: format!("no interface {name}"),
        })?),
        None => {
            let gw = nl.default_gateway(false)?;
            match gw {
                Some(g) => nl.links()?.into_iter().find(|l| l.index == g.if_index),
                None => None,
            }
        }
    };
    match &uplink {
        Some(l) => tracing::info!(uplink = %l.name, index = l.index, mtu = l.mtu, "uplink"),
        None => tracing::warn!("no uplink: give --uplink or a node address"),
    }
    let uplink_index = uplink.as_ref().map_or(0, |l| l.index);
    let mut neigh = Neighbours::new(&nl, uplink_index, my.v4.is_none() && my.v6.is_some());
    neigh.refresh(&nl, uplink_index, &[], 1);

    let publisher = Publisher::open(&opts.ring)?;
    tracing::info!(ring = %opts.ring.display(), epoch = publisher.generation() >> 32, "ring open");
    let mut engine = Engine::new(
        &opts.node,
        nl,
        publisher,
        HostFacts {
            my: my.clone(),
            uplink: uplink.clone(),
            host_link,
        },
        neigh,
    );
    if bgp_on {
        engine.bgp = Some(
            crate::bgp::BgpRunner::new(&opts.node, opts.bgp_secrets_dir.clone())?
                .with_routes_from_ipam(opts.routes_from_ipam),
        );
    } else {
        tracing::info!("BGP off");
    }
    let (mut syncer, kvs) = Syncer::start(ds.clone())?;
    engine.apply(crate::sync::Update::Resync(kvs));
    engine.poll_bgp();
    let wanted = engine.neighbour_addrs();
    engine.neigh.refresh(&engine.nl, uplink_index, &wanted, 64);
    let first = cycle(&mut engine, &metrics);
    tracing::info!(generation = ?first, "first snapshot sent");
    let mut host_routes = HostRoutes::new(kernel_end.index, host_mac, &my);
    sync_host_routes(&mut engine, &mut host_routes);

    let (status_tx, status_rx) = mpsc::channel::<StatusWrite>();
    let writer_ds = ds.clone();
    let writer = std::thread::Builder::new()
        .name("status-writer".into())
        .spawn(move || status_writer(writer_ds.as_ref(), &status_rx))
        .map_err(|e| ControlError::Io {
            path: "status thread".into(),
            source: e,
        })?;

    let mut state = LoopState {
        started,
        registered: true,
        ready: first.is_some(),
        last_status: Instant::now() - STATUS_EVERY,
        last_published_generation: 0,
        last_refresh: Instant::now(),
        last_compact: Instant::now(),
        reported: BTreeMap::new(),
        pending_report: BTreeMap::new(),
        uplink_name: uplink.map(|l| l.name),
        describe: ds.describe(),
        resyncs: 0,
        latency: crate::metrics::LatencyWindow::default(),
    };
    if let Some(g) = first {
        state.note_generation(&engine, g);
    }
    health.set_ready(
        state.ready,
        if state.ready {
            "ready"
        } else {
            "first snapshot not sent"
        },
    );

    while !stop.load(Ordering::SeqCst) {
        liveness.beat();
        let mut sent = None;
        match syncer.next(TICK) {
            Ok(Some(update)) => {
                let t0 = Instant::now();
                let cpu0 = crate::cpu_time::thread_cpu_time();
                engine.apply(update);
                // No waiting for more: a wait here is latency every change pays.
                loop {
                    match syncer.next(Duration::ZERO) {
                        Ok(Some(u)) => engine.apply(u),
                        Ok(None) => break,
                        Err(err) => {
                            tracing::warn!(%err, "datastore");
                            break;
                        }
                    }
                }
                let t_applied = Instant::now();
                let cpu_applied = crate::cpu_time::thread_cpu_time();
                sent = cycle(&mut engine, &metrics);
                // Wall-clock and CPU time of each part: the difference is time spent waiting
                // for a CPU (or blocked), not working.
                tracing::debug!(
                    apply_us = (t_applied - t0).as_micros() as u64,
                    cycle_us = t_applied.elapsed().as_micros() as u64,
                    apply_cpu_us = (cpu_applied - cpu0).as_micros() as u64,
                    cycle_cpu_us =
                        (crate::cpu_time::thread_cpu_time() - cpu_applied).as_micros() as u64,
                    sent = sent.is_some(),
                    "change"
                );
                if sent.is_some() {
                    let took = t0.elapsed().as_secs_f64();
                    metrics.compile_seconds.observe(took);
                    state.latency.record(took);
                }
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(%err, "datastore sync failed; retrying in 500 ms");
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
        metrics
            .resyncs
            .inc_by(syncer.resyncs.saturating_sub(state.resyncs));
        state.resyncs = syncer.resyncs;
        metrics
            .datastore_events
            .inc_by(engine.events.saturating_sub(metrics.datastore_events.get()));

        engine.poll_bgp();

        // Periodic work.
        let unresolved = !engine.unresolved_nodes.is_empty()
            || !engine.pending_endpoints.is_empty()
            || engine.neigh.gateway.is_some() && engine.neigh.gateway_mac.is_none();
        let period = if unresolved {
            Duration::from_secs(1)
        } else {
            SLOW_REFRESH
        };
        // A snapshot owed, or learned BGP routes that changed.
        let mut dirty = engine.snapshot_owed() | engine.tables_dirty;
        if state.last_refresh.elapsed() >= period {
            state.last_refresh = Instant::now();
            let wanted = engine.neighbour_addrs();
            dirty |= engine.neigh.refresh(&engine.nl, uplink_index, &wanted, 64);
            dirty |= refresh_links(&mut engine.links, &engine.nl);
            dirty |= !engine.pending_endpoints.is_empty();
            engine.tables_dirty |= dirty;
            host_routes.verify(&engine.nl);
        }
        if dirty && let Some(g) = cycle(&mut engine, &metrics) {
            sent = Some(g);
        }
        if let Some(g) = sent {
            sync_host_routes(&mut engine, &mut host_routes);
            state.note_generation(&engine, g);
            if !state.ready {
                state.ready = true;
                health.set_ready(true, "ready");
            }
        }
        state.report_endpoints(&engine, &opts, &status_tx);
        let generation = engine.publisher.generation();
        let changed = generation != state.last_published_generation
            && state.last_status.elapsed() >= Duration::from_secs(1);
        if changed || state.last_status.elapsed() >= STATUS_EVERY {
            let doc = state.status(&engine, &opts, syncer.revision);
            let text = serde_json::to_string(&doc).unwrap_or_default();
            if let Ok(mut g) = last_status.lock() {
                g.clone_from(&text);
            }
            let _ = status_tx.send(StatusWrite::Put(node_status_key(&opts.node), text));
            state.last_status = Instant::now();
            state.last_published_generation = generation;
            let ring = engine.publisher.stats();
            metrics
                .ring_lag
                .set(ring.sent_messages.saturating_sub(ring.received_messages) as i64);
        }
        if state.describe.starts_with("sqlite:")
            && state.last_compact.elapsed() >= Duration::from_secs(60)
        {
            state.last_compact = Instant::now();
            let target = syncer.revision - HISTORY_KEPT;
            if target > 1 {
                let _ = status_tx.send(StatusWrite::Delete(format!("compact:{target}")));
            }
        }
    }

    tracing::info!("stopping");
    let mut doc = state.status(&engine, &opts, syncer.revision);
    doc.control.ready = false;
    doc.control.stopped = true;
    let _ = status_tx.send(StatusWrite::Put(
        node_status_key(&opts.node),
        serde_json::to_string(&doc).unwrap_or_default(),
    ));
    drop(status_tx);
    if let Some(bgp) = engine.bgp.take() {
        bgp.shutdown();
    }
    let _ = writer.join();
    host_routes.restore(&engine.nl);
    match engine.nl.delete_link(HOST_IF) {
        Ok(_) => tracing::info!(host_if = HOST_IF, "host veth pair deleted"),
        Err(err) => tracing::warn!(%err, "could not delete the host veth pair"),
    }
    Ok(())
}

/// Routes the kernel's traffic for local workloads through the host pair (see
/// [`crate::host_routes`]), after tables naming them were written.
fn sync_host_routes(engine: &mut Engine, host_routes: &mut HostRoutes) {
    let wanted = host_routes::wanted(&engine.routes, &mut engine.links, &engine.nl);
    host_routes.sync(&engine.nl, &wanted);
}

fn refresh_links(links: &mut LinkCache, nl: &Netlink) -> bool {
    links.refresh(nl)
}

fn cycle(engine: &mut Engine, metrics: &Metrics) -> Option<u64> {
    let before = (
        engine.publisher.snapshots,
        engine.publisher.deltas,
        engine.publisher.full,
    );
    let result = engine.cycle();
    metrics
        .snapshots
        .inc_by(engine.publisher.snapshots - before.0);
    metrics.deltas.inc_by(engine.publisher.deltas - before.1);
    metrics.ring_full.inc_by(engine.publisher.full - before.2);
    metrics.endpoints.set(engine.in_tables.len() as i64);
    match result {
        Ok(Some(g)) => {
            metrics.generation.set(g as i64);
            Some(g)
        }
        Ok(None) => None,
        Err(err) => {
            tracing::error!(%err, "could not write to the ring");
            None
        }
    }
}

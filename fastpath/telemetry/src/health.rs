//! Readiness and liveness, shared between the daemon's threads and the HTTP endpoint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Readiness (is the daemon doing its job yet?) and liveness (is every registered component
/// still making progress?). Cheap to clone; every clone sees the same state.
#[derive(Clone, Debug)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    epoch: Instant,
    ready: Mutex<(bool, String)>,
    components: Mutex<Vec<Component>>,
}

#[derive(Debug)]
struct Component {
    name: String,
    deadline: Duration,
    last_beat_ns: Arc<AtomicU64>,
}

/// A component's heartbeat handle. [`Liveness::beat`] is one relaxed atomic store, cheap
/// enough for a worker to call once per loop pass.
#[derive(Clone, Debug)]
pub struct Liveness {
    epoch: Instant,
    last_beat_ns: Arc<AtomicU64>,
}

impl Liveness {
    /// Records progress now.
    pub fn beat(&self) {
        let ns = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_beat_ns.store(ns, Ordering::Relaxed);
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Not ready ("starting"), no components.
    pub fn new() -> Health {
        Health {
            inner: Arc::new(Inner {
                epoch: Instant::now(),
                ready: Mutex::new((false, "starting".into())),
                components: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sets readiness with the reason shown by `/readyz`.
    pub fn set_ready(&self, ready: bool, reason: impl Into<String>) {
        let mut r = self.inner.ready.lock().unwrap_or_else(|p| p.into_inner());
        *r = (ready, reason.into());
    }

    /// Whether the daemon is ready, and why (or why not).
    pub fn ready(&self) -> (bool, String) {
        self.inner
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Registers a component that must beat at least every `deadline`; it counts as having
    /// beaten now.
    pub fn liveness(&self, component: &str, deadline: Duration) -> Liveness {
        let beat = Liveness {
            epoch: self.inner.epoch,
            last_beat_ns: Arc::new(AtomicU64::new(0)),
        };
        beat.beat();
        self.inner
            .components
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Component {
                name: component.into(),
                deadline,
                last_beat_ns: beat.last_beat_ns.clone(),
            });
        beat
    }

    /// `Ok` when every component beat within its deadline, else the stale ones with how
    /// long ago they last beat.
    pub fn live(&self) -> Result<(), String> {
        let now = self.inner.epoch.elapsed();
        let components = self
            .inner
            .components
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let stale: Vec<String> = components
            .iter()
            .filter_map(|c| {
                let last = Duration::from_nanos(c.last_beat_ns.load(Ordering::Relaxed));
                let age = now.saturating_sub(last);
                (age > c.deadline)
                    .then(|| format!("{} (last beat {:.1}s ago)", c.name, age.as_secs_f64()))
            })
            .collect();
        if stale.is_empty() {
            Ok(())
        } else {
            Err(format!("stale: {}", stale.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_set_ready() {
        let h = Health::new();
        assert_eq!(h.ready(), (false, "starting".into()));
        h.clone().set_ready(true, "snapshot applied");
        assert_eq!(h.ready(), (true, "snapshot applied".into()));
    }

    #[test]
    fn a_component_that_stops_beating_goes_stale() {
        let h = Health::new();
        let fast = h.liveness("worker-0", Duration::from_millis(20));
        let _slow = h.liveness("config", Duration::from_secs(60));
        assert!(h.live().is_ok());
        std::thread::sleep(Duration::from_millis(40));
        let err = h.live().unwrap_err();
        assert!(err.contains("worker-0") && !err.contains("config"), "{err}");
        fast.beat();
        assert!(h.live().is_ok());
    }
}

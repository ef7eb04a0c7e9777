//! Prometheus metrics of the control loop.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The metrics tortie-control exports on `/metrics`.
#[derive(Clone)]
pub struct Metrics {
    /// Generation of the last message written.
    pub generation: Gauge,
    /// Messages written minus messages the fastpath received.
    pub ring_lag: Gauge,
    /// Snapshots written.
    pub snapshots: Counter,
    /// Deltas written.
    pub deltas: Counter,
    /// Sends refused because the ring was full.
    pub ring_full: Counter,
    /// Relists of the datastore.
    pub resyncs: Counter,
    /// Datastore changes received.
    pub datastore_events: Counter,
    /// Time from the first change of a burst to the message on the ring (compile, diff,
    /// encode, write), seconds.
    pub compile_seconds: Histogram,
    /// Local endpoints in the tables.
    pub endpoints: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them under `tortie_control_`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            generation: Gauge::default(),
            ring_lag: Gauge::default(),
            snapshots: Counter::default(),
            deltas: Counter::default(),
            ring_full: Counter::default(),
            resyncs: Counter::default(),
            datastore_events: Counter::default(),
            compile_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            endpoints: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("tortie_control");
        r.register(
            "generation",
            "Generation of the last table message written",
            m.generation.clone(),
        );
        r.register(
            "ring_lag_messages",
            "Messages written minus messages received by the fastpath",
            m.ring_lag.clone(),
        );
        r.register("snapshots", "Snapshots written", m.snapshots.clone());
        r.register("deltas", "Deltas written", m.deltas.clone());
        r.register(
            "ring_full",
            "Sends refused for a full ring",
            m.ring_full.clone(),
        );
        r.register("resyncs", "Datastore relists", m.resyncs.clone());
        r.register(
            "datastore_events",
            "Datastore changes received",
            m.datastore_events.clone(),
        );
        r.register(
            "compile_seconds",
            "Time from a change to its message on the ring",
            m.compile_seconds.clone(),
        );
        r.register(
            "endpoints",
            "Local endpoints in the tables",
            m.endpoints.clone(),
        );
        m
    }
}

/// The most recent change-to-ring latencies, for quantiles in the published status.
#[derive(Debug, Default)]
pub struct LatencyWindow {
    samples: std::collections::VecDeque<f64>,
}

/// Quantiles of a [`LatencyWindow`], milliseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LatencySummary {
    /// Samples in the window.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl LatencyWindow {
    /// Samples kept.
    pub const CAPACITY: usize = 1024;

    /// Adds one sample (seconds).
    pub fn record(&mut self, seconds: f64) {
        if self.samples.len() == Self::CAPACITY {
            self.samples.pop_front();
        }
        self.samples.push_back(seconds * 1000.0);
    }

    /// Nearest-rank quantiles.
    pub fn summary(&self) -> LatencySummary {
        let mut v: Vec<f64> = self.samples.iter().copied().collect();
        if v.is_empty() {
            return LatencySummary::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        LatencySummary {
            count: v.len(),
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: v[v.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut w = LatencyWindow::default();
        assert_eq!(w.summary().count, 0);
        for i in 1..=100 {
            w.record(f64::from(i) / 1000.0);
        }
        let s = w.summary();
        assert_eq!(
            (s.count, s.p50_ms, s.p99_ms, s.max_ms),
            (100, 50.0, 99.0, 100.0)
        );
        for _ in 0..LatencyWindow::CAPACITY {
            w.record(0.001);
        }
        assert_eq!(w.summary().max_ms, 1.0);
    }
}

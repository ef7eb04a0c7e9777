//! A window of recent ring-to-workers latencies: from the config thread waking with a new
//! message to the compiled generation being handed to every worker (decode, apply, compile,
//! publish). Shown as `apply_latency` in the status file, so a policy-update latency
//! measurement can break the end-to-end time into stages.

use std::collections::VecDeque;

use serde_json::{Value, json};

/// Samples kept (milliseconds).
pub const CAPACITY: usize = 1024;

/// Recent samples, oldest first.
#[derive(Debug, Clone, Default)]
pub struct LatencyWindow {
    samples: VecDeque<f64>,
}

impl LatencyWindow {
    /// Adds one sample.
    pub fn record(&mut self, took: std::time::Duration) {
        if self.samples.len() == CAPACITY {
            self.samples.pop_front();
        }
        self.samples.push_back(took.as_secs_f64() * 1e3);
    }

    /// `{"count","p50_ms","p99_ms","max_ms"}` (nearest rank; zeros when empty).
    pub fn summary(&self) -> Value {
        let mut v: Vec<f64> = self.samples.iter().copied().collect();
        if v.is_empty() {
            return json!({"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0});
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        json!({
            "count": v.len(),
            "p50_ms": rank(0.5),
            "p99_ms": rank(0.99),
            "max_ms": v[v.len() - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn nearest_rank_quantiles_over_a_bounded_window() {
        let mut w = LatencyWindow::default();
        assert_eq!(w.summary()["count"], 0);
        for i in 1..=100 {
            w.record(Duration::from_millis(i));
        }
        let s = w.summary();
        assert_eq!(s["count"], 100);
        assert_eq!(s["p50_ms"], 50.0);
        assert_eq!(s["p99_ms"], 99.0);
        for _ in 0..CAPACITY {
            w.record(Duration::from_millis(1));
        }
        assert_eq!(w.summary()["max_ms"], 1.0);
        assert_eq!(w.summary()["count"], CAPACITY);
    }
}

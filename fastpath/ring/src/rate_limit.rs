//! A log gate that lets one line through per interval and counts the ones it held back, so
//! a flood of corrupt records cannot flood the log.

use std::time::{Duration, Instant};

/// Admits at most one event per `interval`.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// A gate admitting one event per `interval`.
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` if this event may be logged, `n` being how many were suppressed since the
    /// last one logged; `None` if it must be dropped.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_one_per_interval_and_counts_the_rest() {
        let mut g = RateLimit::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(g.admit(t0), Some(0));
        assert_eq!(g.admit(t0 + Duration::from_millis(10)), None);
        assert_eq!(g.admit(t0 + Duration::from_millis(999)), None);
        assert_eq!(g.admit(t0 + Duration::from_millis(1000)), Some(2));
        assert_eq!(g.admit(t0 + Duration::from_millis(1001)), None);
    }
}

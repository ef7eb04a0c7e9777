//! Log rate limiting for bad input on the config thread.

use std::time::{Duration, Instant};

/// Least interval between two log lines of one kind of bad input.
pub const LOG_EVERY: Duration = Duration::from_secs(1);

/// Rate limiter for one kind of log line: logs at most once per [`LOG_EVERY`] and says how
/// many were suppressed.
#[derive(Debug, Default)]
pub struct Limited {
    pub(crate) last: Option<Instant>,
    suppressed: u64,
}

impl Limited {
    /// `Some(suppressed)` when a line may be logged now.
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_logs_once_per_interval_and_counts_the_rest() {
        let mut l = Limited::default();
        assert_eq!(l.allow(), Some(0));
        assert_eq!(l.allow(), None);
        assert_eq!(l.allow(), None);
        l.last = Some(Instant::now() - LOG_EVERY);
        assert_eq!(l.allow(), Some(2));
    }
}

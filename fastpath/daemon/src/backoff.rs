//! The adaptive mode's wait: spin while frames keep coming, sleep briefly when they stop.

use std::time::Duration;

/// Bounded back-off of the adaptive mode: spin for a while, then sleep 20 µs doubling to
/// 1 ms while nothing arrives.
#[derive(Debug, Default)]
pub struct Backoff {
    idle_passes: u32,
}

impl Backoff {
    const SPIN_PASSES: u32 = 512;
    const MAX_SLEEP_US: u64 = 1000;

    /// A pass moved frames: spin again.
    pub fn busy(&mut self) {
        self.idle_passes = 0;
    }

    /// A pass found nothing: spin, or sleep once spinning went on long enough.
    pub fn idle(&mut self) {
        self.idle_passes = self.idle_passes.saturating_add(1);
        if self.idle_passes <= Self::SPIN_PASSES {
            std::hint::spin_loop();
            return;
        }
        let doublings = (self.idle_passes - Self::SPIN_PASSES).min(6);
        let us = (20u64 << doublings).min(Self::MAX_SLEEP_US);
        std::thread::sleep(Duration::from_micros(us));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn backoff_spins_then_sleeps_bounded() {
        let mut b = Backoff::default();
        let t = Instant::now();
        for _ in 0..Backoff::SPIN_PASSES {
            b.idle();
        }
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "spinning does not sleep"
        );
        let t = Instant::now();
        for _ in 0..3 {
            b.idle();
        }
        let slept = t.elapsed();
        assert!(slept >= Duration::from_micros(40 + 80 + 160), "{slept:?}");
        b.busy();
        assert_eq!(b.idle_passes, 0);
    }
}

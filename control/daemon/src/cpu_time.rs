//! The calling thread's CPU time, beside wall-clock stage times in the debug lines: on a busy
//! machine a stage's wall time also holds the time its thread waited for a CPU, and the two
//! together tell work from waiting.

use std::time::Duration;

/// CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(t.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_work_and_not_sleep() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time() - before;
        assert!(slept < Duration::from_millis(25), "sleeping used {slept:?}");

        let before = thread_cpu_time();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let worked = thread_cpu_time() - before;
        // A loaded machine may deschedule the loop for a while; some CPU time must show.
        assert!(
            worked >= Duration::from_millis(1),
            "busy loop used {worked:?}"
        );
        assert!(worked <= started.elapsed() + Duration::from_millis(5));
    }
}

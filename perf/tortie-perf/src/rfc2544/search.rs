//! The RFC 2544 throughput search (section 26.1): the highest offered rate at which the
//! device loses no more than the stated fraction of frames, found by binary search over the
//! offered rate. Independent of how a trial runs, so it is tested against model devices.
//!
//! A trial passes only if the loss is within the tolerance *and* the generator actually sent
//! (nearly) the offered rate. On veth the AF_XDP generator feels back-pressure from the path
//! behind it (its transmit buffers are released only once the DUT has handled the frames), so
//! an overloaded device can show up as a generator that fell short rather than as loss; RFC
//! 2544 measures at rates actually offered, so falling short counts as a failure.

use serde::Serialize;

/// What one trial at an offered rate observed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Probe {
    /// Frames lost / frames sent.
    pub loss: f64,
    /// Rate the generator actually sent, packets/s.
    pub tx_pps: f64,
    /// Rate received at the sink, packets/s.
    pub rx_pps: f64,
}

/// One step of the search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Step {
    /// Offered rate, packets/s (0: unlimited, the generator's own ceiling).
    pub offered_pps: u64,
    /// What the trial saw.
    pub probe: Probe,
    /// Whether the loss was within the tolerance.
    pub pass: bool,
}

/// Search parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    /// Highest acceptable loss fraction (0: RFC 2544's zero loss).
    pub loss_tolerance: f64,
    /// Stop when the interval between the highest pass and lowest fail is at most this
    /// fraction of the lowest fail.
    pub resolution: f64,
    /// Most trials, the first (unlimited) one included.
    pub max_trials: usize,
    /// Lowest rate tried, packets/s.
    pub min_pps: u64,
    /// Share of the offered rate the generator must reach for a trial to pass.
    pub min_offered_share: f64,
}

/// What the search found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// Highest offered rate that passed, packets/s (`None`: even `min_pps` lost too much).
    pub throughput_pps: Option<u64>,
    /// The rate received at that step.
    pub throughput_rx_pps: Option<f64>,
    /// The highest rate the generator reached in this setup (its unlimited first trial)
    /// passed: the throughput is at least that. With back-pressure on veth this ceiling may be
    /// the generator's or the device's; the two cannot be told apart from the outside.
    pub at_generator_ceiling: bool,
    /// Every step in order.
    pub steps: Vec<Step>,
}

/// Run the search. `trial(rate)` runs one trial at `rate` packets/s (0: unlimited);
/// `progress` sees each step as it completes.
pub fn search<E>(
    cfg: &SearchConfig,
    mut trial: impl FnMut(u64) -> Result<Probe, E>,
    mut progress: impl FnMut(&Step),
) -> Result<Outcome, E> {
    let tol = cfg.loss_tolerance.max(0.0);
    let share = cfg.min_offered_share.clamp(0.0, 1.0);
    let mut steps = Vec::new();
    let mut run = |rate: u64, steps: &mut Vec<Step>| -> Result<Step, E> {
        let probe = trial(rate)?;
        let step = Step {
            offered_pps: rate,
            probe,
            pass: probe.loss <= tol && (rate == 0 || probe.tx_pps >= rate as f64 * share),
        };
        progress(&step);
        steps.push(step);
        Ok(step)
    };
    // The generator's ceiling in this setup, then that ceiling as a paced rate: if it passes
    // there is nothing to search.
    let first = run(0, &mut steps)?;
    let ceiling = (first.probe.tx_pps.round() as u64).max(cfg.min_pps);
    let at_ceiling = run(ceiling, &mut steps)?;
    if at_ceiling.pass {
        return Ok(Outcome {
            throughput_pps: Some(ceiling),
            throughput_rx_pps: Some(at_ceiling.probe.rx_pps),
            at_generator_ceiling: true,
            steps,
        });
    }
    let (mut lo, mut hi) = (cfg.min_pps, ceiling);
    let mut best: Option<Step> = None;
    let mut tried_floor = false;
    while steps.len() < cfg.max_trials.max(3) {
        // Once the interval has closed without a pass, try the floor itself once.
        let rate = if hi.saturating_sub(lo) as f64 <= cfg.resolution * hi as f64 {
            if best.is_some() || tried_floor {
                break;
            }
            tried_floor = true;
            lo
        } else {
            lo + (hi - lo) / 2
        };
        let step = run(rate.max(1), &mut steps)?;
        if step.pass {
            lo = rate;
            best = Some(step);
        } else {
            hi = rate;
            if rate == lo {
                break;
            }
        }
    }
    Ok(Outcome {
        throughput_pps: best.map(|s| s.offered_pps),
        throughput_rx_pps: best.map(|s| s.probe.rx_pps),
        at_generator_ceiling: false,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that forwards up to `capacity` pps and a generator that sends at most
    /// `ceiling` pps.
    fn model(capacity: f64, ceiling: f64) -> impl FnMut(u64) -> Result<Probe, ()> {
        move |rate| {
            let tx = if rate == 0 {
                ceiling
            } else {
                (rate as f64).min(ceiling)
            };
            let rx = tx.min(capacity);
            Ok(Probe {
                loss: (tx - rx) / tx,
                tx_pps: tx,
                rx_pps: rx,
            })
        }
    }

    /// A device that forwards up to `capacity` pps and pushes back on the generator: the
    /// generator never sends faster than the device drains, so nothing is lost.
    fn backpressure(capacity: f64, ceiling: f64) -> impl FnMut(u64) -> Result<Probe, ()> {
        move |rate| {
            let want = if rate == 0 {
                ceiling
            } else {
                (rate as f64).min(ceiling)
            };
            let tx = want.min(capacity);
            Ok(Probe {
                loss: 0.0,
                tx_pps: tx,
                rx_pps: tx,
            })
        }
    }

    fn cfg(tol: f64) -> SearchConfig {
        SearchConfig {
            loss_tolerance: tol,
            resolution: 0.01,
            max_trials: 30,
            min_pps: 1000,
            min_offered_share: 0.97,
        }
    }

    #[test]
    fn finds_the_capacity_within_the_resolution() {
        let mut seen = 0;
        let out = search(&cfg(0.0), model(300_000.0, 1_000_000.0), |_| seen += 1).unwrap();
        let t = out.throughput_pps.unwrap() as f64;
        assert!((300_000.0 * 0.98..=300_000.0).contains(&t), "{t}");
        assert!(!out.at_generator_ceiling);
        assert_eq!(seen, out.steps.len());
        assert!(out.steps.len() <= 30);
        // Every pass is at or below capacity, every fail above.
        for s in &out.steps {
            assert_eq!(
                s.pass,
                (s.offered_pps as f64) <= 300_000.0 && s.offered_pps != 0
            );
        }
    }

    #[test]
    fn a_device_faster_than_the_generator_is_flagged() {
        let out = search(&cfg(0.0), model(2e6, 500_000.0), |_| {}).unwrap();
        assert_eq!(out.throughput_pps, Some(500_000));
        assert!(out.at_generator_ceiling);
        assert_eq!(out.steps.len(), 2);
        assert_eq!(out.steps[1].offered_pps, 500_000);
    }

    #[test]
    fn backpressure_without_loss_still_finds_the_capacity() {
        // The unlimited trial runs at the device's rate (the generator is held back), and that
        // rate, paced, passes: the capacity, flagged as the ceiling reached in this setup.
        let out = search(&cfg(0.0), backpressure(35_000.0, 500_000.0), |_| {}).unwrap();
        assert_eq!(out.throughput_pps, Some(35_000));
        assert!(out.at_generator_ceiling);
        // A lossy unlimited trial, then paced offers the generator cannot reach above 35 kpps
        // without any loss: those count as failures, so the search converges on 35 kpps.
        let out = search(
            &cfg(0.0),
            |rate| {
                Ok::<_, ()>(if rate == 0 {
                    Probe {
                        loss: 0.5,
                        tx_pps: 100_000.0,
                        rx_pps: 50_000.0,
                    }
                } else {
                    let tx = (rate as f64).min(35_000.0);
                    Probe {
                        loss: 0.0,
                        tx_pps: tx,
                        rx_pps: tx,
                    }
                })
            },
            |_| {},
        )
        .unwrap();
        let t = out.throughput_pps.unwrap() as f64;
        assert!((35_000.0 * 0.98..=35_000.0 / 0.97).contains(&t), "{t}");
        assert!(
            out.steps
                .iter()
                .any(|s| s.offered_pps > 36_100 && !s.pass && s.probe.loss == 0.0)
        );
    }

    #[test]
    fn loss_tolerance_raises_the_found_rate() {
        // With 5% allowed, up to capacity / 0.95 passes.
        let out = search(&cfg(0.05), model(300_000.0, 1e6), |_| {}).unwrap();
        let t = out.throughput_pps.unwrap() as f64;
        assert!(t > 300_000.0 * 1.03 && t <= 300_000.0 / 0.95 + 1.0, "{t}");
    }

    #[test]
    fn nothing_passes_on_a_dead_device() {
        let out = search(&cfg(0.0), model(0.0, 1e6), |_| {}).unwrap();
        assert_eq!(out.throughput_pps, None);
        assert!(out.steps.iter().all(|s| !s.pass));
        assert!(
            out.steps.iter().any(|s| s.offered_pps == 1000),
            "the floor was tried"
        );
        assert!(out.steps.len() <= 30);
    }

    #[test]
    fn trial_budget_bounds_the_search() {
        let mut c = cfg(0.0);
        c.max_trials = 4;
        c.resolution = 1e-9;
        let out = search(&c, model(123_456.0, 1e6), |_| {}).unwrap();
        assert_eq!(out.steps.len(), 4);
    }

    #[test]
    fn trial_errors_stop_the_search() {
        let mut device = model(1e5, 1e6);
        let mut n = 0;
        let r = search(
            &cfg(0.0),
            |rate| {
                n += 1;
                if n == 3 {
                    Err("boom")
                } else {
                    device(rate).map_err(|_| "model")
                }
            },
            |_| {},
        );
        assert_eq!(r.unwrap_err(), "boom");
        assert_eq!(n, 3);
    }
}

//! Medians over interleaved trials and the ratios the node issue sets targets for.

use serde::Serialize;

use crate::dut::trial::TrialResult;
use crate::dut::{Scenario, System};

/// The median (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The trial whose forwarding rate is the median (the lower middle one of an even count).
pub fn median_trial(trials: &[TrialResult]) -> Option<&TrialResult> {
    let mut v: Vec<&TrialResult> = trials.iter().collect();
    v.sort_by(|a, b| a.mpps.total_cmp(&b.mpps));
    v.get(v.len().saturating_sub(1) / 2).copied()
}

/// One scenario's medians: the shape of `runs[]` in the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// System name.
    pub system: &'static str,
    /// Rules (or ipset entries); 0 where it does not apply.
    pub rules: usize,
    /// Frame size with FCS.
    pub frame_bytes: usize,
    /// Trials that ran.
    pub trials: usize,
    /// Median forwarded rate, Mpps.
    pub mpps: f64,
    /// Lowest trial's rate.
    pub mpps_min: f64,
    /// Highest trial's rate.
    pub mpps_max: f64,
    /// Median sent rate, Mpps (the offered load).
    pub tx_mpps: f64,
    /// Median loss fraction.
    pub loss: f64,
    /// Median of the trials' median latencies, µs.
    pub p50_us: Option<f64>,
    /// Median of the trials' 99th percentiles, µs.
    pub p99_us: Option<f64>,
    /// Latency distribution of the trial whose rate is the median (for the CDF plot; not in
    /// the JSON).
    #[serde(skip)]
    pub cdf_us: Vec<(f64, f64)>,
}

/// Summarise the trials of one scenario (`None` without trials).
pub fn summarise(
    scenario: Scenario,
    frame_bytes: usize,
    trials: &[TrialResult],
) -> Option<Summary> {
    if trials.is_empty() {
        return None;
    }
    let pick = |f: fn(&TrialResult) -> f64| trials.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&TrialResult) -> Option<f64>| {
        median(&trials.iter().filter_map(f).collect::<Vec<_>>())
    };
    let mpps = pick(|t| t.mpps);
    Some(Summary {
        system: scenario.system.name(),
        rules: scenario.rules,
        frame_bytes,
        trials: trials.len(),
        mpps: median(&mpps)?,
        mpps_min: mpps.iter().copied().fold(f64::INFINITY, f64::min),
        mpps_max: mpps.iter().copied().fold(0.0, f64::max),
        tx_mpps: median(&pick(|t| t.tx_mpps))?,
        loss: median(&pick(|t| t.loss))?,
        p50_us: opt(|t| t.p50_us),
        p99_us: opt(|t| t.p99_us),
        cdf_us: median_trial(trials)
            .map(|t| t.cdf_us.clone())
            .unwrap_or_default(),
    })
}

/// One ratio of medians, with the target the node issue sets where it sets one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    /// `a / b` in words.
    pub name: String,
    /// Median Mpps of `a` over median Mpps of `b`; `None` when either is missing or `b` is 0.
    pub value: Option<f64>,
    /// The target, if any.
    pub target: Option<f64>,
    /// Whether the target is met (`None` without a value or a target).
    pub met: Option<bool>,
}

fn find(s: &[Summary], system: System, rules: Option<usize>) -> Option<&Summary> {
    s.iter()
        .find(|x| x.system == system.name() && rules.is_none_or(|r| x.rules == r))
}

fn ratio(name: String, a: Option<&Summary>, b: Option<&Summary>, target: Option<f64>) -> Ratio {
    let value = match (a, b) {
        (Some(a), Some(b)) if b.mpps > 0.0 => Some(a.mpps / b.mpps),
        _ => None,
    };
    Ratio {
        name,
        value,
        target,
        met: value.zip(target).map(|(v, t)| v >= t),
    }
}

/// Every system against kernel forwarding, then tortie against the bypassed forwarder, kernel
/// with conntrack and ipset, and kernel with linear iptables (targets 0.9, 1.0, 10), and the
/// rule sweep's largest count against its smallest (target 0.9). `rules` is the count of the
/// headline tortie scenario.
pub fn ratios(s: &[Summary], rules: usize, sweep: &[usize]) -> Vec<Ratio> {
    let kernel = find(s, System::Kernel, None);
    let mut out: Vec<Ratio> = s
        .iter()
        .filter(|x| x.system != System::Kernel.name())
        .map(|x| {
            let label = if x.rules > 0 {
                format!("{}@{}", x.system, x.rules)
            } else {
                x.system.to_string()
            };
            ratio(format!("{label} / kernel"), Some(x), kernel, None)
        })
        .collect();
    let tortie = find(s, System::Tortie, Some(rules));
    let t = format!("tortie@{rules}");
    out.push(ratio(
        format!("{t} / tortie-bypass"),
        tortie,
        find(s, System::TortieBypass, None),
        Some(0.9),
    ));
    out.push(ratio(
        format!("{t} / kernel-ct-ipset"),
        tortie,
        find(s, System::KernelCtIpset, Some(rules)),
        Some(1.0),
    ));
    out.push(ratio(
        format!("{t} / kernel-iptables"),
        tortie,
        find(s, System::KernelIptables, Some(rules)),
        Some(10.0),
    ));
    if let (Some(&lo), Some(&hi)) = (sweep.iter().min(), sweep.iter().max())
        && lo != hi
    {
        out.push(ratio(
            format!("tortie@{hi} / tortie@{lo}"),
            find(s, System::Tortie, Some(hi)),
            find(s, System::Tortie, Some(lo)),
            Some(0.9),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(mpps: f64, p50: Option<f64>) -> TrialResult {
        TrialResult {
            offered_pps: 0,
            tx_packets: 1000,
            rx_packets: 900,
            tx_mpps: 0.5,
            mpps,
            loss: 0.1,
            sink_dropped: 0,
            min_us: p50,
            p50_us: p50,
            p99_us: p50.map(|x| x * 2.0),
            cdf_us: vec![(0.5, mpps)],
        }
    }

    #[test]
    fn medians_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn summary_takes_medians_and_extremes() {
        let sc = Scenario {
            system: System::Kernel,
            rules: 0,
        };
        let s = summarise(
            sc,
            64,
            &[t(0.3, Some(10.0)), t(0.1, None), t(0.2, Some(30.0))],
        )
        .unwrap();
        assert_eq!(
            (s.mpps, s.mpps_min, s.mpps_max, s.trials),
            (0.2, 0.1, 0.3, 3)
        );
        assert_eq!(s.p50_us, Some(20.0));
        assert_eq!(s.p99_us, Some(40.0));
        assert_eq!(s.system, "kernel");
        assert_eq!(
            s.cdf_us,
            vec![(0.5, 0.2)],
            "the median trial's distribution"
        );
        let four = [t(0.4, None), t(0.1, None), t(0.3, None), t(0.2, None)];
        assert_eq!(median_trial(&four).map(|t| t.mpps), Some(0.2));
        assert!(summarise(sc, 64, &[]).is_none());
    }

    #[test]
    fn ratios_against_kernel_and_targets() {
        let mk = |system: System, rules: usize, mpps: f64| Summary {
            system: system.name(),
            rules,
            frame_bytes: 64,
            trials: 1,
            mpps,
            mpps_min: mpps,
            mpps_max: mpps,
            tx_mpps: mpps,
            loss: 0.0,
            p50_us: None,
            p99_us: None,
            cdf_us: Vec::new(),
        };
        let s = vec![
            mk(System::Kernel, 0, 0.4),
            mk(System::KernelIptables, 1000, 0.04),
            mk(System::Tortie, 1000, 0.2),
            mk(System::Tortie, 10, 0.25),
            mk(System::Tortie, 10000, 0.2),
        ];
        let r = ratios(&s, 1000, &[10, 1000, 10000]);
        let get = |n: &str| {
            r.iter()
                .find(|x| x.name == n)
                .unwrap_or_else(|| panic!("{n}: {r:?}"))
        };
        assert!((get("kernel-iptables@1000 / kernel").value.unwrap() - 0.1).abs() < 1e-9);
        assert!(r.iter().all(|x| !x.name.starts_with("kernel /")));
        let ipt = get("tortie@1000 / kernel-iptables");
        assert!((ipt.value.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(ipt.met, Some(false));
        let bypass = get("tortie@1000 / tortie-bypass");
        assert_eq!((bypass.value, bypass.met), (None, None));
        let sweep = get("tortie@10000 / tortie@10");
        assert!((sweep.value.unwrap() - 0.8).abs() < 1e-9);
        assert_eq!(sweep.met, Some(false));
    }
}

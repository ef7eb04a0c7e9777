//! A fixed-size log-linear latency histogram (32 sub-buckets per power of two, so a reported
//! percentile is within ~3% of the true value). Recording is an index computation and one add:
//! no allocation on the receive path.

/// Values below this are counted exactly.
const LINEAR: u64 = 64;
/// Sub-buckets per power of two above `LINEAR`.
const SUB: u64 = 32;
/// Buckets needed for every u64.
const BUCKETS: usize = (LINEAR + (64 - 6) * SUB) as usize;

/// Latency histogram in nanoseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros()); // >= 6
    let m = v >> (e - 5); // 32..=63
    (LINEAR + (e - 6) * SUB + (m - SUB)) as usize
}

/// Middle of bucket `i`.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let e = (i - LINEAR) / SUB + 6;
    let m = (i - LINEAR) % SUB + SUB;
    let width = 1u64 << (e - 5);
    (m << (e - 5)) + width / 2
}

impl Histogram {
    /// Count one sample.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.total += 1;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// Add another histogram's samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Samples counted.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.total
    }

    /// The smallest sample (exact), `None` without samples.
    pub fn min(&self) -> Option<u64> {
        (self.total > 0).then_some(self.min)
    }

    /// The `q`-quantile (0..=1) in nanoseconds, `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(value(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_value_agree_within_three_percent() {
        for v in (0..100_000u64).chain([1 << 20, 123_456_789, u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(i < BUCKETS, "{v}");
            let back = value(i) as f64;
            assert!(
                (back - v as f64).abs() <= (v as f64) * 0.031 + 0.5,
                "{v} -> {back}"
            );
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5).unwrap() as f64;
        let p99 = h.quantile(0.99).unwrap() as f64;
        assert!((p50 - 500_000.0).abs() < 500_000.0 * 0.03, "{p50}");
        assert!((p99 - 990_000.0).abs() < 990_000.0 * 0.03, "{p99}");
        assert_eq!(h.quantile(1.0), Some(1_000_000));
        let mut g = Histogram::default();
        g.record(5);
        g.merge(&h);
        assert_eq!(g.len(), 1001);
        assert_eq!(g.quantile(0.0), Some(5));
        assert_eq!((g.min(), h.min()), (Some(5), Some(1000)));
        assert_eq!(Histogram::default().min(), None);
    }
}

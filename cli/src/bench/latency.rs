//! A latency histogram: log-linear buckets over nanoseconds (exact below 256 ns, then 128
//! buckets per power of two, so a percentile is within 0.8% of the true value), fixed size, no
//! allocation per sample.

/// Sub-buckets per power of two.
const SUB: u64 = 128;
/// Buckets: the exact range [0, 2*SUB) plus SUB per further power of two up to 2^64.
const BUCKETS: usize = (SUB as usize) * 58;

/// Recorded latencies.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

fn index(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let top = 63 - u64::from(v.leading_zeros()); // >= 8
    let shift = top - 7;
    ((shift * SUB) + (v >> shift)) as usize
}

/// The middle of bucket `i`'s value range.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let mantissa = i - shift * SUB;
    (mantissa << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// An empty histogram (its buckets are allocated at the first sample).
    pub const fn new() -> Histogram {
        Histogram {
            counts: Vec::new(),
            total: 0,
            max: 0,
        }
    }

    /// Records one latency in nanoseconds.
    pub fn record(&mut self, nanos: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[index(nanos)] += 1;
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    /// Samples recorded.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0 < q <= 1) in nanoseconds; 0 without samples.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i).min(self.max);
            }
        }
        self.max
    }

    /// The largest sample in nanoseconds.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// `lat_p50_us=.. lat_p99_us=.. lat_p999_us=.. lat_max_us=..` (microseconds, one decimal).
    pub fn fields(&self) -> String {
        let us = |n: u64| n as f64 / 1000.0;
        format!(
            "lat_p50_us={:.1} lat_p99_us={:.1} lat_p999_us={:.1} lat_max_us={:.1}",
            us(self.quantile(0.5)),
            us(self.quantile(0.99)),
            us(self.quantile(0.999)),
            us(self.max()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..1_000_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let i = index(v);
            assert!(i < BUCKETS, "{v}");
            assert!(i >= last, "{v}");
            last = i;
            let mid = value(i);
            let err = (mid as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err <= 0.008, "{v} -> {mid}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 5_000_000.0).abs() / 5_000_000.0 < 0.01, "{p50}");
        let p999 = h.quantile(0.999) as f64;
        assert!((p999 - 9_990_000.0).abs() / 9_990_000.0 < 0.01, "{p999}");
        assert_eq!(h.max(), 10_000_000);
        assert_eq!(h.count(), 10_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}

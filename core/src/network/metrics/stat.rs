//! One measured quantity over a sliding window, as Kafka's `SampledStat`s keep it: rates and
//! averages over two 30-second samples (Kafka's defaults), measured on the core's `now`.

use std::time::{Duration, Instant};

/// Length of one sample.
const SAMPLE: Duration = Duration::from_secs(30);
/// Samples kept.
const SAMPLES: usize = 2;

#[derive(Debug, Clone, Copy)]
struct Sample {
    start: Instant,
    /// `start + SAMPLE` (compared per recorded value).
    end: Instant,
    sum: f64,
    count: u64,
    max: f64,
}

/// One measured quantity over the window: its sum (for rates), count and max.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stat {
    samples: Vec<Sample>,
}

impl Stat {
    pub(crate) fn record(&mut self, value: f64, now: Instant) {
        if !super::RECORDING {
            return;
        }
        match self.samples.last_mut() {
            Some(s) if now < s.end => {
                s.sum += value;
                s.count += 1;
                s.max = s.max.max(value);
            }
            _ => {
                if self.samples.len() == SAMPLES {
                    self.samples.remove(0);
                }
                self.samples.push(Sample {
                    start: now,
                    end: now + SAMPLE,
                    sum: value,
                    count: 1,
                    max: value,
                });
            }
        }
    }

    /// Records `count` values at once, whose sum is `sum` and largest `max` (as `count`
    /// calls of [`Stat::record`] at `now` would; nothing when `count` is 0).
    pub(crate) fn record_many(&mut self, sum: f64, count: u64, max: f64, now: Instant) {
        if !super::RECORDING || count == 0 {
            return;
        }
        self.record(max, now);
        if let Some(s) = self.samples.last_mut() {
            s.sum += sum - max;
            s.count += count - 1;
        }
    }

    fn live(&self, now: Instant) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(move |s| now < s.start + SAMPLE * SAMPLES as u32)
    }

    /// Sum per second over the window (Kafka's `Rate`: elapsed since the oldest live sample,
    /// at least one sample long so a fresh producer does not report huge rates).
    pub(crate) fn rate(&self, now: Instant, first: Instant) -> f64 {
        // A fold from +0.0: `Sum` for floats starts at -0.0, and idle rates printed "-0.00".
        let sum = self.live(now).fold(0.0, |a, s| a + s.sum);
        let oldest = self.live(now).map(|s| s.start).next().unwrap_or(now);
        let elapsed = now
            .saturating_duration_since(oldest.max(first))
            .max(SAMPLE.min(now.saturating_duration_since(first)))
            .max(Duration::from_millis(1));
        sum / elapsed.as_secs_f64()
    }

    /// Count per second over the window.
    pub(crate) fn count_rate(&self, now: Instant, first: Instant) -> f64 {
        let mut counts = self.clone();
        for s in &mut counts.samples {
            s.sum = s.count as f64;
        }
        counts.rate(now, first)
    }

    /// Average value over the window (NaN without values, as Kafka reports).
    pub(crate) fn avg(&self, now: Instant) -> f64 {
        let (sum, count) = self
            .live(now)
            .fold((0.0, 0u64), |(s, c), x| (s + x.sum, c + x.count));
        if count == 0 {
            f64::NAN
        } else {
            sum / count as f64
        }
    }

    /// Largest value over the window (NaN without values).
    pub(crate) fn max(&self, now: Instant) -> f64 {
        self.live(now).map(|s| s.max).fold(f64::NAN, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_averages_follow_the_window() {
        let t0 = Instant::now();
        let mut s = Stat::default();
        assert!(s.avg(t0).is_nan());
        for i in 0..30 {
            s.record(10.0, t0 + Duration::from_secs(i));
        }
        let now = t0 + Duration::from_secs(30);
        assert!((s.rate(now, t0) - 10.0).abs() < 1e-9, "{}", s.rate(now, t0));
        assert_eq!(s.avg(now), 10.0);
        assert_eq!(s.max(now), 10.0);
        assert!((s.count_rate(now, t0) - 1.0).abs() < 1e-9);
        // Two minutes later the window has moved past every sample.
        let later = t0 + Duration::from_secs(150);
        assert_eq!(s.rate(later, t0), 0.0);
        assert!(s.avg(later).is_nan());
    }

    #[test]
    fn recording_many_at_once_is_recording_each() {
        if !super::super::RECORDING {
            return;
        }
        let t0 = Instant::now();
        let (mut each, mut many) = (Stat::default(), Stat::default());
        // Across a sample's end: the second run of values opens a new sample in both.
        for (at, values) in [(0, [3.0, 9.0, 4.0]), (31, [1.0, 2.0, 6.0])] {
            let now = t0 + Duration::from_secs(at);
            for v in values {
                each.record(v, now);
            }
            let max = values.iter().copied().fold(f64::MIN, f64::max);
            many.record_many(values.iter().sum(), values.len() as u64, max, now);
        }
        many.record_many(0.0, 0, 0.0, t0 + Duration::from_secs(40));
        let now = t0 + Duration::from_secs(40);
        assert_eq!(many.avg(now), each.avg(now));
        assert_eq!(many.max(now), each.max(now));
        assert_eq!(many.max(now), 9.0);
        assert_eq!(many.rate(now, t0), each.rate(now, t0));
        assert_eq!(many.count_rate(now, t0), each.count_rate(now, t0));
    }
}

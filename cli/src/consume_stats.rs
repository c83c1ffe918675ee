//! `kafkit consume --stats`: records/s, bytes/s and each partition's lag on stderr, every
//! interval and once more at exit, from the consumer's own metrics.

use std::time::{Duration, Instant};

use kafkit_blocking::Consumer;

/// Prints the consumer's statistics periodically (only when `--stats` was given).
pub struct StatsReporter {
    every: Option<Duration>,
    last: Instant,
}

impl StatsReporter {
    /// A reporter printing every `every`, or a silent one for `None`.
    pub fn new(every: Option<Duration>) -> Self {
        StatsReporter {
            every,
            last: Instant::now(),
        }
    }

    /// Prints if an interval has passed since the last report.
    pub fn tick(&mut self, consumer: &Consumer) {
        if let Some(every) = self.every {
            if self.last.elapsed() >= every {
                self.last = Instant::now();
                report(consumer, "stats");
            }
        }
    }

    /// The last report, at exit (before the consumer closes).
    pub fn finish(&mut self, consumer: &Consumer) {
        if self.every.is_some() {
            report(consumer, "final stats");
        }
    }
}

fn report(consumer: &Consumer, what: &str) {
    // Statistics are best effort: a consumer that failed has its error reported elsewhere.
    let Ok(m) = consumer.metrics() else {
        return;
    };
    eprintln!(
        "{what}: {:.1} records/s, {:.1} bytes/s; {} records, {} bytes in all",
        m.records_consumed_rate,
        m.bytes_consumed_rate,
        m.records_consumed_total,
        m.bytes_consumed_total
    );
    for (tp, l) in &m.partitions {
        let show = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        eprintln!(
            "  {tp}: position {}, high watermark {}, lag {}",
            show(l.position),
            show(l.high_watermark),
            show(l.lag)
        );
    }
}

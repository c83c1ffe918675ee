//! What one client's run measured, the `key=value` line it is printed as, and the ratio line
//! that compares two clients.

use std::collections::BTreeMap;
use std::time::Duration;

use super::args::{BenchOpts, Client, Workload};
use super::latency::Histogram;

/// The line a worker prints when its measured phase begins.
pub const PHASE_START: &str = "bench-phase=start";
/// The line a worker prints when its measured phase ends.
pub const PHASE_END: &str = "bench-phase=end";

/// One client's measured phase.
#[derive(Debug)]
pub struct Measured {
    /// The client.
    pub client: Client,
    /// The workload.
    pub workload: Workload,
    /// Records acknowledged (produce), received (consume, e2e).
    pub records: u64,
    /// Value bytes of those records.
    pub bytes: u64,
    /// Records that failed.
    pub errors: u64,
    /// Wall time of the measured phase.
    pub elapsed: Duration,
    /// CPU time (user + system, every thread) of the measured phase.
    pub cpu: Duration,
    /// Peak resident set size of the process, KiB.
    pub max_rss_kib: u64,
    /// Latencies, when measured.
    pub latency: Option<Histogram>,
}

impl Measured {
    /// The result line (without the broker's fields, which the parent adds).
    pub fn line(&self, opts: &BenchOpts) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let per_rec = self.cpu.as_secs_f64() * 1e6 / (self.records.max(1) as f64);
        let mut line = format!(
            "client={} workload={} records={} size={} acks={} idempotence={} linger_ms={} \
             batch_size={} compression={} partitions={} rate={} elapsed_s={:.3} rec_per_s={:.0} \
             mb_per_s={:.2} cpu_us_per_rec={:.3} cpu_util={:.2} peak_rss_mb={:.1}",
            self.client.name(),
            self.workload.name(),
            self.records,
            opts.size,
            opts.acks(),
            opts.idempotence(),
            opts.linger_ms,
            opts.batch_size,
            opts.compression,
            opts.partitions,
            opts.rate_for(self.workload)
                .map_or_else(|| "max".to_owned(), |r| r.to_string()),
            secs,
            self.records as f64 / secs,
            self.bytes as f64 / 1e6 / secs,
            per_rec,
            self.cpu.as_secs_f64() / secs,
            self.max_rss_kib as f64 / 1024.0,
        );
        if self.client == Client::Kafkit {
            line.push_str(&format!(" runtime={}", opts.kafkit_runtime.name()));
        }
        if let Some(h) = &self.latency {
            line.push(' ');
            line.push_str(&h.fields());
        }
        if self.errors > 0 {
            line.push_str(&format!(" errors={}", self.errors));
        }
        line
    }
}

/// The `key=value` fields of a line.
pub fn parse(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `ratio=kafkit/rdkafka ...`: kafkit's figure over rdkafka's for the fields both lines have.
pub fn ratio_line(kafkit: &str, rdkafka: &str) -> String {
    let a = parse(kafkit);
    let b = parse(rdkafka);
    let mut line = format!(
        "ratio=kafkit/rdkafka workload={}",
        a.get("workload").map_or("?", String::as_str)
    );
    for key in ["size", "acks", "compression", "linger_ms", "rate"] {
        if let Some(v) = a.get(key) {
            line.push_str(&format!(" {key}={v}"));
        }
    }
    for key in [
        "cpu_us_per_rec",
        "rec_per_s",
        "mb_per_s",
        "peak_rss_mb",
        "lat_p50_us",
        "lat_p99_us",
        "lat_p999_us",
    ] {
        let x = a.get(key).and_then(|v| v.parse::<f64>().ok());
        let y = b.get(key).and_then(|v| v.parse::<f64>().ok());
        if let (Some(x), Some(y)) = (x, y) {
            if y > 0.0 {
                line.push_str(&format!(" {key}={:.2}", x / y));
            }
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_of_the_shared_fields() {
        let k = "client=kafkit workload=produce size=100 acks=1 cpu_us_per_rec=1.0 rec_per_s=200";
        let r = "client=rdkafka workload=produce size=100 acks=1 cpu_us_per_rec=4.0 rec_per_s=100";
        let line = ratio_line(k, r);
        assert_eq!(
            line,
            "ratio=kafkit/rdkafka workload=produce size=100 acks=1 cpu_us_per_rec=0.25 \
             rec_per_s=2.00"
        );
        assert_eq!(parse(&line)["cpu_us_per_rec"], "0.25");
    }
}

//! What one client's run measured, the `key=value` line it is printed as, and the ratio line
//! that compares two clients; also the counting both clients' workers share (delivery
//! outcomes of a producer, records received by a consumer loop).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::args::{BenchOpts, Client, Workload};
use super::latency::Histogram;
use super::{stamped_nanos, PhaseSpan};
use crate::error::CliError;

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
    /// The system part of `cpu` (the kernel's work for the process: the socket copies
    /// both clients pay alike, wake-ups).
    pub sys: Duration,
    /// Peak resident set size of the process, KiB.
    pub max_rss_kib: u64,
    /// Latencies, when measured.
    pub latency: Option<Histogram>,
}

impl Measured {
    /// A client's result: `span` is the measured phase's wall and CPU time (`Phase::end`); the
    /// peak RSS is read now.
    pub fn new(
        client: Client,
        workload: Workload,
        span: PhaseSpan,
        records: u64,
        bytes: u64,
        errors: u64,
        latency: Option<Histogram>,
    ) -> Measured {
        Measured {
            client,
            workload,
            records,
            bytes,
            errors,
            elapsed: span.elapsed,
            cpu: span.cpu,
            sys: span.sys,
            max_rss_kib: super::rusage::peak_rss_kib(),
            latency,
        }
    }

    /// A producer's result: the records `deliveries` counted as acknowledged, of `size` bytes
    /// each, and their latencies if `with_latency` (offered-rate runs).
    pub fn produced(
        client: Client,
        span: PhaseSpan,
        deliveries: &Deliveries,
        size: u64,
        with_latency: bool,
    ) -> Measured {
        let ok = deliveries.ok();
        Measured::new(
            client,
            Workload::Produce,
            span,
            ok,
            ok * size,
            deliveries.errors(client),
            with_latency.then(|| deliveries.histogram()),
        )
    }

    /// The result line (without the broker's fields, which the parent adds).
    pub fn line(&self, opts: &BenchOpts) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let per_rec = self.cpu.as_secs_f64() * 1e6 / (self.records.max(1) as f64);
        let sys_per_rec = self.sys.as_secs_f64() * 1e6 / (self.records.max(1) as f64);
        let mut line = format!(
            "client={} workload={} records={} size={} acks={} idempotence={} defaults={} \
             linger_ms={} batch_size={} compression={} partitions={} rate={} elapsed_s={:.3} rec_per_s={:.0} \
             mb_per_s={:.2} cpu_us_per_rec={:.3} sys_us_per_rec={:.3} cpu_util={:.2} peak_rss_mb={:.1}",
            self.client.name(),
            self.workload.name(),
            self.records,
            opts.size,
            opts.acks(),
            opts.idempotence(),
            opts.defaults.name(),
            opts.linger_ms()
                .map_or_else(|| "default".to_owned(), |v| v.to_string()),
            opts.batch_size()
                .map_or_else(|| "default".to_owned(), |v| v.to_string()),
            opts.compression,
            opts.partitions,
            opts.rate_for(self.workload)
                .map_or_else(|| "max".to_owned(), |r| r.to_string()),
            secs,
            self.records as f64 / secs,
            self.bytes as f64 / 1e6 / secs,
            per_rec,
            sys_per_rec,
            self.cpu.as_secs_f64() / secs,
            self.max_rss_kib as f64 / 1024.0,
        );
        if self.client == Client::Kafkit {
            line.push_str(&format!(" runtime={}", opts.kafkit_runtime.name()));
        }
        if let Some(n) = opts.txn_records() {
            line.push_str(&format!(
                " transactional=true txn_records={n} transactions={}",
                self.records.div_ceil(n)
            ));
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

/// Delivery outcomes, counted from a producer's delivery callbacks (either client's).
#[derive(Debug)]
pub struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    latency: Mutex<Histogram>,
}

impl Deliveries {
    /// Nothing counted (`const`, so it can be a `static`).
    pub const fn new() -> Deliveries {
        Deliveries {
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
            latency: Mutex::new(Histogram::new()),
        }
    }

    /// One record acknowledged.
    pub fn delivered(&self) {
        self.ok.fetch_add(1, Ordering::Relaxed);
    }

    /// One record failed; the first error is kept.
    pub fn failed(&self, e: impl Display) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_error
            .lock()
            .expect("error lock")
            .get_or_insert_with(|| e.to_string());
    }

    /// One acknowledgement's latency, in nanoseconds.
    pub fn latency(&self, nanos: u64) {
        self.latency.lock().expect("latency lock").record(nanos);
    }

    /// Records acknowledged.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// The latencies recorded.
    pub fn histogram(&self) -> Histogram {
        self.latency.lock().expect("latency lock").clone()
    }

    /// The first error, taken (after a warm-up).
    #[cfg(feature = "rdkafka")]
    pub fn take_error(&self) -> Option<String> {
        self.first_error.lock().expect("error lock").take()
    }

    /// Forgets the acknowledgements and latencies counted so far (after a warm-up).
    #[cfg(feature = "rdkafka")]
    pub fn reset(&self) {
        self.ok.store(0, Ordering::Relaxed);
        *self.latency.lock().expect("latency lock") = Histogram::new();
    }

    /// Records that failed; the first error is printed on stderr.
    pub fn errors(&self, client: Client) -> u64 {
        let errors = self.failed.load(Ordering::Relaxed);
        if let Some(e) = self.first_error.lock().expect("error lock").as_ref() {
            eprintln!(
                "kafkit bench: {}: {errors} records failed, the first with: {e}",
                client.name()
            );
        }
        errors
    }
}

/// How long a consumer may go without a record before the run fails.
pub const STALL: Duration = Duration::from_secs(30);

/// What a consumer loop received (either client's), and when it last received anything.
#[derive(Debug)]
pub struct Received {
    /// Records counted.
    pub records: u64,
    /// Their value bytes.
    pub bytes: u64,
    /// End-to-end latencies of stamped values ([`Received::stamped`]).
    pub latency: Histogram,
    last: Instant,
}

impl Received {
    /// Nothing received yet; the stall clock starts now.
    pub fn new() -> Received {
        Received {
            records: 0,
            bytes: 0,
            latency: Histogram::new(),
            last: Instant::now(),
        }
    }

    /// One record with `bytes` of value.
    #[inline]
    pub fn record(&mut self, bytes: u64) {
        self.records += 1;
        self.bytes += bytes;
    }

    /// One value stamped by the sender (`stamp`), received at `now`: its latency from the
    /// scheduled send time is recorded. An unstamped value (the warm-up record) is not
    /// counted.
    pub fn stamped(&mut self, value: &[u8], t0: Instant, now: Instant) {
        let Some(sent) = stamped_nanos(value) else {
            return;
        };
        let received = now.duration_since(t0).as_nanos() as u64;
        self.latency.record(received.saturating_sub(sent));
        self.record(value.len() as u64);
    }

    /// Something arrived at `now`.
    pub fn progress(&mut self, now: Instant) {
        self.last = now;
    }

    /// After a poll that returned nothing: an error once nothing has arrived for [`STALL`].
    pub fn check_stall(&self, who: &str, of: u64) -> Result<(), CliError> {
        if self.last.elapsed() > STALL {
            return Err(CliError::Failed(format!(
                "{who}: no record for {STALL:?} after {} of {of}",
                self.records
            )));
        }
        Ok(())
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
    for key in [
        "size",
        "acks",
        "defaults",
        "compression",
        "linger_ms",
        "rate",
    ] {
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

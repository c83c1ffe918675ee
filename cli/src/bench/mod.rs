//! `kafkit bench`: kafkit and rust-rdkafka against the same broker, one client at a time, each
//! in a child process of its own.
//!
//! The parent (`kafkit bench produce|consume|e2e`) provides the broker (the development broker
//! in this process by default, librdkafka's mock cluster with `--broker mock`, or the cluster
//! named by -b/KAFKA_BOOTSTRAP), creates a fresh topic per client (consume: fills one topic
//! once, untimed), and runs `kafkit bench worker` once per client. A worker connects and warms
//! up, prints [`report::PHASE_START`], runs the measured phase, prints [`report::PHASE_END`]
//! and then its result line: its own `getrusage(RUSAGE_SELF)` delta (every thread; the system
//! part also on its own, as `sys_us_per_rec`) and peak RSS. The parent reads its own CPU time at the two phase lines, so the broker's CPU over the
//! measured phase (when the broker runs in the parent) goes on that client's line as
//! `broker_cpu_us_per_rec`. After both clients, a `ratio=kafkit/rdkafka` line compares them.

pub mod args;
mod broker;
mod kafkit_client;
mod latency;
#[cfg(feature = "rdkafka")]
mod rdkafka_client;
mod report;
mod rusage;
mod spans;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::args::GlobalArgs;
use crate::error::CliError;
use args::{BenchArgs, BenchCommand, BenchOpts, Client, ClientChoice, WorkerArgs, Workload};
use broker::Broker;

/// Runs `kafkit bench ...`.
pub fn run(global: &GlobalArgs, args: &BenchArgs) -> Result<(), CliError> {
    match &args.command {
        BenchCommand::Produce(opts) => parent(global, Workload::Produce, opts),
        BenchCommand::Consume(opts) => parent(global, Workload::Consume, opts),
        BenchCommand::E2e(opts) => parent(global, Workload::E2e, opts),
        BenchCommand::Worker(args) => worker(global, args),
    }
}

/// The usage error for rdkafka in a build without it.
#[cfg(not(feature = "rdkafka"))]
fn no_rdkafka(what: &str) -> CliError {
    CliError::Usage(format!(
        "{what} needs rust-rdkafka, which this kafkit was built without: build it with \
         `cargo build --release -p kafkit-cli --features rdkafka`"
    ))
}

/// The clients to run, in order.
fn clients(choice: Option<ClientChoice>) -> Result<Vec<Client>, CliError> {
    let default = if cfg!(feature = "rdkafka") {
        ClientChoice::Both
    } else {
        ClientChoice::Kafkit
    };
    let clients = match choice.unwrap_or(default) {
        ClientChoice::Kafkit => vec![Client::Kafkit],
        ClientChoice::Rdkafka => vec![Client::Rdkafka],
        ClientChoice::Both => vec![Client::Kafkit, Client::Rdkafka],
    };
    #[cfg(not(feature = "rdkafka"))]
    if clients.contains(&Client::Rdkafka) {
        return Err(no_rdkafka("--client rdkafka|both"));
    }
    Ok(clients)
}

/// Whether -b or KAFKA_BOOTSTRAP named the cluster (else the default broker is started here).
fn bootstrap_given() -> bool {
    use clap::parser::ValueSource;
    use clap::CommandFactory;
    let Ok(matches) = crate::args::Cli::command().try_get_matches() else {
        return false;
    };
    matches!(
        matches.value_source("bootstrap"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

fn parent(global: &GlobalArgs, workload: Workload, opts: &BenchOpts) -> Result<(), CliError> {
    if opts.transactional && (workload != Workload::Produce || opts.rate.is_some()) {
        return Err(CliError::Usage(
            "--transactional is a produce throughput workload: `kafkit bench produce \
             --transactional` without --rate"
                .into(),
        ));
    }
    let clients = clients(opts.client)?;
    let broker = if bootstrap_given() {
        Broker::external(global)?
    } else {
        Broker::start(opts.broker, opts.partitions)?
    };
    eprintln!(
        "kafkit bench: {} against {} ({}), clients {}",
        workload.name(),
        broker.name(),
        broker.bootstrap(),
        clients
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let records = opts.records_for(workload);
    let prefilled = if workload == Workload::Consume {
        let topic = broker.new_topic(opts.partitions)?;
        let started = Instant::now();
        broker.fill(&topic, records, opts)?;
        eprintln!(
            "kafkit bench: filled {topic} with {records} records of {} bytes in {:.1} s",
            opts.size,
            started.elapsed().as_secs_f64()
        );
        Some(topic)
    } else {
        None
    };

    let mut lines: Vec<(Client, String)> = Vec::new();
    let mut failures = Vec::new();
    for client in clients {
        let topic = match &prefilled {
            Some(t) => t.clone(),
            None => broker.new_topic(opts.partitions)?,
        };
        match run_worker(global, &broker, workload, client, &topic, opts) {
            Ok(line) => {
                println!("{line}");
                std::io::stdout().flush()?;
                lines.push((client, line));
            }
            Err(e) => {
                eprintln!("kafkit bench: {}: {e}", client.name());
                failures.push(format!("{}: {e}", client.name()));
            }
        }
        if prefilled.is_none() {
            broker.delete_topic(&topic);
        }
    }
    if let Some(t) = &prefilled {
        broker.delete_topic(t);
    }
    let find = |c: Client| lines.iter().find(|(k, _)| *k == c).map(|(_, l)| l);
    if let (Some(k), Some(r)) = (find(Client::Kafkit), find(Client::Rdkafka)) {
        println!("{}", report::ratio_line(k, r));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(failures.join("; ")))
    }
}

/// Runs one client in a child process and returns its line with the broker's fields added.
fn run_worker(
    global: &GlobalArgs,
    broker: &Broker,
    workload: Workload,
    client: Client,
    topic: &str,
    opts: &BenchOpts,
) -> Result<String, CliError> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("-b").arg(broker.bootstrap());
    if let Some(f) = &global.config_file {
        cmd.arg("-F").arg(f);
    }
    for (k, v) in &global.options {
        cmd.arg("-X").arg(format!("{k}={v}"));
    }
    cmd.args(["bench", "worker", "--workload", workload.name()])
        .args(["--run-client", client.name(), "--topic", topic])
        .args(opts.to_worker_args(workload))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut start = None;
    let mut end = None;
    let mut result = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line == report::PHASE_START {
            start = Some(rusage::now().cpu);
        } else if line == report::PHASE_END {
            end = Some(rusage::now().cpu);
        } else if line.starts_with("client=") {
            result = Some(line);
        } else {
            eprintln!("{line}");
        }
    }
    let status = child.wait()?;
    let Some(mut line) = result.filter(|_| status.success()) else {
        return Err(CliError::Failed(format!("the worker failed ({status})")));
    };
    line.push_str(&format!(" broker={}", broker.name()));
    if broker.in_process() {
        if let (Some(s), Some(e)) = (start, end) {
            let records = report::parse(&line)
                .get("records")
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0)
                .max(1);
            let us = e.saturating_sub(s).as_secs_f64() * 1e6 / records as f64;
            line.push_str(&format!(" broker_cpu_us_per_rec={us:.3}"));
        }
    }
    Ok(line)
}

fn worker(global: &GlobalArgs, args: &WorkerArgs) -> Result<(), CliError> {
    let recorder = args.opts.trace_spans.as_deref().map(spans::install);
    let measured = match args.run_client {
        Client::Kafkit => kafkit_client::run(global, args)?,
        #[cfg(feature = "rdkafka")]
        Client::Rdkafka => rdkafka_client::run(global, args)?,
        #[cfg(not(feature = "rdkafka"))]
        Client::Rdkafka => return Err(no_rdkafka("--client rdkafka")),
    };
    let mut line = measured.line(&args.opts);
    if let Some(r) = recorder {
        line.push_str(&format!(" spans={}", r.closed()));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// The measured phase: started and ended by the worker, marked on stdout for the parent.
pub(crate) struct Phase {
    /// When it started.
    pub started: Instant,
    usage: rusage::Usage,
}

/// What a [`Phase`] measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhaseSpan {
    /// Wall time.
    pub elapsed: Duration,
    /// CPU time, user and system, of every thread.
    pub cpu: Duration,
    /// The system part of `cpu`.
    pub sys: Duration,
}

impl Phase {
    /// Marks the start.
    pub fn start() -> Phase {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", report::PHASE_START);
        let _ = out.flush();
        Phase {
            usage: rusage::now(),
            started: Instant::now(),
        }
    }

    /// Marks the end: wall time and CPU time (every thread) since the start.
    pub fn end(self) -> PhaseSpan {
        let elapsed = self.started.elapsed();
        let now = rusage::now();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", report::PHASE_END);
        let _ = out.flush();
        PhaseSpan {
            elapsed,
            cpu: now.cpu.saturating_sub(self.usage.cpu),
            sys: now.sys.saturating_sub(self.usage.sys),
        }
    }
}

/// 64 distinct values of `size` bytes: pseudo-random lowercase text and spaces (which
/// compresses, though not trivially), so compressed runs do not see one value repeated.
pub(crate) fn payloads(size: usize) -> Vec<Bytes> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..64)
        .map(|_| {
            let mut v = Vec::with_capacity(size);
            for _ in 0..size {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let c = (state % 32) as u8;
                v.push(if c >= 26 { b' ' } else { b'a' + c });
            }
            Bytes::from(v)
        })
        .collect()
}

/// Sleeps until record `i`'s scheduled send time at `rate` records/s from `t0`, and returns
/// that time (latency is measured from it, so a late sender does not hide its delay).
pub(crate) fn pace(t0: Instant, i: u64, rate: u64) -> Instant {
    let scheduled = t0 + Duration::from_nanos((i as u128 * 1_000_000_000 / rate as u128) as u64);
    let now = Instant::now();
    if scheduled > now {
        std::thread::sleep(scheduled - now);
    }
    scheduled
}

/// Writes `at` (nanoseconds after `t0`, plus one: zero marks an unstamped value) into the first
/// 8 bytes of `value`.
pub(crate) fn stamp(value: &mut [u8], t0: Instant, at: Instant) {
    let nanos = at.duration_since(t0).as_nanos() as u64 + 1;
    value[..8].copy_from_slice(&nanos.to_le_bytes());
}

/// The send time [`stamp`] wrote, in nanoseconds after `t0`; `None` for an unstamped value.
pub(crate) fn stamped_nanos(value: &[u8]) -> Option<u64> {
    let head: [u8; 8] = value.get(..8)?.try_into().ok()?;
    u64::from_le_bytes(head).checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn stamps_round_trip_and_zero_is_unstamped() {
        let t0 = Instant::now();
        let mut v = BytesMut::from(&payloads(16)[0][..]);
        stamp(&mut v, t0, t0 + Duration::from_micros(1500));
        assert_eq!(stamped_nanos(&v), Some(1_500_000));
        assert_eq!(stamped_nanos(&[0u8; 16]), None);
        assert_eq!(stamped_nanos(&[1u8; 4]), None);
    }

    #[test]
    fn payloads_differ_and_have_the_size() {
        let p = payloads(100);
        assert_eq!(p.len(), 64);
        assert!(p.iter().all(|v| v.len() == 100));
        assert_ne!(p[0], p[1]);
    }
}

//! The command line of `kafkit bench`: the three workloads, their shared options and the hidden
//! worker subcommand the parent runs each client in.

use clap::{Args, Subcommand, ValueEnum};

/// `kafkit bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The workloads.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce --records records of --size bytes as fast as the producer takes them (or at
    /// --rate records/s, measuring ack latency), then flush.
    Produce(BenchOpts),
    /// Consume --records records of --size bytes from a topic filled beforehand (untimed).
    Consume(BenchOpts),
    /// Produce at --rate records/s (default 10,000) and consume them in the same process;
    /// latency is receive time minus send time.
    E2e(BenchOpts),
    /// One client's run, in a child process of `kafkit bench` (internal).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

/// Which workload a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Produce.
    Produce,
    /// Consume a pre-filled topic.
    Consume,
    /// Produce at a rate and consume in the same process.
    E2e,
}

impl Workload {
    /// The name on the output lines.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Produce => "produce",
            Workload::Consume => "consume",
            Workload::E2e => "e2e",
        }
    }
}

/// Which clients to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientChoice {
    /// kafkit on the tokio driver.
    Kafkit,
    /// rust-rdkafka (librdkafka); needs a build with `--features rdkafka`.
    Rdkafka,
    /// kafkit, then rdkafka.
    Both,
}

/// One client, as a worker runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Client {
    /// kafkit on the tokio driver.
    Kafkit,
    /// rust-rdkafka.
    Rdkafka,
}

impl Client {
    /// The name on the output lines.
    pub fn name(self) -> &'static str {
        match self {
            Client::Kafkit => "kafkit",
            Client::Rdkafka => "rdkafka",
        }
    }
}

/// Where the broker comes from when neither -b nor KAFKA_BOOTSTRAP is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerChoice {
    /// kafkit's development broker (the simulated cluster), in the `kafkit bench` process.
    Dev,
    /// librdkafka's mock cluster, in the `kafkit bench` process (needs `--features rdkafka`).
    Mock,
}

/// The tokio runtime the kafkit client runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// `#[tokio::main]`'s default: a multi-threaded runtime (one worker per core).
    Multi,
    /// A current-thread runtime: the application and the client share one thread.
    Current,
}

impl Runtime {
    /// The name on the output lines.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Multi => "multi",
            Runtime::Current => "current",
        }
    }
}

/// Whose settings the clients run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Defaults {
    /// Equal settings on both clients (the benchmark's own: linger.ms 5, batch.size 16384,
    /// 5 requests in flight, 32 MiB of buffer, socket buffers left to the OS, CRCs checked).
    Same,
    /// Each client at its own defaults for every setting the command line does not give
    /// (librdkafka: batch.size 1,000,000, its queue bounds; kafkit: Java's); only what
    /// defines the workload (acks and idempotence, compression, the consumer's start
    /// offset) and an explicit --linger-ms or --batch-size are set.
    Own,
}

impl Defaults {
    /// The name on the output lines.
    pub fn name(self) -> &'static str {
        match self {
            Defaults::Same => "same",
            Defaults::Own => "own",
        }
    }
}

/// linger.ms of both producers with `--defaults same` when --linger-ms is not given.
pub const SAME_LINGER_MS: u64 = 5;

/// batch.size of both producers with `--defaults same` when --batch-size is not given.
pub const SAME_BATCH_SIZE: u64 = 16_384;

/// The options every workload shares.
#[derive(Debug, Clone, Args)]
pub struct BenchOpts {
    /// Records to produce or consume (default: about 100 MB of values, at least 10,000; with
    /// --rate, 5 seconds' worth).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub records: Option<u64>,
    /// Value size of each record in bytes (no keys).
    #[arg(long, value_name = "BYTES", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(8..=10_000_000))]
    pub size: u64,
    /// acks: 0, 1, or all (all turns idempotence on, 0 and 1 turn it off, on both clients).
    #[arg(long, value_name = "ACKS", default_value = "1", value_parser = ["0", "1", "all", "-1"])]
    pub acks: String,
    /// linger.ms of both producers (default with `--defaults same`: 5; with `own`: each
    /// client's own).
    #[arg(long = "linger-ms", value_name = "MS")]
    pub linger_ms: Option<u64>,
    /// batch.size of both producers, in bytes (default with `--defaults same`: 16384; with
    /// `own`: each client's own).
    #[arg(long = "batch-size", value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,
    /// `same`: both clients with the benchmark's equal settings; `own`: each client at its
    /// own defaults for whatever the command line does not set (see BENCHMARKS.md, Method).
    #[arg(long, value_name = "WHOSE", default_value = "same")]
    pub defaults: Defaults,
    /// Compression codec of both producers.
    #[arg(long, value_name = "CODEC", default_value = "none",
          value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    pub compression: String,
    /// Offered rate in records/s: records are sent on a fixed schedule and the latency of each
    /// is measured from its scheduled send time (e2e default: 10000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Partitions of each benchmark topic.
    #[arg(long, value_name = "N", default_value_t = 6,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Which clients to run, one after the other (default: both when built with
    /// `--features rdkafka`, else kafkit).
    #[arg(long, value_name = "CLIENT")]
    pub client: Option<ClientChoice>,
    /// The broker when neither -b nor KAFKA_BOOTSTRAP is given.
    #[arg(long, value_name = "BROKER", default_value = "dev")]
    pub broker: BrokerChoice,
    /// The tokio runtime of the kafkit client.
    #[arg(
        long = "kafkit-runtime",
        value_name = "RUNTIME",
        default_value = "multi"
    )]
    pub kafkit_runtime: Runtime,
    /// Produce in transactions (produce workload only): both producers get a transactional
    /// id (and so acks=all and idempotence), and commit every --txn-records records; the
    /// measured phase ends with the last commit.
    #[arg(long)]
    pub transactional: bool,
    /// Records per transaction with --transactional.
    #[arg(long = "txn-records", value_name = "N", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub txn_records: u64,
    /// Install a subscriber in the kafkit worker that records kafkit's spans (their
    /// attributes formatted, as an exporter would) at this level, to measure what tracing
    /// costs; none by default.
    #[arg(long = "trace-spans", value_name = "LEVEL", value_parser = ["info", "debug", "trace"])]
    pub trace_spans: Option<String>,
}

impl BenchOpts {
    /// acks as both clients spell it: `0`, `1` or `all` (always `all` for transactions).
    pub fn acks(&self) -> &str {
        if self.acks == "-1" || self.transactional {
            "all"
        } else {
            &self.acks
        }
    }

    /// Idempotence is on with acks=all and off otherwise, on both clients.
    pub fn idempotence(&self) -> bool {
        self.acks() == "all"
    }

    /// Whether each client runs at its own defaults (`--defaults own`).
    pub fn own_defaults(&self) -> bool {
        self.defaults == Defaults::Own
    }

    /// linger.ms to give both producers; `None`: each keeps its own default.
    pub fn linger_ms(&self) -> Option<u64> {
        match self.defaults {
            Defaults::Same => Some(self.linger_ms.unwrap_or(SAME_LINGER_MS)),
            Defaults::Own => self.linger_ms,
        }
    }

    /// batch.size to give both producers; `None`: each keeps its own default.
    pub fn batch_size(&self) -> Option<u64> {
        match self.defaults {
            Defaults::Same => Some(self.batch_size.unwrap_or(SAME_BATCH_SIZE)),
            Defaults::Own => self.batch_size,
        }
    }

    /// Records per transaction, `None` unless --transactional.
    pub fn txn_records(&self) -> Option<u64> {
        self.transactional.then_some(self.txn_records)
    }

    /// The offered rate of `workload`, if any.
    pub fn rate_for(&self, workload: Workload) -> Option<u64> {
        match workload {
            Workload::E2e => Some(self.rate.unwrap_or(10_000)),
            _ => self.rate,
        }
    }

    /// The record count of `workload`.
    pub fn records_for(&self, workload: Workload) -> u64 {
        if let Some(n) = self.records {
            return n;
        }
        match self.rate_for(workload) {
            Some(rate) => rate * 5,
            None => (100_000_000 / self.size).max(10_000),
        }
    }

    /// The arguments that give a worker these options (with the record count fixed).
    pub fn to_worker_args(&self, workload: Workload) -> Vec<String> {
        let mut out = vec![
            "--records".to_owned(),
            self.records_for(workload).to_string(),
            "--size".to_owned(),
            self.size.to_string(),
            "--acks".to_owned(),
            self.acks().to_owned(),
            "--defaults".to_owned(),
            self.defaults.name().to_owned(),
            "--compression".to_owned(),
            self.compression.clone(),
            "--partitions".to_owned(),
            self.partitions.to_string(),
            "--kafkit-runtime".to_owned(),
            self.kafkit_runtime.name().to_owned(),
        ];
        if let Some(ms) = self.linger_ms {
            out.push("--linger-ms".to_owned());
            out.push(ms.to_string());
        }
        if let Some(bytes) = self.batch_size {
            out.push("--batch-size".to_owned());
            out.push(bytes.to_string());
        }
        if let Some(rate) = self.rate_for(workload) {
            out.push("--rate".to_owned());
            out.push(rate.to_string());
        }
        if let Some(n) = self.txn_records() {
            out.push("--transactional".to_owned());
            out.push("--txn-records".to_owned());
            out.push(n.to_string());
        }
        if let Some(level) = &self.trace_spans {
            out.push("--trace-spans".to_owned());
            out.push(level.clone());
        }
        out
    }
}

/// `kafkit bench worker`: one client's run against a prepared topic.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The workload.
    #[arg(long, value_name = "WORKLOAD")]
    pub workload: Workload,
    /// The client.
    #[arg(long = "run-client", value_name = "CLIENT")]
    pub run_client: Client,
    /// The topic (created by the parent).
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// The workload's options.
    #[command(flatten)]
    pub opts: BenchOpts,
}

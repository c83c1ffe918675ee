//! The command line: global options and one subcommand per module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "kafkit: a pure-Rust Apache Kafka client on the command line";

const LONG_ABOUT: &str = "\
kafkit: a pure-Rust Apache Kafka client on the command line.

Every command connects to the cluster named by -b (default: the KAFKA_BOOTSTRAP environment \
variable, else localhost:9092). Client options are set with -X, by their Java name \
(request.timeout.ms) or their kafka-python name (request_timeout_ms); `kafkit options` lists \
them all. -F reads a Java properties file (a client.properties) first; -X options given after \
it win.

Exit status: 0 on success, 1 when the cluster could not be reached or refused the request \
(the one-line error on stderr names the broker and the cause), 2 for a usage or \
configuration error.";

const EXAMPLES: &str = "\
Examples:
  kafkit probe                                  broker version and API versions of localhost:9092
  kafkit -b kafka1:9092,kafka2:9092 metadata    brokers, topics and partitions
  kafkit metadata -t orders -t payments --json  two topics, as JSON for scripts
  kafkit -X request.timeout.ms=5000 probe       any client option, Java name ...
  kafkit -X security_protocol=SSL -X ssl_cafile=ca.pem probe
                                                ... or kafka-python name
  kafkit -F client.properties metadata          options from a Java properties file
  kafkit options                                every option -X accepts
  kafkit produce -t orders < orders.txt         one record per line of stdin
  kafkit produce -t orders -K : -z zstd -H source=cli orders.txt
                                                keys before the first `:`, zstd, a header
  kafkit consume -t orders -e                   every record of every partition, then exit
  kafkit consume -G billing -t orders -t refunds
                                                as a member of group billing, committing offsets
  kafkit consume -t orders -p 0 -o -10 -f '%k: %s (%T)\n'
                                                the last 10 of partition 0, keys and timestamps
  kafkit dev-broker --brokers 3 --port 0        a local simulated cluster for development
  kafkit bench produce --size 1000 --acks all   kafkit vs rust-rdkafka (see BENCHMARKS.md)";

/// The `kafkit` command line.
#[derive(Debug, Parser)]
#[command(
    name = "kafkit",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options every command shares.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Connection and client options, accepted before or after the command name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Bootstrap brokers, comma-separated (port 9092 if omitted).
    #[arg(
        short = 'b',
        long = "bootstrap-servers",
        value_name = "HOST:PORT[,HOST:PORT..]",
        env = "KAFKA_BOOTSTRAP",
        default_value = "localhost:9092",
        global = true
    )]
    pub bootstrap: String,

    /// Set a client option by its Java or kafka-python name (repeatable; see `kafkit options`).
    #[arg(
        short = 'X',
        long = "set",
        value_name = "KEY=VALUE",
        value_parser = parse_key_value,
        global = true
    )]
    pub options: Vec<(String, String)>,

    /// Read client options from a Java properties file before applying -X.
    #[arg(short = 'F', long = "config-file", value_name = "FILE", global = true)]
    pub config_file: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to one broker and show its version and the API versions kafkit would use.
    #[command(long_about = "\
Connect to one broker and show its version and the API versions kafkit would use.

Prints the broker kafkit talked to, its Kafka version as inferred from the API versions it \
supports, and one line per API the broker lists: the API key and name, the broker's version \
range, and the version kafkit will use (the highest version both support), or `unsupported`. \
With api.version set, the ranges are that release's fixed table, not the broker's answer.")]
    Probe(ProbeArgs),
    /// Show the cluster: id, controller, brokers and topic partitions.
    #[command(long_about = "\
Show the cluster: id, controller, brokers and topic partitions.

Prints the cluster id, the controller, every broker (node id, host:port, rack) and, per topic, \
every partition with its leader, leader epoch, replicas, in-sync replicas, offline replicas \
and error. Without -t, every topic; with -t, only those (an unknown topic is listed with its \
error). Topics are never auto-created.")]
    Metadata(MetadataArgs),
    /// Write records to a topic: one per line of stdin or the files.
    #[command(long_about = "\
Write records to a topic: one per line of stdin or the files (like `kcat -P`).

Each line (or each piece between -D delimiters) is one record; a delimiter at the very end of \
the input does not start another record. Input is streamed: records are sent as they are read \
and acknowledged in the background. -K splits each record into key and value at the first \
occurrence of its delimiter (a record without it gets no key); -k gives every record the same \
key; -H adds a header to every record. Without -p the partitioner chooses the partition \
(by key hash, or sticky batches for records without a key). Delimiters accept the escapes \
\\n, \\r, \\t, \\0, \\\\ and \\xNN.

Producer options (-X linger.ms=20, -X enable.idempotence=false, ...) apply; -z and --acks \
win over -X. When the input ends, kafkit waits until every record is acknowledged, then prints \
a summary to stderr: records and bytes (keys and values) delivered, failures, elapsed time. \
Exit status 1 if any record failed, after one line per distinct failure reason.

With --transactional-id ID the records are written in transactions under that id: the producer \
fences any earlier instance with the same id, commits one transaction at the end of the input \
(or one every --txn-records N records), and read_committed consumers see only committed \
records. A failed record or commit aborts the open transaction and ends the command with \
status 1 naming the reason; SIGINT/SIGTERM aborts the open transaction (what was committed \
stays committed).")]
    Produce(ProduceArgs),
    /// Read records from a topic and print them: one per line, or as -f formats them.
    #[command(long_about = "\
Read records from a topic and print them: one per line, or as -f formats them (like `kcat -C`).

Without -p every partition of the topic is read (manual assignment: no consumer group, nothing \
committed). With -G GROUP, kafkit joins that consumer group instead and reads the partitions of \
the topics (-t, repeatable) that the group's coordinator assigns it, each from the group's \
committed offset; -o beginning|end then says where partitions without one start (the default \
is beginning). Offsets of what was printed are committed every auto.commit.interval.ms and when \
kafkit stops at -c or -e, and the member then leaves the group (kafka-python's defaults; -X \
enable.auto.commit=false turns committing off). -o sets where each partition starts: `beginning` (the default), `end` (only new \
records), an absolute OFFSET, -N (N records before the end of each partition) or \
@TIMESTAMP (the first record at or after that time, in milliseconds since the epoch). Runs \
until interrupted unless -e (exit once every partition is at its end: its position reached the \
high watermark as of the moment it got there) or -c (exit after COUNT records).

-f formats each record; its tokens are %s value, %k key, %S value length and %K key length \
(-1 for null), %t topic, %p partition, %o offset, %T timestamp (ms), %h headers \
(name=value,..; NULL for a null value) and %%; literal text may use the escapes \\n, \\r, \\t, \
\\0, \\\\ and \\xNN. Null keys and values print as nothing. Keys, values and headers are written \
as raw bytes. Consumer options (-X fetch.max.bytes=..., -X isolation.level=read_committed, ...) \
apply.")]
    Consume(ConsumeArgs),
    /// Consumer groups: list, describe (members, assignments, committed offsets, lag), delete.
    Groups(crate::groups::GroupsArgs),
    /// Topics: list, describe, create, delete, alter-config (the admin client).
    Topics(crate::topics::TopicsArgs),
    /// Configs of a broker or a topic: describe.
    Configs(crate::configs::ConfigsArgs),
    /// Transactions: list (every broker's, by state), describe (per transactional id).
    Transactions(crate::transactions::TransactionsArgs),
    /// List the client options -X accepts, with their defaults.
    Options(OptionsArgs),
    /// Run kafkit's simulated Kafka cluster as a local broker for development and tests.
    #[command(long_about = "\
Run kafkit's simulated Kafka cluster as a local broker for development and tests.

The brokers of one in-memory cluster listen on consecutive ports from --port (0 picks free \
ports) and speak the real Kafka protocol, so any Kafka client can use them: produce, fetch, \
consumer groups, offsets, topic admin, SASL (PLAIN, SCRAM-SHA-256/512) and TLS. Nothing is \
written to disk. The first line on stdout is the bootstrap address; a banner and one line per \
connection go to stderr. Runs until interrupted (Ctrl-C, SIGTERM) or killed, or, when stdin is \
a pipe, until that pipe closes. The global -b/-X/-F options do not apply.

Limits (it is a development broker, not a production one): everything is kept in memory, and \
each partition keeps only its newest --retention-bytes bytes of record batches (64 MiB by \
default; older batches are dropped and the log start offset advances, as retention.bytes \
does in Kafka). A request may be at most 100 MiB. Requests being received or waiting to be \
handled share --max-in-flight-request-bytes of memory (a request is charged the size its \
prefix announces; its buffer grows only with the bytes received); when it is spent the \
broker stops reading new requests until some are handled. A connection that sends part of a \
request and not the rest within --request-read-timeout-ms is closed. The sockets are served \
by two I/O threads whatever the number of connections.")]
    DevBroker(DevBrokerArgs),
    /// Benchmark kafkit against rust-rdkafka: produce, consume, end-to-end latency.
    #[command(long_about = "\
Benchmark kafkit against rust-rdkafka: produce, consume, end-to-end latency.

Runs each client (--client) in a child process of its own, one after the other, against the \
same broker: kafkit's development broker started inside this process (the default; its CPU \
time is reported as broker_cpu_us_per_rec), librdkafka's mock cluster (--broker mock), or the \
cluster -b/KAFKA_BOOTSTRAP names. Prints one line of key=value fields per client (records, \
rec_per_s, mb_per_s, cpu_us_per_rec: user+system CPU time of every thread of the client \
process over the measured phase, per record; peak_rss_mb; lat_p50_us/lat_p99_us/lat_p999_us \
where latency is measured) and a ratio=kafkit/rdkafka line. Both producers get the same acks, \
linger.ms, batch.size, compression, max in-flight (5) and 32 MiB of buffer; idempotence is on \
with --acks all and off otherwise. rdkafka needs a build with `--features rdkafka`; see \
BENCHMARKS.md.")]
    Bench(crate::bench::args::BenchArgs),
}

/// Output format shared by every command.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Print one JSON object instead of text (pretty on a terminal, one line otherwise).
    #[arg(long)]
    pub json: bool,
}

/// `kafkit probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `kafkit metadata`.
#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// Only this topic (repeatable).
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `kafkit produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic to write to.
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    pub topic: String,
    /// Write every record to this partition (default: the partitioner chooses).
    #[arg(short = 'p', long = "partition", value_name = "PARTITION",
          value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Give every record this key.
    #[arg(
        short = 'k',
        long = "key",
        value_name = "KEY",
        conflicts_with = "key_delimiter"
    )]
    pub key: Option<String>,
    /// Split each record into key and value at the first DELIM.
    #[arg(short = 'K', long = "key-delimiter", value_name = "DELIM")]
    pub key_delimiter: Option<String>,
    /// Add a header to every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Compression codec (compression.type).
    #[arg(short = 'z', long = "compression", value_name = "CODEC",
          value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    pub compression: Option<String>,
    /// Acknowledgements to wait for (acks): 0 none, 1 the leader, all the in-sync replicas.
    #[arg(long = "acks", value_name = "ACKS", value_parser = ["0", "1", "all", "-1"])]
    pub acks: Option<String>,
    /// Record delimiter instead of newline.
    #[arg(
        short = 'D',
        long = "delimiter",
        value_name = "DELIM",
        default_value = "\\n"
    )]
    pub delimiter: String,
    /// Write the records in transactions under this transactional id (transactional.id):
    /// committed at the end of the input (or every --txn-records), aborted on an error or a
    /// signal.
    #[arg(long = "transactional-id", value_name = "ID")]
    pub transactional_id: Option<String>,
    /// Commit a transaction every N records (default: one transaction for the whole input).
    #[arg(long = "txn-records", value_name = "N", requires = "transactional_id",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub txn_records: Option<u64>,
    /// Files to read records from, in order (default, or `-`: stdin).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `kafkit consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic to read (repeatable with -G).
    #[arg(short = 't', long = "topic", value_name = "TOPIC", required = true)]
    pub topics: Vec<String>,
    /// Join this consumer group: read the partitions its coordinator assigns, from the
    /// committed offsets, and commit what was printed.
    #[arg(short = 'G', long = "group", value_name = "GROUP")]
    pub group: Option<String>,
    /// Read only this partition (default: every partition of the topic).
    #[arg(short = 'p', long = "partition", value_name = "PARTITION",
          value_parser = clap::value_parser!(i32).range(0..), conflicts_with = "group")]
    pub partition: Option<i32>,
    /// Where to start in each partition: beginning, end, OFFSET, -N (N before the end) or
    /// @TIMESTAMP_MS.
    #[arg(
        short = 'o',
        long = "offset",
        value_name = "START",
        default_value = "beginning",
        allow_hyphen_values = true
    )]
    pub offset: String,
    /// Exit once every partition is at its end.
    #[arg(short = 'e', long = "exit-at-end")]
    pub exit_at_end: bool,
    /// Exit after COUNT records.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// Output format of each record (tokens: %s %k %S %K %t %p %o %T %h %%).
    #[arg(
        short = 'f',
        long = "format",
        value_name = "FORMAT",
        default_value = "%s\\n"
    )]
    pub format: String,
    /// Print records/s, bytes/s and each partition's position, high watermark and lag to
    /// stderr every SECS seconds (default 5) and at exit.
    #[arg(long = "stats", value_name = "SECS", num_args = 0..=1, default_missing_value = "5",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stats: Option<u64>,
}

/// `kafkit dev-broker`.
#[derive(Debug, Args)]
pub struct DevBrokerArgs {
    /// Number of brokers.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub brokers: usize,
    /// Port of the first broker; broker i listens on PORT+i (0: free ports).
    #[arg(long, value_name = "PORT", default_value_t = 9092)]
    pub port: u16,
    /// Address to listen on and advertise.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Partitions of automatically created topics.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub partitions: i32,
    /// Require SASL authentication as one of these users.
    #[arg(long, value_name = "USER:PASS[,USER:PASS..]")]
    pub sasl_users: Option<String>,
    /// SASL mechanisms the users may use (default: all three).
    #[arg(long, value_name = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512")]
    pub sasl_mechanisms: Option<String>,
    /// Serve TLS with this PEM certificate chain (server certificate first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Bytes of record batches each partition keeps (the newest; older ones are dropped).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub retention_bytes: u64,
    /// Memory shared by the requests being received or waiting to be handled.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub max_in_flight_request_bytes: usize,
    /// Close a connection whose request has not fully arrived this long after it began.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub request_read_timeout_ms: u64,
    /// Behave as this Kafka release: 0.8.0, 0.8.1, 0.8.2, 0.9, 0.10.0, 0.10.1, 0.10.2, 0.11,
    /// 1, 2, 3 or 4 (trailing .0 parts allowed: 0.9.0, 2.0.0). Sets the API versions, the
    /// message format served and, on 0.8.1/0.8.2, ZooKeeper-style offsets.
    #[arg(long, value_name = "RELEASE", default_value = "4")]
    pub kafka_version: String,
    /// Do not log connections on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `kafkit options`.
#[derive(Debug, Args)]
pub struct OptionsArgs {
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!(
            "`{s}` is not KEY=VALUE (for example request.timeout.ms=5000)"
        )),
    }
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!(
            "`{s}` is not NAME=VALUE (for example source=cli; the value may be empty)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_value("a.b=c=d").unwrap(),
            ("a.b".to_owned(), "c=d".to_owned())
        );
        assert_eq!(
            parse_key_value("k=").unwrap(),
            ("k".to_owned(), String::new())
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("a=b=c").unwrap(),
            ("a".to_owned(), "b=c".to_owned())
        );
        assert_eq!(parse_header("a=").unwrap(), ("a".to_owned(), String::new()));
        assert!(parse_header("a").is_err());
        assert!(parse_header("=b").is_err());
    }
}

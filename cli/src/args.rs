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
  kafkit dev-broker --brokers 3 --port 0        a local simulated cluster for development";

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
    /// List the client options -X accepts, with their defaults.
    Options(OptionsArgs),
    /// Run kafkit's simulated Kafka cluster as a local broker for development and tests.
    #[command(long_about = "\
Run kafkit's simulated Kafka cluster as a local broker for development and tests.

The brokers of one in-memory cluster listen on consecutive ports from --port (0 picks free \
ports) and speak the real Kafka protocol, so any Kafka client can use them: produce, fetch, \
consumer groups, offsets, topic admin, SASL (PLAIN, SCRAM-SHA-256/512) and TLS. Nothing is \
written to disk. The first line on stdout is the bootstrap address; a banner and one line per \
connection go to stderr. Runs until interrupted (Ctrl-C) or killed, or, when stdin is a pipe, \
until that pipe closes. The global -b/-X/-F options do not apply.")]
    DevBroker(DevBrokerArgs),
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
}

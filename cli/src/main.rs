//! `kafkit`, the command line tool of the kafkit Kafka client.
//!
//! Each command lives in its own module and runs on the blocking driver (no async runtime).
//! Errors end the process with one line on stderr (`kafkit: error: ...`) and exit status 1
//! (the cluster) or 2 (usage and configuration); see [`error::CliError`]. SIGINT and SIGTERM
//! close consume, produce and dev-broker cleanly (a second signal exits at once) and end the
//! other commands at once; see [`signals`].
#![forbid(unsafe_code)]

mod args;
mod bench;
mod config;
mod configs;
mod consume;
mod consume_stats;
mod dev_broker;
mod error;
mod groups;
mod metadata;
mod options;
mod output;
mod probe;
mod produce;
mod signals;
mod topics;
mod transactions;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use error::CliError;

fn main() -> ExitCode {
    error::install_panic_hook();
    let cli = Cli::parse();
    if let Err(e) = signals::install() {
        eprintln!("kafkit: warning: cannot handle SIGINT/SIGTERM: {e}");
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn run(cli: &Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Probe(args) => probe::run(&config::common_config(&cli.global)?, args),
        Command::Metadata(args) => metadata::run(&config::common_config(&cli.global)?, args),
        Command::Produce(args) => produce::run(&cli.global, args),
        Command::Consume(args) => consume::run(&cli.global, args),
        Command::Groups(args) => groups::run(&config::common_config(&cli.global)?, args),
        Command::Topics(args) => topics::run(&cli.global, args),
        Command::Configs(args) => configs::run(&cli.global, args),
        Command::Transactions(args) => transactions::run(&cli.global, args),
        Command::Options(args) => options::run(args),
        Command::DevBroker(args) => dev_broker::run(args),
        Command::Bench(args) => bench::run(&cli.global, args),
    }
}

//! `kafkit transactions list|describe`: transactions through the admin client (ListTransactions
//! on every broker; DescribeTransactions at each transactional id's coordinator), printed as
//! `kafka-transactions.sh` prints them.

use clap::{Args, Subcommand};
use kafkit_blocking::Admin;
use kafkit_core::admin::{
    AdminError, ListTransactionsOptions, TransactionDescription, TransactionListing,
    TransactionState,
};
use serde_json::{json, Value};

use crate::args::{GlobalArgs, OutputArgs};
use crate::error::{one_line, CliError};
use crate::output::{print_json, Output};
use crate::topics::{admin_config, admin_error};

/// `kafkit transactions`.
#[derive(Debug, Args)]
pub struct TransactionsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TransactionsCommand,
}

/// The `kafkit transactions` commands.
#[derive(Debug, Subcommand)]
pub enum TransactionsCommand {
    /// List the transactional ids of every broker: id, coordinator, producer id and state.
    #[command(long_about = "\
List the transactional ids of every broker: transactional id, coordinator, producer id and \
the state of its transaction (Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, \
CompleteAbort, Empty, PrepareEpochFence).

Asks every broker (ListTransactions), since each lists only the ids it coordinates. --state \
(repeatable) keeps only transactions in those states. If a broker cannot be asked, the \
transactions of the others are listed and the exit status is 1.")]
    List {
        /// Only transactions in this state (repeatable).
        #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
        states: Vec<TransactionState>,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Describe transactional ids: coordinator, producer, state, timeout, start, partitions.
    #[command(long_about = "\
Describe transactional ids (DescribeTransactions at each id's transaction coordinator): the \
coordinator, producer id and epoch, state, transaction timeout, when the open transaction \
began and the partitions it holds. An id that does not exist (TRANSACTIONAL_ID_NOT_FOUND) or \
cannot be described is named on stderr and the exit status is 1.")]
    Describe {
        /// The transactional ids.
        #[arg(value_name = "ID", required = true)]
        ids: Vec<String>,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// A state name as the brokers spell it, in any case.
fn parse_state(s: &str) -> Result<TransactionState, String> {
    TransactionState::KNOWN
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            let names: Vec<&str> = TransactionState::KNOWN.iter().map(|k| k.name()).collect();
            format!("unknown state `{s}` (one of {})", names.join(", "))
        })
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: &TransactionsArgs) -> Result<(), CliError> {
    let config = admin_config(global)?;
    let admin = Admin::start(&config)?;
    let fail = |e| admin_error(e, &config.common);
    match &args.command {
        TransactionsCommand::List { states, output } => {
            let options = ListTransactionsOptions::default().filter_states(states.iter().cloned());
            let listing = admin.list_transactions(options).map_err(fail)?;
            let mut rows: Vec<(i32, TransactionListing)> = Vec::new();
            let mut failures: Vec<(i32, AdminError)> = Vec::new();
            for (node, r) in listing.by_broker {
                match r {
                    Ok(ts) => rows.extend(ts.into_iter().map(|t| (node, t))),
                    Err(e) => failures.push((node, e)),
                }
            }
            rows.sort_by(|a, b| a.1.transactional_id.cmp(&b.1.transactional_id));
            if output.json {
                print_json(&list_json(&rows, &failures))?;
            } else {
                let mut out = Output::default();
                list_text(&rows, &mut out);
                out.print()?;
            }
            if failures.is_empty() {
                return Ok(());
            }
            let detail: Vec<String> = failures
                .iter()
                .map(|(node, e)| format!("broker {node}: {}", one_line(&e.to_string())))
                .collect();
            Err(CliError::Failed(format!(
                "ListTransactions failed on {} broker(s) (the list lacks their transactions): {}",
                failures.len(),
                detail.join("; ")
            )))
        }
        TransactionsCommand::Describe { ids, output } => {
            let described = admin.describe_transactions(ids.clone()).map_err(fail)?;
            let mut failed = Vec::new();
            let mut found = Vec::new();
            // In the order asked for, each id once.
            let mut seen = std::collections::BTreeSet::new();
            for id in ids.iter().filter(|id| seen.insert(id.as_str())) {
                match described.get(id) {
                    Some(Ok(d)) => found.push((id.as_str(), d)),
                    Some(Err(e)) => failed.push((id.as_str(), e.to_string())),
                    None => failed.push((id.as_str(), "no answer".to_owned())),
                }
            }
            if output.json {
                print_json(&describe_json(&found, &failed))?;
            } else {
                let mut out = Output::default();
                describe_text(&found, &mut out);
                out.print()?;
            }
            for (id, e) in &failed {
                eprintln!("kafkit: transactional id `{id}`: {}", one_line(e));
            }
            if failed.is_empty() {
                return Ok(());
            }
            let names: Vec<String> = failed.iter().map(|(id, _)| format!("`{id}`")).collect();
            Err(CliError::Failed(format!(
                "could not describe transactional id {}",
                names.join(", ")
            )))
        }
    }
}

fn list_text(rows: &[(i32, TransactionListing)], out: &mut Output) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(node, t)| {
            vec![
                t.transactional_id.clone(),
                node.to_string(),
                t.producer_id.to_string(),
                t.state.to_string(),
            ]
        })
        .collect();
    out.table(
        0,
        &["TRANSACTIONAL ID", "COORDINATOR", "PRODUCER ID", "STATE"],
        &table,
        &[1, 2],
    );
}

fn list_json(rows: &[(i32, TransactionListing)], failures: &[(i32, AdminError)]) -> Value {
    json!({
        "transactions": rows
            .iter()
            .map(|(node, t)| json!({
                "transactional_id": t.transactional_id,
                "coordinator": node,
                "producer_id": t.producer_id,
                "state": t.state.name(),
            }))
            .collect::<Vec<_>>(),
        "errors": failures
            .iter()
            .map(|(node, e)| json!({ "broker": node, "error": e.to_string() }))
            .collect::<Vec<_>>(),
    })
}

fn partitions(d: &TransactionDescription) -> Vec<String> {
    d.topic_partitions
        .iter()
        .map(|tp| format!("{}-{}", tp.topic, tp.partition))
        .collect()
}

fn describe_text(found: &[(&str, &TransactionDescription)], out: &mut Output) {
    let table: Vec<Vec<String>> = found
        .iter()
        .map(|(id, d)| {
            let ps = partitions(d);
            vec![
                (*id).to_owned(),
                d.coordinator_id.to_string(),
                d.producer_id.to_string(),
                d.producer_epoch.to_string(),
                d.state.to_string(),
                d.transaction_timeout_ms.to_string(),
                d.transaction_start_time_ms
                    .map_or_else(|| "None".to_owned(), |ms| ms.to_string()),
                if ps.is_empty() {
                    "None".to_owned()
                } else {
                    ps.join(",")
                },
            ]
        })
        .collect();
    out.table(
        0,
        &[
            "TRANSACTIONAL ID",
            "COORDINATOR",
            "PRODUCER ID",
            "EPOCH",
            "STATE",
            "TIMEOUT MS",
            "START TIME MS",
            "PARTITIONS",
        ],
        &table,
        &[1, 2, 3, 5, 6],
    );
}

fn describe_json(found: &[(&str, &TransactionDescription)], failed: &[(&str, String)]) -> Value {
    json!({
        "transactions": found
            .iter()
            .map(|(id, d)| json!({
                "transactional_id": id,
                "coordinator": d.coordinator_id,
                "producer_id": d.producer_id,
                "producer_epoch": d.producer_epoch,
                "state": d.state.name(),
                "transaction_timeout_ms": d.transaction_timeout_ms,
                "transaction_start_time_ms": d.transaction_start_time_ms,
                "partitions": partitions(d),
            }))
            .collect::<Vec<_>>(),
        "errors": failed
            .iter()
            .map(|(id, e)| json!({ "transactional_id": id, "error": e }))
            .collect::<Vec<_>>(),
    })
}

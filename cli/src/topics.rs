//! `kafkit topics`: list, describe, create, delete topics and change their configs, through
//! kafkit's admin client on the blocking driver.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use kafkit_blocking::Admin;
use kafkit_core::admin::{AdminError, AlterConfigOp, ConfigResource, NewTopic};
use kafkit_core::codec::Uuid;
use kafkit_core::config::{AdminConfig, CommonConfig};
use serde_json::{json, Value};

use crate::args::{GlobalArgs, OutputArgs};
use crate::config::{file_options, with_hint};
use crate::error::{self, CliError};
use crate::output::{id_list, print_json, Output};

/// `kafkit topics`.
#[derive(Debug, Args)]
pub struct TopicsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TopicsCommand,
}

/// The `topics` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List topic names (internal topics with --internal).
    List {
        /// Also list internal topics (`__consumer_offsets`, ...).
        #[arg(long)]
        internal: bool,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Describe topics: partitions, leaders, replicas, in-sync replicas.
    Describe {
        /// The topics.
        #[arg(required = true, value_name = "TOPIC")]
        topics: Vec<String>,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Create a topic.
    Create {
        /// The topic.
        #[arg(value_name = "TOPIC")]
        topic: String,
        /// Partition count (default: the broker's num.partitions).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i16).range(1..))]
        replication_factor: Option<i16>,
        /// A topic config (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_kv)]
        configs: Vec<(String, String)>,
        /// Only check that the topic could be created.
        #[arg(long)]
        validate_only: bool,
    },
    /// Delete topics.
    Delete {
        /// The topics.
        #[arg(required = true, value_name = "TOPIC")]
        topics: Vec<String>,
    },
    /// Set (KEY=VALUE) or remove (--delete KEY) topic configs.
    AlterConfig {
        /// The topic.
        #[arg(value_name = "TOPIC")]
        topic: String,
        /// Configs to set.
        #[arg(value_name = "KEY=VALUE", value_parser = parse_kv)]
        set: Vec<(String, String)>,
        /// Configs to remove (back to the broker's default; repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

/// `KEY=VALUE`.
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// The admin configuration of the global options: -b, then -F, then -X, validated.
pub fn admin_config(global: &GlobalArgs) -> Result<AdminConfig, CliError> {
    let mut config = AdminConfig::default();
    config
        .set("bootstrap_servers", &global.bootstrap)
        .map_err(|e| CliError::Usage(format!("bootstrap servers (-b or KAFKA_BOOTSTRAP): {e}")))?;
    for (name, value) in file_options(global)? {
        config.set(&name, &value).map_err(with_hint)?;
    }
    for (name, value) in &global.options {
        config.set(name, value).map_err(with_hint)?;
    }
    config.validate()?;
    for name in config.ignored_options() {
        eprintln!("kafkit: warning: option `{name}` is not used by this command; ignored");
    }
    Ok(config)
}

/// An admin call's error as the CLI reports it.
pub fn admin_error(e: AdminError, config: &CommonConfig) -> CliError {
    match e {
        AdminError::Net(n) => error::net(n, config),
        e => CliError::Failed(e.to_string()),
    }
}

/// Per-item results: successes printed with `ok`, failures gathered into one error (exit 1).
pub fn report<K: std::fmt::Display>(
    results: impl IntoIterator<Item = (K, Result<(), AdminError>)>,
    ok: &str,
) -> Result<(), CliError> {
    let mut out = Output::default();
    let mut failed = Vec::new();
    for (item, result) in results {
        match result {
            Ok(()) => out.line(format!("{ok} {item}")),
            Err(e) => failed.push(format!("{item}: {e}")),
        }
    }
    out.print()?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(failed.join("; ")))
    }
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: &TopicsArgs) -> Result<(), CliError> {
    let config = admin_config(global)?;
    let admin = Admin::start(&config)?;
    let fail = |e| admin_error(e, &config.common);
    match &args.command {
        TopicsCommand::List { internal, output } => {
            let topics = admin.list_topics(*internal).map_err(fail)?;
            if output.json {
                let topics: Vec<Value> = topics
                    .iter()
                    .map(|t| {
                        json!({
                            "name": t.name,
                            "topic_id": (t.topic_id != Uuid::ZERO).then(|| t.topic_id.to_string()),
                            "internal": t.is_internal,
                        })
                    })
                    .collect();
                print_json(&json!({ "topics": topics }))
            } else {
                let mut out = Output::default();
                for t in topics {
                    out.line(t.name);
                }
                out.print()
            }
        }
        TopicsCommand::Describe { topics, output } => {
            let described = admin.describe_topics(topics.clone()).map_err(fail)?;
            let mut failed = Vec::new();
            let mut json_topics = Vec::new();
            let mut out = Output::default();
            for (name, result) in described {
                let t = match result {
                    Ok(t) => t,
                    Err(e) => {
                        failed.push(format!("{name}: {e}"));
                        continue;
                    }
                };
                if output.json {
                    let partitions: Vec<Value> = t
                        .partitions
                        .iter()
                        .map(|p| {
                            json!({
                                "partition": p.partition,
                                "leader": (p.leader >= 0).then_some(p.leader),
                                "replicas": p.replicas,
                                "isr": p.isr,
                            })
                        })
                        .collect();
                    json_topics.push(json!({
                        "name": t.name,
                        "topic_id": (t.topic_id != Uuid::ZERO).then(|| t.topic_id.to_string()),
                        "internal": t.is_internal,
                        "partitions": partitions,
                    }));
                } else {
                    out.line(format!(
                        "topic {} ({} partitions{})",
                        t.name,
                        t.partitions.len(),
                        if t.is_internal { ", internal" } else { "" }
                    ));
                    let rows: Vec<Vec<String>> = t
                        .partitions
                        .iter()
                        .map(|p| {
                            vec![
                                p.partition.to_string(),
                                p.leader.to_string(),
                                id_list(&p.replicas),
                                id_list(&p.isr),
                            ]
                        })
                        .collect();
                    out.table(
                        2,
                        &["PARTITION", "LEADER", "REPLICAS", "ISR"],
                        &rows,
                        &[0, 1],
                    );
                }
            }
            if output.json {
                let errors: Vec<Value> = failed.iter().map(|e| json!(e)).collect();
                print_json(&json!({ "topics": json_topics, "errors": errors }))?;
            } else {
                out.print()?;
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(CliError::Failed(failed.join("; ")))
            }
        }
        TopicsCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
            validate_only,
        } => {
            let mut new = NewTopic::with_defaults(topic.clone());
            new.num_partitions = *partitions;
            new.replication_factor = *replication_factor;
            new.configs = configs.iter().cloned().collect();
            let results = admin
                .create_topics(vec![new], *validate_only)
                .map_err(fail)?;
            let verb = if *validate_only {
                "valid: topic"
            } else {
                "created topic"
            };
            report(results, verb)
        }
        TopicsCommand::Delete { topics } => {
            let results = admin.delete_topics(topics.clone()).map_err(fail)?;
            report(results, "deleted topic")
        }
        TopicsCommand::AlterConfig { topic, set, delete } => {
            if set.is_empty() && delete.is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give KEY=VALUE or --delete KEY".into(),
                ));
            }
            let ops = set
                .iter()
                .map(|(k, v)| AlterConfigOp::Set(k.clone(), v.clone()))
                .chain(delete.iter().map(|k| AlterConfigOp::Delete(k.clone())))
                .collect();
            let results = admin
                .alter_configs(BTreeMap::from([(ConfigResource::topic(topic), ops)]), false)
                .map_err(fail)?;
            report(results, "altered configs of")
        }
    }
}

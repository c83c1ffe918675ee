//! `kafkit configs`: describe a broker's or a topic's configs (DescribeConfigs).

use clap::{Args, Subcommand, ValueEnum};
use kafkit_blocking::Admin;
use kafkit_core::admin::{ConfigResource, ConfigSource};
use serde_json::{json, Value};

use crate::args::{GlobalArgs, OutputArgs};
use crate::error::CliError;
use crate::output::{print_json, Output};
use crate::topics::{admin_config, admin_error};

/// `kafkit configs`.
#[derive(Debug, Args)]
pub struct ConfigsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigsCommand,
}

/// What has the configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResourceKind {
    /// A broker, by node id.
    Broker,
    /// A topic, by name.
    Topic,
}

/// The `configs` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigsCommand {
    /// Show every config of a broker or a topic: value, source, flags.
    Describe {
        /// `broker` or `topic`.
        kind: ResourceKind,
        /// The broker id or topic name.
        name: String,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
}

fn source_name(s: ConfigSource) -> &'static str {
    match s {
        ConfigSource::DynamicTopicConfig => "topic",
        ConfigSource::DynamicBrokerConfig => "dynamic-broker",
        ConfigSource::DynamicDefaultBrokerConfig => "dynamic-default-broker",
        ConfigSource::StaticBrokerConfig => "static-broker",
        ConfigSource::DefaultConfig => "default",
        ConfigSource::DynamicBrokerLoggerConfig => "broker-logger",
        ConfigSource::Unknown => "unknown",
    }
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: &ConfigsArgs) -> Result<(), CliError> {
    let ConfigsCommand::Describe { kind, name, output } = &args.command;
    let resource =
        match kind {
            ResourceKind::Topic => ConfigResource::topic(name),
            ResourceKind::Broker => ConfigResource::broker(name.parse().map_err(|_| {
                CliError::Usage(format!("broker id must be a number, got `{name}`"))
            })?),
        };
    let config = admin_config(global)?;
    let admin = Admin::start(&config)?;
    let mut results = admin
        .describe_configs(vec![resource.clone()])
        .map_err(|e| admin_error(e, &config.common))?;
    let entries = results
        .remove(&resource)
        .unwrap_or_else(|| {
            Err(kafkit_core::admin::AdminError::InvalidRequest(
                "no answer".into(),
            ))
        })
        .map_err(|e| CliError::Failed(format!("{resource}: {e}")))?;
    if output.json {
        let configs: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "name": e.name,
                    "value": e.value,
                    "source": source_name(e.source),
                    "default": e.is_default,
                    "read_only": e.read_only,
                    "sensitive": e.is_sensitive,
                })
            })
            .collect();
        print_json(&json!({ "resource": resource.to_string(), "configs": configs }))
    } else {
        let mut out = Output::default();
        out.line(format!("configs of {resource}"));
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                let value = match (&e.value, e.is_sensitive) {
                    (_, true) => "(sensitive)".to_owned(),
                    (Some(v), _) => v.clone(),
                    (None, _) => "(null)".to_owned(),
                };
                vec![e.name.clone(), value, source_name(e.source).to_owned()]
            })
            .collect();
        out.table(2, &["NAME", "VALUE", "SOURCE"], &rows, &[]);
        out.print()
    }
}

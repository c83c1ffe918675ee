//! `kafkit options`: every client option -X accepts (common, producer, consumer and admin),
//! with both names, the kind of client that takes it and the default, then the librdkafka
//! names accepted as well.

use kafkit_core::config::{
    AdminConfig, CommonConfig, ConsumerConfig, OptionInfo, Origin, ProducerConfig,
    LIBRDKAFKA_ALIASES,
};
use serde_json::{json, Value};

use crate::args::OptionsArgs;
use crate::error::CliError;
use crate::output::{print_json, Output};

fn origin(o: Origin) -> &'static str {
    match o {
        Origin::Java => "java",
        Origin::KafkaPython => "kafka-python",
        Origin::Kafkit => "kafkit",
        _ => "other",
    }
}

/// Every option once: the common ones, then each kind's own.
fn all_options() -> Vec<&'static OptionInfo> {
    let mut out: Vec<&'static OptionInfo> = CommonConfig::options().iter().collect();
    for table in [
        ProducerConfig::options(),
        ConsumerConfig::options(),
        AdminConfig::options(),
    ] {
        for o in table {
            if !out.iter().any(|k| k.java_name == o.java_name) {
                out.push(o);
            }
        }
    }
    out
}

/// Runs the command.
pub fn run(args: &OptionsArgs) -> Result<(), CliError> {
    let options = all_options();
    if args.output.json {
        let list: Vec<Value> = options
            .iter()
            .map(|o| {
                json!({
                    "java_name": o.java_name,
                    "python_name": o.python_name,
                    "kind": o.kind().to_string(),
                    "default": o.default,
                    "origin": origin(o.origin),
                    "secret": o.secret,
                    "doc": o.doc,
                })
            })
            .collect();
        let aliases: Vec<Value> = LIBRDKAFKA_ALIASES
            .iter()
            .map(|(alias, target)| json!({ "name": alias, "sets": target }))
            .collect();
        return print_json(&json!({ "options": list, "librdkafka_names": aliases }));
    }
    let mut out = Output::default();
    out.line("Options for -X NAME=VALUE (either name works); [kind] says which clients use it:");
    out.line("");
    for o in &options {
        let default = if o.default.is_empty() {
            "(not set)"
        } else {
            o.default
        };
        out.line(format!(
            "  {} / {}  [{}] [default: {default}]",
            o.java_name,
            o.python_name,
            o.kind()
        ));
        out.line(format!("      {}", o.doc));
    }
    out.line("");
    out.line("librdkafka (kcat) names accepted too:");
    for (alias, target) in LIBRDKAFKA_ALIASES {
        out.line(format!("  {alias} = {target}"));
    }
    out.print()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once() {
        let all = all_options();
        for name in [
            "bootstrap.servers",
            "linger.ms",
            "enable.idempotence",
            "fetch.max.wait.ms",
        ] {
            assert_eq!(
                all.iter().filter(|o| o.java_name == name).count(),
                1,
                "{name}"
            );
        }
        assert!(all.len() > CommonConfig::options().len() + 20);
    }
}

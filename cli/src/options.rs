//! `kafkit options`: every client option -X accepts, with both names and the default.

use kafkit_core::config::{CommonConfig, Origin};
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

/// Runs the command.
pub fn run(args: &OptionsArgs) -> Result<(), CliError> {
    let options = CommonConfig::options();
    if args.output.json {
        let list: Vec<Value> = options
            .iter()
            .map(|o| {
                json!({
                    "java_name": o.java_name,
                    "python_name": o.python_name,
                    "default": o.default,
                    "origin": origin(o.origin),
                    "secret": o.secret,
                    "doc": o.doc,
                })
            })
            .collect();
        return print_json(&json!({ "options": list }));
    }
    let mut out = Output::default();
    out.line("Options for -X NAME=VALUE (either name works):");
    out.line("");
    for o in options {
        let default = if o.default.is_empty() {
            "(not set)"
        } else {
            o.default
        };
        out.line(format!(
            "  {} / {}  [default: {default}]",
            o.java_name, o.python_name
        ));
        out.line(format!("      {}", o.doc));
    }
    out.print()
}

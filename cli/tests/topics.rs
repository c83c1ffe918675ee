//! End-to-end tests of `kafkit topics` and `kafkit configs` against the development broker:
//! create, list, describe, alter a config, describe configs, delete — text and JSON — and the
//! per-topic errors (exists, unknown) with exit status 1.

use std::process::{Command, Output};

use kafkit_sim::{DevBroker, DevBrokerConfig};
use serde_json::Value;

fn kafkit(bootstrap: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .arg("-b")
        .arg(bootstrap)
        .args(["-X", "default.api.timeout.ms=15000"])
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP")
        .output()
        .expect("running kafkit")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).expect("one JSON object")
}

#[test]
fn topics_are_created_listed_described_altered_and_deleted() {
    let broker = DevBroker::start(DevBrokerConfig::new(2)).expect("dev broker");
    let b = broker.bootstrap();

    let out = ok(&kafkit(
        &b,
        &[
            "topics",
            "create",
            "orders",
            "--partitions",
            "3",
            "--replication-factor",
            "2",
            "--config",
            "retention.ms=60000",
        ],
    ));
    assert!(out.contains("created topic orders"), "{out}");

    // Exists: exit status 1, the error names the topic and the code.
    let out = kafkit(&b, &["topics", "create", "orders"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orders") && err.contains("TOPIC_ALREADY_EXISTS"),
        "{err}"
    );

    // --validate-only creates nothing.
    let out = ok(&kafkit(&b, &["topics", "create", "dry", "--validate-only"]));
    assert!(out.contains("valid: topic dry"), "{out}");

    let out = ok(&kafkit(&b, &["topics", "list"]));
    assert_eq!(out.lines().collect::<Vec<_>>(), ["orders"]);
    let listed = json(&kafkit(&b, &["topics", "list", "--json"]));
    assert_eq!(listed["topics"][0]["name"], "orders");

    let out = ok(&kafkit(&b, &["topics", "describe", "orders"]));
    assert!(out.contains("topic orders (3 partitions)"), "{out}");
    assert!(out.contains("PARTITION") && out.contains("ISR"), "{out}");
    let described = json(&kafkit(&b, &["topics", "describe", "orders", "--json"]));
    let partitions = described["topics"][0]["partitions"]
        .as_array()
        .expect("array");
    assert_eq!(partitions.len(), 3);
    assert_eq!(
        partitions[0]["replicas"]
            .as_array()
            .expect("replicas")
            .len(),
        2
    );

    let out = kafkit(&b, &["topics", "describe", "orders", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("topic orders"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope") && err.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{err}"
    );

    let out = ok(&kafkit(
        &b,
        &["topics", "alter-config", "orders", "cleanup.policy=compact"],
    ));
    assert!(out.contains("altered configs of topic orders"), "{out}");

    let out = ok(&kafkit(&b, &["configs", "describe", "topic", "orders"]));
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {out}"))
            .to_owned()
    };
    assert!(line("cleanup.policy").contains("compact"), "{out}");
    assert!(line("retention.ms").contains("60000"), "{out}");
    let configs = json(&kafkit(
        &b,
        &["configs", "describe", "broker", "0", "--json"],
    ));
    assert_eq!(configs["resource"], "broker 0");
    assert!(!configs["configs"].as_array().expect("configs").is_empty());

    let out = ok(&kafkit(
        &b,
        &[
            "topics",
            "alter-config",
            "orders",
            "--delete",
            "retention.ms",
        ],
    ));
    assert!(out.contains("altered"), "{out}");
    let configs = json(&kafkit(
        &b,
        &["configs", "describe", "topic", "orders", "--json"],
    ));
    let retention = configs["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .expect("retention.ms")
        .clone();
    assert_eq!(retention["source"], "default", "{retention}");

    let out = ok(&kafkit(&b, &["topics", "delete", "orders"]));
    assert!(out.contains("deleted topic orders"), "{out}");
    let out = kafkit(&b, &["topics", "delete", "orders"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("UNKNOWN_TOPIC_OR_PARTITION"));
    assert!(ok(&kafkit(&b, &["topics", "list"])).trim().is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(["topics", "create", "t", "--partitions", "0"])
        .env_remove("KAFKA_BOOTSTRAP")
        .output()
        .expect("running kafkit");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(["configs", "describe", "broker", "x"])
        .env_remove("KAFKA_BOOTSTRAP")
        .output()
        .expect("running kafkit");
    assert_eq!(out.status.code(), Some(2));
}

//! End-to-end tests of `kafkit produce --transactional-id` and `kafkit transactions
//! list|describe` against a development broker of 3 brokers (or the cluster in
//! KAFKA_BOOTSTRAP): transactions committed every N records are read whole by a
//! read_committed consumer, the admin commands show them, and failures exit 1 naming why.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kafkit_sim::{DevBroker, DevBrokerConfig};
use serde_json::Value;

/// The cluster under test: KAFKA_BOOTSTRAP, or a development broker of 3 brokers.
struct Cluster {
    bootstrap: String,
    _broker: Option<DevBroker>,
}

impl Cluster {
    fn start() -> Cluster {
        match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(b) if !b.trim().is_empty() => Cluster {
                bootstrap: b,
                _broker: None,
            },
            _ => {
                let broker = DevBroker::start(DevBrokerConfig::new(3)).expect("dev broker");
                Cluster {
                    bootstrap: broker.bootstrap(),
                    _broker: Some(broker),
                }
            }
        }
    }

    /// Runs `kafkit -b BOOTSTRAP args..` with `stdin` as its input.
    fn kafkit(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kafkit"))
            .arg("-b")
            .arg(&self.bootstrap)
            .args(args)
            .env_remove("KAFKA_BOOTSTRAP")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kafkit");
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = stdin.to_vec();
        // From another thread: kafkit may exit before reading it all.
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        let out = child.wait_with_output().expect("waiting for kafkit");
        writer.join().expect("stdin writer");
        out
    }

    /// Runs kafkit, expecting success; returns stdout.
    fn ok(&self, args: &[&str], stdin: &[u8]) -> String {
        let out = self.kafkit(args, stdin);
        assert!(
            out.status.success(),
            "kafkit {args:?} failed with {}: {}",
            out.status,
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A name no other test (or earlier run against the same cluster) uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "{prefix}-{ms}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The objects of `transactions list --json` for `id`.
fn listed(c: &Cluster, id: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["transactions", "list", "--json"];
    args.extend_from_slice(extra);
    let v: Value = serde_json::from_str(&c.ok(&args, b"")).expect("JSON");
    assert_eq!(v["errors"], Value::Array(Vec::new()), "{v}");
    v["transactions"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|t| t["transactional_id"] == id)
        .cloned()
        .collect()
}

#[test]
fn transactional_produce_commits_every_n_records_and_the_admin_commands_show_it() {
    let c = Cluster::start();
    let topic = unique("txn-cli");
    let id = unique("t");
    c.ok(&["topics", "create", &topic, "--partitions", "3"], b"");
    let input: String = (0..25).map(|i| format!("line-{i}\n")).collect();
    let out = c.kafkit(
        &[
            "produce",
            "-t",
            &topic,
            "--transactional-id",
            &id,
            "--txn-records",
            "10",
        ],
        input.as_bytes(),
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{}: {err}", out.status);
    // 10 + 10 + 5.
    assert!(
        err.contains(&format!(
            "committed 25 records to {topic} in 3 transactions under `{id}`"
        )),
        "{err}"
    );

    let consumed = c.ok(
        &[
            "consume",
            "-t",
            &topic,
            "-e",
            "-f",
            "%s\\n",
            "-X",
            "isolation.level=read_committed",
        ],
        b"",
    );
    let mut values: Vec<&str> = consumed.lines().collect();
    values.sort_unstable();
    let mut expected: Vec<String> = (0..25).map(|i| format!("line-{i}")).collect();
    expected.sort_unstable();
    assert_eq!(values, expected);

    let t = listed(&c, &id, &[]);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0]["state"], "CompleteCommit");
    assert!(t[0]["producer_id"].as_i64().expect("a producer id") >= 0);
    // The state filter keeps it or leaves it out.
    assert_eq!(
        listed(&c, &id, &["--state", "completecommit"]).len(),
        1,
        "states match in any case"
    );
    assert!(listed(&c, &id, &["--state", "Ongoing"]).is_empty());
    // The text table names it with its state.
    let table = c.ok(&["transactions", "list"], b"");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.trim_end().ends_with("CompleteCommit")),
        "{table}"
    );

    let v: Value = serde_json::from_str(&c.ok(&["transactions", "describe", &id, "--json"], b""))
        .expect("JSON");
    let d = &v["transactions"][0];
    assert_eq!(d["transactional_id"], id.as_str());
    assert_eq!(d["state"], "CompleteCommit");
    assert_eq!(d["producer_id"], t[0]["producer_id"]);
    assert_eq!(d["transaction_start_time_ms"], Value::Null);
    assert_eq!(d["partitions"], Value::Array(Vec::new()));
}

#[test]
fn describe_of_an_unknown_id_exits_1_naming_it() {
    let c = Cluster::start();
    let id = unique("missing");
    let out = c.kafkit(&["transactions", "describe", &id], b"");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("`{id}`")), "{err}");
    assert!(err.contains("TRANSACTIONAL_ID_NOT_FOUND"), "{err}");
}

#[test]
fn a_transaction_whose_records_fail_is_aborted_and_the_command_fails() {
    let c = Cluster::start();
    let topic = unique("txn-big");
    let id = unique("big");
    c.ok(&["topics", "create", &topic, "--partitions", "1"], b"");
    // A record over max.request.size fails; the transaction is aborted, nothing is visible.
    let big = format!("small\n{}\n", "x".repeat(2000));
    let out = c.kafkit(
        &[
            "produce",
            "-t",
            &topic,
            "--transactional-id",
            &id,
            "-X",
            "max.request.size=1000",
        ],
        big.as_bytes(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("aborted the open transaction"), "{err}");
    let consumed = c.ok(
        &[
            "consume",
            "-t",
            &topic,
            "-e",
            "-f",
            "%s\\n",
            "-X",
            "isolation.level=read_committed",
        ],
        b"",
    );
    assert_eq!(consumed, "", "nothing committed");
    // Nothing of it was committed (CompleteAbort once its partition was registered; a
    // transaction aborted before that never reached the coordinator's state).
    for t in listed(&c, &id, &[]) {
        assert_ne!(t["state"], "CompleteCommit", "{t:?}");
    }
}

#[test]
fn txn_records_needs_a_transactional_id() {
    let c = Cluster::start();
    let out = c.kafkit(&["produce", "-t", "x", "--txn-records", "3"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--transactional-id"));
}

#[test]
fn sigint_aborts_the_open_transaction_and_keeps_the_committed_ones() {
    let c = Cluster::start();
    let topic = unique("txn-sig");
    let id = unique("sig");
    c.ok(&["topics", "create", &topic, "--partitions", "2"], b"");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(["-b", &c.bootstrap, "produce", "-t", &topic])
        .args(["--transactional-id", &id, "--txn-records", "2"])
        .env_remove("KAFKA_BOOTSTRAP")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kafkit");
    // Two records commit; the third opens a transaction that stays open (stdin stays open).
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(b"one\ntwo\nthree\n").expect("write");
    stdin.flush().expect("flush");
    let ongoing = (0..600).any(|_| {
        let out = c.kafkit(&["transactions", "describe", &id, "--json"], b"");
        let v: Option<Value> = serde_json::from_slice(&out.stdout).ok();
        let state = v.map(|v| v["transactions"][0]["state"].clone());
        if state == Some(Value::from("Ongoing")) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        false
    });
    assert!(ongoing, "the second transaction never opened");
    let killed = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("waiting for kafkit");
    drop(stdin);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("stopped by SIGINT: aborted the open transaction (1 record)"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "committed 2 records to {topic} in 1 transaction under `{id}`"
        )),
        "{err}"
    );
    let consumed = c.ok(
        &[
            "consume",
            "-t",
            &topic,
            "-e",
            "-f",
            "%s\\n",
            "-X",
            "isolation.level=read_committed",
        ],
        b"",
    );
    let mut values: Vec<&str> = consumed.lines().collect();
    values.sort_unstable();
    assert_eq!(values, ["one", "two"]);
    let t = listed(&c, &id, &[]);
    assert_eq!(t[0]["state"], "CompleteAbort", "{t:?}");
}

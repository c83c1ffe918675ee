//! `kafkit bench` end to end with small record counts against the development broker it starts
//! itself: each workload prints one parseable line per client with sane figures.

use std::collections::BTreeMap;
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .arg("bench")
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP")
        .output()
        .expect("running kafkit bench")
}

/// The `key=value` fields of every stdout line.
fn lines(out: &Output) -> Vec<BTreeMap<String, String>> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kafkit bench failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|f| {
                    let (k, v) = f
                        .split_once('=')
                        .unwrap_or_else(|| panic!("field {f} in {l}"));
                    (k.to_owned(), v.to_owned())
                })
                .collect()
        })
        .collect()
}

fn num(line: &BTreeMap<String, String>, key: &str) -> f64 {
    line.get(key)
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key} in {line:?}: {e}"))
}

/// The fields every client line has, checked for sanity.
fn check_common(line: &BTreeMap<String, String>, workload: &str, records: u64) {
    assert_eq!(line["client"], "kafkit");
    assert_eq!(line["workload"], workload);
    assert_eq!(num(line, "records"), records as f64, "{line:?}");
    assert_eq!(line["broker"], "dev");
    assert!(num(line, "rec_per_s") > 0.0, "{line:?}");
    assert!(num(line, "mb_per_s") > 0.0, "{line:?}");
    assert!(num(line, "cpu_us_per_rec") > 0.0, "{line:?}");
    assert!(num(line, "elapsed_s") > 0.0, "{line:?}");
    let rss = num(line, "peak_rss_mb");
    assert!(rss > 1.0 && rss < 4096.0, "{line:?}");
    assert!(num(line, "broker_cpu_us_per_rec") >= 0.0, "{line:?}");
    assert!(!line.contains_key("errors"), "{line:?}");
}

#[test]
fn produce_at_full_speed() {
    let out = bench(&[
        "produce",
        "--client",
        "kafkit",
        "--records",
        "5000",
        "--size",
        "200",
        "--partitions",
        "3",
    ]);
    let lines = lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    check_common(line, "produce", 5000);
    assert_eq!(line["size"], "200");
    assert_eq!(line["acks"], "1");
    assert_eq!(line["idempotence"], "false");
    assert_eq!(line["partitions"], "3");
    assert_eq!(line["rate"], "max");
    assert!(!line.contains_key("lat_p50_us"), "{line:?}");
    // 5000 records of 200 bytes: MB/s is records/s times 200 bytes.
    let expected = num(line, "rec_per_s") * 200.0 / 1e6;
    assert!(
        (num(line, "mb_per_s") - expected).abs() <= expected * 0.01 + 0.01,
        "{line:?}"
    );
}

#[test]
fn produce_idempotent_at_a_rate_measures_latency() {
    let out = bench(&[
        "produce",
        "--client",
        "kafkit",
        "--records",
        "2000",
        "--rate",
        "4000",
        "--acks",
        "all",
        "--compression",
        "lz4",
    ]);
    let lines = lines(&out);
    let line = &lines[0];
    check_common(line, "produce", 2000);
    assert_eq!(line["idempotence"], "true");
    assert_eq!(line["acks"], "all");
    assert_eq!(line["compression"], "lz4");
    assert_eq!(line["rate"], "4000");
    // 2000 records at 4000/s take about half a second.
    assert!(num(line, "elapsed_s") >= 0.45, "{line:?}");
    let (p50, p99, p999) = (
        num(line, "lat_p50_us"),
        num(line, "lat_p99_us"),
        num(line, "lat_p999_us"),
    );
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= p999, "{line:?}");
    assert!(p999 <= num(line, "lat_max_us"), "{line:?}");
}

#[test]
fn consume_a_filled_topic() {
    let out = bench(&["consume", "--client", "kafkit", "--records", "5000"]);
    let lines = lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    check_common(&lines[0], "consume", 5000);
}

#[test]
fn end_to_end_latency() {
    let out = bench(&[
        "e2e",
        "--client",
        "kafkit",
        "--records",
        "1500",
        "--rate",
        "3000",
    ]);
    let lines = lines(&out);
    let line = &lines[0];
    check_common(line, "e2e", 1500);
    assert_eq!(line["rate"], "3000");
    let (p50, p99) = (num(line, "lat_p50_us"), num(line, "lat_p99_us"));
    assert!(p50 > 0.0 && p50 <= p99, "{line:?}");
    // Well under the 30 s a stalled consumer gives up after.
    assert!(p99 < 10_000_000.0, "{line:?}");
}

#[cfg(not(feature = "rdkafka"))]
#[test]
fn rdkafka_needs_the_feature() {
    let out = bench(&["produce", "--client", "both", "--records", "10"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--features rdkafka"), "{stderr}");
}

#[cfg(feature = "rdkafka")]
#[test]
fn both_clients_and_the_ratio_line() {
    let out = bench(&["produce", "--client", "both", "--records", "5000"]);
    let lines = lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["client"], "kafkit");
    assert_eq!(lines[1]["client"], "rdkafka");
    assert_eq!(num(&lines[1], "records"), 5000.0);
    assert_eq!(lines[2]["ratio"], "kafkit/rdkafka");
    assert!(num(&lines[2], "cpu_us_per_rec") > 0.0);
}

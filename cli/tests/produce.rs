//! End-to-end tests of `kafkit produce`: records written from stdin and files with keys,
//! headers, delimiters and every codec, read back byte for byte by librdkafka's consumer from
//! librdkafka's mock cluster (or the cluster in KAFKA_BOOTSTRAP when it is set); failures exit
//! 1 naming the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// Runs `kafkit` with `args`, writing `stdin` to it; returns its output and how long it took.
fn kafkit(args: &[&str], stdin: &[u8]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafkit"))
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
    // Write from another thread: kafkit may exit (a usage error) before reading it all.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().expect("waiting for kafkit");
    writer.join().expect("stdin writer");
    (out, start.elapsed())
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Runs `kafkit produce` successfully and returns its stderr (the summary).
fn produce(args: &[&str], stdin: &[u8]) -> String {
    let (out, took) = kafkit(args, stdin);
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "kafkit {args:?} failed with {}: {err}",
        out.status
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    err
}

/// A record as read back: partition, key, value, headers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn received(m: &BorrowedMessage<'_>) -> Rec {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Rec {
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
    }
}

/// The live cluster: librdkafka's mock cluster, or the one in KAFKA_BOOTSTRAP.
enum Cluster {
    Mock(rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>),
    External(String),
}

impl Cluster {
    fn start() -> Cluster {
        match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(b) if !b.trim().is_empty() => Cluster::External(b),
            _ => Cluster::Mock(
                rdkafka::mocking::MockCluster::new(3).expect("starting the mock cluster"),
            ),
        }
    }

    fn bootstrap(&self) -> String {
        match self {
            Cluster::Mock(m) => m.bootstrap_servers(),
            Cluster::External(b) => b.clone(),
        }
    }

    /// Creates `name` with `partitions` partitions; the name gets this process's id so that
    /// runs against an external cluster do not meet each other.
    fn topic(&self, name: &str, partitions: i32) -> String {
        let name = format!("kafkit-produce-{name}-{}", std::process::id());
        match self {
            Cluster::Mock(m) => m
                .create_topic(&name, partitions, 3)
                .expect("creating a topic"),
            Cluster::External(b) => {
                use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
                let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", b)
                    .create()
                    .expect("an admin client");
                let topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
                let results =
                    futures_executor::block_on(admin.create_topics([&topic], &AdminOptions::new()))
                        .expect("CreateTopics");
                for r in results {
                    r.expect("creating the topic");
                }
            }
        }
        name
    }
}

/// Reads `count` records from every partition of `topic` from the beginning; returns them by
/// partition, in offset order.
fn consume(bootstrap: &str, topic: &str, partitions: i32, count: usize) -> BTreeMap<i32, Vec<Rec>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("adding a partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut got: BTreeMap<i32, Vec<Rec>> = BTreeMap::new();
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while n < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let records = got.entry(m.partition()).or_default();
                assert_eq!(
                    m.offset(),
                    records.len() as i64,
                    "offsets of partition {} are consecutive from 0",
                    m.partition()
                );
                records.push(received(&m));
                n += 1;
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    assert_eq!(n, count, "every record read back: {got:?}");
    // Nothing beyond what was expected.
    assert!(
        consumer.poll(Duration::from_millis(300)).is_none(),
        "no more records"
    );
    got
}

/// Asserts that `got` holds exactly `want` (all partitions together), and that each
/// partition holds its records in input order.
fn assert_same_records(want: &[Rec], got: &BTreeMap<i32, Vec<Rec>>) {
    let all: BTreeSet<&Rec> = got.values().flatten().collect();
    assert_eq!(all.len(), want.len(), "distinct records: {got:?}");
    assert_eq!(all, want.iter().collect(), "the records read back");
    for (p, records) in got {
        let positions: Vec<usize> = records
            .iter()
            .map(|r| want.iter().position(|w| w == r).expect("a record sent"))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "partition {p} keeps the input order: {positions:?}"
        );
    }
}

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

#[test]
fn lines_with_keys_and_headers_through_every_codec() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    for codec in CODECS {
        let topic = cluster.topic(codec, 3);
        // 300 lines: most "key:value" (a value may hold the delimiter again), some without a
        // key, one empty, some with bytes that are not UTF-8.
        let mut input = Vec::new();
        let mut want = Vec::new();
        let headers = vec![
            ("source".to_owned(), Some(b"kafkit-cli".to_vec())),
            ("empty".to_owned(), Some(Vec::new())),
            ("codec".to_owned(), Some(codec.as_bytes().to_vec())),
        ];
        for i in 0..300u32 {
            let (key, value): (Option<Vec<u8>>, Vec<u8>) = match i % 10 {
                0 => (None, format!("no key {i}").into_bytes()),
                1 if i == 1 => (None, Vec::new()),
                2 => (
                    Some(format!("k{}", i % 7).into_bytes()),
                    vec![0, 0xff, 0xfe, b':', i as u8],
                ),
                _ => (
                    Some(format!("k{}", i % 7).into_bytes()),
                    format!("value {i}: {}", "x".repeat(i as usize % 50)).into_bytes(),
                ),
            };
            if let Some(k) = &key {
                input.extend_from_slice(k);
                input.push(b':');
            }
            input.extend_from_slice(&value);
            input.push(b'\n');
            want.push(Rec {
                key,
                value: Some(value),
                headers: headers.clone(),
            });
        }
        let summary = produce(
            &[
                "-b",
                &bootstrap,
                "produce",
                "-t",
                &topic,
                "-K",
                ":",
                "-z",
                codec,
                "-H",
                "source=kafkit-cli",
                "-H",
                "empty=",
                "-H",
                &format!("codec={codec}"),
            ],
            &input,
        );
        assert!(
            summary.contains(&format!("produced 300 records ({} bytes) to {topic}", {
                want.iter()
                    .map(|r| r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().unwrap().len())
                    .sum::<usize>()
            })),
            "{codec}: {summary}"
        );
        let got = consume(&bootstrap, &topic, 3, want.len());
        assert_same_records(&want, &got);
        // Records with one key all went to one partition.
        for k in 0..7 {
            let key = format!("k{k}").into_bytes();
            let holding: Vec<i32> = got
                .iter()
                .filter(|(_, rs)| rs.iter().any(|r| r.key.as_ref() == Some(&key)))
                .map(|(p, _)| *p)
                .collect();
            assert_eq!(holding.len(), 1, "{codec}: key k{k} in {holding:?}");
        }
    }
}

#[test]
fn files_with_a_fixed_key_partition_and_delimiter() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let topic = cluster.topic("files", 4);
    let dir = std::env::temp_dir().join(format!("kafkit-produce-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let first = dir.join("first.txt");
    let second = dir.join("second.txt");
    // Records separated by "|~", holding newlines; the first file ends with a delimiter, the
    // second does not; stdin ("-") comes between them.
    std::fs::write(&first, b"one\nline|~two|~").expect("writing a file");
    std::fs::write(&second, b"four|~|~six").expect("writing a file");
    let summary = produce(
        &[
            "-b",
            &bootstrap,
            "produce",
            "-t",
            &topic,
            "-p",
            "2",
            "-k",
            "fixed",
            "-D",
            "|~",
            "--acks",
            "1",
            first.to_str().unwrap(),
            "-",
            second.to_str().unwrap(),
        ],
        b"three",
    );
    assert!(summary.contains("produced 6 records"), "{summary}");
    let values: [&[u8]; 6] = [b"one\nline", b"two", b"three", b"four", b"", b"six"];
    let want: Vec<Rec> = values
        .iter()
        .map(|v| Rec {
            key: Some(b"fixed".to_vec()),
            value: Some(v.to_vec()),
            headers: Vec::new(),
        })
        .collect();
    let got = consume(&bootstrap, &topic, 4, want.len());
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), [2], "{got:?}");
    assert_eq!(got[&2], want, "every record in partition 2, in order");

    // acks=0 and an escaped delimiter: the records arrive (their offsets are unknown to the
    // producer, so the summary still counts them as delivered).
    let summary = produce(
        &[
            "-b", &bootstrap, "produce", "-t", &topic, "-p", "3", "--acks", "0", "-D", "\\x00",
        ],
        b"a\0b\0c",
    );
    assert!(
        summary.contains("produced 3 records (3 bytes)"),
        "{summary}"
    );
    let got = consume(&bootstrap, &topic, 4, 9);
    let values: Vec<&[u8]> = got[&3]
        .iter()
        .map(|r| r.value.as_deref().unwrap())
        .collect();
    assert_eq!(values, [b"a", b"b", b"c"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_unknown_partition_exits_1_with_the_reason() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let topic = cluster.topic("unknown-partition", 3);
    let (out, took) = kafkit(
        &["-b", &bootstrap, "produce", "-t", &topic, "-p", "99"],
        b"a\nb\n",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(out.stdout.is_empty());
    assert!(!err.contains("panicked"), "{err}");
    // The summary, one line for the reason (both records failed alike), and the error.
    assert!(err.contains("produced 0 of 2 records"), "{err}");
    let reasons: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("kafkit: failed: "))
        .collect();
    assert_eq!(reasons.len(), 1, "one distinct reason: {err}");
    assert!(
        reasons[0].contains("99") && reasons[0].contains(&topic),
        "names the partition and the topic: {err}"
    );
    assert!(
        err.lines()
            .last()
            .is_some_and(|l| l.starts_with("kafkit: error: ")),
        "{err}"
    );
}

#[test]
fn a_missing_topic_exits_1_naming_it_after_max_block_ms() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let topic = format!("kafkit-produce-missing-{}", std::process::id());
    let input: Vec<u8> = (0..500)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let (out, took) = kafkit(
        &[
            "-b",
            &bootstrap,
            "-X",
            "allow.auto.create.topics=false",
            "-X",
            "max.block.ms=1500",
            "produce",
            "-t",
            &topic,
        ],
        &input,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(err.contains("produced 0 of"), "{err}");
    let reasons: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("kafkit: failed: "))
        .collect();
    assert_eq!(reasons.len(), 1, "one distinct reason: {err}");
    assert!(reasons[0].contains(&topic), "names the topic: {err}");
}

#[test]
fn usage_errors_exit_2_before_connecting() {
    // Nothing listens here: a usage error must be found before any connection is tried.
    let bootstrap = "127.0.0.1:1";
    for (args, needle) in [
        (vec!["produce", "-t", "t", "/no/such/file"], "/no/such/file"),
        (vec!["produce", "-t", "t", "-D", "\\q"], "-D"),
        (vec!["produce", "-t", "t", "-K", ""], "-K"),
        (vec!["produce", "-t", "t", "-z", "brotli"], "brotli"),
        (
            vec!["produce", "-t", "bad topic!"],
            "invalid topic name `bad topic!`",
        ),
        (vec!["produce", "-t", "t", "-H", "novalue"], "NAME=VALUE"),
        (vec!["produce", "-t", "t", "-k", "a", "-K", ":"], "--key"),
        (
            vec!["-X", "linger.ms=soon", "produce", "-t", "t"],
            "linger.ms",
        ),
        (
            vec![
                "-X",
                "enable.idempotence=true",
                "produce",
                "-t",
                "t",
                "--acks",
                "1",
            ],
            "idempotence",
        ),
    ] {
        let mut all = vec!["-b", bootstrap];
        all.extend(args.iter().copied());
        let (out, took) = kafkit(&all, b"x\n");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "kafkit {all:?}: {err}");
        assert!(err.contains(needle), "kafkit {all:?} names {needle}: {err}");
        assert!(
            took < Duration::from_secs(10),
            "kafkit {all:?} took {took:?}"
        );
    }
}

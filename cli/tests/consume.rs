//! End-to-end tests of `kafkit consume`: records written by librdkafka's producer (keys,
//! headers, timestamps, null keys and values, bytes that are not UTF-8) into librdkafka's mock
//! cluster (or the cluster in KAFKA_BOOTSTRAP when it is set), read back with every start
//! (`-o`), format token (`-f`), `-e` and `-c`, and compared with stdout byte for byte.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// Runs `kafkit` with `args`; returns its output and how long it took. A run that is not
/// over within a minute is killed (and the test fails on its status) rather than hanging.
fn kafkit(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kafkit");
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(60)).is_err() {
            // Still running: end it by its own pid.
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    });
    let out = child.wait_with_output().expect("waiting for kafkit");
    let _ = done_tx.send(());
    watchdog.join().expect("watchdog");
    (out, start.elapsed())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `kafkit -b BOOTSTRAP consume ARGS` successfully and returns its stdout (raw bytes) and
/// stderr.
fn consume(bootstrap: &str, args: &[&str]) -> (Vec<u8>, String) {
    let mut all = vec!["-b", bootstrap, "consume"];
    all.extend_from_slice(args);
    let (out, took) = kafkit(&all);
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "kafkit {all:?} failed with {}: {err}",
        out.status
    );
    assert!(!err.contains("warning"), "no warnings: {err}");
    assert!(
        took < Duration::from_secs(30),
        "kafkit {all:?} took {took:?}"
    );
    (out.stdout, err)
}

/// Asserts a failed run with `code` and one line on stderr; returns that line.
fn failure(bootstrap: &str, args: &[&str], code: i32) -> String {
    let mut all = vec!["-b", bootstrap, "consume"];
    all.extend_from_slice(args);
    let (out, took) = kafkit(&all);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "kafkit {all:?}: {err}");
    assert!(
        took < Duration::from_secs(30),
        "kafkit {all:?} took {took:?}"
    );
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    assert!(err.starts_with("kafkit: error: "), "{err:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    err
}

/// The live cluster: librdkafka's mock cluster, or the one in KAFKA_BOOTSTRAP. The mock
/// cluster cannot look offsets up by time (its ListOffsets answers -1 for any timestamp), so
/// the test of `-o @TIMESTAMP` runs against kafkit's development broker instead.
enum Cluster {
    Mock(rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>),
    Dev(kafkit_sim::DevBroker),
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

    /// A cluster that looks offsets up by time: kafkit's development broker, or the one in
    /// KAFKA_BOOTSTRAP.
    fn with_time_index() -> Cluster {
        match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(b) if !b.trim().is_empty() => Cluster::External(b),
            _ => Cluster::Dev(
                kafkit_sim::DevBroker::start(kafkit_sim::DevBrokerConfig::new(3).port(0))
                    .expect("starting the development broker"),
            ),
        }
    }

    fn bootstrap(&self) -> String {
        match self {
            Cluster::Mock(m) => m.bootstrap_servers(),
            Cluster::Dev(d) => d.bootstrap(),
            Cluster::External(b) => b.clone(),
        }
    }

    /// Creates `name` with `partitions` partitions; the name gets this process's id so that
    /// runs against an external cluster do not meet each other.
    fn topic(&self, name: &str, partitions: i32) -> String {
        let name = format!("kafkit-consume-{name}-{}", std::process::id());
        match self {
            Cluster::Mock(m) => m
                .create_topic(&name, partitions, 3)
                .expect("creating a topic"),
            Cluster::Dev(_) | Cluster::External(_) => {
                let b = self.bootstrap();
                use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
                let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", &b)
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

/// A record to write with librdkafka.
#[derive(Debug, Clone)]
struct Rec {
    partition: i32,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(&'static str, Option<Vec<u8>>)>,
    timestamp: i64,
}

/// Writes `records` in order with librdkafka's idempotent producer (so each partition keeps
/// the order) and waits until all are acknowledged.
fn write(bootstrap: &str, topic: &str, records: &[Rec]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("a producer");
    for r in records {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &r.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(r.partition)
            .timestamp(r.timestamp)
            .headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            record = record.payload(v.as_slice());
        }
        producer.send(record).map_err(|(e, _)| e).expect("queued");
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("every record acknowledged");
}

/// `n` records per partition: value `p<P>-<i>`, key `k<i>` (none for every fifth), a header,
/// timestamp `BASE + 1000 * i` (the same in every partition).
fn simple(partitions: i32, n: i64) -> Vec<Rec> {
    let mut out = Vec::new();
    for i in 0..n {
        for p in 0..partitions {
            out.push(Rec {
                partition: p,
                key: (i % 5 != 4).then(|| format!("k{i}").into_bytes()),
                value: Some(format!("p{p}-{i}").into_bytes()),
                headers: vec![("n", Some(i.to_string().into_bytes()))],
                timestamp: BASE + 1000 * i,
            });
        }
    }
    out
}

const BASE: i64 = 1_700_000_000_000;

/// The lines of `out` grouped by the partition named before the first `|` (every format
/// in these tests starts with `%p|`), in output order.
fn by_partition(out: &[u8]) -> BTreeMap<i32, Vec<String>> {
    let text = String::from_utf8(out.to_vec()).expect("UTF-8 output");
    let mut got: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let (p, rest) = line.split_once('|').expect("a partition first");
        got.entry(p.parse().expect("a partition"))
            .or_default()
            .push(rest.to_owned());
    }
    got
}

#[test]
fn one_partition_every_token_byte_for_byte() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let topic = cluster.topic("tokens", 1);
    let records = vec![
        Rec {
            partition: 0,
            key: Some(b"alice".to_vec()),
            value: Some(b"hello world".to_vec()),
            headers: vec![
                ("source", Some(b"test".to_vec())),
                ("trace", Some(b"1".to_vec())),
            ],
            timestamp: BASE,
        },
        Rec {
            partition: 0,
            key: None,
            value: None,
            headers: vec![("null", None), ("empty", Some(Vec::new()))],
            timestamp: BASE + 1,
        },
        Rec {
            partition: 0,
            key: Some(Vec::new()),
            value: Some(vec![0, 0xff, b'\n', 0xfe, b'%']),
            headers: Vec::new(),
            timestamp: BASE + 2,
        },
    ];
    write(&bootstrap, &topic, &records);

    // The default format: the value and a newline, raw bytes; a null value prints nothing.
    let (out, err) = consume(&bootstrap, &["-t", &topic, "-e"]);
    assert_eq!(out, b"hello world\n\n\x00\xff\n\xfe%\n");
    assert!(
        err.contains(&format!("consumed 3 records from {topic}")),
        "{err}"
    );

    // Every token.
    let format = "%t|%p|%o|%T|[%k]|%K|[%s]|%S|%h|%%\\t|\\x41\\n";
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-p", "0", "-e", "-f", format]);
    let mut want = Vec::new();
    want.extend_from_slice(
        format!(
            "{topic}|0|0|{BASE}|[alice]|5|[hello world]|11|source=test,trace=1|%\t|A\n\
             {topic}|0|1|{}|[]|-1|[]|-1|null=NULL,empty=|%\t|A\n\
             {topic}|0|2|{}|[]|0|[",
            BASE + 1,
            BASE + 2
        )
        .as_bytes(),
    );
    want.extend_from_slice(&[0, 0xff, b'\n', 0xfe, b'%']);
    want.extend_from_slice(b"]|5||%\t|A\n");
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(out, want);
}

#[test]
fn starts_beginning_end_offset_and_tail() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let topic = cluster.topic("starts", 3);
    write(&bootstrap, &topic, &simple(3, 10));
    let format = "%p|%o %k %s\\n";
    let line = |p: i32, i: i64| {
        let key = if i % 5 == 4 {
            String::new()
        } else {
            format!("k{i}")
        };
        format!("{i} {key} p{p}-{i}")
    };
    let want = |from: i64| -> BTreeMap<i32, Vec<String>> {
        (0..3)
            .map(|p| (p, (from..10).map(|i| line(p, i)).collect()))
            .collect()
    };

    // Default (beginning), every partition: each in offset order.
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-e", "-f", format]);
    assert_eq!(by_partition(&out), want(0));
    let (out, _) = consume(
        &bootstrap,
        &["-t", &topic, "-o", "beginning", "-e", "-f", format],
    );
    assert_eq!(by_partition(&out), want(0));

    // An absolute offset, in every partition and in one.
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-o", "7", "-e", "-f", format]);
    assert_eq!(by_partition(&out), want(7));
    let (out, _) = consume(
        &bootstrap,
        &["-t", &topic, "-p", "2", "-o", "7", "-e", "-f", format],
    );
    assert_eq!(
        by_partition(&out),
        BTreeMap::from([(2, want(7)[&2].clone())])
    );

    // N before the end of each partition; more than there are starts at the beginning.
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-o", "-3", "-e", "-f", format]);
    assert_eq!(by_partition(&out), want(7));
    let (out, _) = consume(
        &bootstrap,
        &["-t", &topic, "-o", "-1000", "-e", "-f", format],
    );
    assert_eq!(by_partition(&out), want(0));

    // The end: nothing, and -e still ends.
    let (out, err) = consume(&bootstrap, &["-t", &topic, "-o", "end", "-e", "-f", format]);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert!(err.contains("consumed 0 records"), "{err}");
}

#[test]
fn timestamp_starts_at_the_first_record_at_or_after_it() {
    let cluster = Cluster::with_time_index();
    let bootstrap = cluster.bootstrap();
    let topic = cluster.topic("times", 3);
    write(&bootstrap, &topic, &simple(3, 10));
    let format = "%p|%o %T %s\\n";
    let want = |from: i64| -> BTreeMap<i32, Vec<String>> {
        (0..3)
            .map(|p| {
                let lines = (from..10).map(|i| format!("{i} {} p{p}-{i}", BASE + 1000 * i));
                (p, lines.collect())
            })
            .collect()
    };
    // A timestamp: the first record at or after it (record 6 at BASE + 6000), in each
    // partition; one after every record starts at the end.
    let at = format!("@{}", BASE + 5500);
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-o", &at, "-e", "-f", format]);
    assert_eq!(by_partition(&out), want(6));
    let exact = format!("@{}", BASE + 6000);
    let (out, _) = consume(
        &bootstrap,
        &["-t", &topic, "-p", "1", "-o", &exact, "-e", "-f", format],
    );
    assert_eq!(
        by_partition(&out),
        BTreeMap::from([(1, want(6)[&1].clone())])
    );
    let late = format!("@{}", BASE + 1_000_000);
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-o", &late, "-e", "-f", format]);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    // kcat's spelling.
    let kcat = format!("s@{}", BASE + 8500);
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-o", &kcat, "-e", "-f", format]);
    assert_eq!(by_partition(&out), want(9));
}

#[test]
fn count_stops_without_exit_at_end() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let topic = cluster.topic("count", 1);
    write(&bootstrap, &topic, &simple(1, 10));
    // No -e: only the count ends the run.
    let (out, err) = consume(&bootstrap, &["-t", &topic, "-c", "4"]);
    assert_eq!(out, b"p0-0\np0-1\np0-2\np0-3\n");
    assert!(err.contains("consumed 4 records"), "{err}");
    // With both, whichever comes first.
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-o", "8", "-c", "5", "-e"]);
    assert_eq!(out, b"p0-8\np0-9\n");
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-o", "2", "-c", "1", "-e"]);
    assert_eq!(out, b"p0-2\n");
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-c", "0"]);
    assert!(out.is_empty());
}

#[test]
fn exit_at_end_with_empty_partitions() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let topic = cluster.topic("sparse", 4);
    // Records only in partition 2; the others are empty and -e must still end.
    let records: Vec<Rec> = simple(1, 5)
        .into_iter()
        .map(|r| Rec { partition: 2, ..r })
        .collect();
    write(&bootstrap, &topic, &records);
    let (out, _) = consume(&bootstrap, &["-t", &topic, "-e"]);
    assert_eq!(out, b"p0-0\np0-1\np0-2\np0-3\np0-4\n");
    // An empty topic ends at once.
    let empty = cluster.topic("empty", 2);
    let (out, err) = consume(&bootstrap, &["-t", &empty, "-e"]);
    assert!(out.is_empty());
    assert!(err.contains("consumed 0 records"), "{err}");
}

#[test]
fn many_records_stream_quickly() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let topic = cluster.topic("many", 3);
    let n = 20_000;
    let records: Vec<Rec> = (0..n)
        .map(|i| Rec {
            partition: (i % 3) as i32,
            key: None,
            value: Some(format!("{i:08}").into_bytes()),
            headers: Vec::new(),
            timestamp: BASE + i,
        })
        .collect();
    write(&bootstrap, &topic, &records);
    let start = Instant::now();
    let (out, err) = consume(&bootstrap, &["-t", &topic, "-e", "-f", "%p|%s\\n"]);
    let took = start.elapsed();
    let got = by_partition(&out);
    for p in 0..3 {
        let want: Vec<String> = (0..n)
            .filter(|i| i % 3 == p as i64)
            .map(|i| format!("{i:08}"))
            .collect();
        assert_eq!(got[&p], want, "partition {p} in order, each record once");
    }
    assert!(err.contains(&format!("consumed {n} records")), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn bad_usage_and_missing_topics_fail_in_one_line() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let topic = cluster.topic("errors", 2);

    let err = failure(&bootstrap, &["-t", &topic, "-o", "soon"], 2);
    assert!(err.contains("-o/--offset"), "{err}");
    let err = failure(&bootstrap, &["-t", &topic, "-f", "%s %x"], 2);
    assert!(err.contains("%x"), "{err}");
    let err = failure(&bootstrap, &["-t", &topic, "-f", "%s%"], 2);
    assert!(err.contains("-f/--format"), "{err}");
    let err = failure(
        &bootstrap,
        &["-t", &topic, "-X", "fetch.max.wait.ms=soon"],
        2,
    );
    assert!(err.contains("fetch"), "{err}");

    let missing = format!("kafkit-consume-missing-{}", std::process::id());
    let err = failure(&bootstrap, &["-t", &missing, "-e"], 1);
    assert!(err.contains("does not exist"), "{err}");
    let err = failure(&bootstrap, &["-t", &topic, "-p", "5", "-e"], 1);
    assert!(err.contains("has no partition 5"), "{err}");
    // A name no broker accepts is said to be invalid, not missing, with or without a group.
    for group in [&[][..], &["-G", "g"]] {
        let mut args = vec!["-t", "bad topic!", "-e"];
        args.extend_from_slice(group);
        let err = failure(&bootstrap, &args, 2);
        assert!(err.contains("invalid topic name `bad topic!`"), "{err}");
    }
}

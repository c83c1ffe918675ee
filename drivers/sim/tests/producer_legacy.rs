//! The producer core against the simulated cluster configured as every release before 0.11:
//! 0.8.0, 0.8.1 and 0.8.2 (Produce v0, Fetch v0), 0.9 (Produce v1), 0.10.0, 0.10.1 and 0.10.2
//! (Produce v2); and, for the table's newer rows, 0.11, 1.0, 2.0 and 3.0 (record batches).
//! Before 0.11 records go out as legacy message sets (magic 0 before 0.10, magic 1 with
//! timestamps from 0.10); each release gets every codec it knew, and the consumer core reads
//! them back: keys, values, nulls and timestamps exact. Also: idempotence at its default
//! turns itself off there, asked for it fails naming what the broker lacks, headers, zstd (and
//! lz4 before 0.8.2) fail with the reason, and `batch_size` still bounds each message set.
//!
//! The clusters are the release profiles (`ClusterConfig::release`, the same as the
//! compatibility matrix in `old_brokers.rs` and `kafkit dev-broker --kafka-version`), one test
//! per release: each is the produce cell of the README's table. Every test runs
//! in virtual time from a fixed seed, so a failure replays exactly.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::config::{
    AutoOffsetReset, BrokerVersion, CompressionType, ConsumerConfig, ProducerConfig,
};
use kafkit_core::consumer::{ConsumerCore, ConsumerRecord, TopicPartition};
use kafkit_core::network::NetOptions;
use kafkit_core::producer::{
    ProduceError, ProducerCore, ProducerEvent, ProducerRecord, RecordMetadata,
};
use kafkit_core::protocol::{ApiKey, RequestBody};
use kafkit_core::records::{TimestampType, MAGIC_V0, MAGIC_V1, MAGIC_V2};
use kafkit_core::OpId;
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, HookAction, LinkConfig, Simulation};

const TOPIC: &str = "legacy";
const WALL_START: i64 = 1_700_000_000_000;

/// An old release: its profile and what the producer should write to it.
struct Release {
    /// The profile (`ClusterConfig::release`).
    name: &'static str,
    version: BrokerVersion,
    /// The Produce version the producer should use and the magic it carries.
    produce_version: i16,
    magic: i8,
    /// The codecs the release knew (lz4 came with 0.8.2, zstd with 2.1).
    codecs: &'static [CompressionType],
}

const OLD_CODECS: &[CompressionType] = &[
    CompressionType::None,
    CompressionType::Gzip,
    CompressionType::Snappy,
];
const CODECS: &[CompressionType] = &[
    CompressionType::None,
    CompressionType::Gzip,
    CompressionType::Snappy,
    CompressionType::Lz4,
];

const fn release(
    name: &'static str,
    version: (u16, u16, u16),
    produce_version: i16,
    codecs: &'static [CompressionType],
) -> Release {
    Release {
        name,
        version: BrokerVersion::new(version.0, version.1, version.2),
        produce_version,
        magic: match produce_version {
            0 | 1 => MAGIC_V0,
            2 => MAGIC_V1,
            _ => MAGIC_V2,
        },
        codecs,
    }
}

/// Kafka 0.8.0: no offsets API, Produce v0; gzip and snappy only.
const KAFKA_0_8_0: Release = release("0.8.0", (0, 8, 0), 0, OLD_CODECS);
/// Kafka 0.8.1: ZooKeeper offsets; still no lz4.
const KAFKA_0_8_1: Release = release("0.8.1", (0, 8, 1), 0, OLD_CODECS);
/// Kafka 0.8.2: lz4 (magic 0, with its header checksum quirk), Produce v0.
const KAFKA_0_8_2: Release = release("0.8.2", (0, 8, 2), 0, CODECS);
/// Kafka 0.9: Produce v1 (throttle times), still magic 0.
const KAFKA_0_9: Release = release("0.9", (0, 9, 0), 1, CODECS);
/// Kafka 0.10.0: Produce v2, magic 1 with timestamps.
const KAFKA_0_10_0: Release = release("0.10.0", (0, 10, 0), 2, CODECS);
/// Kafka 0.10.1: the same Produce v2.
const KAFKA_0_10_1: Release = release("0.10.1", (0, 10, 1), 2, CODECS);
/// Kafka 0.10.2: the same Produce v2.
const KAFKA_0_10_2: Release = release("0.10.2", (0, 10, 2), 2, CODECS);
/// From 0.11 record batches (magic 2), at each release's newest Produce version.
const KAFKA_0_11: Release = release("0.11", (0, 11, 0), 3, CODECS);
const KAFKA_1: Release = release("1", (1, 0, 0), 5, CODECS);
const KAFKA_2: Release = release("2", (2, 0, 0), 6, CODECS);
/// zstd came with 2.1: 3.0 has it.
const KAFKA_3: Release = release("3", (3, 0, 0), 9, ALL_CODECS);

const ALL_CODECS: &[CompressionType] = &[
    CompressionType::None,
    CompressionType::Gzip,
    CompressionType::Snappy,
    CompressionType::Lz4,
    CompressionType::Zstd,
];

/// Three brokers as `release`'s profile: its API versions (no ApiVersions before 0.10: the
/// client probes, as for a real old broker), its stored message format.
fn cluster_config(release: &Release) -> ClusterConfig {
    ClusterConfig {
        brokers: 3,
        default_partitions: 3,
        replication_factor: 1,
        seed: 21,
        ..ClusterConfig::release(release.name).expect("a release profile")
    }
}

fn net_options() -> NetOptions {
    let mut opts = NetOptions::new(vec![("broker-0".into(), 9092)]);
    opts.conn.request_timeout = Duration::from_secs(5);
    opts.conn.setup_timeout = Duration::from_secs(2);
    opts.retry_backoff = Duration::from_millis(100);
    opts.seed = 5;
    opts
}

fn producer_config(f: impl FnOnce(&mut ProducerConfig)) -> ProducerConfig {
    let mut c = ProducerConfig::builder()
        .bootstrap_servers("broker-0:9092")
        .build()
        .unwrap();
    c.common.request_timeout_ms = 5_000;
    c.common.retry_backoff_ms = 100;
    c.linger_ms = 5;
    f(&mut c);
    c
}

type Outcome = Result<RecordMetadata, ProduceError>;

/// What the producer wrote: the Produce requests the brokers saw, as (version, partition,
/// magic byte of the set's first message, its codec bits, set size).
type Seen = Rc<RefCell<Vec<(i16, i32, i8, u8, usize)>>>;

struct Env {
    sim: Simulation<ProducerCore>,
    cluster: Rc<RefCell<Cluster>>,
    outcomes: BTreeMap<u64, Outcome>,
    seen: Seen,
}

fn env(release: &Release, config: ProducerConfig) -> Env {
    let start = Instant::now();
    let cluster = Rc::new(RefCell::new(Cluster::new(cluster_config(release), start)));
    let seen: Seen = Rc::default();
    let log = seen.clone();
    cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(move |header, body| {
            if let RequestBody::Produce(p) = body {
                for t in &p.topic_data {
                    for d in &t.partition_data {
                        let set = d.records.clone().unwrap_or_default();
                        let magic = set.get(16).map_or(-1, |&m| m as i8);
                        // The codec bits: a message's attributes follow its magic; a record
                        // batch's (an i16) follow its CRC.
                        let at = if magic >= 2 { 22 } else { 17 };
                        let codec = set.get(at).map_or(0, |&a| a & 0x07);
                        log.borrow_mut().push((
                            header.request_api_version,
                            d.index,
                            magic,
                            codec,
                            set.len(),
                        ));
                    }
                }
            }
            HookAction::Pass
        }),
    );
    let mut core = ProducerCore::new(config, net_options()).unwrap();
    core.handle_wall_clock(start, WALL_START);
    let mut sim = Simulation::new(core, 9, start)
        .with_links(LinkConfig {
            latency: Duration::from_micros(300),
            jitter: Duration::from_micros(200),
        })
        .with_max_steps(2_000_000);
    serve_cluster(&mut sim, &cluster);
    Env {
        sim,
        cluster,
        outcomes: BTreeMap::new(),
        seen,
    }
}

fn absorb(outcomes: &mut BTreeMap<u64, Outcome>, events: Vec<ProducerEvent>) {
    for e in events {
        match e {
            ProducerEvent::Delivered(d) => {
                for (op, r) in &d {
                    assert!(outcomes.insert(op.0, r).is_none(), "op {op} twice");
                }
            }
            ProducerEvent::Admitted { op, result: Err(e) } => {
                outcomes.insert(op.0, Err(e));
            }
            _ => {}
        }
    }
}

impl Env {
    fn send(&mut self, op: u64, record: ProducerRecord) {
        let now = self.sim.now();
        if let Err(e) = self.sim.core().send(Some(OpId(op)), record, now) {
            self.outcomes.insert(op, Err(e));
        }
        self.sim.drain();
        let events = self.sim.take_events();
        absorb(&mut self.outcomes, events);
    }

    /// Runs until `n` records are reported.
    fn run_until_reported(&mut self, n: usize) {
        let outcomes = RefCell::new(std::mem::take(&mut self.outcomes));
        let done = self
            .sim
            .run_until(|s| {
                let mut o = outcomes.borrow_mut();
                absorb(&mut o, s.take_events());
                o.len() >= n
            })
            .unwrap();
        self.outcomes = outcomes.into_inner();
        assert!(done, "only {} of {n} records reported", self.outcomes.len());
    }
}

/// The records of one round: a mix of keys, null keys, values, null values (tombstones) and
/// empty values, with explicit timestamps.
fn records(round: u64, n: u64) -> Vec<(u64, ProducerRecord)> {
    (0..n)
        .map(|i| {
            let op = round * 1000 + i;
            let mut r = ProducerRecord::new(TOPIC)
                .partition((i % 3) as i32)
                .timestamp(WALL_START + op as i64 * 7);
            if i % 4 != 1 {
                r = r.key(Bytes::from(format!("key-{op}")));
            }
            match i % 5 {
                2 => {}                         // null value
                3 => r = r.value(Bytes::new()), // empty value
                _ => {
                    r = r.value(Bytes::from(format!(
                        "value-{op}-{}",
                        "x".repeat(i as usize)
                    )))
                }
            }
            (op, r)
        })
        .collect()
}

/// Reads every record of the topic's three partitions back with the consumer core.
fn consume_all(env: &Env, n: usize) -> Vec<ConsumerRecord> {
    let start = env.sim.now();
    let mut cc = ConsumerConfig::default();
    cc.common.bootstrap_servers = vec!["broker-0:9092".into()];
    cc.auto_offset_reset = AutoOffsetReset::Earliest;
    cc.fetch_max_wait_ms = 100;
    cc.common.retry_backoff_ms = 50;
    cc.common.request_timeout_ms = 5_000;
    let mut sim = Simulation::new(ConsumerCore::new(cc, net_options()), 13, start)
        .with_links(LinkConfig {
            latency: Duration::from_micros(300),
            jitter: Duration::ZERO,
        })
        .with_max_steps(2_000_000);
    serve_cluster(&mut sim, &env.cluster);
    sim.core()
        .assign((0..3).map(|p| TopicPartition::new(TOPIC, p)), start);
    let deadline = start + Duration::from_secs(60);
    let mut got = Vec::new();
    sim.run_until(|s| {
        let now = s.now();
        assert!(now < deadline, "only {} of {n} records read", got.len());
        loop {
            match s.core().take_records(500, now) {
                Ok(r) if r.is_empty() => break,
                Ok(r) => got.extend(r.iter().cloned()),
                Err(e) => panic!("consumer failed: {e}"),
            }
        }
        got.len() >= n
    })
    .unwrap();
    got
}

/// Produces a round per codec to `release` and reads everything back exactly.
fn round_trip(release: &Release) {
    let mut env = env(release, producer_config(|_| {}));
    let mut sent: BTreeMap<u64, ProducerRecord> = BTreeMap::new();
    // One producer per codec, all writing into the first cluster.
    let cluster = env.cluster.clone();
    let mut expected = 0;
    for (round, codec) in release.codecs.iter().enumerate() {
        let start = env.sim.now();
        let mut core = ProducerCore::new(
            producer_config(|c| c.compression_type = *codec),
            net_options(),
        )
        .unwrap();
        core.handle_wall_clock(start, WALL_START);
        let mut sim = Simulation::new(core, 9 + round as u64, start)
            .with_links(LinkConfig {
                latency: Duration::from_micros(300),
                jitter: Duration::from_micros(200),
            })
            .with_max_steps(2_000_000);
        serve_cluster(&mut sim, &cluster);
        std::mem::swap(&mut env.sim, &mut sim);
        let batch = records(round as u64, 20);
        expected += batch.len();
        for (op, r) in batch {
            sent.insert(op, r.clone());
            env.send(op, r);
        }
        env.run_until_reported(expected);
        for (op, outcome) in &env.outcomes {
            let md = outcome
                .as_ref()
                .unwrap_or_else(|e| panic!("{}: record {op} failed: {e}", release.name));
            assert!(md.offset >= 0, "{}: record {op} acknowledged", release.name);
        }
    }
    // The brokers got legacy sets of the release's magic at its Produce version.
    let seen = env.seen.borrow().clone();
    assert!(!seen.is_empty());
    for &(version, partition, magic, ..) in &seen {
        assert_eq!(
            (version, magic),
            (release.produce_version, release.magic),
            "{}: Produce v{version} with magic {magic} for partition {partition}",
            release.name
        );
    }
    let codecs: std::collections::BTreeSet<u8> = seen.iter().map(|s| s.3).collect();
    let want: Vec<u8> = (0..release.codecs.len() as u8).collect();
    assert_eq!(
        codecs.into_iter().collect::<Vec<_>>(),
        want,
        "{}: plain and compressed sets or batches per codec (gzip 1, snappy 2, lz4 3, zstd 4)",
        release.name
    );
    // Read back: every record once, exact.
    let got = consume_all(&env, expected);
    assert_eq!(got.len(), expected, "{}", release.name);
    let mut by_offset: BTreeMap<(i32, i64), &ConsumerRecord> = BTreeMap::new();
    for r in &got {
        assert!(
            by_offset.insert((r.partition, r.offset), r).is_none(),
            "read twice"
        );
    }
    for (op, outcome) in &env.outcomes {
        let md = outcome.as_ref().unwrap();
        let want = &sent[op];
        let r = by_offset
            .get(&(md.partition, md.offset))
            .unwrap_or_else(|| panic!("{}: record {op} not read back", release.name));
        assert_eq!(r.key, want.key, "{}: key of {op}", release.name);
        assert_eq!(r.value, want.value, "{}: value of {op}", release.name);
        if release.magic >= MAGIC_V1 {
            assert_eq!(
                Some(r.timestamp),
                want.timestamp,
                "{}: timestamp",
                release.name
            );
            assert_eq!(r.timestamp_type, Some(TimestampType::CreateTime));
        } else {
            assert_eq!(
                r.timestamp, -1,
                "{}: magic 0 has no timestamps",
                release.name
            );
        }
    }
}

macro_rules! round_trips {
    ($($name:ident => $release:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                round_trip(&$release);
            }
        )*
    };
}

round_trips! {
    kafka_0_8_0_round_trip_with_every_codec => KAFKA_0_8_0,
    kafka_0_8_1_round_trip_with_every_codec => KAFKA_0_8_1,
    kafka_0_8_2_round_trip_with_every_codec => KAFKA_0_8_2,
    kafka_0_9_round_trip_with_every_codec => KAFKA_0_9,
    kafka_0_10_0_round_trip_with_every_codec => KAFKA_0_10_0,
    kafka_0_10_1_round_trip_with_every_codec => KAFKA_0_10_1,
    kafka_0_10_2_round_trip_with_every_codec => KAFKA_0_10_2,
    kafka_0_11_round_trip_with_every_codec => KAFKA_0_11,
    kafka_1_round_trip_with_every_codec => KAFKA_1,
    kafka_2_round_trip_with_every_codec => KAFKA_2,
    kafka_3_round_trip_with_every_codec => KAFKA_3,
}

/// Runs one producer with `config` against `release` until `n` records are reported.
fn produce(release: &Release, config: ProducerConfig, batch: Vec<(u64, ProducerRecord)>) -> Env {
    let mut env = env(release, config);
    let n = batch.len();
    for (op, r) in batch {
        env.send(op, r);
    }
    env.run_until_reported(n);
    env
}

#[test]
fn idempotence_asked_for_fails_naming_what_the_broker_lacks() {
    for release in [&KAFKA_0_8_0, &KAFKA_0_9, &KAFKA_0_10_2] {
        let config = producer_config(|c| c.enable_idempotence = Some(true));
        let env = produce(release, config, records(0, 6));
        for (op, outcome) in &env.outcomes {
            let e = outcome
                .as_ref()
                .expect_err("no record may be written")
                .to_string();
            assert!(
                e.contains("does not support idempotent producing")
                    && e.contains("InitProducerId")
                    && e.contains("0.11")
                    && e.contains(&format!("Kafka {}", release.version)),
                "{}: record {op}: {e}",
                release.name
            );
        }
        assert!(
            env.seen.borrow().is_empty(),
            "{}: nothing sent",
            release.name
        );
    }
}

#[test]
fn transactions_fail_at_init_naming_what_the_broker_lacks() {
    for release in [
        &KAFKA_0_8_0,
        &KAFKA_0_8_1,
        &KAFKA_0_8_2,
        &KAFKA_0_9,
        &KAFKA_0_10_0,
        &KAFKA_0_10_1,
        &KAFKA_0_10_2,
    ] {
        let config = producer_config(|c| c.transactional_id = Some("tx".into()));
        let mut env = env(release, config);
        let now = env.sim.now();
        env.sim.core().init_transactions(OpId(1), now);
        let result = RefCell::new(None);
        env.sim
            .run_until(|s| {
                for e in s.take_events() {
                    if let ProducerEvent::Transaction { op, result: r } = e {
                        assert_eq!(op, OpId(1));
                        *result.borrow_mut() = Some(r);
                    }
                }
                result.borrow().is_some()
            })
            .unwrap();
        let e = result
            .into_inner()
            .unwrap()
            .expect_err("no transactions before 0.11")
            .to_string();
        assert!(
            e.contains("does not support idempotent producing")
                && e.contains("0.11")
                && e.contains(&format!("Kafka {}", release.version)),
            "{}: {e}",
            release.name
        );
    }
}

#[test]
fn headers_and_zstd_fail_with_the_reason() {
    let with_headers = vec![
        (
            1,
            ProducerRecord::new(TOPIC)
                .partition(0)
                .value("v")
                .header("h", "x"),
        ),
        (2, ProducerRecord::new(TOPIC).partition(0).value("plain")),
    ];
    let env = produce(&KAFKA_0_10_0, producer_config(|_| {}), with_headers);
    let e = env.outcomes[&1]
        .as_ref()
        .expect_err("headers need 0.11")
        .to_string();
    assert!(e.contains("headers") && e.contains("magic 1"), "{e}");
    assert!(
        env.outcomes[&2].is_ok(),
        "the record without headers is written"
    );

    let config = producer_config(|c| c.compression_type = CompressionType::Zstd);
    let env = produce(&KAFKA_0_9, config, records(0, 4));
    for outcome in env.outcomes.values() {
        let e = outcome.as_ref().expect_err("zstd needs 2.1").to_string();
        assert!(
            e.contains("zstd") && e.contains("Kafka 2.1") && e.contains("Kafka 0.9.0"),
            "{e}"
        );
    }
    assert!(env.seen.borrow().is_empty(), "nothing sent");
}

/// lz4 came with 0.8.2: on 0.8.0 and 0.8.1 (the same Produce v0) the records fail naming the
/// release, before anything is sent, instead of reaching a broker that cannot read them.
#[test]
fn lz4_before_0_8_2_fails_naming_the_release() {
    for release in [&KAFKA_0_8_0, &KAFKA_0_8_1] {
        let config = producer_config(|c| c.compression_type = CompressionType::Lz4);
        let env = produce(release, config, records(0, 4));
        for outcome in env.outcomes.values() {
            let e = outcome.as_ref().expect_err("lz4 needs 0.8.2").to_string();
            assert!(
                e.contains("lz4")
                    && e.contains("0.8.2")
                    && e.contains(&format!("Kafka {}", release.name)),
                "{}: {e}",
                release.name
            );
        }
        assert!(
            env.seen.borrow().is_empty(),
            "{}: nothing sent",
            release.name
        );
    }
}

#[test]
fn batch_size_bounds_every_message_set() {
    for release in [&KAFKA_0_8_0, &KAFKA_0_9, &KAFKA_0_10_2] {
        let config = producer_config(|c| {
            c.batch_size = 1_000;
            c.linger_ms = 50;
        });
        let batch: Vec<(u64, ProducerRecord)> = (0..200)
            .map(|i| {
                let r = ProducerRecord::new(TOPIC)
                    .partition(0)
                    .key(Bytes::from(format!("k{i}")))
                    .value(Bytes::from(vec![b'v'; 40]))
                    .timestamp(WALL_START + i as i64);
                (i, r)
            })
            .collect();
        let env = produce(release, config, batch);
        assert!(env.outcomes.values().all(Result::is_ok));
        let seen = env.seen.borrow();
        assert!(seen.len() >= 8, "{}: {} sets", release.name, seen.len());
        for &(.., size) in seen.iter() {
            assert!(size <= 1_000, "{}: a set of {size} bytes", release.name);
        }
    }
}

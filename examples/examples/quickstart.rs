//! The tour: a million records through kafkit's producer and a group of three consumers on
//! tokio, with rates at the end.
//!
//! ```sh
//! cargo run --release --example quickstart                  # the README's main command
//! KAFKA_BOOTSTRAP=localhost:9092 cargo run --release --example quickstart
//! cargo test -p kafkit-examples --example quickstart        # what CI runs (20,000 records)
//! ```
//!
//! It starts kafkit's development broker (a 3-broker in-memory cluster on localhost) unless
//! `KAFKA_BOOTSTRAP` names a cluster, then:
//! 1. probes the cluster (version guess, metadata) and creates a topic of 6 partitions (an
//!    existing topic of that name is used as it is); a cluster without CreateTopics, or whose
//!    controller is not one of its brokers (librdkafka's mock cluster), gets the topic by
//!    automatic creation instead, or says at once that it cannot;
//! 2. produces one million keyed records of 100 B values, lz4-compressed, with kafkit's
//!    producer on tokio (acks=all and idempotence, the defaults), with a progress line on
//!    stderr;
//! 3. consumes them with a group of three kafkit consumers running concurrently (each
//!    subscribes to the topic with the same group id; the group coordinator splits the
//!    partitions between them), checking that every record of this run is read exactly once
//!    by counting the records read (not by comparing end offsets, which some brokers report
//!    short of what they serve);
//! 4. prints what happened and how fast: produce and consume rates, the partitions each
//!    consumer got, rebalances, the group's committed offsets and the total wall time.
//!
//! Against an existing cluster, the group (a new one per run) starts at the offsets the
//! partitions had before this run produced, so earlier runs' records are not read again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
// Creating the topic is a raw CreateTopics request through the low-level client, whose
// protocol types live in the core crate (`kafkit::core`).
use kafkit::core::network::Target;
use kafkit::core::protocol::create_topics::request::CreatableTopic;
use kafkit::core::protocol::metadata::request::MetadataRequestTopic;
use kafkit::core::protocol::{ApiKey, CreateTopicsRequest, ErrorCode, MetadataRequest};
use kafkit::prelude::*;
use kafkit_examples::{Cluster, Error};

const TOPIC: &str = "quickstart";
const PARTITIONS: i32 = 6;
/// How many records a run writes and reads: a million, fewer in the test below.
static RECORDS: AtomicU64 = AtomicU64::new(1_000_000);
const VALUE_BYTES: usize = 100;
const CONSUMERS: usize = 3;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("quickstart: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    let started = Instant::now();
    println!("kafkit quickstart\n");
    let cluster = cluster()?;
    let bootstrap = cluster.bootstrap().to_owned();
    let (client, creatable) = connect(&bootstrap).await?;
    match creatable {
        Ok(()) => create_topic(&client).await?,
        Err(why) => {
            println!("{why}: relying on automatic topic creation");
            auto_create_topic(&client, &why).await?;
        }
    }

    // A consumer outside the group's membership: offsets, and the group's starting point.
    let group = format!(
        "quickstart-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let admin = consumer(
        &ConsumerConfig::builder()
            .bootstrap_servers(bootstrap.as_str())
            .group_id(&group)
            .client_id("quickstart-admin")
            .build()?,
    )?;
    let partitions: Vec<TopicPartition> = admin
        .partitions_for_topic(TOPIC)
        .await?
        .ok_or("the topic does not exist")?
        .iter()
        .map(|p| TopicPartition::new(TOPIC, p.partition))
        .collect();
    let starts = admin.end_offsets(partitions.clone()).await?;

    println!();
    let produced = produce(&bootstrap).await?;
    let ends = admin.end_offsets(partitions.clone()).await?;
    let written: i64 = ends.iter().map(|(tp, end)| end - starts[tp]).sum();
    println!(
        "  end offsets moved by {written} over {} partitions",
        partitions.len()
    );
    if written != record_count() as i64 {
        // Not an error in itself: the records read are what is checked below.
        println!("  (the broker's end offsets moved by {written}, not {}; counting the records read instead)", record_count());
    }

    // The new group starts where this run's records start.
    let start_commit = starts
        .iter()
        .map(|(tp, offset)| (tp.clone(), OffsetAndMetadata::new(*offset)))
        .collect();
    admin.commit(Some(start_commit)).await?;

    println!();
    let consumed = consume(&bootstrap, &group, &starts, &ends).await?;

    // Every member committed its position when it closed (auto-commit) and left the group:
    // at (or, on a broker that reports end offsets short, past) the end seen after producing.
    let committed = admin.committed(partitions.clone()).await?;
    let at_end = committed
        .iter()
        .filter(|(tp, c)| c.as_ref().is_some_and(|c| c.offset >= ends[*tp]))
        .count();
    admin.close().await?;
    drop(cluster);

    report(&produced, &consumed, &ends, at_end, started.elapsed());
    if at_end != partitions.len() {
        return Err(format!(
            "only {at_end} of {} committed offsets are at the end",
            partitions.len()
        )
        .into());
    }
    Ok(())
}

fn record_count() -> u64 {
    RECORDS.load(Ordering::Relaxed)
}

/// The cluster in KAFKA_BOOTSTRAP, or a development broker of 3 brokers on free ports (kept
/// running while the returned guard lives).
fn cluster() -> Result<Cluster, Error> {
    // Like a real broker, the first rebalance of a new group waits a moment
    // (group.initial.rebalance.delay.ms; Kafka's default is 3000) for more members, so that
    // the three consumers start in one generation.
    kafkit_examples::cluster_with(|config| {
        config.cluster.group_initial_rebalance_delay_ms = 300;
    })
}

/// Connects and looks at the cluster; the second value says whether CreateTopics can work
/// (or why not).
async fn connect(bootstrap: &str) -> Result<(LowLevelHandle, Result<(), String>), Error> {
    let config = AdminConfig::builder()
        .bootstrap_servers(bootstrap)
        .build()
        .map_err(|e| format!("KAFKA_BOOTSTRAP: {e}"))?;
    let client = low_level_client(&config.common)?;
    let (node, version, table) = client.check_version().await?;
    println!(
        "node {node} looks like Kafka {version} ({} APIs)",
        table.iter().count()
    );
    let view = client.metadata(None).await?;
    println!(
        "{} brokers, controller {}, {} topics",
        view.brokers.len(),
        view.controller,
        view.topics.len()
    );
    let has_create = table
        .iter()
        .any(|(key, _, _)| key == ApiKey::CreateTopics.as_i16());
    let creatable = if !has_create {
        Err("the cluster does not offer CreateTopics".to_owned())
    } else if !view.brokers.contains_key(&view.controller) {
        Err(format!(
            "the cluster names controller {}, which is not one of its brokers",
            view.controller
        ))
    } else {
        Ok(())
    };
    Ok((client, creatable))
}

/// Asks for the topic's metadata with automatic creation allowed until it has a leader for
/// every partition (a few seconds at most), or fails saying what the cluster lacks.
async fn auto_create_topic(client: &LowLevelHandle, why: &str) -> Result<(), Error> {
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(TOPIC.into()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: true,
        ..Default::default()
    };
    for _ in 0..20 {
        let resp = client
            .send(Target::Any, request.clone(), None)
            .await
            .map_err(|e| format!("metadata for {TOPIC}: {e}"))?;
        if let Ok(m) = resp.body_as::<MetadataRequest>() {
            let ready = m
                .topics
                .iter()
                .find(|t| t.name.as_deref() == Some(TOPIC))
                .filter(|t| {
                    t.error().is_ok()
                        && !t.partitions.is_empty()
                        && t.partitions.iter().all(|p| p.leader_id >= 0)
                });
            if let Some(t) = ready {
                println!(
                    "topic {TOPIC} is there ({} partitions, the cluster's default)",
                    t.partitions.len()
                );
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(
        format!("{why}, and it did not create topic {TOPIC} automatically; create it yourself")
            .into(),
    )
}

async fn create_topic(client: &LowLevelHandle) -> Result<(), Error> {
    let create = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: TOPIC.into(),
            num_partitions: PARTITIONS,
            replication_factor: -1,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    // `request` answers with the request's own response type (here `CreateTopicsResponse`).
    let created = client
        .request(Target::Controller, create, None)
        .await
        .map_err(|e| format!("create topic: {e}"))?;
    for t in created.topics {
        let code = t.error();
        if code == ErrorCode::TOPIC_ALREADY_EXISTS {
            println!("topic {TOPIC} exists already; using it");
        } else if code.is_ok() {
            println!("created topic {TOPIC} ({PARTITIONS} partitions)");
        } else {
            return Err(format!("create topic {}: {code}", t.name).into());
        }
    }
    Ok(())
}

// ---- producing ----------------------------------------------------------------------------

/// What the producer did.
struct Produced {
    records: u64,
    /// Key and value bytes.
    bytes: u64,
    took: Duration,
    compression_ratio: f64,
    batch_bytes: f64,
}

/// Sends [`record_count()`] keyed records and waits until every one is acknowledged.
async fn produce(bootstrap: &str) -> Result<Produced, Error> {
    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap)
        .client_id("quickstart-producer")
        .compression_type(CompressionType::Lz4)
        .linger_ms(5)
        .batch_size(65536)
        .build()?;
    let producer = producer(&config)?;
    // Values are 100 B windows of a 64 KiB pool of text (so that lz4 has something to do,
    // but not everything repeats), shared without copying.
    let pool = text_pool(64 * 1024);
    let acked = Arc::new(AtomicU64::new(0));
    let failure: Arc<Mutex<Option<ProduceError>>> = Arc::default();
    let mut bytes = 0u64;
    let start = Instant::now();
    let progress = Progress::start("producing", acked.clone(), start);
    for i in 0..record_count() {
        let at = (i as usize * 997) % (pool.len() - VALUE_BYTES);
        let key = format!("key-{}", i % 100_000);
        bytes += (key.len() + VALUE_BYTES) as u64;
        let record = ProducerRecord::new(TOPIC)
            .key(key)
            .value(pool.slice(at..at + VALUE_BYTES));
        let (acked, failure) = (acked.clone(), failure.clone());
        producer
            .send_with_callback(record, move |result| match result {
                Ok(_) => {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    failure.lock().expect("lock").get_or_insert(e);
                }
            })
            .await?;
    }
    producer.flush(None).await?;
    let took = start.elapsed();
    progress.finish();
    if let Some(e) = failure.lock().expect("lock").take() {
        return Err(format!("a record was not delivered: {e}").into());
    }
    let metrics = producer.metrics().await?.to_map();
    producer.close(None).await?;
    let records = acked.load(Ordering::Relaxed);
    println!(
        "produced {} records ({:.1} MB of keys and values) in {took:.2?}",
        thousands(records),
        bytes as f64 / 1e6
    );
    Ok(Produced {
        records,
        bytes,
        took,
        compression_ratio: metrics.get("compression-rate-avg").copied().unwrap_or(1.0),
        batch_bytes: metrics.get("batch-size-avg").copied().unwrap_or(0.0),
    })
}

/// `len` bytes of lowercase words from a fixed-seed generator.
fn text_pool(len: usize) -> Bytes {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let word = 2 + (state % 8) as usize;
        for k in 0..word {
            out.push(b'a' + ((state >> (8 + 5 * k)) % 26) as u8);
        }
        out.push(b' ');
    }
    out.truncate(len);
    Bytes::from(out)
}

// ---- consuming ----------------------------------------------------------------------------

/// What one consumer did.
#[derive(Default)]
struct Member {
    records: u64,
    bytes: u64,
    /// The partitions it read records from.
    read_from: BTreeSet<i32>,
    /// Its assignment when the group was done.
    assignment: BTreeSet<i32>,
}

/// What the group did.
struct Consumed {
    members: Vec<Member>,
    /// Until the last record arrived.
    read: Duration,
    /// Until every consumer was closed.
    took: Duration,
    /// Until the first record arrived (joining the group, first fetches).
    first_record: Duration,
    generations: BTreeSet<i32>,
    duplicates: u64,
}

/// Which offsets of this run every partition has delivered (each record must come once).
struct Seen {
    starts: BTreeMap<i32, i64>,
    bits: BTreeMap<i32, Vec<u64>>,
    unique: u64,
    duplicates: u64,
    outside: u64,
}

impl Seen {
    /// `ends` only sizes the bitmaps up front: a partition that serves more records than its
    /// reported end offset says grows its bitmap as they come.
    fn new(starts: &BTreeMap<TopicPartition, i64>, ends: &BTreeMap<TopicPartition, i64>) -> Self {
        let mut bits = BTreeMap::new();
        for (tp, start) in starts {
            let n = (ends[tp] - start).max(0) as usize;
            bits.insert(tp.partition, vec![0u64; n.div_ceil(64)]);
        }
        Seen {
            starts: starts.iter().map(|(tp, s)| (tp.partition, *s)).collect(),
            bits,
            unique: 0,
            duplicates: 0,
            outside: 0,
        }
    }

    fn mark(&mut self, records: &ConsumerRecords) {
        for r in records.iter() {
            let start = self.starts.get(&r.partition).copied().unwrap_or(i64::MAX);
            let Some(bits) = self.bits.get_mut(&r.partition) else {
                self.outside += 1;
                continue;
            };
            let i = r.offset - start;
            if i < 0 {
                self.outside += 1;
                continue;
            }
            let need = i as usize / 64 + 1;
            if bits.len() < need {
                bits.resize(need, 0);
            }
            let (word, bit) = (i as usize / 64, 1u64 << (i % 64));
            if bits[word] & bit != 0 {
                self.duplicates += 1;
            } else {
                bits[word] |= bit;
                self.unique += 1;
            }
        }
    }
}

/// Counts rebalances (generations) and keeps each member's current assignment.
struct Listener {
    generations: Arc<Mutex<BTreeSet<i32>>>,
    assignment: Arc<Mutex<BTreeSet<i32>>>,
}

impl RebalanceListener for Listener {
    fn on_partitions_assigned(
        &mut self,
        _added: &BTreeSet<TopicPartition>,
        ctx: &mut RebalanceContext<'_>,
    ) {
        self.generations
            .lock()
            .expect("lock")
            .insert(ctx.group_metadata().generation_id);
        *self.assignment.lock().expect("lock") =
            ctx.assignment().iter().map(|tp| tp.partition).collect();
    }
}

/// When something first happened (shared between the consumers' tasks).
type Moment = Arc<Mutex<Option<Instant>>>;

/// Three consumers in one group read until every record of this run came in.
async fn consume(
    bootstrap: &str,
    group: &str,
    starts: &BTreeMap<TopicPartition, i64>,
    ends: &BTreeMap<TopicPartition, i64>,
) -> Result<Consumed, Error> {
    let seen = Arc::new(Mutex::new(Seen::new(starts, ends)));
    let unique = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let generations: Arc<Mutex<BTreeSet<i32>>> = Arc::default();
    let first_record: Moment = Arc::default();
    let last_record: Moment = Arc::default();
    let start = Instant::now();
    let progress = Progress::start("consuming", unique.clone(), start);
    let mut tasks = Vec::new();
    for n in 1..=CONSUMERS {
        let config = ConsumerConfig::builder()
            .bootstrap_servers(bootstrap)
            .group_id(group)
            .client_id(format!("quickstart-consumer-{n}"))
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .build()?;
        let consumer = consumer(&config)?;
        let assignment: Arc<Mutex<BTreeSet<i32>>> = Arc::default();
        let listener = Listener {
            generations: generations.clone(),
            assignment: assignment.clone(),
        };
        consumer.subscribe_with_listener([TOPIC], listener).await?;
        let (seen, unique, done) = (seen.clone(), unique.clone(), done.clone());
        let times = (first_record.clone(), last_record.clone());
        tasks.push(tokio::spawn(async move {
            let result = member(&consumer, &seen, &unique, &done, &times).await;
            // Closing commits the positions (auto-commit) and leaves the group.
            let closed = consumer.close().await;
            done.store(true, Ordering::Relaxed);
            let mut m = result?;
            closed?;
            m.assignment = assignment.lock().expect("lock").clone();
            Ok::<Member, Error>(m)
        }));
    }
    let mut members = Vec::new();
    for t in tasks {
        members.push(t.await??);
    }
    let took = start.elapsed();
    progress.finish();
    let seen = seen.lock().expect("lock");
    if seen.unique != record_count() || seen.outside > 0 {
        return Err(format!(
            "read {} of this run's {} records ({} duplicates, {} from outside this run)",
            seen.unique,
            record_count(),
            seen.duplicates,
            seen.outside
        )
        .into());
    }
    let since_start = |t: &Mutex<Option<Instant>>| {
        t.lock()
            .expect("lock")
            .map_or(Duration::ZERO, |t| t - start)
    };
    let (first_record, read) = (since_start(&first_record), since_start(&last_record));
    println!(
        "consumed {} records with {CONSUMERS} consumers in {read:.2?}; all closed (committed, left the group) after {took:.2?}",
        thousands(seen.unique)
    );
    let generations = generations.lock().expect("lock").clone();
    Ok(Consumed {
        members,
        read,
        took,
        first_record,
        generations,
        duplicates: seen.duplicates,
    })
}

/// One member's loop: poll, check, count, until the group has read everything.
async fn member(
    consumer: &ConsumerHandle,
    seen: &Mutex<Seen>,
    unique: &AtomicU64,
    done: &AtomicBool,
    (first, last): &(Moment, Moment),
) -> Result<Member, Error> {
    let mut m = Member::default();
    while !done.load(Ordering::Relaxed) {
        let records = consumer.poll(Duration::from_millis(100)).await?;
        if records.is_empty() {
            continue;
        }
        first.lock().expect("lock").get_or_insert_with(Instant::now);
        m.records += records.count() as u64;
        for tp in records.partitions() {
            m.read_from.insert(tp.partition);
        }
        m.bytes += records
            .iter()
            .map(|r| (r.serialized_key_size.max(0) + r.serialized_value_size.max(0)) as u64)
            .sum::<u64>();
        let mut seen = seen.lock().expect("lock");
        seen.mark(&records);
        unique.store(seen.unique, Ordering::Relaxed);
        if seen.unique == record_count() {
            *last.lock().expect("lock") = Some(Instant::now());
            done.store(true, Ordering::Relaxed);
        }
    }
    Ok(m)
}

// ---- output -------------------------------------------------------------------------------

fn report(
    p: &Produced,
    c: &Consumed,
    ends: &BTreeMap<TopicPartition, i64>,
    at_end: usize,
    total: Duration,
) {
    let mb = |bytes: u64, d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    let rate = |n: u64, d: Duration| thousands((n as f64 / d.as_secs_f64()) as u64);
    let consumed: u64 = c.members.iter().map(|m| m.records).sum();
    let consumed_bytes: u64 = c.members.iter().map(|m| m.bytes).sum();
    let rebalances = c.generations.last().copied().unwrap_or(0);
    println!();
    println!("what happened");
    println!(
        "  produce   {} records in {:.2?}: {} records/s, {:.1} MB/s of keys and values",
        thousands(p.records),
        p.took,
        rate(p.records, p.took),
        mb(p.bytes, p.took),
    );
    println!(
        "            lz4 batches of {} B on average, {:.0}% of their raw size; acks=all, idempotent",
        thousands(p.batch_bytes as u64),
        p.compression_ratio * 100.0,
    );
    println!(
        "  consume   {} records in {:.2?}: {} records/s, {:.1} MB/s, each exactly once ({} duplicates)",
        thousands(consumed),
        c.read,
        rate(consumed, c.read),
        mb(consumed_bytes, c.read),
        c.duplicates,
    );
    println!(
        "            first record {:.2?} after subscribing (joining the group), then {} records/s; closing (final commit, leaving the group) took {:.2?}",
        c.first_record,
        rate(consumed, c.read.saturating_sub(c.first_record)),
        c.took.saturating_sub(c.read),
    );
    println!(
        "  group     {CONSUMERS} consumers, {rebalances} rebalance{} (the new group's final generation), committed offsets at the end of {at_end} of {} partitions",
        if rebalances == 1 { "" } else { "s" },
        ends.len(),
    );
    for (n, m) in c.members.iter().enumerate() {
        println!(
            "  consumer {}  {:>9} records from partitions {:<8} (assignment at the end: {})",
            n + 1,
            thousands(m.records),
            list(&m.read_from),
            list(&m.assignment),
        );
    }
    println!("  total wall time {total:.2?}");
}

fn list(partitions: &BTreeSet<i32>) -> String {
    if partitions.is_empty() {
        return "-".into();
    }
    partitions
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A progress line on stderr: redrawn in place on a terminal, a few plain lines otherwise.
struct Progress {
    stop: Arc<AtomicBool>,
    task: std::thread::JoinHandle<()>,
}

impl Progress {
    fn start(what: &'static str, count: Arc<AtomicU64>, start: Instant) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = std::thread::spawn(move || {
            let tty = std::io::stderr().is_terminal();
            let mut next_line = 25;
            let mut last_printed = None;
            loop {
                let n = count.load(Ordering::Relaxed);
                let finished = n >= record_count() || stopped.load(Ordering::Relaxed);
                let pct = n * 100 / record_count();
                let secs = start.elapsed().as_secs_f64().max(1e-3);
                let line = format!(
                    "{what} {pct:>3}%  {:>9} / {}  {:>9} records/s",
                    thousands(n),
                    thousands(record_count()),
                    thousands((n as f64 / secs) as u64)
                );
                let mut err = std::io::stderr().lock();
                if tty {
                    let _ = write!(err, "\r{line}");
                    if finished {
                        let _ = writeln!(err);
                    }
                    let _ = err.flush();
                } else if pct >= next_line || (finished && last_printed != Some(n)) {
                    let _ = writeln!(err, "{line}");
                    next_line = (pct / 25 + 1) * 25;
                    last_printed = Some(n);
                }
                drop(err);
                if finished {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Progress { stop, task }
    }

    fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.join();
    }
}

/// The whole quickstart, with 20,000 records instead of a million (CI runs it unoptimized).
#[tokio::test(flavor = "multi_thread")]
async fn quickstart_with_fewer_records() {
    RECORDS.store(20_000, Ordering::Relaxed);
    run().await.unwrap();
}

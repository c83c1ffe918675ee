//! `isolation_level`: kafkit's consumer over transactions librdkafka's transactional producer
//! wrote (`transactional.id`, `init_transactions`, `begin_transaction`, then
//! `commit_transaction` or `abort_transaction`), interleaved with non-transactional records,
//! on two partitions. Runs through the tokio and blocking drivers.
//!
//! Expected: with `read_committed`, exactly the non-transactional and committed records, in
//! offset order per partition; with `read_uncommitted`, every data record; control records
//! (the transaction markers) never surface.
//!
//! What librdkafka's mock cluster can and cannot show (librdkafka 2.12,
//! `rdkafka_mock_handlers.c`): its EndTxn only checks the producer id and writes **no**
//! transaction markers, and its Fetch answers every isolation level with
//! `LastStableOffset = HighWatermark` and an **empty** aborted-transactions list. On the mock
//! an aborted transaction's records are therefore indistinguishable from committed ones, for any
//! client. So:
//! - `..._on_the_mock_or_a_real_cluster`: on the mock, kafkit must return what librdkafka's own
//!   consumer returns at the same isolation level (which, there, is every record, and the test
//!   says so); on a real cluster (`KAFKA_BOOTSTRAP`) the exact expectations above are checked
//!   (and rdkafka must agree too).
//! - `..._with_markers`: the exact record batches librdkafka wrote on the mock (its producer
//!   id, epoch, sequences, transactional flag, compression: fetched raw with kafkit's low-level
//!   client) are served by kafkit's development broker together with the COMMIT/ABORT markers
//!   and the aborted-transactions list a real broker would write (a Fetch hook; base offsets
//!   shifted to make room for the markers, which the batch CRC does not cover), and the exact
//!   expectations are checked through real sockets.

#[path = "../src/consumer_harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers as _, Message};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use harness::{
    consumer_config, headers_of, partitions, rdkafka_config, rdkafka_send, record, Cluster, Driver,
    Sent,
};
use kafkit_core::compression::Compression;
use kafkit_core::consumer::ConsumerRecord;
use kafkit_core::protocol::fetch::response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafkit_core::protocol::{ApiKey, FetchResponse, RequestBody, ResponseBody};
use kafkit_core::records::{BatchHeader, RecordBatchBuilder};
use kafkit_sim::HookAction;
use kafkit_tests::cluster::unique_topic;

const PARTS: i32 = 2;
const BASE_TS: i64 = 1_710_000_000_000;
const READ_WITHIN: Duration = Duration::from_secs(30);
const QUIET: Duration = Duration::from_millis(800);

/// What the producers wrote.
struct Written {
    /// Every data record with its offset (as the producing cluster numbered them).
    records: Vec<Sent>,
    /// Per record: committed (or not transactional at all).
    committed: Vec<bool>,
    /// Per transaction: (committed, the partition end offsets just after it ended).
    transactions: Vec<(bool, BTreeMap<i32, i64>)>,
}

fn end_offsets(consumer: &BaseConsumer, topic: &str) -> BTreeMap<i32, i64> {
    (0..PARTS)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(20))
                .expect("fetch_watermarks");
            (p, high)
        })
        .collect()
}

/// Eight transactions of 2..=9 records over both partitions (the 2nd, 5th and 8th aborted),
/// with non-transactional records written between transactions and while one is open.
fn write_transactions(cluster: &Cluster, topic: &str) -> Written {
    let bootstrap = cluster.bootstrap();
    let txn: FutureProducer = rdkafka_config(&bootstrap)
        .set("transactional.id", format!("{topic}-txn"))
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("transactional producer");
    let plain: FutureProducer = rdkafka_config(&bootstrap)
        .set("compression.type", "snappy")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let watermarks: BaseConsumer = rdkafka_config(&bootstrap)
        .set("group.id", format!("{topic}-watermarks"))
        .create()
        .expect("consumer");
    txn.init_transactions(Duration::from_secs(30))
        .expect("init_transactions");
    let mut written = Written {
        records: Vec::new(),
        committed: Vec::new(),
        transactions: Vec::new(),
    };
    let mut i = 0;
    let mut batch = |n: usize| -> Vec<Sent> {
        let v = (i..i + n).map(|j| record(j, PARTS, BASE_TS)).collect();
        i += n;
        v
    };
    for k in 0..8 {
        let mut before = batch(k % 3 + 1);
        rdkafka_send(&plain, topic, &mut before);
        written.committed.extend(before.iter().map(|_| true));
        written.records.extend(before);

        let commit = k % 3 != 1;
        txn.begin_transaction().expect("begin_transaction");
        let mut inside = batch(2 + k % 4);
        rdkafka_send(&txn, topic, &mut inside);
        if k == 3 {
            // A non-transactional write while the transaction is open.
            let mut during = batch(2);
            rdkafka_send(&plain, topic, &mut during);
            written.committed.extend(during.iter().map(|_| true));
            written.records.extend(during);
        }
        let mut more = batch(3 + k % 4);
        rdkafka_send(&txn, topic, &mut more);
        inside.extend(more);
        txn.flush(Duration::from_secs(30)).expect("flush");
        if commit {
            txn.commit_transaction(Duration::from_secs(30))
                .expect("commit_transaction");
        } else {
            txn.abort_transaction(Duration::from_secs(30))
                .expect("abort_transaction");
        }
        written.committed.extend(inside.iter().map(|_| commit));
        written.records.extend(inside);
        written
            .transactions
            .push((commit, end_offsets(&watermarks, topic)));
    }
    let mut last = batch(3);
    rdkafka_send(&plain, topic, &mut last);
    written.committed.extend(last.iter().map(|_| true));
    written.records.extend(last);
    written
}

/// The records of `w` that `read_committed` (or, with `all`, `read_uncommitted`) returns, in
/// offset order per partition.
fn expected(w: &Written, all: bool) -> BTreeMap<i32, Vec<Sent>> {
    let mut out: BTreeMap<i32, Vec<Sent>> = BTreeMap::new();
    for (r, &c) in w.records.iter().zip(&w.committed) {
        if all || c {
            out.entry(r.partition).or_default().push(r.clone());
        }
    }
    for v in out.values_mut() {
        v.sort_by_key(|s| s.offset);
    }
    out
}

/// A record as compared: offset, key, value, headers, timestamp.
type Seen = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
    i64,
);

fn seen_of_sent(s: &Sent) -> Seen {
    (
        s.offset,
        s.key.clone(),
        s.value.clone(),
        s.headers.clone(),
        s.timestamp,
    )
}

fn seen_of_kafkit(r: &ConsumerRecord) -> Seen {
    (
        r.offset,
        r.key.as_ref().map(|b| b.to_vec()),
        r.value.as_ref().map(|b| b.to_vec()),
        headers_of(r),
        r.timestamp,
    )
}

fn by_partition(records: &[ConsumerRecord]) -> BTreeMap<i32, Vec<Seen>> {
    let mut out: BTreeMap<i32, Vec<Seen>> = BTreeMap::new();
    for r in records {
        out.entry(r.partition).or_default().push(seen_of_kafkit(r));
    }
    out
}

fn want_seen(want: &BTreeMap<i32, Vec<Sent>>) -> BTreeMap<i32, Vec<Seen>> {
    want.iter()
        .map(|(p, v)| (*p, v.iter().map(seen_of_sent).collect()))
        .filter(|(_, v): &(i32, Vec<Seen>)| !v.is_empty())
        .collect()
}

/// Reads the whole topic with kafkit at `isolation`.
fn kafkit_read(
    driver: &Driver,
    bootstrap: &str,
    topic: &str,
    isolation: &str,
    count: usize,
    extra: &[(&str, &str)],
) -> Vec<ConsumerRecord> {
    let mut options = vec![("isolation_level", isolation)];
    options.extend_from_slice(extra);
    let consumer = driver.start(&consumer_config(bootstrap, &options));
    consumer.assign(partitions(topic, PARTS)).expect("assign");
    let got = consumer.read_exactly(count, READ_WITHIN, QUIET);
    consumer.close().expect("close");
    got
}

/// Reads the whole topic with librdkafka's consumer at `isolation` (until nothing more comes).
fn rdkafka_read(bootstrap: &str, topic: &str, isolation: &str) -> BTreeMap<i32, Vec<Seen>> {
    let consumer: BaseConsumer = rdkafka_config(bootstrap)
        .set("group.id", format!("{topic}-{isolation}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("rdkafka consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out: BTreeMap<i32, Vec<Seen>> = BTreeMap::new();
    let mut idle = 0;
    let deadline = std::time::Instant::now() + READ_WITHIN;
    while idle < 15 && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                idle = 0;
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.entry(m.partition()).or_default().push((
                    m.offset(),
                    m.key().map(<[u8]>::to_vec),
                    m.payload().map(<[u8]>::to_vec),
                    headers,
                    m.timestamp().to_millis().unwrap_or(-1),
                ));
            }
            Some(Err(e)) => panic!("rdkafka consumer on {topic}: {e}"),
            None => idle += 1,
        }
    }
    out
}

fn on_the_mock_or_a_real_cluster(driver: &Driver) {
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(driver.name(), "transactions");
    cluster.create_topic(&topic, PARTS);
    let w = write_transactions(&cluster, &topic);
    let committed = want_seen(&expected(&w, false));
    let all = want_seen(&expected(&w, true));
    let aborted = w.committed.iter().filter(|c| !**c).count();
    assert!(aborted > 0 && aborted < w.records.len());

    let theirs_committed = rdkafka_read(&bootstrap, &topic, "read_committed");
    let theirs_all = rdkafka_read(&bootstrap, &topic, "read_uncommitted");
    let (want_committed, what) = if cluster.is_mock() {
        // The mock cannot tell aborted records apart (see the module docs): every client reads
        // all of them, and librdkafka's consumer does.
        assert_eq!(
            theirs_committed, all,
            "mock: librdkafka's read_committed consumer now filters aborted records; \
             make this test expect exactly the committed ones"
        );
        (&all, "mock (no markers: every record)")
    } else {
        assert_eq!(theirs_committed, committed, "rdkafka read_committed");
        (&committed, "committed records")
    };
    assert_eq!(&theirs_all, &all, "rdkafka read_uncommitted");

    let count = |m: &BTreeMap<i32, Vec<Seen>>| m.values().map(Vec::len).sum::<usize>();
    let ours = kafkit_read(
        driver,
        &bootstrap,
        &topic,
        "read_committed",
        count(want_committed),
        &[],
    );
    assert_eq!(
        &by_partition(&ours),
        want_committed,
        "{} {}: kafkit read_committed vs {what}",
        driver.name(),
        cluster.kind()
    );
    let ours = kafkit_read(
        driver,
        &bootstrap,
        &topic,
        "read_uncommitted",
        count(&all),
        &[],
    );
    assert_eq!(
        by_partition(&ours),
        all,
        "{} {}: kafkit read_uncommitted",
        driver.name(),
        cluster.kind()
    );
}

// ---- librdkafka's batches with the markers a real broker writes ----

/// One partition's log as a real broker would hold it.
struct MarkedLog {
    /// The batches in offset order, base offsets rewritten.
    batches: Vec<(i64, Bytes)>,
    aborted: Vec<AbortedTransaction>,
    end: i64,
}

impl MarkedLog {
    /// The batches holding offsets at or after `from`.
    fn from(&self, from: i64) -> Bytes {
        let mut out = BytesMut::new();
        for (last, b) in &self.batches {
            if *last >= from {
                out.extend_from_slice(b);
            }
        }
        out.freeze()
    }
}

/// A COMMIT or ABORT marker batch of `producer` at `offset`.
fn marker(offset: i64, producer_id: i64, epoch: i16, commit: bool) -> Bytes {
    let key = [0u8, 0, 0, u8::from(commit)];
    let value = [0u8, 0, 0, 0, 0, 7];
    let mut b = RecordBatchBuilder::new(Compression::None)
        .base_offset(offset)
        .producer(producer_id, epoch, -1)
        .transactional(true)
        .control(true);
    b.append(BASE_TS, Some(&key), Some(&value), &[])
        .expect("marker");
    b.finish().expect("marker batch")
}

/// Rebuilds partition `p`'s log with a marker after each transaction; returns it with the
/// records' new offsets (old offset -> new).
fn with_markers(w: &Written, batches: Vec<Bytes>, p: i32) -> (MarkedLog, BTreeMap<i64, i64>) {
    // Which transaction each old offset belongs to, and where each transaction ended.
    let mut shift = 0;
    let mut log = MarkedLog {
        batches: Vec::new(),
        aborted: Vec::new(),
        end: 0,
    };
    let mut renumber = BTreeMap::new();
    let mut open: Option<(i64, i16, i64)> = None; // producer, epoch, new first offset
    let mut ends = w.transactions.iter().map(|(c, e)| (e[&p], *c)).peekable();
    for raw in batches {
        let h = BatchHeader::parse(&raw).expect("header");
        // Markers for every transaction that ended at or before this batch.
        while let Some(&(end, commit)) = ends.peek() {
            if end > h.base_offset {
                break;
            }
            ends.next();
            if let Some((pid, epoch, first)) = open.take() {
                let at = end + shift;
                log.batches.push((at, marker(at, pid, epoch, commit)));
                if !commit {
                    log.aborted.push(AbortedTransaction {
                        producer_id: pid,
                        first_offset: first,
                        ..Default::default()
                    });
                }
                shift += 1;
            }
        }
        let base = h.base_offset + shift;
        let mut b = BytesMut::from(&raw[..]);
        b[..8].copy_from_slice(&base.to_be_bytes());
        for d in 0..=i64::from(h.last_offset_delta) {
            renumber.insert(h.base_offset + d, base + d);
        }
        if h.attributes.is_transactional() && open.is_none() {
            open = Some((h.producer_id, h.producer_epoch, base));
        }
        log.batches
            .push((base + i64::from(h.last_offset_delta), b.freeze()));
        log.end = base + i64::from(h.last_offset_delta) + 1;
    }
    for (end, commit) in ends {
        if let Some((pid, epoch, first)) = open.take() {
            let at = end + shift;
            log.batches.push((at, marker(at, pid, epoch, commit)));
            if !commit {
                log.aborted.push(AbortedTransaction {
                    producer_id: pid,
                    first_offset: first,
                    ..Default::default()
                });
            }
            shift += 1;
            log.end = at + 1;
        }
    }
    (log, renumber)
}

fn with_markers_on_the_dev_broker(driver: &Driver) {
    // librdkafka writes the transactions on the mock.
    let mock = match Cluster::new() {
        Cluster::External(_) => {
            Cluster::Mock(rdkafka::mocking::MockCluster::new(3).expect("librdkafka's mock cluster"))
        }
        c => c,
    };
    let topic = unique_topic(driver.name(), "marked-transactions");
    mock.create_topic(&topic, PARTS);
    let w = write_transactions(&mock, &topic);
    let watermarks: BaseConsumer = rdkafka_config(&mock.bootstrap())
        .set("group.id", format!("{topic}-wm"))
        .create()
        .expect("consumer");
    let ends = end_offsets(&watermarks, &topic);

    // The same batches, with markers, per partition; the records renumbered.
    let mut logs = BTreeMap::new();
    let mut renumbered = w.records.clone();
    for p in 0..PARTS {
        let batches = harness::raw_batches(&mock.bootstrap(), &topic, p, ends[&p]);
        let (log, renumber) = with_markers(&w, batches, p);
        for r in renumbered.iter_mut().filter(|r| r.partition == p) {
            r.offset = renumber[&r.offset];
        }
        logs.insert(p, log);
    }
    let aborted_count: usize = logs.values().map(|l| l.aborted.len()).sum();
    assert!(
        aborted_count > 0,
        "some partition has an aborted transaction"
    );
    let renumbered_written = Written {
        records: renumbered,
        committed: w.committed.clone(),
        transactions: Vec::new(),
    };

    // The development broker serves them: its own log holds as many filler records (so that
    // ListOffsets and long polls at the end behave), its Fetch answers come from `logs`.
    let dev = Cluster::dev();
    dev.create_topic(&topic, PARTS);
    let filler = harness::rdkafka_producer(&dev.bootstrap(), "none");
    for p in 0..PARTS {
        let mut records: Vec<Sent> = (0..logs[&p].end as usize)
            .map(|i| {
                let mut r = record(i, 1, BASE_TS);
                r.partition = p;
                r
            })
            .collect();
        rdkafka_send(&filler, &topic, &mut records);
    }
    let Cluster::Dev(broker) = &dev else {
        unreachable!()
    };
    let served = Arc::new(Mutex::new(0u64));
    let logs = Arc::new(logs);
    {
        let topic = topic.clone();
        let served = served.clone();
        let logs = logs.clone();
        broker
            .with_cluster(move |c| {
                c.set_hook(
                    ApiKey::Fetch,
                    Box::new(move |_, body| fetch_hook(&topic, &logs, &served, body)),
                );
            })
            .expect("cluster thread");
    }
    let count = |all: bool| {
        expected(&renumbered_written, all)
            .values()
            .map(Vec::len)
            .sum()
    };
    let no_sessions = [("enable_incremental_fetch_sessions", "false")];
    let ours = kafkit_read(
        driver,
        &dev.bootstrap(),
        &topic,
        "read_committed",
        count(false),
        &no_sessions,
    );
    assert_eq!(
        by_partition(&ours),
        want_seen(&expected(&renumbered_written, false)),
        "{}: read_committed over markers",
        driver.name()
    );
    let ours = kafkit_read(
        driver,
        &dev.bootstrap(),
        &topic,
        "read_uncommitted",
        count(true),
        &no_sessions,
    );
    assert_eq!(
        by_partition(&ours),
        want_seen(&expected(&renumbered_written, true)),
        "{}: read_uncommitted over markers",
        driver.name()
    );
    assert!(*served.lock().expect("lock") > 0, "the hook served fetches");
}

/// Answers a Fetch below the end of the marked logs from them (every partition asked must be
/// below its end; otherwise the broker's own, equally long, log answers).
fn fetch_hook(
    topic: &str,
    logs: &BTreeMap<i32, MarkedLog>,
    served: &Mutex<u64>,
    body: &RequestBody,
) -> HookAction {
    let RequestBody::Fetch(f) = body else {
        return HookAction::Pass;
    };
    let mut partitions = Vec::new();
    for t in &f.topics {
        if t.topic != topic {
            return HookAction::Pass;
        }
        for fp in &t.partitions {
            let Some(log) = logs.get(&fp.partition) else {
                return HookAction::Pass;
            };
            if fp.fetch_offset >= log.end {
                return HookAction::Pass;
            }
            partitions.push(PartitionData {
                partition_index: fp.partition,
                error_code: 0,
                high_watermark: log.end,
                last_stable_offset: log.end,
                log_start_offset: 0,
                aborted_transactions: (f.isolation_level == 1).then(|| {
                    log.aborted
                        .iter()
                        .filter(|a| a.first_offset < log.end)
                        .cloned()
                        .collect()
                }),
                preferred_read_replica: -1,
                records: Some(log.from(fp.fetch_offset)),
                ..Default::default()
            });
        }
    }
    if partitions.is_empty() {
        return HookAction::Pass;
    }
    *served.lock().expect("lock") += 1;
    HookAction::Respond(ResponseBody::Fetch(FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: topic.to_owned(),
            partitions,
            ..Default::default()
        }],
        ..Default::default()
    }))
}

macro_rules! transaction_tests {
    ($module:ident, $driver:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn isolation_levels_on_the_mock_or_a_real_cluster() {
                super::on_the_mock_or_a_real_cluster(&$driver);
            }

            #[test]
            fn isolation_levels_with_markers() {
                super::with_markers_on_the_dev_broker(&$driver);
            }
        }
    };
}

transaction_tests!(with_tokio, Driver::tokio());
transaction_tests!(with_blocking, Driver::blocking());

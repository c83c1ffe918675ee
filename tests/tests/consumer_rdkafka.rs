//! kafkit's consumer reads what librdkafka's producer wrote, on a broker nobody here wrote:
//! librdkafka's mock cluster (or the cluster `KAFKA_BOOTSTRAP` names).
//!
//! Every test runs through the tokio, smol and blocking drivers:
//! - every codec (none, gzip, snappy, lz4, zstd), keys and null keys, empty and null values,
//!   headers (null values, repeated names, none) and explicit timestamps: kafkit reads every
//!   record byte for byte, at the partition and offset librdkafka reported, in offset order,
//!   nothing more;
//! - `offsets_for_times` agrees with rdkafka's `offsets_for_times` for timestamps before the
//!   first record, equal to one, between two and after the last;
//! - `beginning_offsets`/`end_offsets` agree with rdkafka's `fetch_watermarks` (empty and
//!   filled partitions; after DeleteRecords where the broker has it);
//! - `seek` (into the middle of a compressed batch), `seek_to_beginning`, `seek_to_end`,
//!   `pause` and `resume` deliver exactly the records they should.
//!
//! Limits of the mock cluster, and how the tests make up for them:
//! - its ListOffsets answers every timestamp lookup with offset -1 ("FIXME: by timestamp" in
//!   `rdkafka_mock_handlers.c`), so on the mock the comparison can only show that both clients
//!   report "no such offset". The same comparison therefore also runs against kafkit's
//!   development broker (`*_on_the_dev_broker`), where the offsets are checked against the
//!   records' timestamps as well; on an external cluster both checks apply.
//! - it has no DeleteRecords, so its low watermarks stay at 0; the watermark test moves the
//!   log start on the development broker and on an external cluster.
//!
//! Set `CONSUMER_RDKAFKA_DEBUG=protocol,fetch` (any librdkafka `debug` value) for librdkafka's
//! log on stderr.

#[path = "../src/consumer_harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use harness::{
    check_records, consumer_config, partitions, raw_batches, rdkafka_config, rdkafka_producer,
    rdkafka_send, record, Cluster, Driver, Sent,
};
use kafkit_core::consumer::{ConsumerRecord, TopicPartition};
use kafkit_core::records::BatchHeader;
use kafkit_tests::cluster::unique_topic;

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const READ_WITHIN: Duration = Duration::from_secs(30);
/// How long a test waits to see that no further record comes.
const QUIET: Duration = Duration::from_millis(700);
/// Timestamps of the records: `BASE_TS + 10 * i`.
const BASE_TS: i64 = 1_700_000_000_000;

fn rdkafka_consumer(bootstrap: &str) -> BaseConsumer {
    rdkafka_config(bootstrap)
        .set("group.id", "kafkit-consumer-rdkafka-oracle")
        .set("enable.auto.commit", "false")
        .create()
        .expect("rdkafka consumer")
}

/// Sends records `range` (of [`record`]) with one rdkafka producer per codec in turn.
fn produce(cluster: &Cluster, topic: &str, parts: i32, per_codec: usize) -> Vec<Sent> {
    let mut sent = Vec::new();
    for (c, codec) in CODECS.iter().enumerate() {
        let producer = rdkafka_producer(&cluster.bootstrap(), codec);
        let mut records: Vec<Sent> = (c * per_codec..(c + 1) * per_codec)
            .map(|i| record(i, parts, BASE_TS))
            .collect();
        rdkafka_send(&producer, topic, &mut records);
        sent.extend(records);
    }
    sent
}

/// 5 codecs × 150 records into 3 partitions; kafkit reads them all from the beginning.
fn every_codec_reads_byte_for_byte(driver: &Driver) {
    let cluster = Cluster::new();
    let topic = unique_topic(driver.name(), "consume-codecs");
    cluster.create_topic(&topic, 3);
    let sent = produce(&cluster, &topic, 3, 150);

    // The log really holds batches of every codec (and of several records each).
    let mut codecs = BTreeSet::new();
    let mut multi = 0;
    for p in 0..3 {
        let end = sent
            .iter()
            .filter(|s| s.partition == p)
            .map(|s| s.offset + 1)
            .max()
            .unwrap_or(0);
        for b in raw_batches(&cluster.bootstrap(), &topic, p, end) {
            let h = BatchHeader::parse(&b).expect("batch header");
            codecs.insert(format!("{:?}", h.attributes.compression()));
            multi += usize::from(h.record_count > 1);
        }
    }
    assert_eq!(codecs.len(), CODECS.len(), "codecs in the log: {codecs:?}");
    assert!(multi > 0, "no batch of several records");

    let consumer = driver.start(&consumer_config(&cluster.bootstrap(), &[]));
    consumer.assign(partitions(&topic, 3)).expect("assign");
    let got = consumer.read_exactly(sent.len(), READ_WITHIN, QUIET);
    check_records(
        &format!("{} {}", driver.name(), cluster.kind()),
        &topic,
        &sent,
        &got,
    );
    for tp in partitions(&topic, 3) {
        let end = sent
            .iter()
            .filter(|s| s.partition == tp.partition)
            .map(|s| s.offset + 1)
            .max()
            .unwrap_or(0);
        assert_eq!(
            consumer.position(tp.clone()).expect("position"),
            end,
            "{tp}"
        );
    }
    // Small polls return the same records in the same order (max_poll_records).
    let small = driver.start(&consumer_config(
        &cluster.bootstrap(),
        &[
            ("max_poll_records", "7"),
            ("max_partition_fetch_bytes", "3000"),
        ],
    ));
    small.assign(partitions(&topic, 3)).expect("assign");
    let mut again = Vec::new();
    while again.len() < sent.len() {
        let batch = small.poll(READ_WITHIN).expect("poll");
        assert!(!batch.is_empty(), "{}: a poll timed out", driver.name());
        assert!(batch.count() <= 7, "max_poll_records: {}", batch.count());
        again.extend(batch);
    }
    assert_eq!(got.len(), again.len());
    let key = |r: &ConsumerRecord| (r.partition, r.offset);
    let mut a: Vec<_> = got.iter().map(key).collect();
    let mut b: Vec<_> = again.iter().map(key).collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
    check_records(
        &format!("{} {} small polls", driver.name(), cluster.kind()),
        &topic,
        &sent,
        &again,
    );
    consumer.close().expect("close");
    small.close().expect("close");
}

/// rdkafka's `offsets_for_times` for `ts` on every partition: `None` for "no such offset".
fn rdkafka_offsets_for_times(
    consumer: &BaseConsumer,
    topic: &str,
    parts: i32,
    ts: i64,
) -> BTreeMap<i32, Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition_offset(topic, p, Offset::Offset(ts))
            .expect("add partition");
    }
    let result = consumer
        .offsets_for_times(tpl, Duration::from_secs(20))
        .expect("rdkafka offsets_for_times");
    result
        .elements()
        .iter()
        .map(|e| {
            e.error()
                .unwrap_or_else(|err| panic!("rdkafka offsets_for_times({ts}): {err}"));
            let offset = match e.offset() {
                Offset::Offset(o) => Some(o),
                Offset::End => None,
                other => panic!("rdkafka offsets_for_times({ts}): {other:?}"),
            };
            (e.partition(), offset)
        })
        .collect()
}

/// Two partitions of 60 records (timestamps `BASE_TS + 10 * i`, spread over both); lookups
/// before the first, at, between and after the records' timestamps.
fn offsets_for_times_agree(driver: &Driver, cluster: Cluster) {
    let topic = unique_topic(driver.name(), "offsets-for-times");
    cluster.create_topic(&topic, 2);
    let producer = rdkafka_producer(&cluster.bootstrap(), "lz4");
    let mut sent: Vec<Sent> = (0..120).map(|i| record(i, 2, BASE_TS)).collect();
    rdkafka_send(&producer, &topic, &mut sent);
    let last = sent.iter().map(|s| s.timestamp).max().expect("records");
    let queries = [
        BASE_TS - 1_000_000, // before the first
        BASE_TS,             // the first, exactly
        BASE_TS + 10 * 33,   // a record's own
        BASE_TS + 10 * 57 + 5,
        BASE_TS + 10 * 58 - 1, // between two
        last,                  // the last record's
        last - 3,
        last + 1, // after the last
        last + 1_000_000,
    ];
    let consumer = driver.start(&consumer_config(&cluster.bootstrap(), &[]));
    let oracle = rdkafka_consumer(&cluster.bootstrap());
    for ts in queries {
        let query: BTreeMap<TopicPartition, i64> = partitions(&topic, 2)
            .into_iter()
            .map(|tp| (tp, ts))
            .collect();
        let ours: BTreeMap<i32, Option<i64>> = consumer
            .offsets_for_times(query)
            .unwrap_or_else(|e| panic!("{}: offsets_for_times({ts}): {e}", driver.name()))
            .into_iter()
            .map(|(tp, o)| (tp.partition, o.map(|o| o.offset)))
            .collect();
        let theirs = rdkafka_offsets_for_times(&oracle, &topic, 2, ts);
        assert_eq!(
            ours,
            theirs,
            "{} {}: offsets_for_times({ts}): kafkit vs rdkafka",
            driver.name(),
            cluster.kind()
        );
        if cluster.is_mock() {
            // The mock answers every lookup by timestamp with -1 (see the module docs).
            assert!(ours.values().all(Option::is_none), "mock: {ours:?}");
            continue;
        }
        // The earliest offset whose timestamp is at or after `ts`.
        for (p, got) in &ours {
            let want = sent
                .iter()
                .filter(|s| s.partition == *p && s.timestamp >= ts)
                .map(|s| s.offset)
                .min();
            assert_eq!(
                *got,
                want,
                "{} {}: partition {p}, timestamp {ts}",
                driver.name(),
                cluster.kind()
            );
        }
    }
    // The timestamps reported with the offsets are the records' own.
    if !cluster.is_mock() {
        let query = BTreeMap::from([(TopicPartition::new(&*topic, 1), BASE_TS + 10 * 33)]);
        let r = consumer
            .offsets_for_times(query)
            .expect("offsets_for_times");
        let o = r.values().next().copied().flatten().expect("an offset");
        let s = sent
            .iter()
            .find(|s| s.partition == 1 && s.offset == o.offset)
            .expect("a sent record");
        assert_eq!(o.timestamp, s.timestamp);
    }
    consumer.close().expect("close");
}

/// Watermarks of an empty partition, filled ones, and (where DeleteRecords exists) one whose
/// log start moved.
fn watermarks_agree(driver: &Driver, cluster: Cluster) {
    let topic = unique_topic(driver.name(), "watermarks");
    cluster.create_topic(&topic, 3);
    let producer = rdkafka_producer(&cluster.bootstrap(), "snappy");
    // Partition 0 stays empty; 1 and 2 get 40 records each.
    let mut sent: Vec<Sent> = (0..80)
        .map(|i| {
            let mut r = record(i, 2, BASE_TS);
            r.partition += 1;
            r
        })
        .collect();
    rdkafka_send(&producer, &topic, &mut sent);
    let deleted = cluster.delete_records(&topic, 2, 25);
    let consumer = driver.start(&consumer_config(&cluster.bootstrap(), &[]));
    let oracle = rdkafka_consumer(&cluster.bootstrap());
    let tps = partitions(&topic, 3);
    let begin = consumer
        .beginning_offsets(tps.clone())
        .expect("beginning_offsets");
    let end = consumer.end_offsets(tps.clone()).expect("end_offsets");
    for tp in &tps {
        let (low, high) = oracle
            .fetch_watermarks(&topic, tp.partition, Duration::from_secs(20))
            .expect("rdkafka fetch_watermarks");
        let what = format!("{} {} {tp}", driver.name(), cluster.kind());
        assert_eq!(begin[tp], low, "{what}: beginning offset vs low watermark");
        assert_eq!(end[tp], high, "{what}: end offset vs high watermark");
        let count = sent.iter().filter(|s| s.partition == tp.partition).count() as i64;
        assert_eq!(high, count, "{what}: high watermark");
        let start = if tp.partition == 2 && deleted { 25 } else { 0 };
        assert_eq!(low, start, "{what}: low watermark");
    }
    // Reading from the beginning of partition 2 starts at its log start.
    consumer.assign(vec![tps[2].clone()]).expect("assign");
    let got = consumer.read_exactly(40 - begin[&tps[2]] as usize, READ_WITHIN, QUIET);
    assert_eq!(got[0].offset, begin[&tps[2]]);
    let want: Vec<Sent> = sent
        .iter()
        .filter(|s| s.partition == 2 && s.offset >= begin[&tps[2]])
        .cloned()
        .collect();
    check_records(
        &format!("{} watermarks", driver.name()),
        &topic,
        &want,
        &got,
    );
    consumer.close().expect("close");
}

/// Records of `sent` on partition `p` at offsets `from..`.
fn tail(sent: &[Sent], p: i32, from: i64) -> Vec<Sent> {
    sent.iter()
        .filter(|s| s.partition == p && s.offset >= from)
        .cloned()
        .collect()
}

/// seek into a compressed batch, seek_to_beginning, seek_to_end, pause and resume.
fn seek_pause_and_resume_behave(driver: &Driver) {
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(driver.name(), "seek-pause");
    cluster.create_topic(&topic, 2);
    let producer = rdkafka_producer(&bootstrap, "lz4");
    let mut sent: Vec<Sent> = (0..200).map(|i| record(i, 2, BASE_TS)).collect();
    rdkafka_send(&producer, &topic, &mut sent);
    let (p0, p1) = (
        TopicPartition::new(&*topic, 0),
        TopicPartition::new(&*topic, 1),
    );
    let what = |s: &str| format!("{} {}: {s}", driver.name(), cluster.kind());

    let consumer = driver.start(&consumer_config(&bootstrap, &[]));
    consumer
        .assign(vec![p0.clone(), p1.clone()])
        .expect("assign");
    let got = consumer.read_exactly(200, READ_WITHIN, QUIET);
    check_records(&what("everything"), &topic, &sent, &got);

    // seek into the middle of a compressed batch: exactly the rest of partition 0.
    consumer.seek(p0.clone(), 37).expect("seek");
    assert_eq!(consumer.position(p0.clone()).expect("position"), 37);
    let got = consumer.read_exactly(63, READ_WITHIN, QUIET);
    check_records(&what("after seek(37)"), &topic, &tail(&sent, 0, 37), &got);

    // seek_to_beginning of partition 1: all of it again, and nothing of partition 0.
    consumer
        .seek_to_beginning(vec![p1.clone()])
        .expect("seek_to_beginning");
    let got = consumer.read_exactly(100, READ_WITHIN, QUIET);
    check_records(
        &what("after seek_to_beginning"),
        &topic,
        &tail(&sent, 1, 0),
        &got,
    );

    // seek backwards then to the end: nothing, until new records come.
    consumer.seek(p0.clone(), 3).expect("seek");
    consumer
        .seek_to_end(vec![p0.clone(), p1.clone()])
        .expect("seek_to_end");
    assert_eq!(consumer.position(p0.clone()).expect("position"), 100);
    assert_eq!(consumer.position(p1.clone()).expect("position"), 100);
    assert!(
        consumer.poll(QUIET).expect("poll").is_empty(),
        "{}",
        what("after seek_to_end")
    );
    let mut more: Vec<Sent> = (200..210).map(|i| record(i, 2, BASE_TS)).collect();
    rdkafka_send(&producer, &topic, &mut more);
    let got = consumer.read_exactly(10, READ_WITHIN, QUIET);
    check_records(&what("new after seek_to_end"), &topic, &more, &got);
    let mut all = sent.clone();
    all.extend(more);

    // pause partition 0: only partition 1's new records come; resume: partition 0's, in order.
    consumer.pause(vec![p0.clone()]).expect("pause");
    assert_eq!(
        consumer
            .paused()
            .expect("paused")
            .into_iter()
            .collect::<Vec<_>>(),
        vec![p0.clone()]
    );
    let mut more: Vec<Sent> = (210..240).map(|i| record(i, 2, BASE_TS)).collect();
    rdkafka_send(&producer, &topic, &mut more);
    let got = consumer.read_exactly(15, READ_WITHIN, Duration::from_secs(1));
    check_records(&what("while paused"), &topic, &tail(&more, 1, 0), &got);
    assert_eq!(consumer.position(p0.clone()).expect("position"), 105);
    consumer.resume(vec![p0.clone()]).expect("resume");
    assert!(consumer.paused().expect("paused").is_empty());
    let got = consumer.read_exactly(15, READ_WITHIN, QUIET);
    check_records(&what("after resume"), &topic, &tail(&more, 0, 0), &got);
    all.extend(more);

    // Pausing with records already buffered: they are not returned while paused.
    consumer.seek(p1.clone(), 0).expect("seek");
    let first = consumer.poll(READ_WITHIN).expect("poll");
    assert!(!first.is_empty());
    consumer.pause(vec![p1.clone()]).expect("pause");
    assert!(
        consumer.poll(QUIET).expect("poll").is_empty(),
        "{}",
        what("a paused partition returned buffered records")
    );
    let resume_at = consumer.position(p1.clone()).expect("position");
    consumer.resume(vec![p1.clone()]).expect("resume");
    let want = tail(&all, 1, resume_at);
    let got = consumer.read_exactly(want.len(), READ_WITHIN, QUIET);
    check_records(
        &what("after pausing with records buffered"),
        &topic,
        &want,
        &got,
    );
    consumer.close().expect("close");
}

macro_rules! consumer_tests {
    ($module:ident, $driver:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn every_codec_reads_byte_for_byte() {
                super::every_codec_reads_byte_for_byte(&$driver);
            }

            #[test]
            fn offsets_for_times_agree_with_rdkafka() {
                super::offsets_for_times_agree(&$driver, Cluster::new());
            }

            #[test]
            fn offsets_for_times_agree_with_rdkafka_on_the_dev_broker() {
                super::offsets_for_times_agree(&$driver, Cluster::dev());
            }

            #[test]
            fn watermarks_agree_with_rdkafka() {
                super::watermarks_agree(&$driver, Cluster::new());
            }

            #[test]
            fn watermarks_agree_with_rdkafka_on_the_dev_broker() {
                super::watermarks_agree(&$driver, Cluster::dev());
            }

            #[test]
            fn seek_pause_and_resume_behave() {
                super::seek_pause_and_resume_behave(&$driver);
            }
        }
    };
}

consumer_tests!(with_tokio, Driver::tokio());
consumer_tests!(with_smol, Driver::smol());
consumer_tests!(with_blocking, Driver::blocking());

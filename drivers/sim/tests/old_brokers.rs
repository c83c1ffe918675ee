//! The compatibility matrix: the simulated cluster as every release profile from 0.8.0 to
//! 4.0 ([`ClusterConfig::release`]), and what a kafkit client does on each — the probe names
//! the release, metadata, consuming what the log holds, committing and fetching offsets,
//! joining a group, and offsets by time; or, where the release lacks the feature, the clear
//! error naming the broker's version. The README's compatibility table is this file.
//!
//! The log is seeded with Produce requests on connections of the test's own, in the format
//! the release's newest Produce version carries (magic 0 for v0-1, magic 1 for v2, record
//! batches from v3): kafkit's producer for old releases is tested on its own.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkit_core::compression::Compression;
use kafkit_core::config::{AutoOffsetReset, BrokerVersion, ConsumerConfig, IsolationLevel};
use kafkit_core::consumer::{
    ConsumerError, ConsumerEvent, OffsetAndMetadata, OpId, TopicPartition,
};
use kafkit_core::network::{release_name, LowLevelClient, LowLevelEvent, NetOptions};
use kafkit_core::protocol::metadata::request::MetadataRequestTopic;
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    decode_response_frame, request_header_version, ApiKey, Message, MetadataRequest,
    ProduceRequest, RequestBody, RequestHeader, ResponseBody,
};
use kafkit_core::records::{LegacyMessageSetBuilder, RecordBatchBuilder};
use kafkit_sim::cluster::releases::RELEASES;
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, ConsumerSim, Simulation};

const TOPIC: &str = "legacy";
const RECORDS: i64 = 5;
/// The first record's timestamp; record `i` has `TS0 + i`.
const TS0: i64 = 1_700_000_000_000;

fn frame(body: &RequestBody, version: i16) -> Bytes {
    let api = body.api_key();
    let header = RequestHeader {
        request_api_key: api.as_i16(),
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("seed".into()),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, request_header_version(api, version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

/// One request on a fresh connection of the test's own, answered at once.
fn call(cluster: &mut Cluster, broker: i32, body: RequestBody, version: i16) -> ResponseBody {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let conn = u64::MAX - NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let api = body.api_key();
    let now = Instant::now();
    assert!(cluster.connection_opened(broker, conn, "/seed"));
    let reply = cluster.handle_frame(broker, conn, frame(&body, version), now);
    cluster.connection_closed(broker, conn);
    let f = reply.frames.concat();
    assert!(!f.is_empty(), "{api:?} v{version} got no answer");
    decode_response_frame(api, version, Bytes::from(f).slice(4..))
        .unwrap()
        .1
}

/// The records the matrix reads back, in the format Produce `version` carries.
fn records_for(version: i16) -> Bytes {
    let k = |i: i64| format!("k{i}");
    let v = |i: i64| format!("v{i}");
    match version {
        0..=2 => {
            let magic = if version == 2 { 1 } else { 0 };
            let mut b = LegacyMessageSetBuilder::new(magic, Compression::Gzip).unwrap();
            for i in 0..RECORDS {
                let (key, value) = (k(i), v(i));
                b.append(TS0 + i, Some(key.as_bytes()), Some(value.as_bytes()))
                    .unwrap();
            }
            b.finish().unwrap()
        }
        _ => {
            let mut b = RecordBatchBuilder::new(Compression::Gzip);
            for i in 0..RECORDS {
                let (key, value) = (k(i), v(i));
                b.append(TS0 + i, Some(key.as_bytes()), Some(value.as_bytes()), &[])
                    .unwrap();
            }
            b.finish().unwrap()
        }
    }
}

/// A three-broker cluster as `release`, with `TOPIC` (one partition) holding `RECORDS`
/// records written at the release's newest Produce version.
fn seeded(release: &str) -> Rc<RefCell<Cluster>> {
    let config = ClusterConfig {
        default_partitions: 1,
        ..ClusterConfig::release(release).unwrap()
    };
    let mut cluster = Cluster::new(config, Instant::now());
    let (_, metadata_max) = cluster.api_versions()[&ApiKey::Metadata];
    // Metadata at v0 (every release has it) creates the topic.
    call(
        &mut cluster,
        0,
        RequestBody::Metadata(MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(TOPIC.into()),
                ..Default::default()
            }]),
            allow_auto_topic_creation: true,
            ..Default::default()
        }),
        metadata_max.min(3),
    );
    let leader = cluster.partition(TOPIC, 0).expect("created").leader;
    let (_, produce_max) = cluster.api_versions()[&ApiKey::Produce];
    let version = produce_max.min(3);
    let resp = call(
        &mut cluster,
        leader,
        RequestBody::Produce(ProduceRequest {
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: TOPIC.into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(records_for(version)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        version,
    );
    let ResponseBody::Produce(p) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(p.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(
        cluster.partition(TOPIC, 0).unwrap().log_end_offset(),
        RECORDS
    );
    Rc::new(RefCell::new(cluster))
}

fn consumer_config(group: Option<&str>) -> ConsumerConfig {
    let mut c = ConsumerConfig::default();
    c.auto_offset_reset = AutoOffsetReset::Earliest;
    c.group_id = group.map(str::to_owned);
    c.enable_auto_commit = false;
    c.fetch_max_wait_ms = 100;
    c.common.request_timeout_ms = 5_000;
    c.default_api_timeout_ms = 10_000;
    c
}

fn version(release: &str) -> BrokerVersion {
    let (a, b, c) = RELEASES.iter().find(|r| r.name == release).unwrap().version;
    BrokerVersion::new(a, b, c)
}

/// `kafkit probe`'s check: the low-level client's version check names the release.
fn probe(cluster: &Rc<RefCell<Cluster>>) -> BrokerVersion {
    let mut opts = NetOptions::new(vec![("broker-0".into(), 9092)]);
    opts.seed = 5;
    let mut sim = Simulation::new(LowLevelClient::new(opts), 5, Instant::now());
    serve_cluster(&mut sim, cluster);
    let now = sim.now();
    sim.core().check_version(OpId(1), now);
    let mut node = None;
    sim.run_until(|s| {
        for e in s.take_events() {
            if let LowLevelEvent::Response {
                id: OpId(1),
                result,
            } = e
            {
                node = Some(result.expect("the version check succeeds").node);
            }
        }
        node.is_some()
    })
    .unwrap();
    let (v, _) = sim.core().broker_versions(node.unwrap()).unwrap();
    v
}

/// Runs the core until the event `pick` recognizes arrives, and returns it.
fn wait<T>(
    c: &mut ConsumerSim,
    mut pick: impl FnMut(ConsumerEvent) -> Option<T>,
    within: Duration,
) -> Option<T> {
    let mut found = None;
    let until = c.sim().now() + within;
    c.run_until(|s| {
        for e in s.take_events() {
            if found.is_none() {
                found = pick(e);
            }
        }
        found.is_some() || s.now() >= until
    })
    .unwrap();
    found
}

fn commit(c: &mut ConsumerSim, tp: &TopicPartition, offset: i64) -> Result<(), ConsumerError> {
    let now = c.sim().now();
    let offsets = BTreeMap::from([(tp.clone(), OffsetAndMetadata::new(offset))]);
    c.core()
        .commit_sync(OpId(900), Some(offsets), Duration::from_secs(10), now);
    wait(
        c,
        |e| match e {
            ConsumerEvent::Commit {
                op: Some(OpId(900)),
                result,
                ..
            } => Some(result),
            _ => None,
        },
        Duration::from_secs(60),
    )
    .expect("the commit completes")
}

fn committed(c: &mut ConsumerSim, tp: &TopicPartition) -> Result<Option<i64>, ConsumerError> {
    let now = c.sim().now();
    c.core().committed(
        OpId(901),
        BTreeSet::from([tp.clone()]),
        Duration::from_secs(10),
        now,
    );
    wait(
        c,
        |e| match e {
            ConsumerEvent::Committed {
                op: OpId(901),
                result,
            } => Some(result),
            _ => None,
        },
        Duration::from_secs(60),
    )
    .expect("the lookup completes")
    .map(|m| m.get(tp).cloned().flatten().map(|o| o.offset))
}

/// Every cell of one row of the matrix.
fn row(release: &str) {
    let v = version(release);
    let cluster = seeded(release);
    let has = |api| cluster.borrow().api_versions().contains_key(&api);
    let groups = has(ApiKey::JoinGroup);
    let offsets_api = has(ApiKey::OffsetCommit);
    let by_time = cluster.borrow().api_versions()[&ApiKey::ListOffsets].1 >= 1;

    // Probe.
    let found = probe(&cluster);
    assert_eq!(found, v, "{release}: the probe names the release");

    // Metadata and consuming, with assign (kafka-python's SimpleConsumer).
    let tp = TopicPartition::new(TOPIC, 0);
    let start = Instant::now() + Duration::from_secs(1);
    let mut c =
        ConsumerSim::on_cluster(cluster.clone(), &consumer_config(Some("matrix")), 7, start)
            .unwrap();
    let parts = c
        .partitions_for_topic(TOPIC)
        .unwrap()
        .expect("metadata")
        .expect("the topic exists");
    assert_eq!(parts.len(), 1, "{release}: metadata");
    c.assign([tp.clone()]);
    let mut got = Vec::new();
    for _ in 0..20 {
        let recs = c.poll(Duration::from_millis(500)).unwrap().expect("poll");
        got.extend(recs.into_iter().map(|r| {
            (
                r.offset,
                r.timestamp,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            )
        }));
        if got.len() as i64 >= RECORDS {
            break;
        }
    }
    assert_eq!(got.len() as i64, RECORDS, "{release}: consumed {got:?}");
    for (i, (offset, ts, value)) in got.iter().enumerate() {
        assert_eq!(*offset, i as i64, "{release}");
        assert_eq!(*value, format!("v{i}"), "{release}");
        // Magic 0 (before 0.10) has no timestamps.
        let want = if v < BrokerVersion::new(0, 10, 0) {
            -1
        } else {
            TS0 + i as i64
        };
        assert_eq!(*ts, want, "{release}: timestamp of offset {offset}");
    }

    // Offsets: commit and fetch back, or the clear error of 0.8.0.
    let committed_result = commit(&mut c, &tp, 3);
    if offsets_api {
        committed_result.unwrap_or_else(|e| panic!("{release}: commit failed: {e}"));
        assert_eq!(committed(&mut c, &tp).unwrap(), Some(3), "{release}");
    } else {
        let e = committed_result.unwrap_err().to_string();
        assert!(e.contains("0.8.0"), "{release}: {e}");
        let e = committed(&mut c, &tp).unwrap_err().to_string();
        assert!(e.contains("0.8.0"), "{release}: {e}");
    }

    // Offsets by time: from 0.10.1, or the clear error naming the release.
    let query = BTreeMap::from([(tp.clone(), TS0 + 2)]);
    match c.offsets_for_times(query).unwrap() {
        Ok(found) => {
            assert!(by_time, "{release}: offsets by time answered: {found:?}");
            let o = found[&tp].expect("a record that recent");
            assert_eq!((o.offset, o.timestamp), (2, TS0 + 2), "{release}");
        }
        Err(e) => {
            assert!(!by_time, "{release}: {e}");
            let e = e.to_string();
            assert!(e.contains(&release_name(v)), "{release}: {e}");
            assert!(e.contains("0.10.1"), "{release}: {e}");
        }
    }
    // Earliest and latest work everywhere.
    let ends = c.end_offsets(std::slice::from_ref(&tp)).unwrap().unwrap();
    assert_eq!(ends[&tp], RECORDS, "{release}");
    c.close();

    // Groups: join where the release has them, a clear error where not.
    let mut g = ConsumerSim::on_cluster(
        cluster.clone(),
        &consumer_config(Some("matrix")),
        8,
        start + Duration::from_secs(600),
    )
    .unwrap();
    let now = g.sim().now();
    let subscribed = g.core().subscribe([TOPIC], now);
    if groups {
        subscribed.unwrap();
        let mut n = 0;
        for _ in 0..40 {
            n += g
                .poll(Duration::from_millis(500))
                .unwrap()
                .expect("poll")
                .count();
            if !g.assignment().is_empty() && n as i64 >= 2 {
                break;
            }
        }
        assert_eq!(g.assignment(), BTreeSet::from([tp.clone()]), "{release}");
        // The group resumes from the committed offset 3.
        assert_eq!(n as i64, RECORDS - 3, "{release}: read from the commit");
    } else {
        // The member learns the brokers' release first (probing a broker without
        // ApiVersions takes a few connections), then fails without waiting for any timeout.
        let started = g.sim().now();
        let e = match subscribed {
            Err(e) => e,
            Ok(()) => (0..40)
                .find_map(|_| g.poll(Duration::from_millis(500)).unwrap().err())
                .expect("subscribing fails on a broker without groups"),
        }
        .to_string();
        let took = g.sim().now() - started;
        assert!(took < Duration::from_secs(5), "{release}: took {took:?}");
        assert!(e.contains(&release_name(v)), "{release}: {e}");
        assert!(e.contains("assign"), "{release}: {e}");
    }
}

macro_rules! matrix {
    ($($name:ident => $release:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                row($release);
            }
        )*
    };
}

matrix! {
    kafka_0_8_0 => "0.8.0",
    kafka_0_8_1 => "0.8.1",
    kafka_0_8_2 => "0.8.2",
    kafka_0_9 => "0.9",
    kafka_0_10_0 => "0.10.0",
    kafka_0_10_1 => "0.10.1",
    kafka_0_10_2 => "0.10.2",
    kafka_0_11 => "0.11",
    kafka_1 => "1",
    kafka_2 => "2",
    kafka_3 => "3",
    kafka_4 => "4",
}

/// A read_committed consumer on a broker without transactions (before 0.11) fails its offset
/// lookups and resets at once, naming the release, as Java's does (ListOffsets v2 is its
/// minimum for read_committed); read_uncommitted is what such a broker has.
#[test]
fn read_committed_before_0_11_fails_clearly() {
    for release in ["0.9", "0.10.0", "0.10.2"] {
        let cluster = seeded(release);
        let mut config = consumer_config(None);
        config.isolation_level = IsolationLevel::ReadCommitted;
        let mut c = ConsumerSim::on_cluster(cluster, &config, 3, Instant::now()).unwrap();
        let tp = TopicPartition::new(TOPIC, 0);
        let e = c
            .end_offsets(std::slice::from_ref(&tp))
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("read_committed"), "{release}: {e}");
        assert!(e.contains("0.11"), "{release}: {e}");
        assert!(e.contains(&format!("Kafka {release}")), "{release}: {e}");
        // The reset of a fresh assignment fails the same way, at the next poll.
        c.assign([tp.clone()]);
        let started = c.sim().now();
        let mut failure = None;
        for _ in 0..20 {
            match c.poll(Duration::from_millis(500)).unwrap() {
                Ok(r) => assert_eq!(r.count(), 0, "{release}"),
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let e = failure.unwrap_or_else(|| panic!("{release}: the reset did not fail"));
        assert!(e.contains("read_committed"), "{release}: {e}");
        assert!(
            c.sim().now() - started < Duration::from_secs(2),
            "{release}: at once"
        );
    }
}

/// Stored record batches reach an old fetcher down-converted: a 2.x cluster read at Fetch v0
/// (magic 0) and v3 (magic 1) by a client pinned to 0.9 ... 0.10.
#[test]
fn record_batches_are_down_converted_for_old_fetch_versions() {
    let cluster = seeded("2");
    for pin in ["0.9", "0.10.0"] {
        let mut config = consumer_config(None);
        config.common.api_version = Some(pin.parse::<BrokerVersion>().unwrap());
        let mut c = ConsumerSim::on_cluster(cluster.clone(), &config, 4, Instant::now()).unwrap();
        let tp = TopicPartition::new(TOPIC, 0);
        c.assign([tp]);
        let mut got = Vec::new();
        for _ in 0..20 {
            let recs = c.poll(Duration::from_millis(500)).unwrap().expect("poll");
            got.extend(recs.into_iter().map(|r| (r.offset, r.timestamp)));
            if got.len() as i64 >= RECORDS {
                break;
            }
        }
        let want_ts = |i: i64| if pin == "0.9" { -1 } else { TS0 + i };
        let want: Vec<(i64, i64)> = (0..RECORDS).map(|i| (i, want_ts(i))).collect();
        assert_eq!(got, want, "pinned {pin}");
    }
}

/// A read_committed consumer whose start position needs no ListOffsets (an offset the
/// group committed, or a seek) still cannot fetch from a broker before 0.11: Fetch below v4
/// has no isolation level. It fails at the next poll with the same clear error as the offset
/// lookups, not with an encoding error or a silent read_uncommitted.
#[test]
fn read_committed_from_a_committed_position_before_0_11_fails_clearly() {
    for release in ["0.8.2", "0.9", "0.10.0", "0.10.2"] {
        let groups = version(release) >= BrokerVersion::new(0, 9, 0);
        let cluster = seeded(release);
        let tp = TopicPartition::new(TOPIC, 0);
        let start = Instant::now() + Duration::from_secs(1);
        let mut writer =
            ConsumerSim::on_cluster(cluster.clone(), &consumer_config(Some("rc")), 5, start)
                .unwrap();
        commit(&mut writer, &tp, 2).unwrap_or_else(|e| panic!("{release}: commit: {e}"));
        writer.close();

        let mut config = consumer_config(Some("rc"));
        config.isolation_level = IsolationLevel::ReadCommitted;
        // From the group's committed offset where the release has groups, else a seek.
        let mut c =
            ConsumerSim::on_cluster(cluster, &config, 6, start + Duration::from_secs(60)).unwrap();
        if groups {
            let now = c.sim().now();
            c.core().subscribe([TOPIC], now).unwrap();
        } else {
            c.assign([tp.clone()]);
            c.seek(&tp, 2).unwrap();
        }
        let mut failure = None;
        for _ in 0..40 {
            match c.poll(Duration::from_millis(500)).unwrap() {
                Ok(r) => assert_eq!(r.count(), 0, "{release}: nothing read uncommitted"),
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let e = failure.unwrap_or_else(|| panic!("{release}: the fetch did not fail"));
        assert!(e.contains("read_committed"), "{release}: {e}");
        assert!(e.contains("Fetch v4"), "{release}: {e}");
        assert!(e.contains("0.11"), "{release}: {e}");
        assert!(e.contains(&format!("Kafka {release}")), "{release}: {e}");
    }
}

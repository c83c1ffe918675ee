//! The consumer core against the simulated cluster: assignment and polling, seeks, pause and
//! resume, offset lookups, out-of-range policies, incremental fetch sessions, a leader move in
//! the middle of consumption, and the memory budget.
//!
//! Data is produced straight into the cluster model with Produce frames on connections of the
//! test's own (the consumer's connections go through the simulated network).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkit_core::compression::Compression;
use kafkit_core::config::{AutoOffsetReset, ConsumerConfig};
use kafkit_core::consumer::{
    ConsumerCore, ConsumerError, ConsumerEvent, ConsumerRecord, OpId, TopicPartition,
};
use kafkit_core::network::{ClientCore, NetOptions, Output};
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::delete_records::request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    decode_response_frame, request_header_version, ApiKey, CreateTopicsRequest,
    DeleteRecordsRequest, ErrorCode, FetchResponse, Message, ProduceRequest, RequestBody,
    RequestHeader, ResponseBody,
};
use kafkit_core::records::{Header, RecordBatchBuilder};
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, HookAction, LinkConfig, Simulation};

const TOPIC: &str = "events";

struct Env {
    sim: Simulation<ConsumerCore>,
    cluster: Rc<RefCell<Cluster>>,
    next_conn: u64,
    /// The records the test produced: partition -> (offset -> value).
    produced: BTreeMap<i32, BTreeMap<i64, Bytes>>,
}

fn frame(body: &RequestBody, version: i16) -> Bytes {
    let api = body.api_key();
    let header = RequestHeader {
        request_api_key: api.as_i16(),
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("test-producer".into()),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, request_header_version(api, version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

impl Env {
    fn new(brokers: usize, partitions: i32, tweak: impl FnOnce(&mut ConsumerConfig)) -> Self {
        let start = Instant::now();
        let config = ClusterConfig {
            brokers,
            replication_factor: brokers as i16,
            seed: 3,
            ..ClusterConfig::default()
        };
        let cluster = Rc::new(RefCell::new(Cluster::new(config, start)));
        let mut cc = ConsumerConfig::default();
        cc.auto_offset_reset = AutoOffsetReset::Earliest;
        cc.fetch_max_wait_ms = 100;
        cc.common.retry_backoff_ms = 50;
        tweak(&mut cc);
        let mut opts = NetOptions::new(vec![("broker-0".into(), 9092)]);
        opts.seed = 11;
        opts.retry_backoff = Duration::from_millis(50);
        let sim = Simulation::new(ConsumerCore::new(cc, opts), 7, start)
            .with_links(LinkConfig {
                latency: Duration::from_millis(1),
                jitter: Duration::ZERO,
            })
            .with_max_steps(2_000_000);
        let mut env = Env {
            sim,
            cluster,
            next_conn: 0,
            produced: BTreeMap::new(),
        };
        serve_cluster(&mut env.sim, &env.cluster);
        env.call(
            0,
            CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: TOPIC.into(),
                    num_partitions: partitions,
                    replication_factor: brokers as i16,
                    ..Default::default()
                }],
                timeout_ms: 1000,
                ..Default::default()
            },
            5,
        );
        env
    }

    /// One request on a fresh connection of the test's own, answered at once.
    fn call<R: kafkit_core::protocol::Request>(
        &mut self,
        broker: i32,
        body: R,
        version: i16,
    ) -> R::Response {
        let body: RequestBody = body.into();
        self.next_conn += 1;
        let conn = u64::MAX - self.next_conn;
        let api = R::API_KEY;
        let now = self.sim.now();
        let mut c = self.cluster.borrow_mut();
        assert!(c.connection_opened(broker, conn, "/test-producer"));
        let reply = c.handle_frame(broker, conn, frame(&body, version), now);
        c.connection_closed(broker, conn);
        assert_eq!(reply.frames.len(), 1, "{api:?} answered at once");
        let f = &reply.frames[0];
        decode_response_frame(api, version, f.slice(4..))
            .unwrap()
            .1
            .into_response::<R>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn leader(&self, partition: i32) -> i32 {
        self.cluster
            .borrow()
            .partition(TOPIC, partition)
            .unwrap()
            .leader
    }

    /// Produces `n` records (`p<partition>-<offset>`) in one batch; returns the base offset.
    fn produce(&mut self, partition: i32, n: usize, codec: Compression, ts: i64) -> i64 {
        let base = self
            .cluster
            .borrow()
            .partition(TOPIC, partition)
            .unwrap()
            .log_end_offset();
        let mut b = RecordBatchBuilder::new(codec);
        let mut values = Vec::new();
        for i in 0..n {
            let v = Bytes::from(format!("p{partition}-{}", base + i as i64));
            b.append(
                ts + i as i64,
                Some(b"k"),
                Some(&v),
                &[Header::new("h", "x")],
            )
            .unwrap();
            values.push(v);
        }
        self.produce_batch(partition, b.finish().unwrap(), values)
    }

    fn produce_batch(&mut self, partition: i32, batch: Bytes, values: Vec<Bytes>) -> i64 {
        let leader = self.leader(partition);
        let body = ProduceRequest {
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: TOPIC.into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(batch),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = self.call(leader, body, 8);
        let pr = &r.responses[0].partition_responses[0];
        assert_eq!(pr.error_code, 0, "produce failed");
        let log = self.produced.entry(partition).or_default();
        for (i, v) in values.into_iter().enumerate() {
            log.insert(pr.base_offset + i as i64, v);
        }
        pr.base_offset
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new(TOPIC, p)
    }

    fn assign(&mut self, parts: &[i32]) {
        let now = self.sim.now();
        self.sim
            .core()
            .assign(parts.iter().map(|&p| Self::tp(p)), now);
    }

    /// Polls (`max` records at a time) until `n` records came; fails past `within`.
    fn consume(&mut self, n: usize, max: usize, within: Duration) -> Vec<ConsumerRecord> {
        let deadline = self.sim.now() + within;
        let mut got = Vec::new();
        self.sim
            .run_until(|s| {
                let now = s.now();
                if now > deadline {
                    let c = s.core();
                    let pos: Vec<_> = c
                        .assignment()
                        .iter()
                        .map(|tp| (tp.partition, c.position(tp)))
                        .collect();
                    panic!(
                        "only {} of {n} records by the deadline: {c:?} {:?} {pos:?}",
                        got.len(),
                        c.stats()
                    );
                }
                // An application polls again at once while records keep coming.
                while got.len() < n {
                    match s.core().take_records(max, now) {
                        Ok(r) if r.is_empty() => break,
                        Ok(r) => {
                            assert!(r.count() <= max);
                            got.extend(r);
                        }
                        Err(e) => panic!("poll failed: {e}"),
                    }
                }
                got.len() >= n
            })
            .unwrap();
        got
    }

    /// One poll without waiting.
    fn take(
        &mut self,
        max: usize,
    ) -> Result<kafkit_core::consumer::ConsumerRecords, ConsumerError> {
        let now = self.sim.now();
        self.sim.core().take_records(max, now)
    }

    /// Runs for `d`, taking nothing.
    fn idle(&mut self, d: Duration) {
        self.sim.run_for(d).unwrap();
    }

    fn position(&mut self, p: i32) -> Option<i64> {
        self.sim.core().position(&Self::tp(p)).unwrap()
    }

    /// Runs until the partition's position is known.
    fn await_position(&mut self, p: i32) -> i64 {
        self.sim
            .run_until(|s| s.core().position(&Self::tp(p)).unwrap().is_some())
            .unwrap();
        self.position(p).unwrap()
    }
}

/// Checks records of each partition are the produced ones, in order, without gaps.
fn check_in_order(env: &Env, records: &[ConsumerRecord], from: &BTreeMap<i32, i64>) {
    let mut by_part: BTreeMap<i32, Vec<&ConsumerRecord>> = BTreeMap::new();
    for r in records {
        by_part.entry(r.partition).or_default().push(r);
    }
    for (p, rs) in by_part {
        let start = from.get(&p).copied().unwrap_or(0);
        for (i, r) in rs.iter().enumerate() {
            assert_eq!(
                r.offset,
                start + i as i64,
                "partition {p}: no skip, no repeat"
            );
            assert_eq!(
                r.value.as_ref(),
                env.produced[&p].get(&r.offset),
                "partition {p} offset {}",
                r.offset
            );
        }
    }
}

#[test]
fn assign_and_poll_read_everything_in_order_with_incremental_sessions() {
    let mut env = Env::new(1, 3, |_| {});
    let fetches = Rc::new(RefCell::new((0u32, 0u32)));
    let counts = fetches.clone();
    env.cluster.borrow_mut().set_hook(
        ApiKey::Fetch,
        Box::new(move |_, body| {
            if let RequestBody::Fetch(f) = body {
                let mut c = counts.borrow_mut();
                if f.session_epoch > 0 {
                    c.1 += 1;
                } else {
                    c.0 += 1;
                }
            }
            HookAction::Pass
        }),
    );
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut total = 0;
    for i in 0..30 {
        let p = i % 3;
        env.produce(p, 7, codecs[i as usize % codecs.len()], 1_000 + i as i64);
        total += 7;
    }
    env.assign(&[0, 1, 2]);
    let got = env.consume(total, 50, Duration::from_secs(30));
    assert_eq!(got.len(), total);
    check_in_order(&env, &got, &BTreeMap::new());
    let r = &got[0];
    assert_eq!(&*r.topic, TOPIC);
    assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(r.headers.get("h"), Some(Some(Bytes::from_static(b"x"))));
    assert_eq!(r.serialized_key_size, 1);
    assert!(r.leader_epoch.is_some());
    for p in 0..3 {
        assert_eq!(env.position(p), Some(70));
        assert_eq!(env.sim.core().highwater(&Env::tp(p)).unwrap(), Some(70));
    }

    // New data keeps arriving through the incremental session.
    for round in 0..5 {
        env.produce(round % 3, 3, Compression::None, 5_000);
        env.consume(3, 500, Duration::from_secs(5));
    }
    let stats = env.sim.core().stats().clone();
    let (full, incremental) = *fetches.borrow();
    assert!(stats.incremental_fetches >= 5, "{stats:?}");
    // The last fetch may still be on its way to the broker.
    let in_flight = stats.incremental_fetches - u64::from(incremental);
    assert!(in_flight <= 1, "{stats:?} vs {incremental} seen");
    assert_eq!(u64::from(full), stats.full_fetches);
    assert!(full <= 2, "only the first fetch is full: {full}");
    assert_eq!(stats.session_resets, 0);
}

#[test]
fn a_lost_fetch_session_is_replaced_by_a_full_fetch() {
    let mut env = Env::new(1, 1, |_| {});
    env.produce(0, 5, Compression::None, 0);
    env.assign(&[0]);
    env.consume(5, 100, Duration::from_secs(5));
    // The broker forgets the session once: FETCH_SESSION_ID_NOT_FOUND.
    let once = Rc::new(RefCell::new(true));
    let flag = once.clone();
    env.cluster.borrow_mut().set_hook(
        ApiKey::Fetch,
        Box::new(move |_, _| {
            if std::mem::take(&mut *flag.borrow_mut()) {
                HookAction::Respond(ResponseBody::Fetch(FetchResponse {
                    error_code: ErrorCode::FETCH_SESSION_ID_NOT_FOUND.0,
                    ..Default::default()
                }))
            } else {
                HookAction::Pass
            }
        }),
    );
    let before = env.sim.core().stats().full_fetches;
    env.produce(0, 5, Compression::None, 0);
    let got = env.consume(5, 100, Duration::from_secs(5));
    check_in_order(&env, &got, &BTreeMap::from([(0, 5)]));
    let stats = env.sim.core().stats();
    assert_eq!(stats.session_resets, 1);
    assert!(stats.full_fetches > before, "a new session was opened");
}

#[test]
fn seek_seek_to_beginning_and_seek_to_end() {
    let mut env = Env::new(1, 1, |_| {});
    for _ in 0..4 {
        env.produce(0, 5, Compression::Lz4, 0);
    }
    env.assign(&[0]);
    env.consume(20, 500, Duration::from_secs(5));

    let now = env.sim.now();
    env.sim.core().seek(&Env::tp(0), 7, now).unwrap();
    assert_eq!(env.position(0), Some(7));
    let got = env.consume(13, 500, Duration::from_secs(5));
    assert_eq!(
        got.first().map(|r| r.offset),
        Some(7),
        "seek into a compressed batch"
    );
    check_in_order(&env, &got, &BTreeMap::from([(0, 7)]));

    let now = env.sim.now();
    env.sim.core().seek_to_beginning(&[], now).unwrap();
    assert_eq!(env.position(0), None, "reset in progress");
    assert_eq!(env.await_position(0), 0);
    let got = env.consume(20, 500, Duration::from_secs(5));
    check_in_order(&env, &got, &BTreeMap::new());

    let now = env.sim.now();
    env.sim.core().seek(&Env::tp(0), 3, now).unwrap();
    env.sim.core().seek_to_end(&[Env::tp(0)], now).unwrap();
    assert_eq!(env.await_position(0), 20);
    env.idle(Duration::from_millis(300));
    assert!(env.take(500).unwrap().is_empty());
    env.produce(0, 2, Compression::None, 0);
    let got = env.consume(2, 500, Duration::from_secs(5));
    check_in_order(&env, &got, &BTreeMap::from([(0, 20)]));

    let now = env.sim.now();
    assert!(matches!(
        env.sim.core().seek(&Env::tp(9), 0, now),
        Err(ConsumerError::NotAssigned { .. })
    ));
}

#[test]
fn paused_partitions_are_not_returned_until_resumed() {
    let mut env = Env::new(1, 2, |_| {});
    env.produce(0, 5, Compression::None, 0);
    env.produce(1, 5, Compression::None, 0);
    env.assign(&[0, 1]);
    env.sim.core().pause(&[Env::tp(0)]).unwrap();
    assert_eq!(env.sim.core().paused().len(), 1);
    let got = env.consume(5, 500, Duration::from_secs(5));
    assert!(got.iter().all(|r| r.partition == 1));
    env.produce(0, 5, Compression::None, 0);
    env.idle(Duration::from_secs(1));
    let more = env.take(500).unwrap();
    assert!(more.is_empty(), "paused partition returned records");
    let now = env.sim.now();
    env.sim.core().resume(&[Env::tp(0)], now).unwrap();
    let got = env.consume(10, 500, Duration::from_secs(5));
    assert!(got.iter().all(|r| r.partition == 0));
    check_in_order(&env, &got, &BTreeMap::new());
}

fn offsets_event(
    env: &mut Env,
    query: BTreeMap<TopicPartition, i64>,
) -> BTreeMap<TopicPartition, Option<i64>> {
    let now = env.sim.now();
    // Two lookups with the same op at once: each is answered, with the op given.
    let id = OpId(3);
    env.sim
        .core()
        .list_offsets(id, query.clone(), Duration::from_secs(5), now);
    env.sim
        .core()
        .list_offsets(id, query, Duration::from_secs(5), now);
    let mut answers = 0;
    let mut result = None;
    env.sim
        .run_until(|s| {
            for e in s.take_events() {
                if let ConsumerEvent::Offsets { op, result: r } = e {
                    if op == id {
                        answers += 1;
                        result = Some(r);
                    }
                }
            }
            answers == 2
        })
        .unwrap();
    result
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|(tp, o)| (tp, o.map(|o| o.offset)))
        .collect()
}

#[test]
fn offsets_for_times_and_beginning_and_end_offsets() {
    let mut env = Env::new(1, 2, |_| {});
    env.produce(0, 10, Compression::None, 1_000); // timestamps 1000..1009
    env.produce(0, 10, Compression::Gzip, 2_000); // 2000..2009
    env.produce(1, 3, Compression::None, 1_000);
    let q = BTreeMap::from([(Env::tp(0), 1_005), (Env::tp(1), 50_000)]);
    let r = offsets_event(&mut env, q);
    assert_eq!(r[&Env::tp(0)], Some(5));
    assert_eq!(r[&Env::tp(1)], None, "no record that late");
    let r = offsets_event(&mut env, BTreeMap::from([(Env::tp(0), 1_500)]));
    assert_eq!(r[&Env::tp(0)], Some(10));
    let r = offsets_event(
        &mut env,
        BTreeMap::from([(Env::tp(0), -2), (Env::tp(1), -1)]),
    );
    assert_eq!(r[&Env::tp(0)], Some(0));
    assert_eq!(r[&Env::tp(1)], Some(3));
    // Lookups need no assignment; an unknown partition times out with a named error.
    let now = env.sim.now();
    let id = OpId(4);
    env.sim.core().list_offsets(
        id,
        BTreeMap::from([(TopicPartition::new(TOPIC, 9), -1)]),
        Duration::from_secs(2),
        now,
    );
    let mut result = None;
    env.sim
        .run_until(|s| {
            for e in s.take_events() {
                if let ConsumerEvent::Offsets { op, result: r } = e {
                    if op == id {
                        result = Some(r);
                    }
                }
            }
            result.is_some()
        })
        .unwrap();
    assert!(matches!(result, Some(Err(ConsumerError::Timeout { .. }))));
}

#[test]
fn out_of_range_follows_auto_offset_reset() {
    for policy in [
        AutoOffsetReset::Earliest,
        AutoOffsetReset::Latest,
        AutoOffsetReset::None,
    ] {
        let mut env = Env::new(1, 1, |c| c.auto_offset_reset = policy);
        env.produce(0, 10, Compression::None, 0);
        env.assign(&[0]);
        let now = env.sim.now();
        env.sim.core().seek(&Env::tp(0), 1_000, now).unwrap();
        match policy {
            AutoOffsetReset::Earliest => {
                let got = env.consume(10, 500, Duration::from_secs(5));
                check_in_order(&env, &got, &BTreeMap::new());
            }
            AutoOffsetReset::Latest => {
                env.sim
                    .run_until(|s| s.core().position(&Env::tp(0)).unwrap() == Some(10))
                    .unwrap();
                env.produce(0, 1, Compression::None, 0);
                let got = env.consume(1, 500, Duration::from_secs(5));
                assert_eq!(got[0].offset, 10);
            }
            _ => {
                let mut error = None;
                env.sim
                    .run_until(|s| {
                        let now = s.now();
                        if let Err(e) = s.core().take_records(500, now) {
                            error = Some(e);
                        }
                        error.is_some()
                    })
                    .unwrap();
                assert!(matches!(
                    error,
                    Some(ConsumerError::OffsetOutOfRange { offset: 1000, .. })
                ));
                // Reported once; the partition waits for a seek.
                env.idle(Duration::from_millis(500));
                assert!(env.take(500).unwrap().is_empty());
                let now = env.sim.now();
                env.sim.core().seek(&Env::tp(0), 4, now).unwrap();
                let got = env.consume(6, 500, Duration::from_secs(5));
                check_in_order(&env, &got, &BTreeMap::from([(0, 4)]));
            }
        }
    }
    // With `none` and no position at all, the first poll says so.
    let mut env = Env::new(1, 1, |c| c.auto_offset_reset = AutoOffsetReset::None);
    env.assign(&[0]);
    assert!(matches!(env.take(10), Err(ConsumerError::NoOffset { .. })));
}

#[test]
fn a_leader_move_mid_consume_neither_skips_nor_repeats() {
    let mut env = Env::new(3, 2, |_| {});
    for i in 0..20 {
        env.produce(i % 2, 5, Compression::Snappy, 0);
    }
    env.assign(&[0, 1]);
    let mut got = env.consume(30, 10, Duration::from_secs(10));
    for round in 0..3 {
        let old = env.leader(0);
        let replicas = env
            .cluster
            .borrow()
            .partition(TOPIC, 0)
            .unwrap()
            .replicas
            .clone();
        let new = *replicas.iter().find(|&&r| r != old).unwrap();
        let now = env.sim.now();
        env.cluster
            .borrow_mut()
            .move_leader(TOPIC, 0, new, now)
            .unwrap();
        for i in 0..6 {
            env.produce(i % 2, 5, Compression::None, round);
        }
        got.extend(env.consume(20, 10, Duration::from_secs(10)));
    }
    let total: usize = env.produced.values().map(BTreeMap::len).sum();
    let rest = total - got.len();
    got.extend(env.consume(rest, 10, Duration::from_secs(10)));
    env.idle(Duration::from_millis(500));
    assert!(env.take(500).unwrap().is_empty());
    assert_eq!(got.len(), total);
    check_in_order(&env, &got, &BTreeMap::new());
}

#[test]
fn the_memory_budget_bounds_what_a_slow_application_makes_the_consumer_hold() {
    const BOUND: u64 = 400_000;
    let mut env = Env::new(1, 2, |c| {
        c.fetch_buffer_bytes = BOUND;
        c.max_partition_fetch_bytes = 1 << 20;
    });
    // Batches of 40 records of 2 KiB: ~80 KiB decompressed each, some compressed size.
    let mut total = 0;
    for b in 0..30 {
        for p in 0..2 {
            let mut builder = RecordBatchBuilder::new(Compression::Zstd);
            let mut values = Vec::new();
            for i in 0..40u32 {
                // Pseudo-random bytes of 4 bits each: zstd halves them, roughly.
                let mut x = u64::from(b * 1000 + i * 10 + p as u32) + 1;
                let v: Vec<u8> = (0..2048)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (x >> 60) as u8
                    })
                    .collect();
                builder.append(0, None, Some(&v), &[]).unwrap();
                values.push(Bytes::from(v));
            }
            total += values.len();
            env.produce_batch(p, builder.finish().unwrap(), values);
        }
    }
    let log_bytes = env
        .cluster
        .borrow()
        .partition(TOPIC, 0)
        .unwrap()
        .size_bytes();
    assert!(log_bytes * 2 > BOUND, "the data exceeds the budget");
    env.assign(&[0, 1]);
    // A slow application: 25 records, then 200 ms of work.
    let mut got: Vec<ConsumerRecord> = Vec::new();
    let mut peak_seen = 0;
    while got.len() < total {
        env.idle(Duration::from_millis(200));
        peak_seen = peak_seen.max(env.sim.core().buffered_bytes());
        let now = env.sim.now();
        got.extend(env.sim.core().take_records(25, now).unwrap());
        assert!(
            env.sim.elapsed() < Duration::from_secs(600),
            "stalled at {}",
            got.len()
        );
    }
    check_in_order(&env, &got, &BTreeMap::new());
    let stats = env.sim.core().stats();
    assert!(
        stats.peak_buffered_bytes <= BOUND,
        "peak {} over the bound {BOUND}",
        stats.peak_buffered_bytes
    );
    assert!(peak_seen <= BOUND);
    assert!(
        stats.peak_buffered_bytes > BOUND / 4,
        "the budget was used: {}",
        stats.peak_buffered_bytes
    );
}

/// Issue 9: an idle partition must not hold back a busy one on the same broker. With one
/// Fetch per broker in flight and buffered partitions left out of it, a Fetch of only the
/// caught-up partition sat at the broker for `fetch_max_wait_ms` while the application had
/// long drained the busy partition, so every batch of it cost a full long poll.
#[test]
fn an_idle_partition_does_not_hold_back_a_busy_one_on_the_same_broker() {
    let mut env = Env::new(1, 2, |c| {
        c.fetch_max_wait_ms = 500;
        // About one batch per fetch, so reading the busy partition takes many fetches.
        c.max_partition_fetch_bytes = 1;
    });
    for _ in 0..20 {
        env.produce(1, 50, Compression::None, 1_000);
    }
    env.assign(&[0, 1]);
    let start = env.sim.now();
    // 20 fetches of a few milliseconds each; before the fix, about 20 × 500 ms.
    let got = env.consume(1000, 500, Duration::from_secs(2));
    check_in_order(&env, &got, &BTreeMap::from([(1, 0)]));
    let took = env.sim.now() - start;
    assert!(
        took < Duration::from_millis(600),
        "1000 records of the busy partition took {took:?}"
    );
}

/// One partition of ten batches of 20 records, fetched one batch per fetch; the consumer
/// has returned the first record.
fn first_record_of_ten_batches() -> (Env, Vec<ConsumerRecord>) {
    let mut env = Env::new(1, 1, |c| {
        c.max_partition_fetch_bytes = 1;
    });
    for _ in 0..10 {
        env.produce(0, 20, Compression::None, 1_000);
    }
    env.assign(&[0]);
    let first = env.consume(1, 1, Duration::from_secs(2));
    assert_eq!(first[0].offset, 0);
    (env, first)
}

/// Issue 9: a partition the application is reading is fetched again from the end of its
/// buffered data, so the next response is there when the buffer runs dry (one fetch per
/// partition at a time made a fast reader wait a round trip per fetch). The queue stays
/// short, and the records come in order, each once.
#[test]
fn a_partition_being_read_is_fetched_ahead_a_bounded_distance() {
    let (mut env, first) = first_record_of_ten_batches();
    // The application works on its record; the consumer keeps fetching meanwhile, but only
    // a couple of batches ahead.
    env.idle(Duration::from_secs(1));
    let stats = env.sim.core().stats().clone();
    assert!(
        (2..=3).contains(&stats.fetch_responses),
        "fetched ahead, and not too far: {stats:?}"
    );
    let buffered = env.sim.core().buffered_bytes();
    let rest = env.consume(199, 7, Duration::from_secs(5));
    let mut all = first;
    all.extend(rest);
    check_in_order(&env, &all, &BTreeMap::new());
    assert!(buffered > 0);
    // Every batch came in a fetch of its own (and, checked above, no record twice).
    assert!(env.sim.core().stats().fetch_responses >= 10);
}

/// A fetch ahead that finds its offset gone (the log start moved past it) must not reset the
/// partition while records before that offset are still buffered: they are returned first,
/// and the reset follows when the position itself is out of range.
#[test]
fn an_out_of_range_fetch_ahead_does_not_drop_buffered_records() {
    let (mut env, _) = first_record_of_ten_batches();
    // The fetch of the next batch is on its way; the log start moves past it.
    let leader = env.leader(0);
    let r = env.call(
        leader,
        DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: TOPIC.into(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: 0,
                    offset: 100,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        },
        2,
    );
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    env.idle(Duration::from_millis(300));
    let got = env.consume(119, 7, Duration::from_secs(5));
    let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    // The first batch's other records, then (auto_offset_reset=earliest) the log from 100.
    let expected: Vec<i64> = (1..20).chain(100..200).collect();
    assert_eq!(offsets, expected);
}

/// What fetching ahead buys when the round trip is not free (the simulated links add 1 ms
/// each way): an application that takes 2 ms to work through each fetched batch reads 20 of
/// them in about 20 × 2 ms, instead of paying a round trip after each batch as well (about
/// 20 × 4 ms). Virtual time, so the figure is exact and repeatable: 40 ms with fetching
/// ahead, 77 ms without it.
#[test]
fn fetching_ahead_hides_the_round_trip_from_a_steady_reader() {
    let mut env = Env::new(1, 1, |c| {
        // One batch per fetch.
        c.max_partition_fetch_bytes = 1;
    });
    for _ in 0..20 {
        env.produce(0, 50, Compression::None, 1_000);
    }
    env.assign(&[0]);
    let first = env.consume(1, 1, Duration::from_secs(2));
    let start = env.sim.now();
    let mut got = first;
    while got.len() < 1000 {
        // 25 records per millisecond of work.
        env.idle(Duration::from_millis(1));
        got.extend(env.take(25).unwrap());
        assert!(env.sim.now() - start < Duration::from_secs(5), "stalled");
    }
    check_in_order(&env, &got, &BTreeMap::new());
    let took = env.sim.now() - start;
    assert!(
        took < Duration::from_millis(55),
        "1000 records at 25/ms took {took:?} (without fetching ahead: 77 ms)"
    );
}

/// How many of `events` match `which`.
fn count(events: &[ConsumerEvent], which: fn(&ConsumerEvent) -> bool) -> usize {
    events.iter().filter(|e| which(e)).count()
}

#[test]
fn state_changes_are_reported_once_each() {
    let mut env = Env::new(1, 1, |_| {});
    env.produce(0, 20, Compression::None, 0);
    env.assign(&[0]);
    // The reset to the earliest offset finishes: PositionsChanged, once.
    env.await_position(0);
    env.idle(Duration::from_millis(500));
    let events = env.sim.take_events();
    assert_eq!(
        count(&events, |e| matches!(e, ConsumerEvent::PositionsChanged)),
        1,
        "{events:?}"
    );
    // Records arrived: RecordsReady once, however many inputs came meanwhile.
    assert_eq!(
        count(&events, |e| matches!(e, ConsumerEvent::RecordsReady)),
        1,
        "{events:?}"
    );
    env.idle(Duration::from_millis(500));
    assert!(env.sim.take_events().is_empty(), "nothing new to report");

    // Taking some of them arms it again: the rest is news at once.
    assert_eq!(env.take(5).unwrap().count(), 5);
    env.sim.drain();
    let events = env.sim.take_events();
    assert_eq!(
        count(&events, |e| matches!(e, ConsumerEvent::RecordsReady)),
        1,
        "{events:?}"
    );
    let got = env.consume(15, 500, Duration::from_secs(5));
    assert_eq!(got.len(), 15);
    env.idle(Duration::from_secs(1));
    env.sim.take_events();
    // Nothing buffered: no news until new records come.
    assert!(env.take(500).unwrap().is_empty());
    env.idle(Duration::from_secs(1));
    assert_eq!(
        count(&env.sim.take_events(), |e| matches!(
            e,
            ConsumerEvent::RecordsReady
        )),
        0
    );
    env.produce(0, 3, Compression::None, 0);
    env.idle(Duration::from_secs(1));
    assert_eq!(
        count(&env.sim.take_events(), |e| matches!(
            e,
            ConsumerEvent::RecordsReady
        )),
        1
    );

    // A seek to the end is a reset: the position is unknown until it finishes, then news.
    let now = env.sim.now();
    env.sim.core().seek_to_end(&[], now).unwrap();
    assert_eq!(env.position(0), None);
    env.await_position(0);
    env.sim.drain();
    assert_eq!(
        count(&env.sim.take_events(), |e| matches!(
            e,
            ConsumerEvent::PositionsChanged
        )),
        1
    );

    // abort: Closed, once, and the connections close; nothing after.
    env.sim.core().abort();
    env.sim.core().abort();
    let mut closes = 0;
    let mut events = Vec::new();
    while let Some(o) = env.sim.core().poll_output() {
        match o {
            Output::Close { .. } => closes += 1,
            Output::Event(e) => events.push(e),
            _ => {}
        }
    }
    assert!(closes >= 1, "connections closed");
    assert_eq!(
        count(&events, |e| matches!(e, ConsumerEvent::Closed)),
        1,
        "{events:?}"
    );
    assert!(matches!(env.take(500), Err(ConsumerError::Closed)));
    env.idle(Duration::from_secs(1));
    assert!(env.sim.take_events().is_empty());
}

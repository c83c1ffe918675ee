//! Transactions on the release profiles that have them: 0.11, 1.0, 2.0 and 3.0
//! (`ClusterConfig::release`, the same profiles as the compatibility matrix in
//! `old_brokers.rs`); 4.0, the model's own release, is `cluster_txn.rs` and
//! `sim_txn_faults.rs`. These are the "transactions" cells of the README's Broker releases
//! table from 0.11 on.
//!
//! On each profile kafkit's transactional producer (the `ProducerCore` the drivers run) does
//! what an exactly-once application does: `init_transactions`; a transaction writing to two
//! partitions with the group's offsets added (`send_offsets_to_transaction`), committed; a
//! second one aborted. Then a read_committed consumer reads exactly the committed records, a
//! read_uncommitted one reads both transactions' records, and the group's committed offset
//! is the one the committed transaction carried. The test also checks what the client
//! negotiated with the release's brokers: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
//! EndTxn and TxnOffsetCommit at the highest version both sides know (v0 on 0.11 and 1.0, v1
//! on 2.0, v3 on 3.0 except InitProducerId at its own maximum).
//!
//! Group metadata in TxnOffsetCommit (generation and member id, KIP-447) needs TxnOffsetCommit
//! v3, Kafka 2.5: as in Java, offsets sent with a consumer's full group metadata fail on an
//! older broker with an error naming what it lacks (the transaction must then be aborted),
//! while offsets sent with the group id alone (Java's `sendOffsetsToTransaction(offsets,
//! groupId)`) work there.
//!
//! Everything runs in virtual time from a fixed seed, so a failure replays exactly.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use kafkit_core::config::{ConsumerConfig, ProducerConfig};
use kafkit_core::consumer::{
    ConsumerEvent, GroupMetadata, OffsetAndMetadata, OpId, TopicPartition,
};
use kafkit_core::driver::DeliveryFuture;
use kafkit_core::producer::{ProduceError, ProducerRecord};
use kafkit_core::protocol::ApiKey;
use kafkit_sim::{ClusterConfig, ConsumerSim, HookAction, ProducerSim};

const TOPIC: &str = "out";
const GROUP: &str = "app";

/// The transactional APIs whose negotiated versions the test checks.
const TXN_APIS: [ApiKey; 5] = [
    ApiKey::InitProducerId,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::TxnOffsetCommit,
];

/// A release with transactions and what the client should negotiate with it.
struct Release {
    /// The profile (`ClusterConfig::release`).
    name: &'static str,
    /// How errors name the release (`Kafka 2.0.0`).
    full_name: &'static str,
    /// The version of each of [`TXN_APIS`] the client should use.
    versions: [i16; 5],
}

const KAFKA_0_11: Release = Release {
    name: "0.11",
    full_name: "0.11.0",
    versions: [0, 0, 0, 0, 0],
};
const KAFKA_1: Release = Release {
    name: "1",
    full_name: "1.0.0",
    versions: [0, 0, 0, 0, 0],
};
const KAFKA_2: Release = Release {
    name: "2",
    full_name: "2.0.0",
    versions: [1, 1, 1, 1, 1],
};
const KAFKA_3: Release = Release {
    name: "3",
    full_name: "3.0.0",
    versions: [4, 3, 3, 3, 3],
};

/// The (api, version) of every transactional request the brokers saw.
type Seen = Rc<RefCell<Vec<(ApiKey, i16)>>>;

fn producer_sim(release: &Release) -> (ProducerSim, Seen) {
    let cluster = ClusterConfig {
        brokers: 3,
        default_partitions: 2,
        replication_factor: 1,
        ..ClusterConfig::release(release.name).expect("a release profile")
    };
    let config = ProducerConfig::builder()
        .bootstrap_servers("broker-0:9092")
        .set("transactional_id", &format!("tx-{}", release.name))
        .set("linger_ms", "5")
        .set("request_timeout_ms", "5000")
        .set("retry_backoff_ms", "100")
        .build()
        .expect("a valid producer config");
    let p = ProducerSim::new(cluster, &config, 22).expect("a producer");
    let seen: Seen = Rc::default();
    for api in TXN_APIS {
        let log = seen.clone();
        p.cluster().borrow_mut().set_hook(
            api,
            Box::new(move |header, _| {
                log.borrow_mut().push((api, header.request_api_version));
                HookAction::Pass
            }),
        );
    }
    (p, seen)
}

/// Sends `n` records valued `{prefix}-{partition}-{i}` to each of the topic's two partitions.
fn send(p: &mut ProducerSim, prefix: &str, n: usize) -> (Vec<String>, Vec<DeliveryFuture>) {
    let mut values = Vec::new();
    let mut futures = Vec::new();
    for partition in 0..2 {
        for i in 0..n {
            let value = format!("{prefix}-{partition}-{i}");
            futures.push(
                p.send(
                    ProducerRecord::new(TOPIC)
                        .partition(partition)
                        .value(Bytes::from(value.clone())),
                ),
            );
            values.push(value);
        }
    }
    (values, futures)
}

fn group_only() -> GroupMetadata {
    GroupMetadata {
        group_id: GROUP.into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
    }
}

fn offsets(offset: i64) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
    BTreeMap::from([(
        TopicPartition::new(TOPIC, 0),
        OffsetAndMetadata::new(offset),
    )])
}

fn consumer_config(isolation: &str, group: Option<&str>) -> ConsumerConfig {
    let mut b = ConsumerConfig::builder()
        .set("isolation_level", isolation)
        .set("enable_auto_commit", "false")
        .set("auto_offset_reset", "earliest")
        .set("request_timeout_ms", "5000")
        .set("retry_backoff_ms", "50");
    if let Some(g) = group {
        b = b.set("group_id", g);
    }
    b.build().expect("a valid consumer config")
}

/// Every record value of the topic's two partitions at `isolation`, read from the beginning
/// until the consumer's positions reach `ends` (the log ends: past the control records).
fn read_all(p: &mut ProducerSim, isolation: &str, ends: [i64; 2], seed: u64) -> Vec<String> {
    let now = p.sim().now();
    let config = consumer_config(isolation, None);
    let mut c = ConsumerSim::on_cluster(p.cluster().clone(), &config, seed, now).unwrap();
    let parts: Vec<TopicPartition> = (0..2).map(|i| TopicPartition::new(TOPIC, i)).collect();
    c.assign(parts.clone());
    c.seek_to_beginning(&parts).unwrap();
    let mut values = Vec::new();
    for _ in 0..200 {
        let records = c
            .poll(Duration::from_millis(200))
            .unwrap()
            .unwrap_or_else(|e| panic!("{isolation} poll: {e}"));
        for r in records.iter() {
            values.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"")).into_owned());
        }
        let done = parts
            .iter()
            .zip(ends)
            .all(|(tp, end)| c.position(tp).unwrap().unwrap() >= end);
        if done {
            return values;
        }
    }
    panic!("a {isolation} consumer did not reach the log ends {ends:?}; read {values:?}");
}

/// The offset group [`GROUP`] committed for partition 0, as a consumer of the group sees it.
fn committed_offset(p: &mut ProducerSim) -> Option<i64> {
    let now = p.sim().now();
    let config = consumer_config("read_committed", Some(GROUP));
    let mut c = ConsumerSim::on_cluster(p.cluster().clone(), &config, 31, now).unwrap();
    let tp = TopicPartition::new(TOPIC, 0);
    c.core().committed(
        OpId(1),
        BTreeSet::from([tp.clone()]),
        Duration::from_secs(10),
        now,
    );
    let mut found = None;
    let until = now + Duration::from_secs(30);
    c.run_until(|s| {
        for e in s.take_events() {
            if let ConsumerEvent::Committed {
                op: OpId(1),
                result,
            } = e
            {
                found = Some(result);
            }
        }
        found.is_some() || s.now() >= until
    })
    .unwrap();
    found
        .expect("the offset lookup completes")
        .unwrap_or_else(|e| panic!("offset lookup: {e}"))
        .get(&tp)
        .cloned()
        .flatten()
        .map(|o| o.offset)
}

/// Waits for every future; the outcomes.
fn outcomes(p: &mut ProducerSim, futures: &mut [DeliveryFuture]) -> Vec<Result<i64, ProduceError>> {
    p.run_for(Duration::from_millis(100)).unwrap();
    futures
        .iter_mut()
        .map(|f| {
            f.try_result()
                .expect("the record's outcome is known once its transaction ended")
                .map(|m| m.offset)
        })
        .collect()
}

/// One release's transactions cell.
fn transactions(release: &Release) {
    let name = release.name;
    let (mut p, seen) = producer_sim(release);
    p.init_transactions()
        .unwrap()
        .unwrap_or_else(|e| panic!("{name}: init_transactions: {e}"));

    // A transaction over two partitions with the group's offsets, committed.
    p.begin_transaction().unwrap();
    let (committed, mut futures) = send(&mut p, "committed", 3);
    p.send_offsets_to_transaction(offsets(3), group_only())
        .unwrap()
        .unwrap_or_else(|e| panic!("{name}: send_offsets_to_transaction: {e}"));
    p.commit_transaction()
        .unwrap()
        .unwrap_or_else(|e| panic!("{name}: commit_transaction: {e}"));
    for r in outcomes(&mut p, &mut futures) {
        r.unwrap_or_else(|e| panic!("{name}: a committed record failed: {e}"));
    }

    // A second transaction, aborted: its records and offsets never count.
    p.begin_transaction().unwrap();
    let (aborted, mut futures) = send(&mut p, "aborted", 2);
    p.send_offsets_to_transaction(offsets(7), group_only())
        .unwrap()
        .unwrap_or_else(|e| panic!("{name}: send_offsets_to_transaction: {e}"));
    p.flush(None).unwrap().unwrap();
    p.abort_transaction()
        .unwrap()
        .unwrap_or_else(|e| panic!("{name}: abort_transaction: {e}"));
    // Flushed before the abort: each was written (and then aborted).
    for r in outcomes(&mut p, &mut futures) {
        r.unwrap_or_else(|e| panic!("{name}: an aborted record's write failed: {e}"));
    }

    // The versions negotiated: the highest both sides know, nothing else.
    let seen = seen.borrow().clone();
    for (api, version) in TXN_APIS.iter().zip(release.versions) {
        let used: BTreeSet<i16> = seen
            .iter()
            .filter(|(a, _)| a == api)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(used, BTreeSet::from([version]), "{name}: {api:?} versions");
    }

    let ends = {
        let cluster = p.cluster().borrow();
        [0, 1].map(|i| {
            cluster
                .partition(TOPIC, i)
                .expect("the partition exists")
                .log_end_offset()
        })
    };
    let got = read_all(&mut p, "read_committed", ends, 41);
    assert_eq!(got, committed, "{name}: read_committed");
    let mut got = read_all(&mut p, "read_uncommitted", ends, 43);
    got.sort();
    let mut both: Vec<String> = committed.iter().chain(&aborted).cloned().collect();
    both.sort();
    assert_eq!(got, both, "{name}: read_uncommitted");
    assert_eq!(
        committed_offset(&mut p),
        Some(3),
        "{name}: the group's offset"
    );
}

#[test]
fn kafka_0_11_transactions() {
    transactions(&KAFKA_0_11);
}

#[test]
fn kafka_1_transactions() {
    transactions(&KAFKA_1);
}

#[test]
fn kafka_2_transactions() {
    transactions(&KAFKA_2);
}

#[test]
fn kafka_3_transactions() {
    transactions(&KAFKA_3);
}

/// Offsets sent with a consumer's full group metadata (generation and member id, KIP-447)
/// before 2.5: TxnOffsetCommit below v3 cannot carry it, and the producer fails as Java's
/// does (fatally: it must be closed), naming what the broker lacks and the release, instead
/// of an encoder's message. The group id alone works there (`transactions` above).
#[test]
fn group_metadata_before_2_5_fails_naming_the_release() {
    for release in [&KAFKA_0_11, &KAFKA_1, &KAFKA_2] {
        let name = release.name;
        let (mut p, _) = producer_sim(release);
        p.init_transactions().unwrap().unwrap();
        p.begin_transaction().unwrap();
        let (_, mut futures) = send(&mut p, "refused", 1);
        let full = GroupMetadata {
            group_id: GROUP.into(),
            generation_id: 1,
            member_id: "member-1".into(),
            group_instance_id: None,
        };
        let e = p
            .send_offsets_to_transaction(offsets(1), full)
            .unwrap()
            .expect_err("group metadata needs TxnOffsetCommit v3")
            .to_string();
        assert!(
            e.contains("needs TxnOffsetCommit v3, Kafka 2.5 or later")
                && e.contains(&format!("Kafka {}", release.full_name))
                && e.contains("group id alone"),
            "{name}: {e}"
        );
        // The producer cannot go on: the transaction's records fail, and so does the next call.
        for r in outcomes(&mut p, &mut futures) {
            assert!(
                r.is_err(),
                "{name}: a record of the failed transaction: {r:?}"
            );
        }
        assert!(
            p.begin_transaction().is_err(),
            "{name}: begin after the failure"
        );
    }
}

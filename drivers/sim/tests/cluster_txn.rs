//! The transaction coordinator at the frame level: InitProducerId with a transactional id
//! (epoch bumps, fencing), AddPartitionsToTxn (client and verify-only forms), transactional
//! produce validation, EndTxn markers as control batches, the last stable offset and the
//! aborted-transaction list of Fetch, TxnOffsetCommit visibility, the transaction timeout,
//! a coordinator move in the middle of a commit, DescribeTransactions and ListTransactions.

mod cluster_support;

use std::time::Duration;

use bytes::Bytes;
use cluster_support::Harness;
use kafkit_core::compression::Compression;
use kafkit_core::protocol::add_partitions_to_txn::request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::fetch::request::{FetchPartition, FetchTopic};
use kafkit_core::protocol::fetch::response::PartitionData;
use kafkit_core::protocol::offset_fetch::request::OffsetFetchRequestTopic;
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::txn_offset_commit::request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafkit_core::protocol::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, CreateTopicsRequest,
    DescribeTransactionsRequest, EndTxnRequest, ErrorCode, FetchRequest, InitProducerIdRequest,
    ListTransactionsRequest, OffsetFetchRequest, ProduceRequest, TxnOffsetCommitRequest,
};
use kafkit_core::records::{ControlRecord, RecordBatch, RecordBatchBuilder, RecordSet};
use kafkit_sim::ClusterConfig;

const TXN: &str = "txn-a";
const TOPIC: &str = "t";

fn config(brokers: usize) -> ClusterConfig {
    ClusterConfig {
        brokers,
        replication_factor: 1,
        ..Default::default()
    }
}

/// A harness with topic `t` of `partitions` partitions (replication factor 1).
fn setup(config: ClusterConfig, partitions: i32) -> Harness {
    let mut h = Harness::new(config);
    let r = h.call(
        0,
        99,
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: TOPIC.into(),
                num_partitions: partitions,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        },
        5,
    );
    assert_eq!(r.topics[0].error_code, 0);
    h
}

fn coordinator(h: &Harness, key: &str) -> i32 {
    let c = h.cluster.coordinator_for(key);
    assert!(c >= 0);
    c
}

/// InitProducerId for `TXN` at `version`: (error, producer id, epoch).
fn init(h: &mut Harness, timeout_ms: i32) -> (i16, i64, i16) {
    let c = coordinator(h, TXN);
    let r = h.call(
        c,
        1,
        InitProducerIdRequest {
            transactional_id: Some(TXN.into()),
            transaction_timeout_ms: timeout_ms,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
        4,
    );
    (r.error_code, r.producer_id, r.producer_epoch)
}

/// InitProducerId retried on CONCURRENT_TRANSACTIONS as clients do.
fn init_ok(h: &mut Harness, timeout_ms: i32) -> (i64, i16) {
    for _ in 0..5 {
        let (code, pid, epoch) = init(h, timeout_ms);
        if code == ErrorCode::CONCURRENT_TRANSACTIONS.code() {
            continue;
        }
        assert_eq!(code, 0, "InitProducerId");
        return (pid, epoch);
    }
    panic!("InitProducerId kept answering CONCURRENT_TRANSACTIONS");
}

/// AddPartitionsToTxn (client form) at `version`: the error of each partition.
fn add_partitions(h: &mut Harness, pid: i64, epoch: i16, parts: &[i32], version: i16) -> Vec<i16> {
    let c = coordinator(h, TXN);
    let r = h.call(
        c,
        1,
        AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: TXN.into(),
            v3_and_below_producer_id: pid,
            v3_and_below_producer_epoch: epoch,
            v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                name: TOPIC.into(),
                partitions: parts.to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        },
        version,
    );
    r.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect()
}

fn end_txn(h: &mut Harness, pid: i64, epoch: i16, commit: bool, version: i16) -> (i16, i64, i16) {
    let c = coordinator(h, TXN);
    let r = h.call(
        c,
        1,
        EndTxnRequest {
            transactional_id: TXN.into(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: commit,
            ..Default::default()
        },
        version,
    );
    (r.error_code, r.producer_id, r.producer_epoch)
}

fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None)
        .producer(pid, epoch, seq)
        .transactional(true);
    for i in 0..n {
        let v = format!("txn-{seq}-{i}");
        b.append(1_000 + i as i64, None, Some(v.as_bytes()), &[])
            .unwrap();
    }
    b.finish().unwrap()
}

/// Produces `records` to `t`-`partition` with `TXN` as transactional id (Produce v9): the
/// error and base offset.
fn produce(h: &mut Harness, partition: i32, records: Bytes) -> (i16, i64) {
    produce_at(h, partition, records, 9)
}

/// [`produce`] at `version` (v12: transaction protocol v2).
fn produce_at(h: &mut Harness, partition: i32, records: Bytes, version: i16) -> (i16, i64) {
    let leader = h.leader(TOPIC, partition);
    let r = h.call(
        leader,
        2,
        ProduceRequest {
            transactional_id: Some(TXN.into()),
            acks: -1,
            timeout_ms: 1_000,
            topic_data: vec![TopicProduceData {
                name: TOPIC.into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        version,
    );
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// A read_committed (or read_uncommitted) Fetch v11 of `t`-`partition` from `offset`.
fn fetch(h: &mut Harness, partition: i32, offset: i64, committed: bool) -> PartitionData {
    let leader = h.leader(TOPIC, partition);
    let mut f = h.call(
        leader,
        3,
        FetchRequest {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 1 << 20,
            isolation_level: i8::from(committed),
            topics: vec![FetchTopic {
                topic: TOPIC.into(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        11,
    );
    f.responses.remove(0).partitions.remove(0)
}

/// The control records of partition `p`: (offset, producer id, producer epoch, commit,
/// coordinator epoch).
fn markers(h: &Harness, partition: i32) -> Vec<(i64, i64, i16, bool, i32)> {
    let p = h.cluster.partition(TOPIC, partition).unwrap();
    let mut out = Vec::new();
    for b in p.batches().filter(|b| b.control) {
        let batch = RecordBatch::decode(b.data.clone(), &Default::default()).unwrap();
        assert!(batch.is_control() && batch.header().attributes.is_transactional());
        match batch.control_record().unwrap() {
            Some(ControlRecord::EndTxn {
                commit,
                coordinator_epoch,
            }) => out.push((
                b.base_offset,
                batch.header().producer_id,
                batch.header().producer_epoch,
                commit,
                coordinator_epoch,
            )),
            other => panic!("unexpected control record {other:?}"),
        }
    }
    out
}

/// Data records (offset, value) in fetched bytes, control batches skipped.
fn data_records(records: &Option<Bytes>) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let set = RecordSet::new(records.clone().unwrap_or_default(), Default::default());
    for batch in set {
        let batch = batch.unwrap();
        if batch.is_control() {
            continue;
        }
        for r in batch.records() {
            let r = r.unwrap();
            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            out.push((r.offset, v));
        }
    }
    out
}

fn describe(
    h: &mut Harness,
    broker: i32,
) -> kafkit_core::protocol::describe_transactions::response::TransactionState {
    let mut r = h.call(
        broker,
        4,
        DescribeTransactionsRequest {
            transactional_ids: vec![TXN.into()],
            ..Default::default()
        },
        0,
    );
    r.transaction_states.remove(0)
}

/// DescribeTransactions of `TXN` at its coordinator.
fn describe_at_coordinator(
    h: &mut Harness,
) -> kafkit_core::protocol::describe_transactions::response::TransactionState {
    let c = coordinator(h, TXN);
    describe(h, c)
}

#[test]
fn init_bumps_the_epoch_and_fences_the_previous_producer() {
    let mut h = setup(config(1), 2);
    let (pid, e0) = init_ok(&mut h, 60_000);
    assert_eq!(e0, 0);
    let (pid2, e1) = init_ok(&mut h, 60_000);
    assert_eq!((pid2, e1), (pid, 1), "same producer id, next epoch");
    // The fenced instance: PRODUCER_FENCED from the versions that know it.
    assert_eq!(
        add_partitions(&mut h, pid, e0, &[0], 3),
        vec![ErrorCode::PRODUCER_FENCED.code()]
    );
    assert_eq!(
        add_partitions(&mut h, pid, e0, &[0], 1),
        vec![ErrorCode::INVALID_PRODUCER_EPOCH.code()]
    );
    assert_eq!(
        end_txn(&mut h, pid, e0, true, 3).0,
        ErrorCode::PRODUCER_FENCED.code()
    );
    assert_eq!(
        end_txn(&mut h, pid, e0, true, 1).0,
        ErrorCode::INVALID_PRODUCER_EPOCH.code()
    );
    // Another producer id is not this transactional id's.
    assert_eq!(
        add_partitions(&mut h, pid + 7, e1, &[0], 3),
        vec![ErrorCode::INVALID_PRODUCER_ID_MAPPING.code()]
    );
    // Bad timeouts and the wrong broker.
    assert_eq!(
        init(&mut h, 0).0,
        ErrorCode::INVALID_TRANSACTION_TIMEOUT.code()
    );
    assert_eq!(
        init(&mut h, 900_001).0,
        ErrorCode::INVALID_TRANSACTION_TIMEOUT.code()
    );
}

#[test]
fn an_ongoing_transaction_is_aborted_when_a_new_instance_inits() {
    let mut h = setup(config(1), 1);
    let (pid, e0) = init_ok(&mut h, 60_000);
    assert_eq!(add_partitions(&mut h, pid, e0, &[0], 3), vec![0]);
    assert_eq!(produce(&mut h, 0, txn_batch(pid, e0, 0, 3)).0, 0);
    // The new instance gets CONCURRENT_TRANSACTIONS while the old transaction is aborted
    // with a bumped epoch, then an epoch above it.
    let (code, _, _) = init(&mut h, 60_000);
    assert_eq!(code, ErrorCode::CONCURRENT_TRANSACTIONS.code());
    let (_, e2) = init_ok(&mut h, 60_000);
    assert_eq!(e2, 2);
    assert_eq!(markers(&h, 0), vec![(3, pid, 1, false, 0)]);
    // The zombie's records are refused at the partition.
    let (code, _) = produce(&mut h, 0, txn_batch(pid, e0, 3, 1));
    assert_eq!(code, ErrorCode::INVALID_PRODUCER_EPOCH.code());
    let f = fetch(&mut h, 0, 0, true);
    assert_eq!(f.last_stable_offset, 4);
    assert!(data_records(&f.records).len() == 3);
    assert_eq!(f.aborted_transactions.as_ref().unwrap().len(), 1);
}

#[test]
fn commit_and_abort_write_markers_and_move_the_last_stable_offset() {
    let mut h = setup(config(1), 2);
    let (pid, epoch) = init_ok(&mut h, 60_000);
    assert_eq!(add_partitions(&mut h, pid, epoch, &[0, 1], 3), vec![0, 0]);
    assert_eq!(produce(&mut h, 0, txn_batch(pid, epoch, 0, 3)), (0, 0));
    assert_eq!(produce(&mut h, 1, txn_batch(pid, epoch, 0, 2)), (0, 0));
    // Open: read_committed sees nothing, read_uncommitted everything.
    let f = fetch(&mut h, 0, 0, true);
    assert_eq!((f.high_watermark, f.last_stable_offset), (3, 0));
    assert!(data_records(&f.records).is_empty());
    assert_eq!(data_records(&fetch(&mut h, 0, 0, false).records).len(), 3);
    let d = describe_at_coordinator(&mut h);
    assert_eq!(d.transaction_state, "Ongoing");
    assert_eq!(d.topics[0].partitions, vec![0, 1]);
    assert!(d.transaction_start_time_ms >= 0);

    assert_eq!(end_txn(&mut h, pid, epoch, true, 3).0, 0);
    assert_eq!(markers(&h, 0), vec![(3, pid, epoch, true, 0)]);
    assert_eq!(markers(&h, 1), vec![(2, pid, epoch, true, 0)]);
    let f = fetch(&mut h, 0, 0, true);
    assert_eq!((f.high_watermark, f.last_stable_offset), (4, 4));
    assert_eq!(data_records(&f.records).len(), 3);
    assert_eq!(f.aborted_transactions, Some(Vec::new()));
    assert_eq!(
        describe_at_coordinator(&mut h).transaction_state,
        "CompleteCommit"
    );
    // A retried commit succeeds; an abort of the committed transaction does not.
    assert_eq!(end_txn(&mut h, pid, epoch, true, 3).0, 0);
    assert_eq!(
        end_txn(&mut h, pid, epoch, false, 3).0,
        ErrorCode::INVALID_TXN_STATE.code()
    );

    // A second transaction, aborted: its records stay in the log, listed as aborted.
    assert_eq!(add_partitions(&mut h, pid, epoch, &[0], 3), vec![0]);
    assert_eq!(produce(&mut h, 0, txn_batch(pid, epoch, 3, 2)), (0, 4));
    assert_eq!(end_txn(&mut h, pid, epoch, false, 3).0, 0);
    assert_eq!(markers(&h, 0)[1], (6, pid, epoch, false, 0));
    let f = fetch(&mut h, 0, 0, true);
    assert_eq!(f.last_stable_offset, 7);
    let aborted = f.aborted_transactions.unwrap();
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].producer_id, aborted[0].first_offset), (pid, 4));
    // A read from after the aborted transaction's marker is not told of it; read_uncommitted
    // gets no list at all.
    assert_eq!(
        fetch(&mut h, 0, 7, true).aborted_transactions,
        Some(Vec::new())
    );
    assert_eq!(fetch(&mut h, 0, 0, false).aborted_transactions, None);
}

#[test]
fn a_partition_not_in_the_transaction_is_refused_under_protocol_v1() {
    let mut h = setup(config(1).with_api_versions(ApiKey::EndTxn, 0, 4), 2);
    let (pid, epoch) = init_ok(&mut h, 60_000);
    let (code, _) = produce(&mut h, 0, txn_batch(pid, epoch, 0, 1));
    assert_eq!(code, ErrorCode::INVALID_TXN_STATE.code());
    assert_eq!(add_partitions(&mut h, pid, epoch, &[0], 3), vec![0]);
    assert_eq!(produce(&mut h, 0, txn_batch(pid, epoch, 0, 1)).0, 0);
    // Partition 1 was not added.
    let (code, _) = produce(&mut h, 1, txn_batch(pid, epoch, 0, 1));
    assert_eq!(code, ErrorCode::INVALID_TXN_STATE.code());
    // Unknown partitions: nothing is added.
    assert_eq!(
        add_partitions(&mut h, pid, epoch, &[1, 9], 3),
        vec![
            ErrorCode::OPERATION_NOT_ATTEMPTED.code(),
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
        ]
    );
    // The broker-to-broker verify-only form (v4+).
    let c = coordinator(&h, TXN);
    let r = h.call(
        c,
        1,
        AddPartitionsToTxnRequest {
            transactions: vec![AddPartitionsToTxnTransaction {
                transactional_id: TXN.into(),
                producer_id: pid,
                producer_epoch: epoch,
                verify_only: true,
                topics: vec![AddPartitionsToTxnTopic {
                    name: TOPIC.into(),
                    partitions: vec![0, 1],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        5,
    );
    let codes: Vec<i16> = r.results_by_transaction[0].topic_results[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect();
    assert_eq!(codes, vec![0, ErrorCode::INVALID_TXN_STATE.code()]);
    // Verification added nothing.
    assert_eq!(describe(&mut h, c).topics[0].partitions, vec![0]);
}

#[test]
fn protocol_v2_adds_partitions_on_produce_and_bumps_the_epoch_per_transaction() {
    let mut h = setup(config(1).with_transaction_version(2), 2);
    let (pid, epoch) = init_ok(&mut h, 60_000);
    // No AddPartitionsToTxn: the Produce v12 registers the partition.
    assert_eq!(produce_at(&mut h, 1, txn_batch(pid, epoch, 0, 2), 12).0, 0);
    let c = coordinator(&h, TXN);
    let d = describe(&mut h, c);
    assert_eq!(
        (d.transaction_state.as_str(), d.topics[0].partitions.clone()),
        ("Ongoing", vec![1])
    );
    let (code, pid2, epoch2) = end_txn(&mut h, pid, epoch, true, 5);
    assert_eq!((code, pid2, epoch2), (0, pid, epoch + 1));
    // The markers carry the new epoch; a retry with the old one is answered the same.
    assert_eq!(markers(&h, 1), vec![(2, pid, epoch + 1, true, 0)]);
    assert_eq!(end_txn(&mut h, pid, epoch, true, 5), (0, pid, epoch + 1));
    // The next transaction runs at the new epoch from sequence 0.
    assert_eq!(
        produce_at(&mut h, 1, txn_batch(pid, epoch + 1, 0, 1), 12),
        (0, 3)
    );
    // The old epoch is fenced.
    let (code, _) = produce_at(&mut h, 0, txn_batch(pid, epoch, 2, 1), 12);
    assert_eq!(code, ErrorCode::INVALID_PRODUCER_EPOCH.code());
    // Below v12 the produce is verified, not registered (KIP-890 part 1), even with v2 on.
    let (code, _) = produce_at(&mut h, 0, txn_batch(pid, epoch + 1, 0, 1), 11);
    assert_eq!(code, ErrorCode::INVALID_TXN_STATE.code());
    assert_eq!(describe(&mut h, c).topics[0].partitions, vec![1]);
}

/// ApiVersions v3 of broker 0: (Produce max, TxnOffsetCommit max, EndTxn max, finalized
/// `transaction.version` levels).
fn advertised(h: &mut Harness) -> (i16, i16, i16, Vec<(String, i16, i16)>) {
    let r = h.call(
        0,
        7,
        kafkit_core::protocol::ApiVersionsRequest::default(),
        3,
    );
    let max = |api: ApiKey| {
        r.api_keys
            .iter()
            .find(|k| k.api_key == api.as_i16())
            .map_or(-1, |k| k.max_version)
    };
    let features = r
        .finalized_features
        .iter()
        .map(|f| (f.name.clone(), f.min_version_level, f.max_version_level))
        .collect();
    (
        max(ApiKey::Produce),
        max(ApiKey::TxnOffsetCommit),
        max(ApiKey::EndTxn),
        features,
    )
}

#[test]
fn transaction_version_2_is_advertised_only_when_configured() {
    let mut h = setup(config(1), 1);
    assert_eq!(advertised(&mut h), (11, 4, 5, vec![]));
    let mut h = setup(config(1).with_transaction_version(2), 1);
    assert_eq!(
        advertised(&mut h),
        (12, 5, 5, vec![("transaction.version".to_owned(), 2, 2)])
    );
    // Not offered, so not served: a Produce v12 without the feature closes the connection.
    let mut h = setup(config(1), 1);
    let (pid, epoch) = init_ok(&mut h, 60_000);
    let leader = h.leader(TOPIC, 0);
    let reply = h.send(
        leader,
        2,
        ProduceRequest {
            transactional_id: Some(TXN.into()),
            acks: -1,
            timeout_ms: 1_000,
            topic_data: vec![TopicProduceData {
                name: TOPIC.into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(txn_batch(pid, epoch, 0, 1)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        12,
    );
    assert!(reply.close);
}

#[test]
fn protocol_v2_txn_offset_commit_adds_the_group_and_verify_only_sees_produced_partitions() {
    let mut h = setup(config(1).with_transaction_version(2), 2);
    let group = "g-v2";
    let (pid, epoch) = init_ok(&mut h, 60_000);
    let gc = coordinator(&h, group);
    let commit_offsets = |h: &mut Harness, epoch: i16, offset: i64, version: i16| -> i16 {
        let r = h.call(
            gc,
            5,
            TxnOffsetCommitRequest {
                transactional_id: TXN.into(),
                group_id: group.into(),
                producer_id: pid,
                producer_epoch: epoch,
                generation_id: -1,
                member_id: String::new(),
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: TOPIC.into(),
                    partitions: vec![TxnOffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: offset,
                        committed_leader_epoch: -1,
                        committed_metadata: Some("m".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            version,
        );
        r.topics[0].partitions[0].error_code
    };
    // v4 still needs AddOffsetsToTxn; v5 adds the group itself.
    assert_eq!(
        commit_offsets(&mut h, epoch, 7, 4),
        ErrorCode::INVALID_TXN_STATE.code()
    );
    assert_eq!(commit_offsets(&mut h, epoch, 7, 5), 0);
    let d = describe_at_coordinator(&mut h);
    assert_eq!(d.transaction_state, "Ongoing");
    assert_eq!(produce_at(&mut h, 1, txn_batch(pid, epoch, 0, 1), 12).0, 0);
    // What a partition leader asks the coordinator before appending a produce below v12.
    let c = coordinator(&h, TXN);
    let r = h.call(
        c,
        1,
        AddPartitionsToTxnRequest {
            transactions: vec![AddPartitionsToTxnTransaction {
                transactional_id: TXN.into(),
                producer_id: pid,
                producer_epoch: epoch,
                verify_only: true,
                topics: vec![AddPartitionsToTxnTopic {
                    name: TOPIC.into(),
                    partitions: vec![0, 1],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        4,
    );
    let codes: Vec<i16> = r.results_by_transaction[0].topic_results[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect();
    assert_eq!(codes, vec![ErrorCode::INVALID_TXN_STATE.code(), 0]);
    let (code, pid2, epoch2) = end_txn(&mut h, pid, epoch, true, 5);
    assert_eq!((code, pid2, epoch2), (0, pid, epoch + 1));
    // The offsets committed with the transaction.
    let r = h.call(
        gc,
        6,
        OffsetFetchRequest {
            group_id: group.into(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: TOPIC.into(),
                partition_indexes: vec![0],
                ..Default::default()
            }]),
            require_stable: true,
            ..Default::default()
        },
        7,
    );
    assert_eq!(
        (
            r.topics[0].partitions[0].error_code,
            r.topics[0].partitions[0].committed_offset
        ),
        (0, 7)
    );
    // The old epoch cannot add the group to the next transaction.
    assert_eq!(
        commit_offsets(&mut h, epoch, 8, 5),
        ErrorCode::INVALID_PRODUCER_EPOCH.code()
    );
}

#[test]
fn protocol_v2_moves_to_a_new_producer_id_when_the_epoch_is_exhausted() {
    let mut h = setup(config(1).with_transaction_version(2), 1);
    let (pid, mut epoch) = init_ok(&mut h, 60_000);
    // Every EndTxn v5 bumps the epoch; an empty abort is the cheapest way there.
    while epoch < i16::MAX - 1 {
        let (code, next_pid, next_epoch) = end_txn(&mut h, pid, epoch, false, 5);
        assert_eq!((code, next_pid, next_epoch), (0, pid, epoch + 1));
        epoch = next_epoch;
    }
    assert_eq!(produce_at(&mut h, 0, txn_batch(pid, epoch, 0, 1), 12).0, 0);
    let (code, new_pid, new_epoch) = end_txn(&mut h, pid, epoch, true, 5);
    assert_eq!(code, 0);
    assert_ne!(new_pid, pid, "a fresh producer id once the epoch is spent");
    assert_eq!(new_epoch, 0);
    // The commit's markers carry the old id (whose records they close) at its last epoch.
    assert_eq!(markers(&h, 0), vec![(1, pid, i16::MAX, true, 0)]);
    // A retry of that EndTxn names the old id and is answered the same.
    assert_eq!(end_txn(&mut h, pid, epoch, true, 5), (0, new_pid, 0));
    assert_eq!(
        produce_at(&mut h, 0, txn_batch(new_pid, 0, 0, 1), 12),
        (0, 2)
    );
    // The old id is gone.
    assert_eq!(
        produce_at(&mut h, 0, txn_batch(pid, epoch, 1, 1), 12).0,
        ErrorCode::INVALID_PRODUCER_ID_MAPPING.code()
    );
}

#[test]
fn transactional_offsets_are_visible_only_after_commit() {
    let mut h = setup(config(1), 1);
    let group = "g-txn";
    let (pid, epoch) = init_ok(&mut h, 60_000);
    let c = coordinator(&h, TXN);
    let gc = coordinator(&h, group);
    let commit_offsets = |h: &mut Harness, offset: i64| -> i16 {
        let r = h.call(
            gc,
            5,
            TxnOffsetCommitRequest {
                transactional_id: TXN.into(),
                group_id: group.into(),
                producer_id: pid,
                producer_epoch: epoch,
                generation_id: -1,
                member_id: String::new(),
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: TOPIC.into(),
                    partitions: vec![TxnOffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: offset,
                        committed_leader_epoch: -1,
                        committed_metadata: Some("m".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            3,
        );
        r.topics[0].partitions[0].error_code
    };
    // Without AddOffsetsToTxn the group is not in the transaction.
    assert_eq!(
        commit_offsets(&mut h, 5),
        ErrorCode::INVALID_TXN_STATE.code()
    );
    let r = h.call(
        c,
        1,
        AddOffsetsToTxnRequest {
            transactional_id: TXN.into(),
            producer_id: pid,
            producer_epoch: epoch,
            group_id: group.into(),
            ..Default::default()
        },
        3,
    );
    assert_eq!(r.error_code, 0);
    assert_eq!(commit_offsets(&mut h, 5), 0);
    let fetch_offset = |h: &mut Harness, stable: bool| -> (i16, i64) {
        let r = h.call(
            gc,
            6,
            OffsetFetchRequest {
                group_id: group.into(),
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: TOPIC.into(),
                    partition_indexes: vec![0],
                    ..Default::default()
                }]),
                require_stable: stable,
                ..Default::default()
            },
            7,
        );
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.committed_offset)
    };
    assert_eq!(fetch_offset(&mut h, false), (0, -1));
    assert_eq!(
        fetch_offset(&mut h, true),
        (ErrorCode::UNSTABLE_OFFSET_COMMIT.code(), -1)
    );
    assert_eq!(end_txn(&mut h, pid, epoch, true, 3).0, 0);
    assert_eq!(fetch_offset(&mut h, true), (0, 5));
    // An aborted transaction's offsets are dropped.
    let r = h.call(
        c,
        1,
        AddOffsetsToTxnRequest {
            transactional_id: TXN.into(),
            producer_id: pid,
            producer_epoch: epoch,
            group_id: group.into(),
            ..Default::default()
        },
        3,
    );
    assert_eq!(r.error_code, 0);
    assert_eq!(commit_offsets(&mut h, 9), 0);
    assert_eq!(end_txn(&mut h, pid, epoch, false, 3).0, 0);
    assert_eq!(fetch_offset(&mut h, true), (0, 5));
}

#[test]
fn a_transaction_left_open_is_aborted_at_its_timeout() {
    let mut h = setup(config(1), 1);
    let (pid, epoch) = init_ok(&mut h, 1_000);
    assert_eq!(add_partitions(&mut h, pid, epoch, &[0], 3), vec![0]);
    assert_eq!(produce(&mut h, 0, txn_batch(pid, epoch, 0, 2)).0, 0);
    h.advance(Duration::from_millis(999));
    assert_eq!(describe_at_coordinator(&mut h).transaction_state, "Ongoing");
    assert!(h
        .cluster
        .poll_timeout()
        .is_some_and(|t| t <= h.now + Duration::from_millis(1)));
    h.advance(Duration::from_millis(1));
    let d = describe_at_coordinator(&mut h);
    assert_eq!(d.transaction_state, "CompleteAbort");
    assert_eq!(
        d.producer_epoch,
        epoch + 1,
        "the timeout fences the producer"
    );
    assert_eq!(markers(&h, 0), vec![(2, pid, epoch + 1, false, 0)]);
    assert_eq!(
        end_txn(&mut h, pid, epoch, true, 3).0,
        ErrorCode::PRODUCER_FENCED.code()
    );
    let f = fetch(&mut h, 0, 0, true);
    assert_eq!(f.last_stable_offset, 3);
    assert_eq!(f.aborted_transactions.unwrap()[0].first_offset, 0);
}

#[test]
fn a_new_coordinator_finishes_a_commit_in_flight() {
    let mut h = setup(config(3), 6);
    let (pid, epoch) = init_ok(&mut h, 60_000);
    let c0 = coordinator(&h, TXN);
    // A partition led by another broker than the coordinator.
    let part = (0..6).find(|&p| h.leader(TOPIC, p) != c0).unwrap();
    let leader = h.leader(TOPIC, part);
    assert_eq!(add_partitions(&mut h, pid, epoch, &[part], 3), vec![0]);
    assert_eq!(produce(&mut h, part, txn_batch(pid, epoch, 0, 2)).0, 0);
    // The partition's only replica goes down: the commit is decided, its marker waits.
    h.cluster.crash_broker(leader, h.now);
    let c1 = coordinator(&h, TXN);
    assert_eq!(end_txn(&mut h, pid, epoch, true, 3).0, 0);
    assert_eq!(describe(&mut h, c1).transaction_state, "PrepareCommit");
    assert_eq!(
        init(&mut h, 60_000).0,
        ErrorCode::CONCURRENT_TRANSACTIONS.code()
    );
    // The coordinator goes down too: another broker takes the transactional id over.
    h.cluster.crash_broker(c1, h.now);
    let c2 = coordinator(&h, TXN);
    assert!(c2 != c1 && c2 != leader);
    assert_eq!(describe(&mut h, c2).transaction_state, "PrepareCommit");
    // The old coordinator is not asked any more.
    h.cluster.restart_broker(leader, h.now);
    h.advance(Duration::from_millis(1));
    let c3 = coordinator(&h, TXN);
    let d = describe(&mut h, c3);
    assert_eq!(d.transaction_state, "CompleteCommit");
    let m = markers(&h, part);
    assert_eq!(m.len(), 1);
    let (offset, mpid, mepoch, commit, coordinator_epoch) = m[0];
    assert_eq!((offset, mpid, mepoch, commit), (2, pid, epoch, true));
    assert!(
        coordinator_epoch >= 1,
        "written by a later coordinator: {coordinator_epoch}"
    );
    let f = fetch(&mut h, part, 0, true);
    assert_eq!(f.last_stable_offset, 3);
    assert_eq!(data_records(&f.records).len(), 2);
}

#[test]
fn list_transactions_filters_by_state_and_producer() {
    let mut h = setup(config(1), 1);
    let (pid, epoch) = init_ok(&mut h, 60_000);
    assert_eq!(add_partitions(&mut h, pid, epoch, &[0], 3), vec![0]);
    let list = |h: &mut Harness, states: &[&str], pids: &[i64]| {
        let r = h.call(
            0,
            7,
            ListTransactionsRequest {
                state_filters: states.iter().map(|s| (*s).to_owned()).collect(),
                producer_id_filters: pids.to_vec(),
                duration_filter: -1,
                ..Default::default()
            },
            1,
        );
        r
    };
    let all = list(&mut h, &[], &[]);
    assert_eq!(all.transaction_states.len(), 1);
    assert_eq!(all.transaction_states[0].transactional_id, TXN);
    assert_eq!(all.transaction_states[0].transaction_state, "Ongoing");
    assert!(list(&mut h, &["CompleteCommit"], &[])
        .transaction_states
        .is_empty());
    assert_eq!(
        list(&mut h, &["Ongoing"], &[pid]).transaction_states.len(),
        1
    );
    assert!(list(&mut h, &[], &[pid + 1]).transaction_states.is_empty());
    assert_eq!(
        list(&mut h, &["Bogus"], &[]).unknown_state_filters,
        vec!["Bogus"]
    );
    let r = h.call(
        0,
        4,
        DescribeTransactionsRequest {
            transactional_ids: vec!["nope".into()],
            ..Default::default()
        },
        0,
    );
    assert_eq!(
        r.transaction_states[0].error_code,
        ErrorCode::TRANSACTIONAL_ID_NOT_FOUND.code()
    );
}

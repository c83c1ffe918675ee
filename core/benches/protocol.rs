//! Micro-benchmarks of the Produce and Fetch messages (body only: no request or response
//! header, no size prefix), each group beside a memcpy of the encoded message's bytes in the
//! same run, and murmur2 (the default partitioner's hash) over typical key sizes.
//!
//! - `produce_8x16KiB`: a ProduceRequest v9 (flexible) of one topic and 8 partitions, each
//!   carrying one uncompressed batch of 150 records with 100-byte values (16,511 bytes, about
//!   Kafka's default `batch.size`). Encode writes into a preallocated `Vec`; decode borrows
//!   the record sets from the input (no copy).
//! - `fetch_8x16KiB`: a FetchResponse v12 (flexible) with the same 8 record sets.
//! - `small_100p`: a FetchRequest v12 and a ProduceResponse v9 over 100 partitions: messages
//!   with no record bytes, where per-field work is everything.
//!
//! Run: `cargo bench -p kafkit-core --bench protocol`.

mod common;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafkit_core::codec::Reader;
use kafkit_core::compression::Compression;
use kafkit_core::producer::murmur2;
use kafkit_core::protocol::fetch::request::{FetchPartition, FetchTopic};
use kafkit_core::protocol::fetch::response::{FetchableTopicResponse, PartitionData};
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::produce::response::{PartitionProduceResponse, TopicProduceResponse};
use kafkit_core::protocol::{
    FetchRequest, FetchResponse, Message, ProduceRequest, ProduceResponse,
};

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;
const TOPIC: &str = "bench-topic-events";

/// An uncompressed batch of 150 records with 100-byte values.
fn batch() -> Bytes {
    let values = common::values(150, 100);
    common::builder(Compression::None, &values)
        .finish()
        .unwrap()
}

fn produce_request(batch: &Bytes) -> ProduceRequest {
    ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: TOPIC.into(),
            partition_data: (0..8)
                .map(|p| PartitionProduceData {
                    index: p,
                    records: Some(batch.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fetch_response(batch: &Bytes) -> FetchResponse {
    FetchResponse {
        session_id: 7,
        responses: vec![FetchableTopicResponse {
            topic: TOPIC.into(),
            partitions: (0..8)
                .map(|p| PartitionData {
                    partition_index: p,
                    high_watermark: 1_000_000,
                    last_stable_offset: 1_000_000,
                    log_start_offset: 0,
                    aborted_transactions: None,
                    records: Some(batch.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fetch_request() -> FetchRequest {
    FetchRequest {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 52_428_800,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: TOPIC.into(),
            partitions: (0..100)
                .map(|p| FetchPartition {
                    partition: p,
                    current_leader_epoch: 3,
                    fetch_offset: 1_000_000 + p as i64 * 17,
                    log_start_offset: -1,
                    partition_max_bytes: 1_048_576,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn produce_response() -> ProduceResponse {
    ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: TOPIC.into(),
            partition_responses: (0..100)
                .map(|p| PartitionProduceResponse {
                    index: p,
                    base_offset: 1_000_000 + p as i64 * 150,
                    log_start_offset: 0,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// memcpy, encode and decode rows of one message in a group of its own.
fn bench_message<M: Message>(c: &mut Criterion, group: &str, name: &str, msg: &M, version: i16) {
    let encoded = Bytes::from(msg.to_vec(version).unwrap());
    assert_eq!(&M::decode_exact(encoded.clone(), version).unwrap(), msg);
    eprintln!("{group}/{name}: {} bytes", encoded.len());
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    common::bench_memcpy(&mut g, BenchmarkId::new("memcpy", name), &encoded);
    let mut out = Vec::with_capacity(encoded.len());
    g.bench_function(BenchmarkId::new("encode", name), |b| {
        b.iter(|| {
            out.clear();
            black_box(msg).encode(&mut out, version).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function(BenchmarkId::new("decode", name), |b| {
        b.iter(|| {
            let mut r = Reader::new(black_box(&encoded).clone());
            black_box(M::decode(&mut r, version).unwrap())
        })
    });
    g.finish();
}

fn bench_protocol(c: &mut Criterion) {
    let batch = batch();
    bench_message(
        c,
        "produce_8x16KiB",
        "ProduceRequest_v9",
        &produce_request(&batch),
        PRODUCE_VERSION,
    );
    bench_message(
        c,
        "fetch_8x16KiB",
        "FetchResponse_v12",
        &fetch_response(&batch),
        FETCH_VERSION,
    );
    bench_message(
        c,
        "small_100p",
        "FetchRequest_v12",
        &fetch_request(),
        FETCH_VERSION,
    );
    bench_message(
        c,
        "small_100p",
        "ProduceResponse_v9",
        &produce_response(),
        PRODUCE_VERSION,
    );
}

/// murmur2 over keys of typical sizes: an 8-byte id, a 16-byte binary UUID, a 36-byte UUID
/// string and a 100-byte composite key.
fn bench_murmur2(c: &mut Criterion) {
    let mut g = c.benchmark_group("murmur2");
    for len in [8usize, 16, 36, 100] {
        let key: Vec<u8> = (0..len).map(|i| b'a' + (i * 7 % 26) as u8).collect();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::from_parameter(len), &key, |b, key| {
            b.iter(|| black_box(murmur2(black_box(key))))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_protocol, bench_murmur2
}
criterion_main!(benches);

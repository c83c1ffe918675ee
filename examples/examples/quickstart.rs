//! The README's main command: `cargo run --release --example quickstart`.
//!
//! It starts kafkit's development broker (a 3-broker in-memory cluster on localhost) unless
//! `KAFKA_BOOTSTRAP` names a cluster, then:
//! 1. probes the broker (version guess) and reads the cluster's metadata;
//! 2. creates a topic and writes 100,000 records of 100 bytes to it in batches of 1,000, with
//!    acks=all, through the low-level client (one Produce request per batch to the
//!    partition's leader), and checks every partition's end offset;
//! 3. encodes and decodes record batches with every codec and prints sizes and speed.
//!
//! The high-level producer and a consumer group of three replace step 2 as those clients land.

use std::collections::BTreeMap;
use std::time::Instant;

use kafkit_blocking::LowLevelClient;
use kafkit_core::compression::Compression;
use kafkit_core::config::CommonConfig;
use kafkit_core::network::Target;
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::list_offsets::request::{ListOffsetsPartition, ListOffsetsTopic};
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    CreateTopicsRequest, ErrorCode, ListOffsetsRequest, ProduceRequest, ResponseBody,
};
use kafkit_core::records::{DecodeOptions, Header, RecordBatch, RecordBatchBuilder};
use kafkit_sim::{DevBroker, DevBrokerConfig};

const TOPIC: &str = "quickstart";
const PARTITIONS: i32 = 6;
const RECORDS: usize = 100_000;
const BATCH: usize = 1000;

fn main() {
    println!("kafkit quickstart\n");
    let (bootstrap, _broker) = match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => {
            println!("cluster: {b} (from KAFKA_BOOTSTRAP)");
            (b, None)
        }
        _ => {
            let broker = DevBroker::start(DevBrokerConfig::new(3).port(0))
                .unwrap_or_else(|e| fail(&format!("cannot start the development broker: {e}")));
            let b = broker.bootstrap();
            println!("cluster: kafkit's development broker, 3 brokers at {b}");
            (b, Some(broker))
        }
    };
    let client = connect(&bootstrap);
    produce(&client);
    println!();
    codec_round_trips();
}

fn fail(message: &str) -> ! {
    eprintln!("quickstart: {message}");
    std::process::exit(1);
}

fn connect(bootstrap: &str) -> LowLevelClient {
    let mut config = CommonConfig::default();
    config
        .set("bootstrap_servers", bootstrap)
        .unwrap_or_else(|e| fail(&format!("KAFKA_BOOTSTRAP: {e}")));
    let client = LowLevelClient::start(&config).unwrap_or_else(|e| fail(&e.to_string()));
    let (node, version, table) = client
        .check_version()
        .unwrap_or_else(|e| fail(&e.to_string()));
    println!(
        "node {node} looks like Kafka {version} ({} APIs)",
        table.iter().count()
    );
    let view = client
        .metadata(None)
        .unwrap_or_else(|e| fail(&e.to_string()));
    println!(
        "{} brokers, controller {}, {} topics",
        view.brokers.len(),
        view.controller,
        view.topics.len()
    );
    client
}

fn produce(client: &LowLevelClient) {
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
    let resp = client
        .send(Target::Controller, create, None)
        .unwrap_or_else(|e| fail(&format!("create topic: {e}")));
    if let ResponseBody::CreateTopics(r) = resp.body {
        for t in r.topics {
            let code = ErrorCode(t.error_code);
            if !code.is_ok() && code != ErrorCode::TOPIC_ALREADY_EXISTS {
                fail(&format!("create topic {}: {code}", t.name));
            }
        }
    }
    let value = [b'x'; 100];
    let headers = [Header::new("source", "quickstart")];
    let start = Instant::now();
    let mut written: BTreeMap<i32, usize> = BTreeMap::new();
    for (n, first) in (0..RECORDS).step_by(BATCH).enumerate() {
        let partition = n as i32 % PARTITIONS;
        let mut batch = RecordBatchBuilder::with_capacity(Compression::Lz4, BATCH * 130);
        for i in first..first + BATCH {
            let key = (i as u64).to_be_bytes();
            batch
                .append(1_700_000_000_000, Some(&key), Some(&value), &headers)
                .expect("append");
        }
        let request = ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: TOPIC.into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(batch.finish().expect("batch")),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let target = Target::Leader {
            topic: TOPIC.into(),
            partition,
        };
        let resp = client
            .send(target, request, None)
            .unwrap_or_else(|e| fail(&format!("produce: {e}")));
        if let ResponseBody::Produce(r) = resp.body {
            for p in r.responses.iter().flat_map(|t| &t.partition_responses) {
                let code = ErrorCode(p.error_code);
                if !code.is_ok() {
                    fail(&format!("produce to partition {}: {code}", p.index));
                }
            }
        }
        *written.entry(partition).or_default() += BATCH;
        if n % 10 == 9 {
            print!("\rproduced {:>7} / {RECORDS} records", (n + 1) * BATCH);
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
        }
    }
    let took = start.elapsed();
    println!(
        "\rproduced {RECORDS} records of {} B to {PARTITIONS} partitions (lz4, acks=all) in {:.2?}: {:.0} records/s",
        value.len(),
        took,
        RECORDS as f64 / took.as_secs_f64()
    );
    let mut total = 0;
    for partition in 0..PARTITIONS {
        let request = ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: TOPIC.into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    current_leader_epoch: -1,
                    timestamp: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let target = Target::Leader {
            topic: TOPIC.into(),
            partition,
        };
        let resp = client
            .send(target, request, None)
            .unwrap_or_else(|e| fail(&format!("list offsets: {e}")));
        if let ResponseBody::ListOffsets(r) = resp.body {
            for p in r.topics.iter().flat_map(|t| &t.partitions) {
                total += p.offset;
            }
        }
    }
    println!("end offsets over all partitions: {total} (this run wrote {RECORDS})");
}

fn codec_round_trips() {
    const ROUNDS: usize = 200;
    let value: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
    let headers = [Header::new("source", "quickstart")];
    let payload = BATCH * value.len();
    println!(
        "record batches of {BATCH} records of {} B, {ROUNDS} per codec",
        value.len()
    );
    println!(
        "{:<8} {:>10} {:>8} {:>14} {:>14}",
        "codec", "batch B", "ratio", "encode MB/s", "decode MB/s"
    );
    for codec in Compression::ALL {
        let encode = || {
            let mut b = RecordBatchBuilder::new(codec);
            for i in 0..BATCH {
                let key = (i as u32).to_be_bytes();
                b.append(
                    1_700_000_000_000 + i as i64,
                    Some(&key),
                    Some(&value),
                    &headers,
                )
                .expect("append");
            }
            b.finish().expect("finish")
        };
        let start = Instant::now();
        let mut batch = encode();
        for _ in 1..ROUNDS {
            batch = encode();
        }
        let enc = start.elapsed();
        let opts = DecodeOptions::default();
        let start = Instant::now();
        let mut decoded = 0;
        for _ in 0..ROUNDS {
            let b = RecordBatch::decode(batch.clone(), &opts).expect("decode");
            decoded = b.decode_records().expect("records").len();
        }
        let dec = start.elapsed();
        assert_eq!(decoded, BATCH, "every record comes back");
        let mb = (payload * ROUNDS) as f64 / 1e6;
        println!(
            "{:<8} {:>10} {:>8.2} {:>14.0} {:>14.0}",
            codec.name(),
            batch.len(),
            batch.len() as f64 / payload as f64,
            mb / enc.as_secs_f64(),
            mb / dec.as_secs_f64()
        );
    }
}

//! The README's main command: `cargo run --release --example quickstart`.
//!
//! What it shows today, while the producer and consumer are being built: record batches of a
//! thousand records encoded and decoded with every codec (sizes and speed), and, when
//! `KAFKA_BOOTSTRAP` names a cluster, the broker's version and the cluster's metadata through
//! the blocking driver. It grows into produce-and-consume once those clients land.

use std::time::Instant;

use kafkit_core::compression::Compression;
use kafkit_core::config::CommonConfig;
use kafkit_core::records::{DecodeOptions, Header, RecordBatch, RecordBatchBuilder};

const RECORDS: usize = 1000;
const ROUNDS: usize = 200;

fn main() {
    println!("kafkit quickstart\n");
    codec_round_trips();
    match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(bootstrap) if !bootstrap.trim().is_empty() => probe(&bootstrap),
        _ => println!(
            "\nSet KAFKA_BOOTSTRAP=host:port to also probe a cluster (the embedded development \
             broker arrives with the simulated cluster)."
        ),
    }
}

fn codec_round_trips() {
    let value: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
    let headers = [Header::new("source", "quickstart")];
    let payload = RECORDS * value.len();
    println!(
        "{RECORDS} records of {} bytes per batch, {ROUNDS} batches per codec",
        value.len()
    );
    println!(
        "{:<8} {:>10} {:>8} {:>14} {:>14}",
        "codec", "batch B", "ratio", "encode MB/s", "decode MB/s"
    );
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let encode = || {
            let mut b = RecordBatchBuilder::new(codec);
            for i in 0..RECORDS {
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
        assert_eq!(decoded, RECORDS, "every record comes back");
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

fn probe(bootstrap: &str) {
    let mut config = CommonConfig::default();
    if let Err(e) = config.set("bootstrap_servers", bootstrap) {
        eprintln!("KAFKA_BOOTSTRAP: {e}");
        std::process::exit(1);
    }
    println!("\nProbing {bootstrap}");
    let client = match kafkit_blocking::LowLevelClient::start(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start the client: {e}");
            std::process::exit(1);
        }
    };
    match client.check_version() {
        Ok((node, version, _)) => println!("node {node} looks like Kafka {version}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    match client.metadata(None) {
        Ok(view) => {
            println!(
                "{} brokers, controller {}, {} topics",
                view.brokers.len(),
                view.controller,
                view.topics.len()
            );
            for t in view.topics.values() {
                println!("  {} ({} partitions)", t.name, t.partitions.len());
            }
        }
        Err(e) => eprintln!("metadata: {e}"),
    }
}

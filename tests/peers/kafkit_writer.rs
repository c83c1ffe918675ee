//! Writes the records the third-party clients of `.ci/peers` read back byte for byte, and
//! prints what it wrote (one JSON document on stdout, the expectations of
//! `tests/peers/*.py` and `*.js`).
//!
//! `cargo run -p kafkit-tests --example peers_kafkit_writer -- BOOTSTRAP TOPIC CODEC`
//!
//! The topic gets 3 partitions. The records cover what a client can get wrong: binary keys,
//! values and headers, a null key with an empty value, an empty key with a null value, a
//! repeated header name, an empty header value; keyed records are placed by kafkit's
//! partitioner, which the peers check against their own murmur2.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use kafkit_core::admin::NewTopic;
use kafkit_core::config::{AdminConfig, ProducerConfig};
use kafkit_core::producer::ProducerRecord;

/// Records `(key, value, headers)`; `None` is a Kafka null.
type Spec = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Vec<u8>)>);

fn records() -> Vec<Spec> {
    let mut out: Vec<Spec> = (0..30)
        .map(|i| {
            let mut value = format!("value-{i}-").into_bytes();
            value.extend_from_slice(&[0x00, 0xff, 0x7f, 0x80]);
            (
                Some(format!("key-{i}").into_bytes()),
                Some(value),
                vec![
                    ("n".to_owned(), i.to_string().into_bytes()),
                    ("empty".to_owned(), Vec::new()),
                    ("bin".to_owned(), vec![0x00, 0x80, 0xff]),
                ],
            )
        })
        .collect();
    out.push((None, Some(Vec::new()), Vec::new()));
    out.push((Some(Vec::new()), None, Vec::new()));
    out.push((
        Some(vec![0xde, 0xad, 0xbe, 0xef]),
        Some(vec![0x00; 3]),
        vec![
            ("h".to_owned(), b"1".to_vec()),
            ("h".to_owned(), b"2".to_vec()),
        ],
    ));
    // A large value, so that compressed batches span more than one block of the codecs.
    out.push((
        Some(b"large".to_vec()),
        Some((0..200_000u32).map(|i| (i % 251) as u8).collect()),
        Vec::new(),
    ));
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn json_bytes(b: &Option<Vec<u8>>) -> String {
    b.as_ref()
        .map_or_else(|| "null".to_owned(), |b| format!("\"{}\"", hex(b)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, codec] = args.as_slice() else {
        return Err("usage: peers_kafkit_writer BOOTSTRAP TOPIC CODEC".into());
    };
    let admin = kafkit_blocking::Admin::start(
        &AdminConfig::builder()
            .set("bootstrap_servers", bootstrap)
            .build()?,
    )?;
    for (t, r) in admin.create_topics(vec![NewTopic::new(topic.as_str(), 3, 1)], false)? {
        r.map_err(|e| format!("creating {t}: {e}"))?;
    }
    let producer = kafkit_blocking::Producer::start(
        &ProducerConfig::builder()
            .set("bootstrap_servers", bootstrap)
            .set("compression_type", codec)
            .set("linger_ms", "20")
            .build()?,
    )?;
    let specs = records();
    let mut pending = Vec::new();
    for (key, value, headers) in &specs {
        let mut r = ProducerRecord::new(topic.as_str());
        if let Some(k) = key {
            r = r.key(Bytes::from(k.clone()));
        }
        if let Some(v) = value {
            r = r.value(Bytes::from(v.clone()));
        }
        for (name, v) in headers {
            r = r.header(name.clone(), Bytes::from(v.clone()));
        }
        pending.push(producer.enqueue(r)?);
    }
    let mut out = String::from("[\n");
    for (i, (f, (key, value, headers))) in pending.into_iter().zip(&specs).enumerate() {
        let m = futures_executor::block_on(f)?;
        let headers: Vec<String> = headers
            .iter()
            .map(|(n, v)| format!("[\"{n}\", \"{}\"]", hex(v)))
            .collect();
        let _ = writeln!(
            out,
            "  {{\"partition\": {}, \"offset\": {}, \"key\": {}, \"value\": {}, \"headers\": [{}]}}{}",
            m.partition,
            m.offset,
            json_bytes(key),
            json_bytes(value),
            headers.join(", "),
            if i + 1 < specs.len() { "," } else { "" }
        );
    }
    out.push(']');
    producer.close(Some(Duration::from_secs(30)))?;
    println!("{out}");
    Ok(())
}

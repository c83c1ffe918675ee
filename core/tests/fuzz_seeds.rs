//! The fuzz targets' seed corpora: every committed seed must run through its target without
//! a panic (so the corpus doubles as a regression suite), and `KAFKIT_WRITE_FUZZ_SEEDS=1
//! cargo test -p kafkit-core --features fuzzing --test fuzz_seeds -- --ignored` rewrites the
//! seeds from our own encoders.
#![cfg(feature = "fuzzing")]

use std::path::PathBuf;

use bytes::{BufMut, BytesMut};
use kafkit_core::compression::Compression;
use kafkit_core::fuzzing;
use kafkit_core::protocol::testing::Rng;
use kafkit_core::protocol::{
    self, ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, Message, RequestBody,
    RequestHeader, ResponseBody,
};
use kafkit_core::records::{Header, LegacyMessageSetBuilder, RecordBatchBuilder};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 4] = [
    ("response_frame", fuzzing::response_frame),
    ("request_frame", fuzzing::request_frame),
    ("record_set", fuzzing::record_set),
    ("consumer_protocol", fuzzing::consumer_protocol),
];

/// APIs a client meets most, seeded at their lowest, a middle and their highest version.
const SEEDED_APIS: [ApiKey; 12] = [
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::SaslAuthenticate,
    ApiKey::CreateTopics,
];

fn versions(range: (i16, i16)) -> [i16; 3] {
    [range.0, (range.0 + range.1) / 2, range.1]
}

fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rng = Rng::new(0x5eed);
    for api in SEEDED_APIS {
        let (rmin, _) = api.response_versions();
        for v in versions(api.response_versions()) {
            let mut frame = BytesMut::new();
            frame.put_i16(api.as_i16());
            frame.put_i16(v - rmin);
            frame.put_i32(7);
            if protocol::response_header_version(api, v) >= 1 {
                frame.put_u8(0);
            }
            ResponseBody::random(api, v, &mut rng)
                .encode(&mut frame, v)
                .unwrap();
            out.push((
                "response_frame",
                format!("{}-v{v}", api.name()),
                frame.to_vec(),
            ));
        }
        for v in versions(api.request_versions()) {
            let header = RequestHeader {
                request_api_key: api.as_i16(),
                request_api_version: v,
                correlation_id: 7,
                client_id: Some("kafkit-fuzz".into()),
                ..Default::default()
            };
            let mut frame = BytesMut::new();
            header
                .encode(&mut frame, protocol::request_header_version(api, v))
                .unwrap();
            RequestBody::random(api, v, &mut rng)
                .encode(&mut frame, v)
                .unwrap();
            out.push((
                "request_frame",
                format!("{}-v{v}", api.name()),
                frame.to_vec(),
            ));
        }
    }
    let headers = [Header {
        key: "trace".into(),
        value: Some(bytes::Bytes::from_static(b"abc")),
    }];
    for (name, codec) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let mut b = RecordBatchBuilder::new(codec).base_offset(100);
        for i in 0..5u8 {
            let key = [b'k', i];
            b.append(
                1_700_000_000_000 + i as i64,
                Some(&key),
                Some(b"value"),
                &headers,
            )
            .unwrap();
        }
        b.append(1_700_000_000_010, None, None, &[]).unwrap();
        let mut set = vec![1u8];
        set.extend_from_slice(&b.finish().unwrap());
        out.push(("record_set", format!("v2-{name}"), set));
        if codec != Compression::Zstd {
            for magic in [0i8, 1] {
                let mut l = LegacyMessageSetBuilder::new(magic, codec).unwrap();
                l.append(1_700_000_000_000, Some(b"k"), Some(b"legacy value"))
                    .unwrap();
                l.append(1_700_000_000_001, None, Some(b"second")).unwrap();
                let mut set = vec![1u8];
                set.extend_from_slice(&l.finish().unwrap());
                out.push(("record_set", format!("magic{magic}-{name}"), set));
            }
        }
    }
    for v in 0..=ConsumerProtocolSubscription::VERSIONS.1 {
        let mut buf = BytesMut::new();
        buf.put_i16(v);
        ConsumerProtocolSubscription::random(&mut rng, v)
            .encode(&mut buf, v)
            .unwrap();
        out.push((
            "consumer_protocol",
            format!("subscription-v{v}"),
            buf.to_vec(),
        ));
    }
    for v in 0..=ConsumerProtocolAssignment::VERSIONS.1 {
        let mut buf = BytesMut::new();
        buf.put_i16(v);
        ConsumerProtocolAssignment::random(&mut rng, v)
            .encode(&mut buf, v)
            .unwrap();
        out.push((
            "consumer_protocol",
            format!("assignment-v{v}"),
            buf.to_vec(),
        ));
    }
    out
}

#[test]
#[ignore = "writes the committed corpora; run by hand with KAFKIT_WRITE_FUZZ_SEEDS=1"]
fn write_seeds() {
    if std::env::var_os("KAFKIT_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    for (target, name, data) in seeds() {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}

#[test]
fn generated_seeds_run_clean() {
    let seeds = seeds();
    assert!(seeds.len() > 80, "{} seeds", seeds.len());
    for (target, name, data) in &seeds {
        let run = TARGETS.iter().find(|(t, _)| t == target).unwrap().1;
        run(data);
        // Every strict prefix too: truncation must be an error, never a panic.
        for cut in (0..data.len()).step_by(7) {
            run(&data[..cut]);
        }
        let _ = name;
    }
}

#[test]
fn committed_corpora_run_clean() {
    let mut count = 0;
    for (target, run) in TARGETS {
        let Ok(dir) = std::fs::read_dir(corpus_dir(target)) else {
            panic!("fuzz/corpus/{target} is missing");
        };
        for entry in dir {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            run(&data);
            count += 1;
        }
    }
    assert!(count > 0);
}

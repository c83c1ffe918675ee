//! Client input never panics the cluster: random bodies of every advertised API and version,
//! random bytes, truncated frames. Each either gets a response that decodes or closes the
//! connection; the cluster keeps serving afterwards.

mod cluster_support;

use std::time::Duration;

use bytes::Bytes;
use cluster_support::{batch, decode, decode_as, request_frame, Harness};
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::testing::Rng;
use kafkit_core::protocol::{ApiKey, ProduceRequest, RequestBody};
use kafkit_sim::cluster::{ConnOutput, SaslUser};
use kafkit_sim::ClusterConfig;

fn check_reply(api: ApiKey, v: i16, frames: &[Bytes]) {
    for f in frames {
        // A response to this request decodes at its version (SASL raw tokens aside).
        if f.len() > 8 {
            let _ = decode(api, v, f);
        }
    }
}

fn hammer(config: ClusterConfig, seed: u64, per_version: usize) -> Harness {
    let mut h = Harness::new(config);
    let table = h.cluster.api_versions().clone();
    let mut rng = Rng::new(seed);
    let mut conn = 0u64;
    let mut answered = 0usize;
    for (&api, &(min, max)) in &table {
        for v in min..=max {
            for i in 0..per_version {
                conn += 1;
                let broker = (conn % 3) as i32;
                h.connect(broker, conn);
                let body = RequestBody::random(api, v, &mut rng);
                let frame = request_frame(&body, v, i as i32);
                let reply = h.cluster.handle_frame(broker, conn, frame.clone(), h.now);
                check_reply(api, v, &reply.frames);
                answered += reply.frames.len();
                // The same frame cut short.
                conn += 1;
                h.connect(broker, conn);
                let cut = frame.slice(..(frame.len() * i / per_version.max(1)).max(1));
                let reply = h.cluster.handle_frame(broker, conn, cut, h.now);
                check_reply(api, v, &reply.frames);
            }
            h.advance(Duration::from_millis(50));
        }
    }
    // Random garbage frames.
    for i in 0..500 {
        conn += 1;
        h.connect(0, conn);
        let len = (rng.next_u64() % 64) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if i % 2 == 0 && data.len() >= 4 {
            // A plausible API key and version, garbage after.
            data[0] = 0;
            data[1] = (i % 70) as u8;
            data[2] = 0;
            data[3] = (i % 12) as u8;
        }
        let _ = h.cluster.handle_frame(0, conn, Bytes::from(data), h.now);
    }
    // Let every parked request finish.
    for _ in 0..100 {
        h.advance(Duration::from_secs(3_600));
    }
    for (b, c, out) in h.cluster.take_ready() {
        if let ConnOutput::Send(f) = out {
            assert!(f.len() >= 8, "frame to {b}/{c}");
        }
    }
    assert!(answered > 0);
    h
}

/// The cluster still serves ordinary requests.
fn still_serving(mut h: Harness) {
    h.connect(0, 1_000_000);
    h.cluster.crash_broker(1, h.now);
    h.cluster.restart_broker(1, h.now);
    let body = ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "fresh-topic".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch(1, 1)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let _ = h.call(
        0,
        1_000_000,
        kafkit_core::protocol::MetadataRequest::default(),
        12,
    );
    let reply = h.send(0, 1_000_000, body, 9);
    assert!(!reply.close);
    let (_, _) = decode_as::<ProduceRequest>(9, &reply.frames[0]);
}

#[test]
fn random_requests_never_panic_the_cluster() {
    for seed in 0..3 {
        let h = hammer(ClusterConfig::default(), seed, 12);
        still_serving(h);
    }
}

#[test]
fn random_requests_never_panic_a_sasl_cluster_with_replication_delay() {
    let config = ClusterConfig {
        sasl_users: vec![
            SaslUser::new("PLAIN", "u", "p"),
            SaslUser::new("SCRAM-SHA-256", "u", "p"),
        ],
        replication_delay: Duration::from_millis(20),
        replication_factor: 3,
        ..Default::default()
    };
    let _ = hammer(config, 7, 6);
}

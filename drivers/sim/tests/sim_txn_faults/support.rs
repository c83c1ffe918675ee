//! Helpers of the transaction scenarios: administrator requests straight into the cluster
//! model, and reading a topic back through a consumer.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkit_core::config::{ConsumerConfig, IsolationLevel};
use kafkit_core::consumer::TopicPartition;
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::{
    decode_response_frame, request_header_version, CreateTopicsRequest, Message, RequestBody,
    RequestHeader, ResponseBody,
};
use kafkit_sim::{Cluster, ConsumerSim};

use super::BROKERS;

/// Sends `body` at `version` to `broker` on a connection of the test's own and returns the
/// answer (an administrator's request, outside the simulation).
pub fn call(
    cluster: &mut Cluster,
    broker: i32,
    body: RequestBody,
    version: i16,
    now: Instant,
) -> ResponseBody {
    let api = body.api_key();
    let header = RequestHeader {
        request_api_key: api.as_i16(),
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("admin".into()),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, request_header_version(api, version))
        .expect("header encodes");
    body.encode(&mut buf, version).expect("body encodes");
    let conn = u64::MAX;
    assert!(cluster.connection_opened(broker, conn, "/admin"));
    let reply = cluster.handle_frame(broker, conn, buf.freeze(), now);
    cluster.connection_closed(broker, conn);
    let frame: &Bytes = &reply.frames[0];
    decode_response_frame(api, version, frame.slice(4..))
        .expect("response decodes")
        .1
}

/// Creates `topics` (name, partitions), as an administrator would before the application
/// starts (the group coordinator refuses offsets of a topic that does not exist).
pub fn create_topics(cluster: &mut Cluster, topics: &[(&str, i32)], now: Instant) {
    let body = RequestBody::CreateTopics(CreateTopicsRequest {
        topics: topics
            .iter()
            .map(|(name, partitions)| CreatableTopic {
                name: (*name).into(),
                num_partitions: *partitions,
                replication_factor: BROKERS as i16,
                ..Default::default()
            })
            .collect(),
        timeout_ms: 1000,
        ..Default::default()
    });
    let ResponseBody::CreateTopics(r) = call(cluster, 0, body, 5, now) else {
        panic!("not a CreateTopics response")
    };
    for t in &r.topics {
        assert_eq!(t.error_code, 0, "topic {} created", t.name);
    }
}

/// The values of every record of `topic`, read from the beginning at `isolation` by a
/// consumer on `cluster` (starting at `now`), up to the log ends `ends`.
pub fn read_all(
    cluster: &Rc<RefCell<Cluster>>,
    topic: &str,
    ends: &[i64],
    isolation: IsolationLevel,
    seed: u64,
    now: Instant,
) -> Result<Vec<String>, String> {
    let mut config = ConsumerConfig::default();
    config.isolation_level = isolation;
    config.common.client_id = "checker".into();
    let mut c = ConsumerSim::on_cluster(cluster.clone(), &config, seed, now)
        .map_err(|e| format!("consumer: {e}"))?;
    let parts: Vec<TopicPartition> = (0..ends.len() as i32)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    c.assign(parts.clone());
    c.seek_to_beginning(&parts)
        .map_err(|e| format!("seek: {e}"))?;
    let mut values = Vec::new();
    for _ in 0..400 {
        let records = c
            .poll(Duration::from_millis(200))
            .map_err(|e| format!("{e}"))?
            .map_err(|e| format!("poll: {e}"))?;
        for r in records.iter() {
            values.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"")).into());
        }
        let mut done = true;
        for (p, end) in parts.iter().zip(ends) {
            let pos = c
                .position(p)
                .map_err(|e| format!("{e}"))?
                .map_err(|e| format!("position: {e}"))?;
            done &= pos >= *end;
        }
        if done {
            return Ok(values);
        }
    }
    Err(format!(
        "a {isolation:?} consumer did not reach the log ends {ends:?}"
    ))
}

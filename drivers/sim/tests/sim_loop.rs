//! The simulation loop drives the real network core on virtual time.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use kafkit_core::network::{
    FrameDecoder, LowLevelClient, LowLevelEvent, NetError, NetOptions, Target,
};
use kafkit_core::protocol::api_versions::response::ApiVersion;
use kafkit_core::protocol::metadata::response::MetadataResponseBroker;
use kafkit_core::protocol::{
    self, encode_response, ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestBody,
};
use kafkit_core::OpId;
use kafkit_sim::{Endpoint, LinkConfig, Simulation};

/// Answers ApiVersions and Metadata; enough for a connection to come up.
struct MiniBroker {
    port: i32,
    frames: std::collections::HashMap<u64, FrameDecoder>,
}

impl MiniBroker {
    fn new(port: i32) -> Self {
        MiniBroker {
            port,
            frames: Default::default(),
        }
    }
}

impl Endpoint for MiniBroker {
    fn accept(&mut self, conn: u64, _now: Instant) -> bool {
        self.frames.insert(conn, FrameDecoder::new(1 << 20));
        true
    }

    fn receive(&mut self, conn: u64, data: &[u8], _now: Instant) -> Vec<u8> {
        let dec = self.frames.get_mut(&conn).unwrap();
        dec.push(data);
        let mut out = Vec::new();
        while let Some(frame) = dec.next_frame().unwrap() {
            let (header, body) = protocol::decode_request_frame(frame).unwrap();
            let v = header.request_api_version;
            let mut buf = BytesMut::new();
            match body {
                RequestBody::ApiVersions(_) => {
                    let resp = ApiVersionsResponse {
                        api_keys: [ApiKey::ApiVersions, ApiKey::Metadata]
                            .iter()
                            .map(|k| ApiVersion {
                                api_key: k.as_i16(),
                                min_version: k.request_versions().0,
                                max_version: k.request_versions().1,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode_response(header.correlation_id, &resp, v, &mut buf).unwrap();
                }
                RequestBody::Metadata(_) => {
                    let resp = MetadataResponse {
                        brokers: vec![MetadataResponseBroker {
                            node_id: 0,
                            host: "broker".into(),
                            port: self.port,
                            ..Default::default()
                        }],
                        controller_id: 0,
                        ..Default::default()
                    };
                    encode_response(header.correlation_id, &resp, v, &mut buf).unwrap();
                }
                other => panic!("unexpected {:?}", other.api_key()),
            }
            out.put_i32(buf.len() as i32);
            out.extend_from_slice(&buf);
        }
        out
    }

    fn closed(&mut self, conn: u64) {
        self.frames.remove(&conn);
    }
}

fn client(request_timeout: Duration) -> LowLevelClient {
    let mut opts = NetOptions::new(vec![("broker".into(), 9092)]);
    opts.conn.request_timeout = request_timeout;
    opts.seed = 1;
    LowLevelClient::new(opts)
}

fn metadata() -> RequestBody {
    RequestBody::Metadata(MetadataRequest {
        topics: None,
        ..Default::default()
    })
}

#[test]
fn a_request_completes_over_simulated_links() {
    let start = Instant::now();
    let mut sim =
        Simulation::new(client(Duration::from_secs(30)), 7, start).with_links(LinkConfig {
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(3),
        });
    sim.add_server("broker:9092", MiniBroker::new(9092));
    let now = sim.now();
    let id = OpId(1);
    sim.core().send(id, Target::Any, metadata(), None, now);
    let mut result = None;
    sim.run_until(|s| {
        for e in s.take_events() {
            if let LowLevelEvent::Response { id: got, result: r } = e {
                assert_eq!(got, id);
                result = Some(r);
            }
        }
        result.is_some()
    })
    .unwrap();
    let resp = result.unwrap().expect("metadata answered");
    assert_eq!(resp.body.api_key(), ApiKey::Metadata);
    // Connect, ApiVersions and Metadata each cross the link both ways: at least 6 x 5 ms.
    assert!(
        sim.elapsed() >= Duration::from_millis(30),
        "{:?}",
        sim.elapsed()
    );
}

#[test]
fn a_dead_broker_times_out_at_exactly_the_request_timeout_in_virtual_time() {
    let start = Instant::now();
    let wall = Instant::now();
    // The waiting mode: with fail fast (the default) the refused round would end the request
    // at once, as tests/tests/bootstrap_fail_fast.rs checks.
    let mut opts = NetOptions::new(vec![("broker".into(), 9092)]);
    opts.conn.request_timeout = Duration::from_secs(30);
    opts.seed = 1;
    opts.bootstrap_fail_fast = false;
    let mut sim = Simulation::new(LowLevelClient::new(opts), 3, start);
    let id = OpId(1);
    sim.core().send(id, Target::Any, metadata(), None, start);
    let mut error = None;
    sim.run_until(|s| {
        for e in s.take_events() {
            if let LowLevelEvent::Response {
                id: got,
                result: Err(e),
            } = e
            {
                assert_eq!(got, id);
                error = Some(e);
            }
        }
        error.is_some()
    })
    .unwrap();
    let error = error.unwrap();
    assert!(matches!(error, NetError::Timeout { .. }), "{error}");
    assert!(error.to_string().contains("broker:9092"), "{error}");
    assert!(error.to_string().contains("connection refused"), "{error}");
    assert_eq!(sim.elapsed(), Duration::from_secs(30));
    // Thirty virtual seconds of reconnect backoff take no real time to speak of.
    assert!(wall.elapsed() < Duration::from_secs(5));
}

#[test]
fn runs_replay_exactly_from_their_seed() {
    let trace = |seed| {
        let start = Instant::now();
        let mut sim =
            Simulation::new(client(Duration::from_secs(2)), seed, start).with_links(LinkConfig {
                latency: Duration::from_millis(1),
                jitter: Duration::from_millis(10),
            });
        sim.add_server("broker:9092", MiniBroker::new(9092));
        let mut log = Vec::new();
        for i in 0..20 {
            let now = sim.now();
            sim.core().send(OpId(i), Target::Any, metadata(), None, now);
            sim.run_for(Duration::from_millis(7)).unwrap();
            for e in sim.take_events() {
                if let LowLevelEvent::Response { id, result } = e {
                    log.push((id, result.is_ok(), sim.elapsed()));
                }
            }
        }
        log
    };
    assert_eq!(trace(11), trace(11));
    assert!(!trace(11).is_empty());
}

#[test]
fn several_clients_share_one_network_and_clock() {
    let start = Instant::now();
    let mut sim =
        Simulation::new(client(Duration::from_secs(30)), 5, start).with_links(LinkConfig {
            latency: Duration::from_millis(2),
            jitter: Duration::from_millis(1),
        });
    let second = sim.add_client(client(Duration::from_secs(30)));
    let third = sim.add_client(client(Duration::from_secs(30)));
    assert_eq!(sim.clients(), 3);
    sim.add_server("broker:9092", MiniBroker::new(9092));
    let now = sim.now();
    // Every client's first connection is its ConnId(1): the network must keep them apart.
    let ids: Vec<_> = [0, second, third]
        .into_iter()
        .map(|c| {
            // The same id on every client: each core has its own.
            let id = OpId(1);
            sim.client(c).send(id, Target::Any, metadata(), None, now);
            (c, id)
        })
        .collect();
    let mut answered = [false; 3];
    sim.run_until(|s| {
        for (c, id) in &ids {
            for e in s.take_client_events(*c) {
                if let LowLevelEvent::Response { id: got, result } = e {
                    assert_eq!(got, *id);
                    assert!(result.is_ok(), "client {c}: {result:?}");
                    answered[*c] = true;
                }
            }
        }
        answered.iter().all(|a| *a)
    })
    .unwrap();
}

//! Shared helpers of the cluster tests: a frame-level harness around [`Cluster`] and a
//! simulation of kafkit's `LowLevelClient` against the cluster.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafkit_core::compression::Compression;
use kafkit_core::network::{LowLevelClient, LowLevelEvent, NetError, NetOptions, Response, Target};
use kafkit_core::protocol::{
    decode_response_frame, layout_version, request_header_version, ApiKey, Message, RequestBody,
    RequestHeader, ResponseBody, ResponseHeader,
};
use kafkit_core::records::RecordBatchBuilder;
use kafkit_core::OpId;
use kafkit_sim::cluster::{ConnOutput, FrameReply};
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, LinkConfig, Simulation};

/// Drives a [`Cluster`] frame by frame on a manual clock.
pub struct Harness {
    pub cluster: Cluster,
    pub now: Instant,
    next_correlation: i32,
}

/// Encodes a request frame (no size prefix) for `body` at `version`.
pub fn request_frame(body: &RequestBody, version: i16, correlation_id: i32) -> Bytes {
    let api = body.api_key();
    let header = RequestHeader {
        request_api_key: api.as_i16(),
        request_api_version: version,
        correlation_id,
        client_id: Some("test-client".into()),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, request_header_version(api, version))
        .unwrap();
    body.encode(&mut buf, layout_version(api, version)).unwrap();
    buf.freeze()
}

/// Decodes a response frame (with its size prefix) of `api` at `version`.
pub fn decode(api: ApiKey, version: i16, frame: &Bytes) -> (ResponseHeader, ResponseBody) {
    let size = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(size + 4, frame.len(), "size prefix");
    decode_response_frame(api, version, frame.slice(4..)).unwrap()
}

/// [`decode`] of the response to a request of type `R`.
pub fn decode_as<R: kafkit_core::protocol::Request>(
    version: i16,
    frame: &Bytes,
) -> (ResponseHeader, R::Response) {
    let (header, body) = decode(R::API_KEY, version, frame);
    (
        header,
        body.into_response::<R>().unwrap_or_else(|e| panic!("{e}")),
    )
}

impl Harness {
    pub fn new(config: ClusterConfig) -> Self {
        let now = Instant::now();
        Harness {
            cluster: Cluster::new(config, now),
            now,
            next_correlation: 1,
        }
    }

    /// Opens connection `conn` to `broker`.
    pub fn connect(&mut self, broker: i32, conn: u64) -> bool {
        self.cluster.connection_opened(broker, conn, "/10.0.0.1")
    }

    /// Sends a request; returns what the cluster replied at once.
    pub fn send(
        &mut self,
        broker: i32,
        conn: u64,
        body: impl Into<RequestBody>,
        version: i16,
    ) -> FrameReply {
        let corr = self.next_correlation;
        self.next_correlation += 1;
        let frame = request_frame(&body.into(), version, corr);
        self.cluster.handle_frame(broker, conn, frame, self.now)
    }

    /// Sends a request that must be answered at once with exactly one frame: its response.
    pub fn call<R: kafkit_core::protocol::Request>(
        &mut self,
        broker: i32,
        conn: u64,
        body: R,
        version: i16,
    ) -> R::Response {
        let api = R::API_KEY;
        let reply = self.send(broker, conn, body, version);
        assert!(!reply.close, "{api:?} v{version} closed the connection");
        assert_eq!(reply.frames.len(), 1, "{api:?} v{version}: one response");
        decode_as::<R>(version, &reply.frames[0]).1
    }

    /// Moves the clock on by `d` and fires what is due.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.cluster.handle_timeout(self.now);
    }

    /// Frames completed outside requests, for `broker`/`conn`.
    pub fn ready(&mut self, broker: i32, conn: u64) -> Vec<ConnOutput> {
        self.cluster
            .take_ready()
            .into_iter()
            .filter(|(b, c, _)| *b == broker && *c == conn)
            .map(|(_, _, o)| o)
            .collect()
    }

    /// The leader of `topic`-`partition`.
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        self.cluster.partition(topic, partition).unwrap().leader
    }
}

/// A batch of `n` records `value-<i>` with timestamps `ts0 + i`.
pub fn batch(n: usize, ts0: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None);
    for i in 0..n {
        let v = format!("value-{i}");
        b.append(ts0 + i as i64, Some(b"key"), Some(v.as_bytes()), &[])
            .unwrap();
    }
    b.finish().unwrap()
}

/// An idempotent batch of `n` records.
pub fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None).producer(pid, epoch, seq);
    for i in 0..n {
        b.append(1_000 + i as i64, None, Some(b"v"), &[]).unwrap();
    }
    b.finish().unwrap()
}

/// A simulation of one `LowLevelClient` against `cluster`.
pub fn client_sim(
    config: ClusterConfig,
    opts: impl FnOnce(&mut NetOptions),
) -> (Simulation<LowLevelClient>, Rc<RefCell<Cluster>>) {
    let start = Instant::now();
    let cluster = Rc::new(RefCell::new(Cluster::new(config, start)));
    let mut o = NetOptions::new(vec![("broker-0".into(), 9092)]);
    o.seed = 5;
    o.entropy = Some(std::sync::Arc::new(
        kafkit_core::network::SeededEntropy::new(5),
    ));
    opts(&mut o);
    let mut sim = Simulation::new(LowLevelClient::new(o), 9, start).with_links(LinkConfig {
        latency: Duration::from_millis(1),
        jitter: Duration::ZERO,
    });
    serve_cluster(&mut sim, &cluster);
    (sim, cluster)
}

/// Sends `body` and runs the simulation until its response (or error) arrives.
pub fn roundtrip(
    sim: &mut Simulation<LowLevelClient>,
    target: Target,
    body: impl Into<RequestBody>,
    max_version: Option<i16>,
) -> Result<Response, NetError> {
    // Ids only need to be distinct among the requests of one simulation.
    static LAST_OP: AtomicU64 = AtomicU64::new(0);
    let id = OpId(LAST_OP.fetch_add(1, Ordering::Relaxed) + 1);
    let now = sim.now();
    sim.core().send(id, target, body, max_version, now);
    let mut result = None;
    sim.run_until(|s| {
        for e in s.take_events() {
            if let LowLevelEvent::Response { id: got, result: r } = e {
                if got == id {
                    result = Some(r);
                }
            }
        }
        result.is_some()
    })
    .unwrap();
    result.expect("the request completed")
}

/// Writes a raw size-prefixed frame (for tests that speak below the codec).
pub fn sized(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + data.len());
    v.put_i32(data.len() as i32);
    v.extend_from_slice(data);
    v
}

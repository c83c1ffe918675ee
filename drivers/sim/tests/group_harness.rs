//! Test harness for the simulated broker's group coordinator, shared by the `group_*` suites
//! (each includes this file as a module; on its own it is an empty test crate).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkit_core::codec::{Reader, Uuid};
use kafkit_core::protocol::join_group::request::JoinGroupRequestProtocol;
use kafkit_core::protocol::sync_group::request::SyncGroupRequestAssignment;
use kafkit_core::protocol::{
    consumer_protocol_assignment, ConsumerProtocolAssignment, ConsumerProtocolSubscription,
    ErrorCode, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, Message, RequestBody,
    ResponseBody, SyncGroupRequest, SyncGroupResponse,
};

pub use kafkit_sim::cluster::group;

pub use group::{ClientRef, GroupConfig, GroupCoordinator, GroupReply, GroupState, TopicView};

/// Topics by name with their partition counts; ids are derived from the name's position.
#[derive(Default)]
pub struct Topics(pub BTreeMap<String, i32>);

impl TopicView for Topics {
    fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.0
            .get(topic)
            .is_some_and(|&n| (0..n).contains(&partition))
    }

    fn topic_id(&self, topic: &str) -> Option<Uuid> {
        let i = self.0.keys().position(|t| t == topic)?;
        Some(Uuid::from_u128(i as u128 + 1))
    }

    fn topic_name(&self, id: Uuid) -> Option<String> {
        let i = usize::try_from(id.as_u128().checked_sub(1)?).ok()?;
        self.0.keys().nth(i).cloned()
    }
}

/// One coordinator on a virtual clock, with the answers it gave.
pub struct Harness {
    pub gc: GroupCoordinator,
    pub topics: Topics,
    pub start: Instant,
    pub now: Instant,
    next_correlation: i32,
    /// Answers to parked requests, by (connection, correlation id).
    pub answers: BTreeMap<(u64, i32), ResponseBody>,
}

impl Harness {
    pub fn new(config: GroupConfig) -> Self {
        let start = Instant::now();
        let mut topics = Topics::default();
        topics.0.insert("orders".into(), 6);
        topics.0.insert("payments".into(), 3);
        topics.0.insert("audit".into(), 1);
        Harness {
            gc: GroupCoordinator::new(config),
            topics,
            start,
            now: start,
            next_correlation: 0,
            answers: BTreeMap::new(),
        }
    }

    /// A coordinator with the Kafka defaults except a 100 ms initial rebalance delay.
    pub fn quick() -> Self {
        Harness::new(GroupConfig {
            group_initial_rebalance_delay_ms: 100,
            ..GroupConfig::default()
        })
    }

    /// Milliseconds since the start.
    pub fn elapsed_ms(&self) -> u128 {
        (self.now - self.start).as_millis()
    }

    /// Sends `body` from connection `conn` at version `version`; an immediate answer is
    /// checked to encode at that version.
    pub fn send(
        &mut self,
        conn: u64,
        client_id: &str,
        version: i16,
        body: impl Into<RequestBody>,
    ) -> (ClientRef, GroupReply) {
        self.next_correlation += 1;
        let client = ClientRef {
            broker: 1,
            conn,
            correlation_id: self.next_correlation,
            api_version: version,
            client_id: client_id.to_string(),
            client_host: format!("/10.0.0.{conn}"),
        };
        let reply = self
            .gc
            .handle(client.clone(), body.into(), &self.topics, self.now);
        if let GroupReply::Now(body) = &reply {
            assert_encodes(body, version);
        }
        self.collect();
        (client, reply)
    }

    /// Sends and expects an immediate answer: the response to `body`.
    pub fn call<R: kafkit_core::protocol::Request>(
        &mut self,
        conn: u64,
        client_id: &str,
        version: i16,
        body: R,
    ) -> R::Response {
        match self.send(conn, client_id, version, body).1 {
            GroupReply::Now(body) => body.into_response::<R>().unwrap_or_else(|e| panic!("{e}")),
            GroupReply::Deferred => panic!("expected an immediate answer"),
        }
    }

    /// Moves the clock forward by `ms`, firing timers at their deadlines on the way.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now + Duration::from_millis(ms);
        while let Some(t) = self.gc.poll_timeout() {
            if t > target {
                break;
            }
            assert!(t >= self.now, "a timer in the past: {t:?} < {:?}", self.now);
            self.now = t;
            self.gc.handle_timeout(t);
            self.collect();
        }
        self.now = target;
    }

    /// Moves answers of parked requests into `answers` (checking they encode).
    pub fn collect(&mut self) {
        for (client, body) in self.gc.take_completed() {
            assert_encodes(&body, client.api_version);
            let previous = self
                .answers
                .insert((client.conn, client.correlation_id), body);
            assert!(previous.is_none(), "answered twice: {client:?}");
        }
    }

    /// The answer to a parked request, if it came.
    pub fn answer(&mut self, client: &ClientRef) -> Option<ResponseBody> {
        self.answers.remove(&(client.conn, client.correlation_id))
    }

    /// The group's state.
    pub fn state(&self, group: &str) -> Option<GroupState> {
        self.gc.group_state(group)
    }
}

/// Asserts that `body` encodes at `version` (every field the version has is valid).
pub fn assert_encodes(body: &ResponseBody, version: i16) {
    let mut buf = Vec::new();
    if let Err(e) = body.encode(&mut buf, version) {
        panic!("response does not encode at v{version}: {e:?}\n{body:#?}");
    }
}

/// Consumer subscription metadata (version 1) for `topics`.
pub fn subscription(topics: &[&str]) -> Bytes {
    let sub = ConsumerProtocolSubscription {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&1i16.to_be_bytes());
    sub.encode(&mut buf, 1).expect("subscription encodes");
    buf.freeze()
}

/// A consumer assignment (version 1) of `partitions` of `topic`.
pub fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let a = ConsumerProtocolAssignment {
        assigned_partitions: vec![consumer_protocol_assignment::TopicPartition {
            topic: topic.to_string(),
            partitions: partitions.to_vec(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&1i16.to_be_bytes());
    a.encode(&mut buf, 1).expect("assignment encodes");
    buf.freeze()
}

/// The partitions of an assignment made by [`assignment`].
pub fn assigned_partitions(bytes: &Bytes) -> Vec<(String, Vec<i32>)> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let mut r = Reader::new(bytes.clone());
    let v = r.read_i16().expect("version");
    let a = ConsumerProtocolAssignment::decode(&mut r, v).expect("assignment decodes");
    a.assigned_partitions
        .into_iter()
        .map(|tp| (tp.topic, tp.partitions))
        .collect()
}

/// A simulated consumer: what it knows of its membership.
#[derive(Clone, Debug)]
pub struct Consumer {
    pub conn: u64,
    pub client_id: String,
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub version: i16,
}

impl Consumer {
    /// A dynamic consumer of `topics` with the "range" protocol, JoinGroup v7.
    pub fn new(conn: u64, group: &str, topics: &[&str]) -> Self {
        Consumer {
            conn,
            client_id: format!("c{conn}"),
            group: group.to_string(),
            member_id: String::new(),
            instance_id: None,
            generation: -1,
            protocols: vec![("range".to_string(), subscription(topics))],
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            version: 7,
        }
    }

    /// The same, static with instance id `instance`.
    pub fn new_static(conn: u64, group: &str, topics: &[&str], instance: &str) -> Self {
        Consumer {
            instance_id: Some(instance.to_string()),
            ..Consumer::new(conn, group, topics)
        }
    }

    pub fn join_request(&self) -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: self.group.clone(),
            session_timeout_ms: self.session_timeout_ms,
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance_id.clone(),
            protocol_type: "consumer".into(),
            protocols: self
                .protocols
                .iter()
                .map(|(n, m)| JoinGroupRequestProtocol {
                    name: n.clone(),
                    metadata: m.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Sends JoinGroup; an immediate `MEMBER_ID_REQUIRED` is followed by the rejoin with the
    /// given id. Returns the request whose answer is awaited and the reply.
    pub fn join(&mut self, h: &mut Harness) -> (ClientRef, GroupReply) {
        let (client, reply) = h.send(
            self.conn,
            &self.client_id,
            self.version,
            self.join_request(),
        );
        if let GroupReply::Now(ResponseBody::JoinGroup(r)) = &reply {
            if r.error_code == ErrorCode::MEMBER_ID_REQUIRED.code() {
                assert!(self.member_id.is_empty());
                assert!(!r.member_id.is_empty());
                self.member_id = r.member_id.clone();
                return h.send(
                    self.conn,
                    &self.client_id,
                    self.version,
                    self.join_request(),
                );
            }
        }
        (client, reply)
    }

    /// Takes a JoinGroup answer (immediate or parked) and learns the generation and member id
    /// from it.
    pub fn joined(
        &mut self,
        h: &mut Harness,
        pending: &(ClientRef, GroupReply),
    ) -> JoinGroupResponse {
        let body = match &pending.1 {
            GroupReply::Now(b) => b.clone(),
            GroupReply::Deferred => h.answer(&pending.0).expect("JoinGroup answered"),
        };
        let r = body
            .into_response::<JoinGroupRequest>()
            .unwrap_or_else(|e| panic!("{e}"));
        if r.error_code == 0 {
            self.member_id = r.member_id.clone();
            self.generation = r.generation_id;
        }
        r
    }

    pub fn sync_request(&self, assignments: &[(&str, Bytes)]) -> SyncGroupRequest {
        SyncGroupRequest {
            group_id: self.group.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance_id.clone(),
            protocol_type: Some("consumer".into()),
            protocol_name: Some(self.protocols[0].0.clone()),
            assignments: assignments
                .iter()
                .map(|(m, a)| SyncGroupRequestAssignment {
                    member_id: m.to_string(),
                    assignment: a.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Sends SyncGroup (SyncGroup v5).
    pub fn sync(&self, h: &mut Harness, assignments: &[(&str, Bytes)]) -> (ClientRef, GroupReply) {
        h.send(
            self.conn,
            &self.client_id,
            5,
            self.sync_request(assignments),
        )
    }

    /// Takes a SyncGroup answer (immediate or parked).
    pub fn synced(&self, h: &mut Harness, pending: &(ClientRef, GroupReply)) -> SyncGroupResponse {
        let body = match &pending.1 {
            GroupReply::Now(b) => b.clone(),
            GroupReply::Deferred => h.answer(&pending.0).expect("SyncGroup answered"),
        };
        body.into_response::<SyncGroupRequest>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends Heartbeat (v4) and returns its error code.
    pub fn heartbeat(&self, h: &mut Harness) -> ErrorCode {
        let req = HeartbeatRequest {
            group_id: self.group.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance_id.clone(),
            ..Default::default()
        };
        h.call(self.conn, &self.client_id, 4, req).error()
    }
}

/// Takes every consumer through JoinGroup (the join phase must complete on its own: the
/// harness advances by `wait_ms` after the joins) and SyncGroup, the first member assigning
/// partition `i` of "orders" to member `i` in response order. Returns the leader's index.
pub fn form_group(h: &mut Harness, consumers: &mut [Consumer], wait_ms: u64) -> usize {
    let pending: Vec<_> = consumers.iter_mut().map(|c| c.join(h)).collect();
    h.advance(wait_ms);
    let responses: Vec<_> = consumers
        .iter_mut()
        .zip(&pending)
        .map(|(c, p)| c.joined(h, p))
        .collect();
    for r in &responses {
        assert_eq!(r.error_code, 0, "join failed: {r:?}");
    }
    let leader = responses
        .iter()
        .position(|r| r.leader == r.member_id)
        .expect("a leader");
    let assignments: Vec<(String, Bytes)> = responses[leader]
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.member_id.clone(), assignment("orders", &[i as i32])))
        .collect();
    let borrowed: Vec<(&str, Bytes)> = assignments
        .iter()
        .map(|(m, a)| (m.as_str(), a.clone()))
        .collect();
    let followers: Vec<_> = (0..consumers.len())
        .filter(|&i| i != leader)
        .map(|i| (i, consumers[i].sync(h, &[])))
        .collect();
    let leader_sync = consumers[leader].sync(h, &borrowed);
    let r = consumers[leader].synced(h, &leader_sync);
    assert_eq!(r.error_code, 0);
    for (i, p) in followers {
        let r = consumers[i].synced(h, &p);
        assert_eq!(r.error_code, 0, "follower sync failed: {r:?}");
    }
    leader
}

//! A KIP-848 consumer's committed-offset lookups against the simulated cluster: OffsetFetch v9
//! carries the member id and epoch, the coordinator refuses a stale epoch, and the member
//! retries with the epoch its heartbeat brought.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkit_core::config::{AutoOffsetReset, ConsumerConfig, GroupProtocol};
use kafkit_core::consumer::{ConsumerCore, ConsumerEvent, MemberState, OpId, TopicPartition};
use kafkit_core::network::NetOptions;
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::offset_fetch::request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafkit_core::protocol::{
    decode_response_frame, request_header_version, ApiKey, ConsumerGroupHeartbeatRequest,
    CreateTopicsRequest, ErrorCode, Message, OffsetFetchRequest, RequestBody, RequestHeader,
};
use kafkit_sim::cluster::HookAction;
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, LinkConfig, Simulation};

const GROUP: &str = "g";

/// One OffsetFetch as the coordinator received it: version, member id and epoch.
type Seen = (i16, Option<String>, i32);

struct Harness {
    sim: Simulation<ConsumerCore>,
    cluster: Rc<RefCell<Cluster>>,
    next_conn: u64,
    fetches: Rc<RefCell<Vec<Seen>>>,
    events: Vec<ConsumerEvent>,
}

impl Harness {
    fn new() -> Self {
        let start = Instant::now();
        let config = ClusterConfig {
            brokers: 1,
            replication_factor: 1,
            seed: 5,
            group_consumer_heartbeat_interval_ms: 1_000,
            ..ClusterConfig::default()
        };
        let cluster = Rc::new(RefCell::new(Cluster::new(config, start)));
        let mut cc = ConsumerConfig::default();
        cc.group_id = Some(GROUP.into());
        cc.group_protocol = GroupProtocol::Consumer;
        cc.auto_offset_reset = AutoOffsetReset::Earliest;
        cc.enable_auto_commit = false;
        cc.fetch_max_wait_ms = 100;
        cc.common.retry_backoff_ms = 50;
        let mut opts = NetOptions::new(vec![("broker-0".into(), 9092)]);
        opts.seed = 21;
        let core = ConsumerCore::new(cc, opts);
        let sim = Simulation::new(core, 9, start)
            .with_links(LinkConfig {
                latency: Duration::from_millis(1),
                jitter: Duration::ZERO,
            })
            .with_max_steps(2_000_000);
        let fetches: Rc<RefCell<Vec<Seen>>> = Rc::default();
        let seen = fetches.clone();
        cluster.borrow_mut().set_hook(
            ApiKey::OffsetFetch,
            Box::new(move |header, body| {
                if let RequestBody::OffsetFetch(r) = body {
                    let (id, epoch) = r
                        .groups
                        .first()
                        .map_or((None, -1), |g| (g.member_id.clone(), g.member_epoch));
                    seen.borrow_mut()
                        .push((header.request_api_version, id, epoch));
                }
                HookAction::Pass
            }),
        );
        let mut h = Harness {
            sim,
            cluster,
            next_conn: 0,
            fetches,
            events: Vec::new(),
        };
        serve_cluster(&mut h.sim, &h.cluster);
        let topics = [("events", 2), ("other", 1)]
            .into_iter()
            .map(|(name, num_partitions)| CreatableTopic {
                name: name.into(),
                num_partitions,
                replication_factor: 1,
                ..Default::default()
            })
            .collect();
        let r = h.call(
            CreateTopicsRequest {
                topics,
                timeout_ms: 1000,
                ..Default::default()
            },
            5,
        );
        assert!(r.topics.iter().all(|t| t.error_code == 0));
        h
    }

    /// A request on a connection of the test's own, answered at once.
    fn call<R: kafkit_core::protocol::Request>(&mut self, body: R, version: i16) -> R::Response {
        let body: RequestBody = body.into();
        let api = R::API_KEY;
        let header = RequestHeader {
            request_api_key: api.as_i16(),
            request_api_version: version,
            correlation_id: 1,
            client_id: Some("test".into()),
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, request_header_version(api, version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let frame: Bytes = buf.freeze();
        self.next_conn += 1;
        let conn = u64::MAX - self.next_conn;
        let now = self.sim.now();
        let mut c = self.cluster.borrow_mut();
        assert!(c.connection_opened(0, conn, "/test"));
        let reply = c.handle_frame(0, conn, frame, now);
        c.connection_closed(0, conn);
        assert_eq!(reply.frames.len(), 1, "{api:?} answered at once");
        decode_response_frame(api, version, reply.frames[0].slice(4..))
            .unwrap()
            .1
            .into_response::<R>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Steps the simulation with the application polling until `done` holds (within 60 s of
    /// virtual time).
    fn run_until(&mut self, what: &str, mut done: impl FnMut(&mut Harness) -> bool) {
        let deadline = self.sim.now() + Duration::from_secs(60);
        loop {
            self.sim.drain();
            let now = self.sim.now();
            let events = self.sim.take_client_events(0);
            self.events.extend(events);
            while let Ok(r) = self.sim.client(0).take_records(500, now) {
                if r.is_empty() {
                    break;
                }
            }
            self.sim.drain();
            if done(self) {
                return;
            }
            assert!(self.sim.now() <= deadline, "{what}: not done in time");
            assert!(self.sim.step(), "{what}: nothing left to happen");
        }
    }

    fn member(&mut self) -> (String, i32) {
        let m = self.sim.client(0).group_metadata().expect("a group member");
        (m.member_id, m.generation_id)
    }

    fn committed_answer(&mut self) -> Option<&ConsumerEvent> {
        self.events
            .iter()
            .find(|e| matches!(e, ConsumerEvent::Committed { op, .. } if *op == OpId(1)))
    }
}

#[test]
fn offset_fetch_v9_carries_the_member_epoch_and_a_stale_one_is_refused_then_retried() {
    let mut h = Harness::new();
    let now = h.sim.now();
    h.sim.client(0).subscribe(["events"], now).unwrap();
    h.run_until("stable with both partitions", |h| {
        let c = h.sim.client(0);
        c.group_state() == Some(MemberState::Stable) && c.assignment().len() == 2
    });
    h.run_until("the assignment's lookup", |h| {
        !h.fetches.borrow().is_empty()
    });
    let (id, epoch) = h.member();
    assert!(epoch > 0);
    // The lookup of the assigned partitions' committed offsets: v9, with the member's epoch.
    assert_eq!(h.fetches.borrow()[0], (9, Some(id.clone()), epoch));

    // Another member joins (subscribed to another topic): the group epoch moves on and the
    // coordinator moves this member to it on its next heartbeat. That heartbeat is held at
    // the coordinator for a while, and a lookup sent meanwhile (still at the old epoch)
    // waits behind it on the connection: the coordinator sees it after the epoch moved.
    let held = Rc::new(RefCell::new(false));
    let flag = held.clone();
    let member_id = id.clone();
    h.cluster.borrow_mut().set_hook(
        ApiKey::ConsumerGroupHeartbeat,
        Box::new(move |_, body| match body {
            RequestBody::ConsumerGroupHeartbeat(r)
                if r.member_id == member_id && !*flag.borrow() =>
            {
                *flag.borrow_mut() = true;
                HookAction::Delay(Duration::from_millis(300))
            }
            _ => HookAction::Pass,
        }),
    );
    let joined = h.call(
        ConsumerGroupHeartbeatRequest {
            group_id: GROUP.into(),
            member_id: "other-member".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["other".into()]),
            topic_partitions: Some(Vec::new()),
            ..Default::default()
        },
        1,
    );
    assert_eq!(joined.error_code, 0);
    h.run_until("the member's heartbeat is held", |_| *held.borrow());
    let before = h.fetches.borrow().len();
    let now = h.sim.now();
    let events_0: BTreeSet<TopicPartition> = [TopicPartition::new("events", 0)].into();
    h.sim
        .client(0)
        .committed(OpId(1), events_0, Duration::from_secs(30), now);
    h.run_until("the lookup answered", |h| h.committed_answer().is_some());
    match h.committed_answer() {
        Some(ConsumerEvent::Committed {
            result: Ok(found), ..
        }) => {
            assert_eq!(found.len(), 1);
        }
        other => panic!("the lookup failed: {other:?}"),
    }
    let (_, new_epoch) = h.member();
    assert!(new_epoch > epoch, "the heartbeat moved the member on");
    let fetches = h.fetches.borrow()[before..].to_vec();
    // First at the old epoch (refused: STALE_MEMBER_EPOCH), then at the new one (answered).
    assert_eq!(
        fetches.first(),
        Some(&(9, Some(id.clone()), epoch)),
        "{fetches:?}"
    );
    assert_eq!(
        fetches.last(),
        Some(&(9, Some(id.clone()), new_epoch)),
        "{fetches:?}"
    );

    // The coordinator's check on its own: the old epoch is refused, the new one answered.
    let fetch = |epoch: i32| OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: GROUP.into(),
            member_id: Some(id.clone()),
            member_epoch: epoch,
            topics: Some(vec![OffsetFetchRequestTopics {
                name: "events".into(),
                partition_indexes: vec![0],
                ..Default::default()
            }]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = h.call(fetch(epoch), 9);
    assert_eq!(r.groups[0].error_code, ErrorCode::STALE_MEMBER_EPOCH.code());
    let r = h.call(fetch(new_epoch), 9);
    assert_eq!(r.groups[0].error_code, 0);
    let mut unknown = fetch(new_epoch);
    unknown.groups[0].member_id = Some("nobody".into());
    let r = h.call(unknown, 9);
    assert_eq!(r.groups[0].error_code, ErrorCode::UNKNOWN_MEMBER_ID.code());
}

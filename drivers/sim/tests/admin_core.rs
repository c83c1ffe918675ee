//! The admin core, sans IO, against the simulated cluster on virtual time: routing (controller,
//! coordinator, leader, every broker), per-item results, retries (NOT_CONTROLLER injected by a
//! hook, a crashed controller, NOT_COORDINATOR), fallbacks to older APIs, and APIs the broker
//! lacks failing at once with an error naming them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafkit_core::admin::{
    AclBindingFilter, AdminCore, AdminError, AdminEvent, AdminOutcome, AlterConfigOp,
    ConfigResource, NewPartitions, NewTopic,
};
use kafkit_core::config::AdminConfig;
use kafkit_core::consumer::{OffsetAndMetadata, TopicPartition};
use kafkit_core::network::ClientCore;
use kafkit_core::protocol::{ApiKey, ErrorCode, ResponseBody};
use kafkit_core::OpId;
use kafkit_sim::{AdminSim, ClusterConfig, HookAction};

fn admin(cluster: ClusterConfig, seed: u64) -> AdminSim {
    let config = AdminConfig::builder()
        .set("default_api_timeout_ms", "20000")
        .set("request_timeout_ms", "5000")
        .build()
        .expect("config");
    AdminSim::new(cluster, &config, seed).expect("admin")
}

fn topics_outcome(o: AdminOutcome) -> BTreeMap<String, Result<(), AdminError>> {
    match o {
        AdminOutcome::Topics(m) => m,
        other => panic!("{other:?}"),
    }
}

fn create(a: &mut AdminSim, topics: Vec<NewTopic>) -> BTreeMap<String, Result<(), AdminError>> {
    topics_outcome(
        a.call(move |c: &mut AdminCore, op, now| c.create_topics(op, topics, false, None, now))
            .expect("ran"),
    )
}

fn code(r: &Result<impl std::fmt::Debug, AdminError>) -> Option<ErrorCode> {
    r.as_ref().err().and_then(AdminError::code)
}

#[test]
fn topics_are_created_described_grown_and_deleted_with_per_topic_errors() {
    let mut a = admin(ClusterConfig::default(), 1);
    let explicit = NewTopic::with_replica_assignments(
        "explicit",
        BTreeMap::from([(0, vec![2, 0]), (1, vec![1, 2])]),
    );
    let r = create(
        &mut a,
        vec![
            NewTopic::new("orders", 3, 2).config("cleanup.policy", "compact"),
            NewTopic::new("zero", 0, 1),
            explicit,
        ],
    );
    assert!(r["orders"].is_ok(), "{r:?}");
    assert!(r["explicit"].is_ok(), "{r:?}");
    assert_eq!(
        code(&r["zero"]),
        Some(ErrorCode::INVALID_PARTITIONS),
        "{r:?}"
    );

    // Per item: one exists, one is new.
    let r = create(
        &mut a,
        vec![NewTopic::new("orders", 1, 1), NewTopic::new("new", 1, 1)],
    );
    assert_eq!(code(&r["orders"]), Some(ErrorCode::TOPIC_ALREADY_EXISTS));
    assert!(r["new"].is_ok());

    // validate_only creates nothing.
    let o = a
        .call(|c: &mut AdminCore, op, now| {
            c.create_topics(op, vec![NewTopic::new("dry", 1, 1)], true, None, now)
        })
        .expect("ran");
    assert!(topics_outcome(o)["dry"].is_ok());
    assert!(a.cluster().borrow().topic("dry").is_none());

    let o = a
        .call(|c: &mut AdminCore, op, now| {
            c.describe_topics(
                op,
                vec!["orders".into(), "explicit".into(), "nope".into()],
                None,
                now,
            )
        })
        .expect("ran");
    let AdminOutcome::TopicDescriptions(d) = o else {
        panic!()
    };
    let orders = d["orders"].as_ref().expect("orders");
    assert_eq!(orders.partitions.len(), 3);
    assert!(orders.partitions.iter().all(|p| p.replicas.len() == 2));
    let explicit = d["explicit"].as_ref().expect("explicit");
    assert_eq!(explicit.partitions[0].replicas, vec![2, 0]);
    assert_eq!(explicit.partitions[0].leader, 2);
    assert_eq!(
        code(&d["nope"]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );

    let o = a
        .call(|c: &mut AdminCore, op, now| {
            c.create_partitions(
                op,
                BTreeMap::from([
                    ("orders".to_string(), NewPartitions::increase_to(5)),
                    ("new".to_string(), NewPartitions::increase_to(1)),
                    ("nope".to_string(), NewPartitions::increase_to(4)),
                ]),
                false,
                None,
                now,
            )
        })
        .expect("ran");
    let r = topics_outcome(o);
    assert!(r["orders"].is_ok(), "{r:?}");
    assert_eq!(code(&r["new"]), Some(ErrorCode::INVALID_PARTITIONS));
    assert_eq!(
        code(&r["nope"]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    assert_eq!(
        a.cluster()
            .borrow()
            .topic("orders")
            .expect("t")
            .partitions
            .len(),
        5
    );

    let o = a
        .call(|c: &mut AdminCore, op, now| c.list_topics(op, false, None, now))
        .expect("ran");
    let AdminOutcome::TopicListing(Ok(listed)) = o else {
        panic!()
    };
    let names: Vec<_> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["explicit", "new", "orders"]);

    let o = a
        .call(|c: &mut AdminCore, op, now| {
            c.delete_topics(op, vec!["new".into(), "nope".into()], None, now)
        })
        .expect("ran");
    let r = topics_outcome(o);
    assert!(r["new"].is_ok());
    assert_eq!(
        code(&r["nope"]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    assert!(a.cluster().borrow().topic("new").is_none());
    // Per-item errors are final: nothing waited for a call's deadline.
    assert!(
        a.sim().elapsed() < Duration::from_secs(5),
        "{:?}",
        a.sim().elapsed()
    );
}

#[test]
fn not_controller_is_retried_after_a_metadata_refresh() {
    let mut a = admin(ClusterConfig::default(), 2);
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    a.cluster().borrow_mut().set_hook(
        ApiKey::CreateTopics,
        Box::new(move |_, body| {
            if seen.fetch_add(1, Ordering::SeqCst) > 0 {
                return HookAction::Pass;
            }
            let kafkit_core::protocol::RequestBody::CreateTopics(req) = body else {
                return HookAction::Pass;
            };
            use kafkit_core::protocol::create_topics::response::CreatableTopicResult;
            HookAction::Respond(ResponseBody::CreateTopics(
                kafkit_core::protocol::CreateTopicsResponse {
                    topics: req
                        .topics
                        .iter()
                        .map(|t| CreatableTopicResult {
                            name: t.name.clone(),
                            error_code: ErrorCode::NOT_CONTROLLER.0,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            ))
        }),
    );
    let r = create(&mut a, vec![NewTopic::new("t", 1, 1)]);
    assert!(r["t"].is_ok(), "{r:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(a.cluster().borrow().topic("t").is_some());
}

#[test]
fn a_crashed_controller_is_replaced_and_the_call_goes_to_the_new_one() {
    let mut a = admin(ClusterConfig::default(), 3);
    // Learn the cluster (controller 0) first.
    let o = a
        .call(|c: &mut AdminCore, op, now| c.describe_cluster(op, None, now))
        .expect("ran");
    let AdminOutcome::Cluster(Ok(cluster)) = o else {
        panic!()
    };
    assert_eq!(cluster.controller.as_ref().map(|b| b.node_id), Some(0));
    assert_eq!(cluster.brokers.len(), 3);
    let now = a.sim().now();
    a.cluster().borrow_mut().crash_broker(0, now);
    let r = create(&mut a, vec![NewTopic::new("after-crash", 2, 1)]);
    assert!(r["after-crash"].is_ok(), "{r:?}");
    let o = a
        .call(|c: &mut AdminCore, op, now| c.describe_cluster(op, None, now))
        .expect("ran");
    let AdminOutcome::Cluster(Ok(cluster)) = o else {
        panic!()
    };
    assert_eq!(cluster.controller.map(|b| b.node_id), Some(1));
}

#[test]
fn a_request_that_is_never_answered_fails_by_the_call_deadline() {
    let mut a = admin(ClusterConfig::default(), 4);
    a.cluster()
        .borrow_mut()
        .set_hook(ApiKey::DeleteTopics, Box::new(|_, _| HookAction::Drop));
    let start = a.sim().now();
    let o = a
        .call(|c: &mut AdminCore, op, now| {
            c.delete_topics(op, vec!["x".into()], Some(Duration::from_secs(12)), now)
        })
        .expect("ran");
    let r = topics_outcome(o);
    let err = r["x"].as_ref().expect_err("timed out");
    assert!(err.to_string().contains("timed out"), "{err}");
    let took = a.sim().now() - start;
    assert!(took <= Duration::from_secs(13), "{took:?}");
}

#[test]
fn configs_are_described_and_altered_incrementally_or_by_the_legacy_api() {
    for legacy in [false, true] {
        let mut cluster = ClusterConfig::default();
        if legacy {
            cluster
                .api_versions
                .insert(ApiKey::IncrementalAlterConfigs, None);
        }
        let mut a = admin(cluster, 5);
        create(
            &mut a,
            vec![NewTopic::new("c", 1, 1).config("retention.ms", "1000")],
        );
        let topic = ConfigResource::topic("c");
        let o = a
            .call(|c: &mut AdminCore, op, now| {
                c.alter_configs(
                    op,
                    BTreeMap::from([(
                        ConfigResource::topic("c"),
                        vec![AlterConfigOp::Set(
                            "cleanup.policy".into(),
                            "compact".into(),
                        )],
                    )]),
                    false,
                    None,
                    now,
                )
            })
            .expect("ran");
        let AdminOutcome::Altered(r) = o else {
            panic!()
        };
        assert!(r[&topic].is_ok(), "legacy {legacy}: {r:?}");

        let o = a
            .call(|c: &mut AdminCore, op, now| {
                c.describe_configs(
                    op,
                    vec![
                        ConfigResource::topic("c"),
                        ConfigResource::broker(1),
                        ConfigResource::topic("missing"),
                    ],
                    None,
                    now,
                )
            })
            .expect("ran");
        let AdminOutcome::Configs(r) = o else {
            panic!()
        };
        let entries = r[&topic].as_ref().expect("topic configs");
        let value = |n: &str| {
            entries
                .iter()
                .find(|e| e.name == n)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(
            value("cleanup.policy").as_deref(),
            Some("compact"),
            "legacy {legacy}"
        );
        // The legacy path keeps the other overrides.
        assert_eq!(
            value("retention.ms").as_deref(),
            Some("1000"),
            "legacy {legacy}"
        );
        assert!(!r[&ConfigResource::broker(1)]
            .as_ref()
            .expect("broker")
            .is_empty());
        assert_eq!(
            code(&r[&ConfigResource::topic("missing")]),
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        );
        // Per-item errors are final: nothing waited for the call's deadline.
        assert!(
            a.sim().elapsed() < Duration::from_secs(5),
            "{:?}",
            a.sim().elapsed()
        );
    }
}

#[test]
fn describe_cluster_falls_back_to_metadata() {
    let mut cluster = ClusterConfig::default();
    cluster.api_versions.insert(ApiKey::DescribeCluster, None);
    let mut a = admin(cluster, 6);
    let o = a
        .call(|c: &mut AdminCore, op, now| c.describe_cluster(op, None, now))
        .expect("ran");
    let AdminOutcome::Cluster(Ok(d)) = o else {
        panic!()
    };
    assert_eq!(d.brokers.len(), 3);
    assert_eq!(d.cluster_id.as_deref(), Some("kafkit-sim-cluster"));
}

#[test]
fn apis_the_broker_lacks_fail_at_once_naming_the_api() {
    let mut a = admin(ClusterConfig::default(), 7);
    let start = a.sim().now();
    let o = a
        .call(|c: &mut AdminCore, op, now| c.describe_acls(op, AclBindingFilter::any(), None, now))
        .expect("ran");
    let AdminOutcome::Acls(Err(e)) = o else {
        panic!()
    };
    assert!(e.is_unsupported(), "{e}");
    assert!(
        e.to_string()
            .contains("DescribeAcls is unsupported by this broker"),
        "{e}"
    );
    let o = a
        .call(|c: &mut AdminCore, op, now| c.describe_log_dirs(op, vec![0, 1], None, now))
        .expect("ran");
    let AdminOutcome::LogDirs(r) = o else {
        panic!()
    };
    for b in [0, 1] {
        let e = r[&b].as_ref().expect_err("unsupported");
        assert!(
            e.to_string()
                .contains("DescribeLogDirs is unsupported by this broker"),
            "{e}"
        );
    }
    assert!(a.sim().now() - start < Duration::from_secs(5));
}

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

#[test]
fn group_offsets_are_altered_listed_and_deleted_and_groups_listed_described_deleted() {
    let mut a = admin(ClusterConfig::default(), 8);
    create(&mut a, vec![NewTopic::new("g-t", 2, 1)]);
    // The first OffsetCommit meets NOT_COORDINATOR: looked up again and retried.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    a.cluster().borrow_mut().set_hook(
        ApiKey::OffsetFetch,
        Box::new(move |_, _| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                use kafkit_core::protocol::OffsetFetchResponse;
                HookAction::Respond(ResponseBody::OffsetFetch(OffsetFetchResponse {
                    error_code: ErrorCode::NOT_COORDINATOR.0,
                    ..Default::default()
                }))
            } else {
                HookAction::Pass
            }
        }),
    );
    let offsets = BTreeMap::from([
        (tp("g-t", 0), OffsetAndMetadata::new(5).with_metadata("m")),
        (tp("g-t", 1), OffsetAndMetadata::new(7)),
    ]);
    let o = a
        .call(move |c: &mut AdminCore, op, now| {
            c.alter_consumer_group_offsets(op, "g", offsets, None, now)
        })
        .expect("ran");
    let AdminOutcome::Partitions(r) = o else {
        panic!()
    };
    assert!(r.values().all(Result::is_ok), "{r:?}");

    let o = a
        .call(|c: &mut AdminCore, op, now| c.list_consumer_group_offsets(op, "g", None, None, now))
        .expect("ran");
    let AdminOutcome::GroupOffsets(Ok(listed)) = o else {
        panic!()
    };
    assert_eq!(listed[&tp("g-t", 0)].offset, 5);
    assert_eq!(listed[&tp("g-t", 0)].metadata, "m");
    assert_eq!(listed[&tp("g-t", 1)].offset, 7);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "NOT_COORDINATOR was retried"
    );

    let o = a
        .call(|c: &mut AdminCore, op, now| c.list_consumer_groups(op, None, now))
        .expect("ran");
    let AdminOutcome::GroupListing(Ok(groups)) = o else {
        panic!()
    };
    assert!(groups.errors.is_empty(), "{groups:?}");
    assert_eq!(
        groups
            .groups
            .iter()
            .map(|g| g.group_id.as_str())
            .collect::<Vec<_>>(),
        ["g"]
    );

    let o = a
        .call(|c: &mut AdminCore, op, now| {
            c.describe_consumer_groups(op, vec!["g".into(), "unknown".into()], None, now)
        })
        .expect("ran");
    let AdminOutcome::GroupDescriptions(d) = o else {
        panic!()
    };
    let g = d["g"].as_ref().expect("described");
    assert_eq!(g.state, "Empty");
    assert!(g.members.is_empty());
    assert!(d["unknown"].is_err() || d["unknown"].as_ref().unwrap().state == "Dead");

    let o = a
        .call(|c: &mut AdminCore, op, now| {
            c.delete_consumer_group_offsets(op, "g", vec![tp("g-t", 0)], None, now)
        })
        .expect("ran");
    let AdminOutcome::Partitions(r) = o else {
        panic!()
    };
    assert!(r[&tp("g-t", 0)].is_ok(), "{r:?}");
    let o = a
        .call(|c: &mut AdminCore, op, now| c.list_consumer_group_offsets(op, "g", None, None, now))
        .expect("ran");
    let AdminOutcome::GroupOffsets(Ok(listed)) = o else {
        panic!()
    };
    assert_eq!(listed.keys().cloned().collect::<Vec<_>>(), [tp("g-t", 1)]);

    let o = a
        .call(|c: &mut AdminCore, op, now| {
            c.delete_consumer_groups(op, vec!["g".into(), "unknown".into()], None, now)
        })
        .expect("ran");
    let AdminOutcome::Groups(r) = o else { panic!() };
    assert!(r["g"].is_ok(), "{r:?}");
    assert_eq!(code(&r["unknown"]), Some(ErrorCode::GROUP_ID_NOT_FOUND));
    assert!(
        a.sim().elapsed() < Duration::from_secs(5),
        "{:?}",
        a.sim().elapsed()
    );
}

#[test]
fn records_are_deleted_per_partition_at_each_leader() {
    let mut a = admin(ClusterConfig::default(), 9);
    create(&mut a, vec![NewTopic::new("r", 3, 1)]);
    let o = a
        .call(|c: &mut AdminCore, op, now| {
            c.delete_records(
                op,
                BTreeMap::from([(tp("r", 0), 0), (tp("r", 1), 10), (tp("missing", 0), 0)]),
                None,
                now,
            )
        })
        .expect("ran");
    let AdminOutcome::DeletedRecords(r) = o else {
        panic!()
    };
    assert_eq!(r[&tp("r", 0)], Ok(0));
    assert_eq!(code(&r[&tp("r", 1)]), Some(ErrorCode::OFFSET_OUT_OF_RANGE));
    assert_eq!(
        code(&r[&tp("missing", 0)]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    assert!(
        a.sim().elapsed() < Duration::from_secs(5),
        "{:?}",
        a.sim().elapsed()
    );
}

#[test]
fn runs_replay_from_the_seed() {
    let run = |seed| {
        let mut a = admin(ClusterConfig::default(), seed);
        create(&mut a, vec![NewTopic::new("x", 4, 2)]);
        let o = a
            .call(|c: &mut AdminCore, op, now| c.describe_topics(op, vec!["x".into()], None, now))
            .expect("ran");
        (format!("{o:?}"), a.sim().elapsed())
    };
    assert_eq!(run(11), run(11));
}

#[test]
fn delete_records_follows_a_leader_move() {
    let mut a = admin(ClusterConfig::default(), 12);
    let r = create(&mut a, vec![NewTopic::new("moving", 1, 3)]);
    assert!(r["moving"].is_ok(), "{r:?}");
    let sent = Arc::new(AtomicUsize::new(0));
    let seen = sent.clone();
    a.cluster().borrow_mut().set_hook(
        ApiKey::DeleteRecords,
        Box::new(move |_, _| {
            seen.fetch_add(1, Ordering::SeqCst);
            HookAction::Pass
        }),
    );
    let delete = |a: &mut AdminSim| {
        let o = a
            .call(|c: &mut AdminCore, op, now| {
                c.delete_records(op, BTreeMap::from([(tp("moving", 0), 0)]), None, now)
            })
            .expect("ran");
        let AdminOutcome::DeletedRecords(r) = o else {
            panic!()
        };
        r
    };
    assert_eq!(delete(&mut a)[&tp("moving", 0)], Ok(0));
    let leader = a.cluster().borrow().topic("moving").expect("t").partitions[0].leader;
    let next = (leader + 1) % 3;
    let now = a.sim().now();
    a.cluster()
        .borrow_mut()
        .move_leader("moving", 0, next, now)
        .expect("moved");
    // The admin's metadata still names the old leader: NOT_LEADER_OR_FOLLOWER, a refresh,
    // and the retry at the new one.
    assert_eq!(delete(&mut a)[&tp("moving", 0)], Ok(0));
    assert_eq!(
        sent.load(Ordering::SeqCst),
        3,
        "one at the old leader, then the new"
    );
}

#[test]
fn internal_topics_are_listed_only_when_asked_for() {
    use kafkit_core::protocol::metadata::response::{
        MetadataResponseBroker, MetadataResponseTopic,
    };
    use kafkit_core::protocol::MetadataResponse;
    let mut a = admin(ClusterConfig::default(), 13);
    let brokers: Vec<MetadataResponseBroker> = a
        .cluster()
        .borrow()
        .brokers()
        .iter()
        .map(|b| MetadataResponseBroker {
            node_id: b.id,
            host: b.host.clone(),
            port: b.port,
            ..Default::default()
        })
        .collect();
    let topic = |name: &str, is_internal| MetadataResponseTopic {
        name: Some(name.to_owned()),
        is_internal,
        ..Default::default()
    };
    let topics = vec![topic("__consumer_offsets", true), topic("visible", false)];
    a.cluster().borrow_mut().set_hook(
        ApiKey::Metadata,
        Box::new(move |_, _| {
            HookAction::Respond(ResponseBody::Metadata(MetadataResponse {
                brokers: brokers.clone(),
                controller_id: 0,
                topics: topics.clone(),
                ..Default::default()
            }))
        }),
    );
    let names = |a: &mut AdminSim, internal| {
        let o = a
            .call(move |c: &mut AdminCore, op, now| c.list_topics(op, internal, None, now))
            .expect("ran");
        let AdminOutcome::TopicListing(Ok(t)) = o else {
            panic!()
        };
        t.into_iter().map(|t| t.name).collect::<Vec<_>>()
    };
    assert_eq!(names(&mut a, false), ["visible"]);
    assert_eq!(names(&mut a, true), ["__consumer_offsets", "visible"]);
}

/// Runs until the core reports `Closed`; every event on the way, in order.
fn events_until_closed(a: &mut AdminSim) -> Vec<AdminEvent> {
    let mut events = Vec::new();
    let closed = a
        .sim()
        .run_until(|s| {
            events.extend(s.take_events());
            matches!(events.last(), Some(AdminEvent::Closed))
        })
        .expect("ran");
    assert!(closed, "went idle before Closed: {events:?}");
    events
}

fn drop_delete_topics(a: &mut AdminSim) {
    a.cluster()
        .borrow_mut()
        .set_hook(ApiKey::DeleteTopics, Box::new(|_, _| HookAction::Drop));
}

#[test]
fn close_lets_calls_in_progress_finish_and_refuses_new_ones() {
    let mut a = admin(ClusterConfig::default(), 21);
    let id = a.start(|c: &mut AdminCore, op, now| {
        c.create_topics(op, vec![NewTopic::new("t", 2, 1)], false, None, now)
    });
    let now = a.sim().now();
    a.sim().core().close(Duration::from_secs(10), now);
    // Refused at once, before anything is sent.
    a.sim().core().list_topics(OpId(99), false, None, now);
    let events = events_until_closed(&mut a);
    let [AdminEvent::Completed {
        id: refused,
        outcome: AdminOutcome::TopicListing(Err(AdminError::Closed)),
    }, AdminEvent::Completed {
        id: created,
        outcome: AdminOutcome::Topics(r),
    }, AdminEvent::Closed] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!((*refused, *created), (OpId(99), id));
    assert!(r["t"].is_ok(), "the call in progress finished: {r:?}");
    assert!(
        a.sim().elapsed() < Duration::from_secs(5),
        "no wait for the deadline"
    );
    assert!(a.sim().core().is_closed());
    assert_eq!(a.sim().core().poll_timeout(), None);
    // After Closed: calls still complete, every item failing with Closed.
    let o = a
        .call(|c: &mut AdminCore, op, now| c.delete_topics(op, vec!["t".into()], None, now))
        .expect("ran");
    assert_eq!(topics_outcome(o)["t"], Err(AdminError::Closed));
    assert!(
        a.cluster().borrow().topic("t").is_some(),
        "nothing was sent"
    );
}

#[test]
fn close_fails_what_is_left_at_its_deadline() {
    let mut a = admin(ClusterConfig::default(), 22);
    drop_delete_topics(&mut a);
    let start = a.sim().now();
    let id = a.start(|c: &mut AdminCore, op, now| {
        c.delete_topics(op, vec!["x".into(), "y".into()], None, now)
    });
    assert!(a.close(Duration::from_secs(2)).expect("ran"), "closed");
    assert_eq!(
        a.sim().now() - start,
        Duration::from_secs(2),
        "at the close deadline"
    );
    let r = topics_outcome(a.wait(id).expect("ran"));
    assert_eq!(r["x"], Err(AdminError::Closed), "{r:?}");
    assert_eq!(r["y"], Err(AdminError::Closed), "{r:?}");
}

#[test]
fn abort_completes_every_call_at_once() {
    let mut a = admin(ClusterConfig::default(), 23);
    drop_delete_topics(&mut a);
    let id = a.start(|c: &mut AdminCore, op, now| c.delete_topics(op, vec!["x".into()], None, now));
    a.sim().run_for(Duration::from_millis(500)).expect("ran");
    assert_eq!(a.sim().core().calls_in_progress(), 1);
    let start = a.sim().now();
    a.sim().core().abort();
    a.sim().core().abort(); // a second abort reports nothing more
    let events = events_until_closed(&mut a);
    assert_eq!(a.sim().now(), start, "at once");
    let [AdminEvent::Completed {
        id: got,
        outcome: AdminOutcome::Topics(r),
    }, AdminEvent::Closed] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(*got, id);
    assert_eq!(r["x"], Err(AdminError::Closed));
    a.sim().run_for(Duration::from_secs(30)).expect("ran");
    assert!(a.sim().take_events().is_empty(), "nothing after Closed");
}

#[test]
fn ids_are_the_callers_and_come_back_as_given() {
    let mut a = admin(ClusterConfig::default(), 24);
    let now = a.sim().now();
    // The same id twice: the core does not interpret it, so both calls report it.
    a.sim().core().list_topics(OpId(7), false, None, now);
    a.sim().core().describe_cluster(OpId(7), None, now);
    let mut done = Vec::new();
    a.sim()
        .run_until(|s| {
            done.extend(s.take_events());
            done.len() == 2
        })
        .expect("ran");
    let mut kinds = Vec::new();
    for event in &done {
        let AdminEvent::Completed { id, outcome } = event else {
            panic!("{event:?}");
        };
        assert_eq!(*id, OpId(7));
        kinds.push(match outcome {
            AdminOutcome::TopicListing(r) => r.is_ok(),
            AdminOutcome::Cluster(r) => r.is_ok(),
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(kinds, [true, true]);
}

//! Admin APIs at the frame level: CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs, AlterConfigs, IncrementalAlterConfigs, DeleteRecords, DescribeCluster.

mod cluster_support;

use cluster_support::{batch, Harness};
use kafkit_core::codec::Uuid;
use kafkit_core::protocol::create_partitions::request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafkit_core::protocol::create_topics::request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafkit_core::protocol::delete_records::request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafkit_core::protocol::delete_topics::request::DeleteTopicState;
use kafkit_core::protocol::describe_configs::request::DescribeConfigsResource;
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    alter_configs, incremental_alter_configs, AlterConfigsRequest, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeClusterRequest,
    DescribeConfigsRequest, ErrorCode, IncrementalAlterConfigsRequest, ProduceRequest,
};
use kafkit_sim::ClusterConfig;

fn topic(name: &str, partitions: i32, rf: i16) -> CreatableTopic {
    CreatableTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        ..Default::default()
    }
}

fn create(
    h: &mut Harness,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
    v: i16,
) -> Vec<(String, i16)> {
    let r = h.call(
        0,
        1,
        CreateTopicsRequest {
            topics,
            timeout_ms: 1000,
            validate_only,
            ..Default::default()
        },
        v,
    );
    r.topics
        .into_iter()
        .map(|t| (t.name, t.error_code))
        .collect()
}

#[test]
fn create_topics_and_their_per_item_errors() {
    let mut h = Harness::new(ClusterConfig::default());
    h.connect(0, 1);
    let results = create(
        &mut h,
        vec![
            topic("ok", 4, 2),
            topic("bad name!", 1, 1),
            topic("zero", 0, 1),
            topic("too-many-replicas", 1, 4),
            topic("no-replicas", 1, 0),
            topic("dup", 1, 1),
            topic("dup", 2, 1),
            CreatableTopic {
                configs: vec![CreatableTopicConfig {
                    name: "no.such.config".into(),
                    value: Some("1".into()),
                    ..Default::default()
                }],
                ..topic("bad-config", 1, 1)
            },
            CreatableTopic {
                configs: vec![CreatableTopicConfig {
                    name: "cleanup.policy".into(),
                    value: Some("shred".into()),
                    ..Default::default()
                }],
                ..topic("bad-value", 1, 1)
            },
            CreatableTopic {
                assignments: vec![
                    CreatableReplicaAssignment {
                        partition_index: 0,
                        broker_ids: vec![2, 1],
                        ..Default::default()
                    },
                    CreatableReplicaAssignment {
                        partition_index: 1,
                        broker_ids: vec![0, 2],
                        ..Default::default()
                    },
                ],
                ..topic("assigned", -1, -1)
            },
            CreatableTopic {
                assignments: vec![CreatableReplicaAssignment {
                    partition_index: 0,
                    broker_ids: vec![7],
                    ..Default::default()
                }],
                ..topic("bad-assignment", -1, -1)
            },
            topic("defaults", -1, -1),
        ],
        false,
        7,
    );
    let code = |name: &str| {
        results
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| *c)
            .unwrap()
    };
    assert_eq!(code("ok"), 0);
    assert_eq!(code("bad name!"), ErrorCode::INVALID_TOPIC_EXCEPTION.code());
    assert_eq!(code("zero"), ErrorCode::INVALID_PARTITIONS.code());
    assert_eq!(
        code("too-many-replicas"),
        ErrorCode::INVALID_REPLICATION_FACTOR.code()
    );
    assert_eq!(
        code("no-replicas"),
        ErrorCode::INVALID_REPLICATION_FACTOR.code()
    );
    assert_eq!(code("dup"), ErrorCode::INVALID_REQUEST.code());
    assert_eq!(code("bad-config"), ErrorCode::INVALID_CONFIG.code());
    assert_eq!(code("bad-value"), ErrorCode::INVALID_CONFIG.code());
    assert_eq!(code("assigned"), 0);
    assert_eq!(
        code("bad-assignment"),
        ErrorCode::INVALID_REPLICA_ASSIGNMENT.code()
    );
    assert_eq!(code("defaults"), 0);
    let c = &h.cluster;
    assert_eq!(c.topic("ok").unwrap().partitions.len(), 4);
    assert!(c
        .topic("ok")
        .unwrap()
        .partitions
        .iter()
        .all(|p| p.replicas.len() == 2));
    assert!(c.topic("dup").is_none());
    let assigned = c.topic("assigned").unwrap();
    assert_eq!(assigned.partitions[0].replicas, vec![2, 1]);
    assert_eq!(assigned.partitions[0].leader, 2);
    assert_eq!(assigned.partitions[1].leader, 0);
    assert_eq!(c.topic("defaults").unwrap().partitions.len(), 3);

    // Existing topic; validate_only creates nothing.
    let r = create(
        &mut h,
        vec![topic("ok", 1, 1), topic("later", 2, 1)],
        true,
        7,
    );
    assert_eq!(r[0].1, ErrorCode::TOPIC_ALREADY_EXISTS.code());
    assert_eq!(r[1].1, 0);
    assert!(h.cluster.topic("later").is_none());
    // Old versions answer too.
    for v in 0..=4 {
        let r = create(&mut h, vec![topic(&format!("v{v}"), 1, 1)], false, v);
        assert_eq!(r[0].1, 0, "v{v}");
    }
}

#[test]
fn delete_topics_by_name_and_id() {
    let mut h = Harness::new(ClusterConfig::default());
    h.connect(0, 1);
    create(
        &mut h,
        vec![topic("a", 1, 1), topic("b", 1, 1), topic("c", 1, 1)],
        false,
        7,
    );
    let id_b = h.cluster.topic("b").unwrap().id;
    let r = h.call(
        0,
        1,
        DeleteTopicsRequest {
            topic_names: vec!["a".into(), "nope".into()],
            timeout_ms: 1000,
            ..Default::default()
        },
        5,
    );
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        r.responses[1].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
    );
    let r = h.call(
        0,
        1,
        DeleteTopicsRequest {
            topics: vec![
                DeleteTopicState {
                    name: None,
                    topic_id: id_b,
                    ..Default::default()
                },
                DeleteTopicState {
                    name: None,
                    topic_id: Uuid::from_u128(1),
                    ..Default::default()
                },
                DeleteTopicState {
                    name: Some("c".into()),
                    topic_id: Uuid::ZERO,
                    ..Default::default()
                },
            ],
            timeout_ms: 1000,
            ..Default::default()
        },
        6,
    );
    assert_eq!(
        (r.responses[0].error_code, r.responses[0].name.as_deref()),
        (0, Some("b"))
    );
    assert_eq!(
        r.responses[1].error_code,
        ErrorCode::UNKNOWN_TOPIC_ID.code()
    );
    assert_eq!(r.responses[2].error_code, 0);
    assert_eq!(h.cluster.topic_names().count(), 0);
}

#[test]
fn create_partitions_grows_topics() {
    let mut h = Harness::new(ClusterConfig::default());
    h.connect(0, 1);
    create(&mut h, vec![topic("t", 2, 2)], false, 7);
    let r = h.call(
        0,
        1,
        CreatePartitionsRequest {
            topics: vec![
                CreatePartitionsTopic {
                    name: "t".into(),
                    count: 4,
                    assignments: Some(vec![
                        CreatePartitionsAssignment {
                            broker_ids: vec![0, 1],
                            ..Default::default()
                        },
                        CreatePartitionsAssignment {
                            broker_ids: vec![1, 2],
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                },
                CreatePartitionsTopic {
                    name: "missing".into(),
                    count: 4,
                    assignments: None,
                    ..Default::default()
                },
            ],
            timeout_ms: 1000,
            validate_only: false,
            ..Default::default()
        },
        3,
    );
    assert_eq!(
        r.results[0].error_code, 0,
        "{:?}",
        r.results[0].error_message
    );
    assert_eq!(
        r.results[1].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
    );
    let t = h.cluster.topic("t").unwrap();
    assert_eq!(t.partitions.len(), 4);
    assert_eq!(t.partitions[3].replicas, vec![1, 2]);
    for (count, code) in [
        (4, ErrorCode::INVALID_PARTITIONS),
        (2, ErrorCode::INVALID_PARTITIONS),
    ] {
        let r = h.call(
            0,
            1,
            CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: "t".into(),
                    count,
                    assignments: None,
                    ..Default::default()
                }],
                timeout_ms: 1000,
                ..Default::default()
            },
            0,
        );
        assert_eq!(r.results[0].error_code, code.code());
    }
}

#[test]
fn configs_describe_alter_and_incremental_alter() {
    let mut h = Harness::new(ClusterConfig::default());
    h.connect(0, 1);
    create(
        &mut h,
        vec![CreatableTopic {
            configs: vec![CreatableTopicConfig {
                name: "retention.ms".into(),
                value: Some("1000".into()),
                ..Default::default()
            }],
            ..topic("t", 1, 1)
        }],
        false,
        7,
    );
    let describe = |h: &mut Harness, ty: i8, name: &str, v: i16| {
        let r = h.call(
            0,
            1,
            DescribeConfigsRequest {
                resources: vec![DescribeConfigsResource {
                    resource_type: ty,
                    resource_name: name.into(),
                    configuration_keys: None,
                    ..Default::default()
                }],
                include_synonyms: v >= 1,
                ..Default::default()
            },
            v,
        );
        r.results.into_iter().next().unwrap()
    };
    for v in 0..=4 {
        let r = describe(&mut h, 2, "t", v);
        assert_eq!(r.error_code, 0);
        let get = |n: &str| r.configs.iter().find(|c| c.name == n).unwrap().clone();
        assert_eq!(get("retention.ms").value.as_deref(), Some("1000"));
        assert_eq!(get("cleanup.policy").value.as_deref(), Some("delete"));
        assert_eq!(get("max.message.bytes").value.as_deref(), Some("1048588"));
        if v >= 1 {
            assert_eq!(get("retention.ms").config_source, 1);
            assert_eq!(get("cleanup.policy").config_source, 5);
        } else {
            assert!(get("cleanup.policy").is_default);
        }
    }
    let r = describe(&mut h, 2, "nope", 4);
    assert_eq!(r.error_code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code());
    let r = describe(&mut h, 4, "0", 4);
    assert_eq!(r.error_code, 0);
    let num = r
        .configs
        .iter()
        .find(|c| c.name == "num.partitions")
        .unwrap();
    assert_eq!(num.value.as_deref(), Some("3"));
    let r = describe(&mut h, 4, "2", 4);
    assert_eq!(
        r.error_code,
        ErrorCode::INVALID_REQUEST.code(),
        "another broker's id"
    );

    // Incremental: append to a list, set, delete.
    let r = h.call(
        0,
        1,
        IncrementalAlterConfigsRequest {
            resources: vec![incremental_alter_configs::request::AlterConfigsResource {
                resource_type: 2,
                resource_name: "t".into(),
                configs: vec![
                    incremental_alter_configs::request::AlterableConfig {
                        name: "cleanup.policy".into(),
                        config_operation: 2,
                        value: Some("compact".into()),
                        ..Default::default()
                    },
                    incremental_alter_configs::request::AlterableConfig {
                        name: "retention.ms".into(),
                        config_operation: 1,
                        value: None,
                        ..Default::default()
                    },
                    incremental_alter_configs::request::AlterableConfig {
                        name: "min.insync.replicas".into(),
                        config_operation: 0,
                        value: Some("2".into()),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            validate_only: false,
            ..Default::default()
        },
        1,
    );
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
    let t = h.cluster.topic("t").unwrap();
    assert_eq!(t.config("cleanup.policy"), Some("delete,compact"));
    assert_eq!(t.config("retention.ms"), Some("604800000"));
    assert_eq!(t.config("min.insync.replicas"), Some("2"));

    // Legacy AlterConfigs replaces the whole set; bad values fail the resource.
    let alter = |h: &mut Harness, name: &str, value: &str| {
        let r = h.call(
            0,
            1,
            AlterConfigsRequest {
                resources: vec![alter_configs::request::AlterConfigsResource {
                    resource_type: 2,
                    resource_name: "t".into(),
                    configs: vec![alter_configs::request::AlterableConfig {
                        name: name.into(),
                        value: Some(value.into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                validate_only: false,
                ..Default::default()
            },
            1,
        );
        r.responses[0].error_code
    };
    assert_eq!(
        alter(&mut h, "segment.bytes", "banana"),
        ErrorCode::INVALID_CONFIG.code()
    );
    assert_eq!(alter(&mut h, "segment.bytes", "1000000"), 0);
    let t = h.cluster.topic("t").unwrap();
    assert_eq!(t.config("segment.bytes"), Some("1000000"));
    assert_eq!(t.config("cleanup.policy"), Some("delete"), "replaced");
}

#[test]
fn delete_records_moves_the_log_start() {
    let mut h = Harness::new(ClusterConfig::default());
    h.connect(0, 1);
    create(&mut h, vec![topic("t", 1, 1)], false, 7);
    let leader = h.leader("t", 0);
    h.connect(leader, 2);
    for _ in 0..3 {
        let _ = h.call(
            leader,
            2,
            ProduceRequest {
                acks: 1,
                timeout_ms: 1000,
                topic_data: vec![TopicProduceData {
                    name: "t".into(),
                    partition_data: vec![PartitionProduceData {
                        index: 0,
                        records: Some(batch(5, 1)),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            9,
        );
    }
    let delete = |h: &mut Harness, broker: i32, offset: i64| {
        let r = h.call(
            broker,
            2,
            DeleteRecordsRequest {
                topics: vec![DeleteRecordsTopic {
                    name: "t".into(),
                    partitions: vec![DeleteRecordsPartition {
                        partition_index: 0,
                        offset,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                timeout_ms: 1000,
                ..Default::default()
            },
            2,
        );
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.low_watermark)
    };
    assert_eq!(delete(&mut h, leader, 7), (0, 7));
    let p = h.cluster.partition("t", 0).unwrap();
    assert_eq!(p.log_start_offset(), 7);
    assert_eq!(p.batch_count(), 2, "the batch holding offset 7 stays");
    assert_eq!(
        delete(&mut h, leader, 16).0,
        ErrorCode::OFFSET_OUT_OF_RANGE.code()
    );
    assert_eq!(delete(&mut h, leader, -1), (0, 15));
    let other = (leader + 1) % 3;
    h.connect(other, 2);
    assert_eq!(
        delete(&mut h, other, 15).0,
        ErrorCode::NOT_LEADER_OR_FOLLOWER.code()
    );
}

#[test]
fn describe_cluster_lists_live_brokers() {
    let mut h = Harness::new(ClusterConfig::default());
    h.connect(1, 1);
    let now = h.now;
    h.cluster.crash_broker(2, now);
    let r = h.call(1, 1, DescribeClusterRequest::default(), 1);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.cluster_id, "kafkit-sim-cluster");
    assert_eq!(r.controller_id, 0);
    let ids: Vec<i32> = r.brokers.iter().map(|b| b.broker_id).collect();
    assert_eq!(ids, vec![0, 1]);
}

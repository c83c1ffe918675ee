//! Every advertised API at every advertised version gets a response that decodes; ApiVersions
//! above ours gets the v0 `UNSUPPORTED_VERSION` answer; malformed or unsupported requests
//! close the connection.

mod cluster_support;

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use cluster_support::{batch, decode, decode_as, request_frame, Harness};
use kafkit_core::codec::Uuid;
use kafkit_core::protocol::*;
use kafkit_sim::ClusterConfig;

fn sample(api: ApiKey, v: i16, id: Uuid, broker: i32) -> Option<RequestBody> {
    let t = "t".to_owned();
    Some(match api {
        ApiKey::Produce => RequestBody::Produce(ProduceRequest {
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![produce::request::TopicProduceData {
                name: t,
                partition_data: vec![produce::request::PartitionProduceData {
                    index: 0,
                    records: Some(batch(2, 1)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::Fetch => RequestBody::Fetch(FetchRequest {
            max_wait_ms: 0,
            min_bytes: 1,
            topics: vec![fetch::request::FetchTopic {
                topic: if v < 13 { t } else { String::new() },
                topic_id: if v >= 13 { id } else { Uuid::ZERO },
                partitions: vec![fetch::request::FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::ListOffsets => RequestBody::ListOffsets(ListOffsetsRequest {
            replica_id: -1,
            topics: vec![list_offsets::request::ListOffsetsTopic {
                name: t,
                partitions: vec![list_offsets::request::ListOffsetsPartition {
                    partition_index: 0,
                    timestamp: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::Metadata => RequestBody::Metadata(MetadataRequest {
            topics: Some(vec![metadata::request::MetadataRequestTopic {
                name: Some(t),
                ..Default::default()
            }]),
            allow_auto_topic_creation: true,
            ..Default::default()
        }),
        ApiKey::OffsetCommit => RequestBody::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: -1,
            topics: vec![offset_commit::request::OffsetCommitRequestTopic {
                name: t,
                partitions: vec![offset_commit::request::OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::OffsetFetch => RequestBody::OffsetFetch(if v < 8 {
            OffsetFetchRequest {
                group_id: "g".into(),
                topics: Some(vec![offset_fetch::request::OffsetFetchRequestTopic {
                    name: t,
                    partition_indexes: vec![0],
                    ..Default::default()
                }]),
                ..Default::default()
            }
        } else {
            OffsetFetchRequest {
                groups: vec![
                    offset_fetch::request::OffsetFetchRequestGroup {
                        group_id: "g".into(),
                        topics: None,
                        ..Default::default()
                    },
                    offset_fetch::request::OffsetFetchRequestGroup {
                        group_id: "h".into(),
                        topics: None,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }
        }),
        ApiKey::FindCoordinator => RequestBody::FindCoordinator(if v < 4 {
            FindCoordinatorRequest {
                key: "g".into(),
                ..Default::default()
            }
        } else {
            FindCoordinatorRequest {
                coordinator_keys: vec!["g".into(), "h".into()],
                ..Default::default()
            }
        }),
        // A group of its own per version, so no join waits for another member.
        ApiKey::JoinGroup => RequestBody::JoinGroup(JoinGroupRequest {
            group_id: format!("join-{broker}-{v}"),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: if v >= 1 { 10_000 } else { -1 },
            protocol_type: "consumer".into(),
            protocols: vec![join_group::request::JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: Bytes::new(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::Heartbeat => RequestBody::Heartbeat(HeartbeatRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: "m".into(),
            ..Default::default()
        }),
        ApiKey::LeaveGroup => RequestBody::LeaveGroup(if v < 3 {
            LeaveGroupRequest {
                group_id: "g".into(),
                member_id: "m".into(),
                ..Default::default()
            }
        } else {
            LeaveGroupRequest {
                group_id: "g".into(),
                members: vec![leave_group::request::MemberIdentity {
                    member_id: "m".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
        }),
        ApiKey::SyncGroup => RequestBody::SyncGroup(SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: "m".into(),
            ..Default::default()
        }),
        ApiKey::DescribeGroups => RequestBody::DescribeGroups(DescribeGroupsRequest {
            groups: vec!["g".into(), "h".into(), "i".into()],
            ..Default::default()
        }),
        ApiKey::ListGroups => RequestBody::ListGroups(ListGroupsRequest::default()),
        ApiKey::SaslHandshake => RequestBody::SaslHandshake(SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
            ..Default::default()
        }),
        ApiKey::ApiVersions => RequestBody::ApiVersions(ApiVersionsRequest {
            client_software_name: if v >= 3 { "test".into() } else { String::new() },
            client_software_version: if v >= 3 { "1".into() } else { String::new() },
            ..Default::default()
        }),
        ApiKey::CreateTopics => RequestBody::CreateTopics(CreateTopicsRequest {
            topics: vec![create_topics::request::CreatableTopic {
                name: format!("new-{broker}-{v}"),
                num_partitions: 1,
                replication_factor: 1,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::DeleteTopics => RequestBody::DeleteTopics(if v < 6 {
            DeleteTopicsRequest {
                topic_names: vec!["absent".into()],
                ..Default::default()
            }
        } else {
            DeleteTopicsRequest {
                topics: vec![delete_topics::request::DeleteTopicState {
                    name: Some("absent".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }
        }),
        ApiKey::DeleteRecords => RequestBody::DeleteRecords(DeleteRecordsRequest {
            topics: vec![delete_records::request::DeleteRecordsTopic {
                name: t,
                partitions: vec![delete_records::request::DeleteRecordsPartition {
                    partition_index: 0,
                    offset: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::InitProducerId => RequestBody::InitProducerId(InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 1000,
            ..Default::default()
        }),
        ApiKey::OffsetForLeaderEpoch => {
            RequestBody::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
                topics: vec![offset_for_leader_epoch::request::OffsetForLeaderTopic {
                    topic: t,
                    partitions: vec![offset_for_leader_epoch::request::OffsetForLeaderPartition {
                        partition: 0,
                        leader_epoch: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
        }
        ApiKey::DescribeConfigs => RequestBody::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![
                describe_configs::request::DescribeConfigsResource {
                    resource_type: 2,
                    resource_name: t,
                    configuration_keys: None,
                    ..Default::default()
                },
                describe_configs::request::DescribeConfigsResource {
                    resource_type: 4,
                    resource_name: "0".into(),
                    configuration_keys: None,
                    ..Default::default()
                },
            ],
            include_synonyms: v >= 1,
            include_documentation: v >= 3,
            ..Default::default()
        }),
        ApiKey::AlterConfigs => RequestBody::AlterConfigs(AlterConfigsRequest {
            resources: vec![alter_configs::request::AlterConfigsResource {
                resource_type: 2,
                resource_name: t,
                configs: vec![alter_configs::request::AlterableConfig {
                    name: "retention.ms".into(),
                    value: Some("1000".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            validate_only: true,
            ..Default::default()
        }),
        ApiKey::CreatePartitions => RequestBody::CreatePartitions(CreatePartitionsRequest {
            topics: vec![create_partitions::request::CreatePartitionsTopic {
                name: t,
                count: 2,
                assignments: None,
                ..Default::default()
            }],
            validate_only: true,
            ..Default::default()
        }),
        ApiKey::DeleteGroups => RequestBody::DeleteGroups(DeleteGroupsRequest {
            groups_names: vec!["g".into(), "h".into()],
            ..Default::default()
        }),
        ApiKey::IncrementalAlterConfigs => {
            RequestBody::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
                resources: vec![incremental_alter_configs::request::AlterConfigsResource {
                    resource_type: 2,
                    resource_name: t,
                    configs: vec![incremental_alter_configs::request::AlterableConfig {
                        name: "retention.ms".into(),
                        config_operation: 0,
                        value: Some("1000".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                validate_only: true,
                ..Default::default()
            })
        }
        ApiKey::OffsetDelete => RequestBody::OffsetDelete(OffsetDeleteRequest {
            group_id: "g".into(),
            ..Default::default()
        }),
        ApiKey::DescribeCluster => RequestBody::DescribeCluster(DescribeClusterRequest::default()),
        // Without SASL configured, SaslAuthenticate closes the connection.
        ApiKey::SaslAuthenticate => return None,
        _ => return None,
    })
}

#[test]
fn every_advertised_api_and_version_answers() {
    let mut h = Harness::new(ClusterConfig::default());
    h.connect(0, 1);
    h.call(
        0,
        1,
        CreateTopicsRequest {
            topics: vec![create_topics::request::CreatableTopic {
                name: "t".into(),
                num_partitions: -1,
                replication_factor: -1,
                assignments: vec![create_topics::request::CreatableReplicaAssignment {
                    partition_index: 0,
                    broker_ids: vec![0],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        7,
    );
    let id = h.cluster.topic("t").unwrap().id;
    let table: BTreeMap<ApiKey, (i16, i16)> = h.cluster.api_versions().clone();
    let mut checked = 0;
    // Broker 0 leads the topic; groups hash to all three, so each broker answers some
    // group requests itself and refuses others with NOT_COORDINATOR.
    for broker in 0..3 {
        h.connect(broker, 2);
        for (&api, &(min, max)) in &table {
            for v in min..=max {
                let Some(body) = sample(api, v, id, broker) else {
                    continue;
                };
                let frame = request_frame(&body, v, 1000 + v as i32);
                let reply = h.cluster.handle_frame(broker, 2, frame, h.now);
                assert!(!reply.close, "{api:?} v{v} closed the connection");
                assert_eq!(reply.frames.len(), 1, "{api:?} v{v} on broker {broker}");
                let (header, resp) = decode(api, v, &reply.frames[0]);
                assert_eq!(header.correlation_id, 1000 + v as i32);
                assert_eq!(resp.api_key(), api);
                checked += 1;
            }
        }
    }
    assert!(checked > 450, "{checked}");
}

#[test]
fn api_versions_above_ours_get_the_v0_unsupported_answer() {
    let mut h = Harness::new(ClusterConfig::default());
    h.connect(0, 1);
    let mut frame = BytesMut::new();
    frame.put_i16(ApiKey::ApiVersions.as_i16());
    frame.put_i16(99);
    frame.put_i32(77);
    frame.put_slice(b"\x00\x04test\x00garbage-from-the-future");
    let reply = h.cluster.handle_frame(0, 1, frame.freeze(), h.now);
    assert!(!reply.close);
    let (header, r) = decode_as::<ApiVersionsRequest>(0, &reply.frames[0]);
    assert_eq!(header.correlation_id, 77);
    assert_eq!(r.error_code, ErrorCode::UNSUPPORTED_VERSION.code());
    let av = r
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions.as_i16())
        .unwrap();
    assert_eq!((av.min_version, av.max_version), (0, 4));
}

#[test]
fn malformed_and_unsupported_requests_close_the_connection() {
    let mut h = Harness::new(ClusterConfig::default().with_api_versions(ApiKey::Metadata, 0, 4));
    let cases: Vec<(&str, Bytes)> = vec![
        ("short", Bytes::from_static(b"\x00\x03")),
        ("unknown api key", {
            let mut f = BytesMut::new();
            f.put_i16(999);
            f.put_i16(0);
            f.put_i32(1);
            f.put_i16(-1);
            f.freeze()
        }),
        ("truncated body", {
            let full = request_frame(&RequestBody::Metadata(MetadataRequest::default()), 4, 1);
            full.slice(..full.len() - 1)
        }),
        (
            "version above the override",
            request_frame(&RequestBody::Metadata(MetadataRequest::default()), 5, 1),
        ),
        (
            "API the model does not serve",
            request_frame(
                &RequestBody::DescribeAcls(DescribeAclsRequest::default()),
                1,
                1,
            ),
        ),
    ];
    for (i, (what, frame)) in cases.into_iter().enumerate() {
        let conn = i as u64 + 10;
        h.connect(0, conn);
        let reply = h.cluster.handle_frame(0, conn, frame, h.now);
        assert!(reply.close && reply.frames.is_empty(), "{what}");
    }
}

/// Kafka parses the fields a request version has and ignores what follows; librdkafka 2.x
/// relies on it (its all-topics Metadata v12 request carries three spare bytes).
#[test]
fn bytes_after_a_request_body_are_ignored_as_kafka_does() {
    let mut h = Harness::new(ClusterConfig::default());
    let frame = Bytes::from(
        [
            &request_frame(&RequestBody::Metadata(MetadataRequest::default()), 12, 7)[..],
            b"\0\0\0",
        ]
        .concat(),
    );
    h.connect(0, 1);
    let reply = h.cluster.handle_frame(0, 1, frame, h.now);
    assert!(!reply.close, "the connection stays open");
    assert_eq!(reply.frames.len(), 1, "the request is answered");
    assert_eq!(
        &reply.frames[0][4..8],
        &7i32.to_be_bytes(),
        "correlation id 7"
    );
}

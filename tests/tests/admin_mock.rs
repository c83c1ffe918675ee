//! The admin client against librdkafka's mock cluster, a broker nobody here wrote. The mock
//! speaks no admin APIs beyond Metadata and the group basics: every admin call it lacks must
//! fail promptly with an error that names the API and says "unsupported by this broker" —
//! never hang. Which APIs the mock has is read from its own ApiVersions answer, so the test
//! follows librdkafka as it grows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafkit_blocking::{Admin, LowLevelClient};
use kafkit_core::admin::{
    AclBindingFilter, AdminError, AlterConfigOp, ConfigResource, NewPartitions, NewTopic,
};
use kafkit_core::config::AdminConfig;
use kafkit_core::consumer::TopicPartition;
use kafkit_core::network::ApiVersionTable;
use kafkit_core::protocol::ApiKey;
use kafkit_tests::scenarios::config;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// Checks one call's outcome: unsupported (naming `api`) when the mock lacks `api`, anything
/// but "unsupported" otherwise.
fn check<T: std::fmt::Debug>(
    table: &ApiVersionTable,
    api: ApiKey,
    result: Result<T, AdminError>,
    seen: &mut Vec<String>,
) {
    let lacks = table.negotiate(api, None).is_none();
    match (&result, lacks) {
        (Err(e), true) => {
            let text = e.to_string();
            assert!(e.is_unsupported(), "{api}: {text}");
            assert!(
                text.contains(&format!("{api} is unsupported by this broker")),
                "{text}"
            );
            seen.push(api.to_string());
        }
        (Ok(_), true) => panic!("{api}: the mock lacks it, yet {result:?}"),
        (Err(e), false) => assert!(!e.is_unsupported(), "{api}: {e}"),
        (Ok(_), false) => {}
    }
}

#[test]
fn admin_calls_the_mock_lacks_fail_naming_the_api() {
    let mock: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(2).expect("librdkafka's mock cluster");
    mock.create_topic("m", 1, 1).expect("a topic in the mock");
    let bootstrap = mock.bootstrap_servers();
    let (_, _, table) = LowLevelClient::start(&config(&bootstrap))
        .expect("client")
        .check_version()
        .expect("the mock answers ApiVersions");
    let mut c = AdminConfig::default();
    c.common = config(&bootstrap);
    c.default_api_timeout_ms = 10_000;
    let admin = Admin::start(&c).expect("admin");
    let t0 = Instant::now();
    let mut seen = Vec::new();

    let per_topic = |r: Result<BTreeMap<String, Result<(), AdminError>>, AdminError>| {
        r.and_then(|m| m.into_values().next().expect("one topic"))
    };
    check(
        &table,
        ApiKey::CreateTopics,
        per_topic(admin.create_topics(vec![NewTopic::new("m", 1, 1)], false)),
        &mut seen,
    );
    check(
        &table,
        ApiKey::CreatePartitions,
        per_topic(admin.create_partitions(
            BTreeMap::from([("m".to_string(), NewPartitions::increase_to(2))]),
            false,
        )),
        &mut seen,
    );
    let configs = admin
        .describe_configs(vec![ConfigResource::broker(1)])
        .and_then(|m| m.into_values().next().expect("one"));
    check(&table, ApiKey::DescribeConfigs, configs, &mut seen);
    // Without IncrementalAlterConfigs the legacy path runs: DescribeConfigs first.
    let altered = admin
        .alter_configs(
            BTreeMap::from([(
                ConfigResource::broker(1),
                vec![AlterConfigOp::Set("log.retention.ms".into(), "1000".into())],
            )]),
            false,
        )
        .and_then(|m| m.into_values().next().expect("one"));
    if table
        .negotiate(ApiKey::IncrementalAlterConfigs, None)
        .is_some()
    {
        check(&table, ApiKey::IncrementalAlterConfigs, altered, &mut seen);
    } else {
        check(&table, ApiKey::DescribeConfigs, altered, &mut seen);
    }
    check(
        &table,
        ApiKey::DeleteRecords,
        admin
            .delete_records(BTreeMap::from([(TopicPartition::new("m", 0), 0)]))
            .and_then(|m| m.into_values().next().expect("one")),
        &mut seen,
    );
    check(
        &table,
        ApiKey::DescribeLogDirs,
        admin
            .describe_log_dirs(vec![1])
            .and_then(|m| m.into_values().next().expect("one")),
        &mut seen,
    );
    check(
        &table,
        ApiKey::DescribeAcls,
        admin.describe_acls(AclBindingFilter::any()),
        &mut seen,
    );
    check(
        &table,
        ApiKey::DeleteAcls,
        admin
            .delete_acls(vec![AclBindingFilter::any()])
            .and_then(|m| m.into_values().next().expect("one")),
        &mut seen,
    );
    check(
        &table,
        ApiKey::DeleteGroups,
        admin
            .delete_consumer_groups(vec!["g".into()])
            .and_then(|m| m.into_values().next().expect("one")),
        &mut seen,
    );
    check(
        &table,
        ApiKey::OffsetDelete,
        admin
            .delete_consumer_group_offsets("g", vec![TopicPartition::new("m", 0)])
            .and_then(|m| m.into_values().next().expect("one")),
        &mut seen,
    );
    check(
        &table,
        ApiKey::DeleteTopics,
        per_topic(admin.delete_topics(vec!["m".into()])),
        &mut seen,
    );

    // The mock lacks at least the ACL and log-dir APIs; those failed at once, not at the
    // deadline.
    assert!(seen.iter().any(|s| s == "DescribeAcls"), "{seen:?}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());

    // What the mock has works: the cluster and its topics.
    let cluster = admin.describe_cluster().expect("describe_cluster");
    assert_eq!(cluster.brokers.len(), 2);
    admin.list_topics(true).expect("list_topics");
}

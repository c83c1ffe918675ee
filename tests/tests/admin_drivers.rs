//! The admin client through every runtime driver (tokio, smol, async-std, blocking) against the
//! development broker over real sockets: topics, partitions, configs, groups and their
//! offsets, deleted records — and every per-item error (a topic that exists, an unknown topic,
//! an invalid partition count) reported for its item while the others succeed.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use kafkit_blocking::{Admin, Producer, Wait};
use kafkit_core::admin::{AdminError, AlterConfigOp, ConfigResource, NewPartitions, NewTopic};
use kafkit_core::config::{AdminConfig, ProducerConfig};
use kafkit_core::consumer::{OffsetAndMetadata, TopicPartition};
use kafkit_core::driver::AdminHandle;
use kafkit_core::producer::ProducerRecord;
use kafkit_core::protocol::ErrorCode;
use kafkit_sim::{DevBroker, DevBrokerConfig};
use kafkit_tests::scenarios::config;

fn admin_config(bootstrap: &str) -> AdminConfig {
    let mut c = AdminConfig::default();
    c.common = config(bootstrap);
    c.default_api_timeout_ms = 20_000;
    c
}

fn code<T: std::fmt::Debug>(r: &Result<T, AdminError>) -> Option<ErrorCode> {
    r.as_ref().err().and_then(AdminError::code)
}

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

/// Writes `n` records to partition 0 of `topic` with kafkit's producer.
fn produce(bootstrap: &str, topic: &str, n: usize) {
    let mut c = ProducerConfig::default();
    c.common = config(bootstrap);
    let p = Producer::start(&c).expect("producer");
    let deliveries: Vec<_> = (0..n)
        .map(|i| {
            p.enqueue(
                ProducerRecord::new(topic)
                    .partition(0)
                    .value(format!("v{i}")),
            )
            .expect("queued")
        })
        .collect();
    for d in deliveries {
        d.wait().expect("delivered");
    }
    p.close(None).expect("closed");
}

/// The whole scenario through one handle; `topic` is written with 5 records to partition 0
/// beforehand by the caller (after it is created here: see `run`).
async fn topics_and_configs(admin: &AdminHandle, topic: &str) {
    let r = admin
        .create_topics(
            vec![
                NewTopic::new(topic, 3, 1).config("retention.ms", "3600000"),
                NewTopic::new(format!("{topic}-zero"), 0, 1),
            ],
            false,
        )
        .await
        .expect("create_topics");
    assert!(r[topic].is_ok(), "{r:?}");
    assert_eq!(
        code(&r[&format!("{topic}-zero")]),
        Some(ErrorCode::INVALID_PARTITIONS)
    );

    let again = admin
        .create_topics(
            vec![
                NewTopic::new(topic, 3, 1),
                NewTopic::new(format!("{topic}-b"), 1, 1),
            ],
            false,
        )
        .await
        .expect("create_topics");
    assert_eq!(code(&again[topic]), Some(ErrorCode::TOPIC_ALREADY_EXISTS));
    assert!(again[&format!("{topic}-b")].is_ok());

    let listed = admin.list_topics(false).await.expect("list_topics");
    assert!(listed.iter().any(|t| t.name == topic), "{listed:?}");

    let d = admin
        .describe_topics(vec![topic.to_owned(), format!("{topic}-unknown")])
        .await
        .expect("describe_topics");
    assert_eq!(d[topic].as_ref().expect("described").partitions.len(), 3);
    assert_eq!(
        code(&d[&format!("{topic}-unknown")]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );

    let grown = admin
        .create_partitions(
            BTreeMap::from([
                (topic.to_owned(), NewPartitions::increase_to(4)),
                (format!("{topic}-b"), NewPartitions::increase_to(1)),
            ]),
            false,
        )
        .await
        .expect("create_partitions");
    assert!(grown[topic].is_ok(), "{grown:?}");
    assert_eq!(
        code(&grown[&format!("{topic}-b")]),
        Some(ErrorCode::INVALID_PARTITIONS)
    );

    let resource = ConfigResource::topic(topic);
    let altered = admin
        .alter_configs(
            BTreeMap::from([
                (
                    resource.clone(),
                    vec![AlterConfigOp::Set(
                        "cleanup.policy".into(),
                        "compact".into(),
                    )],
                ),
                (
                    ConfigResource::topic(format!("{topic}-unknown")),
                    vec![AlterConfigOp::Set(
                        "cleanup.policy".into(),
                        "compact".into(),
                    )],
                ),
            ]),
            false,
        )
        .await
        .expect("alter_configs");
    assert!(altered[&resource].is_ok(), "{altered:?}");
    assert_eq!(
        code(&altered[&ConfigResource::topic(format!("{topic}-unknown"))]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    let configs = admin
        .describe_configs(vec![resource.clone(), ConfigResource::broker(0)])
        .await
        .expect("describe_configs");
    let entries = configs[&resource].as_ref().expect("topic configs");
    let value = |n: &str| {
        entries
            .iter()
            .find(|e| e.name == n)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(value("cleanup.policy").as_deref(), Some("compact"));
    assert_eq!(value("retention.ms").as_deref(), Some("3600000"));
    assert!(!configs[&ConfigResource::broker(0)]
        .as_ref()
        .expect("broker")
        .is_empty());

    let cluster = admin.describe_cluster().await.expect("describe_cluster");
    assert_eq!(cluster.brokers.len(), 2);
    assert!(cluster.controller.is_some());
}

async fn records_groups_and_cleanup(admin: &AdminHandle, topic: &str) {
    let deleted = admin
        .delete_records(BTreeMap::from([
            (tp(topic, 0), 2),
            (tp(topic, 1), 100),
            (tp(&format!("{topic}-unknown"), 0), 0),
        ]))
        .await
        .expect("delete_records");
    assert_eq!(deleted[&tp(topic, 0)], Ok(2), "{deleted:?}");
    assert_eq!(
        code(&deleted[&tp(topic, 1)]),
        Some(ErrorCode::OFFSET_OUT_OF_RANGE)
    );
    assert_eq!(
        code(&deleted[&tp(&format!("{topic}-unknown"), 0)]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );

    let group = format!("{topic}-group");
    let altered = admin
        .alter_consumer_group_offsets(
            &group,
            BTreeMap::from([
                (
                    tp(topic, 0),
                    OffsetAndMetadata::new(3).with_metadata("admin"),
                ),
                (tp(topic, 1), OffsetAndMetadata::new(0)),
            ]),
        )
        .await
        .expect("alter offsets");
    assert!(altered.values().all(Result::is_ok), "{altered:?}");
    let offsets = admin
        .list_consumer_group_offsets(&group, None)
        .await
        .expect("list offsets");
    assert_eq!(offsets[&tp(topic, 0)].offset, 3);
    assert_eq!(offsets[&tp(topic, 0)].metadata, "admin");
    assert_eq!(offsets[&tp(topic, 1)].offset, 0);

    let groups = admin.list_consumer_groups().await.expect("list groups");
    assert!(groups.errors.is_empty(), "{groups:?}");
    assert!(
        groups.groups.iter().any(|g| g.group_id == group),
        "{groups:?}"
    );
    let described = admin
        .describe_consumer_groups(vec![group.clone()])
        .await
        .expect("describe groups");
    assert_eq!(
        described[&group].as_ref().expect("described").state,
        "Empty"
    );

    let removed = admin
        .delete_consumer_group_offsets(&group, vec![tp(topic, 1)])
        .await
        .expect("delete offsets");
    assert!(removed[&tp(topic, 1)].is_ok(), "{removed:?}");
    let offsets = admin
        .list_consumer_group_offsets(&group, None)
        .await
        .expect("list offsets");
    assert!(!offsets.contains_key(&tp(topic, 1)));

    let gone = admin
        .delete_consumer_groups(vec![group.clone(), format!("{topic}-nogroup")])
        .await
        .expect("delete groups");
    assert!(gone[&group].is_ok(), "{gone:?}");
    assert_eq!(
        code(&gone[&format!("{topic}-nogroup")]),
        Some(ErrorCode::GROUP_ID_NOT_FOUND)
    );

    let deleted = admin
        .delete_topics(vec![
            topic.to_owned(),
            format!("{topic}-b"),
            format!("{topic}-unknown"),
        ])
        .await
        .expect("delete_topics");
    assert!(
        deleted[topic].is_ok() && deleted[&format!("{topic}-b")].is_ok(),
        "{deleted:?}"
    );
    assert_eq!(
        code(&deleted[&format!("{topic}-unknown")]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    let listed = admin.list_topics(false).await.expect("list_topics");
    assert!(!listed.iter().any(|t| t.name == topic), "{listed:?}");
}

/// Runs the scenario with `block_on` of the driver's runtime around each half, producing
/// records between them.
type Scenario<'a> = std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>;

fn run(
    name: &str,
    start: impl Fn(&AdminConfig) -> AdminHandle,
    block_on: impl for<'a> Fn(Scenario<'a>),
) {
    let broker = DevBroker::start(DevBrokerConfig::new(2)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let admin = start(&admin_config(&bootstrap));
    let topic = format!("admin-{name}");
    let t0 = Instant::now();
    block_on(Box::pin(topics_and_configs(&admin, &topic)));
    produce(&bootstrap, &topic, 5);
    block_on(Box::pin(records_groups_and_cleanup(&admin, &topic)));
    // Per-item errors are final: no call waited for its deadline (20 s).
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert!(
        broker.model_failures().is_empty(),
        "{:?}",
        broker.model_failures()
    );
}

#[test]
fn tokio() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    run(
        "tokio",
        |c| {
            let _guard = rt.enter();
            kafkit_tokio::admin(c).expect("admin")
        },
        |f| rt.block_on(f),
    );
}

#[test]
fn smol() {
    run(
        "smol",
        |c| kafkit_smol::admin(c).expect("admin"),
        |f| smol::block_on(f),
    );
}

#[test]
fn async_std() {
    run(
        "async-std",
        |c| kafkit_async_std::admin(c).expect("admin"),
        |f| smol::block_on(f),
    );
}

#[test]
fn blocking() {
    let broker = DevBroker::start(DevBrokerConfig::new(2)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let admin = Admin::start(&admin_config(&bootstrap)).expect("admin");
    // The blocking methods themselves ...
    let r = admin
        .create_topics(vec![NewTopic::new("blocking-direct", 2, 1)], false)
        .expect("create_topics");
    assert!(r["blocking-direct"].is_ok(), "{r:?}");
    let r = admin
        .create_topics(vec![NewTopic::new("blocking-direct", 2, 1)], false)
        .expect("create_topics");
    assert_eq!(
        code(&r["blocking-direct"]),
        Some(ErrorCode::TOPIC_ALREADY_EXISTS)
    );
    let d = admin
        .describe_topics(vec!["blocking-direct".into()])
        .expect("describe_topics");
    assert_eq!(
        d["blocking-direct"].as_ref().expect("d").partitions.len(),
        2
    );
    let r = admin
        .delete_topics(vec!["blocking-direct".into(), "blocking-unknown".into()])
        .expect("delete_topics");
    assert!(r["blocking-direct"].is_ok());
    assert_eq!(
        code(&r["blocking-unknown"]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    // ... and the whole scenario through the same loop thread.
    let topic = "admin-blocking";
    let handle = admin.handle().clone();
    futures_executor::block_on(topics_and_configs(&handle, topic));
    produce(&bootstrap, topic, 5);
    futures_executor::block_on(records_groups_and_cleanup(&handle, topic));
}

#[test]
fn a_call_on_a_closed_broker_times_out_by_its_deadline() {
    let broker = DevBroker::start(DevBrokerConfig::new(1)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    broker.shutdown();
    // The waiting mode, bounded by the call's deadline: with fail fast (the default) the
    // refused round ends the call at once (tests/tests/bootstrap_fail_fast.rs).
    let mut config = admin_config(&bootstrap);
    config.common.bootstrap_fail_fast = false;
    let admin = Admin::start(&config)
        .expect("admin")
        .with_timeout(Duration::from_secs(2));
    let t0 = Instant::now();
    let e = admin.list_topics(false).expect_err("no broker");
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}

#[test]
fn a_live_group_is_described_with_its_member_and_the_offsets_it_committed() {
    use kafkit_blocking::Consumer;
    use kafkit_core::config::ConsumerConfig;

    let broker = DevBroker::start(DevBrokerConfig::new(1)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let admin = Admin::start(&admin_config(&bootstrap)).expect("admin");
    let r = admin
        .create_topics(vec![NewTopic::new("live-t", 2, 1)], false)
        .expect("create_topics");
    assert!(r["live-t"].is_ok(), "{r:?}");
    produce(&bootstrap, "live-t", 3);

    let mut c = ConsumerConfig::default();
    c.common = config(&bootstrap);
    c.set("group_id", "live").expect("group_id");
    c.set("auto_offset_reset", "earliest").expect("reset");
    c.set("enable_auto_commit", "false").expect("auto commit");
    let consumer = Consumer::start(&c).expect("consumer");
    consumer.subscribe(["live-t"]).expect("subscribe");
    let t0 = Instant::now();
    let mut read = 0;
    while read < 3 {
        assert!(t0.elapsed() < Duration::from_secs(30), "read {read} of 3");
        read += consumer
            .poll(Duration::from_millis(200))
            .expect("poll")
            .count();
    }
    consumer.commit(None).expect("commit");

    let d = admin
        .describe_consumer_groups(vec!["live".into()])
        .expect("describe");
    let g = d["live"].as_ref().expect("described");
    assert_eq!(g.state, "Stable", "{g:?}");
    assert_eq!(g.protocol_type, "consumer");
    assert_eq!(g.members.len(), 1, "{g:?}");
    let mut assigned = g.members[0].assignment.clone();
    assigned.sort();
    assert_eq!(assigned, [tp("live-t", 0), tp("live-t", 1)]);

    let offsets = admin
        .list_consumer_group_offsets("live", Some(vec![tp("live-t", 0)]))
        .expect("offsets");
    assert_eq!(offsets[&tp("live-t", 0)].offset, 3);

    // A group with a member can be neither deleted nor have offsets set from outside.
    let r = admin
        .delete_consumer_groups(vec!["live".into()])
        .expect("delete groups");
    assert_eq!(code(&r["live"]), Some(ErrorCode::NON_EMPTY_GROUP), "{r:?}");
    let r = admin
        .alter_consumer_group_offsets(
            "live",
            BTreeMap::from([(tp("live-t", 0), OffsetAndMetadata::new(0))]),
        )
        .expect("alter offsets");
    assert!(r[&tp("live-t", 0)].is_err(), "{r:?}");

    consumer.close().expect("close");
    let r = admin
        .delete_consumer_groups(vec!["live".into()])
        .expect("delete groups");
    assert!(r["live"].is_ok(), "{r:?}");
}

//! Defaults match the Java client 3.x (with kafkit's documented exceptions), and every option
//! table agrees with the `Default` impls.

use std::collections::HashSet;

use kafkit_core::config::{
    Acks, AdminConfig, AssignmentStrategy, AutoOffsetReset, CommonConfig, CompressionType,
    ConsumerConfig, IsolationLevel, OptionInfo, Origin, Partitioner, ProducerConfig, SaslMechanism,
    SecurityProtocol,
};

#[test]
fn common_defaults_match_java() {
    let c = CommonConfig::default();
    assert_eq!(c.bootstrap_servers, ["localhost:9092"]);
    assert_eq!(c.client_id, "kafkit");
    assert_eq!(c.request_timeout_ms, 30_000);
    assert_eq!(c.retry_backoff_ms, 100);
    assert_eq!(c.retry_backoff_max_ms, 1_000);
    assert_eq!(c.reconnect_backoff_ms, 50);
    assert_eq!(c.reconnect_backoff_max_ms, 1_000);
    assert_eq!(c.connections_max_idle_ms, 540_000);
    assert_eq!(c.metadata_max_age_ms, 300_000);
    assert_eq!(c.max_in_flight_requests_per_connection, 5);
    assert_eq!(c.send_buffer_bytes, Some(131_072));
    assert_eq!(c.receive_buffer_bytes, Some(65_536));
    assert_eq!(c.socket_connection_setup_timeout_ms, 10_000);
    assert_eq!(c.socket_connection_setup_timeout_max_ms, 30_000);
    assert_eq!(c.security_protocol, SecurityProtocol::Plaintext);
    assert!(c.ssl_check_hostname);
    assert_eq!(c.sasl_mechanism, SaslMechanism::Plain);
    assert_eq!(c.api_version, None);
    assert_eq!(c.api_version_auto_timeout_ms, 2_000);
    assert_eq!(c.client_rack, "");
    assert_eq!(c.max_response_size, 104_857_600);
    assert_eq!(c.random_seed, None);
    assert!(c.validate().is_ok());
}

#[test]
fn producer_defaults_match_java() {
    let p = ProducerConfig::default();
    assert_eq!(p.acks, Acks::All);
    assert_eq!(p.batch_size, 16_384);
    assert_eq!(p.linger_ms, 5, "Java 4.0 / KIP-1030, documented");
    assert_eq!(p.buffer_memory, 33_554_432);
    assert_eq!(p.compression_type, CompressionType::None);
    assert_eq!(p.compression_gzip_level, -1);
    assert_eq!(p.compression_lz4_level, 9);
    assert_eq!(p.compression_zstd_level, 3);
    assert_eq!(p.max_request_size, 1_048_576);
    assert_eq!(p.max_block_ms, 60_000);
    assert_eq!(p.effective_delivery_timeout_ms(), 120_000);
    assert_eq!(p.retries, 2_147_483_647);
    assert!(p.idempotence_enabled());
    assert_eq!(p.transactional_id, None);
    assert_eq!(p.transaction_timeout_ms, 60_000);
    assert_eq!(p.partitioner, Partitioner::Default);
    assert!(!p.partitioner_ignore_keys);
    // Java's default is true; kafkit's sticky partitioner does not weigh partitions by queue
    // sizes, so its default says so (and `true` is refused).
    assert!(!p.partitioner_adaptive_partitioning_enable);
    assert_eq!(p.partitioner_availability_timeout_ms, 0);
    assert_eq!(p.metadata_max_idle_ms, 300_000);
    assert!(p.validate().is_ok());
}

#[test]
fn consumer_defaults_match_java() {
    let c = ConsumerConfig::default();
    assert_eq!(c.group_id, None);
    assert_eq!(c.auto_offset_reset, AutoOffsetReset::Latest);
    assert!(c.enable_auto_commit);
    assert!(!c.auto_commit_enabled(), "no group, no auto-commit");
    assert_eq!(c.auto_commit_interval_ms, 5_000);
    assert_eq!(c.fetch_min_bytes, 1);
    assert_eq!(c.fetch_max_wait_ms, 500);
    assert_eq!(c.fetch_max_bytes, 52_428_800);
    assert_eq!(c.max_partition_fetch_bytes, 1_048_576);
    assert_eq!(c.max_poll_records, 500);
    assert_eq!(c.max_poll_interval_ms, 300_000);
    assert_eq!(c.session_timeout_ms, 45_000);
    assert_eq!(c.heartbeat_interval_ms, 3_000);
    assert_eq!(
        c.partition_assignment_strategy,
        [
            AssignmentStrategy::Range,
            AssignmentStrategy::CooperativeSticky
        ]
    );
    assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
    assert!(c.check_crcs);
    assert!(c.exclude_internal_topics);
    assert!(c.allow_auto_create_topics);
    assert_eq!(c.consumer_timeout_ms, None);
    assert_eq!(c.default_api_timeout_ms, 60_000);
    assert_eq!(c.fetch_buffer_bytes, 64 << 20);
    assert!(c.validate().is_ok());

    assert_eq!(AdminConfig::default().default_api_timeout_ms, 60_000);
    assert!(AdminConfig::default().validate().is_ok());
}

/// Reads an option's value from a default config of one kind.
type Getter = Box<dyn Fn(&str) -> Option<String>>;

/// Every kind's tables, with a way to read an option's value from a default config.
fn tables() -> Vec<(&'static str, &'static [OptionInfo], Getter)> {
    vec![
        (
            "common",
            CommonConfig::options(),
            Box::new(|n| CommonConfig::default().get(n)),
        ),
        (
            "producer",
            ProducerConfig::options(),
            Box::new(|n| ProducerConfig::default().get(n)),
        ),
        (
            "consumer",
            ConsumerConfig::options(),
            Box::new(|n| ConsumerConfig::default().get(n)),
        ),
        (
            "admin",
            AdminConfig::options(),
            Box::new(|n| AdminConfig::default().get(n)),
        ),
    ]
}

#[test]
fn table_defaults_agree_with_default_impls() {
    for (kind, table, get) in tables() {
        for o in table {
            assert_eq!(
                get(o.python_name).as_deref(),
                Some(o.default),
                "{kind}: {}",
                o.python_name
            );
            assert_eq!(
                get(o.java_name).as_deref(),
                Some(o.default),
                "{kind}: {}",
                o.java_name
            );
        }
    }
}

#[test]
fn names_are_unique_well_formed_and_documented() {
    for (kind, table, _) in tables() {
        let mut seen = HashSet::new();
        for o in table {
            assert!(!o.doc.is_empty(), "{kind}: {} has no doc", o.python_name);
            assert!(
                o.python_name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                o.python_name
            );
            assert!(
                o.java_name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.'),
                "{}",
                o.java_name
            );
            if o.origin != Origin::Java {
                assert_eq!(o.java_name, o.python_name.replace('_', "."));
            }
            assert!(
                seen.insert(o.python_name),
                "{kind}: duplicate {}",
                o.python_name
            );
            if o.java_name != o.python_name {
                assert!(
                    seen.insert(o.java_name),
                    "{kind}: duplicate {}",
                    o.java_name
                );
            }
        }
    }
    // Every kind starts with the common options.
    let common = CommonConfig::options().len();
    for t in [
        ProducerConfig::options(),
        ConsumerConfig::options(),
        AdminConfig::options(),
    ] {
        assert!(t.len() > common);
        for (a, b) in t.iter().zip(CommonConfig::options()) {
            assert_eq!(a.python_name, b.python_name);
        }
    }
}

#[test]
fn setting_each_default_round_trips() {
    let mut p = ProducerConfig::default();
    for o in ProducerConfig::options() {
        p.set(o.java_name, o.default).unwrap();
    }
    p.validate().unwrap();
    let mut c = ConsumerConfig::default();
    for o in ConsumerConfig::options() {
        c.set(o.python_name, o.default).unwrap();
    }
    assert_eq!(c, ConsumerConfig::default());
    let mut a = AdminConfig::default();
    for o in AdminConfig::options() {
        a.set(o.python_name, o.default).unwrap();
    }
    assert_eq!(a, AdminConfig::default());
}

#[test]
fn values_lists_every_option() {
    let values = ProducerConfig::default().values();
    assert_eq!(values.len(), ProducerConfig::options().len());
    assert!(values.contains(&("acks", "all".to_owned())));
    assert!(values.contains(&("bootstrap_servers", "localhost:9092".to_owned())));
}

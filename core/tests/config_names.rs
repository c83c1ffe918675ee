//! Option names (snake_case and dotted), typed builders, unknown, invalid, ignored and
//! unsupported options.

use kafkit_core::config::{
    Acks, AdminConfig, AssignmentStrategy, BrokerVersion, CommonConfig, CompressionType,
    ConfigError, ConsumerConfig, IsolationLevel, Partitioner, ProducerConfig, SaslMechanism,
    SecurityProtocol,
};

#[test]
fn dotted_and_snake_names_both_work() {
    let mut c = ProducerConfig::default();
    c.set("request.timeout.ms", "1000").unwrap();
    assert_eq!(c.common.request_timeout_ms, 1000);
    c.set("request_timeout_ms", " 2000 ").unwrap();
    assert_eq!(c.common.request_timeout_ms, 2000);
    assert_eq!(c.get("request.timeout.ms").as_deref(), Some("2000"));
    assert_eq!(c.get("request_timeout_ms").as_deref(), Some("2000"));

    c.set("linger.ms", "7").unwrap();
    c.set("batch_size", "32768").unwrap();
    c.set("compression.type", "ZSTD").unwrap();
    c.set("compression.zstd.level", "-5").unwrap();
    c.set("acks", "1").unwrap();
    c.set("enable.idempotence", "false").unwrap();
    assert_eq!(c.linger_ms, 7);
    assert_eq!(c.batch_size, 32768);
    assert_eq!(c.compression_type, CompressionType::Zstd);
    assert_eq!(c.compression_zstd_level, -5);
    assert_eq!(c.acks, Acks::One);
    c.validate().unwrap();

    let mut k = ConsumerConfig::default();
    k.set("group.id", "g").unwrap();
    k.set("isolation_level", "read_committed").unwrap();
    k.set("max.poll.records", "10").unwrap();
    assert_eq!(k.group_id.as_deref(), Some("g"));
    assert_eq!(k.isolation_level, IsolationLevel::ReadCommitted);
    assert_eq!(k.max_poll_records, 10);
    assert!(k.auto_commit_enabled());

    let mut a = AdminConfig::default();
    a.set("default.api.timeout.ms", "5").unwrap();
    assert_eq!(a.default_api_timeout_ms, 5);
}

#[test]
fn acks_spellings() {
    let mut c = ProducerConfig::default();
    for (v, want) in [
        ("all", Acks::All),
        ("-1", Acks::All),
        ("1", Acks::One),
        ("0", Acks::Zero),
    ] {
        c.set("acks", v).unwrap();
        assert_eq!(c.acks, want);
    }
    assert_eq!(Acks::All.as_i16(), -1);
}

#[test]
fn bootstrap_servers_parsing() {
    let mut c = CommonConfig::default();
    c.set(
        "bootstrap.servers",
        " a:9092, b , PLAINTEXT://c:9093,[::1]:9094,",
    )
    .unwrap();
    assert_eq!(
        c.bootstrap_servers,
        ["a:9092", "b:9092", "c:9093", "[::1]:9094"]
    );
    assert_eq!(
        c.get("bootstrap_servers").unwrap(),
        "a:9092,b:9092,c:9093,[::1]:9094"
    );
    for bad in ["", " , ", "a:notaport", "a:0", "a:70000"] {
        let err = c.set("bootstrap_servers", bad).unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidValue { .. }),
            "{bad}: {err}"
        );
    }

    let p = ProducerConfig::builder()
        .bootstrap_servers(["x:1", "y"])
        .build()
        .unwrap();
    assert_eq!(p.common.bootstrap_servers, ["x:1", "y:9092"]);

    // A direct field change that skips the setter is caught by validate().
    let mut c = CommonConfig::default();
    c.bootstrap_servers = vec!["nohost".into()];
    assert!(matches!(
        c.validate(),
        Err(ConfigError::InvalidValue { option, .. }) if option == "bootstrap_servers"
    ));
    c.bootstrap_servers.clear();
    assert!(c.validate().is_err());
}

#[test]
fn builders() {
    let p = ProducerConfig::builder()
        .bootstrap_servers("a:9092,b:9092")
        .client_id("app")
        .acks(Acks::All)
        .linger_ms(5)
        .compression_type(CompressionType::Lz4)
        .transactional_id("tx-1")
        .random_seed(42)
        .api_version((2, 8, 0))
        .set(
            "partitioner.class",
            "org.apache.kafka.clients.producer.RoundRobinPartitioner",
        )
        .build()
        .unwrap();
    assert_eq!(p.common.bootstrap_servers, ["a:9092", "b:9092"]);
    assert_eq!(p.common.client_id, "app");
    assert_eq!(p.transactional_id.as_deref(), Some("tx-1"));
    assert_eq!(p.common.random_seed, Some(42));
    assert_eq!(p.common.api_version, Some(BrokerVersion::new(2, 8, 0)));
    assert_eq!(p.partitioner, Partitioner::RoundRobin);

    let c = ConsumerConfig::builder()
        .group_id("g")
        .partition_assignment_strategy([AssignmentStrategy::CooperativeSticky])
        .security_protocol(SecurityProtocol::SaslSsl)
        .sasl_mechanism(SaslMechanism::ScramSha512)
        .sasl_plain_username("u")
        .sasl_plain_password("p")
        .build()
        .unwrap();
    assert_eq!(
        c.partition_assignment_strategy,
        [AssignmentStrategy::CooperativeSticky]
    );
    assert_eq!(c.common.sasl_plain_password.as_ref().unwrap().expose(), "p");

    // The first error from a string-keyed set is reported by build().
    let err = AdminConfig::builder()
        .set("request.timeout.ms", "soon")
        .set("nonsense", "x")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::InvalidValue { option, .. } if option == "request.timeout.ms")
    );

    // build() validates.
    let err = ConsumerConfig::builder()
        .session_timeout_ms(1000)
        .heartbeat_interval_ms(1000)
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { .. }));

    // A builder from an existing config.
    let again = kafkit_core::config::ProducerConfigBuilder::from(p.clone())
        .build()
        .unwrap();
    assert_eq!(again, p);
}

#[test]
fn unknown_option_suggests_closest_name_in_same_style() {
    let mut c = ProducerConfig::default();
    let err = c.set("boostrap.servers", "a:1").unwrap_err();
    assert_eq!(
        err,
        ConfigError::UnknownOption {
            name: "boostrap.servers".into(),
            suggestion: Some("bootstrap.servers".into()),
        }
    );
    assert_eq!(
        err.to_string(),
        "unknown option `boostrap.servers`; did you mean `bootstrap.servers`?"
    );
    let err = c.set("lingr_ms", "1").unwrap_err();
    assert!(
        matches!(err, ConfigError::UnknownOption { suggestion: Some(s), .. } if s == "linger_ms")
    );
    let err = c.set("enable.idempotency", "true").unwrap_err();
    assert!(
        matches!(err, ConfigError::UnknownOption { suggestion: Some(s), .. } if s == "enable.idempotence")
    );
    let err = c.set("Request.Timeout.Ms", "1").unwrap_err();
    assert!(
        matches!(err, ConfigError::UnknownOption { suggestion: Some(s), .. } if s == "request.timeout.ms")
    );
    let err = c.set("wholly.unrelated.setting.name", "1").unwrap_err();
    assert!(matches!(
        err,
        ConfigError::UnknownOption {
            suggestion: None,
            ..
        }
    ));
    // Consumer-only names are suggested for consumers.
    let err = ConsumerConfig::default()
        .set("sesion.timeout.ms", "1")
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::UnknownOption { suggestion: Some(s), .. } if s == "session.timeout.ms")
    );
}

#[test]
fn invalid_values_name_option_and_accepted_values() {
    let mut c = ProducerConfig::default();
    let err = c.set("acks", "2").unwrap_err();
    assert_eq!(
        err,
        ConfigError::InvalidValue {
            option: "acks".into(),
            value: "2".into(),
            expected: "one of: all, -1, 1, 0".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "invalid value `2` for option `acks`: expected one of: all, -1, 1, 0"
    );
    let err = c.set("request.timeout.ms", "-5").unwrap_err();
    assert_eq!(
        err,
        ConfigError::InvalidValue {
            option: "request.timeout.ms".into(),
            value: "-5".into(),
            expected: "an integer in 0..=2147483647".into(),
        }
    );
    let err = c.set("batch.size", "3000000000").unwrap_err();
    assert!(err.to_string().contains("0..=2147483647"), "{err}");
    let err = c.set("enable_idempotence", "yes").unwrap_err();
    assert!(err.to_string().ends_with("expected true or false"), "{err}");
    let err = c.set("compression_type", "brotli").unwrap_err();
    assert!(
        err.to_string().contains("none, gzip, snappy, lz4, zstd"),
        "{err}"
    );
    let err = c.set("compression.gzip.level", "0").unwrap_err();
    assert!(err.to_string().contains("1..=9"), "{err}");
    let err = c.set("security.protocol", "TLS").unwrap_err();
    assert!(
        err.to_string()
            .contains("PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        "{err}"
    );
    let err = c.set("sasl.mechanism", "GSSAPI").unwrap_err();
    assert!(err.to_string().contains("GSSAPI is not supported"), "{err}");
    let err = c
        .set("partitioner.class", "com.example.MyPartitioner")
        .unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err}");
    let err = c.set("api_version", "two").unwrap_err();
    assert!(err.to_string().contains("2.8.0"), "{err}");
    let err = c.set("metadata.max.idle.ms", "100").unwrap_err();
    assert!(err.to_string().contains("5000..="), "{err}");

    let mut k = ConsumerConfig::default();
    let err = k.set("auto.offset.reset", "beginning").unwrap_err();
    assert!(err.to_string().contains("earliest, latest, none"), "{err}");
    let err = k
        .set("partition.assignment.strategy", "range,fancy")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("range, roundrobin, sticky, cooperative-sticky"),
        "{err}"
    );
    let err = k.set("group.protocol", "streams").unwrap_err();
    assert!(err.to_string().contains("classic, consumer"), "{err}");
    k.set("group.protocol", "CLASSIC").unwrap();
    k.set("group.protocol", "consumer").unwrap();
}

#[test]
fn typed_values_parse_java_and_python_spellings() {
    let mut k = ConsumerConfig::default();
    k.set(
        "partition.assignment.strategy",
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor, roundrobin, \
         kafka.coordinator.assignors.range.RangePartitionAssignor",
    )
    .unwrap();
    assert_eq!(
        k.partition_assignment_strategy,
        [
            AssignmentStrategy::CooperativeSticky,
            AssignmentStrategy::RoundRobin,
            AssignmentStrategy::Range
        ]
    );
    assert_eq!(
        k.get("partition_assignment_strategy").unwrap(),
        "cooperative-sticky,roundrobin,range"
    );
    k.set("auto_offset_reset", "smallest").unwrap();
    assert_eq!(k.get("auto.offset.reset").unwrap(), "earliest");
    k.set("consumer_timeout_ms", "1500").unwrap();
    assert_eq!(k.consumer_timeout_ms, Some(1500));
    k.set("consumer_timeout_ms", "inf").unwrap();
    assert_eq!(k.consumer_timeout_ms, None);

    let mut p = ProducerConfig::default();
    p.set(
        "partitioner.class",
        "org.apache.kafka.clients.producer.UniformStickyPartitioner",
    )
    .unwrap();
    assert_eq!(p.partitioner, Partitioner::Default);
    assert!(p.partitioner_ignore_keys);

    let mut c = CommonConfig::default();
    for (v, want) in [
        ("0.9", Some(BrokerVersion::new(0, 9, 0))),
        ("2.8.0", Some(BrokerVersion::new(2, 8, 0))),
        ("(0, 10, 1)", Some(BrokerVersion::new(0, 10, 1))),
        ("auto", None),
        ("", None),
    ] {
        c.set("api_version", v).unwrap();
        assert_eq!(c.api_version, want, "{v}");
    }
    c.set("send.buffer.bytes", "-1").unwrap();
    assert_eq!(c.send_buffer_bytes, None);
    assert_eq!(c.get("send_buffer_bytes").unwrap(), "-1");
    c.set("ssl.endpoint.identification.algorithm", "").unwrap();
    assert!(!c.ssl_check_hostname);
    assert_eq!(c.get("ssl_check_hostname").unwrap(), "false");
    c.set("ssl_check_hostname", "TRUE").unwrap();
    assert_eq!(
        c.get("ssl.endpoint.identification.algorithm").unwrap(),
        "https"
    );
    c.set("ssl.truststore.type", "PEM").unwrap();
    c.set("ssl.truststore.location", "/etc/ca.pem").unwrap();
    assert_eq!(
        c.ssl_cafile.as_deref(),
        Some(std::path::Path::new("/etc/ca.pem"))
    );
    c.set("random_seed", "18446744073709551615").unwrap();
    assert_eq!(c.random_seed, Some(u64::MAX));
}

#[test]
fn known_foreign_options_are_ignored_and_listed() {
    let mut c = ProducerConfig::default();
    for name in [
        "key.serializer",
        "value.serializer",
        "interceptor.classes",
        "metric.reporters",
        "key_serializer",
        // A consumer option in a producer's file: ignored, as Java does.
        "group.id",
        "key.serializer",
    ] {
        c.set(name, "whatever").unwrap();
    }
    assert_eq!(
        c.ignored_options(),
        [
            "key.serializer",
            "value.serializer",
            "interceptor.classes",
            "metric.reporters",
            "key_serializer",
            "group.id"
        ]
    );
    assert_eq!(c, {
        let mut d = ProducerConfig::default();
        for n in c.ignored_options() {
            d.set(n, "").unwrap();
        }
        d
    });
    // Producer options are ignored by an admin client.
    let mut a = AdminConfig::default();
    a.set("linger.ms", "5").unwrap();
    a.set("retries", "3").unwrap();
    assert_eq!(a.ignored_options(), ["linger.ms", "retries"]);
}

#[test]
fn unsupported_options_are_refused() {
    let mut c = CommonConfig::default();
    for name in [
        "ssl.truststore.password",
        "ssl.keystore.password",
        "socks5_proxy",
    ] {
        let err = c.set(name, "x").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Unsupported { option, .. } if option == name),
            "{err}"
        );
    }
    let err = c.set("ssl.truststore.type", "JKS").unwrap_err();
    assert!(matches!(err, ConfigError::Unsupported { .. }));
    assert!(err.to_string().contains("PEM"), "{err}");
}

#[test]
fn validation_range_checks_cover_public_fields() {
    let mut c = ProducerConfig::default();
    c.common.request_timeout_ms = u32::MAX;
    let err = c.validate().unwrap_err();
    assert_eq!(
        err,
        ConfigError::InvalidValue {
            option: "request_timeout_ms".into(),
            value: u32::MAX.to_string(),
            expected: "an integer in 0..=2147483647".into(),
        }
    );
    let mut c = ConsumerConfig::default();
    c.max_poll_records = 0;
    assert!(
        matches!(c.validate(), Err(ConfigError::InvalidValue { option, .. }) if option == "max_poll_records")
    );
    let mut c = ProducerConfig::default();
    c.compression_lz4_level = 18;
    assert!(c.validate().is_err());
}

//! Rules between options: idempotence, transactions, delivery timeout, heartbeats, SASL.

use kafkit_core::config::{Acks, ConfigError, ConsumerConfig, ProducerConfig};

#[test]
fn default_idempotence_turns_itself_off_when_incompatible() {
    for (name, value) in [
        ("acks", "1"),
        ("acks", "0"),
        ("retries", "0"),
        ("max.in.flight.requests.per.connection", "6"),
    ] {
        let c = ProducerConfig::from_pairs([(name, value)]).unwrap();
        assert!(!c.idempotence_enabled(), "{name}={value}");
        assert_eq!(c.get("enable.idempotence").as_deref(), Some("false"));
    }
    let c = ProducerConfig::from_pairs([("max.in.flight.requests.per.connection", "5")]).unwrap();
    assert!(c.idempotence_enabled());
}

#[test]
fn explicit_idempotence_conflicts_are_errors() {
    for (name, value, culprit) in [
        ("acks", "1", "acks"),
        ("retries", "0", "retries"),
        (
            "max_in_flight_requests_per_connection",
            "10",
            "max_in_flight_requests_per_connection",
        ),
    ] {
        let err = ProducerConfig::from_pairs([("enable.idempotence", "true"), (name, value)])
            .unwrap_err();
        match &err {
            ConfigError::Conflict { options, reason } => {
                assert_eq!(options, &["enable_idempotence", culprit]);
                assert!(reason.contains(culprit), "{reason}");
            }
            other => panic!("{other}"),
        }
    }
    // Explicitly off is fine with anything.
    let c = ProducerConfig::builder()
        .enable_idempotence(false)
        .acks(Acks::One)
        .build()
        .unwrap();
    assert!(!c.idempotence_enabled());
    // The builder's typed setter counts as explicit.
    let err = ProducerConfig::builder()
        .enable_idempotence(true)
        .acks(Acks::Zero)
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { .. }));
}

#[test]
fn transactions_need_idempotence() {
    ProducerConfig::from_pairs([("transactional.id", "tx")]).unwrap();
    let err = ProducerConfig::from_pairs([("transactional.id", "tx"), ("acks", "1")]).unwrap_err();
    match err {
        ConfigError::Conflict { options, reason } => {
            assert_eq!(options, ["transactional_id", "enable_idempotence", "acks"]);
            assert!(reason.contains("acks must be all"), "{reason}");
        }
        other => panic!("{other}"),
    }
    let err =
        ProducerConfig::from_pairs([("transactional.id", "tx"), ("enable.idempotence", "false")])
            .unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { .. }));
    // Empty means "no transactional id".
    let c = ProducerConfig::from_pairs([("transactional.id", "")]).unwrap();
    assert_eq!(c.transactional_id, None);
}

#[test]
fn delivery_timeout_rule() {
    // Explicit and too small: error.
    let err = ProducerConfig::from_pairs([
        ("delivery.timeout.ms", "30000"),
        ("linger.ms", "5"),
        ("request.timeout.ms", "30000"),
    ])
    .unwrap_err();
    match err {
        ConfigError::Conflict { options, reason } => {
            assert_eq!(
                options,
                ["delivery_timeout_ms", "linger_ms", "request_timeout_ms"]
            );
            assert!(reason.contains("30005"), "{reason}");
        }
        other => panic!("{other}"),
    }
    // Exactly the sum is fine.
    let c = ProducerConfig::from_pairs([("delivery.timeout.ms", "30005")]).unwrap();
    assert_eq!(c.effective_delivery_timeout_ms(), 30_005);
    // Default: raised to the sum, as Java does.
    let c = ProducerConfig::from_pairs([("request.timeout.ms", "200000"), ("linger.ms", "100")])
        .unwrap();
    assert_eq!(c.delivery_timeout_ms, None);
    assert_eq!(c.effective_delivery_timeout_ms(), 200_100);
    assert_eq!(c.get("delivery_timeout_ms").as_deref(), Some("200100"));
}

#[test]
fn heartbeat_must_be_below_session_timeout() {
    for (hb, session) in [("3000", "3000"), ("5000", "3000")] {
        let err = ConsumerConfig::from_pairs([
            ("heartbeat.interval.ms", hb),
            ("session.timeout.ms", session),
        ])
        .unwrap_err();
        match err {
            ConfigError::Conflict { options, .. } => {
                assert_eq!(options, ["heartbeat_interval_ms", "session_timeout_ms"])
            }
            other => panic!("{other}"),
        }
    }
    ConsumerConfig::from_pairs([
        ("heartbeat.interval.ms", "2999"),
        ("session.timeout.ms", "3000"),
    ])
    .unwrap();
}

#[test]
fn consumer_group_rules() {
    let err = ConsumerConfig::from_pairs([("group.instance.id", "i-1")]).unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { .. }));
    ConsumerConfig::from_pairs([("group.instance.id", "i-1"), ("group.id", "g")]).unwrap();
    let mut c = ConsumerConfig::default();
    c.group_id = Some(String::new());
    assert!(matches!(
        c.validate(),
        Err(ConfigError::InvalidValue { .. })
    ));
    let err = ConsumerConfig::from_pairs([
        ("fetch.max.bytes", "2000000"),
        ("max.response.size", "1000000"),
    ])
    .unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { .. }));
}

#[test]
fn sasl_needs_credentials() {
    let err = ConsumerConfig::from_pairs([("security.protocol", "SASL_SSL")]).unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { .. }), "{err}");
    ConsumerConfig::from_pairs([
        ("security.protocol", "SASL_SSL"),
        ("sasl_plain_username", "u"),
        ("sasl_plain_password", "p"),
    ])
    .unwrap();
    // OAUTHBEARER tokens may come from the application at run time.
    ConsumerConfig::from_pairs([
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "OAUTHBEARER"),
    ])
    .unwrap();
    let err = ConsumerConfig::from_pairs([("ssl_keyfile", "/k.pem")]).unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { .. }), "{err}");
}

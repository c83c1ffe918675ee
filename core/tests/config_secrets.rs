//! Secrets stay out of Debug output, getters and errors; `sasl.jaas.config` is read.

use kafkit_core::config::{CommonConfig, ConfigError, ConsumerConfig, ProducerConfig, Secret};

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";"#;

#[test]
fn jaas_config_sets_username_and_password() {
    let mut c = CommonConfig::default();
    c.set("sasl.jaas.config", JAAS).unwrap();
    assert_eq!(c.sasl_plain_username.as_deref(), Some("u"));
    assert_eq!(c.sasl_plain_password.as_ref().unwrap().expose(), "p");

    c.set(
        "sasl.jaas.config",
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=bob password=\"pa ss\";",
    )
    .unwrap();
    assert_eq!(c.sasl_plain_username.as_deref(), Some("bob"));
    assert_eq!(c.sasl_plain_password.as_ref().unwrap().expose(), "pa ss");
}

#[test]
fn jaas_errors_do_not_leak_the_value() {
    let mut c = CommonConfig::default();
    let bad = r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required password="hunter2";"#;
    let err = c.set("sasl.jaas.config", bad).unwrap_err();
    match &err {
        ConfigError::InvalidValue {
            option,
            value,
            expected,
        } => {
            assert_eq!(option, "sasl.jaas.config");
            assert_eq!(value, "[redacted]");
            assert!(expected.contains("PlainLoginModule"), "{expected}");
        }
        other => panic!("{other}"),
    }
    assert!(!err.to_string().contains("hunter2"));
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[test]
fn debug_output_redacts_every_secret() {
    let c = ConsumerConfig::builder()
        .group_id("g")
        .sasl_plain_username("alice")
        .sasl_plain_password("pw-plain-123")
        .ssl_password("pw-ssl-456")
        .sasl_oauth_token("tok-789")
        .build()
        .unwrap();
    let debug = format!("{c:?}");
    for secret in ["pw-plain-123", "pw-ssl-456", "tok-789"] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    assert!(debug.contains("[redacted]"));
    assert!(debug.contains("alice"), "user names are not secret");

    let pretty = format!(
        "{:#?}",
        ProducerConfig::from_pairs([("sasl.jaas.config", JAAS)]).unwrap()
    );
    assert!(!pretty.contains("password=\"p\""));
    assert_eq!(format!("{:?}", Secret::new("x")), "[redacted]");
}

#[test]
fn getters_and_listings_redact() {
    let mut c = ProducerConfig::default();
    assert_eq!(c.get("sasl_plain_password").as_deref(), Some(""));
    c.set("sasl.plain.password", "pw").unwrap();
    c.set("ssl.key.password", "kp").unwrap();
    assert_eq!(c.get("sasl_plain_password").as_deref(), Some("[redacted]"));
    assert_eq!(c.get("ssl.key.password").as_deref(), Some("[redacted]"));
    for (name, value) in c.values() {
        assert!(value != "pw" && value != "kp", "{name} leaked");
    }
    let secret_names: Vec<_> = ProducerConfig::options()
        .iter()
        .filter(|o| o.secret)
        .map(|o| o.python_name)
        .collect();
    assert_eq!(
        secret_names,
        [
            "ssl_password",
            "sasl_plain_password",
            "sasl_jaas_config",
            "sasl_oauth_token"
        ]
    );
}

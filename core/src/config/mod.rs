//! Client configuration: typed options for producers, consumers and admin clients, with the
//! names users know from kafka-python and the Java client.
//!
//! # Names
//! Every option has a kafka-python style name (`request_timeout_ms`), which is also the Rust
//! field name, and the Java client's dotted name (`request.timeout.ms`); the generic setter
//! `set(name, value)`, [`ProducerConfig::from_pairs`] and [`ProducerConfig::from_properties`]
//! accept both. Options only one of the two clients has get a spelling in the other style
//! (`api_version` / `api.version`); [`OptionInfo::origin`] says which is original. A few Java
//! options with a different shape map onto kafkit's: `ssl.truststore.location` is
//! `ssl_cafile` (PEM only), `ssl.endpoint.identification.algorithm` sets
//! `ssl_check_hostname`, `sasl.jaas.config` sets `sasl_plain_username` and
//! `sasl_plain_password`, and `partitioner.class` and `partition.assignment.strategy` take Java
//! class names.
//!
//! # Defaults
//! Defaults are the Java client 3.x's, and where kafka-python's differ Java's win (for example
//! `acks=all`, `session_timeout_ms=45000`, `request_timeout_ms=30000`). The exceptions, each
//! documented on its field: `linger_ms` is 5 (Java 4.0, KIP-1030), `client_id` is `kafkit`,
//! `bootstrap_servers` is `localhost:9092`, `sasl_mechanism` is `PLAIN` (GSSAPI is not
//! supported) and `receive_buffer_bytes` is 65536 for every client kind.
//!
//! # Options kafkit does not use
//! Pasted Java or kafka-python configuration often carries options that configure the JVM or
//! Python side (`key.serializer`, `interceptor.classes`, `metric.reporters`) or belong to
//! another client kind (`linger.ms` in a consumer's file). They are accepted and listed by
//! `ignored_options()`, as Java logs "supplied but isn't a known config". Options whose loss
//! would change behaviour (a JKS trust store, a SOCKS proxy) are refused with
//! [`ConfigError::Unsupported`]; anything else is [`ConfigError::UnknownOption`], with the
//! closest known name as a suggestion.
//!
//! # Validation
//! The typed builders ([`ProducerConfig::builder`] ...) validate in `build()`; `from_pairs`
//! and `from_properties` validate too. Fields are public: after changing one directly, call
//! `validate()`. Validation checks every value against the range Java allows for it (so it
//! fits the wire's `int32`s) and the rules between options (idempotence, delivery timeout,
//! heartbeat below session timeout, SASL credentials).
//!
//! # Secrets
//! Passwords and tokens are [`Secret`]s: `Debug` prints `[redacted]`, `get` returns
//! `[redacted]`, and errors never quote them.
//!
//! ```
//! use kafkit_core::config::{ConfigError, ProducerConfig};
//!
//! let mut config = ProducerConfig::default();
//! config.set("request.timeout.ms", "1000")?;
//! config.set("linger_ms", "20")?;
//! config.set("key.serializer", "org.apache.kafka.common.serialization.StringSerializer")?;
//! assert_eq!(config.common.request_timeout_ms, 1000);
//! assert_eq!(config.ignored_options(), ["key.serializer"]);
//!
//! let err = config.set("boostrap.servers", "b:9092").unwrap_err();
//! assert_eq!(err.to_string(), "unknown option `boostrap.servers`; did you mean `bootstrap.servers`?");
//! # Ok::<(), ConfigError>(())
//! ```

mod admin;
mod builder;
mod common;
mod consumer;
mod error;
mod jaas;
mod options;
mod producer;
mod properties;
mod secret;
mod values;

pub use admin::{AdminConfig, AdminConfigBuilder};
pub use common::CommonConfig;
pub use consumer::{ConsumerConfig, ConsumerConfigBuilder};
pub use error::ConfigError;
pub use options::{OptionInfo, OptionKind, Origin, LIBRDKAFKA_ALIASES};
pub use producer::{ProducerConfig, ProducerConfigBuilder};
pub use properties::parse_properties;
pub use secret::Secret;
pub use values::{
    Acks, AssignmentStrategy, AutoOffsetReset, BrokerVersion, CompressionType, GroupProtocol,
    IntoBootstrapServers, IsolationLevel, Partitioner, SaslMechanism, SecurityProtocol,
};

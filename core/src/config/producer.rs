use std::borrow::Cow;

use super::builder::{builder_methods, config_builder};
use super::common::COMMON_OPTIONS;
use super::options::{concat, opt, wrong_kind, Access, Configurable, OptionInfo, Rejection};
use super::values::{choice, int, opt_string, render_opt, I32_MAX, I64_MAX};
use super::{Acks, CommonConfig, CompressionType, ConfigError, Partitioner};

/// Configuration of a producer: [`CommonConfig`] plus batching, delivery and idempotence.
///
/// Defaults are the Java client 3.x's except `linger_ms` (see there). Two fields are `Option`s
/// whose `None` means "the default, adjusted as Java adjusts it":
/// [`ProducerConfig::enable_idempotence`] and [`ProducerConfig::delivery_timeout_ms`]; read
/// the values in force with [`ProducerConfig::idempotence_enabled`] and
/// [`ProducerConfig::effective_delivery_timeout_ms`].
///
/// ```
/// use kafkit_core::config::{Acks, ProducerConfig};
///
/// let config = ProducerConfig::builder()
///     .bootstrap_servers("a:9092,b:9092")
///     .acks(Acks::All)
///     .linger_ms(5)
///     .set("compression.type", "zstd")
///     .build()?;
/// assert_eq!(config.common.bootstrap_servers, ["a:9092", "b:9092"]);
/// assert!(config.idempotence_enabled());
/// # Ok::<(), kafkit_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// The options every client kind shares.
    pub common: CommonConfig,
    /// `acks`: acknowledgements a produce request waits for. Default [`Acks::All`] (Java 3.x;
    /// kafka-python defaults to 1).
    pub acks: Acks,
    /// `batch_size` / `batch.size`: the target size in bytes of a record batch per partition.
    /// Default 16384.
    pub batch_size: u32,
    /// `linger_ms` / `linger.ms`: how long to wait for more records before sending a batch that
    /// is not full. Default 5, Java 4.0's value (KIP-1030); Java 3.x and kafka-python use 0.
    /// With idempotence on by default, a few milliseconds of batching costs little latency
    /// and saves many requests.
    pub linger_ms: u64,
    /// `buffer_memory` / `buffer.memory`: bytes of records the producer may hold unsent before
    /// `send` blocks (or fails, after `max_block_ms`). Default 33554432 (32 MiB).
    pub buffer_memory: u64,
    /// `compression_type` / `compression.type`. Default [`CompressionType::None`].
    pub compression_type: CompressionType,
    /// `compression_gzip_level` / `compression.gzip.level` (KIP-390): 1..=9, or -1 for the
    /// codec's default. Default -1.
    pub compression_gzip_level: i32,
    /// `compression_lz4_level` / `compression.lz4.level` (KIP-390): 1..=17. Default 9.
    pub compression_lz4_level: i32,
    /// `compression_zstd_level` / `compression.zstd.level` (KIP-390): -131072..=22. Default 3.
    pub compression_zstd_level: i32,
    /// `max_request_size` / `max.request.size`: the largest produce request, in bytes (and so
    /// the largest record). Default 1048576.
    pub max_request_size: u32,
    /// `max_block_ms` / `max.block.ms`: how long `send` may wait for metadata or buffer space.
    /// Default 60000.
    pub max_block_ms: u64,
    /// `delivery_timeout_ms` / `delivery.timeout.ms`: the time from `send` to a delivery
    /// report, retries included. `None` (the default) means 120000, raised to
    /// `linger_ms + request_timeout_ms` if that is larger, as Java does; an explicit value
    /// below that sum is an error.
    pub delivery_timeout_ms: Option<u32>,
    /// `retries`: how often to retry a failed produce request (within
    /// `delivery_timeout_ms`). Default 2147483647 (Java; `delivery_timeout_ms` is the real
    /// bound).
    pub retries: u32,
    /// `enable_idempotence` / `enable.idempotence`: exactly-once delivery per partition
    /// (producer id and sequence numbers). `None` (the default) means on unless `acks` is not
    /// `all`, `retries` is 0 or `max_in_flight_requests_per_connection` exceeds 5, in which
    /// case it is quietly off (Java 3.x's rule). `Some(true)` with such a setting is an error.
    pub enable_idempotence: Option<bool>,
    /// `transactional_id` / `transactional.id`: enables transactions under this id (needs
    /// idempotence). Default `None`.
    pub transactional_id: Option<String>,
    /// `transaction_timeout_ms` / `transaction.timeout.ms`: how long the coordinator lets a
    /// transaction stay open before aborting it. Default 60000.
    pub transaction_timeout_ms: u32,
    /// `partitioner` (Java: `partitioner.class`). Default [`Partitioner::Default`].
    pub partitioner: Partitioner,
    /// `partitioner_ignore_keys` / `partitioner.ignore.keys`: treat keyed records like
    /// keyless ones when choosing a partition. Default `false`.
    pub partitioner_ignore_keys: bool,
    /// `partitioner_adaptive_partitioning_enable` /
    /// `partitioner.adaptive.partitioning.enable`: weigh the sticky partition choice by
    /// broker queue sizes (KIP-794). kafkit's sticky partitioner does not, so the default is
    /// `false` and `validate` refuses `true`.
    pub partitioner_adaptive_partitioning_enable: bool,
    /// `partitioner_availability_timeout_ms` / `partitioner.availability.timeout.ms`: skip a
    /// partition whose leader has not accepted a batch for this long; 0 disables. kafkit does
    /// not skip partitions, so only 0 (the default) is accepted by `validate`.
    pub partitioner_availability_timeout_ms: u64,
    /// `metadata_max_idle_ms` / `metadata.max.idle.ms`: forget the metadata of a topic not
    /// produced to for this long. kafkit keeps the metadata of every topic produced to, so only
    /// the default, 300000, is accepted by `validate`.
    pub metadata_max_idle_ms: u64,
    /// `allow_auto_create_topics` (kafka-python's producer; dotted
    /// `allow.auto.create.topics`): let metadata requests create missing topics on brokers
    /// with `auto.create.topics.enable`. Default `true` (Java's producer always allows it).
    pub allow_auto_create_topics: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            common: CommonConfig::default(),
            acks: Acks::All,
            batch_size: 16_384,
            linger_ms: 5,
            buffer_memory: 32 * 1024 * 1024,
            compression_type: CompressionType::None,
            compression_gzip_level: -1,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
            max_request_size: 1_048_576,
            max_block_ms: 60_000,
            delivery_timeout_ms: None,
            retries: i32::MAX as u32,
            enable_idempotence: None,
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            partitioner: Partitioner::Default,
            partitioner_ignore_keys: false,
            partitioner_adaptive_partitioning_enable: false,
            partitioner_availability_timeout_ms: 0,
            metadata_max_idle_ms: 300_000,
            allow_auto_create_topics: true,
        }
    }
}

/// Java's default `delivery.timeout.ms`.
const DEFAULT_DELIVERY_TIMEOUT_MS: u32 = 120_000;
/// The most in-flight requests per connection the idempotent producer allows.
const MAX_IN_FLIGHT_FOR_IDEMPOTENCE: u32 = 5;

impl ProducerConfig {
    /// Whether the producer is idempotent: [`ProducerConfig::enable_idempotence`] if set,
    /// otherwise whether `acks`, `retries` and `max_in_flight_requests_per_connection` allow
    /// it.
    pub fn idempotence_enabled(&self) -> bool {
        self.enable_idempotence
            .unwrap_or_else(|| self.idempotence_obstacle().is_none())
    }

    /// The delivery timeout in force: [`ProducerConfig::delivery_timeout_ms`] if set,
    /// otherwise 120000 raised to `linger_ms + request_timeout_ms` (capped at `i32::MAX`).
    pub fn effective_delivery_timeout_ms(&self) -> u32 {
        self.delivery_timeout_ms.unwrap_or_else(|| {
            DEFAULT_DELIVERY_TIMEOUT_MS.max(self.linger_and_request_timeout_ms())
        })
    }

    fn linger_and_request_timeout_ms(&self) -> u32 {
        let sum = self
            .linger_ms
            .saturating_add(u64::from(self.common.request_timeout_ms));
        u32::try_from(sum.min(i32::MAX as u64)).unwrap_or(i32::MAX as u32)
    }

    /// Why idempotence is off although it was not turned off: `enable_idempotence` is not set
    /// and another setting (`acks`, `retries`, `max_in_flight_requests_per_connection`) rules
    /// it out, as Java's producer decides (it refuses the same settings when idempotence is
    /// set explicitly). The producer logs it as a warning at start.
    pub fn idempotence_disabled_by(&self) -> Option<String> {
        match (self.enable_idempotence, self.idempotence_obstacle()) {
            (None, Some((option, reason))) => Some(format!(
                "idempotence is off because {option} rules it out ({reason}); set \
                 enable_idempotence=false to say so, or change {option}"
            )),
            _ => None,
        }
    }

    /// The first setting that rules out idempotence, with the reason.
    fn idempotence_obstacle(&self) -> Option<(&'static str, String)> {
        if self.retries == 0 {
            return Some(("retries", "retries must be greater than 0".to_owned()));
        }
        if self.acks != Acks::All {
            return Some(("acks", format!("acks must be all, not {}", self.acks)));
        }
        let in_flight = self.common.max_in_flight_requests_per_connection;
        if in_flight > MAX_IN_FLIGHT_FOR_IDEMPOTENCE {
            return Some((
                "max_in_flight_requests_per_connection",
                format!(
                    "max_in_flight_requests_per_connection must be at most \
                     {MAX_IN_FLIGHT_FOR_IDEMPOTENCE}, not {in_flight}"
                ),
            ));
        }
        None
    }
}

fn gzip_level(v: &str) -> Result<i32, Rejection> {
    int::<i32>(v, -1, 9)
        .ok()
        .filter(|l| *l != 0)
        .ok_or(Rejection::Expected(Cow::Borrowed(
            "-1 (the codec default) or an integer in 1..=9",
        )))
}

const PRODUCER_ONLY: &[OptionInfo] = &[
    opt!(Producer, "acks", "acks", Java, "all",
        "Acknowledgements a produce request waits for: all (-1), 1 or 0.",
        choice(acks)),
    opt!(Producer, "batch_size", "batch.size", Java, "16384",
        "Target size in bytes of a record batch per partition.",
        int(batch_size, 0, I32_MAX)),
    opt!(Producer, "linger_ms", "linger.ms", Java, "5",
        "How long to wait for more records before sending a batch that is not full (Java 4.0's default).",
        int(linger_ms, 0, I64_MAX)),
    opt!(Producer, "buffer_memory", "buffer.memory", Java, "33554432",
        "Bytes of unsent records the producer may hold before send blocks.",
        int(buffer_memory, 0, I64_MAX)),
    opt!(Producer, "compression_type", "compression.type", Java, "none",
        "Batch compression: none, gzip, snappy, lz4 or zstd.",
        choice(compression_type)),
    opt!(Producer, "compression_gzip_level", "compression.gzip.level", Java, "-1",
        "gzip level 1..=9, or -1 for the codec default (KIP-390).",
        |c, v| { c.compression_gzip_level = gzip_level(v)?; },
        |c| c.compression_gzip_level.to_string()),
    opt!(Producer, "compression_lz4_level", "compression.lz4.level", Java, "9",
        "lz4 level 1..=17 (KIP-390).",
        int(compression_lz4_level, 1, 17)),
    opt!(Producer, "compression_zstd_level", "compression.zstd.level", Java, "3",
        "zstd level -131072..=22 (KIP-390).",
        int(compression_zstd_level, -131_072, 22)),
    opt!(Producer, "max_request_size", "max.request.size", Java, "1048576",
        "Largest produce request in bytes (and so the largest record).",
        int(max_request_size, 0, I32_MAX)),
    opt!(Producer, "max_block_ms", "max.block.ms", Java, "60000",
        "How long send may wait for metadata or buffer space.",
        int(max_block_ms, 0, I64_MAX)),
    opt!(Producer, "delivery_timeout_ms", "delivery.timeout.ms", Java, "120000",
        "Time from send to delivery report, retries included; at least linger_ms + request_timeout_ms.",
        |c, v| { c.delivery_timeout_ms = Some(int(v, 0, I32_MAX)?); },
        |c| c.effective_delivery_timeout_ms().to_string()),
    opt!(Producer, "retries", "retries", Java, "2147483647",
        "How often to retry a failed produce request, within delivery_timeout_ms.",
        int(retries, 0, I32_MAX)),
    opt!(Producer, "enable_idempotence", "enable.idempotence", Java, "true",
        "Idempotent producer; on by default unless acks, retries or max_in_flight rule it out.",
        |c, v| { c.enable_idempotence = Some(super::values::boolean(v)?); },
        |c| c.idempotence_enabled().to_string()),
    opt!(Producer, "transactional_id", "transactional.id", Java, "",
        "Enables transactions under this id (needs idempotence); empty: none.",
        |c, v| { c.transactional_id = opt_string(v); },
        |c| render_opt(&c.transactional_id)),
    opt!(Producer, "transaction_timeout_ms", "transaction.timeout.ms", Java, "60000",
        "How long the coordinator lets a transaction stay open before aborting it.",
        int(transaction_timeout_ms, 1, I32_MAX)),
    opt!(Producer, "partitioner", "partitioner.class", Java, "default",
        "default (murmur2 for keys, sticky otherwise) or round_robin; Java class names accepted.",
        |c, v| {
            let t = v.trim();
            let last = t.rsplit('.').next().unwrap_or(t);
            if t.is_empty() {
                c.partitioner = Partitioner::Default;
            } else if last.eq_ignore_ascii_case("UniformStickyPartitioner") {
                c.partitioner = Partitioner::Default;
                c.partitioner_ignore_keys = true;
            } else {
                c.partitioner = choice(t)?;
            }
        },
        |c| c.partitioner.to_string()),
    opt!(Producer, "partitioner_ignore_keys", "partitioner.ignore.keys", Java, "false",
        "Choose partitions for keyed records as for keyless ones.",
        bool(partitioner_ignore_keys)),
    opt!(Producer, "partitioner_adaptive_partitioning_enable",
        "partitioner.adaptive.partitioning.enable", Java, "false",
        "Not supported: kafkit's sticky partitioner does not weigh by broker queue sizes; only false.",
        bool(partitioner_adaptive_partitioning_enable)),
    opt!(Producer, "partitioner_availability_timeout_ms",
        "partitioner.availability.timeout.ms", Java, "0",
        "Not supported: kafkit does not skip slow partitions; only 0 (disabled).",
        int(partitioner_availability_timeout_ms, 0, I64_MAX)),
    opt!(Producer, "metadata_max_idle_ms", "metadata.max.idle.ms", Java, "300000",
        "Only the default: kafkit keeps the metadata of every topic produced to.",
        int(metadata_max_idle_ms, 5_000, I64_MAX)),
    opt!(Producer, "allow_auto_create_topics", "allow.auto.create.topics", KafkaPython, "true",
        "Let metadata requests create missing topics (if the brokers allow it).",
        bool(allow_auto_create_topics)),
];

static PRODUCER_OPTIONS: [OptionInfo; COMMON_OPTIONS.len() + PRODUCER_ONLY.len()] =
    concat(COMMON_OPTIONS, PRODUCER_ONLY);

impl Configurable for ProducerConfig {
    fn table() -> &'static [OptionInfo] {
        &PRODUCER_OPTIONS
    }
    fn apply(&mut self, access: Access, value: &str) -> Result<(), Rejection> {
        match access {
            Access::Common(set, _) => set(&mut self.common, value),
            Access::Producer(set, _) => set(self, value),
            _ => Err(wrong_kind()),
        }
    }
    fn render(&self, access: Access) -> String {
        match access {
            Access::Common(_, get) => get(&self.common),
            Access::Producer(_, get) => get(self),
            _ => String::new(),
        }
    }
    fn ignored(&self) -> &[String] {
        &self.common.ignored
    }
    fn ignored_mut(&mut self) -> &mut Vec<String> {
        &mut self.common.ignored
    }
    fn check(&self) -> Result<(), ConfigError> {
        self.common.check_common()?;
        let unsupported = |option: &str, reason: &str| {
            Err(ConfigError::Unsupported {
                option: option.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.partitioner_adaptive_partitioning_enable {
            return unsupported(
                "partitioner_adaptive_partitioning_enable",
                "kafkit's sticky partitioner does not weigh partitions by broker queue sizes; \
                 remove it or set it to false",
            );
        }
        if self.partitioner_availability_timeout_ms != 0 {
            return unsupported(
                "partitioner_availability_timeout_ms",
                "kafkit does not skip partitions whose leader is slow; remove it or set it to 0",
            );
        }
        if self.metadata_max_idle_ms != 300_000 {
            return unsupported(
                "metadata_max_idle_ms",
                "kafkit keeps the metadata of every topic produced to until the producer \
                 closes; remove it",
            );
        }
        if self.enable_idempotence == Some(true) {
            if let Some((option, reason)) = self.idempotence_obstacle() {
                return Err(ConfigError::Conflict {
                    options: vec!["enable_idempotence", option],
                    reason: format!(
                        "the idempotent producer needs acks=all, retries > 0 and \
                         max_in_flight_requests_per_connection <= 5: {reason} \
                         (or set enable_idempotence=false)"
                    ),
                });
            }
        }
        if let Some(id) = &self.transactional_id {
            if id.is_empty() {
                return Err(ConfigError::InvalidValue {
                    option: "transactional_id".to_owned(),
                    value: String::new(),
                    expected: "a non-empty id, or None".to_owned(),
                });
            }
            if !self.idempotence_enabled() {
                let reason = match (self.enable_idempotence, self.idempotence_obstacle()) {
                    (None, Some((_, why))) => {
                        format!("transactions need idempotence, which is off because {why}")
                    }
                    _ => "transactions need idempotence; do not set enable_idempotence=false"
                        .to_owned(),
                };
                let mut options = vec!["transactional_id", "enable_idempotence"];
                if let (None, Some((option, _))) =
                    (self.enable_idempotence, self.idempotence_obstacle())
                {
                    options.push(option);
                }
                return Err(ConfigError::Conflict { options, reason });
            }
        }
        if let Some(delivery) = self.delivery_timeout_ms {
            let minimum = self.linger_and_request_timeout_ms();
            if delivery < minimum {
                return Err(ConfigError::Conflict {
                    options: vec!["delivery_timeout_ms", "linger_ms", "request_timeout_ms"],
                    reason: format!(
                        "delivery_timeout_ms ({delivery}) must be at least linger_ms + \
                         request_timeout_ms ({minimum})"
                    ),
                });
            }
        }
        Ok(())
    }
}

super::options::config_api!(ProducerConfig);

config_builder!(ProducerConfigBuilder, ProducerConfig);

impl ProducerConfigBuilder {
    builder_methods! { ProducerConfig, config;
        acks(acks: Acks) => acks;
        batch_size(bytes: u32) => bytes;
        linger_ms(ms: u64) => ms;
        buffer_memory(bytes: u64) => bytes;
        compression_type(compression: CompressionType) => compression;
        compression_gzip_level(level: i32) => level;
        compression_lz4_level(level: i32) => level;
        compression_zstd_level(level: i32) => level;
        max_request_size(bytes: u32) => bytes;
        max_block_ms(ms: u64) => ms;
        delivery_timeout_ms(ms: u32) => Some(ms);
        retries(retries: u32) => retries;
        enable_idempotence(enable: bool) => Some(enable);
        transactional_id(id: impl Into<String>) => Some(id.into());
        transaction_timeout_ms(ms: u32) => ms;
        partitioner(partitioner: Partitioner) => partitioner;
        partitioner_ignore_keys(ignore: bool) => ignore;
        partitioner_adaptive_partitioning_enable(enable: bool) => enable;
        partitioner_availability_timeout_ms(ms: u64) => ms;
        metadata_max_idle_ms(ms: u64) => ms;
        allow_auto_create_topics(allow: bool) => allow;
    }
}

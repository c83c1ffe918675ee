use std::borrow::Cow;

use super::builder::{builder_methods, config_builder};
use super::common::COMMON_OPTIONS;
use super::options::{concat, opt, wrong_kind, Access, Configurable, OptionInfo, Rejection};
use super::values::{choice, int, list, opt_string, render_opt, Choice, I32_MAX, I64_MAX};
use super::{
    AssignmentStrategy, AutoOffsetReset, CommonConfig, ConfigError, GroupProtocol, IsolationLevel,
};

/// Configuration of a consumer: [`CommonConfig`] plus group membership, offsets and fetching.
///
/// Defaults are the Java client 3.x's; kafkit adds two memory limits
/// ([`ConsumerConfig::fetch_buffer_bytes`], [`ConsumerConfig::max_decompressed_batch_bytes`]).
///
/// ```
/// use kafkit_core::config::{AutoOffsetReset, ConsumerConfig};
///
/// let config = ConsumerConfig::from_properties(
///     "bootstrap.servers=broker:9092\ngroup.id=orders\nauto.offset.reset=earliest\n",
/// )?;
/// assert_eq!(config.group_id.as_deref(), Some("orders"));
/// assert_eq!(config.auto_offset_reset, AutoOffsetReset::Earliest);
/// # Ok::<(), kafkit_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// The options every client kind shares.
    pub common: CommonConfig,
    /// `group_id` / `group.id`: the consumer group; `None` (the default) for a consumer
    /// without a group, which can only `assign` partitions and cannot commit offsets.
    pub group_id: Option<String>,
    /// `group_instance_id` / `group.instance.id`: a static member id (KIP-345), so a restart
    /// within `session_timeout_ms` causes no rebalance. Default `None`. Needs `group_id`.
    pub group_instance_id: Option<String>,
    /// `group_protocol` / `group.protocol`: the consumer group protocol. Default
    /// [`GroupProtocol::Classic`]. With [`GroupProtocol::Consumer`] (KIP-848, Kafka 4.0+) the
    /// coordinator assigns the partitions and sets the heartbeat interval and session
    /// timeout, so `partition_assignment_strategy`, `session_timeout_ms` and
    /// `heartbeat_interval_ms` must keep their defaults (Java rejects them when set).
    pub group_protocol: GroupProtocol,
    /// `group_remote_assignor` / `group.remote.assignor`: with the consumer protocol, the
    /// server-side assignor to ask for (Kafka ships `uniform` and `range`). Default `None`:
    /// the coordinator's default. Must be `None` with the classic protocol.
    pub group_remote_assignor: Option<String>,
    /// `auto_offset_reset` / `auto.offset.reset`. Default [`AutoOffsetReset::Latest`].
    pub auto_offset_reset: AutoOffsetReset,
    /// `enable_auto_commit` / `enable.auto.commit`: commit consumed offsets every
    /// `auto_commit_interval_ms`. Default `true`, but without a `group_id` there is nothing
    /// to commit to and auto-commit is off (see [`ConsumerConfig::auto_commit_enabled`]; Java
    /// rejects an explicit `true` without a group, kafkit does not).
    pub enable_auto_commit: bool,
    /// `auto_commit_interval_ms` / `auto.commit.interval.ms`. Default 5000.
    pub auto_commit_interval_ms: u32,
    /// `fetch_min_bytes` / `fetch.min.bytes`: the broker waits until it has this many bytes
    /// (or `fetch_max_wait_ms` passes). Default 1.
    pub fetch_min_bytes: u32,
    /// `fetch_max_wait_ms` / `fetch.max.wait.ms`: the longest the broker holds a fetch for
    /// `fetch_min_bytes`. Default 500.
    pub fetch_max_wait_ms: u32,
    /// `fetch_max_bytes` / `fetch.max.bytes`: the most data a fetch response should hold (a
    /// soft limit: the first batch is returned whole). Default 52428800 (50 MiB). Must not
    /// exceed `max_response_size`.
    pub fetch_max_bytes: u32,
    /// `max_partition_fetch_bytes` / `max.partition.fetch.bytes`: the same per partition.
    /// Default 1048576.
    pub max_partition_fetch_bytes: u32,
    /// `max_poll_records` / `max.poll.records`: the most records one poll returns.
    /// Default 500.
    pub max_poll_records: u32,
    /// `max_poll_interval_ms` / `max.poll.interval.ms`: a member that does not poll for this
    /// long leaves the group. Default 300000. Also the rebalance timeout sent in JoinGroup.
    pub max_poll_interval_ms: u32,
    /// `session_timeout_ms` / `session.timeout.ms`: a member without heartbeats for this long
    /// is removed from the group. Default 45000 (Java 3.x; kafka-python uses 10000).
    pub session_timeout_ms: u32,
    /// `heartbeat_interval_ms` / `heartbeat.interval.ms`: must be below `session_timeout_ms`
    /// (usually a third of it at most). Default 3000.
    pub heartbeat_interval_ms: u32,
    /// `partition_assignment_strategy` / `partition.assignment.strategy`: the assignors this
    /// member supports, in order of preference. Default `[range, cooperative-sticky]`
    /// (Java 3.x), which lets a group move to cooperative rebalancing one member at a time.
    pub partition_assignment_strategy: Vec<AssignmentStrategy>,
    /// `isolation_level` / `isolation.level`. Default
    /// [`IsolationLevel::ReadUncommitted`].
    pub isolation_level: IsolationLevel,
    /// `check_crcs` / `check.crcs`: verify record batch checksums. Default `true`.
    pub check_crcs: bool,
    /// `exclude_internal_topics` / `exclude.internal.topics`: pattern subscriptions skip
    /// internal topics such as `__consumer_offsets`. Default `true`.
    pub exclude_internal_topics: bool,
    /// `allow_auto_create_topics` / `allow.auto.create.topics`: let subscribing to a missing
    /// topic create it (if the brokers allow it). Default `true`.
    pub allow_auto_create_topics: bool,
    /// `consumer_timeout_ms` (kafka-python; dotted `consumer.timeout.ms`): how long a blocking
    /// iterator waits for a record before it ends. Default `None`: forever (kafka-python's
    /// `float('inf')`; the setter takes empty, `inf` or `-1`).
    pub consumer_timeout_ms: Option<u64>,
    /// `default_api_timeout_ms` / `default.api.timeout.ms`: the timeout of blocking calls
    /// (commit, position, offsets lookups) that take none. Default 60000.
    pub default_api_timeout_ms: u32,
    /// `enable_incremental_fetch_sessions` (kafka-python; dotted
    /// `enable.incremental.fetch.sessions`): use fetch sessions (KIP-227) so fetches only
    /// list changed partitions. Default `true` (Java always uses them).
    pub enable_incremental_fetch_sessions: bool,
    /// `fetch_buffer_bytes` (kafkit; dotted `fetch.buffer.bytes`): how many bytes of fetched,
    /// not yet consumed data the consumer holds before it stops fetching. Default 67108864
    /// (64 MiB). Java bounds this only indirectly (by `fetch_max_bytes` per broker).
    pub fetch_buffer_bytes: u64,
    /// `max_decompressed_batch_bytes` (kafkit; dotted `max.decompressed.batch.bytes`): a
    /// compressed record batch that decompresses to more than this is refused (an error for
    /// its partition) instead of being allocated, to bound the damage of a corrupt or
    /// malicious batch. Default 67108864 (64 MiB).
    pub max_decompressed_batch_bytes: u64,
    /// `skip_double_compressed_messages` (kafka-python; dotted
    /// `skip.double.compressed.messages`): kafka-python's producer up to 1.2.4 wrote some
    /// legacy (magic 0/1) messages compressed twice. By default such a message is handed out
    /// as it was published: one record at its one offset whose value is still compressed;
    /// `true` skips it instead (logged at debug level). Default `false`.
    pub skip_double_compressed_messages: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            common: CommonConfig::default(),
            group_id: None,
            group_instance_id: None,
            group_protocol: GroupProtocol::Classic,
            group_remote_assignor: None,
            auto_offset_reset: AutoOffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            fetch_min_bytes: 1,
            fetch_max_wait_ms: 500,
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1_048_576,
            max_poll_records: 500,
            max_poll_interval_ms: 300_000,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            partition_assignment_strategy: vec![
                AssignmentStrategy::Range,
                AssignmentStrategy::CooperativeSticky,
            ],
            isolation_level: IsolationLevel::ReadUncommitted,
            check_crcs: true,
            exclude_internal_topics: true,
            allow_auto_create_topics: true,
            consumer_timeout_ms: None,
            default_api_timeout_ms: 60_000,
            enable_incremental_fetch_sessions: true,
            fetch_buffer_bytes: 64 * 1024 * 1024,
            max_decompressed_batch_bytes: 64 * 1024 * 1024,
            skip_double_compressed_messages: false,
        }
    }
}

impl ConsumerConfig {
    /// Whether offsets are committed automatically: `enable_auto_commit` and a `group_id`.
    pub fn auto_commit_enabled(&self) -> bool {
        self.enable_auto_commit && self.group_id.is_some()
    }
}

fn strategies(v: &str) -> Result<Vec<AssignmentStrategy>, Rejection> {
    let parsed: Vec<AssignmentStrategy> = list(v).map(choice).collect::<Result<_, _>>()?;
    if parsed.is_empty() {
        return Err(Rejection::Expected(Cow::Borrowed(
            <AssignmentStrategy as Choice>::EXPECTED,
        )));
    }
    Ok(parsed)
}

fn render_strategies(s: &[AssignmentStrategy]) -> String {
    s.iter()
        .map(AssignmentStrategy::protocol_name)
        .collect::<Vec<_>>()
        .join(",")
}

fn consumer_timeout(v: &str) -> Result<Option<u64>, Rejection> {
    let t = v.trim();
    if t.is_empty()
        || t == "-1"
        || ["inf", "infinity", "none"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(t))
    {
        return Ok(None);
    }
    int(t, 0, I64_MAX).map(Some).map_err(|_| {
        Rejection::Expected(Cow::Borrowed(
            "an integer in 0..=9223372036854775807, or empty, inf or -1 for no timeout",
        ))
    })
}

const CONSUMER_ONLY: &[OptionInfo] = &[
    opt!(
        Consumer,
        "group_id",
        "group.id",
        Java,
        "",
        "Consumer group; empty: no group (assign only, no commits).",
        |c, v| {
            c.group_id = opt_string(v);
        },
        |c| render_opt(&c.group_id)
    ),
    opt!(
        Consumer,
        "group_instance_id",
        "group.instance.id",
        Java,
        "",
        "Static member id (KIP-345); empty: dynamic membership.",
        |c, v| {
            c.group_instance_id = opt_string(v);
        },
        |c| render_opt(&c.group_instance_id)
    ),
    opt!(
        Consumer,
        "group_protocol",
        "group.protocol",
        Java,
        "classic",
        "Group protocol: classic, or consumer (KIP-848, Kafka 4.0+).",
        choice(group_protocol)
    ),
    opt!(
        Consumer,
        "group_remote_assignor",
        "group.remote.assignor",
        Java,
        "",
        "Consumer protocol: server-side assignor (uniform, range); empty: the broker's default.",
        |c, v| {
            c.group_remote_assignor = opt_string(v);
        },
        |c| render_opt(&c.group_remote_assignor)
    ),
    opt!(
        Consumer,
        "auto_offset_reset",
        "auto.offset.reset",
        Java,
        "latest",
        "Where to start without a valid committed offset: earliest, latest or none.",
        choice(auto_offset_reset)
    ),
    opt!(
        Consumer,
        "enable_auto_commit",
        "enable.auto.commit",
        Java,
        "true",
        "Commit consumed offsets periodically (only with a group_id).",
        bool(enable_auto_commit)
    ),
    opt!(
        Consumer,
        "auto_commit_interval_ms",
        "auto.commit.interval.ms",
        Java,
        "5000",
        "Interval of automatic offset commits.",
        int(auto_commit_interval_ms, 0, I32_MAX)
    ),
    opt!(
        Consumer,
        "fetch_min_bytes",
        "fetch.min.bytes",
        Java,
        "1",
        "Bytes the broker waits for before answering a fetch.",
        int(fetch_min_bytes, 0, I32_MAX)
    ),
    opt!(
        Consumer,
        "fetch_max_wait_ms",
        "fetch.max.wait.ms",
        Java,
        "500",
        "Longest the broker holds a fetch for fetch_min_bytes.",
        int(fetch_max_wait_ms, 0, I32_MAX)
    ),
    opt!(
        Consumer,
        "fetch_max_bytes",
        "fetch.max.bytes",
        Java,
        "52428800",
        "Most data per fetch response (soft limit).",
        int(fetch_max_bytes, 0, I32_MAX)
    ),
    opt!(
        Consumer,
        "max_partition_fetch_bytes",
        "max.partition.fetch.bytes",
        Java,
        "1048576",
        "Most data per partition in a fetch response (soft limit).",
        int(max_partition_fetch_bytes, 0, I32_MAX)
    ),
    opt!(
        Consumer,
        "max_poll_records",
        "max.poll.records",
        Java,
        "500",
        "Most records one poll returns.",
        int(max_poll_records, 1, I32_MAX)
    ),
    opt!(
        Consumer,
        "max_poll_interval_ms",
        "max.poll.interval.ms",
        Java,
        "300000",
        "A member that does not poll for this long leaves the group.",
        int(max_poll_interval_ms, 1, I32_MAX)
    ),
    opt!(
        Consumer,
        "session_timeout_ms",
        "session.timeout.ms",
        Java,
        "45000",
        "A member without heartbeats for this long is removed from the group.",
        int(session_timeout_ms, 1, I32_MAX)
    ),
    opt!(
        Consumer,
        "heartbeat_interval_ms",
        "heartbeat.interval.ms",
        Java,
        "3000",
        "Interval of heartbeats; must be below session_timeout_ms.",
        int(heartbeat_interval_ms, 1, I32_MAX)
    ),
    opt!(
        Consumer,
        "partition_assignment_strategy",
        "partition.assignment.strategy",
        Java,
        "range,cooperative-sticky",
        "Assignors in order of preference: range, roundrobin, sticky, cooperative-sticky.",
        |c, v| {
            c.partition_assignment_strategy = strategies(v)?;
        },
        |c| render_strategies(&c.partition_assignment_strategy)
    ),
    opt!(
        Consumer,
        "isolation_level",
        "isolation.level",
        Java,
        "read_uncommitted",
        "read_uncommitted or read_committed (transactional records).",
        choice(isolation_level)
    ),
    opt!(
        Consumer,
        "check_crcs",
        "check.crcs",
        Java,
        "true",
        "Verify record batch checksums.",
        bool(check_crcs)
    ),
    opt!(
        Consumer,
        "exclude_internal_topics",
        "exclude.internal.topics",
        Java,
        "true",
        "Pattern subscriptions skip internal topics.",
        bool(exclude_internal_topics)
    ),
    opt!(
        Consumer,
        "allow_auto_create_topics",
        "allow.auto.create.topics",
        Java,
        "true",
        "Let subscribing to a missing topic create it (if the brokers allow it).",
        bool(allow_auto_create_topics)
    ),
    opt!(
        Consumer,
        "consumer_timeout_ms",
        "consumer.timeout.ms",
        KafkaPython,
        "",
        "How long a blocking iterator waits for a record; empty: forever.",
        |c, v| {
            c.consumer_timeout_ms = consumer_timeout(v)?;
        },
        |c| render_opt(&c.consumer_timeout_ms)
    ),
    opt!(
        Consumer,
        "default_api_timeout_ms",
        "default.api.timeout.ms",
        Java,
        "60000",
        "Timeout of blocking calls that take none.",
        int(default_api_timeout_ms, 0, I32_MAX)
    ),
    opt!(
        Consumer,
        "enable_incremental_fetch_sessions",
        "enable.incremental.fetch.sessions",
        KafkaPython,
        "true",
        "Use fetch sessions (KIP-227).",
        bool(enable_incremental_fetch_sessions)
    ),
    opt!(
        Consumer,
        "fetch_buffer_bytes",
        "fetch.buffer.bytes",
        Kafkit,
        "67108864",
        "Bytes of fetched, unconsumed data held before fetching pauses.",
        int(fetch_buffer_bytes, 1, I64_MAX)
    ),
    opt!(
        Consumer,
        "max_decompressed_batch_bytes",
        "max.decompressed.batch.bytes",
        Kafkit,
        "67108864",
        "A batch decompressing to more than this is refused.",
        int(max_decompressed_batch_bytes, 1, I64_MAX)
    ),
    opt!(
        Consumer,
        "skip_double_compressed_messages",
        "skip.double.compressed.messages",
        KafkaPython,
        "false",
        "Skip legacy messages compressed twice (kafka-python <= 1.2.4) instead of returning them still compressed.",
        bool(skip_double_compressed_messages)
    ),
];

static CONSUMER_OPTIONS: [OptionInfo; COMMON_OPTIONS.len() + CONSUMER_ONLY.len()] =
    concat(COMMON_OPTIONS, CONSUMER_ONLY);

fn non_empty(option: &str, v: &Option<String>) -> Result<(), ConfigError> {
    match v {
        Some(s) if s.is_empty() => Err(ConfigError::InvalidValue {
            option: option.to_owned(),
            value: String::new(),
            expected: "a non-empty string, or None".to_owned(),
        }),
        _ => Ok(()),
    }
}

impl Configurable for ConsumerConfig {
    fn table() -> &'static [OptionInfo] {
        &CONSUMER_OPTIONS
    }
    fn apply(&mut self, access: Access, value: &str) -> Result<(), Rejection> {
        match access {
            Access::Common(set, _) => set(&mut self.common, value),
            Access::Consumer(set, _) => set(self, value),
            _ => Err(wrong_kind()),
        }
    }
    fn render(&self, access: Access) -> String {
        match access {
            Access::Common(_, get) => get(&self.common),
            Access::Consumer(_, get) => get(self),
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
        non_empty("group_id", &self.group_id)?;
        non_empty("group_instance_id", &self.group_instance_id)?;
        if self.group_instance_id.is_some() && self.group_id.is_none() {
            return Err(ConfigError::Conflict {
                options: vec!["group_instance_id", "group_id"],
                reason: "group_instance_id (static membership) needs a group_id".to_owned(),
            });
        }
        self.check_group_protocol()?;
        if self.heartbeat_interval_ms >= self.session_timeout_ms {
            return Err(ConfigError::Conflict {
                options: vec!["heartbeat_interval_ms", "session_timeout_ms"],
                reason: format!(
                    "heartbeat_interval_ms ({}) must be lower than session_timeout_ms ({})",
                    self.heartbeat_interval_ms, self.session_timeout_ms
                ),
            });
        }
        if self.fetch_max_bytes > self.common.max_response_size {
            return Err(ConfigError::Conflict {
                options: vec!["fetch_max_bytes", "max_response_size"],
                reason: format!(
                    "fetch_max_bytes ({}) must not exceed max_response_size ({}), or fetch \
                     responses could be refused",
                    self.fetch_max_bytes, self.common.max_response_size
                ),
            });
        }
        Ok(())
    }
}

impl ConsumerConfig {
    /// The options that belong to one group protocol only (Java's
    /// `ConsumerConfig.checkGroupRemoteAssignor` and `checkUnsupportedConfigsPostProcess`).
    /// A struct cannot tell an option set to its default from one left alone, so an option
    /// counts as set when it differs from its default.
    fn check_group_protocol(&self) -> Result<(), ConfigError> {
        let defaults = ConsumerConfig::default();
        non_empty("group_remote_assignor", &self.group_remote_assignor)?;
        match self.group_protocol {
            GroupProtocol::Classic => {
                if self.group_remote_assignor.is_some() {
                    return Err(ConfigError::Conflict {
                        options: vec!["group_remote_assignor", "group_protocol"],
                        reason: "group_remote_assignor is only used with group_protocol=consumer"
                            .to_owned(),
                    });
                }
            }
            GroupProtocol::Consumer => {
                let classic_only = [
                    (
                        "partition_assignment_strategy",
                        self.partition_assignment_strategy
                            != defaults.partition_assignment_strategy,
                    ),
                    (
                        "session_timeout_ms",
                        self.session_timeout_ms != defaults.session_timeout_ms,
                    ),
                    (
                        "heartbeat_interval_ms",
                        self.heartbeat_interval_ms != defaults.heartbeat_interval_ms,
                    ),
                ];
                if let Some((option, _)) = classic_only.iter().find(|(_, set)| *set) {
                    return Err(ConfigError::Conflict {
                        options: vec![option, "group_protocol"],
                        reason: format!(
                            "{option} is not supported with group_protocol=consumer: the \
                             group coordinator decides it (use group_remote_assignor for the \
                             assignor; the broker's group.consumer.* settings for the session)"
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

super::options::config_api!(ConsumerConfig);

config_builder!(ConsumerConfigBuilder, ConsumerConfig);

impl ConsumerConfigBuilder {
    builder_methods! { ConsumerConfig, config;
        group_id(group: impl Into<String>) => Some(group.into());
        group_instance_id(id: impl Into<String>) => Some(id.into());
        group_protocol(protocol: GroupProtocol) => protocol;
        group_remote_assignor(assignor: impl Into<String>) => Some(assignor.into());
        auto_offset_reset(reset: AutoOffsetReset) => reset;
        enable_auto_commit(enable: bool) => enable;
        auto_commit_interval_ms(ms: u32) => ms;
        fetch_min_bytes(bytes: u32) => bytes;
        fetch_max_wait_ms(ms: u32) => ms;
        fetch_max_bytes(bytes: u32) => bytes;
        max_partition_fetch_bytes(bytes: u32) => bytes;
        max_poll_records(records: u32) => records;
        max_poll_interval_ms(ms: u32) => ms;
        session_timeout_ms(ms: u32) => ms;
        heartbeat_interval_ms(ms: u32) => ms;
        partition_assignment_strategy(strategies: impl IntoIterator<Item = AssignmentStrategy>) =>
            strategies.into_iter().collect();
        isolation_level(level: IsolationLevel) => level;
        check_crcs(check: bool) => check;
        exclude_internal_topics(exclude: bool) => exclude;
        allow_auto_create_topics(allow: bool) => allow;
        consumer_timeout_ms(ms: u64) => Some(ms);
        default_api_timeout_ms(ms: u32) => ms;
        enable_incremental_fetch_sessions(enable: bool) => enable;
        fetch_buffer_bytes(bytes: u64) => bytes;
        max_decompressed_batch_bytes(bytes: u64) => bytes;
        skip_double_compressed_messages(skip: bool) => skip;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_double_compressed_messages_is_off_by_default_and_set_by_either_name() {
        assert!(!ConsumerConfig::default().skip_double_compressed_messages);
        let c = ConsumerConfig::builder()
            .set("skip_double_compressed_messages", "true")
            .build()
            .unwrap();
        assert!(c.skip_double_compressed_messages);
        let mut c = ConsumerConfig::default();
        c.set("skip.double.compressed.messages", "true").unwrap();
        assert!(c.skip_double_compressed_messages);
        assert!(c.set("skip_double_compressed_messages", "maybe").is_err());
        let c = ConsumerConfig::builder()
            .skip_double_compressed_messages(true)
            .build()
            .unwrap();
        assert!(c.skip_double_compressed_messages);
    }
}

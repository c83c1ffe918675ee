//! [`ClusterConfig`]: the shape of a simulated cluster, and the API version table it
//! advertises.

use std::collections::BTreeMap;
use std::time::Duration;

use kafkit_core::protocol::ApiKey;

/// A SASL user the cluster accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslUser {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl SaslUser {
    /// A user of `mechanism` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn new(mechanism: &str, user: &str, password: &str) -> Self {
        SaslUser {
            mechanism: mechanism.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }
}

/// How a simulated cluster is built and behaves.
///
/// Defaults: 3 brokers, 3 partitions per auto-created topic, auto-creation on, replication
/// factor 1, 64 MiB of retained log per partition, our own API version ranges, no SASL, no
/// replication delay, seed 0, Kafka 4.0's behaviour ([`ClusterConfig::release`] imitates
/// older releases).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Number of brokers (node ids `0..brokers`).
    pub brokers: usize,
    /// Partitions of a topic created without a count (auto-creation, `num_partitions = -1`).
    pub default_partitions: i32,
    /// Whether Metadata requests may create unknown topics (`auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Replicas of a topic created without a factor (`default.replication.factor`), capped by
    /// the number of brokers for auto-created topics.
    pub replication_factor: i16,
    /// Memory bound per partition: the oldest whole batches beyond this many bytes are
    /// dropped and the log start offset advances (a topic's `retention.bytes` may lower it).
    pub retention_bytes: u64,
    /// Version range overrides per API, to imitate older brokers: an entry `Some((min, max))`
    /// replaces the model's range (clamped to what the codec can read), `None` hides the API.
    /// APIs without an entry use [`ClusterConfig::model_versions`].
    pub api_versions: BTreeMap<ApiKey, Option<(i16, i16)>>,
    /// The finalized level of the `transaction.version` feature (KIP-890) the brokers
    /// report in ApiVersions v3+: 0 reports no feature (as before the knob existed), 2
    /// enables transaction protocol v2: Produce v12 and TxnOffsetCommit v5 are offered,
    /// and clients that see the level send them (no AddPartitionsToTxn or AddOffsetsToTxn)
    /// and take the epoch EndTxn v5 bumps. At every level, a transactional produce below
    /// v12 must target a partition already in its transaction (KIP-890 part 1).
    pub transaction_version: i16,
    /// SASL users; empty means the listeners are plaintext without SASL.
    pub sasl_users: Vec<SaslUser>,
    /// The cluster id in Metadata and DescribeCluster.
    pub cluster_id: String,
    /// Seed of every random choice (topic ids, producer ids, replica placement, nonces).
    pub seed: u64,
    /// How long a follower takes to copy what its leader appended. Zero replicates at once,
    /// so `acks=1` and `acks=all` behave alike; a delay lets `acks=1` data be lost when a
    /// leader crashes before its followers caught up.
    pub replication_delay: Duration,
    /// Wall-clock milliseconds since the epoch at the cluster's start instant (used for
    /// LogAppendTime timestamps). Virtual time then advances it.
    pub start_time_ms: i64,
    /// Largest request frame accepted (`socket.request.max.bytes`, default 100 MiB).
    pub max_request_size: usize,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms` (Kafka's default is 3000; 0 keeps tests fast).
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.consumer.session.timeout.ms`: how long a consumer-protocol (KIP-848) member may
    /// go without a heartbeat (Kafka's default 45000).
    pub group_consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: the heartbeat interval consumer-protocol
    /// members are told (Kafka's default 5000).
    pub group_consumer_heartbeat_interval_ms: i32,
    /// The highest message magic served (`log.message.format.version`): 2 (record batches)
    /// by default, 1 for 0.10.x and 0 before. Stored batches of a newer format are
    /// down-converted when fetched, as are those an old Fetch version cannot carry.
    pub message_format: i8,
    /// OffsetCommit and OffsetFetch v0 answered by any broker, as 0.8.1 and 0.8.2 did (they
    /// kept v0 offsets in ZooKeeper; 0.8.1 had no coordinator).
    pub zookeeper_offsets: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            brokers: 3,
            default_partitions: 3,
            auto_create_topics: true,
            replication_factor: 1,
            retention_bytes: 64 << 20,
            api_versions: BTreeMap::new(),
            transaction_version: 0,
            sasl_users: Vec::new(),
            cluster_id: "kafkit-sim-cluster".to_owned(),
            seed: 0,
            replication_delay: Duration::ZERO,
            start_time_ms: 1_700_000_000_000,
            max_request_size: 100 << 20,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 0,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_heartbeat_interval_ms: 5_000,
            message_format: 2,
            zookeeper_offsets: false,
        }
    }
}

/// The APIs the model answers, with the versions whose semantics it implements (a subset of
/// what the codec reads, see `ApiKey::request_versions`).
const MODEL_APIS: &[(ApiKey, i16, i16)] = &[
    // Kafka 4.0's ranges: Produce v0-2 (magic 0/1 message sets) and Fetch v0-3 are gone.
    // Overrides may bring them back to imitate older brokers: the model then accepts magic
    // 0/1 sets (rebuilt with broker offsets) and serves whatever is stored, without
    // down-converting magic 2 batches for old fetchers.
    // Produce v12 and TxnOffsetCommit v5 only at `transaction.version` 2.
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 0, 10),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 0, 4),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 0),
];

impl ClusterConfig {
    /// The model's own version range of `api`, `None` if the model does not answer it.
    pub fn model_versions(api: ApiKey) -> Option<(i16, i16)> {
        let (lo, hi) = codec_versions(api);
        MODEL_APIS
            .iter()
            .find(|(k, _, _)| *k == api)
            .map(|&(_, min, max)| (min.max(lo), max.min(hi)))
    }

    /// The version table the brokers advertise: the model's ranges with the overrides of
    /// [`ClusterConfig::api_versions`] applied (clamped to the codec's ranges).
    pub fn version_table(&self) -> BTreeMap<ApiKey, (i16, i16)> {
        let mut table: BTreeMap<ApiKey, (i16, i16)> = MODEL_APIS
            .iter()
            .filter_map(|&(k, _, _)| Self::model_versions(k).map(|r| (k, r)))
            .collect();
        if self.transaction_version < 2 {
            // The versions that mean transaction protocol v2 (Kafka offers them only with
            // the feature finalized at 2).
            for (api, v1_max) in [(ApiKey::Produce, 11), (ApiKey::TxnOffsetCommit, 4)] {
                if let Some(r) = table.get_mut(&api) {
                    r.1 = r.1.min(v1_max);
                }
            }
        }
        for (&api, over) in &self.api_versions {
            match over {
                None => {
                    table.remove(&api);
                }
                Some((min, max)) => {
                    let (lo, hi) = codec_versions(api);
                    let (min, max) = ((*min).max(lo), (*max).min(hi));
                    if min <= max {
                        table.insert(api, (min, max));
                    } else {
                        table.remove(&api);
                    }
                }
            }
        }
        table
    }

    /// Sets the finalized `transaction.version` level (builder style; see
    /// [`ClusterConfig::transaction_version`]).
    pub fn with_transaction_version(mut self, level: i16) -> Self {
        self.transaction_version = level;
        self
    }

    /// Sets the version range of `api` (builder style), e.g. to imitate an older broker.
    pub fn with_api_versions(mut self, api: ApiKey, min: i16, max: i16) -> Self {
        self.api_versions.insert(api, Some((min, max)));
        self
    }

    /// Hides `api` from ApiVersions (builder style); requests for it close the connection.
    pub fn without_api(mut self, api: ApiKey) -> Self {
        self.api_versions.insert(api, None);
        self
    }
}

/// The versions of `api` the codec reads, with KIP-890's same-layout versions.
fn codec_versions(api: ApiKey) -> (i16, i16) {
    (
        api.request_versions().0,
        kafkit_core::protocol::max_known_version(api),
    )
}

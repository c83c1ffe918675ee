//! What the admin calls take and return: new topics, config resources and entries, topic,
//! cluster and group descriptions, ACL bindings, and [`AdminError`].

use std::collections::BTreeMap;

use crate::codec::Uuid;
use crate::consumer::TopicPartition;
use crate::network::{BrokerInfo, NetError, NodeId, PartitionInfo};
use crate::protocol::{ApiKey, ErrorCode};

/// Why an admin call (or one item of it) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The broker answered the item with an error code.
    #[error("{api} failed: {code}{}", suffix(.message))]
    Broker {
        /// The API that failed.
        api: ApiKey,
        /// The error code.
        code: ErrorCode,
        /// The broker's message, if it sent one.
        message: Option<String>,
    },
    /// The request got no usable response: timeout, lost connection, an API this broker does
    /// not support ([`NetError::Unsupported`]: "... is unsupported by this broker ..."),
    /// authentication or TLS failure.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The call was refused before anything was sent (a duplicate item, an empty name, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The admin client was closed before the call completed.
    #[error("admin client closed")]
    Closed,
}

fn suffix(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

impl AdminError {
    /// A broker error for `api` with `code` and `message`.
    pub fn broker(api: ApiKey, code: ErrorCode, message: Option<String>) -> Self {
        AdminError::Broker { api, code, message }
    }

    /// The Kafka error code behind the error, where there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            AdminError::Broker { code, .. } => Some(*code),
            AdminError::Net(NetError::Broker { code, .. }) => Some(*code),
            AdminError::Net(NetError::UnknownTopicOrPartition(_)) => {
                Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
            }
            _ => None,
        }
    }

    /// Whether the broker lacks the API (or every version of it this client speaks).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, AdminError::Net(NetError::Unsupported { .. }))
            || self.code() == Some(ErrorCode::UNSUPPORTED_VERSION)
    }
}

/// A topic to create (Java's `NewTopic`). Without a partition count or replication factor the
/// broker's defaults apply (CreateTopics v4+); with replica assignments neither is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count, or `None` for the broker's `num.partitions`.
    pub num_partitions: Option<i32>,
    /// Replication factor, or `None` for the broker's `default.replication.factor`.
    pub replication_factor: Option<i16>,
    /// Explicit replica assignment: partition index -> broker ids (first is the preferred
    /// leader). When non-empty, partitions and replication factor follow from it.
    pub replica_assignments: BTreeMap<i32, Vec<NodeId>>,
    /// Topic configs (`cleanup.policy`, `retention.ms`, ...).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions of `replication_factor` replicas each.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            num_partitions: Some(partitions),
            replication_factor: Some(replication_factor),
            replica_assignments: BTreeMap::new(),
            configs: BTreeMap::new(),
        }
    }

    /// A topic with the broker's default partition count and replication factor.
    pub fn with_defaults(name: impl Into<String>) -> Self {
        NewTopic {
            num_partitions: None,
            replication_factor: None,
            ..NewTopic::new(name, -1, -1)
        }
    }

    /// A topic with an explicit replica assignment (partition -> broker ids).
    pub fn with_replica_assignments(
        name: impl Into<String>,
        assignments: BTreeMap<i32, Vec<NodeId>>,
    ) -> Self {
        NewTopic {
            replica_assignments: assignments,
            ..NewTopic::with_defaults(name)
        }
    }

    /// Adds a topic config.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(name.into(), value.into());
        self
    }
}

/// A new partition count for a topic (Java's `NewPartitions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartitions {
    /// The total partition count after the call (must exceed the current count).
    pub total_count: i32,
    /// Replica broker ids for each new partition, or `None` to let the broker place them.
    pub new_assignments: Option<Vec<Vec<NodeId>>>,
}

impl NewPartitions {
    /// Grow to `total_count` partitions, placed by the broker.
    pub fn increase_to(total_count: i32) -> Self {
        NewPartitions {
            total_count,
            new_assignments: None,
        }
    }
}

/// What a config resource is (DescribeConfigs' `resource_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResourceType {
    /// A topic (2).
    Topic,
    /// A broker (4); the name is the broker id, or empty for the cluster-wide default.
    Broker,
    /// A broker's loggers (8).
    BrokerLogger,
    /// Any other code.
    Other(i8),
}

impl ConfigResourceType {
    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::BrokerLogger => 8,
            ConfigResourceType::Other(c) => c,
        }
    }

    /// The type of a wire code.
    pub fn from_code(code: i8) -> Self {
        match code {
            2 => ConfigResourceType::Topic,
            4 => ConfigResourceType::Broker,
            8 => ConfigResourceType::BrokerLogger,
            c => ConfigResourceType::Other(c),
        }
    }
}

/// A resource with configs: a topic or a broker (Java's `ConfigResource`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// Its type.
    pub resource_type: ConfigResourceType,
    /// Topic name or broker id.
    pub name: String,
}

impl ConfigResource {
    /// A topic.
    pub fn topic(name: impl Into<String>) -> Self {
        ConfigResource {
            resource_type: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// A broker by id.
    pub fn broker(id: NodeId) -> Self {
        ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name: id.to_string(),
        }
    }

    /// The broker a request about this resource must go to: brokers (and their loggers) are
    /// asked themselves; topics any broker.
    pub(crate) fn broker_id(&self) -> Option<NodeId> {
        match self.resource_type {
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => self.name.parse().ok(),
            _ => None,
        }
    }
}

impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.resource_type {
            ConfigResourceType::Topic => write!(f, "topic {}", self.name),
            ConfigResourceType::Broker => write!(f, "broker {}", self.name),
            ConfigResourceType::BrokerLogger => write!(f, "broker logger {}", self.name),
            ConfigResourceType::Other(c) => write!(f, "resource type {c} {}", self.name),
        }
    }
}

/// Where a config value comes from (DescribeConfigs v1+ `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic (1).
    DynamicTopicConfig,
    /// Set dynamically for this broker (2).
    DynamicBrokerConfig,
    /// Set dynamically as the cluster-wide broker default (3).
    DynamicDefaultBrokerConfig,
    /// From the broker's properties file (4).
    StaticBrokerConfig,
    /// The built-in default (5).
    DefaultConfig,
    /// Set dynamically for a broker logger (6).
    DynamicBrokerLoggerConfig,
    /// Unknown (0, or a code newer than this client).
    Unknown,
}

impl ConfigSource {
    pub(crate) fn from_code(code: i8) -> Self {
        match code {
            1 => ConfigSource::DynamicTopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            _ => ConfigSource::Unknown,
        }
    }
}

/// One config as DescribeConfigs describes it (Java's `ConfigEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Value (`None` for sensitive configs).
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether the value is the default.
    pub is_default: bool,
    /// Whether it cannot be changed.
    pub read_only: bool,
    /// Whether the value is hidden.
    pub is_sensitive: bool,
}

/// One change of [`alter_configs`](super::AdminCore::alter_configs) (Java's `AlterConfigOp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Set `name` to `value`.
    Set(String, String),
    /// Remove `name`'s override (back to its default).
    Delete(String),
    /// Append `value` to the list config `name`.
    Append(String, String),
    /// Remove `value` from the list config `name`.
    Subtract(String, String),
}

impl AlterConfigOp {
    pub(crate) fn name(&self) -> &str {
        match self {
            AlterConfigOp::Set(n, _)
            | AlterConfigOp::Delete(n)
            | AlterConfigOp::Append(n, _)
            | AlterConfigOp::Subtract(n, _) => n,
        }
    }
}

/// A topic as [`list_topics`](super::AdminCore::list_topics) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// Name.
    pub name: String,
    /// Topic id (zero when the broker predates topic ids).
    pub topic_id: Uuid,
    /// Whether the topic is internal (`__consumer_offsets`, ...).
    pub is_internal: bool,
}

/// A topic as [`describe_topics`](super::AdminCore::describe_topics) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Name.
    pub name: String,
    /// Topic id (zero when the broker predates topic ids).
    pub topic_id: Uuid,
    /// Whether the topic is internal.
    pub is_internal: bool,
    /// Partitions by index: leader, replicas, ISR.
    pub partitions: Vec<PartitionInfo>,
}

/// The cluster as [`describe_cluster`](super::AdminCore::describe_cluster) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id, if the broker reports one.
    pub cluster_id: Option<String>,
    /// The controller, if known.
    pub controller: Option<BrokerInfo>,
    /// Every broker, by node id.
    pub brokers: Vec<BrokerInfo>,
}

/// A group as [`list_consumer_groups`](super::AdminCore::list_consumer_groups) lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConsumerGroupListing {
    /// Group id.
    pub group_id: String,
    /// `consumer` for consumer groups; empty for groups that only commit offsets.
    pub protocol_type: String,
    /// The group's state (ListGroups v4+), if the broker reported it.
    pub state: Option<String>,
    /// The group's type (ListGroups v5+, Kafka 3.7+); `None` from older brokers, which only
    /// have classic groups (Java's `ConsumerGroupListing.type()` is empty there too).
    pub group_type: Option<GroupType>,
    /// The broker whose coordinator answered.
    pub coordinator: NodeId,
}

/// The protocol a group runs (Java's `GroupType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum GroupType {
    /// The classic protocol (JoinGroup/SyncGroup/Heartbeat), or a group that only stores
    /// offsets.
    Classic,
    /// The KIP-848 consumer protocol (ConsumerGroupHeartbeat).
    Consumer,
    /// A KIP-932 share group.
    Share,
    /// A KIP-1071 streams group.
    Streams,
    /// A type this client does not know.
    Unknown,
}

impl GroupType {
    /// The type a broker names (case-insensitively, as Java parses it); [`GroupType::Unknown`]
    /// for anything else.
    pub fn parse(name: &str) -> GroupType {
        match name.to_ascii_lowercase().as_str() {
            "classic" => GroupType::Classic,
            "consumer" => GroupType::Consumer,
            "share" => GroupType::Share,
            "streams" => GroupType::Streams,
            _ => GroupType::Unknown,
        }
    }

    /// The name brokers use: `classic`, `consumer`, `share`, `streams` or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
            GroupType::Share => "share",
            GroupType::Streams => "streams",
            GroupType::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for GroupType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ConsumerGroupListing {
    /// Whether the group only stores offsets (no members ever joined it).
    pub fn is_simple_consumer_group(&self) -> bool {
        self.protocol_type.is_empty()
    }
}

/// What [`list_consumer_groups`](super::AdminCore::list_consumer_groups) gathers: the groups
/// every broker that answered knows, and what failed on the others.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupsListing {
    /// Groups, sorted by id.
    pub groups: Vec<ConsumerGroupListing>,
    /// A failure per broker that did not answer (Java's `ListConsumerGroupsResult.errors`).
    pub errors: Vec<AdminError>,
}

/// A member of a described group (Java's `MemberDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static membership id, if any.
    pub group_instance_id: Option<String>,
    /// The member's client id.
    pub client_id: String,
    /// The member's host as the broker saw it.
    pub host: String,
    /// The partitions assigned to it (decoded from the consumer protocol; empty for other
    /// protocol types or undecodable assignments). In a consumer-protocol group: its current
    /// assignment, the partitions it owns now.
    pub assignment: Vec<TopicPartition>,
    /// Consumer-protocol groups only: the member's epoch.
    pub member_epoch: Option<i32>,
    /// Consumer-protocol groups only: the topics it subscribes to by name (empty for a
    /// classic member, whose subscription the broker does not report).
    pub subscribed_topics: Vec<String>,
    /// Consumer-protocol groups only: the regular expression it subscribes with, if any.
    pub subscribed_topic_regex: Option<String>,
    /// Consumer-protocol groups only: the partitions the group's assignor wants it to own
    /// once reconciliation ends (`assignment` catches up to it).
    pub target_assignment: Option<Vec<TopicPartition>>,
}

/// A consumer group as [`describe_consumer_groups`](super::AdminCore::describe_consumer_groups)
/// describes it (Java's `ConsumerGroupDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer`; empty for a group that only stores offsets).
    pub protocol_type: String,
    /// The assignor the group chose (`range`, `cooperative-sticky`, ...; for a
    /// consumer-protocol group the server-side assignor, `uniform` or `range`).
    pub partition_assignor: String,
    /// State: `Stable`, `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Dead` for
    /// classic groups; `Empty`, `Assigning`, `Reconciling`, `Stable`, `Dead` for
    /// consumer-protocol groups.
    pub state: String,
    /// [`GroupType::Consumer`] when ConsumerGroupDescribe described it,
    /// [`GroupType::Classic`] when DescribeGroups did.
    pub group_type: GroupType,
    /// Consumer-protocol groups only: the group epoch (bumped by every membership or
    /// subscription change).
    pub group_epoch: Option<i32>,
    /// Consumer-protocol groups only: the epoch of the target assignment (equal to the group
    /// epoch once the assignor has caught up).
    pub assignment_epoch: Option<i32>,
    /// Members.
    pub members: Vec<MemberDescription>,
    /// The coordinator's node id.
    pub coordinator: NodeId,
}

/// One replica in a log dir (DescribeLogDirs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// Size in bytes.
    pub size: i64,
    /// Lag behind the high watermark (or the current replica, for future ones).
    pub offset_lag: i64,
    /// Whether this is a future replica being moved in.
    pub is_future: bool,
}

/// One log dir of a broker (Java's `LogDirDescription`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogDirDescription {
    /// The dir's error, if it is offline.
    pub error: Option<AdminError>,
    /// Replicas in it.
    pub replicas: BTreeMap<TopicPartition, ReplicaInfo>,
}

macro_rules! acl_code {
    ($(#[$m:meta])* $name:ident { $($(#[$cm:meta])* $c:ident = $v:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i8);
        impl $name {
            $($(#[$cm])* pub const $c: $name = $name($v);)*
        }
    };
}

acl_code!(
    /// The type of an ACL's resource (Java's `ResourceType`).
    AclResourceType {
        /// Any type (filters only).
        ANY = 1,
        /// A topic.
        TOPIC = 2,
        /// A consumer group.
        GROUP = 3,
        /// The cluster.
        CLUSTER = 4,
        /// A transactional id.
        TRANSACTIONAL_ID = 5,
        /// A delegation token.
        DELEGATION_TOKEN = 6,
        /// A user.
        USER = 7,
    }
);

acl_code!(
    /// How an ACL's resource name matches (Java's `PatternType`).
    AclPatternType {
        /// Any pattern type (filters only).
        ANY = 1,
        /// Whatever matches, literal, wildcard or prefix (filters only).
        MATCH = 2,
        /// The exact name (or `*`).
        LITERAL = 3,
        /// A name prefix.
        PREFIXED = 4,
    }
);

acl_code!(
    /// What an ACL allows or denies (Java's `AclOperation`).
    AclOperation {
        /// Any operation (filters only).
        ANY = 1,
        /// Every operation.
        ALL = 2,
        /// Read.
        READ = 3,
        /// Write.
        WRITE = 4,
        /// Create.
        CREATE = 5,
        /// Delete.
        DELETE = 6,
        /// Alter.
        ALTER = 7,
        /// Describe.
        DESCRIBE = 8,
        /// Cluster actions (replication).
        CLUSTER_ACTION = 9,
        /// Describe configs.
        DESCRIBE_CONFIGS = 10,
        /// Alter configs.
        ALTER_CONFIGS = 11,
        /// Idempotent writes.
        IDEMPOTENT_WRITE = 12,
    }
);

acl_code!(
    /// Whether an ACL allows or denies (Java's `AclPermissionType`).
    AclPermissionType {
        /// Either (filters only).
        ANY = 1,
        /// Deny.
        DENY = 2,
        /// Allow.
        ALLOW = 3,
    }
);

/// One ACL (Java's `AclBinding`): a principal may (not) do an operation on resources from a
/// host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// The resource type.
    pub resource_type: AclResourceType,
    /// The resource name (or `*`, or a prefix).
    pub resource_name: String,
    /// How the name matches.
    pub pattern_type: AclPatternType,
    /// The principal (`User:alice`).
    pub principal: String,
    /// The host (`*` for any).
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission_type: AclPermissionType,
}

/// A filter over ACLs (Java's `AclBindingFilter`): `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBindingFilter {
    /// Resource type (`ANY` matches any).
    pub resource_type: AclResourceType,
    /// Resource name.
    pub resource_name: Option<String>,
    /// Pattern type (`ANY` or `MATCH` for any).
    pub pattern_type: AclPatternType,
    /// Principal.
    pub principal: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Operation (`ANY` matches any).
    pub operation: AclOperation,
    /// Permission (`ANY` matches any).
    pub permission_type: AclPermissionType,
}

impl AclBindingFilter {
    /// The filter that matches every ACL.
    pub fn any() -> Self {
        AclBindingFilter {
            resource_type: AclResourceType::ANY,
            resource_name: None,
            pattern_type: AclPatternType::ANY,
            principal: None,
            host: None,
            operation: AclOperation::ANY,
            permission_type: AclPermissionType::ANY,
        }
    }
}

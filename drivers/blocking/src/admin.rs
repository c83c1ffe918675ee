//! The admin client for programs without an async runtime: [`Admin`] runs an [`AdminCore`] on
//! its own loop thread; its calls block the calling thread until the loop answers.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_executor::block_on;
use kafkit_core::admin::{
    AclBinding, AclBindingFilter, AdminCore, AdminError, AdminMetrics, AlterConfigOp,
    ClusterDescription, ConfigEntry, ConfigResource, ConsumerGroupDescription,
    ConsumerGroupsListing, ListTransactionsOptions, LogDirDescription, NewPartitions, NewTopic,
    TopicDescription, TopicListing, TransactionDescription, TransactionsListing,
};
use kafkit_core::config::AdminConfig;
use kafkit_core::consumer::{OffsetAndMetadata, TopicPartition};
use kafkit_core::driver::{AdminHandle, AdminHandler, OpenWriters};
use kafkit_core::network::{NetOptions, NodeId, SetupError};

use crate::event_loop::spawn_loop;
use crate::{driver_env, SocketOptions};

/// An admin client on its own loop thread (Java's `Admin`, kafka-python's
/// `KafkaAdminClient`). Cheap to clone and usable from any thread; the thread stops when the
/// last clone is dropped. Calls over many items answer each item separately.
///
/// ```no_run
/// use kafkit_blocking::Admin;
/// use kafkit_core::admin::NewTopic;
/// use kafkit_core::config::AdminConfig;
///
/// let config = AdminConfig::builder().bootstrap_servers("localhost:9092").build()?;
/// let admin = Admin::start(&config)?;
/// let created = admin.create_topics(vec![NewTopic::new("orders", 3, 1)], false)?;
/// created["orders"].clone()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Admin {
    handle: AdminHandle,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// Starts the admin client's loop thread. Connections open as calls are made.
    pub fn start(config: &AdminConfig) -> Result<Self, SetupError> {
        let opts = NetOptions::from_config(&config.common, &driver_env())?;
        let socket = SocketOptions::from_config(&config.common);
        let core = AdminCore::new(config, opts);
        let tx = spawn_loop(
            "kafkit-admin",
            core,
            AdminHandler::default(),
            socket,
            OpenWriters::new(),
        );
        Ok(Admin {
            handle: AdminHandle::new(tx),
        })
    }

    /// An admin client sharing this one's thread whose calls time out after `timeout`
    /// (retries included) instead of `default_api_timeout_ms`.
    pub fn with_timeout(&self, timeout: Duration) -> Admin {
        Admin {
            handle: self.handle.with_timeout(timeout),
        }
    }

    /// The async handle underneath.
    pub fn handle(&self) -> &AdminHandle {
        &self.handle
    }

    /// The admin client's metrics now (see [`AdminMetrics`]).
    pub fn metrics(&self) -> Result<AdminMetrics, AdminError> {
        block_on(self.handle.metrics())
    }

    /// Creates topics; `validate_only` checks without creating. Per topic.
    pub fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Result<BTreeMap<String, Result<(), AdminError>>, AdminError> {
        block_on(self.handle.create_topics(topics, validate_only))
    }

    /// Deletes topics. Per topic.
    pub fn delete_topics(
        &self,
        topics: Vec<String>,
    ) -> Result<BTreeMap<String, Result<(), AdminError>>, AdminError> {
        block_on(self.handle.delete_topics(topics))
    }

    /// Grows topics' partition counts. Per topic.
    pub fn create_partitions(
        &self,
        partitions: BTreeMap<String, NewPartitions>,
        validate_only: bool,
    ) -> Result<BTreeMap<String, Result<(), AdminError>>, AdminError> {
        block_on(self.handle.create_partitions(partitions, validate_only))
    }

    /// Lists topics; internal ones only with `list_internal`.
    pub fn list_topics(&self, list_internal: bool) -> Result<Vec<TopicListing>, AdminError> {
        block_on(self.handle.list_topics(list_internal))
    }

    /// Describes topics. Per topic.
    pub fn describe_topics(
        &self,
        topics: Vec<String>,
    ) -> Result<BTreeMap<String, Result<TopicDescription, AdminError>>, AdminError> {
        block_on(self.handle.describe_topics(topics))
    }

    /// Describes the cluster: id, controller, brokers.
    pub fn describe_cluster(&self) -> Result<ClusterDescription, AdminError> {
        block_on(self.handle.describe_cluster())
    }

    /// Describes topic and broker configs. Per resource.
    pub fn describe_configs(
        &self,
        resources: Vec<ConfigResource>,
    ) -> Result<BTreeMap<ConfigResource, Result<Vec<ConfigEntry>, AdminError>>, AdminError> {
        block_on(self.handle.describe_configs(resources))
    }

    /// Changes configs (incrementally where the broker supports it). Per resource.
    pub fn alter_configs(
        &self,
        changes: BTreeMap<ConfigResource, Vec<AlterConfigOp>>,
        validate_only: bool,
    ) -> Result<BTreeMap<ConfigResource, Result<(), AdminError>>, AdminError> {
        block_on(self.handle.alter_configs(changes, validate_only))
    }

    /// Lists consumer groups on every broker.
    pub fn list_consumer_groups(&self) -> Result<ConsumerGroupsListing, AdminError> {
        block_on(self.handle.list_consumer_groups())
    }

    /// Describes consumer groups. Per group.
    pub fn describe_consumer_groups(
        &self,
        groups: Vec<String>,
    ) -> Result<BTreeMap<String, Result<ConsumerGroupDescription, AdminError>>, AdminError> {
        block_on(self.handle.describe_consumer_groups(groups))
    }

    /// Deletes (empty) consumer groups. Per group.
    pub fn delete_consumer_groups(
        &self,
        groups: Vec<String>,
    ) -> Result<BTreeMap<String, Result<(), AdminError>>, AdminError> {
        block_on(self.handle.delete_consumer_groups(groups))
    }

    /// A group's committed offsets, of `partitions` or of all.
    pub fn list_consumer_group_offsets(
        &self,
        group: &str,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>, AdminError> {
        block_on(self.handle.list_consumer_group_offsets(group, partitions))
    }

    /// Commits offsets for an (empty) group. Per partition.
    pub fn alter_consumer_group_offsets(
        &self,
        group: &str,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<BTreeMap<TopicPartition, Result<(), AdminError>>, AdminError> {
        block_on(self.handle.alter_consumer_group_offsets(group, offsets))
    }

    /// Deletes a group's committed offsets. Per partition.
    pub fn delete_consumer_group_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, Result<(), AdminError>>, AdminError> {
        block_on(self.handle.delete_consumer_group_offsets(group, partitions))
    }

    /// Deletes records before the given offsets. Per partition, the new low watermark.
    pub fn delete_records(
        &self,
        before: BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, Result<i64, AdminError>>, AdminError> {
        block_on(self.handle.delete_records(before))
    }

    /// Describes brokers' log dirs. Per broker.
    #[allow(clippy::type_complexity)]
    pub fn describe_log_dirs(
        &self,
        brokers: Vec<NodeId>,
    ) -> Result<BTreeMap<NodeId, Result<BTreeMap<String, LogDirDescription>, AdminError>>, AdminError>
    {
        block_on(self.handle.describe_log_dirs(brokers))
    }

    /// The ACLs matching `filter`.
    pub fn describe_acls(&self, filter: AclBindingFilter) -> Result<Vec<AclBinding>, AdminError> {
        block_on(self.handle.describe_acls(filter))
    }

    /// Creates ACLs. Per binding.
    pub fn create_acls(
        &self,
        acls: Vec<AclBinding>,
    ) -> Result<BTreeMap<AclBinding, Result<(), AdminError>>, AdminError> {
        block_on(self.handle.create_acls(acls))
    }

    /// Deletes the ACLs each filter matches. Per filter, the deleted bindings.
    #[allow(clippy::type_complexity)]
    pub fn delete_acls(
        &self,
        filters: Vec<AclBindingFilter>,
    ) -> Result<BTreeMap<AclBindingFilter, Result<Vec<AclBinding>, AdminError>>, AdminError> {
        block_on(self.handle.delete_acls(filters))
    }

    /// Describes transactional ids' transactions. Per transactional id; an unknown id fails
    /// with TRANSACTIONAL_ID_NOT_FOUND.
    pub fn describe_transactions(
        &self,
        transactional_ids: Vec<String>,
    ) -> Result<BTreeMap<String, Result<TransactionDescription, AdminError>>, AdminError> {
        block_on(self.handle.describe_transactions(transactional_ids))
    }

    /// Lists the transactions of every broker, narrowed by `options`; per broker.
    pub fn list_transactions(
        &self,
        options: ListTransactionsOptions,
    ) -> Result<TransactionsListing, AdminError> {
        block_on(self.handle.list_transactions(options))
    }
}

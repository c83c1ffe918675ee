//! The application's admin handle: [`AdminHandle`] over an [`AdminCore`] running in some
//! driver's loop. Every method queues one call on the loop and resolves when the core
//! completes it (by the call's timeout at the latest; see [`crate::admin`]).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use super::{CommandSender, Handler};
use crate::admin::{
    AclBinding, AclBindingFilter, AdminCore, AdminError, AdminEvent, AdminMetrics, AdminOutcome,
    AlterConfigOp, ClusterDescription, ConfigEntry, ConfigResource, ConsumerGroupDescription,
    ConsumerGroupsListing, ListTransactionsOptions, LogDirDescription, NewPartitions, NewTopic,
    OpId, TopicDescription, TopicListing, TransactionDescription, TransactionsListing,
};
use crate::consumer::{OffsetAndMetadata, TopicPartition};
use crate::network::NodeId;

/// Completes the [`AdminHandle`]'s futures from the [`AdminCore`]'s events: it names each
/// call with the next [`OpId`] of its own counter and keeps the call's oneshot under it.
#[derive(Default)]
pub struct AdminHandler {
    waiting: HashMap<OpId, oneshot::Sender<AdminOutcome>>,
    last_op: u64,
}

impl Handler<AdminCore> for AdminHandler {
    fn on_event(&mut self, _core: &mut AdminCore, event: AdminEvent, _now: Instant) {
        match event {
            AdminEvent::Completed { id, outcome } => {
                if let Some(reply) = self.waiting.remove(&id) {
                    // The caller may have stopped waiting; that is fine.
                    let _ = reply.send(outcome);
                }
            }
            // Every call completed before this; anything still waiting was never started.
            AdminEvent::Closed => self.waiting.clear(),
        }
    }

    fn on_shutdown(&mut self, core: &mut AdminCore) {
        core.abort();
        // The loop stops without draining the core: dropping the senders fails the waiting
        // calls with `AdminError::Closed`.
        self.waiting.clear();
    }
}

impl AdminHandler {
    /// A fresh id for a call, from the handler's counter.
    pub fn next_op(&mut self) -> OpId {
        self.last_op += 1;
        OpId(self.last_op)
    }

    /// Remembers who waits for call `id` (for loops that start calls themselves, such as
    /// the simulation's; take `id` from [`AdminHandler::next_op`] so it cannot clash).
    pub fn wait_for(&mut self, id: OpId, reply: oneshot::Sender<AdminOutcome>) {
        self.waiting.insert(id, reply);
    }
}

/// The application's handle on an admin client running in a driver's loop (Java's `Admin`,
/// kafka-python's `KafkaAdminClient`). Cheap to clone; the loop stops when the last clone is
/// dropped. Calls over many items answer each item separately.
#[derive(Clone, Debug)]
pub struct AdminHandle {
    cmds: CommandSender<AdminCore, AdminHandler>,
    timeout: Option<Duration>,
}

macro_rules! expect_outcome {
    ($outcome:expr, $variant:ident) => {
        match $outcome {
            AdminOutcome::$variant(x) => x,
            other => unreachable!("admin call answered with {other:?}"),
        }
    };
}

impl AdminHandle {
    /// Wraps the sender of a loop running an [`AdminCore`] with an [`AdminHandler`].
    pub fn new(cmds: CommandSender<AdminCore, AdminHandler>) -> Self {
        AdminHandle {
            cmds,
            timeout: None,
        }
    }

    /// A handle whose calls time out after `timeout` (retries included) instead of
    /// `default_api_timeout_ms`.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        AdminHandle {
            cmds: self.cmds.clone(),
            timeout: Some(timeout),
        }
    }

    async fn call(
        &self,
        f: impl FnOnce(&mut AdminCore, OpId, Option<Duration>, Instant) + Send + 'static,
    ) -> Result<AdminOutcome, AdminError> {
        let (tx, rx) = oneshot::channel();
        let timeout = self.timeout;
        self.cmds
            .run(move |core, handler, now| {
                let id = handler.next_op();
                f(core, id, timeout, now);
                handler.waiting.insert(id, tx);
            })
            .map_err(|_| AdminError::Closed)?;
        rx.await.map_err(|_| AdminError::Closed)
    }

    /// The admin client's metrics now (see [`AdminMetrics`]).
    pub async fn metrics(&self) -> Result<AdminMetrics, AdminError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .run(move |core, _, now| {
                let _ = tx.send(core.metrics(now));
            })
            .map_err(|_| AdminError::Closed)?;
        rx.await.map_err(|_| AdminError::Closed)
    }

    /// Creates topics; `validate_only` checks without creating. Per topic.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Result<BTreeMap<String, Result<(), AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.create_topics(op, topics, validate_only, t, now))
            .await?;
        Ok(expect_outcome!(o, Topics))
    }

    /// Deletes topics. Per topic.
    pub async fn delete_topics(
        &self,
        topics: Vec<String>,
    ) -> Result<BTreeMap<String, Result<(), AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.delete_topics(op, topics, t, now))
            .await?;
        Ok(expect_outcome!(o, Topics))
    }

    /// Grows topics' partition counts. Per topic.
    pub async fn create_partitions(
        &self,
        partitions: BTreeMap<String, NewPartitions>,
        validate_only: bool,
    ) -> Result<BTreeMap<String, Result<(), AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.create_partitions(op, partitions, validate_only, t, now))
            .await?;
        Ok(expect_outcome!(o, Topics))
    }

    /// Lists topics; internal ones only with `list_internal`.
    pub async fn list_topics(&self, list_internal: bool) -> Result<Vec<TopicListing>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.list_topics(op, list_internal, t, now))
            .await?;
        expect_outcome!(o, TopicListing)
    }

    /// Describes topics. Per topic.
    pub async fn describe_topics(
        &self,
        topics: Vec<String>,
    ) -> Result<BTreeMap<String, Result<TopicDescription, AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.describe_topics(op, topics, t, now))
            .await?;
        Ok(expect_outcome!(o, TopicDescriptions))
    }

    /// Describes the cluster: id, controller, brokers.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, AdminError> {
        let o = self
            .call(|c, op, t, now| c.describe_cluster(op, t, now))
            .await?;
        expect_outcome!(o, Cluster)
    }

    /// Describes topic and broker configs. Per resource.
    pub async fn describe_configs(
        &self,
        resources: Vec<ConfigResource>,
    ) -> Result<BTreeMap<ConfigResource, Result<Vec<ConfigEntry>, AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.describe_configs(op, resources, t, now))
            .await?;
        Ok(expect_outcome!(o, Configs))
    }

    /// Changes configs (incrementally where the broker supports it). Per resource.
    pub async fn alter_configs(
        &self,
        changes: BTreeMap<ConfigResource, Vec<AlterConfigOp>>,
        validate_only: bool,
    ) -> Result<BTreeMap<ConfigResource, Result<(), AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.alter_configs(op, changes, validate_only, t, now))
            .await?;
        Ok(expect_outcome!(o, Altered))
    }

    /// Lists consumer groups on every broker.
    pub async fn list_consumer_groups(&self) -> Result<ConsumerGroupsListing, AdminError> {
        let o = self
            .call(|c, op, t, now| c.list_consumer_groups(op, t, now))
            .await?;
        expect_outcome!(o, GroupListing)
    }

    /// Describes consumer groups. Per group.
    pub async fn describe_consumer_groups(
        &self,
        groups: Vec<String>,
    ) -> Result<BTreeMap<String, Result<ConsumerGroupDescription, AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.describe_consumer_groups(op, groups, t, now))
            .await?;
        Ok(expect_outcome!(o, GroupDescriptions))
    }

    /// Deletes (empty) consumer groups. Per group.
    pub async fn delete_consumer_groups(
        &self,
        groups: Vec<String>,
    ) -> Result<BTreeMap<String, Result<(), AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.delete_consumer_groups(op, groups, t, now))
            .await?;
        Ok(expect_outcome!(o, Groups))
    }

    /// A group's committed offsets, of `partitions` or of all.
    pub async fn list_consumer_group_offsets(
        &self,
        group: &str,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>, AdminError> {
        let group = group.to_owned();
        let o = self
            .call(move |c, op, t, now| {
                c.list_consumer_group_offsets(op, &group, partitions, t, now)
            })
            .await?;
        expect_outcome!(o, GroupOffsets)
    }

    /// Commits offsets for an (empty) group. Per partition.
    pub async fn alter_consumer_group_offsets(
        &self,
        group: &str,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<BTreeMap<TopicPartition, Result<(), AdminError>>, AdminError> {
        let group = group.to_owned();
        let o = self
            .call(move |c, op, t, now| c.alter_consumer_group_offsets(op, &group, offsets, t, now))
            .await?;
        Ok(expect_outcome!(o, Partitions))
    }

    /// Deletes a group's committed offsets. Per partition.
    pub async fn delete_consumer_group_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, Result<(), AdminError>>, AdminError> {
        let group = group.to_owned();
        let o = self
            .call(move |c, op, t, now| {
                c.delete_consumer_group_offsets(op, &group, partitions, t, now)
            })
            .await?;
        Ok(expect_outcome!(o, Partitions))
    }

    /// Deletes records before the given offsets. Per partition, the new low watermark.
    pub async fn delete_records(
        &self,
        before: BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, Result<i64, AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.delete_records(op, before, t, now))
            .await?;
        Ok(expect_outcome!(o, DeletedRecords))
    }

    /// Describes brokers' log dirs. Per broker.
    #[allow(clippy::type_complexity)]
    pub async fn describe_log_dirs(
        &self,
        brokers: Vec<NodeId>,
    ) -> Result<BTreeMap<NodeId, Result<BTreeMap<String, LogDirDescription>, AdminError>>, AdminError>
    {
        let o = self
            .call(move |c, op, t, now| c.describe_log_dirs(op, brokers, t, now))
            .await?;
        Ok(expect_outcome!(o, LogDirs))
    }

    /// The ACLs matching `filter`.
    pub async fn describe_acls(
        &self,
        filter: AclBindingFilter,
    ) -> Result<Vec<AclBinding>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.describe_acls(op, filter, t, now))
            .await?;
        expect_outcome!(o, Acls)
    }

    /// Creates ACLs. Per binding.
    pub async fn create_acls(
        &self,
        acls: Vec<AclBinding>,
    ) -> Result<BTreeMap<AclBinding, Result<(), AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.create_acls(op, acls, t, now))
            .await?;
        Ok(expect_outcome!(o, CreatedAcls))
    }

    /// Deletes the ACLs each filter matches. Per filter, the deleted bindings.
    #[allow(clippy::type_complexity)]
    pub async fn delete_acls(
        &self,
        filters: Vec<AclBindingFilter>,
    ) -> Result<BTreeMap<AclBindingFilter, Result<Vec<AclBinding>, AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.delete_acls(op, filters, t, now))
            .await?;
        Ok(expect_outcome!(o, DeletedAcls))
    }

    /// Describes transactional ids' transactions (at each id's transaction coordinator). Per
    /// transactional id; an unknown id fails with TRANSACTIONAL_ID_NOT_FOUND.
    pub async fn describe_transactions(
        &self,
        transactional_ids: Vec<String>,
    ) -> Result<BTreeMap<String, Result<TransactionDescription, AdminError>>, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.describe_transactions(op, transactional_ids, t, now))
            .await?;
        Ok(expect_outcome!(o, TransactionDescriptions))
    }

    /// Lists the transactions of every broker, narrowed by `options`; per broker (see
    /// [`TransactionsListing::all`]).
    pub async fn list_transactions(
        &self,
        options: ListTransactionsOptions,
    ) -> Result<TransactionsListing, AdminError> {
        let o = self
            .call(move |c, op, t, now| c.list_transactions(op, options, t, now))
            .await?;
        expect_outcome!(o, TransactionListing)
    }
}

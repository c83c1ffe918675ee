//! The consumer for programs without an async runtime: [`Consumer`] runs a [`ConsumerCore`] on
//! its own loop thread; its calls block the calling thread until the loop answers.
//! [`Consumer::iter`] is kafka-python's `for record in consumer`: it ends once
//! `consumer_timeout_ms` passes without a record.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_executor::block_on;
use kafkit_core::config::ConsumerConfig;
use kafkit_core::consumer::group::Offsets;
use kafkit_core::consumer::{
    ConsumerCore, ConsumerError, ConsumerMetrics, ConsumerRecord, ConsumerRecords, GroupMetadata,
    MemberState, OffsetAndMetadata, OffsetAndTimestamp, PartitionLag, RebalanceListener,
    TopicPartition, TypedRecord,
};
use kafkit_core::driver::{
    CommitCallback, ConsumerHandle, ConsumerHandler, OpenWriters, RecordCursor,
};
use kafkit_core::network::{PartitionInfo, SetupError};
use kafkit_core::producer::serializer::{DeserializeError, Deserializer};

use crate::event_loop::spawn_loop;
use crate::{driver_env, SocketOptions, StartError};

/// A Kafka consumer on its own loop thread (kafka-python's `KafkaConsumer`): of partitions
/// assigned by hand ([`Consumer::assign`]), or a member of the consumer group `group_id`
/// names ([`Consumer::subscribe`]), whose coordinator shares the subscribed topics' partitions
/// among the members and keeps their committed offsets. Cheap to clone and usable from any
/// thread; the loop thread stops when the last clone (and every iterator made from one) is
/// dropped, or at [`Consumer::close`].
///
/// Every call blocks the calling thread until the loop answers; [`Consumer::poll`] and the
/// calls that ask the cluster (offsets, metadata) wait for the network, the others only for
/// the loop thread.
///
/// ```no_run
/// use std::time::Duration;
/// use kafkit_blocking::Consumer;
/// use kafkit_core::config::ConsumerConfig;
/// use kafkit_core::consumer::TopicPartition;
///
/// let config = ConsumerConfig::builder()
///     .bootstrap_servers("localhost:9092")
///     .set("auto_offset_reset", "earliest")
///     .set("consumer_timeout_ms", "1000")
///     .build()?;
/// let consumer = Consumer::start(&config)?;
/// consumer.assign([TopicPartition::new("orders", 0), TopicPartition::new("orders", 1)])?;
/// // Ends after a second without records (consumer_timeout_ms).
/// for record in &consumer {
///     let record = record?;
///     println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
/// }
/// let orders0 = TopicPartition::new("orders", 0);
/// println!("next offset of orders-0: {}", consumer.position(&orders0)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Consumer {
    handle: ConsumerHandle,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").finish_non_exhaustive()
    }
}

impl Consumer {
    /// Starts the consumer's loop thread. Connections open once partitions are assigned or
    /// offsets and metadata are asked for.
    pub fn start(config: &ConsumerConfig) -> Result<Self, StartError> {
        config.validate().map_err(SetupError::from)?;
        let socket = SocketOptions::from_config(&config.common);
        let core = ConsumerCore::from_config(config.clone(), &driver_env())?;
        let writers = OpenWriters::new();
        let tx = spawn_loop(
            "kafkit-consumer",
            core,
            ConsumerHandler::default(),
            socket,
            writers.clone(),
        )
        .with_writers(writers);
        Ok(Consumer {
            handle: ConsumerHandle::new(tx, config),
        })
    }

    /// Replaces the assignment with `partitions`. Partitions kept keep their positions; new
    /// ones start at their reset offset (`auto_offset_reset`) unless sought.
    pub fn assign(
        &self,
        partitions: impl IntoIterator<Item = TopicPartition>,
    ) -> Result<(), ConsumerError> {
        block_on(self.handle.assign(partitions.into_iter().collect()))
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Result<BTreeSet<TopicPartition>, ConsumerError> {
        block_on(self.handle.assignment())
    }

    /// Up to `max_poll_records` records, waiting at most `timeout` for some; empty when none
    /// came in time. A partition's error (out of range with `auto_offset_reset=none`, a
    /// corrupt batch, ...) is returned once, by a poll with no records to return.
    ///
    /// With a subscription, polling drives the group: the member joins (and rejoins after a
    /// rebalance) here, the rebalance listener's callbacks run here first, and offsets are
    /// auto-committed in the background between polls. Poll at least every
    /// `max_poll_interval_ms`, or the member leaves the group.
    pub fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, ConsumerError> {
        block_on(self.handle.poll(timeout))
    }

    /// The records one at a time, ending after `consumer_timeout_ms` without a record (never,
    /// when it is not set) or when the consumer is closed. Partition errors are yielded in
    /// their place; iteration may go on after one. `for record in &consumer` is the same.
    pub fn iter(&self) -> RecordIter {
        RecordIter {
            cursor: self.handle.cursor(),
            _consumer: self.clone(),
        }
    }

    /// Like [`Consumer::iter`] with another idle timeout than `consumer_timeout_ms` (`None`:
    /// iterate until the consumer is closed).
    pub fn iter_with_timeout(&self, idle: Option<Duration>) -> RecordIter {
        RecordIter {
            cursor: self.handle.cursor().with_idle_timeout(idle),
            _consumer: self.clone(),
        }
    }

    /// Sets the next offset to read of an assigned partition.
    pub fn seek(&self, partition: &TopicPartition, offset: i64) -> Result<(), ConsumerError> {
        block_on(self.handle.seek(partition.clone(), offset))
    }

    /// Moves the partitions (every assigned one when `partitions` is empty) to their earliest
    /// offsets (looked up as the next poll needs them).
    pub fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        block_on(self.handle.seek_to_beginning(partitions.to_vec()))
    }

    /// Moves the partitions (every assigned one when `partitions` is empty) to their ends.
    pub fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        block_on(self.handle.seek_to_end(partitions.to_vec()))
    }

    /// The offset of the next record the partition will return, waiting (up to
    /// `default_api_timeout_ms`) for a pending offset reset.
    pub fn position(&self, partition: &TopicPartition) -> Result<i64, ConsumerError> {
        block_on(self.handle.position(partition.clone()))
    }

    /// The partition's high watermark as of its last fetch (`None` before one).
    pub fn highwater(&self, partition: &TopicPartition) -> Result<Option<i64>, ConsumerError> {
        block_on(self.handle.highwater(partition.clone()))
    }

    /// Stops fetching the partitions (their buffered records are dropped and fetched again on
    /// resume).
    pub fn pause(&self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        block_on(self.handle.pause(partitions.to_vec()))
    }

    /// Fetches the partitions again.
    pub fn resume(&self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        block_on(self.handle.resume(partitions.to_vec()))
    }

    /// The paused partitions.
    pub fn paused(&self) -> Result<BTreeSet<TopicPartition>, ConsumerError> {
        block_on(self.handle.paused())
    }

    /// The earliest offset of each partition (assigned or not).
    pub fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumerError> {
        block_on(self.handle.beginning_offsets(partitions.to_vec()))
    }

    /// The end offset of each partition (assigned or not): the high watermark, or the last
    /// stable offset with `isolation_level=read_committed`.
    pub fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumerError> {
        block_on(self.handle.end_offsets(partitions.to_vec()))
    }

    /// For each partition, the earliest offset whose timestamp is at or after the one given
    /// (milliseconds since the epoch), or `None` when no record is that recent.
    pub fn offsets_for_times(
        &self,
        query: BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, ConsumerError> {
        block_on(self.handle.offsets_for_times(query))
    }

    /// The partitions of `topic`, or `None` if it does not exist.
    pub fn partitions_for_topic(
        &self,
        topic: &str,
    ) -> Result<Option<Vec<PartitionInfo>>, ConsumerError> {
        block_on(self.handle.partitions_for_topic(topic))
    }

    /// The names of every topic the cluster shows this client.
    pub fn topics(&self) -> Result<BTreeSet<String>, ConsumerError> {
        block_on(self.handle.topics())
    }

    // ---- groups -------------------------------------------------------------------------

    /// Subscribes to `topics` as a member of the consumer group `group_id` names (an empty
    /// list unsubscribes). The member joins the group, and gets its partitions, in the next
    /// [`poll`](Self::poll) (or iteration); the group's committed offsets say where each
    /// partition starts (`auto_offset_reset` where there is none). Fails with
    /// [`ConsumerError::IllegalState`] without a `group_id` or after [`assign`](Self::assign).
    ///
    /// ```no_run
    /// use kafkit_blocking::Consumer;
    /// use kafkit_core::config::ConsumerConfig;
    ///
    /// let config = ConsumerConfig::builder()
    ///     .bootstrap_servers("localhost:9092")
    ///     .set("group_id", "billing")
    ///     .set("auto_offset_reset", "earliest")
    ///     .build()?;
    /// let consumer = Consumer::start(&config)?;
    /// consumer.subscribe(["orders", "refunds"])?;
    /// for record in &consumer {
    ///     let record = record?;
    ///     println!("{}-{}@{}", record.topic, record.partition, record.offset);
    /// }
    /// // Commits the positions (enable_auto_commit, the default) and leaves the group.
    /// consumer.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe<T: Into<String>>(
        &self,
        topics: impl IntoIterator<Item = T>,
    ) -> Result<(), ConsumerError> {
        block_on(self.handle.subscribe(topics))
    }

    /// [`subscribe`](Self::subscribe) with a rebalance listener, whose callbacks run inside
    /// this consumer's polls (on the polling thread).
    pub fn subscribe_with_listener<T: Into<String>>(
        &self,
        topics: impl IntoIterator<Item = T>,
        listener: impl RebalanceListener + 'static,
    ) -> Result<(), ConsumerError> {
        block_on(self.handle.subscribe_with_listener(topics, listener))
    }

    /// Subscribes to every topic whose whole name matches `pattern` (a regular expression),
    /// now and as topics are created.
    pub fn subscribe_pattern(&self, pattern: &str) -> Result<(), ConsumerError> {
        block_on(self.handle.subscribe_pattern(pattern))
    }

    /// Leaves the group: runs the revocation callbacks, sends LeaveGroup (dynamic members)
    /// and drops the subscription; without one, clears a manual assignment.
    pub fn unsubscribe(&self) -> Result<(), ConsumerError> {
        block_on(self.handle.unsubscribe())
    }

    /// The subscribed topics (for a pattern: those it matched so far).
    pub fn subscription(&self) -> Result<BTreeSet<String>, ConsumerError> {
        block_on(self.handle.subscription())
    }

    /// Sets the rebalance listener (replacing any). Set it before subscribing to see the
    /// first assignment.
    pub fn set_rebalance_listener(
        &self,
        listener: impl RebalanceListener + 'static,
    ) -> Result<(), ConsumerError> {
        block_on(self.handle.set_rebalance_listener(listener))
    }

    /// Commits and waits (Java's `commitSync`): `offsets`, or with `None` the position of
    /// every assigned partition (what was consumed). Retriable errors are retried up to
    /// `default_api_timeout_ms`.
    pub fn commit(&self, offsets: Option<Offsets>) -> Result<(), ConsumerError> {
        block_on(self.handle.commit(offsets))
    }

    /// Commits without waiting (Java's `commitAsync`; not retried). `callback` (`None`: log
    /// failures) runs on the application's thread in a later `poll`, `commit` or `close`.
    pub fn commit_async(
        &self,
        offsets: Option<Offsets>,
        callback: Option<CommitCallback>,
    ) -> Result<(), ConsumerError> {
        self.handle.commit_async(offsets, callback)
    }

    /// The group's committed offsets of `partitions` (`None` where there is none), asked of
    /// the group coordinator.
    pub fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ConsumerError> {
        block_on(self.handle.committed(partitions.to_vec()))
    }

    /// The group membership (Java's `groupMetadata()`: group id, generation, member id,
    /// instance id), `None` without a `group_id`.
    pub fn group_metadata(&self) -> Result<Option<GroupMetadata>, ConsumerError> {
        block_on(self.handle.group_metadata())
    }

    /// Where the member is in the group protocol, `None` without a `group_id`.
    pub fn group_state(&self) -> Result<Option<MemberState>, ConsumerError> {
        block_on(self.handle.group_state())
    }

    /// The consumer's metrics now (Java's names; see [`ConsumerMetrics`]), including the
    /// network layer's. `to_prometheus()` renders them.
    pub fn metrics(&self) -> Result<ConsumerMetrics, ConsumerError> {
        block_on(self.handle.metrics())
    }

    /// Every assigned partition's position, high watermark from its last fetch and lag.
    pub fn lag(&self) -> Result<BTreeMap<TopicPartition, PartitionLag>, ConsumerError> {
        block_on(self.handle.lag())
    }

    /// Closes the consumer: connections close, buffered records are dropped, iterators end
    /// and later calls fail with [`ConsumerError::Closed`]. Every clone is closed. A group
    /// member first commits its positions (with `enable_auto_commit`), runs its revocation
    /// callbacks and leaves the group (a static member stays), within 30 seconds.
    pub fn close(&self) -> Result<(), ConsumerError> {
        block_on(self.handle.close())
    }

    /// The async handle on the same consumer, for code that mixes blocking and async calls.
    pub fn handle(&self) -> &ConsumerHandle {
        &self.handle
    }

    /// A consumer whose records come with keys and values deserialized by `key` and `value`.
    ///
    /// ```no_run
    /// use kafkit_blocking::Consumer;
    /// use kafkit_core::config::ConsumerConfig;
    /// use kafkit_core::consumer::TopicPartition;
    /// use kafkit_core::producer::serializer::{LongDeserializer, StringDeserializer};
    ///
    /// let config = ConsumerConfig::builder().set("consumer_timeout_ms", "1000").build()?;
    /// let balances = Consumer::start(&config)?
    ///     .with_deserializers::<String, i64>(StringDeserializer, LongDeserializer);
    /// balances.consumer().assign([TopicPartition::new("balances", 0)])?;
    /// for record in balances.iter() {
    ///     let record = record?;
    ///     println!("{} has {}", record.key, record.value);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_deserializers<K, V>(
        self,
        key: impl Deserializer<K> + Send + Sync + 'static,
        value: impl Deserializer<V> + Send + Sync + 'static,
    ) -> TypedConsumer<K, V> {
        TypedConsumer {
            key: Shared(Arc::new(key)),
            value: Shared(Arc::new(value)),
            consumer: self,
        }
    }
}

impl IntoIterator for &Consumer {
    type Item = Result<ConsumerRecord, ConsumerError>;
    type IntoIter = RecordIter;

    fn into_iter(self) -> RecordIter {
        self.iter()
    }
}

/// The records of a [`Consumer`] one at a time (see [`Consumer::iter`]). Each `next` blocks
/// until a record comes, or returns `None` once the idle timeout passed without one (or the
/// consumer was closed); a later `next` waits again.
pub struct RecordIter {
    // Field order matters: the cursor's command sender must be gone before the consumer's
    // final wake-up.
    cursor: RecordCursor,
    _consumer: Consumer,
}

impl std::fmt::Debug for RecordIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordIter").finish_non_exhaustive()
    }
}

impl Iterator for RecordIter {
    type Item = Result<ConsumerRecord, ConsumerError>;

    fn next(&mut self) -> Option<Self::Item> {
        block_on(self.cursor.next())
    }
}

/// A deserializer shared between clones of a [`TypedConsumer`].
struct Shared<T>(Arc<dyn Deserializer<T> + Send + Sync>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> Deserializer<T> for Shared<T> {
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T, DeserializeError> {
        self.0.deserialize(topic, data)
    }
}

/// One deserialized record, or why it could not be deserialized.
pub type TypedResult<K, V> = Result<TypedRecord<K, V>, ConsumerError>;

/// A [`Consumer`] whose records come with typed keys and values, deserialized by the
/// deserializers given to [`Consumer::with_deserializers`]. Cheap to clone.
///
/// A record that fails to deserialize is an `Err` ([`ConsumerError::Deserialize`], naming its
/// partition and offset) in its place; the position has moved past it, as in Java once the
/// application skips it.
pub struct TypedConsumer<K, V> {
    key: Shared<K>,
    value: Shared<V>,
    consumer: Consumer,
}

impl<K, V> Clone for TypedConsumer<K, V> {
    fn clone(&self) -> Self {
        TypedConsumer {
            key: self.key.clone(),
            value: self.value.clone(),
            consumer: self.consumer.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for TypedConsumer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedConsumer").finish_non_exhaustive()
    }
}

impl<K, V> TypedConsumer<K, V> {
    /// Polls like [`Consumer::poll`] and deserializes each record.
    pub fn poll(&self, timeout: Duration) -> Result<Vec<TypedResult<K, V>>, ConsumerError> {
        Ok(self
            .consumer
            .poll(timeout)?
            .into_iter()
            .map(|r| r.deserialize(&self.key, &self.value))
            .collect())
    }

    /// The records one at a time, deserialized, ending like [`Consumer::iter`].
    pub fn iter(&self) -> TypedRecordIter<K, V> {
        TypedRecordIter {
            records: self.consumer.iter(),
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }

    /// Like [`TypedConsumer::iter`] with another idle timeout than `consumer_timeout_ms`.
    pub fn iter_with_timeout(&self, idle: Option<Duration>) -> TypedRecordIter<K, V> {
        TypedRecordIter {
            records: self.consumer.iter_with_timeout(idle),
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }

    /// The untyped consumer underneath, for assignment, seeks, offsets and closing.
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }
}

impl<K, V> IntoIterator for &TypedConsumer<K, V> {
    type Item = Result<TypedRecord<K, V>, ConsumerError>;
    type IntoIter = TypedRecordIter<K, V>;

    fn into_iter(self) -> TypedRecordIter<K, V> {
        self.iter()
    }
}

/// The deserialized records of a [`TypedConsumer`] one at a time (see [`RecordIter`]).
pub struct TypedRecordIter<K, V> {
    records: RecordIter,
    key: Shared<K>,
    value: Shared<V>,
}

impl<K, V> std::fmt::Debug for TypedRecordIter<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedRecordIter").finish_non_exhaustive()
    }
}

impl<K, V> Iterator for TypedRecordIter<K, V> {
    type Item = Result<TypedRecord<K, V>, ConsumerError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(
            self.records
                .next()?
                .and_then(|r| r.deserialize(&self.key, &self.value)),
        )
    }
}

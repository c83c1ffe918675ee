//! What the consumer hands the application: [`ConsumerRecord`]s grouped in
//! [`ConsumerRecords`], and their typed form [`TypedRecord`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use super::error::ConsumerError;
use crate::producer::serializer::Deserializer;
use crate::records::{Headers, TimestampType};

/// A topic partition. Ordered by topic, then partition, so maps keyed by it iterate
/// deterministically.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One consumed record. Key, value and headers are zero-copy slices of the fetched (or
/// decompressed) data: holding a record keeps that buffer alive.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Its timestamp in milliseconds since the epoch; -1 when it has none (magic 0).
    pub timestamp: i64,
    /// Which clock the timestamp comes from; `None` for magic 0 messages, which have none.
    pub timestamp_type: Option<TimestampType>,
    /// The key; `None` is a Kafka null.
    pub key: Option<Bytes>,
    /// The value; `None` is a Kafka null (a tombstone).
    pub value: Option<Bytes>,
    /// The headers (magic 2 only; empty otherwise).
    pub headers: Headers,
    /// The partition leader epoch of the record's batch (magic 2 and a broker that sets it).
    pub leader_epoch: Option<i32>,
    /// Size of the key in bytes, -1 for a null key (as Java and kafka-python report it).
    pub serialized_key_size: i32,
    /// Size of the value in bytes, -1 for a null value.
    pub serialized_value_size: i32,
}

fn serialized_size(b: &Option<Bytes>) -> i32 {
    b.as_ref()
        .map_or(-1, |b| i32::try_from(b.len()).unwrap_or(i32::MAX))
}

impl ConsumerRecord {
    /// Builds a record; the serialized sizes are computed from `key` and `value`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        timestamp: i64,
        timestamp_type: Option<TimestampType>,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Headers,
        leader_epoch: Option<i32>,
    ) -> Self {
        ConsumerRecord {
            serialized_key_size: serialized_size(&key),
            serialized_value_size: serialized_size(&value),
            topic,
            partition,
            offset,
            timestamp,
            timestamp_type,
            key,
            value,
            headers,
            leader_epoch,
        }
    }

    /// The record's topic partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition {
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }

    /// The record with key and value turned into application types. A failure names the
    /// record's partition and offset ([`ConsumerError::Deserialize`]).
    pub fn deserialize<K, V>(
        self,
        key_deserializer: &impl Deserializer<K>,
        value_deserializer: &impl Deserializer<V>,
    ) -> Result<TypedRecord<K, V>, ConsumerError> {
        let fail = |error| ConsumerError::Deserialize {
            partition: self.topic_partition(),
            offset: self.offset,
            error,
        };
        let key = key_deserializer
            .deserialize(&self.topic, self.key.as_deref())
            .map_err(fail)?;
        let value = value_deserializer
            .deserialize(&self.topic, self.value.as_deref())
            .map_err(fail)?;
        Ok(TypedRecord {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            timestamp_type: self.timestamp_type,
            key,
            value,
            headers: self.headers,
            leader_epoch: self.leader_epoch,
            serialized_key_size: self.serialized_key_size,
            serialized_value_size: self.serialized_value_size,
        })
    }
}

/// A [`ConsumerRecord`] whose key and value were deserialized into `K` and `V`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypedRecord<K, V> {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Its timestamp (see [`ConsumerRecord::timestamp`]).
    pub timestamp: i64,
    /// Which clock the timestamp comes from.
    pub timestamp_type: Option<TimestampType>,
    /// The deserialized key.
    pub key: K,
    /// The deserialized value.
    pub value: V,
    /// The headers.
    pub headers: Headers,
    /// The batch's partition leader epoch.
    pub leader_epoch: Option<i32>,
    /// Size of the key on the wire, -1 for null.
    pub serialized_key_size: i32,
    /// Size of the value on the wire, -1 for null.
    pub serialized_value_size: i32,
}

/// What one poll returns: records grouped by partition, in offset order within each
/// partition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConsumerRecords {
    by_partition: BTreeMap<TopicPartition, Vec<ConsumerRecord>>,
    count: usize,
}

impl ConsumerRecords {
    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The number of records.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The partitions that have records.
    pub fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.by_partition.keys()
    }

    /// The records of one partition (empty if it has none).
    pub fn records(&self, tp: &TopicPartition) -> &[ConsumerRecord] {
        self.by_partition.get(tp).map_or(&[], Vec::as_slice)
    }

    /// Every record, partition by partition.
    pub fn iter(&self) -> impl Iterator<Item = &ConsumerRecord> {
        self.by_partition.values().flatten()
    }

    /// Adds `records` of `tp` after those it has (in offset order, following them): one map
    /// lookup for the lot, and the vector itself kept when `tp` has none yet.
    pub(crate) fn append(&mut self, tp: &TopicPartition, mut records: Vec<ConsumerRecord>) {
        if records.is_empty() {
            return;
        }
        self.count += records.len();
        match self.by_partition.get_mut(tp) {
            Some(v) if v.is_empty() => *v = records,
            Some(v) => v.append(&mut records),
            None => {
                self.by_partition.insert(tp.clone(), records);
            }
        }
    }

    /// Adds a record (records of one partition must be pushed in offset order).
    #[cfg(test)]
    pub(crate) fn push(&mut self, tp: &TopicPartition, record: ConsumerRecord) {
        match self.by_partition.get_mut(tp) {
            Some(v) => v.push(record),
            None => {
                self.by_partition.insert(tp.clone(), vec![record]);
            }
        }
        self.count += 1;
    }
}

impl IntoIterator for ConsumerRecords {
    type Item = ConsumerRecord;
    type IntoIter = std::iter::Flatten<
        std::collections::btree_map::IntoValues<TopicPartition, Vec<ConsumerRecord>>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.by_partition.into_values().flatten()
    }
}

/// The answer to a lookup by timestamp (Java's `OffsetAndTimestamp`): the earliest offset
/// whose timestamp is at or after the one asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// The offset.
    pub offset: i64,
    /// The timestamp of the record at that offset (-1 when the broker did not say).
    pub timestamp: i64,
    /// The leader epoch of that record, if the broker reported it.
    pub leader_epoch: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::serializer::{Nullable, StringDeserializer};

    fn rec(offset: i64, key: Option<&'static str>, value: Option<&'static str>) -> ConsumerRecord {
        ConsumerRecord::new(
            "t".into(),
            0,
            offset,
            5,
            Some(TimestampType::CreateTime),
            key.map(Bytes::from_static_str),
            value.map(Bytes::from_static_str),
            Headers::default(),
            Some(3),
        )
    }

    trait FromStaticStr {
        fn from_static_str(s: &'static str) -> Bytes;
    }
    impl FromStaticStr for Bytes {
        fn from_static_str(s: &'static str) -> Bytes {
            Bytes::from_static(s.as_bytes())
        }
    }

    #[test]
    fn sizes_are_minus_one_for_nulls() {
        let r = rec(0, None, Some("abc"));
        assert_eq!(r.serialized_key_size, -1);
        assert_eq!(r.serialized_value_size, 3);
    }

    #[test]
    fn deserialize_names_the_record_on_failure() {
        let r = rec(7, None, Some("v"));
        let err = r
            .clone()
            .deserialize(&StringDeserializer, &StringDeserializer)
            .unwrap_err();
        assert!(matches!(err, ConsumerError::Deserialize { offset: 7, .. }));
        let ok: TypedRecord<Option<String>, String> = r
            .deserialize(&Nullable(StringDeserializer), &StringDeserializer)
            .unwrap();
        assert_eq!(ok.key, None);
        assert_eq!(ok.value, "v");
        assert_eq!(ok.leader_epoch, Some(3));
    }

    #[test]
    fn records_group_by_partition_in_order() {
        let mut rs = ConsumerRecords::default();
        let a = TopicPartition::new("a", 1);
        let b = TopicPartition::new("a", 0);
        rs.push(&a, rec(1, None, None));
        rs.push(&b, rec(2, None, None));
        rs.push(&a, rec(3, None, None));
        assert_eq!(rs.count(), 3);
        assert_eq!(rs.records(&a).len(), 2);
        let order: Vec<i64> = rs.iter().map(|r| r.offset).collect();
        assert_eq!(order, vec![2, 1, 3]);
        assert_eq!(rs.into_iter().count(), 3);
    }

    #[test]
    fn appended_records_follow_those_pushed_and_empty_lists_add_no_partition() {
        let mut rs = ConsumerRecords::default();
        let a = TopicPartition::new("a", 0);
        let b = TopicPartition::new("b", 0);
        rs.append(&b, Vec::new());
        assert_eq!(rs.partitions().count(), 0);
        rs.push(&a, rec(1, None, None));
        rs.append(&a, vec![rec(2, None, None), rec(3, None, None)]);
        rs.append(&b, vec![rec(7, None, None)]);
        assert_eq!(rs.count(), 4);
        let order: Vec<i64> = rs.iter().map(|r| r.offset).collect();
        assert_eq!(order, vec![1, 2, 3, 7]);
    }
}

//! What the application hands the producer ([`ProducerRecord`]) and what it gets back for a
//! delivered record ([`RecordMetadata`]).

use std::sync::Arc;

use bytes::Bytes;

use crate::records::{Header, TimestampType};

/// One record to produce. The topic is an `Arc<str>` so that sending many records to one
/// topic copies a pointer, not the name.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition, or `None` to let the partitioner choose.
    pub partition: Option<i32>,
    /// The key (`None` is a Kafka null key).
    pub key: Option<Bytes>,
    /// The value (`None` is a Kafka null value: a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// CreateTime in milliseconds since the Unix epoch; `None` means "now", stamped by the
    /// producer from its wall clock when the record is sent.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key, value, headers, partition or timestamp.
    pub fn new(topic: impl Into<Arc<str>>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: None,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sends the record to this partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Adds a header with a value.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }

    /// Adds a header with a null value.
    pub fn null_header(mut self, name: impl Into<String>) -> Self {
        self.headers.push(Header::null(name));
        self
    }

    /// Sets the CreateTime (milliseconds since the Unix epoch).
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// A [`ProducerRecord`] without its topic: how the producer's handles stage records for the
/// core. A run of records to one topic carries the topic once, so the loop thread never
/// touches the count of the application's `Arc<str>` per record (the application clones it
/// per record on its own thread; a drop on the loop thread made that count's cache line
/// travel between the two cores for every record).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RecordBody {
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<Header>,
    pub(crate) timestamp: Option<i64>,
}

impl ProducerRecord {
    /// The topic and the rest.
    pub(crate) fn into_parts(self) -> (Arc<str>, RecordBody) {
        let ProducerRecord {
            topic,
            partition,
            key,
            value,
            headers,
            timestamp,
        } = self;
        (
            topic,
            RecordBody {
                partition,
                key,
                value,
                headers,
                timestamp,
            },
        )
    }

    /// The inverse of [`ProducerRecord::into_parts`].
    pub(crate) fn from_parts(topic: Arc<str>, body: RecordBody) -> Self {
        ProducerRecord {
            topic,
            partition: body.partition,
            key: body.key,
            value: body.value,
            headers: body.headers,
            timestamp: body.timestamp,
        }
    }
}

/// Where and when a record was written, reported once the broker acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 when it is unknown (`acks=0`).
    pub offset: i64,
    /// The record's CreateTime, or the broker's LogAppendTime when the topic uses it.
    pub timestamp: i64,
    /// Which of the two `timestamp` is.
    pub timestamp_type: TimestampType,
    /// Bytes of the key; -1 for a null key.
    pub serialized_key_size: i32,
    /// Bytes of the value; -1 for a null value.
    pub serialized_value_size: i32,
}

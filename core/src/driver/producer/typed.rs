//! [`TypedProducerHandle`]: a [`ProducerHandle`] with key and value serializers.

use std::marker::PhantomData;
use std::sync::Arc;

use super::ProducerHandle;
use crate::producer::{DeliveryFuture, ProduceError, ProducerRecord, RecordMetadata, Serializer};

impl ProducerHandle {
    /// A handle that serializes keys and values with these serializers.
    pub fn with_serializers<K: ?Sized, V: ?Sized>(
        self,
        key: impl Serializer<K> + Send + Sync + 'static,
        value: impl Serializer<V> + Send + Sync + 'static,
    ) -> TypedProducerHandle<K, V> {
        TypedProducerHandle {
            inner: self,
            key: Arc::new(key),
            value: Arc::new(value),
            _types: PhantomData,
        }
    }
}

/// A [`ProducerHandle`] with key and value serializers. Cheap to clone.
pub struct TypedProducerHandle<K: ?Sized, V: ?Sized> {
    inner: ProducerHandle,
    key: Arc<dyn Serializer<K> + Send + Sync>,
    value: Arc<dyn Serializer<V> + Send + Sync>,
    _types: PhantomData<fn(&K, &V)>,
}

impl<K: ?Sized, V: ?Sized> Clone for TypedProducerHandle<K, V> {
    fn clone(&self) -> Self {
        TypedProducerHandle {
            inner: self.inner.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            _types: PhantomData,
        }
    }
}

impl<K: ?Sized, V: ?Sized> std::fmt::Debug for TypedProducerHandle<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedProducerHandle")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<K: ?Sized, V: ?Sized> TypedProducerHandle<K, V> {
    /// Serializes `key` and `value`, sends them to `topic` and waits for the brokers'
    /// acknowledgement, as [`ProducerHandle::send`] does (Java's
    /// `producer.send(new ProducerRecord<>(topic, key, value)).get()`). A serializer failure
    /// is [`ProduceError::Serialize`].
    #[doc(alias = "get")]
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<RecordMetadata, ProduceError> {
        self.enqueue(topic, key, value).await?.await
    }

    /// Serializes `key` and `value` and queues them for `topic`, returning the future of
    /// their acknowledgement, as [`ProducerHandle::enqueue`] does (Java's
    /// `producer.send(new ProducerRecord<>(topic, key, value))`). A serializer failure is
    /// [`ProduceError::Serialize`].
    #[doc(alias = "produce")]
    pub async fn enqueue(
        &self,
        topic: &str,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<DeliveryFuture, ProduceError> {
        let record = self.build(ProducerRecord::new(topic), key, value)?;
        self.inner.enqueue(record).await
    }

    /// Serializes `key` and `value` into `record` (whose partition, headers and timestamp
    /// are kept; its key and value are replaced), sends it and waits for the
    /// acknowledgement, like [`TypedProducerHandle::send`].
    pub async fn send_record(
        &self,
        record: ProducerRecord,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<RecordMetadata, ProduceError> {
        self.enqueue_record(record, key, value).await?.await
    }

    /// Serializes `key` and `value` into `record` (whose partition, headers and timestamp
    /// are kept; its key and value are replaced) and queues it, returning the future of its
    /// acknowledgement, like [`TypedProducerHandle::enqueue`].
    pub async fn enqueue_record(
        &self,
        record: ProducerRecord,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<DeliveryFuture, ProduceError> {
        let record = self.build(record, key, value)?;
        self.inner.enqueue(record).await
    }

    fn build(
        &self,
        mut record: ProducerRecord,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<ProducerRecord, ProduceError> {
        record.key = match key {
            Some(k) => self.key.serialize(&record.topic, k)?,
            None => None,
        };
        record.value = match value {
            Some(v) => self.value.serialize(&record.topic, v)?,
            None => None,
        };
        Ok(record)
    }

    /// The untyped handle underneath.
    pub fn untyped(&self) -> &ProducerHandle {
        &self.inner
    }
}

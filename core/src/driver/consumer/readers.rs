//! The ways to read records through a [`ConsumerHandle`] besides `poll`: [`RecordStream`]
//! (a `futures_core::Stream`), [`RecordCursor`] (one record at a time with an idle timeout)
//! and [`TypedConsumer`] (deserialized keys and values).

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{ConsumerHandle, FOREVER};
use crate::consumer::{ConsumerError, ConsumerRecord, ConsumerRecords, TypedRecord};
use crate::producer::serializer::Deserializer;

type PollFuture = Pin<Box<dyn Future<Output = Result<ConsumerRecords, ConsumerError>> + Send>>;

/// The consumer's records as a [`futures_core::Stream`], one at a time; polled in batches of
/// `max_poll_records`. Ends when the consumer is closed.
pub struct RecordStream {
    pub(super) handle: ConsumerHandle,
    pub(super) max: usize,
    pub(super) buffered: VecDeque<ConsumerRecord>,
    pub(super) pending: Option<PollFuture>,
    pub(super) done: bool,
}

impl std::fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

impl RecordStream {
    /// The next record or partition error; `None` once the consumer is closed. The same as
    /// the stream's `next()`, without importing a `StreamExt`.
    pub async fn recv(&mut self) -> Option<Result<ConsumerRecord, ConsumerError>> {
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *self), cx)).await
    }
}

impl futures_core::Stream for RecordStream {
    type Item = Result<ConsumerRecord, ConsumerError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(r) = this.buffered.pop_front() {
                return Poll::Ready(Some(Ok(r)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let fut = this.pending.get_or_insert_with(|| {
                let handle = this.handle.clone();
                let max = this.max;
                Box::pin(async move { handle.poll_with(max, FOREVER).await })
            });
            match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    this.pending = None;
                    match result {
                        Ok(records) => this.buffered.extend(records),
                        Err(ConsumerError::Closed) => this.done = true,
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
            }
        }
    }
}

/// One record at a time from polled batches; [`next`](Self::next) ends (`None`) after the idle
/// timeout (`consumer_timeout_ms`; `None`: never) passes without a record, or when the
/// consumer is closed. The blocking driver's iterator is `block_on(cursor.next())`.
#[derive(Debug)]
pub struct RecordCursor {
    pub(super) handle: ConsumerHandle,
    pub(super) buffered: VecDeque<ConsumerRecord>,
    pub(super) idle_timeout: Option<Duration>,
}

impl RecordCursor {
    /// Replaces the idle timeout taken from `consumer_timeout_ms`.
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The next record, a partition error, or `None` once idle for the timeout (or closed).
    pub async fn next(&mut self) -> Option<Result<ConsumerRecord, ConsumerError>> {
        loop {
            if let Some(r) = self.buffered.pop_front() {
                return Some(Ok(r));
            }
            let timeout = self.idle_timeout.unwrap_or(FOREVER);
            match self.handle.poll(timeout).await {
                Ok(records) if records.is_empty() => {
                    if self.idle_timeout.is_some() {
                        return None;
                    }
                }
                Ok(records) => self.buffered.extend(records),
                Err(ConsumerError::Closed) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The handle the cursor polls.
    pub fn handle(&self) -> &ConsumerHandle {
        &self.handle
    }
}

/// A [`ConsumerHandle`] whose polls deserialize keys and values.
pub struct TypedConsumer<K, V, KD, VD> {
    pub(super) handle: ConsumerHandle,
    pub(super) key: KD,
    pub(super) value: VD,
    pub(super) _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V, KD, VD> std::fmt::Debug for TypedConsumer<K, V, KD, VD> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedConsumer")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl<K, V, KD: Deserializer<K>, VD: Deserializer<V>> TypedConsumer<K, V, KD, VD> {
    /// The untyped handle (for seeks, offsets and the rest).
    pub fn handle(&self) -> &ConsumerHandle {
        &self.handle
    }

    /// Polls like [`ConsumerHandle::poll`] and deserializes each record; a record that fails
    /// to deserialize is an `Err` in its place (its position is passed either way, as in
    /// Java after the application skips it).
    pub async fn poll(
        &self,
        timeout: Duration,
    ) -> Result<Vec<Result<TypedRecord<K, V>, ConsumerError>>, ConsumerError> {
        let records = self.handle.poll(timeout).await?;
        Ok(records
            .into_iter()
            .map(|r| r.deserialize(&self.key, &self.value))
            .collect())
    }
}

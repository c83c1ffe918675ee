//! How a record's outcome reaches the application through a driver: [`Delivery`] (held by
//! the loop's [`ProducerHandler`](super::ProducerHandler) under the record's
//! [`OpId`](crate::OpId) until the core reports it) and [`DeliveryFuture`] (held by the
//! application). Re-exported from [`crate::producer`], where applications import them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::oneshot;

use crate::producer::{DeliveryResult, ProduceError};

/// Where a driver sends one record's outcome. The loop's handler completes it exactly once,
/// on the loop thread, when the core reports the record (callbacks run there: keep them
/// short).
pub enum Delivery {
    /// Fire and forget: the outcome is dropped (still counted in the metrics).
    Ignore,
    /// Resolve a [`DeliveryFuture`].
    Future(oneshot::Sender<DeliveryResult>),
    /// Call this with the outcome.
    Callback(Box<dyn FnOnce(DeliveryResult) + Send>),
}

impl Delivery {
    /// Reports `result`. A future whose receiver was dropped is fine: nobody is waiting.
    pub fn complete(self, result: DeliveryResult) {
        match self {
            Delivery::Ignore => {}
            Delivery::Future(tx) => {
                let _ = tx.send(result);
            }
            Delivery::Callback(f) => f(result),
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Delivery::Ignore => "Delivery::Ignore",
            Delivery::Future(_) => "Delivery::Future",
            Delivery::Callback(_) => "Delivery::Callback",
        })
    }
}

/// Resolves to the record's outcome: its [`RecordMetadata`](crate::producer::RecordMetadata) once the broker acknowledged it,
/// or why it was not delivered. If the producer's loop stops without reporting (it was
/// dropped), it resolves to [`ProduceError::Closed`].
#[derive(Debug)]
#[must_use = "a DeliveryFuture does nothing unless awaited; drop it to fire and forget"]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<DeliveryResult>,
}

impl DeliveryFuture {
    /// A connected pair: the [`Delivery`] goes with the record to the core, the future to
    /// the application.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (Delivery, DeliveryFuture) {
        let (tx, rx) = oneshot::channel();
        (Delivery::Future(tx), DeliveryFuture { rx })
    }

    /// The outcome if it is already known, without waiting (`None` while pending).
    pub fn try_result(&mut self) -> Option<DeliveryResult> {
        match self.rx.try_recv() {
            Ok(Some(r)) => Some(r),
            Ok(None) => None,
            Err(_) => Some(Err(ProduceError::Closed)),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = DeliveryResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DeliveryResult> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ProduceError::Closed)))
    }
}

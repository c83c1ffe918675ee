//! What every driver shares that is not I/O: the queue of application commands into a
//! driver's event loop, the handler that turns core events into completed futures, and the
//! typed handles the application holds.
//!
//! A driver's loop owns a core `C` and a handler `H`. The application's handle sends
//! [`Command`]s (closures run on the loop with `&mut C`, `&mut H` and `now`); the loop runs them
//! between I/O inputs and passes every core event to [`Handler::on_event`]. Completions travel
//! back on `futures-channel` oneshots, which every runtime (and `block_on` in the blocking
//! driver) can await.
//!
//! The loop itself is here too, once: [`run`] in [`event_loop`], generic over a small
//! [`Runtime`] trait (clock, timer, starting and closing a connection) that each socket driver
//! implements. Nothing here opens a socket or reads a clock itself; the runtime does.
//!
//! This module is the layer a single-threaded embedder does without: it drives a core's
//! `handle_*` inputs and drains its `poll_output` directly (see [`crate::network`]).

mod admin;
mod consumer;
mod delivery;
pub mod event_loop;
mod low_level;
mod producer;
mod socket;
mod wall_clock;
mod writers;

use std::time::Instant;

use futures_channel::mpsc;

use crate::deadline::Deadline;
use crate::network::ClientCore;

pub use admin::{AdminHandle, AdminHandler};
pub use consumer::{
    CommitCallback, ConsumerHandle, ConsumerHandler, RecordCursor, RecordStream, TypedConsumer,
};
pub use delivery::{Delivery, DeliveryFuture};
pub use event_loop::{run, Connect, IoSender, Outgoing, Runtime};
pub use futures_channel::mpsc::TryRecvError;
pub use low_level::{LowLevelHandle, LowLevelHandler};
pub use producer::{ProducerHandle, ProducerHandler, TypedProducerHandle, WallClock};
pub use socket::{Gather, SocketOptions, GATHER_MAX_PIECES};
pub use wall_clock::MillisecondClock;
pub use writers::{Idle, OpenWriters, WriterGuard};

/// Turns a core's events into completions for the application.
pub trait Handler<C: ClientCore>: Send + 'static {
    /// Called by the event loop for every event the core emits.
    fn on_event(&mut self, core: &mut C, event: C::Event, now: Instant);

    /// Called once when the loop stops (all handles dropped, or a close command): fail what is
    /// still waiting.
    fn on_shutdown(&mut self, core: &mut C);

    /// The handler's own next deadline (an application wait with a timeout), if any. The loop
    /// wakes at the earlier of this and the core's [`ClientCore::poll_timeout`].
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Called when the loop wakes for a deadline (the core's or the handler's): the handler
    /// ends the waits that are due at `now`. It may be called early or more than once.
    fn handle_timeout(&mut self, _core: &mut C, _now: Instant) {}
}

/// The earlier of a core's and its handler's deadlines: when a loop must wake next.
pub fn next_deadline<C: ClientCore, H: Handler<C>>(core: &C, handler: &H) -> Option<Instant> {
    Deadline::from(core.poll_timeout())
        .with(handler.poll_timeout())
        .earliest()
}

/// Work the application asks of the event loop.
pub type Command<C, H> = Box<dyn FnOnce(&mut C, &mut H, Instant) + Send>;

/// The event loop's end of the command queue (a `Stream` of commands).
pub type CommandReceiver<C, H> = mpsc::UnboundedReceiver<Command<C, H>>;

/// The application's end of the command queue.
pub struct CommandSender<C, H> {
    tx: mpsc::UnboundedSender<Command<C, H>>,
    writers: Option<OpenWriters>,
}

impl<C, H> Clone for CommandSender<C, H> {
    fn clone(&self) -> Self {
        CommandSender {
            tx: self.tx.clone(),
            writers: self.writers.clone(),
        }
    }
}

impl<C, H> std::fmt::Debug for CommandSender<C, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSender")
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

/// The event loop has stopped; nothing more can be asked of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client's event loop has stopped")]
pub struct LoopStopped;

impl<C, H> CommandSender<C, H> {
    /// Queues `f` to run on the loop.
    pub fn run(
        &self,
        f: impl FnOnce(&mut C, &mut H, Instant) + Send + 'static,
    ) -> Result<(), LoopStopped> {
        self.tx.unbounded_send(Box::new(f)).map_err(|_| LoopStopped)
    }

    /// The sender of a loop whose connection writers `writers` counts: [`settle`] then waits
    /// for them.
    ///
    /// [`settle`]: CommandSender::settle
    pub fn with_writers(mut self, writers: OpenWriters) -> Self {
        self.writers = Some(writers);
        self
    }

    /// Waits until the loop has acted on every output the core queued before this call, and
    /// then until every connection writer has finished. A handle's `close` ends with it, after
    /// the core closed its connections: what the core reported sent is then on the sockets
    /// (see [`OpenWriters`]). After the loop has stopped, only the writers are waited for.
    pub async fn settle(&self) {
        // A round trip through the loop: outputs are drained after each command, so the
        // connections the core closed are handed to their writers by the time this answers.
        let (tx, rx) = futures_channel::oneshot::channel();
        if self
            .run(move |_, _, _| {
                let _ = tx.send(());
            })
            .is_ok()
        {
            let _ = rx.await;
        }
        if let Some(writers) = &self.writers {
            writers.idle().await;
        }
    }
}

/// A new command queue: the sender for handles, the receiver for the loop. The loop ends when
/// every sender is gone.
pub fn command_queue<C, H>() -> (CommandSender<C, H>, CommandReceiver<C, H>) {
    let (tx, rx) = mpsc::unbounded();
    (CommandSender { tx, writers: None }, rx)
}

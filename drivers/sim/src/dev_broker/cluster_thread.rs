//! The cluster thread: owns the [`Cluster`], turns connection events into calls on it, sends
//! its answers to the connections' writers, and fires its timers.

use std::any::Any;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::budget::Charge;
use super::sockets::ConnWriter;
use super::{lock, Shared};
use crate::cluster::{Cluster, ClusterConfig, ConnKey, ConnOutput};

/// Work for the cluster thread from outside ([`super::DevBroker::with_cluster`]).
pub(crate) type Job = Box<dyn FnOnce(&mut Cluster) + Send>;

/// What a connection's writer is told.
#[derive(Debug)]
pub(crate) enum WriteMsg {
    /// Send these bytes: whole frames and pieces of frames, in order (one vectored write).
    Data(Vec<Bytes>),
    /// Close the connection (after what came before).
    Close,
}

/// What the cluster thread receives.
pub(crate) enum Event {
    /// A client connected; replies go to `writer`.
    Opened {
        broker: i32,
        conn: ConnKey,
        peer: SocketAddr,
        writer: ConnWriter,
    },
    /// A request frame (without its size prefix), with its charge to the memory budget
    /// (released once the frame is handled).
    Frame {
        broker: i32,
        conn: ConnKey,
        frame: Bytes,
        charge: Charge,
    },
    /// The connection is gone.
    Closed { broker: i32, conn: ConnKey },
    /// Run this on the cluster.
    Run(Job),
    /// Shut down.
    Stop,
}

/// The cluster's event loop, until [`Event::Stop`] (or every sender is gone).
///
/// A panic in the model (a bug) is caught, recorded in `shared` and logged; the connection
/// whose request caused it is closed and the broker goes on.
pub(crate) fn run(
    config: ClusterConfig,
    listeners: Vec<(String, i32)>,
    rx: Receiver<Event>,
    shared: &Shared,
) {
    let mut cluster = Cluster::with_listeners(config, listeners, Instant::now());
    cluster.set_frame_pool(shared.frame_pool.clone());
    // Fetch responses as pieces that refer to the stored batches: the writers write them
    // with vectored writes, and the only copy of the records is the kernel's.
    cluster.set_spliced_fetches(true);
    let mut writers: HashMap<(i32, ConnKey), ConnWriter> = HashMap::new();
    // A deadline that handling did not move: back off instead of spinning on it.
    let mut stuck: Option<Instant> = None;
    loop {
        let deadline = cluster.poll_timeout();
        let event = match deadline {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(d) => {
                let mut wait = d.saturating_duration_since(Instant::now());
                if stuck == Some(d) {
                    wait = wait.max(Duration::from_millis(1));
                }
                rx.recv_timeout(wait)
            }
        };
        match event {
            Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(event) => {
                let (doing, culprit) = match &event {
                    Event::Frame { broker, conn, .. } => {
                        ("handling a request", Some((*broker, *conn)))
                    }
                    Event::Run(_) => ("running a with_cluster job", None),
                    _ => ("handling a connection event", None),
                };
                let result = catch_unwind(AssertUnwindSafe(|| {
                    handle(&mut cluster, &mut writers, event)
                }));
                if let Err(panic) = result {
                    failed(shared, doing, &panic);
                    if let Some(key) = culprit {
                        if let Some(w) = writers.remove(&key) {
                            let _ = w.send(WriteMsg::Close);
                            cluster.connection_closed(key.0, key.1);
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if let Some(d) = cluster.poll_timeout() {
            if d <= now {
                let result = catch_unwind(AssertUnwindSafe(|| cluster.handle_timeout(now)));
                if let Err(panic) = result {
                    failed(shared, "handling a timeout", &panic);
                }
                let next = cluster.poll_timeout();
                stuck = next.filter(|n| *n <= now);
                if stuck.is_some() {
                    tracing::debug!("dev broker: the cluster's deadline did not move");
                }
            }
        }
        flush(&mut cluster, &mut writers);
    }
    for w in writers.values() {
        let _ = w.send(WriteMsg::Close);
    }
}

/// Records a caught panic of the model.
pub(crate) fn failed(shared: &Shared, doing: &str, panic: &Box<dyn Any + Send>) {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(%message, "dev broker: the cluster model panicked {doing}");
    lock(&shared.failures).push(format!("{doing}: {message}"));
}

fn handle(cluster: &mut Cluster, writers: &mut HashMap<(i32, ConnKey), ConnWriter>, event: Event) {
    match event {
        Event::Opened {
            broker,
            conn,
            peer,
            writer,
        } => {
            let host = format!("/{}", peer.ip());
            if cluster.connection_opened(broker, conn, &host) {
                writers.insert((broker, conn), writer);
            } else {
                // The broker is down (crashed through a fault hook): refuse.
                let _ = writer.send(WriteMsg::Close);
            }
        }
        Event::Frame {
            broker,
            conn,
            frame,
            charge,
        } => {
            // Released at the end of this arm, when the cluster is done with the request.
            let _charge = charge;
            let key = (broker, conn);
            // Frames read after the cluster closed the connection are dropped (handling
            // them would open the connection again).
            let Some(writer) = writers.get(&key) else {
                return;
            };
            let reply = cluster.handle_frame(broker, conn, frame, Instant::now());
            let gone =
                !reply.frames.is_empty() && writer.send(WriteMsg::Data(reply.frames)).is_err();
            if reply.close || gone {
                let _ = writer.send(WriteMsg::Close);
                writers.remove(&key);
                if gone {
                    cluster.connection_closed(broker, conn);
                }
            }
        }
        Event::Closed { broker, conn } => {
            if writers.remove(&(broker, conn)).is_some() {
                cluster.connection_closed(broker, conn);
            }
        }
        Event::Run(job) => job(cluster),
        Event::Stop => {}
    }
}

/// Sends what the cluster produced outside a request: consecutive frames (and pieces) of a
/// connection as one message.
fn flush(cluster: &mut Cluster, writers: &mut HashMap<(i32, ConnKey), ConnWriter>) {
    let mut ready = cluster.take_ready().into_iter().peekable();
    while let Some((broker, conn, out)) = ready.next() {
        let key = (broker, conn);
        match out {
            ConnOutput::Send(first) => {
                let mut data = vec![first];
                while let Some((_, _, ConnOutput::Send(next))) =
                    ready.next_if(|(b, c, o)| (*b, *c) == key && matches!(o, ConnOutput::Send(_)))
                {
                    data.push(next);
                }
                let Some(writer) = writers.get(&key) else {
                    continue;
                };
                if writer.send(WriteMsg::Data(data)).is_err() {
                    writers.remove(&key);
                    cluster.connection_closed(broker, conn);
                }
            }
            ConnOutput::Close => {
                if let Some(writer) = writers.remove(&key) {
                    let _ = writer.send(WriteMsg::Close);
                }
            }
        }
    }
}

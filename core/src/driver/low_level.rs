use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures_channel::oneshot;

use super::{CommandSender, Handler};
use crate::codec::DecodeError;
use crate::network::{
    ApiVersionTable, BrokerVersion, ClusterView, CoordinatorKind, LowLevelClient, LowLevelEvent,
    NetError, Response, Target,
};
use crate::protocol::{Request, RequestBody};
use crate::OpId;

type Reply = oneshot::Sender<Result<Response, NetError>>;

/// Completes the [`LowLevelHandle`]'s futures from the [`LowLevelClient`]'s events: it names
/// each request with the next [`OpId`] of its own counter and keeps the request's oneshot
/// under it.
#[derive(Default)]
pub struct LowLevelHandler {
    waiting: HashMap<OpId, Reply>,
    last_op: u64,
}

impl LowLevelHandler {
    /// Starts a request on `core` with a fresh id and remembers who waits for it.
    fn start(&mut self, reply: Reply, f: impl FnOnce(OpId)) {
        self.last_op += 1;
        let id = OpId(self.last_op);
        self.waiting.insert(id, reply);
        f(id);
    }

    fn fail_all(&mut self) {
        for (_, reply) in self.waiting.drain() {
            let _ = reply.send(Err(NetError::Closed));
        }
    }
}

impl Handler<LowLevelClient> for LowLevelHandler {
    fn on_event(&mut self, _core: &mut LowLevelClient, event: LowLevelEvent, _now: Instant) {
        match event {
            LowLevelEvent::Response { id, result } => {
                if let Some(reply) = self.waiting.remove(&id) {
                    // The caller may have given up waiting; that is fine.
                    let _ = reply.send(result);
                }
            }
            LowLevelEvent::MetadataUpdated(_) => {}
            LowLevelEvent::Closed => self.fail_all(),
        }
    }

    fn on_shutdown(&mut self, core: &mut LowLevelClient) {
        // The loop stops without draining the core: the waiting requests fail here.
        core.abort();
        self.fail_all();
    }
}

/// The application's handle on a low-level client running in some driver's event loop.
/// Cheap to clone; the loop stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct LowLevelHandle {
    cmds: CommandSender<LowLevelClient, LowLevelHandler>,
}

impl LowLevelHandle {
    /// Wraps the sender of a loop running a [`LowLevelClient`] with a [`LowLevelHandler`].
    pub fn new(cmds: CommandSender<LowLevelClient, LowLevelHandler>) -> Self {
        LowLevelHandle { cmds }
    }

    /// Sends `body` to `target` (at the highest common version, capped at `max_version`) and
    /// resolves to the broker's decoded response.
    pub async fn send(
        &self,
        target: Target,
        body: impl Into<RequestBody>,
        max_version: Option<i16>,
    ) -> Result<Response, NetError> {
        let body = body.into();
        let (tx, rx) = oneshot::channel();
        self.cmds
            .run(move |core, handler, now| {
                handler.start(tx, |id| core.send(id, target, body, max_version, now));
            })
            .map_err(|_| NetError::Closed)?;
        rx.await.unwrap_or(Err(NetError::Closed))
    }

    /// [`send`](Self::send) with the response typed:
    /// `handle.request(Target::Any, MetadataRequest::default(), None).await?` is a
    /// `MetadataResponse`. A body of another API (which the client never hands out) is a
    /// [`NetError::Decode`].
    pub async fn request<R: Request>(
        &self,
        target: Target,
        body: R,
        max_version: Option<i16>,
    ) -> Result<R::Response, NetError> {
        let resp = self.send(target, body, max_version).await?;
        let node = resp.node;
        resp.body_as::<R>().map_err(|e| NetError::Decode {
            broker: format!("node {node}"),
            error: DecodeError::invalid("response", e.to_string()),
        })
    }

    /// Forgets the cached coordinator of `key` (after NOT_COORDINATOR or
    /// COORDINATOR_NOT_AVAILABLE): the next request to it looks the coordinator up again.
    pub async fn invalidate_coordinator(
        &self,
        kind: CoordinatorKind,
        key: impl Into<String>,
    ) -> Result<(), NetError> {
        let key = key.into();
        let (tx, rx) = oneshot::channel();
        self.cmds
            .run(move |core, _, now| {
                core.network().invalidate_coordinator(kind, &key, now);
                let _ = tx.send(());
            })
            .map_err(|_| NetError::Closed)?;
        rx.await.map_err(|_| NetError::Closed)
    }

    /// Connects to the least loaded broker and reports its version guess and API table
    /// (kafka-python's `check_version`).
    pub async fn check_version(
        &self,
    ) -> Result<(i32, BrokerVersion, Arc<ApiVersionTable>), NetError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .run(move |core, handler, now| {
                handler.start(tx, |id| core.check_version(id, now));
            })
            .map_err(|_| NetError::Closed)?;
        let resp = rx.await.unwrap_or(Err(NetError::Closed))?;
        let node = resp.node;
        let (tx, rx) = oneshot::channel();
        self.cmds
            .run(move |core, _, _| {
                let _ = tx.send(core.broker_versions(node));
            })
            .map_err(|_| NetError::Closed)?;
        let (version, table) = rx.await.ok().flatten().ok_or(NetError::Closed)?;
        Ok((node, version, table))
    }

    /// Fetches metadata (all topics when `topics` is `None`) and returns what it describes; the
    /// client's own cluster view is updated from it as well.
    pub async fn metadata(
        &self,
        topics: Option<Vec<String>>,
    ) -> Result<Arc<ClusterView>, NetError> {
        use crate::protocol::metadata::request::MetadataRequestTopic;
        use crate::protocol::MetadataRequest;
        let body = MetadataRequest {
            topics: topics.map(|ts| {
                ts.into_iter()
                    .map(|name| MetadataRequestTopic {
                        name: Some(name),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let m = self.request(Target::Any, body, None).await?;
        let mut view = ClusterView::default();
        view.update(&m, true);
        Ok(Arc::new(view))
    }
}

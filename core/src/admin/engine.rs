//! The machinery every admin operation shares: the [`Operation`] the core drives, the
//! [`Ctx`] it sends through, and [`Batched`], which runs an [`Api`]: items in, requests out,
//! per-item verdicts back, retries of the items that need one.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::deadline::Deadline;
use crate::network::{CoordinatorKind, NetError, NetworkClient, Response, Target};
use crate::protocol::{ApiKey, ErrorCode, Request, RequestBody, UnexpectedResponse};

use super::types::AdminError;
use super::AdminOutcome;

/// A request an operation wants sent.
pub(crate) struct Call {
    pub target: Target,
    pub body: RequestBody,
    pub max_version: Option<i16>,
    pub tag: u64,
}

/// What an operation may do while handling an input.
pub(crate) struct Ctx<'a> {
    pub net: &'a mut NetworkClient,
    pub now: Instant,
    pub deadline: Instant,
    pub retry_backoff: Duration,
    pub sends: Vec<Call>,
    pub retry_at: Option<Instant>,
    pub next_tag: &'a mut u64,
}

impl Ctx<'_> {
    /// Queues a request; its result comes back to the operation with the returned tag.
    pub fn send(&mut self, target: Target, body: RequestBody, max_version: Option<i16>) -> u64 {
        *self.next_tag += 1;
        let tag = *self.next_tag;
        self.sends.push(Call {
            target,
            body,
            max_version,
            tag,
        });
        tag
    }

    /// Asks for [`Operation::on_retry`] after the retry backoff. False (and nothing
    /// scheduled) when that would be past the call's deadline: the caller gives up.
    pub fn retry_later(&mut self) -> bool {
        let at = self.now + self.retry_backoff;
        if at >= self.deadline {
            return false;
        }
        self.retry_at = Deadline::from(self.retry_at).with(at).earliest();
        true
    }
}

/// One admin call in progress. The core finishes it once it has no request in flight and no
/// retry scheduled.
pub(crate) trait Operation: Send {
    /// Sends the first requests.
    fn start(&mut self, ctx: &mut Ctx<'_>);
    /// A request of this operation completed.
    fn on_response(&mut self, tag: u64, result: Result<Response, NetError>, ctx: &mut Ctx<'_>);
    /// The retry asked for with [`Ctx::retry_later`] is due.
    fn on_retry(&mut self, ctx: &mut Ctx<'_>);
    /// Gives up on everything still outstanding (the client is closing or aborting): every
    /// item not answered yet fails with `error`. Responses to requests already sent are
    /// not delivered afterwards; the core calls [`Operation::finish`] next.
    fn abandon(&mut self, error: AdminError);
    /// The result, once nothing is outstanding.
    fn finish(self: Box<Self>) -> AdminOutcome;
}

/// What to refresh before retrying an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// Nothing: just wait the backoff.
    None,
    /// The cluster metadata (controller or leader moved).
    Metadata,
    /// A group's coordinator.
    Coordinator(String),
    /// A transactional id's coordinator.
    TxnCoordinator(String),
}

/// The fate of one item after a response.
pub(crate) enum Verdict<V> {
    /// Finished, well or badly.
    Done(Result<V, AdminError>),
    /// Retry after the backoff (while the deadline allows), failing with `error` otherwise.
    Retry(AdminError, Refresh),
    /// Ask again at once (the [`Api`] changed how it asks: a fallback to an older API, or the
    /// second step of a two-step call).
    Again,
}

/// One admin API over a set of items (topics, resources, groups, partitions).
pub(crate) trait Api: Send + 'static {
    /// What identifies an item.
    type Key: Ord + Clone + Send + std::fmt::Debug;
    /// An item's result.
    type Value: Send;

    /// Requests for `keys` (all still unanswered), each with the keys it covers.
    fn requests(&mut self, keys: &[Self::Key], ctx: &mut Ctx<'_>) -> Vec<(Call, Vec<Self::Key>)>;

    /// Verdicts for the `keys` a request covered. A key left out is retried as if the
    /// broker had not answered it.
    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[Self::Key],
    ) -> Vec<(Self::Key, Verdict<Self::Value>)>;

    /// The call's result from every item's.
    fn finish(self, results: BTreeMap<Self::Key, Result<Self::Value, AdminError>>) -> AdminOutcome;
}

/// Runs an [`Api`]: sends requests for the open items, applies verdicts, retries.
pub(crate) struct Batched<A: Api> {
    api: A,
    open: Vec<A::Key>,
    in_flight: HashMap<u64, Vec<A::Key>>,
    retry: Vec<A::Key>,
    results: BTreeMap<A::Key, Result<A::Value, AdminError>>,
}

impl<A: Api> Batched<A> {
    /// Every key must be distinct; a key given twice is answered once.
    pub fn new(api: A, keys: Vec<A::Key>) -> Self {
        let mut open = keys;
        open.sort();
        open.dedup();
        Batched {
            api,
            open,
            in_flight: HashMap::new(),
            retry: Vec::new(),
            results: BTreeMap::new(),
        }
    }

    /// Pre-settles an item (a client-side refusal) so that no request covers it.
    pub fn settle(mut self, key: A::Key, result: Result<A::Value, AdminError>) -> Self {
        self.open.retain(|k| *k != key);
        self.results.insert(key, result);
        self
    }

    fn send(&mut self, keys: Vec<A::Key>, ctx: &mut Ctx<'_>) {
        if keys.is_empty() {
            return;
        }
        for (call, covered) in self.api.requests(&keys, ctx) {
            let tag = ctx.send(call.target, call.body, call.max_version);
            self.in_flight.insert(tag, covered);
        }
    }
}

impl<A: Api> Operation for Batched<A> {
    fn start(&mut self, ctx: &mut Ctx<'_>) {
        let keys = std::mem::take(&mut self.open);
        self.send(keys, ctx);
    }

    fn on_response(&mut self, tag: u64, result: Result<Response, NetError>, ctx: &mut Ctx<'_>) {
        let Some(keys) = self.in_flight.remove(&tag) else {
            return;
        };
        let net_error = result.as_ref().err().cloned();
        let mut verdicts = self.api.parse(result, &keys);
        for k in &keys {
            if !verdicts.iter().any(|(v, _)| v == k) {
                let error = match &net_error {
                    Some(e) => AdminError::Net(e.clone()),
                    None => AdminError::InvalidRequest(format!("the broker did not answer {k:?}")),
                };
                verdicts.push((k.clone(), Verdict::Retry(error, Refresh::None)));
            }
        }
        let mut again = Vec::new();
        for (key, verdict) in verdicts {
            if !keys.contains(&key) {
                continue;
            }
            match verdict {
                Verdict::Done(r) => {
                    self.results.insert(key, r);
                }
                Verdict::Again => again.push(key),
                Verdict::Retry(error, refresh) => {
                    match &refresh {
                        Refresh::None => {}
                        Refresh::Metadata => ctx.net.invalidate_metadata(ctx.now),
                        Refresh::Coordinator(group) => {
                            ctx.net
                                .invalidate_coordinator(CoordinatorKind::Group, group, ctx.now)
                        }
                        Refresh::TxnCoordinator(id) => ctx.net.invalidate_coordinator(
                            CoordinatorKind::Transaction,
                            id,
                            ctx.now,
                        ),
                    }
                    if ctx.retry_later() {
                        self.retry.push(key);
                    } else {
                        self.results.insert(key, Err(error));
                    }
                }
            }
        }
        self.send(again, ctx);
    }

    fn on_retry(&mut self, ctx: &mut Ctx<'_>) {
        let keys = std::mem::take(&mut self.retry);
        self.send(keys, ctx);
    }

    fn abandon(&mut self, error: AdminError) {
        let open = std::mem::take(&mut self.open);
        let retry = std::mem::take(&mut self.retry);
        let in_flight = self.in_flight.drain().flat_map(|(_, keys)| keys);
        for key in open.into_iter().chain(retry).chain(in_flight) {
            self.results
                .entry(key)
                .or_insert_with(|| Err(error.clone()));
        }
    }

    fn finish(self: Box<Self>) -> AdminOutcome {
        let this = *self;
        this.api.finish(this.results)
    }
}

/// The verdict for a network-layer failure of a request: lost connections and timeouts are
/// retried (with a metadata refresh for requests routed by metadata), everything else
/// (an unsupported API, authentication, TLS, a closed client) fails the items.
pub(crate) fn net_verdict<V>(error: NetError, refresh: Refresh) -> Verdict<V> {
    match error {
        NetError::Timeout { .. } | NetError::Disconnected { .. } => {
            Verdict::Retry(AdminError::Net(error), refresh)
        }
        NetError::Broker {
            api: ApiKey::FindCoordinator,
            code,
            ..
        } if code.is_retriable() => Verdict::Retry(AdminError::Net(error), refresh),
        e => Verdict::Done(Err(AdminError::Net(e))),
    }
}

/// Why a call has no response of the type its request asked for.
pub(crate) enum NoAnswer {
    /// The request failed in the network layer.
    Net(NetError),
    /// A body of another API came back (the network client never hands one out; kept an
    /// error rather than a panic all the same).
    Unexpected(UnexpectedResponse),
}

impl NoAnswer {
    /// The verdict for one key: a network error's ([`net_verdict`]), or a final
    /// `InvalidRequest` naming both APIs.
    pub fn verdict<V>(&self, refresh: Refresh) -> Verdict<V> {
        match self {
            NoAnswer::Net(e) => net_verdict(e.clone(), refresh),
            NoAnswer::Unexpected(u) => Verdict::Done(Err(AdminError::InvalidRequest(format!(
                "{} was answered with {}",
                u.expected, u.got
            )))),
        }
    }

    /// [`NoAnswer::verdict`] for each of `keys`.
    pub fn each<K: Clone, V>(&self, keys: &[K], refresh: Refresh) -> Vec<(K, Verdict<V>)> {
        keys.iter()
            .map(|k| (k.clone(), self.verdict(refresh.clone())))
            .collect()
    }
}

/// The response to a request of type `R`, typed, or why there is none.
pub(crate) fn answer<R: Request>(
    result: Result<Response, NetError>,
) -> Result<R::Response, NoAnswer> {
    result
        .map_err(NoAnswer::Net)?
        .body_as::<R>()
        .map_err(NoAnswer::Unexpected)
}

/// The verdict for an item's error code from a controller API (CreateTopics, DeleteTopics,
/// CreatePartitions): NOT_CONTROLLER is retried after a metadata refresh, as in Java.
pub(crate) fn controller_verdict(
    api: ApiKey,
    code: ErrorCode,
    message: Option<String>,
) -> Verdict<()> {
    match code {
        ErrorCode::NONE => Verdict::Done(Ok(())),
        ErrorCode::NOT_CONTROLLER => {
            Verdict::Retry(AdminError::broker(api, code, message), Refresh::Metadata)
        }
        _ => Verdict::Done(Err(AdminError::broker(api, code, message))),
    }
}

/// The verdict for a group API's error code: NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE
/// are retried at a freshly looked-up coordinator, COORDINATOR_LOAD_IN_PROGRESS at the same.
pub(crate) fn group_verdict<V>(
    api: ApiKey,
    group: &str,
    code: ErrorCode,
    message: Option<String>,
    ok: impl FnOnce() -> V,
) -> Verdict<V> {
    match code {
        ErrorCode::NONE => Verdict::Done(Ok(ok())),
        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => Verdict::Retry(
            AdminError::broker(api, code, message),
            Refresh::Coordinator(group.to_owned()),
        ),
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS => {
            Verdict::Retry(AdminError::broker(api, code, message), Refresh::None)
        }
        _ => Verdict::Done(Err(AdminError::broker(api, code, message))),
    }
}

/// The target of a group's requests.
pub(crate) fn coordinator(group: &str) -> Target {
    Target::Coordinator {
        kind: CoordinatorKind::Group,
        key: group.to_owned(),
    }
}

//! OffsetFetch: the group's committed offsets, for the application's `committed` lookups and
//! for newly assigned partitions, which start from their committed offset (or fall back to
//! `auto_offset_reset`). Not to be confused with record `Fetch`, which the consumer's fetcher
//! sends to partition leaders; nothing here reads records.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::offset_commit::OffsetAndMetadata;
use super::{group_error, GroupCtx, GroupMember, OffsetFetchKey, Outcome, Req};
use crate::config::AutoOffsetReset;
use crate::consumer::error::ConsumerError;
use crate::consumer::record::TopicPartition;
use crate::consumer::subscription_state::{Reset, SubscriptionState};
use crate::consumer::{ConsumerEvent, OpId};
use crate::network::{NetError, RequestId, Response};
use crate::protocol::offset_fetch::request::OffsetFetchRequestTopic;
use crate::protocol::{ApiKey, ErrorCode, OffsetFetchRequest, OffsetFetchResponse, RequestBody};

/// The marker timestamp of a partition waiting for its committed offset: an offset reset
/// that is "in flight" so the fetcher neither resets nor fetches it meanwhile.
pub(super) const AWAITING_COMMITTED: i64 = i64::MIN;

/// Highest OffsetFetch version sent: v8 batches several groups in another layout.
pub(crate) const MAX_OFFSET_FETCH_VERSION: i16 = 7;

/// What a [`crate::consumer::ConsumerCore::committed`] lookup returns: the committed offset of
/// each partition asked for, `None` where the group has none.
pub type CommittedResult =
    Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ConsumerError>;

/// The OffsetFetch request for `partitions` (single-group layout, v0-v7).
pub(crate) fn offset_fetch_request(
    group_id: &str,
    partitions: &[TopicPartition],
) -> OffsetFetchRequest {
    let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
    for tp in partitions {
        if topics.last().is_none_or(|t| t.name != *tp.topic) {
            topics.push(OffsetFetchRequestTopic {
                name: tp.topic.to_string(),
                ..Default::default()
            });
        }
        topics
            .last_mut()
            .expect("pushed")
            .partition_indexes
            .push(tp.partition);
    }
    OffsetFetchRequest {
        group_id: group_id.to_owned(),
        topics: Some(topics),
        // Offsets of transactions still open are not "committed" yet: wait for them (KIP-447).
        require_stable: true,
        ..Default::default()
    }
}

/// Classifies an OffsetFetch response (Java's `OffsetFetchResponseHandler`).
pub(crate) fn offset_fetch_outcome(
    resp: &OffsetFetchResponse,
    partitions: &[TopicPartition],
) -> Outcome<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>> {
    let top = resp.error();
    let retry = |code: ErrorCode, coordinator: bool| Outcome::Retry {
        coordinator,
        error: group_error(code, "offset fetch"),
    };
    match top {
        ErrorCode::NONE => {}
        ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
            return retry(top, true)
        }
        c if c.is_retriable() || c == ErrorCode::UNSTABLE_OFFSET_COMMIT => return retry(c, false),
        c => return Outcome::Fail(group_error(c, "offset fetch refused")),
    }
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
            let code = p.error();
            match code {
                ErrorCode::NONE => {}
                ErrorCode::UNSTABLE_OFFSET_COMMIT => return retry(code, false),
                ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                    return retry(code, true)
                }
                c if c.is_retriable() => return retry(c, false),
                c => return Outcome::Fail(group_error(c, format!("offset fetch of {tp} refused"))),
            }
            let value = (p.committed_offset >= 0).then(|| OffsetAndMetadata {
                offset: p.committed_offset,
                leader_epoch: (p.committed_leader_epoch >= 0).then_some(p.committed_leader_epoch),
                metadata: p.metadata.clone().unwrap_or_default(),
            });
            out.insert(tp, value);
        }
    }
    // A partition the broker did not mention has no committed offset.
    for tp in partitions {
        out.entry(tp.clone()).or_insert(None);
    }
    out.retain(|tp, _| partitions.contains(tp));
    Outcome::Done(out)
}

/// One committed-offsets lookup (the application's, or the group's for new partitions).
#[derive(Debug)]
pub(crate) struct OffsetFetchOp {
    /// The application's op; `None` for the group's own lookup of newly assigned partitions.
    pub op: Option<OpId>,
    pub partitions: Vec<TopicPartition>,
    pub deadline: Option<Instant>,
    pub retry_at: Option<Instant>,
    pub request: Option<RequestId>,
}

impl GroupMember {
    /// Looks up committed offsets; the answer arrives as [`ConsumerEvent::Committed`].
    pub fn committed(
        &mut self,
        op: OpId,
        partitions: BTreeSet<TopicPartition>,
        timeout: Duration,
        ctx: &mut GroupCtx<'_>,
    ) {
        if partitions.is_empty() {
            self.events.push_back(ConsumerEvent::Committed {
                op,
                result: Ok(BTreeMap::new()),
            });
            return;
        }
        self.last_offset_fetch = self.last_offset_fetch.next();
        self.offset_fetches.insert(
            self.last_offset_fetch,
            OffsetFetchOp {
                op: Some(op),
                partitions: partitions.into_iter().collect(),
                deadline: Some(ctx.now + timeout),
                retry_at: None,
                request: None,
            },
        );
        self.poll(ctx, false);
    }

    /// Sends the lookups that are due (the group's own ones only for partitions still
    /// waiting).
    pub(super) fn send_offset_fetches(&mut self, ctx: &mut GroupCtx<'_>) {
        let now = ctx.now;
        let due: Vec<OffsetFetchKey> = self
            .offset_fetches
            .iter()
            .filter(|(_, f)| f.request.is_none() && f.retry_at.is_none_or(|t| now >= t))
            .map(|(k, _)| *k)
            .collect();
        let stable = self
            .coordinator_version(ctx.net, ApiKey::OffsetFetch, MAX_OFFSET_FETCH_VERSION)
            .is_some_and(|v| v >= 7);
        let target = self.target();
        for key in due {
            if self.fatal.is_some() {
                let f = self.offset_fetches.remove(&key).expect("listed");
                let e = self.fatal.clone().expect("checked");
                self.finish_offset_fetch(f, Err(e), ctx);
                continue;
            }
            let f = self.offset_fetches.get_mut(&key).expect("listed");
            if f.op.is_none() {
                // The group's own lookup: only partitions still waiting.
                f.partitions.retain(|tp| awaiting_committed(ctx.subs, tp));
                if f.partitions.is_empty() {
                    self.offset_fetches.remove(&key);
                    continue;
                }
            }
            let mut body = offset_fetch_request(&self.cfg.group_id, &f.partitions);
            // require_stable exists from v7 (Kafka 2.5) and cannot be dropped silently.
            body.require_stable = stable;
            let rid = ctx.net.send(
                target.clone(),
                RequestBody::OffsetFetch(body),
                Some(MAX_OFFSET_FETCH_VERSION),
                true,
                now,
            );
            f.request = Some(rid);
            f.retry_at = None;
            self.requests.insert(rid, Req::OffsetFetch(key));
        }
    }

    pub(super) fn finish_offset_fetch(
        &mut self,
        f: OffsetFetchOp,
        result: CommittedResult,
        ctx: &mut GroupCtx<'_>,
    ) {
        match f.op {
            Some(op) => self
                .events
                .push_back(ConsumerEvent::Committed { op, result }),
            None => match result {
                Ok(found) => {
                    for (tp, committed) in found {
                        if !awaiting_committed(ctx.subs, &tp) {
                            continue; // sought, revoked or reset meanwhile
                        }
                        match committed {
                            Some(o) => {
                                tracing::debug!(partition = %tp, offset = o.offset, "starting from the committed offset");
                                let _ = ctx.subs.seek(&tp, o.offset, o.leader_epoch);
                            }
                            None => self.fall_back_to_reset(&tp, ctx.subs),
                        }
                    }
                }
                Err(e) => {
                    for tp in &f.partitions {
                        if awaiting_committed(ctx.subs, tp) {
                            if let Ok(s) = ctx.subs.get_mut(tp) {
                                s.reset = None;
                                s.error = Some((e.clone(), false));
                            }
                        }
                    }
                }
            },
        }
    }

    fn fall_back_to_reset(&self, tp: &TopicPartition, subs: &mut SubscriptionState) {
        let Ok(s) = subs.get_mut(tp) else { return };
        match self.cfg.reset {
            AutoOffsetReset::None => {
                s.reset = None;
                s.error = Some((
                    ConsumerError::NoOffset {
                        partition: tp.clone(),
                    },
                    false,
                ));
            }
            AutoOffsetReset::Earliest => {
                s.reset = Some(Reset {
                    timestamp: crate::consumer::subscription_state::EARLIEST_TIMESTAMP,
                    in_flight: false,
                    retry_at: None,
                })
            }
            _ => {
                s.reset = Some(Reset {
                    timestamp: crate::consumer::subscription_state::LATEST_TIMESTAMP,
                    in_flight: false,
                    retry_at: None,
                })
            }
        }
    }

    pub(super) fn on_offset_fetch(
        &mut self,
        key: OffsetFetchKey,
        result: Result<Response, NetError>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let now = ctx.now;
        let Some(f) = self.offset_fetches.get_mut(&key) else {
            return;
        };
        f.request = None;
        let outcome = match result.map(Response::body_as::<OffsetFetchRequest>) {
            Ok(Ok(r)) => offset_fetch_outcome(&r, &f.partitions),
            Ok(Err(_)) => Outcome::Retry {
                coordinator: false,
                error: group_error(ErrorCode::UNKNOWN_SERVER_ERROR, "unexpected response"),
            },
            Err(e) => match self.fatal_net_error(&e) {
                Some(f) => Outcome::Fail(f),
                None => Outcome::Retry {
                    coordinator: true,
                    error: ConsumerError::Network(e),
                },
            },
        };
        match outcome {
            Outcome::Done(found) => {
                let f = self.offset_fetches.remove(&key).expect("present");
                self.finish_offset_fetch(f, Ok(found), ctx);
            }
            Outcome::Retry { coordinator, error } => {
                if coordinator {
                    self.coordinator_lost(ctx, "offset fetch failed");
                }
                let f = self.offset_fetches.get_mut(&key).expect("present");
                if f.deadline
                    .is_some_and(|d| now + self.cfg.retry_backoff >= d)
                {
                    let f = self.offset_fetches.remove(&key).expect("present");
                    self.finish_offset_fetch(f, Err(error), ctx);
                } else {
                    f.retry_at = Some(now + self.cfg.retry_backoff);
                }
            }
            Outcome::ResetGeneration(e)
            | Outcome::Rebalancing(e)
            | Outcome::Fenced(e)
            | Outcome::Fail(e) => {
                let f = self.offset_fetches.remove(&key).expect("present");
                self.finish_offset_fetch(f, Err(e), ctx);
            }
        }
    }

    /// Fails the application's committed-offsets lookups waiting to be (re)sent whose
    /// deadline passed.
    pub(super) fn expire_offset_fetches(&mut self, now: Instant) {
        let late: Vec<OffsetFetchKey> = self
            .offset_fetches
            .iter()
            .filter(|(_, f)| f.request.is_none() && f.deadline.is_some_and(|d| now >= d))
            .map(|(k, _)| *k)
            .collect();
        for key in late {
            let f = self.offset_fetches.remove(&key).expect("listed");
            if let Some(op) = f.op {
                self.events.push_back(ConsumerEvent::Committed {
                    op,
                    result: Err(ConsumerError::Timeout {
                        operation: "committed",
                        after: self.cfg.api_timeout,
                    }),
                });
            }
        }
    }
}

/// Whether `tp` waits for its committed offset.
pub(super) fn awaiting_committed(subs: &SubscriptionState, tp: &TopicPartition) -> bool {
    subs.get(tp).is_ok_and(|s| {
        s.position.is_none() && s.reset.is_some_and(|r| r.timestamp == AWAITING_COMMITTED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::offset_fetch::response::{
        OffsetFetchResponsePartition, OffsetFetchResponseTopic,
    };

    #[test]
    fn offset_fetch_maps_missing_and_negative_offsets_to_none() {
        let parts = vec![
            TopicPartition::new("a", 0),
            TopicPartition::new("a", 1),
            TopicPartition::new("b", 0),
        ];
        let req = offset_fetch_request("g", &parts);
        assert_eq!(req.topics.as_ref().unwrap().len(), 2);
        let resp = OffsetFetchResponse {
            topics: vec![OffsetFetchResponseTopic {
                name: "a".into(),
                partitions: vec![
                    OffsetFetchResponsePartition {
                        partition_index: 0,
                        committed_offset: 42,
                        committed_leader_epoch: 3,
                        metadata: Some("x".into()),
                        ..Default::default()
                    },
                    OffsetFetchResponsePartition {
                        partition_index: 1,
                        committed_offset: -1,
                        committed_leader_epoch: -1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let Outcome::Done(m) = offset_fetch_outcome(&resp, &parts) else {
            panic!("not done")
        };
        assert_eq!(
            m[&parts[0]],
            Some(OffsetAndMetadata {
                offset: 42,
                leader_epoch: Some(3),
                metadata: "x".into()
            })
        );
        assert_eq!(m[&parts[1]], None);
        assert_eq!(m[&parts[2]], None);
        let busy = OffsetFetchResponse {
            error_code: ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0,
            ..Default::default()
        };
        assert!(matches!(
            offset_fetch_outcome(&busy, &parts),
            Outcome::Retry {
                coordinator: false,
                ..
            }
        ));
    }
}

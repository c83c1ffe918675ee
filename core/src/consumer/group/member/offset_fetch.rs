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
use crate::protocol::offset_fetch::response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use crate::protocol::{ApiKey, ErrorCode, OffsetFetchRequest, OffsetFetchResponse, RequestBody};

/// The marker timestamp of a partition waiting for its committed offset: an offset reset
/// that is "in flight" so the fetcher neither resets nor fetches it meanwhile.
pub(super) const AWAITING_COMMITTED: i64 = i64::MIN;

/// Highest OffsetFetch version sent: v9 carries the member id and epoch of a KIP-848 member
/// (KIP-848), which the coordinator checks; classic members send it with neither, as Java does.
pub(crate) const MAX_OFFSET_FETCH_VERSION: i16 = 9;

/// From this OffsetFetch version on, requests and responses carry a list of groups (v0-7:
/// the one group at the top level).
pub(crate) const GROUPS_LAYOUT_VERSION: i16 = 8;

/// The version a request is built for while the coordinator's versions are unknown: v7, the
/// last single-group layout, which the network layer then negotiates down if need be (every
/// broker since Kafka 2.5 serves it).
const UNKNOWN_COORDINATOR_VERSION: i16 = GROUPS_LAYOUT_VERSION - 1;

/// What a [`crate::consumer::ConsumerCore::committed`] lookup returns: the committed offset of
/// each partition asked for, `None` where the group has none.
pub type CommittedResult =
    Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ConsumerError>;

/// The OffsetFetch request of `group_id` for `partitions` (`None`: every partition with a
/// committed offset), in the layout of `version`: one group at the top level up to v7, a list
/// of one group from v8. `member` (id and epoch) goes out from v9 only; `None` sends the null
/// id and epoch -1 that the coordinator accepts from anyone (the admin client, a classic
/// member). Shared by the group member and the admin client.
pub(crate) fn offset_fetch_request(
    group_id: &str,
    partitions: Option<&[TopicPartition]>,
    member: Option<(&str, i32)>,
    version: i16,
) -> OffsetFetchRequest {
    use crate::protocol::offset_fetch::request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    let by_topic = partitions.map(|ps| {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in ps {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        by_topic
    });
    if version >= GROUPS_LAYOUT_VERSION {
        let topics = by_topic.map(|t| {
            t.into_iter()
                .map(|(name, partition_indexes)| OffsetFetchRequestTopics {
                    name: name.to_owned(),
                    partition_indexes,
                    ..Default::default()
                })
                .collect()
        });
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group_id.to_owned(),
                member_id: member.map(|(id, _)| id.to_owned()),
                member_epoch: member.map_or(-1, |(_, epoch)| epoch),
                topics,
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        let topics = by_topic.map(|t| {
            t.into_iter()
                .map(|(name, partition_indexes)| OffsetFetchRequestTopic {
                    name: name.to_owned(),
                    partition_indexes,
                    ..Default::default()
                })
                .collect()
        });
        OffsetFetchRequest {
            group_id: group_id.to_owned(),
            topics,
            ..Default::default()
        }
    }
}

/// The error and committed offsets of `group` in an OffsetFetch response of either layout
/// (v0-7 answer for the one group at the top level, v8+ in a list of groups); `None` when a
/// v8+ response has no entry for the group. Shared by the group member and the admin client.
pub(crate) fn offset_fetch_group_rows(
    resp: OffsetFetchResponse,
    group: &str,
) -> Option<(ErrorCode, Vec<OffsetFetchResponseTopic>)> {
    if resp.groups.is_empty() {
        return Some((resp.error(), resp.topics));
    }
    let g = resp.groups.into_iter().find(|g| g.group_id == group)?;
    let code = g.error();
    let topics = g
        .topics
        .into_iter()
        .map(|t| OffsetFetchResponseTopic {
            name: t.name,
            partitions: t
                .partitions
                .into_iter()
                .map(|p| OffsetFetchResponsePartition {
                    partition_index: p.partition_index,
                    committed_offset: p.committed_offset,
                    committed_leader_epoch: p.committed_leader_epoch,
                    metadata: p.metadata,
                    error_code: p.error_code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    Some((code, topics))
}

/// Classifies an OffsetFetch response of either layout (Java's `OffsetFetchResponseHandler`
/// and, for the consumer protocol's errors, `CommitRequestManager`). `in_group`: the member
/// has a KIP-848 epoch now. STALE_MEMBER_EPOCH then means the coordinator moved the member to
/// a newer epoch that the next heartbeat brings: the lookup is retried after the backoff with
/// the epoch the member has then (bounded by its deadline), as Java retries it. Without an
/// epoch (left, fenced) it fails, as do UNKNOWN_MEMBER_ID and the fencing errors: Java fails
/// the lookup and leaves the membership to the heartbeat, which hears the same news.
pub(crate) fn offset_fetch_outcome(
    resp: OffsetFetchResponse,
    partitions: &[TopicPartition],
    group: &str,
    in_group: bool,
) -> Outcome<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>> {
    let retry = |code: ErrorCode, coordinator: bool| Outcome::Retry {
        coordinator,
        error: group_error(code, "offset fetch"),
    };
    let Some((top, topics)) = offset_fetch_group_rows(resp, group) else {
        return Outcome::Fail(group_error(
            ErrorCode::UNKNOWN_SERVER_ERROR,
            format!("the OffsetFetch answer has no entry for group `{group}`"),
        ));
    };
    match top {
        ErrorCode::NONE => {}
        ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
            return retry(top, true)
        }
        ErrorCode::STALE_MEMBER_EPOCH if in_group => {
            return Outcome::Retry {
                coordinator: false,
                error: group_error(
                    top,
                    "offset fetch refused: the coordinator moved the member to a newer epoch",
                ),
            }
        }
        c @ (ErrorCode::STALE_MEMBER_EPOCH | ErrorCode::UNKNOWN_MEMBER_ID) => {
            return Outcome::Fail(group_error(
                c,
                "offset fetch refused: the member is not in the group any more (it left, was \
                 fenced or its session expired)",
            ))
        }
        c if c.is_retriable() || c == ErrorCode::UNSTABLE_OFFSET_COMMIT => return retry(c, false),
        c => return Outcome::Fail(group_error(c, "offset fetch refused")),
    }
    let mut out = BTreeMap::new();
    for t in &topics {
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
        if due.is_empty() {
            // The usual case (this runs at every poll of the member): the version, member and
            // target below cost a coordinator lookup and two string copies.
            return;
        }
        // The layout changes at v8, and the body is built before the network layer picks the
        // version: build for the version the coordinator's table gives, and cap the request
        // there. Should the request reach another broker that cannot take that layout (the
        // coordinator moved meanwhile), encoding fails and the lookup is retried at the
        // coordinator looked up again.
        let version = self
            .coordinator_version(ctx.net, ApiKey::OffsetFetch, MAX_OFFSET_FETCH_VERSION)
            .unwrap_or(UNKNOWN_COORDINATOR_VERSION);
        let member = self.offset_fetch_member();
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
            let mut body = offset_fetch_request(
                &self.cfg.group_id,
                Some(&f.partitions),
                member.as_ref().map(|(id, epoch)| (id.as_str(), *epoch)),
                version,
            );
            // Offsets of transactions still open are not "committed" yet: wait for them
            // (KIP-447). The flag exists from v7 (Kafka 2.5): set it unless the coordinator is
            // known to be older. Should the request still go out below v7 (no table yet, or a
            // broker before 0.8.2 with no coordinator at all), the frame encoder drops it, as
            // Java's request builder does.
            body.require_stable = version >= 7;
            let rid = ctx.net.send(
                target.clone(),
                RequestBody::OffsetFetch(body),
                Some(version),
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
        let in_group = self.offset_fetch_member().is_some();
        let f = self.offset_fetches.get_mut(&key).expect("present");
        let outcome = match result.map(Response::body_as::<OffsetFetchRequest>) {
            Ok(Ok(r)) => offset_fetch_outcome(r, &f.partitions, &self.cfg.group_id, in_group),
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

    /// The member id and epoch an OffsetFetch carries (v9): a consumer protocol member's while
    /// it is in the group (epoch above 0), else none (null and -1 on the wire), as Java's
    /// `CommitRequestManager` sends them. Classic members never send theirs.
    fn offset_fetch_member(&self) -> Option<(String, i32)> {
        let cp = self.cp.as_deref()?;
        (cp.epoch > 0 && !self.member_id.is_empty()).then(|| (self.member_id.clone(), cp.epoch))
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

    #[test]
    fn offset_fetch_maps_missing_and_negative_offsets_to_none() {
        let parts = vec![
            TopicPartition::new("a", 0),
            TopicPartition::new("a", 1),
            TopicPartition::new("b", 0),
        ];
        let req = offset_fetch_request("g", Some(&parts), None, 7);
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
        let Outcome::Done(m) = offset_fetch_outcome(resp, &parts, "g", false) else {
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
            offset_fetch_outcome(busy, &parts, "g", false),
            Outcome::Retry {
                coordinator: false,
                ..
            }
        ));
    }

    mod member {
        //! What the member sends and how it takes the answers, against scripted coordinators.

        use super::super::super::test_support::*;
        use crate::config::GroupProtocol;
        use crate::consumer::group::member::offset_fetch::CommittedResult;
        use crate::network::{ApiVersionTable, CoordinatorKind};
        use crate::protocol::offset_fetch::request::OffsetFetchRequestGroup;
        use crate::protocol::offset_fetch::response::{
            OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
        };
        use crate::protocol::{OffsetFetchRequest, OffsetFetchResponse, RequestBody};

        /// A member whose coordinator serves OffsetFetch up to `max` (`None`: not
        /// looked up yet); with `epoch`, a consumer protocol member in the group at that epoch.
        /// The coordinator is the bootstrap broker (node -1), whose address the client knows.
        fn member(max: Option<i16>, epoch: Option<i32>) -> T {
            let mut t = T::new(|c| {
                if epoch.is_some() {
                    c.group_protocol = GroupProtocol::Consumer;
                    c.partition_assignment_strategy =
                        ConsumerConfig::default().partition_assignment_strategy;
                }
            });
            if let Some(max) = max {
                // A broker without FindCoordinator would fail the request before it is queued.
                let table = ApiVersionTable::from_ranges([
                    (ApiKey::OffsetFetch.as_i16(), 0, max),
                    (ApiKey::FindCoordinator.as_i16(), 0, 4),
                ]);
                t.net
                    .set_coordinator_for_test(CoordinatorKind::Group, "g", -1, table);
            }
            if let Some(epoch) = epoch {
                set_epoch(&mut t, epoch);
            }
            t
        }

        /// What a heartbeat answer does to the member's identity in the group.
        fn set_epoch(t: &mut T, epoch: i32) {
            t.g.member_id = "m-1".into();
            t.g.cp.as_deref_mut().expect("consumer protocol").epoch = epoch;
        }

        /// Asks for the committed offsets of t-0 and t-1: the request sent and its version cap.
        fn lookup(t: &mut T) -> (RequestId, OffsetFetchRequest, Option<i16>) {
            let mut ctx = GroupCtx {
                net: &mut t.net,
                subs: &mut t.subs,
                now: t.now,
            };
            t.g.committed(OpId(7), tps(&[0, 1]), Duration::from_secs(30), &mut ctx);
            sent(t)
        }

        fn sent(t: &T) -> (RequestId, OffsetFetchRequest, Option<i16>) {
            let id = t
                .pending(|r| matches!(r, Req::OffsetFetch(_)))
                .expect("OffsetFetch sent");
            match t.net.queued_request(id) {
                Some((RequestBody::OffsetFetch(b), max)) => (id, b.clone(), max),
                other => panic!("not an OffsetFetch: {other:?}"),
            }
        }

        fn group_of(r: &OffsetFetchRequest) -> &OffsetFetchRequestGroup {
            assert!(r.group_id.is_empty() && r.topics.as_ref().is_none_or(|t| t.is_empty()));
            assert_eq!(r.groups.len(), 1, "one group");
            &r.groups[0]
        }

        /// A v8+ answer for group g: `code` for the group, else offset 42 for t-0 and none
        /// for t-1.
        fn answer(t: &mut T, id: RequestId, code: ErrorCode) {
            let partitions = [(0, 42), (1, -1)]
                .into_iter()
                .map(|(p, offset)| OffsetFetchResponsePartitions {
                    partition_index: p,
                    committed_offset: offset,
                    ..Default::default()
                })
                .collect();
            let topics = if code.is_ok() {
                vec![OffsetFetchResponseTopics {
                    name: "t".into(),
                    partitions,
                    ..Default::default()
                }]
            } else {
                Vec::new()
            };
            t.respond(
                id,
                ResponseBody::OffsetFetch(OffsetFetchResponse {
                    groups: vec![OffsetFetchResponseGroup {
                        group_id: "g".into(),
                        topics,
                        error_code: code.0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            );
        }

        fn committed_event(t: &mut T) -> CommittedResult {
            let mut found = None;
            for e in t.g.events.drain(..) {
                if let ConsumerEvent::Committed { op, result } = e {
                    assert_eq!(op, OpId(7));
                    assert!(found.replace(result).is_none(), "one answer");
                }
            }
            found.expect("the lookup was answered")
        }

        fn refused_with(result: CommittedResult) -> ErrorCode {
            match result {
                Err(ConsumerError::Group { error, .. }) => error,
                other => panic!("not refused by the coordinator: {other:?}"),
            }
        }

        #[test]
        fn a_classic_member_sends_v9_without_member_id_or_epoch() {
            let mut t = member(Some(9), None);
            let (id, r, max) = lookup(&mut t);
            assert_eq!(max, Some(9));
            assert!(r.require_stable);
            let g = group_of(&r);
            assert_eq!(
                (g.group_id.as_str(), g.member_id.as_deref(), g.member_epoch),
                ("g", None, -1)
            );
            let topics = g.topics.as_ref().expect("the partitions asked for");
            assert_eq!(topics.len(), 1);
            assert_eq!(
                (topics[0].name.as_str(), &topics[0].partition_indexes[..]),
                ("t", &[0, 1][..])
            );
            answer(&mut t, id, ErrorCode::NONE);
            let found = committed_event(&mut t).expect("offsets");
            assert_eq!(
                found[&TopicPartition::new("t", 0)]
                    .as_ref()
                    .map(|o| o.offset),
                Some(42)
            );
            assert_eq!(found[&TopicPartition::new("t", 1)], None);
        }

        #[test]
        fn a_consumer_protocol_member_sends_its_id_and_epoch() {
            let mut t = member(Some(9), Some(3));
            let (_, r, max) = lookup(&mut t);
            assert_eq!(max, Some(9));
            let g = group_of(&r);
            assert_eq!((g.member_id.as_deref(), g.member_epoch), (Some("m-1"), 3));
            // Not in the group (joining, fenced, left: epoch 0): none, as Java sends.
            let mut t = member(Some(9), Some(0));
            let (_, r, _) = lookup(&mut t);
            assert_eq!(
                (group_of(&r).member_id.as_deref(), group_of(&r).member_epoch),
                (None, -1)
            );
        }

        #[test]
        fn older_coordinators_get_the_single_group_layout() {
            // librdkafka's mock cluster serves OffsetFetch up to v6: no require_stable there.
            for (max, stable) in [(Some(6), false), (Some(7), true), (None, true)] {
                let mut t = member(max, Some(3));
                let (_, r, cap) = lookup(&mut t);
                assert_eq!(cap, Some(max.unwrap_or(7)), "{max:?}");
                assert!(r.groups.is_empty(), "{max:?}");
                assert_eq!(r.group_id, "g");
                assert_eq!(r.require_stable, stable, "{max:?}");
                assert_eq!(r.topics.as_ref().map(Vec::len), Some(1));
            }
            // A v8 coordinator: the groups layout, where the member fields are dropped.
            let mut t = member(Some(8), Some(3));
            let (_, r, cap) = lookup(&mut t);
            assert_eq!(cap, Some(8));
            assert_eq!(group_of(&r).group_id, "g");
        }

        #[test]
        fn a_stale_epoch_is_retried_with_the_epoch_the_next_heartbeat_brings() {
            let mut t = member(Some(9), Some(3));
            let (id, _, _) = lookup(&mut t);
            answer(&mut t, id, ErrorCode::STALE_MEMBER_EPOCH);
            assert!(t.g.events.is_empty(), "not failed");
            assert!(
                t.pending(|r| matches!(r, Req::OffsetFetch(_))).is_none(),
                "not at once"
            );
            set_epoch(&mut t, 4);
            t.now += Duration::from_millis(ConsumerConfig::default().common.retry_backoff_ms);
            t.poll(false);
            let (id, r, _) = sent(&t);
            assert_eq!(group_of(&r).member_epoch, 4);
            answer(&mut t, id, ErrorCode::NONE);
            assert!(committed_event(&mut t).is_ok());
        }

        #[test]
        fn membership_errors_fail_the_lookup() {
            // A stale epoch with no epoch to retry with (the member left or was fenced
            // meanwhile), an unknown member, and the fencing errors fail, as in Java.
            let cases = [
                (ErrorCode::STALE_MEMBER_EPOCH, 0),
                (ErrorCode::UNKNOWN_MEMBER_ID, 3),
                (ErrorCode::FENCED_MEMBER_EPOCH, 3),
                (ErrorCode::FENCED_INSTANCE_ID, 3),
            ];
            for (code, epoch_after) in cases {
                let mut t = member(Some(9), Some(3));
                let (id, _, _) = lookup(&mut t);
                set_epoch(&mut t, epoch_after);
                answer(&mut t, id, code);
                assert_eq!(refused_with(committed_event(&mut t)), code);
                assert_eq!(
                    t.g.state(),
                    MemberState::Unjoined,
                    "the heartbeat handles membership"
                );
            }
        }

        #[test]
        fn an_answer_without_the_group_fails_the_lookup() {
            let mut t = member(Some(9), None);
            let (id, _, _) = lookup(&mut t);
            t.respond(
                id,
                ResponseBody::OffsetFetch(OffsetFetchResponse {
                    groups: vec![OffsetFetchResponseGroup {
                        group_id: "other".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            );
            assert_eq!(
                refused_with(committed_event(&mut t)),
                ErrorCode::UNKNOWN_SERVER_ERROR
            );
        }
    }
}

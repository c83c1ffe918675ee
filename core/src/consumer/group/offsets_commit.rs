//! Committed offsets: [`OffsetAndMetadata`], OffsetCommit and OffsetFetch requests, and how
//! their errors are classified (Java's `ConsumerCoordinator` handlers are the reference).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::consumer::error::ConsumerError;
use crate::consumer::record::TopicPartition;
use crate::network::RequestId;
use crate::protocol::offset_commit::request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::protocol::offset_fetch::request::OffsetFetchRequestTopic;
use crate::protocol::{
    ErrorCode, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};

use crate::consumer::OpId;

/// Highest OffsetCommit version sent: v9 carries a KIP-848 member epoch, which classic
/// members have no use for.
pub(crate) const MAX_COMMIT_VERSION: i16 = 8;
/// Highest OffsetFetch version sent: v8 batches several groups in another layout.
pub(crate) const MAX_OFFSET_FETCH_VERSION: i16 = 7;

/// An offset to commit, or one that was committed (Java's `OffsetAndMetadata`): the offset of
/// the next record to consume, the leader epoch of the record before it (if known) and
/// free-form metadata.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, if known (OffsetCommit v6+).
    pub leader_epoch: Option<i32>,
    /// Application metadata stored with the offset (empty by default).
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset without leader epoch or metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata {
            offset,
            leader_epoch: None,
            metadata: String::new(),
        }
    }

    /// The same offset with `metadata`.
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// The same offset with a leader epoch.
    pub fn with_leader_epoch(mut self, epoch: Option<i32>) -> Self {
        self.leader_epoch = epoch;
        self
    }
}

/// Offsets by partition.
pub type Offsets = BTreeMap<TopicPartition, OffsetAndMetadata>;

/// What a [`crate::consumer::ConsumerCore::committed`] lookup returns: the committed offset of
/// each partition asked for, `None` where the group has none.
pub type CommittedResult =
    Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ConsumerError>;

/// kafka-python's `default_offset_commit_callback`: logs a failed commit (with `tracing`).
/// The handles run it for an async commit given no callback of its own; the core itself
/// never runs callbacks (it reports every commit as a
/// [`ConsumerEvent::Commit`](crate::consumer::ConsumerEvent::Commit)).
pub fn default_offset_commit_callback(offsets: &Offsets, result: Result<(), ConsumerError>) {
    if let Err(error) = result {
        tracing::warn!(%error, partitions = offsets.len(), "offset commit failed");
    }
}

/// Who asked for a commit: decides retries and what else happens with a failure. Every
/// commit's result is a [`ConsumerEvent::Commit`](crate::consumer::ConsumerEvent::Commit),
/// with the application's op for its own commits and none for the core's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommitKind {
    /// The application (`commit_sync` / `commit_async`, with an op).
    User,
    /// The periodic auto-commit: errors are also logged (as Java's auto-commit does).
    Auto,
    /// A blocking step of the group (auto-commit before a revocation or on close, or the
    /// listener's commit): the step waits for it; `report` puts a failure in the next poll
    /// (the listener's commits), otherwise it is logged (auto-commits, as Java).
    Step {
        /// Whether a failure is returned by the next poll.
        report: bool,
    },
}

/// One commit in progress.
#[derive(Debug)]
pub(crate) struct CommitOp {
    /// The group's own name for the commit (unique, unlike application ops).
    pub key: u64,
    /// The application's op (`None` for the core's own commits).
    pub op: Option<OpId>,
    pub kind: CommitKind,
    pub offsets: Offsets,
    /// Sync commits retry retriable errors until this deadline; async ones never retry.
    pub deadline: Option<Instant>,
    pub retry_at: Option<Instant>,
    pub request: Option<RequestId>,
    /// Partitions revoked from the member after the commit was asked for: they are left out
    /// of any later (re)send, so that the revocation callback's commit stays the last one for
    /// them in the generation and committed offsets never move backwards.
    pub withheld: BTreeSet<TopicPartition>,
    /// The partitions the last request left out (withheld when it was sent): the commit did
    /// not do all it was asked to, and its answer does not cover them.
    pub left_out: BTreeSet<TopicPartition>,
}

/// One committed-offsets lookup (the application's, or the group's for new partitions).
#[derive(Debug)]
pub(crate) struct FetchOp {
    /// The application's op; `None` for the group's own lookup of newly assigned partitions.
    pub op: Option<OpId>,
    pub partitions: Vec<TopicPartition>,
    pub deadline: Option<Instant>,
    pub retry_at: Option<Instant>,
    pub request: Option<RequestId>,
}

/// How a commit or lookup answer is handled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome<T> {
    Done(T),
    /// Retriable: try again after the backoff; `coordinator` when the coordinator moved.
    Retry {
        coordinator: bool,
        error: ConsumerError,
    },
    /// The member's generation is gone (UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION): reset it,
    /// lose the partitions and rejoin.
    ResetGeneration(ConsumerError),
    /// The group is rebalancing: rejoin, the commit fails.
    Rebalancing(ConsumerError),
    /// Fenced static member: fatal for the consumer.
    Fenced(ConsumerError),
    Fail(ConsumerError),
}

fn group_error(code: ErrorCode, detail: impl Into<String>) -> ConsumerError {
    ConsumerError::Group {
        error: code,
        detail: detail.into(),
    }
}

/// The OffsetCommit request for `offsets` on behalf of `generation`/`member_id` (-1 and ""
/// for a consumer that assigns partitions itself).
pub(crate) fn commit_request(
    group_id: &str,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
    offsets: &Offsets,
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (tp, o) in offsets {
        if topics.last().is_none_or(|t| t.name != *tp.topic) {
            topics.push(OffsetCommitRequestTopic {
                name: tp.topic.to_string(),
                ..Default::default()
            });
        }
        let t = topics.last_mut().expect("pushed");
        t.partitions.push(OffsetCommitRequestPartition {
            partition_index: tp.partition,
            committed_offset: o.offset,
            committed_leader_epoch: o.leader_epoch.unwrap_or(-1),
            commit_timestamp: -1,
            committed_metadata: Some(o.metadata.clone()),
            ..Default::default()
        });
    }
    OffsetCommitRequest {
        group_id: group_id.to_owned(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.to_owned(),
        group_instance_id: instance_id.map(str::to_owned),
        retention_time_ms: -1,
        topics,
        ..Default::default()
    }
}

/// Classifies an OffsetCommit response (Java's `OffsetCommitResponseHandler`): the first
/// partition error decides.
pub(crate) fn commit_outcome(resp: &OffsetCommitResponse, offsets: &Offsets) -> Outcome<()> {
    let mut missing: Vec<&TopicPartition> = offsets.keys().collect();
    for t in &resp.topics {
        for p in &t.partitions {
            missing.retain(|tp| !(*tp.topic == *t.name && tp.partition == p.partition_index));
            let code = ErrorCode(p.error_code);
            if code.is_ok() {
                continue;
            }
            let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
            let err = |detail: &str| group_error(code, format!("commit of {tp}: {detail}"));
            return match code {
                ErrorCode::COORDINATOR_NOT_AVAILABLE
                | ErrorCode::NOT_COORDINATOR
                | ErrorCode::REQUEST_TIMED_OUT => Outcome::Retry {
                    coordinator: true,
                    error: err("the coordinator moved"),
                },
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                    Outcome::Retry {
                        coordinator: false,
                        error: err("retriable"),
                    }
                }
                ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                    Outcome::ResetGeneration(err(
                        "the group rebalanced and assigned the partitions to another member \
                         (the poll loop took longer than max_poll_interval_ms?)",
                    ))
                }
                ErrorCode::REBALANCE_IN_PROGRESS => {
                    Outcome::Rebalancing(err("the group is rebalancing; poll to rejoin"))
                }
                ErrorCode::FENCED_INSTANCE_ID => {
                    Outcome::Fenced(err("another consumer uses this group_instance_id"))
                }
                c if c.is_retriable() => Outcome::Retry {
                    coordinator: false,
                    error: err("retriable"),
                },
                _ => Outcome::Fail(err("refused")),
            };
        }
    }
    if let Some(tp) = missing.first() {
        return Outcome::Fail(group_error(
            ErrorCode::UNKNOWN_SERVER_ERROR,
            format!("the commit response left out {tp}"),
        ));
    }
    Outcome::Done(())
}

/// The OffsetFetch request for `partitions` (single-group layout, v0-v7).
pub(crate) fn fetch_request(group_id: &str, partitions: &[TopicPartition]) -> OffsetFetchRequest {
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
pub(crate) fn fetch_outcome(
    resp: &OffsetFetchResponse,
    partitions: &[TopicPartition],
) -> Outcome<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>> {
    let top = ErrorCode(resp.error_code);
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
            let code = ErrorCode(p.error_code);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::offset_commit::response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use crate::protocol::offset_fetch::response::{
        OffsetFetchResponsePartition, OffsetFetchResponseTopic,
    };

    fn offsets() -> Offsets {
        [
            (TopicPartition::new("a", 0), OffsetAndMetadata::new(5)),
            (
                TopicPartition::new("a", 1),
                OffsetAndMetadata::new(7)
                    .with_metadata("m")
                    .with_leader_epoch(Some(2)),
            ),
            (TopicPartition::new("b", 0), OffsetAndMetadata::new(1)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn commit_request_groups_partitions_by_topic() {
        let r = commit_request("g", 3, "m-1", Some("i"), &offsets());
        assert_eq!(r.generation_id_or_member_epoch, 3);
        assert_eq!(r.group_instance_id.as_deref(), Some("i"));
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].partitions.len(), 2);
        assert_eq!(r.topics[0].partitions[1].committed_leader_epoch, 2);
        assert_eq!(
            r.topics[0].partitions[1].committed_metadata.as_deref(),
            Some("m")
        );
        assert_eq!(r.topics[1].partitions[0].committed_leader_epoch, -1);
    }

    fn commit_resp(code: ErrorCode) -> OffsetCommitResponse {
        OffsetCommitResponse {
            topics: vec![
                OffsetCommitResponseTopic {
                    name: "a".into(),
                    partitions: vec![
                        OffsetCommitResponsePartition {
                            partition_index: 0,
                            error_code: 0,
                            ..Default::default()
                        },
                        OffsetCommitResponsePartition {
                            partition_index: 1,
                            error_code: code.0,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                OffsetCommitResponseTopic {
                    name: "b".into(),
                    partitions: vec![OffsetCommitResponsePartition {
                        partition_index: 0,
                        error_code: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn commit_errors_are_classified_as_java_does() {
        let o = offsets();
        assert_eq!(
            commit_outcome(&commit_resp(ErrorCode::NONE), &o),
            Outcome::Done(())
        );
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::NOT_COORDINATOR), &o),
            Outcome::Retry {
                coordinator: true,
                ..
            }
        ));
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS), &o),
            Outcome::Retry {
                coordinator: false,
                ..
            }
        ));
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::ILLEGAL_GENERATION), &o),
            Outcome::ResetGeneration(_)
        ));
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::REBALANCE_IN_PROGRESS), &o),
            Outcome::Rebalancing(_)
        ));
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::FENCED_INSTANCE_ID), &o),
            Outcome::Fenced(_)
        ));
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::OFFSET_METADATA_TOO_LARGE), &o),
            Outcome::Fail(ConsumerError::Group { .. })
        ));
        let mut partial = commit_resp(ErrorCode::NONE);
        partial.topics.pop();
        assert!(matches!(commit_outcome(&partial, &o), Outcome::Fail(_)));
    }

    #[test]
    fn fetch_maps_missing_and_negative_offsets_to_none() {
        let parts = vec![
            TopicPartition::new("a", 0),
            TopicPartition::new("a", 1),
            TopicPartition::new("b", 0),
        ];
        let req = fetch_request("g", &parts);
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
        let Outcome::Done(m) = fetch_outcome(&resp, &parts) else {
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
            fetch_outcome(&busy, &parts),
            Outcome::Retry {
                coordinator: false,
                ..
            }
        ));
    }
}

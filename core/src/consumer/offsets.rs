//! ListOffsets: the requests behind offset resets (`auto_offset_reset`, `seek_to_*`) and the
//! lookups `beginning_offsets`, `end_offsets` and `offsets_for_times`.
//!
//! Contract: a lookup names partitions and a timestamp each (-2 earliest, -1 latest, else
//! milliseconds); it is split into one request per partition leader. Answers are kept per
//! partition; partitions whose leader moved, is unknown or answered a retriable error are asked
//! again after `retry_backoff` (with a metadata refresh), until the lookup's deadline. A
//! non-retriable error fails the lookup. Version 0 (brokers before 0.10.1) answers with
//! `old_style_offsets`, which is read as the single offset asked for.

use std::collections::BTreeMap;
use std::time::Instant;

use super::error::ConsumerError;
use super::record::{OffsetAndTimestamp, TopicPartition};
use crate::network::{NodeId, RequestId};
use crate::protocol::list_offsets::request::{ListOffsetsPartition, ListOffsetsTopic};
use crate::protocol::{ErrorCode, ListOffsetsRequest, ListOffsetsResponse};
use crate::OpId;

/// Builds one ListOffsets request; `parts` maps each partition to (timestamp, current leader
/// epoch or -1).
pub(crate) fn build_request(
    parts: &BTreeMap<TopicPartition, (i64, i32)>,
    isolation_level: i8,
) -> ListOffsetsRequest {
    let mut topics: Vec<ListOffsetsTopic> = Vec::new();
    for (tp, &(timestamp, epoch)) in parts {
        let partition = ListOffsetsPartition {
            partition_index: tp.partition,
            current_leader_epoch: epoch,
            timestamp,
            max_num_offsets: 1,
            ..Default::default()
        };
        match topics.last_mut() {
            Some(t) if *t.name == *tp.topic => t.partitions.push(partition),
            _ => topics.push(ListOffsetsTopic {
                name: tp.topic.to_string(),
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    ListOffsetsRequest {
        replica_id: -1,
        isolation_level,
        topics,
        ..Default::default()
    }
}

/// The per-partition answers of a ListOffsets response (at `version`). An offset of -1 with
/// no error means "no such record" (a timestamp after the last record).
pub(crate) fn parse_response(
    resp: &ListOffsetsResponse,
    version: i16,
) -> Vec<(
    TopicPartition,
    Result<Option<OffsetAndTimestamp>, ErrorCode>,
)> {
    let mut out = Vec::new();
    for t in &resp.topics {
        let topic: std::sync::Arc<str> = t.name.as_str().into();
        for p in &t.partitions {
            let tp = TopicPartition::new(topic.clone(), p.partition_index);
            let code = p.error();
            if code.is_err() {
                out.push((tp, Err(code)));
                continue;
            }
            let (offset, timestamp) = if version == 0 {
                (p.old_style_offsets.first().copied().unwrap_or(-1), -1)
            } else {
                (p.offset, p.timestamp)
            };
            let answer = (offset >= 0).then_some(OffsetAndTimestamp {
                offset,
                timestamp,
                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
            });
            out.push((tp, Ok(answer)));
        }
    }
    out
}

/// Whether an error means "ask the (new) leader after a metadata refresh".
pub(crate) fn needs_metadata(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::FENCED_LEADER_EPOCH
            | ErrorCode::UNKNOWN_LEADER_EPOCH
            | ErrorCode::REPLICA_NOT_AVAILABLE
            | ErrorCode::KAFKA_STORAGE_ERROR
            | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            | ErrorCode::OFFSET_NOT_AVAILABLE
            | ErrorCode::UNKNOWN_TOPIC_ID
            | ErrorCode::INCONSISTENT_TOPIC_ID
    )
}

/// Partitions to ask each leader: timestamp and current leader epoch.
pub(crate) type ByLeader = BTreeMap<NodeId, BTreeMap<TopicPartition, (i64, i32)>>;

/// An application's lookup in progress.
#[derive(Debug)]
pub(crate) struct OffsetLookup {
    /// The application's op (the lookup's key is the core's own: ops may repeat).
    pub op: OpId,
    /// Partitions still to answer: timestamp, and the request asking for it, if any.
    pub pending: BTreeMap<TopicPartition, (i64, Option<RequestId>)>,
    pub results: BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>,
    pub deadline: Instant,
    pub retry_at: Option<Instant>,
    pub timeout: std::time::Duration,
}

impl OffsetLookup {
    pub fn new(
        op: OpId,
        query: BTreeMap<TopicPartition, i64>,
        deadline: Instant,
        timeout: std::time::Duration,
    ) -> Self {
        OffsetLookup {
            op,
            pending: query.into_iter().map(|(tp, ts)| (tp, (ts, None))).collect(),
            results: BTreeMap::new(),
            deadline,
            retry_at: None,
            timeout,
        }
    }

    /// Partitions ready to be asked, grouped by leader; those without a known leader stay
    /// pending (the caller refreshes metadata).
    pub fn due(
        &self,
        leader_of: impl Fn(&TopicPartition) -> Option<(NodeId, i32)>,
    ) -> (ByLeader, bool) {
        let mut by_node = ByLeader::new();
        let mut missing = false;
        for (tp, (ts, req)) in &self.pending {
            if req.is_some() {
                continue;
            }
            match leader_of(tp) {
                Some((node, epoch)) => {
                    by_node
                        .entry(node)
                        .or_default()
                        .insert(tp.clone(), (*ts, epoch));
                }
                None => missing = true,
            }
        }
        (by_node, missing)
    }

    /// Whether every partition is answered.
    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    /// Applies one answer; a fatal error fails the whole lookup.
    pub fn apply(
        &mut self,
        tp: TopicPartition,
        answer: Result<Option<OffsetAndTimestamp>, ErrorCode>,
        retry_at: Instant,
    ) -> Result<bool, ConsumerError> {
        if !self.pending.contains_key(&tp) {
            return Ok(false);
        }
        match answer {
            Ok(a) => {
                self.pending.remove(&tp);
                self.results.insert(tp, a);
                Ok(false)
            }
            Err(code) if needs_metadata(code) || code.is_retriable() => {
                if let Some(p) = self.pending.get_mut(&tp) {
                    p.1 = None;
                }
                self.retry_at = Some(retry_at);
                Ok(needs_metadata(code))
            }
            Err(code) => Err(ConsumerError::Partition {
                partition: tp,
                error: code,
            }),
        }
    }

    /// A request failed as a whole: its partitions are asked again after the backoff.
    pub fn request_failed(&mut self, id: RequestId, retry_at: Instant) {
        for p in self.pending.values_mut() {
            if p.1 == Some(id) {
                p.1 = None;
            }
        }
        self.retry_at = Some(retry_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::list_offsets::response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };

    #[test]
    fn requests_group_partitions_by_topic() {
        let mut parts = BTreeMap::new();
        parts.insert(TopicPartition::new("a", 0), (-2, 4));
        parts.insert(TopicPartition::new("a", 1), (-2, -1));
        parts.insert(TopicPartition::new("b", 0), (1234, 0));
        let req = build_request(&parts, 1);
        assert_eq!(req.topics.len(), 2);
        assert_eq!(req.topics[0].partitions.len(), 2);
        assert_eq!(req.topics[0].partitions[0].current_leader_epoch, 4);
        assert_eq!(req.topics[1].partitions[0].timestamp, 1234);
        assert_eq!(req.isolation_level, 1);
    }

    #[test]
    fn responses_of_every_version_parse() {
        let resp = ListOffsetsResponse {
            topics: vec![ListOffsetsTopicResponse {
                name: "a".into(),
                partitions: vec![
                    ListOffsetsPartitionResponse {
                        partition_index: 0,
                        offset: 17,
                        timestamp: 99,
                        leader_epoch: 2,
                        old_style_offsets: vec![5],
                        ..Default::default()
                    },
                    ListOffsetsPartitionResponse {
                        partition_index: 1,
                        error_code: 6,
                        ..Default::default()
                    },
                    ListOffsetsPartitionResponse {
                        partition_index: 2,
                        offset: -1,
                        leader_epoch: -1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let v1 = parse_response(&resp, 1);
        assert_eq!(v1[0].1.unwrap().unwrap().offset, 17);
        assert_eq!(v1[0].1.unwrap().unwrap().leader_epoch, Some(2));
        assert_eq!(v1[1].1, Err(ErrorCode::NOT_LEADER_OR_FOLLOWER));
        assert_eq!(v1[2].1, Ok(None));
        let v0 = parse_response(&resp, 0);
        assert_eq!(v0[0].1.unwrap().unwrap().offset, 5);
    }

    #[test]
    fn lookups_retry_leader_errors_and_fail_on_fatal_ones() {
        let now = Instant::now();
        let t0 = TopicPartition::new("a", 0);
        let t1 = TopicPartition::new("a", 1);
        let mut q = BTreeMap::new();
        q.insert(t0.clone(), -1);
        q.insert(t1.clone(), -1);
        let mut l = OffsetLookup::new(crate::OpId(1), q, now, std::time::Duration::from_secs(1));
        let (due, missing) = l.due(|tp| (tp.partition == 0).then_some((1, 0)));
        assert!(missing);
        assert_eq!(due[&1].len(), 1);
        assert_eq!(
            l.apply(t0.clone(), Err(ErrorCode::NOT_LEADER_OR_FOLLOWER), now),
            Ok(true)
        );
        assert!(!l.is_done());
        l.apply(t0.clone(), Ok(None), now).unwrap();
        assert!(l
            .apply(t1, Err(ErrorCode::TOPIC_AUTHORIZATION_FAILED), now)
            .is_err());
        assert_eq!(l.results[&t0], None);
    }
}

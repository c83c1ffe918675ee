//! OffsetCommit, OffsetFetch and OffsetDelete (Kafka's `handleCommitOffsets`,
//! `handleFetchOffsets` and `handleDeleteOffsets`, with the topic checks of `KafkaApis`).

use std::time::Instant;

use kafkit_core::protocol::offset_commit::response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafkit_core::protocol::offset_delete::response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafkit_core::protocol::offset_fetch::response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafkit_core::protocol::{
    ErrorCode, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, ResponseBody,
};

use super::rebalance::schedule_heartbeat;
use super::state::{Group, GroupState, CONSUMER_PROTOCOL_TYPE};
use super::{GroupCoordinator, TopicView, OFFSET_METADATA_MAX_BYTES};

/// An offset a group committed for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The committed offset.
    pub offset: i64,
    /// The leader epoch the client saw at that offset (-1 if not given).
    pub leader_epoch: i32,
    /// The client's metadata string (`""` if it sent none).
    pub metadata: String,
    /// When the coordinator stored the commit.
    pub committed_at: Instant,
    /// The commit timestamp an OffsetCommit v1 carried (-1 otherwise).
    pub commit_timestamp_ms: i64,
}

/// One partition of a fetch answer: offset -1 and metadata `""` when nothing is committed.
struct Fetched {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
}

impl Fetched {
    fn of(group: Option<&Group>, topic: &str, partition: i32) -> Self {
        match group.and_then(|g| g.offsets.get(&(topic.to_string(), partition))) {
            Some(c) => Fetched {
                partition,
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                metadata: c.metadata.clone(),
            },
            None => Fetched {
                partition,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
            },
        }
    }
}

impl GroupCoordinator {
    /// OffsetCommit: always answered at once.
    pub(super) fn offset_commit(
        &mut self,
        version: i16,
        req: OffsetCommitRequest,
        topics: &dyn TopicView,
        now: Instant,
    ) -> ResponseBody {
        // Version 0 has neither generation nor member: a simple commit.
        let (generation, member_id) = if version >= 1 {
            (req.generation_id_or_member_epoch, req.member_id.as_str())
        } else {
            (-1, "")
        };
        let instance_id = req.group_instance_id.as_deref().filter(|_| version >= 7);
        let any_known = req.topics.iter().any(|t| {
            t.partitions
                .iter()
                .any(|p| topics.partition_exists(&t.name, p.partition_index))
        });
        // Partitions of unknown topics never reach the coordinator; the group is looked at
        // only if some partition does.
        let group_error = if any_known {
            self.validate_commit(&req.group_id, generation, member_id, instance_id, now)
        } else {
            None
        };
        let mut response_topics = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let error = if !topics.partition_exists(&t.name, p.partition_index) {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                } else if let Some(e) = group_error {
                    e
                } else if p
                    .committed_metadata
                    .as_ref()
                    .is_some_and(|m| m.len() > OFFSET_METADATA_MAX_BYTES)
                {
                    ErrorCode::OFFSET_METADATA_TOO_LARGE
                } else {
                    self.store_offset(&req.group_id, &t.name, version, p, now);
                    ErrorCode::NONE
                };
                partitions.push(OffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: error.code(),
                    ..Default::default()
                });
            }
            response_topics.push(OffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            });
        }
        ResponseBody::OffsetCommit(OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: response_topics,
            ..Default::default()
        })
    }

    /// Kafka's `handleCommitOffsets` up to storing: creates the group for a simple commit,
    /// checks generation and member, and restarts the committer's session. `None` if the
    /// commit may go ahead.
    fn validate_commit(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Option<ErrorCode> {
        if !self.groups.contains_key(group_id) {
            if generation >= 0 {
                // A member of a generation this coordinator never saw.
                return Some(ErrorCode::ILLEGAL_GENERATION);
            }
            // A group that does not use Kafka for membership.
            self.groups
                .insert(group_id.to_string(), Group::new(group_id));
        }
        let group = self.groups.get_mut(group_id)?;
        if group.state == GroupState::Dead {
            return Some(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        if generation < 0 && group.state == GroupState::Empty {
            // An admin client or a consumer without group management: fine for an empty group.
        } else if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if let Some(e) = group.validate_current_member(member_id, instance_id) {
                return Some(e);
            }
            if generation != group.generation {
                return Some(ErrorCode::ILLEGAL_GENERATION);
            }
        } else if group.state != GroupState::Empty {
            // Only members may commit for a group with members.
            return Some(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        match group.state {
            GroupState::Empty => None,
            GroupState::Stable | GroupState::PreparingRebalance => {
                // Commits are allowed while preparing: the heartbeat tells of the rebalance.
                if let Some(m) = group.member_mut(member_id) {
                    schedule_heartbeat(m, now);
                }
                None
            }
            GroupState::CompletingRebalance => Some(ErrorCode::REBALANCE_IN_PROGRESS),
            GroupState::Dead => Some(ErrorCode::COORDINATOR_NOT_AVAILABLE),
        }
    }

    /// TxnOffsetCommit's group checks (Kafka's `doTxnCommitOffsets`, KIP-447): a consumer
    /// without group management (generation < 0) may commit for an empty or unknown group;
    /// otherwise the member must belong to the group (a static one with its instance id)
    /// in the generation given.
    pub(crate) fn validate_txn_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        let Some(group) = self.groups.get(group_id) else {
            return if generation < 0 {
                Ok(())
            } else {
                Err(ErrorCode::ILLEGAL_GENERATION)
            };
        };
        if group.state == GroupState::Dead {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        if generation < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if let Some(e) = group.validate_current_member(member_id, instance_id) {
            return Err(e);
        }
        if generation != group.generation {
            return Err(ErrorCode::ILLEGAL_GENERATION);
        }
        Ok(())
    }

    /// Makes a committed transaction's offsets the group's committed offsets (creating the
    /// group, empty, if it has none yet).
    pub(crate) fn commit_txn_offsets(
        &mut self,
        group_id: &str,
        offsets: std::collections::BTreeMap<(String, i32), CommittedOffset>,
    ) {
        let group = self
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        group.offsets.extend(offsets);
    }

    fn store_offset(
        &mut self,
        group_id: &str,
        topic: &str,
        version: i16,
        p: &kafkit_core::protocol::offset_commit::request::OffsetCommitRequestPartition,
        now: Instant,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.offsets.insert(
            (topic.to_string(), p.partition_index),
            CommittedOffset {
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.clone().unwrap_or_default(),
                committed_at: now,
                commit_timestamp_ms: if version == 1 { p.commit_timestamp } else { -1 },
            },
        );
    }

    /// OffsetFetch: one group before v8, several from v8. Offsets are returned whatever the
    /// group's state (it may not use Kafka for membership).
    pub(super) fn offset_fetch(&self, version: i16, req: OffsetFetchRequest) -> ResponseBody {
        if version >= 8 {
            let groups = req
                .groups
                .iter()
                .map(|g| {
                    let asked = g.topics.as_ref().map(|ts| {
                        ts.iter()
                            .map(|t| (t.name.as_str(), t.partition_indexes.as_slice()))
                            .collect::<Vec<_>>()
                    });
                    let topics = self
                        .fetch(&g.group_id, asked)
                        .into_iter()
                        .map(|(name, parts)| OffsetFetchResponseTopics {
                            name,
                            partitions: parts
                                .into_iter()
                                .map(|f| OffsetFetchResponsePartitions {
                                    partition_index: f.partition,
                                    committed_offset: f.offset,
                                    committed_leader_epoch: f.leader_epoch,
                                    metadata: Some(f.metadata),
                                    error_code: 0,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect();
                    OffsetFetchResponseGroup {
                        group_id: g.group_id.clone(),
                        topics,
                        error_code: 0,
                        ..Default::default()
                    }
                })
                .collect();
            return ResponseBody::OffsetFetch(OffsetFetchResponse {
                throttle_time_ms: 0,
                groups,
                ..Default::default()
            });
        }
        let asked = req.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.as_str(), t.partition_indexes.as_slice()))
                .collect::<Vec<_>>()
        });
        let topics = self
            .fetch(&req.group_id, asked)
            .into_iter()
            .map(|(name, parts)| OffsetFetchResponseTopic {
                name,
                partitions: parts
                    .into_iter()
                    .map(|f| OffsetFetchResponsePartition {
                        partition_index: f.partition,
                        committed_offset: f.offset,
                        committed_leader_epoch: if version >= 5 { f.leader_epoch } else { -1 },
                        metadata: Some(f.metadata),
                        error_code: 0,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        ResponseBody::OffsetFetch(OffsetFetchResponse {
            throttle_time_ms: 0,
            topics,
            error_code: 0,
            ..Default::default()
        })
    }

    /// The offsets of group `group_id`: of the partitions asked for, in the order asked, or
    /// (`None`) all the group committed, sorted by topic and partition.
    fn fetch(
        &self,
        group_id: &str,
        asked: Option<Vec<(&str, &[i32])>>,
    ) -> Vec<(String, Vec<Fetched>)> {
        let group = self
            .groups
            .get(group_id)
            .filter(|g| g.state != GroupState::Dead);
        match asked {
            Some(asked) => asked
                .into_iter()
                .map(|(topic, parts)| {
                    let fetched = parts
                        .iter()
                        .map(|&p| Fetched::of(group, topic, p))
                        .collect();
                    (topic.to_string(), fetched)
                })
                .collect(),
            None => {
                let mut out: Vec<(String, Vec<Fetched>)> = Vec::new();
                for (topic, partition) in group.iter().flat_map(|g| g.offsets.keys()) {
                    let fetched = Fetched::of(group, topic, *partition);
                    match out.last_mut() {
                        Some((t, parts)) if t == topic => parts.push(fetched),
                        _ => out.push((topic.clone(), vec![fetched])),
                    }
                }
                out
            }
        }
    }

    /// OffsetDelete: always answered at once.
    pub(super) fn offset_delete(
        &mut self,
        _version: i16,
        req: OffsetDeleteRequest,
        topics: &dyn TopicView,
    ) -> ResponseBody {
        let error_response = |e: ErrorCode| {
            ResponseBody::OffsetDelete(OffsetDeleteResponse {
                error_code: e.code(),
                throttle_time_ms: 0,
                ..Default::default()
            })
        };
        if req.group_id.is_empty() {
            return error_response(ErrorCode::INVALID_GROUP_ID);
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return error_response(ErrorCode::GROUP_ID_NOT_FOUND);
        };
        let consumer_group = group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE);
        match group.state {
            GroupState::Dead => return error_response(ErrorCode::GROUP_ID_NOT_FOUND),
            GroupState::Empty => {}
            _ if consumer_group => {}
            _ => return error_response(ErrorCode::NON_EMPTY_GROUP),
        }
        let mut deleted_any = false;
        let mut response_topics = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let index = p.partition_index;
                let error = if !topics.partition_exists(&t.name, index) {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                } else if group.state != GroupState::Empty && group.is_subscribed_to_topic(&t.name)
                {
                    ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
                } else {
                    group.offsets.remove(&(t.name.clone(), index));
                    deleted_any = true;
                    ErrorCode::NONE
                };
                partitions.push(OffsetDeleteResponsePartition {
                    partition_index: index,
                    error_code: error.code(),
                    ..Default::default()
                });
            }
            response_topics.push(OffsetDeleteResponseTopic {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            });
        }
        // Like Kafka's offset cleanup: an empty group left without offsets is gone.
        if deleted_any && group.state == GroupState::Empty && group.offsets.is_empty() {
            self.groups.remove(&req.group_id);
        }
        ResponseBody::OffsetDelete(OffsetDeleteResponse {
            error_code: 0,
            throttle_time_ms: 0,
            topics: response_topics,
            ..Default::default()
        })
    }
}

//! TxnOffsetCommit (served by the group's coordinator): offsets held with the transaction and
//! made the group's committed offsets only when it commits; and the `require_stable` check of
//! OffsetFetch, which answers `UNSTABLE_OFFSET_COMMIT` for a partition whose offset is pending
//! in an open transaction.

use std::collections::BTreeSet;

use kafkit_core::protocol::txn_offset_commit::response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafkit_core::protocol::{
    ErrorCode, OffsetFetchResponse, ResponseBody, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use super::TxnState;
use crate::cluster::group::CommittedOffset;
use crate::cluster::{Cluster, Ctx, Outcome};

/// The first TxnOffsetCommit version that adds its group to the transaction (KIP-890).
const IMPLICIT_ADD_VERSION: i16 = 5;

/// Kafka's `offset.metadata.max.bytes` default.
const OFFSET_METADATA_MAX_BYTES: usize = 4096;

impl Cluster {
    pub(in crate::cluster) fn handle_txn_offset_commit(
        &mut self,
        ctx: &Ctx,
        req: TxnOffsetCommitRequest,
    ) -> Outcome {
        let group_error = self.check_txn_offset_commit(ctx, &req).err();
        let mut topics = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let exists = self
                    .topics
                    .get(&t.name)
                    .is_some_and(|x| x.partition(p.partition_index).is_some());
                let code = if !exists {
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
                    let offset = CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if ctx.version >= 2 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: p.committed_metadata.clone().unwrap_or_default(),
                        committed_at: ctx.now,
                        commit_timestamp_ms: -1,
                    };
                    if let Some(txn) = self.txns.txns.get_mut(&req.transactional_id) {
                        txn.pending_offsets
                            .entry(req.group_id.clone())
                            .or_default()
                            .insert((t.name.clone(), p.partition_index), offset);
                    }
                    ErrorCode::NONE
                };
                partitions.push(TxnOffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: code.code(),
                    ..Default::default()
                });
            }
            topics.push(TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            });
        }
        Outcome::Reply(ResponseBody::TxnOffsetCommit(TxnOffsetCommitResponse {
            topics,
            ..Default::default()
        }))
    }

    /// The checks before storing: coordinator, the transaction (producer, epoch, and the
    /// group added with AddOffsetsToTxn: Kafka's verification; a v5 request, transaction
    /// protocol v2, adds the group itself), then KIP-447's member and generation.
    fn check_txn_offset_commit(
        &mut self,
        ctx: &Ctx,
        req: &TxnOffsetCommitRequest,
    ) -> Result<(), ErrorCode> {
        if self.coordinator_for(&req.group_id) != ctx.broker {
            return Err(ErrorCode::NOT_COORDINATOR);
        }
        let now_ms = self.wall_ms(ctx.now);
        let t = self
            .txns
            .txns
            .get_mut(&req.transactional_id)
            .ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
        if req.producer_id != t.producer_id {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        if req.producer_epoch != t.producer_epoch {
            return Err(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        if ctx.version >= IMPLICIT_ADD_VERSION && !t.groups.contains(&req.group_id) {
            if t.state.is_prepare() {
                return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
            }
            Self::open_txn(t, ctx.now, now_ms);
            t.groups.insert(req.group_id.clone());
        }
        if t.state != TxnState::Ongoing || !t.groups.contains(&req.group_id) {
            return Err(ErrorCode::INVALID_TXN_STATE);
        }
        if ctx.version >= 3 {
            self.groups.validate_txn_commit(
                &req.group_id,
                req.generation_id,
                &req.member_id,
                req.group_instance_id.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Partitions of `group` with an offset pending in an open transaction.
    fn unstable_offsets(&self, group: &str) -> BTreeSet<(String, i32)> {
        self.txns
            .txns
            .values()
            .filter(|t| t.state == TxnState::Ongoing)
            .filter_map(|t| t.pending_offsets.get(group))
            .flat_map(|offsets| offsets.keys().cloned())
            .collect()
    }

    /// OffsetFetch with `require_stable` (v7+): `UNSTABLE_OFFSET_COMMIT` (and offset -1) for
    /// each partition whose offset is pending in an open transaction. `group` is the group
    /// of a v7 request (v8+ responses name theirs).
    pub(in crate::cluster) fn mark_unstable_offsets(
        &self,
        version: i16,
        group: &str,
        resp: &mut OffsetFetchResponse,
    ) {
        let unstable = ErrorCode::UNSTABLE_OFFSET_COMMIT.code();
        if version >= 8 {
            for g in resp.groups.iter_mut().filter(|g| g.error_code == 0) {
                let pending = self.unstable_offsets(&g.group_id);
                for t in &mut g.topics {
                    for p in &mut t.partitions {
                        if pending.contains(&(t.name.clone(), p.partition_index)) {
                            p.error_code = unstable;
                            p.committed_offset = -1;
                        }
                    }
                }
            }
        } else if version == 7 && resp.error_code == 0 {
            let pending = self.unstable_offsets(group);
            for t in &mut resp.topics {
                for p in &mut t.partitions {
                    if pending.contains(&(t.name.clone(), p.partition_index)) {
                        p.error_code = unstable;
                        p.committed_offset = -1;
                    }
                }
            }
        }
    }
}

//! ListOffsets, DeleteRecords and OffsetForLeaderEpoch.

use kafkit_core::protocol::delete_records::response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafkit_core::protocol::list_offsets::response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafkit_core::protocol::offset_for_leader_epoch::response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafkit_core::protocol::{
    DeleteRecordsRequest, DeleteRecordsResponse, ErrorCode, ListOffsetsRequest,
    ListOffsetsResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ResponseBody,
};

use super::log::PartitionLog;
use super::{Cluster, Ctx, Outcome};

/// `ListOffsets` special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

impl Cluster {
    /// The partition if `broker` leads it, else the error to answer with.
    pub(super) fn led_partition(
        &self,
        broker: i32,
        topic: &str,
        partition: i32,
    ) -> Result<&PartitionLog, ErrorCode> {
        let p = self
            .partition(topic, partition)
            .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        if p.leader != broker {
            return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        }
        Ok(p)
    }

    /// Checks a request's `current_leader_epoch` (-1: no check).
    pub(super) fn check_leader_epoch(p: &PartitionLog, current: i32) -> Result<(), ErrorCode> {
        if current < 0 || current == p.leader_epoch {
            Ok(())
        } else if current < p.leader_epoch {
            Err(ErrorCode::FENCED_LEADER_EPOCH)
        } else {
            Err(ErrorCode::UNKNOWN_LEADER_EPOCH)
        }
    }

    pub(super) fn handle_list_offsets(&mut self, ctx: &Ctx, req: ListOffsetsRequest) -> Outcome {
        let v = ctx.version;
        let committed = v >= 2 && req.isolation_level == 1;
        let mut topics = Vec::new();
        for t in req.topics {
            let mut partitions = Vec::new();
            for p in t.partitions {
                let mut r = ListOffsetsPartitionResponse {
                    partition_index: p.partition_index,
                    ..Default::default()
                };
                let found = self
                    .led_partition(ctx.broker, &t.name, p.partition_index)
                    .and_then(|log| {
                        Self::check_leader_epoch(log, p.current_leader_epoch)?;
                        let limit = if committed {
                            log.last_stable_offset()
                        } else {
                            log.high_watermark()
                        };
                        Ok(match p.timestamp {
                            LATEST => Some((limit, -1, log.leader_epoch)),
                            EARLIEST | EARLIEST_LOCAL => {
                                Some((log.log_start_offset(), -1, log.leader_epoch))
                            }
                            LATEST_TIERED => Some((-1, -1, -1)),
                            MAX_TIMESTAMP => log.max_timestamp_offset(limit),
                            ts if ts >= 0 => log.offset_for_timestamp(ts, limit),
                            _ => None,
                        })
                    });
                match found {
                    Err(code) => r.error_code = code.code(),
                    Ok(hit) => {
                        let (offset, timestamp, epoch) = hit.unwrap_or((-1, -1, -1));
                        if v == 0 {
                            if offset >= 0 {
                                r.old_style_offsets = vec![offset];
                            }
                        } else {
                            r.offset = offset;
                            r.timestamp = timestamp;
                            if v >= 4 {
                                r.leader_epoch = epoch;
                            }
                        }
                    }
                }
                partitions.push(r);
            }
            topics.push(ListOffsetsTopicResponse {
                name: t.name,
                partitions,
                ..Default::default()
            });
        }
        Outcome::Reply(ResponseBody::ListOffsets(ListOffsetsResponse {
            topics,
            ..Default::default()
        }))
    }

    pub(super) fn handle_delete_records(
        &mut self,
        ctx: &Ctx,
        req: DeleteRecordsRequest,
    ) -> Outcome {
        let mut topics = Vec::new();
        for t in req.topics {
            let mut partitions = Vec::new();
            for p in t.partitions {
                let mut r = DeleteRecordsPartitionResult {
                    partition_index: p.partition_index,
                    low_watermark: -1,
                    ..Default::default()
                };
                let checked = self
                    .led_partition(ctx.broker, &t.name, p.partition_index)
                    .and_then(|log| {
                        let hw = log.high_watermark();
                        let target = if p.offset == -1 { hw } else { p.offset };
                        if target < 0 || target > hw {
                            Err(ErrorCode::OFFSET_OUT_OF_RANGE)
                        } else {
                            Ok(target)
                        }
                    });
                match checked {
                    Err(code) => r.error_code = code.code(),
                    Ok(target) => {
                        if let Some(log) = self
                            .topics
                            .get_mut(&t.name)
                            .and_then(|x| x.partition_mut(p.partition_index))
                        {
                            log.delete_records(target);
                            r.low_watermark = log.log_start_offset();
                        }
                        self.wake_all();
                    }
                }
                partitions.push(r);
            }
            topics.push(DeleteRecordsTopicResult {
                name: t.name,
                partitions,
                ..Default::default()
            });
        }
        Outcome::Reply(ResponseBody::DeleteRecords(DeleteRecordsResponse {
            topics,
            ..Default::default()
        }))
    }

    pub(super) fn handle_offset_for_leader_epoch(
        &mut self,
        ctx: &Ctx,
        req: OffsetForLeaderEpochRequest,
    ) -> Outcome {
        let mut topics = Vec::new();
        for t in req.topics {
            let mut partitions = Vec::new();
            for p in t.partitions {
                let mut r = EpochEndOffset {
                    partition: p.partition,
                    ..Default::default()
                };
                let found = self
                    .led_partition(ctx.broker, &t.topic, p.partition)
                    .and_then(|log| {
                        Self::check_leader_epoch(log, p.current_leader_epoch)?;
                        Ok(if p.leader_epoch > log.leader_epoch {
                            (-1, -1)
                        } else {
                            log.epoch_end_offset(p.leader_epoch)
                        })
                    });
                match found {
                    Err(code) => r.error_code = code.code(),
                    Ok((epoch, end)) => {
                        r.leader_epoch = epoch;
                        r.end_offset = end;
                    }
                }
                partitions.push(r);
            }
            topics.push(OffsetForLeaderTopicResult {
                topic: t.topic,
                partitions,
                ..Default::default()
            });
        }
        Outcome::Reply(ResponseBody::OffsetForLeaderEpoch(
            OffsetForLeaderEpochResponse {
                topics,
                ..Default::default()
            },
        ))
    }
}

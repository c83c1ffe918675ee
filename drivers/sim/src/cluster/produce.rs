//! Produce: validation, idempotent dedupe, transactional verification (`txn/verify.rs`),
//! acks.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::codec::DecodeError;
use kafkit_core::compression::Compression;
use kafkit_core::protocol::produce::response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafkit_core::protocol::{
    ErrorCode, ProduceRequest, ProduceResponse, RequestHeader, ResponseBody,
};
use kafkit_core::records::{
    Batch, BatchHeader, DecodeOptions, LegacyMessageSetBuilder, RecordBatch, RecordSet,
    LOG_OVERHEAD, MAGIC_V2,
};

use super::log::SequenceCheck;
use super::{Cluster, Ctx, Outcome, Waiting};

/// An `acks=all` produce waiting for its batches to reach the whole ISR.
pub(super) struct ProduceWait {
    pub(super) deadline: Instant,
    /// The broker that appended (and must still lead).
    broker: i32,
    header: RequestHeader,
    response: ProduceResponse,
    /// (topic index, partition index in the response, topic, partition, offset the high
    /// watermark must reach).
    awaiting: Vec<(usize, usize, String, i32, i64)>,
}

/// Why a partition's records were refused.
struct Refused(ErrorCode, String);

impl From<DecodeError> for Refused {
    fn from(e: DecodeError) -> Self {
        let code = match e {
            DecodeError::CrcMismatch { .. } => ErrorCode::CORRUPT_MESSAGE,
            _ => ErrorCode::CORRUPT_MESSAGE,
        };
        Refused(code, e.to_string())
    }
}

/// Validates the records of one partition: exactly one magic 2 batch with a good CRC whose
/// records decode, with consecutive offset deltas matching the record count.
fn validate_batch(data: &Bytes, max_message_bytes: i64) -> Result<BatchHeader, Refused> {
    if data.len() < LOG_OVERHEAD + 5 {
        return Err(Refused(
            ErrorCode::CORRUPT_MESSAGE,
            "record set is shorter than a batch header".into(),
        ));
    }
    let magic = data[16] as i8;
    if magic != MAGIC_V2 {
        return Err(Refused(
            ErrorCode::INVALID_RECORD,
            format!("Produce requests with version 3 and above must use magic 2, not {magic}"),
        ));
    }
    let len = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
    let size = usize::try_from(len)
        .unwrap_or(0)
        .saturating_add(LOG_OVERHEAD);
    if len < 0 || size > data.len() {
        return Err(Refused(
            ErrorCode::CORRUPT_MESSAGE,
            "record batch is truncated".into(),
        ));
    }
    if size < data.len() {
        return Err(Refused(
            ErrorCode::INVALID_RECORD,
            "Produce requests with version 3 and above must have exactly one record batch per \
             partition"
                .into(),
        ));
    }
    if data.len() as i64 > max_message_bytes {
        return Err(Refused(
            ErrorCode::MESSAGE_TOO_LARGE,
            format!(
                "The record batch is {} bytes, larger than max.message.bytes {max_message_bytes}",
                data.len()
            ),
        ));
    }
    let opts = DecodeOptions {
        check_crcs: true,
        max_decompressed_size: 64 << 20,
        ..DecodeOptions::default()
    };
    let batch = RecordBatch::decode(data.clone(), &opts)?;
    let h = *batch.header();
    if batch.is_control() {
        return Err(Refused(
            ErrorCode::INVALID_RECORD,
            "Clients are not allowed to write control records".into(),
        ));
    }
    if h.record_count <= 0 {
        return Err(Refused(
            ErrorCode::INVALID_RECORD,
            "the record batch has no records".into(),
        ));
    }
    if h.last_offset_delta != h.record_count - 1 {
        return Err(Refused(
            ErrorCode::INVALID_RECORD,
            format!(
                "last offset delta {} does not match the record count {}",
                h.last_offset_delta, h.record_count
            ),
        ));
    }
    let mut expected = h.base_offset;
    for r in batch.records() {
        let r = r?;
        if r.offset != expected {
            return Err(Refused(
                ErrorCode::INVALID_RECORD,
                "Inner record offsets are not consecutive".into(),
            ));
        }
        expected += 1;
    }
    if expected - h.base_offset != h.record_count as i64 {
        return Err(Refused(
            ErrorCode::INVALID_RECORD,
            "the record count does not match the records".into(),
        ));
    }
    Ok(h)
}

/// A magic 0/1 message set (Produce v0-2) rebuilt with offsets from `base`, as a broker that
/// converts message formats does: `(bytes, record count, max timestamp)`. All messages must
/// share one magic; the set keeps the first message's codec.
fn rebuild_legacy(
    data: &Bytes,
    base: i64,
    max_message_bytes: i64,
    log_append_time: Option<i64>,
) -> Result<(Bytes, i64, i64), Refused> {
    let opts = DecodeOptions {
        check_crcs: true,
        max_decompressed_size: 64 << 20,
        ..DecodeOptions::default()
    };
    let mut set = RecordSet::new(data.clone(), opts);
    let mut format: Option<(i8, Compression)> = None;
    let mut records = Vec::new();
    for batch in set.by_ref() {
        let Batch::Legacy(m) = batch? else {
            return Err(Refused(
                ErrorCode::INVALID_RECORD,
                "Produce requests with version 2 and below may only hold magic 0 or 1 messages"
                    .into(),
            ));
        };
        if m.raw().len() as i64 > max_message_bytes {
            return Err(Refused(
                ErrorCode::MESSAGE_TOO_LARGE,
                format!("a message is larger than max.message.bytes {max_message_bytes}"),
            ));
        }
        match format {
            None => format = Some((m.magic(), m.compression())),
            Some((magic, _)) if magic != m.magic() => {
                return Err(Refused(
                    ErrorCode::INVALID_RECORD,
                    "messages of different magic in one set".into(),
                ))
            }
            Some(_) => {}
        }
        records.extend(m.into_records());
    }
    if set.partial_tail() != 0 {
        return Err(Refused(
            ErrorCode::CORRUPT_MESSAGE,
            "the message set ends in a truncated message".into(),
        ));
    }
    let Some((magic, codec)) = format.filter(|_| !records.is_empty()) else {
        return Err(Refused(
            ErrorCode::INVALID_RECORD,
            "the message set is empty".into(),
        ));
    };
    let encode_err = |e: kafkit_core::codec::EncodeError| {
        Refused(
            ErrorCode::CORRUPT_MESSAGE,
            format!("cannot rebuild the messages: {e}"),
        )
    };
    let mut b = LegacyMessageSetBuilder::new(magic, codec)
        .map_err(encode_err)?
        .base_offset(base);
    let mut max_ts = -1;
    for r in &records {
        let ts = log_append_time.unwrap_or(r.timestamp);
        max_ts = max_ts.max(ts);
        b.append(ts, r.key.as_deref(), r.value.as_deref())
            .map_err(encode_err)?;
    }
    let bytes = b.finish().map_err(encode_err)?;
    Ok((bytes, records.len() as i64, max_ts))
}

impl Cluster {
    #[allow(clippy::too_many_arguments)]
    fn produce_partition(
        &mut self,
        ctx: &Ctx,
        transactional_id: Option<&str>,
        topic: &str,
        index: i32,
        records: Option<Bytes>,
        acks: i16,
    ) -> (PartitionProduceResponse, Option<i64>) {
        let mut resp = PartitionProduceResponse {
            index,
            base_offset: -1,
            ..Default::default()
        };
        let fail = |mut resp: PartitionProduceResponse, code: ErrorCode, msg: Option<String>| {
            resp.error_code = code.code();
            if ctx.version >= 8 {
                resp.error_message = msg;
            }
            (resp, None)
        };
        let now_ms = self.wall_ms(ctx.now);
        let Some(t) = self.topics.get(topic) else {
            return fail(resp, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None);
        };
        let max_message_bytes = t.config_i64("max.message.bytes");
        let min_isr = t.config_i64("min.insync.replicas");
        let log_append_time = t.log_append_time().then_some(now_ms);
        let Some(p) = t.partition(index) else {
            return fail(resp, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None);
        };
        if p.leader != ctx.broker {
            if ctx.version >= 10 {
                resp.current_leader = LeaderIdAndEpoch {
                    leader_id: p.leader,
                    leader_epoch: p.leader_epoch,
                    ..Default::default()
                };
            }
            return fail(resp, ErrorCode::NOT_LEADER_OR_FOLLOWER, None);
        }
        if acks == -1 && (p.isr.len() as i64) < min_isr {
            return fail(
                resp,
                ErrorCode::NOT_ENOUGH_REPLICAS,
                Some(format!(
                    "The size of the current ISR {} is insufficient to satisfy the min.isr \
                     requirement of {min_isr}",
                    p.isr.len()
                )),
            );
        }
        let Some(data) = records else {
            return fail(
                resp,
                ErrorCode::CORRUPT_MESSAGE,
                Some("null records".into()),
            );
        };
        if ctx.version < 3 {
            let built = rebuild_legacy(
                &data,
                p.log_end_offset(),
                max_message_bytes,
                log_append_time,
            );
            let (bytes, count, max_ts) = match built {
                Ok(x) => x,
                Err(Refused(code, msg)) => return fail(resp, code, Some(msg)),
            };
            let Some(p) = self
                .topics
                .get_mut(topic)
                .and_then(|t| t.partition_mut(index))
            else {
                return fail(resp, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None);
            };
            let base = p.append_legacy(bytes, count, max_ts);
            return self.after_partition_append(
                ctx,
                topic,
                index,
                base,
                acks,
                resp,
                log_append_time,
            );
        }
        let h = match validate_batch(&data, max_message_bytes) {
            Ok(h) => h,
            Err(Refused(code, msg)) => return fail(resp, code, Some(msg)),
        };
        if h.attributes.is_transactional() {
            if let Err((code, msg)) =
                self.verify_txn_produce(ctx, transactional_id, &h, topic, index)
            {
                return fail(resp, code, Some(msg));
            }
        }
        let Some(p) = self.topics.get(topic).and_then(|t| t.partition(index)) else {
            return fail(resp, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None);
        };
        match p.check_sequence(&h) {
            Err(code) => return fail(resp, code, None),
            Ok(SequenceCheck::Duplicate(base)) => {
                resp.base_offset = base;
                resp.log_start_offset = p.log_start_offset();
                return fail(resp, ErrorCode::DUPLICATE_SEQUENCE_NUMBER, None);
            }
            Ok(SequenceCheck::Append) => {}
        }
        let Some(p) = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partition_mut(index))
        else {
            return fail(resp, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None);
        };
        let base = p.append(data.to_vec(), &h, log_append_time);
        self.after_partition_append(ctx, topic, index, base, acks, resp, log_append_time)
    }

    /// Replication, retention and the response after an append at `base`.
    #[allow(clippy::too_many_arguments)]
    fn after_partition_append(
        &mut self,
        ctx: &Ctx,
        topic: &str,
        index: i32,
        base: i64,
        acks: i16,
        mut resp: PartitionProduceResponse,
        log_append_time: Option<i64>,
    ) -> (PartitionProduceResponse, Option<i64>) {
        let Some(t) = self.topics.get(topic) else {
            return (resp, None);
        };
        let topic_retention = t.config_i64("retention.bytes");
        let leo = t.partition(index).map_or(base, |p| p.log_end_offset());
        self.after_append(topic, index, leo, ctx.now);
        let cap = if topic_retention > 0 {
            self.config.retention_bytes.min(topic_retention as u64)
        } else {
            self.config.retention_bytes
        };
        let p = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partition_mut(index));
        if let Some(p) = p {
            p.enforce_retention(cap);
            resp.log_start_offset = p.log_start_offset();
        }
        resp.base_offset = base;
        resp.log_append_time_ms = log_append_time.unwrap_or(-1);
        (resp, (acks == -1).then_some(leo))
    }

    pub(super) fn handle_produce(&mut self, ctx: &Ctx, req: ProduceRequest) -> Outcome {
        let acks = req.acks;
        let transactional_id = req.transactional_id.clone();
        let valid_acks = matches!(acks, -1..=1);
        let mut response = ProduceResponse::default();
        let mut awaiting = Vec::new();
        let mut any_error = false;
        let mut leaders = Vec::new();
        for (ti, topic) in req.topic_data.into_iter().enumerate() {
            let mut partitions = Vec::new();
            for (pi, pd) in topic.partition_data.into_iter().enumerate() {
                let (resp, wait) = if valid_acks {
                    self.produce_partition(
                        ctx,
                        transactional_id.as_deref(),
                        &topic.name,
                        pd.index,
                        pd.records,
                        acks,
                    )
                } else {
                    (
                        PartitionProduceResponse {
                            index: pd.index,
                            error_code: ErrorCode::INVALID_REQUIRED_ACKS.code(),
                            base_offset: -1,
                            ..Default::default()
                        },
                        None,
                    )
                };
                if resp.error_code != 0
                    && resp.error_code != ErrorCode::DUPLICATE_SEQUENCE_NUMBER.code()
                {
                    any_error = true;
                }
                if resp.current_leader.leader_id >= 0 {
                    leaders.push(resp.current_leader.leader_id);
                }
                if let Some(leo) = wait {
                    awaiting.push((ti, pi, topic.name.clone(), pd.index, leo));
                }
                partitions.push(resp);
            }
            response.responses.push(TopicProduceResponse {
                name: topic.name,
                partition_responses: partitions,
                ..Default::default()
            });
        }
        if ctx.version >= 10 {
            leaders.sort_unstable();
            leaders.dedup();
            response.node_endpoints = leaders
                .into_iter()
                .filter_map(|id| self.broker(id))
                .map(|b| NodeEndpoint {
                    node_id: b.id,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                    ..Default::default()
                })
                .collect();
        }
        if acks == 0 {
            // Kafka closes the connection when an acks=0 produce fails: the only way the
            // client can learn of it.
            return if any_error {
                Outcome::Close("acks=0 produce failed".into())
            } else {
                Outcome::NoReply
            };
        }
        let wait = ProduceWait {
            deadline: ctx.now + Duration::from_millis(req.timeout_ms.max(0) as u64),
            broker: ctx.broker,
            header: ctx.header.clone(),
            response,
            awaiting,
        };
        match self.complete_produce(Box::new(wait), false) {
            Ok((_, outcome)) => outcome,
            Err(w) => Outcome::Wait(w),
        }
    }

    /// Answers an `acks=all` produce once the high watermark passed its batches (or with
    /// `REQUEST_TIMED_OUT` for the stragglers once `expired`).
    pub(super) fn complete_produce(
        &mut self,
        mut w: Box<ProduceWait>,
        expired: bool,
    ) -> Result<(RequestHeader, Outcome), Waiting> {
        let mut pending = Vec::new();
        for entry in std::mem::take(&mut w.awaiting) {
            let (ti, pi, ref topic, partition, leo) = entry;
            let state = self.partition(topic, partition).map(|p| {
                (
                    p.high_watermark() >= leo,
                    p.leader,
                    p.log_end_offset() >= leo,
                )
            });
            let code = match state {
                Some((true, _, _)) => None,
                Some((false, leader, present)) if leader == w.broker && present => {
                    if expired {
                        Some(ErrorCode::REQUEST_TIMED_OUT)
                    } else {
                        pending.push(entry);
                        continue;
                    }
                }
                // The leader moved or the data was truncated away.
                Some(_) => Some(ErrorCode::NOT_LEADER_OR_FOLLOWER),
                None => Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            };
            if let Some(code) = code {
                if let Some(p) = w
                    .response
                    .responses
                    .get_mut(ti)
                    .and_then(|t| t.partition_responses.get_mut(pi))
                {
                    p.error_code = code.code();
                }
            }
        }
        if pending.is_empty() {
            let header = w.header.clone();
            Ok((header, Outcome::Reply(ResponseBody::Produce(w.response))))
        } else {
            w.awaiting = pending;
            Err(Waiting::Produce(w))
        }
    }
}

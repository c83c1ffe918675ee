//! AddPartitionsToTxn (v0-3 from clients; v4+ batched over transactional ids, from brokers,
//! with the verify-only form of KIP-890 part 1) and AddOffsetsToTxn.

use kafkit_core::protocol::add_partitions_to_txn::request::AddPartitionsToTxnTopic;
use kafkit_core::protocol::add_partitions_to_txn::response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafkit_core::protocol::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, ErrorCode, ResponseBody,
};

use super::{fenced_code, TxnState};
use crate::cluster::{Cluster, Ctx, Outcome};

/// The same code for every partition of `topics`.
fn all(topics: &[AddPartitionsToTxnTopic], code: ErrorCode) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|&p| AddPartitionsToTxnPartitionResult {
                    partition_index: p,
                    partition_error_code: code.code(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

impl Cluster {
    pub(in crate::cluster) fn handle_add_partitions_to_txn(
        &mut self,
        ctx: &Ctx,
        req: AddPartitionsToTxnRequest,
    ) -> Outcome {
        let mut resp = AddPartitionsToTxnResponse::default();
        if ctx.version < 4 {
            resp.results_by_topic_v3_and_below = self.add_partitions(
                ctx,
                &req.v3_and_below_transactional_id,
                req.v3_and_below_producer_id,
                req.v3_and_below_producer_epoch,
                false,
                &req.v3_and_below_topics,
            );
        } else {
            for t in &req.transactions {
                let topic_results = self.add_partitions(
                    ctx,
                    &t.transactional_id,
                    t.producer_id,
                    t.producer_epoch,
                    t.verify_only,
                    &t.topics,
                );
                resp.results_by_transaction.push(AddPartitionsToTxnResult {
                    transactional_id: t.transactional_id.clone(),
                    topic_results,
                    ..Default::default()
                });
            }
        }
        Outcome::Reply(ResponseBody::AddPartitionsToTxn(resp))
    }

    /// One transaction's partitions: added to it, or (`verify_only`) checked to be in it.
    fn add_partitions(
        &mut self,
        ctx: &Ctx,
        id: &str,
        producer_id: i64,
        epoch: i16,
        verify_only: bool,
        topics: &[AddPartitionsToTxnTopic],
    ) -> Vec<AddPartitionsToTxnTopicResult> {
        if self.coordinator_for(id) != ctx.broker {
            return all(topics, ErrorCode::NOT_COORDINATOR);
        }
        self.txn_coordinator_epoch(id);
        let now_ms = self.wall_ms(ctx.now);
        let Some(t) = self.txns.txns.get_mut(id) else {
            return all(topics, ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        };
        if let Err(code) = t.check_producer(producer_id, epoch, fenced_code(ctx.version, 2)) {
            return all(topics, code);
        }
        if verify_only {
            return topics
                .iter()
                .map(|tp| AddPartitionsToTxnTopicResult {
                    name: tp.name.clone(),
                    results_by_partition: tp
                        .partitions
                        .iter()
                        .map(|&p| {
                            let inside = t.state == TxnState::Ongoing
                                && t.partitions.contains(&(tp.name.clone(), p));
                            AddPartitionsToTxnPartitionResult {
                                partition_index: p,
                                partition_error_code: if inside {
                                    0
                                } else {
                                    ErrorCode::INVALID_TXN_STATE.code()
                                },
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect();
        }
        if t.state.is_prepare() {
            return all(topics, ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        let exists = |topic: &str, p: i32| {
            self.topics
                .get(topic)
                .is_some_and(|t| t.partition(p).is_some())
        };
        let unknown: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |&p| (t.name.clone(), p)))
            .filter(|(topic, p)| !exists(topic, *p))
            .collect();
        let Some(t) = self.txns.txns.get_mut(id) else {
            return all(topics, ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        };
        if !unknown.is_empty() {
            // Nothing is added when some partition is unknown.
            let mut results = all(topics, ErrorCode::OPERATION_NOT_ATTEMPTED);
            for r in &mut results {
                for p in &mut r.results_by_partition {
                    if unknown.contains(&(r.name.clone(), p.partition_index)) {
                        p.partition_error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
                    }
                }
            }
            return results;
        }
        Self::open_txn(t, ctx.now, now_ms);
        for tp in topics {
            for &p in &tp.partitions {
                t.partitions.insert((tp.name.clone(), p));
            }
        }
        all(topics, ErrorCode::NONE)
    }

    pub(in crate::cluster) fn handle_add_offsets_to_txn(
        &mut self,
        ctx: &Ctx,
        req: AddOffsetsToTxnRequest,
    ) -> Outcome {
        let code = self.add_offsets(ctx, &req).err().unwrap_or(ErrorCode::NONE);
        Outcome::Reply(ResponseBody::AddOffsetsToTxn(AddOffsetsToTxnResponse {
            error_code: code.code(),
            ..Default::default()
        }))
    }

    fn add_offsets(&mut self, ctx: &Ctx, req: &AddOffsetsToTxnRequest) -> Result<(), ErrorCode> {
        let id = req.transactional_id.as_str();
        if self.coordinator_for(id) != ctx.broker {
            return Err(ErrorCode::NOT_COORDINATOR);
        }
        if req.group_id.is_empty() {
            return Err(ErrorCode::INVALID_GROUP_ID);
        }
        let now_ms = self.wall_ms(ctx.now);
        let t = self
            .txns
            .txns
            .get_mut(id)
            .ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
        t.check_producer(
            req.producer_id,
            req.producer_epoch,
            fenced_code(ctx.version, 2),
        )?;
        if t.state.is_prepare() {
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        Self::open_txn(t, ctx.now, now_ms);
        t.groups.insert(req.group_id.clone());
        Ok(())
    }
}

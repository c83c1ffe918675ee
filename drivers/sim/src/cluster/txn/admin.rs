//! DescribeTransactions and ListTransactions: the transactional ids this broker coordinates.

use std::collections::BTreeMap;

use kafkit_core::protocol::describe_transactions::response::{
    TopicData, TransactionState as DescribedState,
};
use kafkit_core::protocol::list_transactions::response::TransactionState as ListedState;
use kafkit_core::protocol::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ErrorCode, ListTransactionsRequest,
    ListTransactionsResponse, ResponseBody,
};

use super::{TxnMetadata, TxnState};
use crate::cluster::{Cluster, Ctx, Outcome};

fn describe(t: &TxnMetadata) -> DescribedState {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in &t.partitions {
        topics.entry(topic.as_str()).or_default().push(*p);
    }
    DescribedState {
        transactional_id: t.transactional_id.clone(),
        transaction_state: t.state.name().to_owned(),
        transaction_timeout_ms: t.timeout_ms,
        transaction_start_time_ms: t.start_time_ms,
        producer_id: t.producer_id,
        producer_epoch: t.producer_epoch,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| TopicData {
                topic: topic.to_owned(),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

impl Cluster {
    pub(in crate::cluster) fn handle_describe_transactions(
        &mut self,
        ctx: &Ctx,
        req: DescribeTransactionsRequest,
    ) -> Outcome {
        let transaction_states = req
            .transactional_ids
            .iter()
            .map(|id| {
                let error = if self.coordinator_for(id) != ctx.broker {
                    Some(ErrorCode::NOT_COORDINATOR)
                } else if !self.txns.txns.contains_key(id) {
                    Some(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND)
                } else {
                    None
                };
                match (error, self.txns.txns.get(id)) {
                    (None, Some(t)) => describe(t),
                    (e, _) => DescribedState {
                        error_code: e.unwrap_or(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND).code(),
                        transactional_id: id.clone(),
                        transaction_start_time_ms: -1,
                        producer_id: -1,
                        producer_epoch: -1,
                        ..Default::default()
                    },
                }
            })
            .collect();
        Outcome::Reply(ResponseBody::DescribeTransactions(
            DescribeTransactionsResponse {
                transaction_states,
                ..Default::default()
            },
        ))
    }

    pub(in crate::cluster) fn handle_list_transactions(
        &mut self,
        ctx: &Ctx,
        req: ListTransactionsRequest,
    ) -> Outcome {
        let mut unknown_state_filters = Vec::new();
        let mut states = Vec::new();
        for name in &req.state_filters {
            match TxnState::from_name(name) {
                Some(s) => states.push(s),
                None => unknown_state_filters.push(name.clone()),
            }
        }
        let now_ms = self.wall_ms(ctx.now);
        // v1: only transactions running for longer than the filter (ms); -1 for all.
        let min_duration = if ctx.version >= 1 {
            req.duration_filter
        } else {
            -1
        };
        let transaction_states = self
            .txns
            .txns
            .values()
            .filter(|t| self.coordinator_for(&t.transactional_id) == ctx.broker)
            .filter(|t| req.state_filters.is_empty() || states.contains(&t.state))
            .filter(|t| {
                req.producer_id_filters.is_empty()
                    || req.producer_id_filters.contains(&t.producer_id)
            })
            .filter(|t| {
                min_duration < 0
                    || (t.start_time_ms >= 0 && now_ms - t.start_time_ms > min_duration)
            })
            .map(|t| ListedState {
                transactional_id: t.transactional_id.clone(),
                producer_id: t.producer_id,
                transaction_state: t.state.name().to_owned(),
                ..Default::default()
            })
            .collect();
        Outcome::Reply(ResponseBody::ListTransactions(ListTransactionsResponse {
            unknown_state_filters,
            transaction_states,
            ..Default::default()
        }))
    }
}

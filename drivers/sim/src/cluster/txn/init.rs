//! InitProducerId: a fresh producer id for an idempotent producer (or its epoch bumped,
//! KIP-360), and for a transactional id the coordinator's part: a new id, or the epoch
//! bumped to fence the previous instance, whose open transaction is aborted first.

use kafkit_core::protocol::{
    ErrorCode, InitProducerIdRequest, InitProducerIdResponse, ResponseBody,
};

use super::{fenced_code, TxnMetadata, TxnState, MAX_TRANSACTION_TIMEOUT_MS};
use crate::cluster::{Cluster, Ctx, Outcome};

impl Cluster {
    pub(in crate::cluster) fn handle_init_producer_id(
        &mut self,
        ctx: &Ctx,
        req: InitProducerIdRequest,
    ) -> Outcome {
        let mut resp = InitProducerIdResponse {
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        let result = match req.transactional_id.clone().filter(|t| !t.is_empty()) {
            None => Ok(self.init_idempotent(&req)),
            Some(id) => self.init_transactional(ctx, &id, &req),
        };
        match result {
            Ok((pid, epoch)) => {
                resp.producer_id = pid;
                resp.producer_epoch = epoch;
            }
            Err(code) => resp.error_code = code.code(),
        }
        Outcome::Reply(ResponseBody::InitProducerId(resp))
    }

    fn init_idempotent(&mut self, req: &InitProducerIdRequest) -> (i64, i16) {
        if req.producer_id >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
            // KIP-360: an idempotent producer bumps its epoch to reset sequences.
            (req.producer_id, req.producer_epoch + 1)
        } else {
            (self.allocate_producer_id(), 0)
        }
    }

    /// Kafka's `handleInitProducerId` for a transactional id.
    fn init_transactional(
        &mut self,
        ctx: &Ctx,
        id: &str,
        req: &InitProducerIdRequest,
    ) -> Result<(i64, i16), ErrorCode> {
        if req.transaction_timeout_ms <= 0
            || req.transaction_timeout_ms > MAX_TRANSACTION_TIMEOUT_MS
        {
            return Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT);
        }
        if self.coordinator_for(id) != ctx.broker {
            return Err(ErrorCode::NOT_COORDINATOR);
        }
        self.txn_coordinator_epoch(id);
        let Some(t) = self.txns.txns.get(id) else {
            let pid = self.allocate_producer_id();
            let t = TxnMetadata::new(id, pid, req.transaction_timeout_ms);
            self.txns.txns.insert(id.to_owned(), t);
            return Ok((pid, 0));
        };
        if t.state.is_prepare() {
            // Markers of the last transaction are still being written: retry.
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        // KIP-360: a producer that knows its id and epoch may only resume itself.
        if ctx.version >= 3 && req.producer_id >= 0 {
            let current =
                req.producer_id == t.producer_id && req.producer_epoch == t.producer_epoch;
            let retried = req.producer_id == t.producer_id
                && req.producer_epoch == t.last_producer_epoch
                && t.state == TxnState::Empty;
            if retried {
                return Ok((t.producer_id, t.producer_epoch));
            }
            if !current {
                return Err(fenced_code(ctx.version, 4));
            }
        }
        let ongoing = t.state == TxnState::Ongoing;
        let Some(bump) = self.bump_txn_epoch(id) else {
            return Err(ErrorCode::UNKNOWN_SERVER_ERROR);
        };
        let (pid, epoch) = bump.next;
        if ongoing {
            // Fence the previous instance: abort its transaction with the new epoch (so its
            // partitions refuse the old one), and have this producer retry once done.
            self.begin_completion(id, false, bump.marker, ctx.now);
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        if let Some(t) = self.txns.txns.get_mut(id) {
            t.state = TxnState::Empty;
            t.timeout_ms = req.transaction_timeout_ms;
            t.partitions.clear();
            t.groups.clear();
            t.start_time_ms = -1;
            t.deadline = None;
        }
        Ok((pid, epoch))
    }

    pub(in crate::cluster) fn allocate_producer_id(&mut self) -> i64 {
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        id
    }
}

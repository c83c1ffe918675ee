//! EndTxn: commit or abort the open transaction. Answered once the decision is recorded
//! (`PrepareCommit`/`PrepareAbort`); the markers follow (`markers.rs`). At v5 (transaction
//! protocol v2) the epoch is bumped with every transaction and returned.

use kafkit_core::protocol::{EndTxnRequest, EndTxnResponse, ErrorCode, ResponseBody};

use super::{fenced_code, TxnState};
use crate::cluster::{Cluster, Ctx, Outcome};

impl Cluster {
    pub(in crate::cluster) fn handle_end_txn(&mut self, ctx: &Ctx, req: EndTxnRequest) -> Outcome {
        let mut resp = EndTxnResponse {
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        match self.end_txn(ctx, &req) {
            Ok((pid, epoch)) => {
                if ctx.version >= 5 {
                    resp.producer_id = pid;
                    resp.producer_epoch = epoch;
                }
            }
            Err(code) => resp.error_code = code.code(),
        }
        Outcome::Reply(ResponseBody::EndTxn(resp))
    }

    /// Kafka's `endTransaction`: the state checks, then the prepare.
    fn end_txn(&mut self, ctx: &Ctx, req: &EndTxnRequest) -> Result<(i64, i16), ErrorCode> {
        let id = req.transactional_id.as_str();
        if self.coordinator_for(id) != ctx.broker {
            return Err(ErrorCode::NOT_COORDINATOR);
        }
        self.txn_coordinator_epoch(id);
        let v2 = ctx.version >= 5;
        let Some(t) = self.txns.txns.get(id) else {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        };
        let commit = req.committed;
        let done = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        let preparing = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        // Under v2 the epoch moved on when the transaction ended (to a new producer id once
        // it was exhausted): a retry of that EndTxn carries the id and epoch before.
        if v2
            && req.producer_id == t.previous_producer_id
            && req.producer_epoch == t.last_producer_epoch
            && (req.producer_id, req.producer_epoch) != (t.producer_id, t.producer_epoch)
        {
            return match t.state {
                s if s == done || s == preparing => Ok((t.producer_id, t.producer_epoch)),
                _ => Err(fenced_code(ctx.version, 2)),
            };
        }
        if req.producer_id != t.producer_id {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        if req.producer_epoch != t.producer_epoch {
            return Err(fenced_code(ctx.version, 2));
        }
        match t.state {
            TxnState::Ongoing => {}
            // An empty transaction may be aborted under v2 (to bump the epoch).
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                if v2 && !commit => {}
            s if s == done && !v2 => return Ok((t.producer_id, t.producer_epoch)),
            s if s == preparing => return Err(ErrorCode::CONCURRENT_TRANSACTIONS),
            _ => return Err(ErrorCode::INVALID_TXN_STATE),
        }
        let (next, marker) = if v2 {
            let bump = self
                .bump_txn_epoch(id)
                .ok_or(ErrorCode::UNKNOWN_SERVER_ERROR)?;
            (bump.next, bump.marker)
        } else {
            let current = (t.producer_id, t.producer_epoch);
            (current, current)
        };
        if v2 {
            if let Some(t) = self.txns.txns.get_mut(id) {
                if t.state != TxnState::Ongoing {
                    t.partitions.clear();
                }
            }
        }
        self.begin_completion(id, commit, marker, ctx.now);
        Ok(next)
    }
}

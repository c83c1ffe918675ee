//! The check of a transactional batch at the partition leader (KIP-890 part 1): the
//! partition must be in its producer's open transaction (`INVALID_TXN_STATE` otherwise);
//! a Produce v12 (transaction protocol v2, part 2) adds it instead.

use kafkit_core::protocol::ErrorCode;
use kafkit_core::records::BatchHeader;

use super::TxnState;
use crate::cluster::{Cluster, Ctx};

/// The first Produce version that registers its partitions in the transaction (KIP-890).
const IMPLICIT_ADD_PRODUCE_VERSION: i16 = 12;

impl Cluster {
    /// Checks the transactional batch `h` of a produce with `transactional_id` for
    /// `topic`/`partition`. A partition that already holds the producer's open transaction
    /// needs no check (the log's epoch check still applies), as in Kafka.
    pub(in crate::cluster) fn verify_txn_produce(
        &mut self,
        ctx: &Ctx,
        transactional_id: Option<&str>,
        h: &BatchHeader,
        topic: &str,
        partition: i32,
    ) -> Result<(), (ErrorCode, String)> {
        let open_here = self
            .partition(topic, partition)
            .is_some_and(|p| p.has_open_txn(h.producer_id));
        if open_here {
            return Ok(());
        }
        let Some(id) = transactional_id.filter(|s| !s.is_empty()) else {
            return Err((
                ErrorCode::INVALID_TXN_STATE,
                "transactional records in a produce request without a transactional id".into(),
            ));
        };
        let v2 = ctx.version >= IMPLICIT_ADD_PRODUCE_VERSION;
        let now_ms = self.wall_ms(ctx.now);
        let Some(t) = self.txns.txns.get_mut(id) else {
            return Err((
                ErrorCode::INVALID_PRODUCER_ID_MAPPING,
                format!("unknown transactional id {id}"),
            ));
        };
        if t.producer_id != h.producer_id {
            return Err((
                ErrorCode::INVALID_PRODUCER_ID_MAPPING,
                format!("producer id {} is not {id}'s", h.producer_id),
            ));
        }
        if t.producer_epoch != h.producer_epoch {
            return Err((
                ErrorCode::INVALID_PRODUCER_EPOCH,
                format!(
                    "producer epoch {} is not the current {}",
                    h.producer_epoch, t.producer_epoch
                ),
            ));
        }
        let key = (topic.to_owned(), partition);
        if t.state == TxnState::Ongoing && t.partitions.contains(&key) {
            return Ok(());
        }
        if v2 && !t.state.is_prepare() {
            Self::open_txn(t, ctx.now, now_ms);
            t.partitions.insert(key);
            return Ok(());
        }
        Err((
            ErrorCode::INVALID_TXN_STATE,
            format!("{topic}-{partition} is not in the transaction of {id}"),
        ))
    }
}

//! The producer id: InitProducerId for the idempotent producer, and the epoch bumps of
//! KIP-360 (the rules are in `idempotence.rs`).

use std::time::Instant;

use super::{net_error_retriable, ProducerCore};
use crate::network::{NetError, Response, Target};
use crate::producer::error::ProduceError;
use crate::producer::idempotence::{IdState, Idempotence};
use crate::protocol::{ErrorCode, InitProducerIdRequest, RequestBody};

impl ProducerCore {
    pub(super) fn maybe_init_producer_id(&mut self, now: Instant) {
        let Some(idem) = &self.idem else { return };
        if self.txn.is_some() {
            // The transaction manager asks for the id (init_transactions) and for bumps.
            return;
        }
        if self.init_request.is_some() || !idem.wants_init(now) {
            return;
        }
        if idem.is_bump() && !self.in_flight.is_empty() {
            // Bumps wait for an idle pipeline, so no batch of the old epoch is in flight when
            // sequences restart.
            return;
        }
        let body = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: i32::try_from(self.config.transaction_timeout_ms)
                .unwrap_or(i32::MAX),
            producer_id: idem.producer_id,
            producer_epoch: idem.epoch,
            ..Default::default()
        };
        let id = self.net.send(
            Target::Any,
            RequestBody::InitProducerId(body),
            None,
            true,
            now,
        );
        self.init_request = Some(id);
        if let Some(idem) = &mut self.idem {
            idem.state = IdState::Requested(id);
        }
    }

    pub(super) fn on_init_producer_id(&mut self, result: Result<Response, NetError>, now: Instant) {
        let retry_backoff = self.retry_backoff;
        let Some(idem) = &mut self.idem else { return };
        let retry = |idem: &mut Idempotence| {
            idem.state = IdState::Needed;
            idem.retry_at = Some(now + retry_backoff);
        };
        let answer = result.map(|resp| (resp.node, resp.body_as::<InitProducerIdRequest>()));
        match answer {
            Ok((node, Ok(r))) => {
                let code = r.error();
                if code.is_ok() {
                    tracing::debug!(
                        producer_id = r.producer_id,
                        epoch = r.producer_epoch,
                        "producer id"
                    );
                    idem.on_new_id(r.producer_id, r.producer_epoch);
                    for tp in idem.take_resets() {
                        self.acc.clear_stamps(&tp);
                    }
                } else if code == ErrorCode::INVALID_PRODUCER_EPOCH
                    || code == ErrorCode::PRODUCER_FENCED
                    || code == ErrorCode::UNKNOWN_PRODUCER_ID
                {
                    // The bump was refused: start over with a new id.
                    idem.producer_id = crate::records::NO_PRODUCER_ID;
                    idem.epoch = crate::records::NO_PRODUCER_EPOCH;
                    retry(idem);
                } else if code.is_retriable() {
                    retry(idem);
                } else {
                    let e = ProduceError::Fatal(format!(
                        "InitProducerId failed at node {node}: {code}"
                    ));
                    self.go_fatal(e, now);
                }
            }
            Ok((_, Err(_))) => retry(idem),
            Err(NetError::Closed) => {}
            Err(e) if net_error_retriable(&e) => retry(idem),
            Err(e) => {
                // Unsupported (a broker before 0.11: idempotence left at its default turns
                // off, asked for it fails naming the broker's lack) or an authentication
                // failure: no idempotent producer is possible.
                if matches!(e, NetError::Unsupported { .. }) {
                    self.check_producer_id_support(Some(&e), now);
                    if self.idem.is_none() || self.fatal.is_some() {
                        return;
                    }
                }
                self.go_fatal(
                    ProduceError::Fatal(format!("InitProducerId failed: {e}")),
                    now,
                );
            }
        }
    }
}
